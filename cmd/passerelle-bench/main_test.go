package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/e2e"
)

// needTools skips when the js client is not installed, outside CI only:
// under CI=true scripts/test installs it and its absence fails.
func needTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the benchmark's short mode runs the whole stack; skipped under -short")
	}
	if err := e2e.CheckClientInstalled(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestBenchShort runs the command's short mode (-short: one repetition;
// 10 messages instead of its 20) through the whole stack with two portals, both directions,
// and a burst and a paced run of each, and checks what an operator reads:
// the machine, a table with every column and a row per bridge and
// scenario, every message delivered (decrypted by the Matrix client, or
// received by the simulated contact), figures that are all measured (> 0),
// each scenario's ratios to the bare appservice and stock bridgev2, and the
// same in the JSON file. No timing is asserted.
func TestBenchShort(t *testing.T) {
	needTools(t)
	o, err := parseFlags([]string{"-short", "-portals", "2", "-direction", "r2m,m2r", "-rate", "0,20", "-idle", "500ms",
		"-json", filepath.Join(t.TempDir(), "bench.json"), "-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 20 || o.reps != 1 {
		t.Fatalf("-short gives -n %d -reps %d, want 20 and 1", o.n, o.reps)
	}
	// Four scenarios of three rows: 10 messages each keep the test short.
	rep, out, err := runTen(t, o)
	if err != nil {
		logs := filepath.Join(o.dir, "gateway", "gateway.stdout.log")
		if data, rerr := os.ReadFile(logs); rerr == nil {
			t.Logf("gateway log tail:\n%s", tailLines(string(data), 60))
		}
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "machine: ") || rep.Machine.Cores < 1 {
		t.Errorf("no machine line, or %d cores", rep.Machine.Cores)
	}
	if !strings.Contains(text, "coordinated omission avoided") || !strings.Contains(text, "one ghost in K rooms") {
		t.Error("the output does not say how paced latency is measured, or what the bare appservice's K rooms are")
	}
	var tableHeader string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "scenario ") {
			tableHeader = line
		}
	}
	for _, c := range columns {
		if !strings.Contains(tableHeader, c.Header) {
			t.Errorf("the table has no %q column: %q", c.Header, tableHeader)
		}
	}
	wantGroups := []string{"r2m burst K=2", "r2m paced 20/s K=2", "m2r burst K=2", "m2r paced 20/s K=2"}
	if len(rep.Groups) != len(wantGroups) || len(rep.Scenarios) != 3*len(wantGroups) {
		t.Fatalf("%d groups, %d rows; want %d groups of Passerelle, the bare appservice and stock bridgev2", len(rep.Groups), len(rep.Scenarios), len(wantGroups))
	}
	rows := map[string]*scenarioResult{}
	for _, s := range rep.Scenarios {
		rows[s.Name] = s
	}
	for gi, g := range rep.Groups {
		if g.Label != wantGroups[gi] || g.Portals != 2 || len(g.Rows) != 3 {
			t.Errorf("group %d: %q with %d portals and rows %v, want %q with 2 portals and 3 rows", gi, g.Label, g.Portals, g.Rows, wantGroups[gi])
			continue
		}
		for ri, prefix := range []string{"telegram DM encrypted ", "bare appservice encrypted ", "stock bridgev2 encrypted "} {
			name := g.Rows[ri]
			s := rows[name]
			if s == nil || name != prefix+g.Label {
				t.Errorf("row %q, want %q", name, prefix+g.Label)
				continue
			}
			if !strings.Contains(text, "\n"+name+" ") {
				t.Errorf("no table row for %q", name)
			}
			if len(s.Reps) != 1 || s.Reps[0].Messages != 10 || s.Reps[0].Seen != 10 {
				t.Errorf("%s: %+v, want one repetition with the 10 messages delivered", name, s.Reps)
			}
			for _, c := range columns {
				if s.na(c.Key) {
					continue
				}
				if v := s.Sum[c.Key].Median; !(v > 0) {
					t.Errorf("%s %s = %v, want a measured figure > 0", name, c.Header, v)
				}
			}
			// The gateway's added latency is measured Matrix→remote, for
			// both bridges.
			added := !s.na("added_p50_ms") && !s.na("txn_answer_p99_ms")
			if want := g.Direction == dirM2R && ri != 1; added != want {
				t.Errorf("%s: added latency measured %v, want %v", name, added, want)
			}
			if ri != 1 && s.na("gateway_cpu_ms_per_msg") {
				t.Errorf("%s leaves out the gateway's CPU", name)
			}
		}
		for _, key := range []string{"homeserver_cpu_passerelle_over_bare", "homeserver_cpu_passerelle_over_stock", "gateway_cpu_passerelle_over_stock"} {
			if r := g.Ratios[key].Median; !(r > 0) || rep.Ratios[g.Label+": "+key].Median != r {
				t.Errorf("%s: ratio %s = %v, want > 0 and in the report's ratios", g.Label, key, r)
			}
		}
		if !strings.Contains(text, "Passerelle "+g.Label+": HS CPU / bare ") {
			t.Errorf("the ratios of %s are not printed", g.Label)
		}
	}
	// The gateway's own account of its homeserver requests: at least one
	// event sent per bridged message.
	sends := 0.0
	for _, rc := range rep.Scenarios[0].Reps[0].GatewayRequests {
		if strings.Contains(rc.Request, "PUT ") && strings.Contains(rc.Request, "/send/") {
			sends += rc.PerMsg
		}
	}
	if sends < 1 || !strings.Contains(text, "requests per bridged message") {
		t.Errorf("gateway requests per message %+v, want at least one /send per message, printed", rep.Scenarios[0].Reps[0].GatewayRequests)
	}
	// Stock bridgev2 is a bridge too: its own requests, at least one /send
	// per message.
	stockSends := 0.0
	for _, rc := range rep.Scenarios[2].Reps[0].GatewayRequests {
		if strings.Contains(rc.Request, "PUT ") && strings.Contains(rc.Request, "/send/") {
			stockSends += rc.PerMsg
		}
	}
	if stockSends < 1 {
		t.Errorf("stock bridgev2 requests per message %+v, want at least one /send per message", rep.Scenarios[2].Reps[0].GatewayRequests)
	}
	data, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err = json.Unmarshal(data, &back); err != nil {
		t.Fatalf("the JSON file does not parse: %v", err)
	}
	for _, key := range []string{"machine", "scenarios", "groups", "ratios", "messages_per_burst", "repetitions", "portals", "directions", "rates_msgs_per_s"} {
		if _, ok := back[key]; !ok {
			t.Errorf("the JSON file has no %q", key)
		}
	}
	for _, key := range []string{"msgs_per_s", "homeserver_cpu_ms_per_msg", "gateway_cpu_ms_per_msg", "latency_p50_ms", "latency_p99_ms", "added_latency_p50_ms", "added_latency_p99_ms", "txn_answer_p50_ms", "txn_answer_p99_ms", "gateway_peak_rss_mb"} {
		if !strings.Contains(string(data), `"`+key+`"`) {
			t.Errorf("the JSON file has no %q", key)
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{12, 10, 8})
	if s.Median != 10 || s.Min != 8 || s.Max != 12 || s.Spread != 40 {
		t.Fatalf("summary %+v, want median 10, 8..12, spread 40%%", s)
	}
	if s = summarize([]float64{4, 2}); s.Median != 3 {
		t.Fatalf("median of 2 and 4: %v", s.Median)
	}
	sorted := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(sorted, 50); p != 5 {
		t.Fatalf("p50 %v, want 5", p)
	}
	if p := percentile(sorted, 99); p != 10 {
		t.Fatalf("p99 %v, want 10", p)
	}
	noisy := &scenarioResult{Name: "x", Reps: []repResult{{MsgsPerSec: 10}, {MsgsPerSec: 13}}}
	noisy.summarize()
	if w := noisy.noisy(maxSpread); len(w) == 0 || !strings.Contains(w[0], "msgs/s") {
		t.Fatalf("a 26%% spread raised no warning: %v", w)
	}
}

// TestPace checks the open loop: every message is sent, at its scheduled
// time or later, and a send that blocks delays none of the next ones.
func TestPace(t *testing.T) {
	start := time.Now()
	var mu sync.Mutex
	sent := map[int]time.Time{}
	release := make(chan struct{})
	err := pace(context.Background(), start, 5, 1000, func(i int, at time.Time) error {
		if want := start.Add(time.Duration(i) * time.Millisecond); !at.Equal(want) {
			t.Errorf("message %d scheduled at %v, want %v", i, at.Sub(start), want.Sub(start))
		}
		mu.Lock()
		sent[i] = time.Now()
		n := len(sent)
		mu.Unlock()
		if n == 5 {
			close(release)
		}
		if i == 0 {
			<-release // blocks until the last message has been sent
		}
		return nil
	})
	if err != nil || len(sent) != 5 {
		t.Fatalf("%d sent, %v", len(sent), err)
	}
	for i, at := range sent {
		if at.Before(start.Add(time.Duration(i) * time.Millisecond)) {
			t.Errorf("message %d sent before its time", i)
		}
	}
}

func TestBurstBody(t *testing.T) {
	body := burstBody("p2", 41)
	i, sent, ok := parseBurstBody("p2", body)
	if !ok || i != 41 || sent <= 0 || time.Since(time.UnixMicro(sent)) > time.Minute {
		t.Fatalf("%q read back as %d %d %v", body, i, sent, ok)
	}
	if _, _, ok = parseBurstBody("p1", body); ok {
		t.Fatal("another repetition's message was taken for this one")
	}
	if _, _, ok = parseBurstBody("p2", "bench p2 x 1"); ok {
		t.Fatal("a malformed body was accepted")
	}
}

// TestOvertaken: a flood's messages that come after one sent later are
// counted, other messages and repetitions left out.
func TestOvertaken(t *testing.T) {
	b := func(i int) string { return burstBody("f1", i) }
	for _, tc := range []struct {
		bodies []string
		want   int
	}{
		{[]string{b(0), b(1), "hello", b(2), burstBody("f2", 0)}, 0},
		{[]string{b(0), b(2), b(1), b(3)}, 1},
		{[]string{b(3), b(0), b(1), b(2)}, 3},
		{nil, 0},
	} {
		if got := overtaken("f1", tc.bodies); got != tc.want {
			t.Errorf("overtaken(%q) = %d, want %d", tc.bodies, got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.n != 1000 || o.reps != 3 || len(o.portalList) != 1 || o.portalList[0] != 1 ||
		len(o.dirs) != 1 || o.dirs[0] != dirR2M || len(o.rates) != 1 || o.rates[0] != 0 {
		t.Fatalf("defaults: %+v %v, want 1000 messages, 3 repetitions, one portal, remote→Matrix, a burst", o, err)
	}
	o, err = parseFlags([]string{"-portals", "1,10,100", "-direction", "r2m,m2r", "-rate", "0,10"})
	if err != nil || len(o.portalList) != 3 || o.portalList[2] != 100 || len(o.dirs) != 2 || o.dirs[1] != dirM2R || len(o.rates) != 2 || o.rates[1] != 10 {
		t.Fatalf("lists: %+v %v", o, err)
	}
	if o, err = parseFlags([]string{"-scenario", "coldstart"}); err != nil || o.portals != 10000 {
		t.Fatalf("coldstart default portals %d, %v; want 10000", o.portals, err)
	}
	for _, bad := range [][]string{
		{"-portals", "0"}, {"-portals", "10,1"}, {"-portals", "x"}, {"-direction", "sideways"},
		{"-rate", "-1"}, {"-rate", "fast"}, {"-scenario", "coldstart", "-portals", "1,2"},
	} {
		if _, err = parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err = parseFlags([]string{"-n", "0"}); err == nil {
		t.Fatal("-n 0 accepted")
	}
	if _, err = parseFlags([]string{"extra"}); err == nil {
		t.Fatal("a stray argument accepted")
	}
	if _, err = parseFlags([]string{"-scenario", "warm"}); err == nil {
		t.Fatal("an unknown scenario accepted")
	}
	if _, err = parseFlags([]string{"-scenario", "coldstart", "-logins", "0"}); err == nil {
		t.Fatal("-logins 0 accepted")
	}
}

func TestCountRequests(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"debug","method":"GET","url":"http://127.0.0.1:1/_matrix/client/v3/sync?filter=1&since=s1","time":"2026-01-01T00:00:01Z","message":"Request completed"}`,
		`{"level":"debug","method":"GET","url":"http://127.0.0.1:1/_matrix/client/v3/sync?filter=1&since=s2","time":"2026-01-01T00:00:02Z","message":"Request completed"}`,
		`{"level":"debug","method":"PUT","url":"http://127.0.0.1:1/_matrix/client/v3/rooms/%21abc:localhost/send/m.room.encrypted/passerelle.x1?user_id=%40passerelle_telegram.1%3Alocalhost","time":"2026-01-01T00:00:02Z","message":"Request completed"}`,
		`{"level":"debug","method":"PUT","url":"http://127.0.0.1:1/_matrix/client/v3/rooms/%21abc:localhost/send/m.room.encrypted/passerelle.x2","time":"2026-01-01T00:00:03Z","message":"Request completed"}`,
		`{"level":"debug","method":"GET","url":"http://127.0.0.1:1/_matrix/client/v3/sync","time":"2026-01-01T00:00:09Z","message":"Request completed"}`,
		`{"level":"info","time":"2026-01-01T00:00:02Z","message":"Something else"}`,
		`not json`,
	}, "\n")
	from, _ := time.Parse(time.RFC3339, "2026-01-01T00:00:00Z")
	to, _ := time.Parse(time.RFC3339, "2026-01-01T00:00:05Z")
	got, err := countRequests(strings.NewReader(log), from, to, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []requestCount{
		{"GET /_matrix/client/v3/sync", 1},
		{"PUT /_matrix/client/v3/rooms/{room}/send/m.room.encrypted/{txn}", 1},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
}

// TestColdStartShort runs the cold-start scenario's short mode (5 logins,
// 200 portals, 100 loaded) through the whole stack and checks what an
// operator reads: the gateway became ready and its bot answered after the
// start, every login connected, no more connections at once than there
// are logins, the idle memory rows measured, and the same in the JSON file.
// No timing is asserted.
func TestColdStartShort(t *testing.T) {
	o, rep, text := runColdShort(t)
	if o.logins != 5 || o.portals != 200 || o.load != 100 {
		t.Fatalf("-short gives %d logins, %d portals, %d loaded; want 5, 200, 100", o.logins, o.portals, o.load)
	}
	checkColdStart(t, o, rep, text, "Telegram")
	if !strings.Contains(text, "per loaded portal") {
		t.Error("the output has no per loaded portal row")
	}
	if m := rep.IdleLoaded; !(m.RSSKiB > 0) || !(m.HeapInuseKiB > 0) || !(m.Goroutines > 0) {
		t.Errorf("idle memory with the portals loaded not measured: %+v", m)
	}
	back := coldJSON(t, o)
	if _, ok := back["per_loaded_portal"]; !ok {
		t.Error("the JSON file has no \"per_loaded_portal\"")
	}
}

// TestColdStartShortWhatsApp: the same with -network whatsapp: 5 WhatsApp
// accounts linked by the bot's QR code, the gateway restarted on them;
// the same readiness, connections and memory per login, and no portal.
func TestColdStartShortWhatsApp(t *testing.T) {
	o, rep, text := runColdShort(t, "-network", "whatsapp")
	if o.logins != 5 || o.portals != 0 || o.load != 0 {
		t.Fatalf("-short -network whatsapp gives %d logins, %d portals, %d loaded; want 5, 0, 0", o.logins, o.portals, o.load)
	}
	checkColdStart(t, o, rep, text, "WhatsApp")
	if strings.Contains(text, "per loaded portal") {
		t.Error("a per loaded portal row without portals")
	}
	if back := coldJSON(t, o); back["network"] != "whatsapp" {
		t.Errorf("the JSON file's network is %v, want whatsapp", back["network"])
	}
}

// runColdShort runs the cold-start scenario's short mode with extra flags.
func runColdShort(t *testing.T, args ...string) (options, *coldReport, string) {
	t.Helper()
	needTools(t)
	o, err := parseFlags(append([]string{"-scenario", "coldstart", "-short", "-json", filepath.Join(t.TempDir(), "cold.json"), "-dir", t.TempDir()}, args...))
	if err != nil {
		t.Fatal(err)
	}
	if bin := os.Getenv("PASSERELLE_E2E_GATEWAY_BIN"); bin != "" {
		o.gatewayBin = bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := runCold(ctx, o, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		if data, rerr := os.ReadFile(filepath.Join(o.dir, "gateway", "gateway.stdout.log")); rerr == nil {
			t.Logf("gateway log tail:\n%s", tailLines(string(data), 60))
		}
		t.Fatal(err)
	}
	return o, rep, out.String()
}

// checkColdStart checks what both networks' cold starts print.
func checkColdStart(t *testing.T, o options, rep *coldReport, text, network string) {
	t.Helper()
	for _, want := range []string{"start → /ready", "start → bot answered", "all logins connected", "per login", "target ", network + " logins", "new " + network + " connections"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output has no %q", want)
		}
	}
	if !(rep.StartToReadyMs > 0) || rep.StartToAnswerMs < rep.StartToReadyMs || rep.StartToConnectedMs <= 0 {
		t.Errorf("start → ready %v ms, → answer %v ms, → connected %v ms: want ready first, then the answer", rep.StartToReadyMs, rep.StartToAnswerMs, rep.StartToConnectedMs)
	}
	total := 0
	for _, n := range rep.NewConnsPer100ms {
		total += n
	}
	if total < o.logins || rep.MaxNewConnsPer100ms < 1 || rep.MaxNewConnsPer100ms > total {
		t.Errorf("the simulator saw %d new connections (at most %d in 100 ms), want at least one per login (%d)", total, rep.MaxNewConnsPer100ms, o.logins)
	}
	for name, m := range map[string]memSample{"empty": rep.IdleEmpty, "logins": rep.IdleLogins} {
		if !(m.RSSKiB > 0) || !(m.HeapInuseKiB > 0) || !(m.Goroutines > 0) {
			t.Errorf("idle memory %s not measured: %+v", name, m)
		}
	}
	if rep.IdleLogins.Goroutines <= rep.IdleEmpty.Goroutines {
		t.Errorf("%v goroutines with %d logins connected, %v without: the logins did not run", rep.IdleLogins.Goroutines, o.logins, rep.IdleEmpty.Goroutines)
	}
}

// coldJSON reads the cold start's JSON file and checks the keys both
// networks write.
func coldJSON(t *testing.T, o options) map[string]any {
	t.Helper()
	data, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err = json.Unmarshal(data, &back); err != nil {
		t.Fatalf("the JSON file does not parse: %v", err)
	}
	for _, key := range []string{"machine", "start_to_ready_ms", "start_to_bot_answer_ms", "new_connections_per_100ms", "per_login", "targets"} {
		if _, ok := back[key]; !ok {
			t.Errorf("the JSON file has no %q", key)
		}
	}
	return back
}

func TestParseEstablished(t *testing.T) {
	table := strings.Join([]string{
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1", // listening
		"   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1", // accepted
		"   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1", // the client's end
		"   3: 0100007F:1F90 0100007F:C351 06 00000000:00000000 00:00000000 00000000     0        0 4 1", // time wait
		"   4: 0100007F:1F91 0100007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 5 1", // another port
	}, "\n")
	got := parseEstablished(bufio.NewScanner(strings.NewReader(table)), 8080)
	if len(got) != 1 || got[0] != "0100007F:C350" {
		t.Fatalf("established peers of port 8080: %v, want the one accepted connection", got)
	}
}

func TestPromValues(t *testing.T) {
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_memstats_heap_inuse_bytes 1.2e+07\ngo_goroutines_other 7\nx{a=\"b\"} 1\n"
	v := promValues(text, "go_goroutines", "go_memstats_heap_inuse_bytes")
	if v["go_goroutines"] != 42 || v["go_memstats_heap_inuse_bytes"] != 1.2e7 {
		t.Fatalf("values %v", v)
	}
}

// runTen runs o with 10 messages per burst (and the CI's gateway binary,
// if it built one), logging the output.
func runTen(t *testing.T, o options) (*report, *bytes.Buffer, error) {
	t.Helper()
	o.n = 10
	if bin := os.Getenv("PASSERELLE_E2E_GATEWAY_BIN"); bin != "" {
		o.gatewayBin = bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := run(ctx, o, &out)
	t.Logf("output:\n%s", out.String())
	return rep, &out, err
}

// TestBenchShortWhatsApp: the same short run with WhatsApp on Passerelle's
// side (-network whatsapp): the staff member links by QR code, and two
// simulated WhatsApp contacts send (r2m) and receive (m2r) every message;
// each row has its figures and the ratios to the two references.
func TestBenchShortWhatsApp(t *testing.T) {
	needTools(t)
	o, err := parseFlags([]string{"-short", "-network", "whatsapp", "-portals", "2", "-direction", "r2m,m2r", "-idle", "500ms", "-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep, out, err := runTen(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Network != "whatsapp" || !strings.Contains(out.String(), "Passerelle bridges whatsapp") {
		t.Errorf("the run does not say it bridged WhatsApp: network %q", rep.Network)
	}
	for _, label := range []string{"r2m burst K=2", "m2r burst K=2"} {
		var s *scenarioResult
		for _, row := range rep.Scenarios {
			if row.Name == "whatsapp DM encrypted "+label {
				s = row
			}
		}
		if s == nil {
			t.Errorf("no WhatsApp row for %s", label)
			continue
		}
		if len(s.Reps) != 1 || s.Reps[0].Seen != 10 {
			t.Errorf("%s: %+v, want the 10 messages delivered", s.Name, s.Reps)
		}
		if v := s.Sum["gateway_cpu_ms_per_msg"].Median; !(v > 0) {
			t.Errorf("%s: gateway CPU %v, want a measured figure", s.Name, v)
		}
		if r := rep.Ratios[label+": gateway_cpu_passerelle_over_stock"].Median; !(r > 0) {
			t.Errorf("%s: no gateway CPU ratio to stock bridgev2", label)
		}
	}
}

// TestNetworkFlag: -network takes telegram (the default) or whatsapp, and
// whatsapp for every scenario but the cold start.
func TestNetworkFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // network, or "" for an error
	}{
		{nil, "telegram"},
		{[]string{"-network", "whatsapp"}, "whatsapp"},
		{[]string{"-network", "signal"}, ""},
		{[]string{"-network", "whatsapp", "-scenario", "coldstart"}, "whatsapp"},
		{[]string{"-network", "whatsapp", "-scenario", "coldstart", "-portals", "10"}, ""},
		{[]string{"-network", "whatsapp", "-scenario", "creation"}, "whatsapp"},
		{[]string{"-network", "whatsapp", "-scenario", "flood"}, "whatsapp"},
	} {
		o, err := parseFlags(tc.args)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%v: accepted", tc.args)
			}
		} else if err != nil || o.network != tc.want {
			t.Errorf("%v: network %q, %v; want %q", tc.args, o.network, err, tc.want)
		}
	}
}
