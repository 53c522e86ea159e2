package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"maunium.net/go/mautrix/bridgev2/status"
)

func TestCheckListenRefusesNonLoopback(t *testing.T) {
	for _, c := range []struct {
		addr        string
		allowRemote bool
		ok          bool
	}{
		{"127.0.0.1:9090", false, true},
		{"[::1]:9090", false, true},
		{"localhost:9090", false, true},
		{"127.0.0.2:9090", false, true},
		{":9090", false, false},
		{"0.0.0.0:9090", false, false},
		{"192.0.2.10:9090", false, false},
		{"metrics.example.org:9090", false, false},
		{"0.0.0.0:9090", true, true},
		{"127.0.0.1", false, false}, // no port
	} {
		err := CheckListen(c.addr, c.allowRemote)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok=%v", c.addr, c.allowRemote, err, c.ok)
		}
	}
}

type fakeChecks struct {
	hsErr, dbErr error
	hsCalls      int
	logins       []LoginState
}

func (f *fakeChecks) checks() Checks {
	return Checks{
		Homeserver: func(context.Context) error { f.hsCalls++; return f.hsErr },
		Database:   func(context.Context) error { return f.dbErr },
		Logins:     func() []LoginState { return f.logins },
		Networks:   []string{"telegram", "whatsapp"},
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestHealthFollowsMainLoop(t *testing.T) {
	s := &Server{Metrics: New(newClock(), "telegram")}
	h := s.Handler()
	if code, _ := get(t, h, "/health"); code != http.StatusServiceUnavailable {
		t.Errorf("/health before the main loop = %d, want 503", code)
	}
	s.SetRunning(true)
	if code, body := get(t, h, "/health"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/health while running = %d %q, want 200 ok", code, body)
	}
	s.SetRunning(false)
	if code, _ := get(t, h, "/health"); code != http.StatusServiceUnavailable {
		t.Errorf("/health after stopping = %d, want 503", code)
	}
}

func TestReadyChecksHomeserverDatabaseAndLogins(t *testing.T) {
	clk := newClock()
	f := &fakeChecks{logins: []LoginState{
		{Network: "telegram", ID: "telegram.1", State: LoginConnected},
		{Network: "telegram", ID: "telegram.2", State: LoginBadCreds},
	}}
	s := &Server{Metrics: New(clk, "telegram", "whatsapp"), Checks: f.checks(), Clock: clk}
	h := s.Handler()

	// Not ready before the gateway runs (its appservice does not answer the
	// homeserver yet), whatever the other checks say.
	code, body := get(t, h, "/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"gateway":{"ok":false,"error":"the gateway is starting or stopping"}`) {
		t.Fatalf("/ready before the gateway runs = %d %s, want 503 naming it", code, body)
	}
	s.SetRunning(true)

	code, body = get(t, h, "/ready")
	if code != http.StatusOK {
		t.Fatalf("/ready = %d %s, want 200", code, body)
	}
	var r Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Ready || !r.Checks["homeserver"].OK || !r.Checks["database"].OK || !r.Checks["logins"].OK {
		t.Errorf("/ready body: %s", body)
	}
	// A bad login does not make the gateway unready: its state is known.
	if r.Logins["telegram"][LoginConnected] != 1 || r.Logins["telegram"][LoginBadCreds] != 1 {
		t.Errorf("telegram logins %v, want 1 connected and 1 bad_credentials", r.Logins["telegram"])
	}
	if wa, ok := r.Logins["whatsapp"]; !ok || len(wa) != 0 {
		t.Errorf("whatsapp (no login) summary %v, %v; want an empty one", wa, ok)
	}

	// The homeserver goes away: the cached answer holds for 5 s, then 503.
	f.hsErr = errors.New("connection refused")
	clk.Advance(HomeserverCacheFor - time.Second)
	if code, _ = get(t, h, "/ready"); code != http.StatusOK || f.hsCalls != 1 {
		t.Errorf("within the cache: /ready = %d after %d homeserver requests, want 200 after 1", code, f.hsCalls)
	}
	clk.Advance(time.Second)
	code, body = get(t, h, "/ready")
	if code != http.StatusServiceUnavailable || f.hsCalls != 2 || !strings.Contains(body, "connection refused") {
		t.Errorf("homeserver away: /ready = %d %s after %d requests, want 503 naming the error after 2", code, body, f.hsCalls)
	}
	f.hsErr = nil
	clk.Advance(HomeserverCacheFor)
	if code, _ = get(t, h, "/ready"); code != http.StatusOK {
		t.Errorf("homeserver back: /ready = %d, want 200", code)
	}

	f.dbErr = errors.New("database is locked")
	if code, body = get(t, h, "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"database":{"ok":false,"error":"database is locked"}`) {
		t.Errorf("database away: /ready = %d %s, want 503", code, body)
	}
	f.dbErr = nil

	f.logins = append(f.logins, LoginState{Network: "whatsapp", ID: "whatsapp.3", State: LoginUnknown})
	if code, body = get(t, h, "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "1 login(s) have not reported") {
		t.Errorf("a login without state: /ready = %d %s, want 503", code, body)
	}
	f.logins = f.logins[:2]

	// Stopping: unready at once, so that a load balancer stops sending.
	s.SetRunning(false)
	if code, _ = get(t, h, "/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("stopping: /ready = %d, want 503", code)
	}
}

func TestMetricsEndpointServesRegistry(t *testing.T) {
	m := New(newClock(), "telegram")
	m.Bridged("telegram", ToRemote, KindMessage, time.Time{})
	s := &Server{Metrics: m}
	code, body := get(t, s.Handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`passerelle_messages_bridged_total{direction="to_remote",kind="message",network="telegram"} 1`,
		"process_cpu_seconds_total", "go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestServerListensAndCloses(t *testing.T) {
	s := &Server{Metrics: New(newClock(), "telegram")}
	s.SetRunning(true)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health over TCP = %d", resp.StatusCode)
	}
	if err = s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err = http.Get("http://" + s.Addr() + "/health"); err == nil {
		t.Error("still serving after Close")
	}
}

func TestLoginGaugesByNetworkAndState(t *testing.T) {
	m := New(newClock(), "telegram", "whatsapp")
	logins := []LoginState{
		{Network: "telegram", State: loginLabel(status.StateConnected)},
		{Network: "telegram", State: loginLabel(status.StateBackfilling)},
		{Network: "telegram", State: loginLabel(status.StateTransientDisconnect)},
		{Network: "whatsapp", State: loginLabel(status.StateBadCredentials)},
		{Network: "whatsapp", State: loginLabel(status.StateConnecting)},
		{Network: "whatsapp", State: loginLabel(status.StateLoggedOut)},
		{Network: "whatsapp", State: loginLabel("")},
	}
	if err := m.Register(m.LoginCollector(func() []LoginState { return logins }, "telegram", "whatsapp")); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP passerelle_logins Staff logins by network and state (connected, connecting, transient_disconnect, bad_credentials, logged_out, unknown_error, unknown).
# TYPE passerelle_logins gauge
passerelle_logins{network="telegram",state="bad_credentials"} 0
passerelle_logins{network="telegram",state="connected"} 2
passerelle_logins{network="telegram",state="connecting"} 0
passerelle_logins{network="telegram",state="logged_out"} 0
passerelle_logins{network="telegram",state="transient_disconnect"} 1
passerelle_logins{network="telegram",state="unknown"} 0
passerelle_logins{network="telegram",state="unknown_error"} 0
passerelle_logins{network="whatsapp",state="bad_credentials"} 1
passerelle_logins{network="whatsapp",state="connected"} 0
passerelle_logins{network="whatsapp",state="connecting"} 1
passerelle_logins{network="whatsapp",state="logged_out"} 1
passerelle_logins{network="whatsapp",state="transient_disconnect"} 0
passerelle_logins{network="whatsapp",state="unknown"} 1
passerelle_logins{network="whatsapp",state="unknown_error"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), NameLogins); err != nil {
		t.Error(err)
	}
	// A login reconnects: the gauges follow at the next scrape.
	logins[2].State = LoginConnected
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(strings.NewReplacer(
		`state="connected"} 2`, `state="connected"} 3`,
		`telegram",state="transient_disconnect"} 1`, `telegram",state="transient_disconnect"} 0`).Replace(want)), NameLogins); err != nil {
		t.Error(err)
	}
}

func TestGovernanceGauges(t *testing.T) {
	clk := newClock()
	m := New(clk, "telegram")
	st := GovernanceStats{Pending: 3, Oldest: t0.Add(-90 * time.Second), Held: 7, AuditEntries: 42}
	var fail error
	if err := m.Register(m.GovernanceCollector(func(context.Context) (GovernanceStats, error) { return st, fail })); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP passerelle_approval_oldest_pending_age_seconds Seconds since the oldest pending approval request was made (0 without any).
# TYPE passerelle_approval_oldest_pending_age_seconds gauge
passerelle_approval_oldest_pending_age_seconds 90
# HELP passerelle_approvals_pending Approval requests waiting for an admin.
# TYPE passerelle_approvals_pending gauge
passerelle_approvals_pending 3
# HELP passerelle_audit_log_entries Entries in the audit log.
# TYPE passerelle_audit_log_entries gauge
passerelle_audit_log_entries 42
# HELP passerelle_held_messages Remote messages held until an approval request is decided and delivered.
# TYPE passerelle_held_messages gauge
passerelle_held_messages 7
`
	names := []string{NameApprovals, NameApprovalAge, NameHeld, NameAuditEntries}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	clk.Advance(time.Minute)
	st = GovernanceStats{Pending: 3, Oldest: t0.Add(-90 * time.Second), Held: 7, AuditEntries: 43}
	want2 := strings.NewReplacer("seconds 90", "seconds 150", "entries 42", "entries 43").Replace(want)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want2), names...); err != nil {
		t.Error(err)
	}
	fail = errors.New("database away")
	if n, err := testutil.GatherAndCount(m.Registry, names...); err != nil || n != 0 {
		t.Errorf("a failed read served %d governance gauges (%v), want none", n, err)
	}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(`
# HELP passerelle_governance_scrape_errors_total Scrapes that could not read the governance gauges.
# TYPE passerelle_governance_scrape_errors_total counter
passerelle_governance_scrape_errors_total 2
`), NameGovernanceErrs); err != nil {
		t.Error(err) // the failed scrape above and this one
	}
}

// TestProfilerOnlyWhenAsked: /debug/pprof/ is served only with Profiling
// (metrics.pprof); a heap profile then comes back.
func TestProfilerOnlyWhenAsked(t *testing.T) {
	m := New(newClock(), "telegram")
	if code, _ := get(t, (&Server{Metrics: m}).Handler(), "/debug/pprof/heap"); code != http.StatusNotFound {
		t.Errorf("profiler served while off: %d", code)
	}
	code, body := get(t, (&Server{Metrics: m, Profiling: true}).Handler(), "/debug/pprof/heap?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("heap profile with profiling on: %d %.80q", code, body)
	}
}

func TestHomeserverEndpointServesCapabilities(t *testing.T) {
	known := false
	s := &Server{Metrics: New(nil), Capabilities: func() (any, bool) {
		return map[string]string{"latest": "v1.2"}, known
	}}
	h := s.Handler()
	if code, _ := get(t, h, "/homeserver"); code != http.StatusServiceUnavailable {
		t.Errorf("/homeserver before detection = %d, want 503", code)
	}
	known = true
	code, body := get(t, h, "/homeserver")
	if code != http.StatusOK || !strings.Contains(body, `"latest":"v1.2"`) {
		t.Errorf("/homeserver = %d %s, want 200 with the report", code, body)
	}
	if code, _ = get(t, (&Server{Metrics: New(nil)}).Handler(), "/homeserver"); code != http.StatusServiceUnavailable {
		t.Errorf("/homeserver without capabilities = %d, want 503", code)
	}
}
