package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passerelle/passerelle/governance/gate"
)

// GovernanceStats is what the governance gate holds now.
type GovernanceStats struct {
	// Pending approval requests, and when the oldest was made (zero
	// without any).
	Pending int
	Oldest  time.Time
	// Held remote events waiting for a decision or for delivery.
	Held int64
	// AuditEntries in the audit log (after retention).
	AuditEntries int64
}

// GovernanceSource reads the governance gauges.
type GovernanceSource func(ctx context.Context) (GovernanceStats, error)

// GateStats reads the gauges from the gate's stores: its pending requests
// (approval.Store.Pending) and two counts on its database. Before the gate
// started it returns an error (nothing is served for these gauges then).
func GateStats(g *gate.Gate) GovernanceSource {
	return func(ctx context.Context) (GovernanceStats, error) {
		var st GovernanceStats
		if g.Approvals == nil || g.DB == nil {
			return st, gate.ErrNotStarted
		}
		pending, err := g.Approvals.Pending(ctx)
		if err != nil {
			return st, err
		}
		st.Pending = len(pending)
		for _, r := range pending {
			if st.Oldest.IsZero() || r.CreatedAt.Before(st.Oldest) {
				st.Oldest = r.CreatedAt
			}
		}
		if err = g.DB.QueryRow(ctx, "SELECT COUNT(*) FROM governance_approval_held").Scan(&st.Held); err != nil {
			return st, fmt.Errorf("failed to count held messages: %w", err)
		}
		if err = g.DB.QueryRow(ctx, "SELECT COUNT(*) FROM governance_audit_log").Scan(&st.AuditEntries); err != nil {
			return st, fmt.Errorf("failed to count audit log entries: %w", err)
		}
		return st, nil
	}
}

// governanceTimeout bounds the reads of one scrape.
const governanceTimeout = 5 * time.Second

type governanceCollector struct {
	m                         *Metrics
	src                       GovernanceSource
	pending, age, held, audit *prometheus.Desc
	errors                    prometheus.Counter
}

// GovernanceCollector serves the approvals pending, the age of the oldest,
// the held messages and the audit log's size, read from src at each scrape;
// a failed read serves none of them and counts an error.
func (m *Metrics) GovernanceCollector(src GovernanceSource) prometheus.Collector {
	return &governanceCollector{m: m, src: src,
		pending: prometheus.NewDesc(NameApprovals, "Approval requests waiting for an admin.", nil, nil),
		age:     prometheus.NewDesc(NameApprovalAge, "Seconds since the oldest pending approval request was made (0 without any).", nil, nil),
		held:    prometheus.NewDesc(NameHeld, "Remote messages held until an approval request is decided and delivered.", nil, nil),
		audit:   prometheus.NewDesc(NameAuditEntries, "Entries in the audit log.", nil, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameGovernanceErrs, Help: "Scrapes that could not read the governance gauges.",
		}),
	}
}

func (c *governanceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.age
	ch <- c.held
	ch <- c.audit
	c.errors.Describe(ch)
}

func (c *governanceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), governanceTimeout)
	defer cancel()
	st, err := c.src(ctx)
	if err != nil {
		c.errors.Inc()
	} else {
		age := 0.0
		if !st.Oldest.IsZero() {
			age = max(c.m.clk.Now().Sub(st.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(st.Held))
		ch <- prometheus.MustNewConstMetric(c.audit, prometheus.GaugeValue, float64(st.AuditEntries))
	}
	c.errors.Collect(ch)
}
