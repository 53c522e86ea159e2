package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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

// TestBenchShort runs the command's short mode (-short: 20 messages, one
// repetition) through the whole stack and checks what an operator reads:
// the machine, a table with every column and both rows, figures that are
// all measured (> 0), the ratio to the bare appservice, and the same in the
// JSON file. No timing is asserted.
func TestBenchShort(t *testing.T) {
	needTools(t)
	o, err := parseFlags([]string{"-short", "-json", filepath.Join(t.TempDir(), "bench.json"), "-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 20 || o.reps != 1 {
		t.Fatalf("-short gives -n %d -reps %d, want 20 and 1", o.n, o.reps)
	}
	if bin := os.Getenv("PASSERELLE_E2E_GATEWAY_BIN"); bin != "" {
		o.gatewayBin = bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := run(ctx, o, &out)
	t.Logf("output:\n%s", out.String())
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
	if len(rep.Scenarios) != 3 {
		t.Fatalf("%d scenarios, want Passerelle, the bare appservice and stock bridgev2", len(rep.Scenarios))
	}
	if len(rep.Scenarios[2].NotApplicable) != 0 || !strings.HasPrefix(rep.Scenarios[2].Name, "stock bridgev2") {
		t.Errorf("third row %q leaves out %v, want stock bridgev2 with every figure", rep.Scenarios[2].Name, rep.Scenarios[2].NotApplicable)
	}
	for _, s := range rep.Scenarios {
		if !strings.Contains(text, "\n"+s.Name+" ") {
			t.Errorf("no table row for %q", s.Name)
		}
		if len(s.Reps) != 1 || s.Reps[0].Seen != 20 {
			t.Errorf("%s: %+v, want one repetition with the 20 messages decrypted", s.Name, s.Reps)
		}
		for _, c := range columns {
			if s.na(c.Key) {
				continue
			}
			if v := s.Sum[c.Key].Median; !(v > 0) {
				t.Errorf("%s %s = %v, want a measured figure > 0", s.Name, c.Header, v)
			}
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
	if len(rep.Scenarios[0].NotApplicable) != 0 {
		t.Errorf("the Passerelle row leaves out %v", rep.Scenarios[0].NotApplicable)
	}
	if r := rep.Ratios["homeserver_cpu_passerelle_over_bare"].Median; !(r > 0) || !strings.Contains(text, "Passerelle / bare appservice: ") {
		t.Errorf("ratio to the bare appservice %v, or not printed", r)
	}
	// Stock bridgev2 is a bridge too: its own requests, at least one /send
	// per message, and Passerelle's ratios to it, printed.
	stockSends := 0.0
	for _, rc := range rep.Scenarios[2].Reps[0].GatewayRequests {
		if strings.Contains(rc.Request, "PUT ") && strings.Contains(rc.Request, "/send/") {
			stockSends += rc.PerMsg
		}
	}
	if stockSends < 1 {
		t.Errorf("stock bridgev2 requests per message %+v, want at least one /send per message", rep.Scenarios[2].Reps[0].GatewayRequests)
	}
	for key, line := range map[string]string{
		"homeserver_cpu_passerelle_over_stock": "homeserver CPU per message, Passerelle / stock bridgev2: ",
		"gateway_cpu_passerelle_over_stock":    "gateway CPU per message, Passerelle / stock bridgev2: ",
	} {
		if r := rep.Ratios[key].Median; !(r > 0) || !strings.Contains(text, line) {
			t.Errorf("ratio %s = %v, or %q not printed", key, r, line)
		}
	}
	data, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err = json.Unmarshal(data, &back); err != nil {
		t.Fatalf("the JSON file does not parse: %v", err)
	}
	for _, key := range []string{"machine", "scenarios", "ratios", "messages_per_burst", "repetitions"} {
		if _, ok := back[key]; !ok {
			t.Errorf("the JSON file has no %q", key)
		}
	}
	for _, c := range columns {
		if !strings.Contains(string(data), `"`+c.Key+`"`) {
			t.Errorf("the JSON file has no %q", c.Key)
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

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.n != 1000 || o.reps != 3 {
		t.Fatalf("defaults: %+v %v", o, err)
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
	needTools(t)
	o, err := parseFlags([]string{"-scenario", "coldstart", "-short", "-json", filepath.Join(t.TempDir(), "cold.json"), "-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if o.logins != 5 || o.portals != 200 || o.load != 100 {
		t.Fatalf("-short gives %d logins, %d portals, %d loaded; want 5, 200, 100", o.logins, o.portals, o.load)
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
	text := out.String()
	for _, want := range []string{"start → /ready", "start → bot answered", "all logins connected", "per loaded portal", "per login", "target "} {
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
	for name, m := range map[string]memSample{"empty": rep.IdleEmpty, "logins": rep.IdleLogins, "loaded": rep.IdleLoaded} {
		if !(m.RSSKiB > 0) || !(m.HeapInuseKiB > 0) || !(m.Goroutines > 0) {
			t.Errorf("idle memory %s not measured: %+v", name, m)
		}
	}
	if rep.IdleLogins.Goroutines <= rep.IdleEmpty.Goroutines {
		t.Errorf("%v goroutines with %d logins connected, %v without: the logins did not run", rep.IdleLogins.Goroutines, o.logins, rep.IdleEmpty.Goroutines)
	}
	data, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err = json.Unmarshal(data, &back); err != nil {
		t.Fatalf("the JSON file does not parse: %v", err)
	}
	for _, key := range []string{"machine", "start_to_ready_ms", "start_to_bot_answer_ms", "new_connections_per_100ms", "per_login", "per_loaded_portal", "targets"} {
		if _, ok := back[key]; !ok {
			t.Errorf("the JSON file has no %q", key)
		}
	}
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
