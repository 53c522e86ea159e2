package metrics

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/netid"
)

// Login states as labelled (bridgev2's bridge states, grouped).
const (
	LoginConnected    = "connected"
	LoginConnecting   = "connecting"
	LoginTransient    = "transient_disconnect"
	LoginBadCreds     = "bad_credentials"
	LoginLoggedOut    = "logged_out"
	LoginUnknownError = "unknown_error"
	// LoginUnknown: the login has reported no state yet.
	LoginUnknown = "unknown"
)

var allLoginStates = []string{LoginConnected, LoginConnecting, LoginTransient, LoginBadCreds, LoginLoggedOut, LoginUnknownError, LoginUnknown}

// LoginState is one staff login's last bridge state.
type LoginState struct {
	Network string
	ID      networkid.UserLoginID
	Staff   id.UserID
	// State is one of the Login* labels; Event is bridgev2's state and
	// Message its explanation for the staff member (no secret, no phone
	// number).
	State   string
	Event   status.BridgeStateEvent
	Message string
	// Action is what the connector asks of the staff member (bridgev2's
	// user action; empty: nothing, the login recovers by itself or needs
	// a new log-in as its state says). UserActionRestart: the `reconnect`
	// command brings it back.
	Action status.BridgeStateUserAction
}

// LoginSource lists the logins and their states now.
type LoginSource func() []LoginState

// BridgeLogins reads the logins bridgev2 has loaded and the last state each
// one's connector reported (BridgeState.GetPrevUnsent: the latest state
// even while bridgev2 still debounces or retries pushing it; GetPrev lags
// behind it). The gateway's logins are all loaded at start-up, so this is
// every login.
func BridgeLogins(br *bridgev2.Bridge) LoginSource {
	return func() []LoginState {
		var out []LoginState
		for _, ul := range br.GetAllCachedUserLogins() {
			ls := LoginState{Network: netid.Network(string(ul.ID)), ID: ul.ID, Staff: ul.UserMXID}
			if ul.BridgeState != nil {
				prev := ul.BridgeState.GetPrevUnsent()
				ls.Event, ls.Message, ls.Action = prev.StateEvent, prev.Message, prev.UserAction
			}
			ls.State = loginLabel(ls.Event)
			out = append(out, ls)
		}
		return out
	}
}

func loginLabel(evt status.BridgeStateEvent) string {
	switch evt {
	case status.StateConnected, status.StateBackfilling:
		return LoginConnected
	case status.StateConnecting, status.StateStarting:
		return LoginConnecting
	case status.StateTransientDisconnect:
		return LoginTransient
	case status.StateBadCredentials:
		return LoginBadCreds
	case status.StateLoggedOut:
		return LoginLoggedOut
	case status.StateUnknownError:
		return LoginUnknownError
	}
	return LoginUnknown
}

// LoginSummary counts the logins of each network by state; every network
// given has an entry (zero logins is a known summary).
func LoginSummary(logins []LoginState, networks []string) map[string]map[string]int {
	sum := map[string]map[string]int{}
	for _, n := range networks {
		sum[n] = map[string]int{}
	}
	for _, l := range logins {
		if sum[l.Network] == nil {
			sum[l.Network] = map[string]int{}
		}
		sum[l.Network][l.State]++
	}
	return sum
}

type loginCollector struct {
	m      *Metrics
	src    LoginSource
	desc   *prometheus.Desc
	labels []string
}

// LoginCollector serves passerelle_logins{network,state}: how many logins of
// each network are in each state, read from src at each scrape.
func (m *Metrics) LoginCollector(src LoginSource, networks ...string) prometheus.Collector {
	return &loginCollector{m: m, src: src, labels: networks,
		desc: prometheus.NewDesc(NameLogins, "Staff logins by network and state (connected, connecting, transient_disconnect, bad_credentials, logged_out, unknown_error, unknown).", []string{"network", "state"}, nil)}
}

func (c *loginCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *loginCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]map[string]int{}
	for _, n := range c.labels {
		counts[n] = map[string]int{}
	}
	for _, l := range c.src() {
		n := c.m.network(l.Network)
		if counts[n] == nil {
			counts[n] = map[string]int{}
		}
		counts[n][l.State]++
	}
	for _, n := range slices.Sorted(maps.Keys(counts)) {
		for _, s := range allLoginStates {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[n][s]), n, s)
		}
	}
}
