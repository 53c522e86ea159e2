// Package metrics is the gateway's Prometheus registry and its operator
// endpoints: /metrics, /health and /ready (see Server).
//
// Metrics counts what crosses the one door of package remote: it wraps the
// gateway's remote queue, outbound check and sent recorder (WrapQueue,
// WrapCheck, WrapSent), so that no connector and no governance code knows
// about it. Labels are bounded by construction: a network (one of the
// gateway's, else "other"), a direction, a kind or reason from fixed lists;
// never a user, login or portal ID.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/passerelle/passerelle/internal/clock"
)

// Directions of a bridged message.
const (
	ToMatrix = "to_matrix"
	ToRemote = "to_remote"
)

// Kinds of a bridged event. Signals (typing, receipts, presence) are not
// counted.
const (
	KindMessage    = "message"
	KindMedia      = "media"
	KindEdit       = "edit"
	KindReaction   = "reaction"
	KindDeletion   = "deletion"
	KindChatChange = "chat_change"
	KindOther      = "other"
)

// Failure reasons.
const (
	// ReasonRefused: a Matrix event the organisation's policy refused to
	// send (outbound).
	ReasonRefused = "refused"
	// ReasonIgnored: a remote event that was not bridged although nothing
	// failed (inbound): refused by policy, held for approval, or already
	// bridged (a message that came with the history of a new portal).
	// bridgev2's result does not tell them apart.
	ReasonIgnored = "ignored"
	// ReasonTransient: failed for a reason that passes (homeserver or
	// database away); the event is tried again.
	ReasonTransient = "transient"
	// ReasonFailed: failed for good (or for an unknown reason).
	ReasonFailed = "failed"
)

// OtherNetwork labels an event of a network the registry was not made for.
const OtherNetwork = "other"

// Metric names, also used by the Grafana dashboard (packaging/).
const (
	NameBridged        = "passerelle_messages_bridged_total"
	NameFailures       = "passerelle_message_failures_total"
	NameLatency        = "passerelle_bridge_latency_seconds"
	NameBackfilled     = "passerelle_messages_backfilled_total"
	NameLogins         = "passerelle_logins"
	NameApprovals      = "passerelle_approvals_pending"
	NameApprovalAge    = "passerelle_approval_oldest_pending_age_seconds"
	NameHeld           = "passerelle_held_messages"
	NameAuditEntries   = "passerelle_audit_log_entries"
	NameGovernanceErrs = "passerelle_governance_scrape_errors_total"
	NameInFlight       = "passerelle_remote_events_in_flight"
	NameMatrixInbox    = "passerelle_matrix_inbox_events"
)

// InboxCollector reports the Matrix inbox's depth (depth: the events the
// gateway answered the homeserver for and has not handled yet).
func InboxCollector(depth func() int) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: NameMatrixInbox,
		Help: "Matrix events the gateway answered the homeserver for and has not handled yet (stored in its database, waiting behind their room's earlier events or being handled).",
	}, func() float64 { return float64(depth()) })
}

// Portal classes of the in-flight gauge: a staff member's direct chat (a
// portal of one login), or a group or channel shared by the logins in it.
const (
	ClassDirect = "direct"
	ClassGroup  = "group"
)

var (
	allKinds    = []string{KindMessage, KindMedia, KindEdit, KindReaction, KindDeletion, KindChatChange, KindOther}
	allReasons  = []string{ReasonRefused, ReasonIgnored, ReasonTransient, ReasonFailed}
	directions  = []string{ToMatrix, ToRemote}
	latencyBins = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
)

// Metrics is the gateway's registry with its counters.
type Metrics struct {
	// Registry holds every metric served on /metrics: ours, the process's
	// and the Go runtime's.
	Registry *prometheus.Registry

	clk      clock.Clock
	networks map[string]bool

	bridged  *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	history  *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
}

// New makes the registry for the given networks (their IDs, "telegram",
// "whatsapp"); clk times the latencies (the system clock when nil). Every
// counter of every network, direction, kind and reason starts at zero, so
// that a rate is defined from the first scrape.
func New(clk clock.Clock, networks ...string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		clk:      clock.Or(clk),
		networks: map[string]bool{},
		bridged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameBridged,
			Help: "Events bridged, by network, direction (to_matrix, to_remote) and kind (message, media, edit, reaction, deletion, chat_change, other).",
		}, []string{"network", "direction", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameFailures,
			Help: "Events not bridged, by network, direction and reason (refused by policy or not bridged, transient failure retried, failed).",
		}, []string{"network", "direction", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameLatency,
			Help:    "Seconds from an event's timestamp on its origin (remote network or Matrix) to the end of its bridging, by network and direction.",
			Buckets: latencyBins,
		}, []string{"network", "direction"}),
		history: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameBackfilled,
			Help: "Messages of a chat's history handed to Matrix (a new portal's recent history, catch-up after a restart), by network; not in " + NameBridged + ".",
		}, []string{"network"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameInFlight,
			Help: "Remote events being bridged or waiting for their portal (a portal bridges one event at a time and the network connection waits for it), by network and portal class (direct, group): the depth of the portals' queues.",
		}, []string{"network", "portal_class"}),
	}
	for _, n := range append(networks, OtherNetwork) {
		m.networks[n] = true
		for _, d := range directions {
			for _, k := range allKinds {
				m.bridged.WithLabelValues(n, d, k)
			}
			for _, r := range allReasons {
				m.failures.WithLabelValues(n, d, r)
			}
			m.latency.WithLabelValues(n, d)
		}
		m.history.WithLabelValues(n)
		m.inFlight.WithLabelValues(n, ClassDirect)
		m.inFlight.WithLabelValues(n, ClassGroup)
	}
	m.Registry.MustRegister(m.bridged, m.failures, m.latency, m.history, m.inFlight,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return m
}

// network bounds a network label to the known ones.
func (m *Metrics) network(n string) string {
	if m.networks[n] {
		return n
	}
	return OtherNetwork
}

// Register adds a collector (database pool, logins, governance) to the
// registry.
func (m *Metrics) Register(c prometheus.Collector) error {
	return m.Registry.Register(c)
}

// Bridged counts one event bridged; origin is its timestamp at its origin
// (zero when unknown: no latency is observed).
func (m *Metrics) Bridged(network, direction, kind string, origin time.Time) {
	network = m.network(network)
	m.bridged.WithLabelValues(network, direction, kind).Inc()
	if !origin.IsZero() {
		d := m.clk.Now().Sub(origin)
		if d < 0 {
			d = 0
		}
		m.latency.WithLabelValues(network, direction).Observe(d.Seconds())
	}
}

// Failed counts one event that was not bridged.
func (m *Metrics) Failed(network, direction, reason string) {
	m.failures.WithLabelValues(m.network(network), direction, reason).Inc()
}
