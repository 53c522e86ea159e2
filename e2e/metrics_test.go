package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// scrape returns the samples of /metrics by series ("name{labels}").
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// readiness asks /ready: its status and body.
func readiness(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err = json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/ready body: %v", err)
	}
	return resp.StatusCode, body
}

// waitReady polls /ready until it answers want, within timeout.
func waitReady(t *testing.T, base string, want int, timeout time.Duration) (time.Duration, map[string]any) {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := readiness(t, base)
		if code == want {
			return time.Since(start), body
		}
		if time.Since(start) > timeout {
			t.Fatalf("/ready answered %d for %s, want %d; last body %v", code, timeout, want, body)
		}
		<-tick.C
	}
}

// TestMetricsAndReady: with network.metrics on, the gateway serves /metrics,
// /health and /ready on loopback. After a staff member's Telegram login,
// five messages each way move the message counters and the latency
// histograms by exactly five; /ready answers 200 with the login connected,
// 503 within seconds of the homeserver stopping, and 200 again once it is
// back.
func TestMetricsAndReady(t *testing.T) {
	tg := NewTelegramSim(t, tgsim.Options{})
	staff, contact := telegramWorld(t, tg, "+15550141", "")
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := NewStack(t, StackOptions{TelegramSim: tg, Users: []string{"sam"}, GatewayPatch: func(doc *stack.YAMLDoc) error {
		if err := doc.Set("network.metrics.enabled", true); err != nil {
			return err
		}
		return doc.Set("network.metrics.listen", fmt.Sprintf("127.0.0.1:%d", port))
	}})
	sam := s.User("sam")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/health = %d, want 200", resp.StatusCode)
	}

	mgmt, _ := s.BotRoom(sam)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550141")

	if _, err = tg.SendMessage(contact.ID, staff.ID, "hello from Telegram", nil); err != nil {
		t.Fatal(err)
	}
	room, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err := sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: "hello from Telegram"})
	if err != nil {
		t.Fatal(err)
	}
	ghost := first.Sender

	_, body := waitReady(t, base, http.StatusOK, 30*time.Second)
	logins, _ := body["logins"].(map[string]any)
	if tgLogins, _ := logins["telegram"].(map[string]any); tgLogins["connected"] != float64(1) {
		t.Errorf("/ready logins = %v, want telegram: 1 connected", logins)
	}

	const (
		inMsg    = `passerelle_messages_bridged_total{direction="to_matrix",kind="message",network="telegram"}`
		outMsg   = `passerelle_messages_bridged_total{direction="to_remote",kind="message",network="telegram"}`
		inLat    = `passerelle_bridge_latency_seconds_count{direction="to_matrix",network="telegram"}`
		outLat   = `passerelle_bridge_latency_seconds_count{direction="to_remote",network="telegram"}`
		loginsOK = `passerelle_logins{network="telegram",state="connected"}`
	)
	before := scrape(t, base)
	// The first message opened the portal: it came in with the chat's
	// history, and its live copy was then ignored as already bridged.
	if n := before[`passerelle_messages_backfilled_total{network="telegram"}`] + before[inMsg]; n < 1 {
		t.Errorf("the first message is counted neither as history nor as live: %v", n)
	}
	if before[loginsOK] != 1 {
		t.Errorf("%s = %v, want 1", loginsOK, before[loginsOK])
	}

	incoming := numbered("metrics inbound %d", 5)
	outgoing := numbered("metrics outbound %d", 5)
	for i := range 5 {
		if _, err = tg.SendMessage(contact.ID, staff.ID, incoming[i], nil); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.Send(ctx, room.RoomID, outgoing[i]); err != nil {
			t.Fatal(err)
		}
	}
	got := waitBodies(ctx, t, sam, room.RoomID, ghost, 2*time.Minute, incoming)
	exactlyOnce(t, "inbound messages", got, incoming)
	// Wait until the counters show all ten (a send is counted once the
	// connector has sent it), then check that they moved by exactly five.
	deadline := time.Now().Add(time.Minute)
	var after map[string]float64
	for {
		after = scrape(t, base)
		if (after[inMsg]-before[inMsg] >= 5 && after[outMsg]-before[outMsg] >= 5) || time.Now().After(deadline) {
			break
		}
		<-time.After(200 * time.Millisecond)
	}
	for _, series := range []string{inMsg, outMsg, inLat, outLat} {
		if moved := after[series] - before[series]; moved != 5 {
			t.Errorf("%s moved by %v, want 5", series, moved)
		}
	}
	var toTelegram []string
	for _, m := range tg.Messages(staff.ID, contact.ID) {
		if m.From == staff.ID {
			toTelegram = append(toTelegram, m.Text)
		}
	}
	exactlyOnce(t, "outbound messages on Telegram", toTelegram, outgoing)
	t.Logf("counters moved by 5 each way; latency sums: to_matrix %.3f s, to_remote %.3f s for 5 messages",
		after[`passerelle_bridge_latency_seconds_sum{direction="to_matrix",network="telegram"}`]-before[`passerelle_bridge_latency_seconds_sum{direction="to_matrix",network="telegram"}`],
		after[`passerelle_bridge_latency_seconds_sum{direction="to_remote",network="telegram"}`]-before[`passerelle_bridge_latency_seconds_sum{direction="to_remote",network="telegram"}`])
	for _, series := range []string{`go_sql_open_connections{db_name="passerelle"}`, "passerelle_audit_log_entries", "passerelle_approvals_pending", "process_resident_memory_bytes"} {
		if _, ok := after[series]; !ok {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	// Every Matrix event of the conversation handled: the inbox is empty.
	if v, ok := after["passerelle_matrix_inbox_events"]; !ok || v != 0 {
		t.Errorf("passerelle_matrix_inbox_events = %v (present %v) once the conversation was bridged, want 0", v, ok)
	}

	// The homeserver stops: /ready says so within seconds.
	if err = s.Dendrite.Pause(); err != nil {
		t.Fatalf("stopping Dendrite: %v", err)
	}
	took, body := waitReady(t, base, http.StatusServiceUnavailable, 15*time.Second)
	t.Logf("/ready answered 503 %s after Dendrite stopped", took.Round(time.Millisecond))
	checks, _ := body["checks"].(map[string]any)
	if hs, _ := checks["homeserver"].(map[string]any); hs["ok"] != false {
		t.Errorf("/ready checks = %v, want the homeserver check failing", checks)
	}
	if err = s.Dendrite.Resume(ctx); err != nil {
		t.Fatalf("restarting Dendrite: %v", err)
	}
	took, _ = waitReady(t, base, http.StatusOK, 30*time.Second)
	t.Logf("/ready answered 200 %s after Dendrite was back", took.Round(time.Millisecond))
}

// TestBadLoginNoticeAndGovernanceGauges: with approval of new chats on, a
// new contact's message waits for an admin: /metrics shows one approval
// pending and one held message. Then Telegram ends the staff member's
// session (revoked from another device while the gateway restarts): the
// governance admin room gets
// one notice naming the login, /metrics counts the login as
// bad_credentials, and /ready still answers 200 (a bad login is a known
// state, not an unready gateway).
func TestBadLoginNoticeAndGovernanceGauges(t *testing.T) {
	tg := NewTelegramSim(t, tgsim.Options{})
	staff, contact := telegramWorld(t, tg, "+15550142", "")
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	const admin = "gina"
	s := NewStack(t, StackOptions{TelegramSim: tg, Users: []string{admin, "sam"}, GatewayPatch: func(doc *stack.YAMLDoc) error {
		for k, v := range map[string]any{
			"network.metrics.enabled":         true,
			"network.metrics.listen":          fmt.Sprintf("127.0.0.1:%d", port),
			"network.governance.default_mode": "approval",
			"network.governance.admins":       []string{"@" + admin + ":localhost"},
			"network.governance.approval_ttl": "72h",
		} {
			if err := doc.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	}})
	sam, gina := s.User("sam"), s.User(admin)
	ctx := s.Ctx()
	adminRoom := s.AdminRoom(gina)

	mgmt, _ := s.BotRoom(sam)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550142")

	// A new contact writes: an approval request, the message held.
	since := time.Now()
	if _, err = tg.SendMessage(contact.ID, staff.ID, "hello, may I?", nil); err != nil {
		t.Fatal(err)
	}
	if _, err = gina.WaitMessage(ctx, adminRoom, MessageFilter{Sender: s.BotID, BodyContains: "Alice Outside", Since: since}); err != nil {
		t.Fatalf("no approval request in the admin room: %v", err)
	}
	m := scrape(t, base)
	for series, want := range map[string]float64{
		"passerelle_approvals_pending":                            1,
		"passerelle_held_messages":                                1,
		`passerelle_logins{network="telegram",state="connected"}`: 1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	if age := m["passerelle_approval_oldest_pending_age_seconds"]; age <= 0 || age > time.Since(since).Seconds()+1 {
		t.Errorf("oldest pending age %v s, want within the %v since the message", age, time.Since(since))
	}
	if m["passerelle_audit_log_entries"] < 2 {
		t.Errorf("audit log entries = %v, want the login and the request at least", m["passerelle_audit_log_entries"])
	}

	// Telegram ends the session (from another device) while the gateway
	// is being restarted: it finds the session gone when it connects. (A
	// revocation while connected: TestReplacedAndRevokedLogins.)
	if err = s.Gateway.Stop(); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if n := tg.RevokeAuthorizations(staff.ID); n == 0 {
		t.Fatal("the simulator had no authorization to revoke")
	}
	if err = s.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	notice, err := gina.WaitMessage(ctx, adminRoom, MessageFilter{Sender: s.BotID, BodyContains: "Telegram login of @sam:localhost", Since: revoked, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatalf("no bad-login notice in the admin room: %v", err)
	}
	t.Logf("bad-login notice %s after the session was revoked: %q", time.Since(revoked).Round(time.Millisecond), notice.Body())
	if !strings.Contains(notice.Body(), "bad credentials") || !strings.Contains(notice.Body(), "log in again") {
		t.Errorf("notice %q does not say the login needs a new log-in", notice.Body())
	}
	m = scrape(t, base)
	if got := m[`passerelle_logins{network="telegram",state="bad_credentials"}`]; got != 1 {
		t.Errorf("bad_credentials logins = %v, want 1", got)
	}
	if code, body := readiness(t, base); code != http.StatusOK {
		t.Errorf("/ready = %d %v with a bad login, want 200", code, body)
	}
}
