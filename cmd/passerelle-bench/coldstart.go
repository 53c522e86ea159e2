package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/e2e"
	"github.com/passerelle/passerelle/internal/memtrim"
	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// Scenario "coldstart": the gateway starts on a database that holds L
// Telegram logins (each with a real MTProto session on the simulator) and
// P DM portals, and the command measures how soon it is ready and
// answering, how the logins connect, and what idle memory each login and
// each loaded portal costs. With -network whatsapp the L logins are
// WhatsApp accounts, each linked once by the bot's QR code before the
// restart (a linked device's keys are made by the pairing, so the harness
// cannot write them itself), and no portal is written: what a portal
// costs once loaded is bridgev2's, measured on Telegram.

// memSample is the gateway's idle memory at one point. The RSS is split
// as the kernel counts it (anonymous memory, mapped files) and the
// anonymous part as the Go runtime explains it: its heap in use, the heap
// it keeps but no longer uses (freed, not yet returned to the kernel:
// slack that a later peak left), the goroutines' stacks; what is left of
// the anonymous RSS is outside Go (cgo: SQLite's page caches) and the
// runtime's own structures.
type memSample struct {
	RSSKiB       float64 `json:"rss_kib"`
	HeapInuseKiB float64 `json:"heap_inuse_kib"`
	Goroutines   float64 `json:"goroutines"`
	RSSAnonKiB   float64 `json:"rss_anon_kib"`
	RSSFileKiB   float64 `json:"rss_file_kib"`
	// HeapKeptKiB is heap idle and not released; StackKiB the stacks.
	HeapKeptKiB float64 `json:"heap_kept_unused_kib"`
	StackKiB    float64 `json:"stack_inuse_kib"`
}

// outsideGoKiB is the anonymous RSS that neither the Go heap (in use or
// kept) nor the stacks explain.
func (m memSample) outsideGoKiB() float64 {
	return m.RSSAnonKiB - m.HeapInuseKiB - m.HeapKeptKiB - m.StackKiB
}

// coldReport is a cold-start run, as written to -json.
type coldReport struct {
	Started  time.Time     `json:"started"`
	Machine  stack.Machine `json:"machine"`
	Dendrite string        `json:"dendrite_version"`
	Network  string        `json:"network"`
	Portals  int           `json:"portals_in_db"`
	Logins   int           `json:"logins_in_db"`
	Loaded   int           `json:"portals_loaded"`
	// SeedSeconds is how long the harness took to log the accounts in
	// and write the database (WhatsApp: to link them through the bot).
	SeedSeconds float64 `json:"seed_s"`
	// From the gateway process's start: the metrics listener's /ready
	// answering 200, the appservice's /_matrix/mau/ready, the bot's answer
	// to a command sent at /ready (as the client decrypted it), and every
	// login connected.
	StartToReadyMs     float64 `json:"start_to_ready_ms"`
	StartToMauReadyMs  float64 `json:"start_to_mau_ready_ms"`
	StartToAnswerMs    float64 `json:"start_to_bot_answer_ms"`
	CommandToAnswerMs  float64 `json:"command_to_bot_answer_ms"`
	StartToConnectedMs float64 `json:"start_to_all_logins_connected_ms"`
	// From the gateway's JSON log (debug level): the command's arrival
	// from the homeserver after the start, and the gateway's time from it
	// to the answer's PUT completed (the homeserver's PUT included).
	StartToCommandInMs float64 `json:"start_to_command_received_ms,omitempty"`
	GatewayCommandMs   float64 `json:"gateway_command_to_answer_put_ms,omitempty"`
	// WarmCommandToAnswerMs is the same command's round trip on the
	// running gateway before the cold start (best of 3): the homeserver's
	// and the client's share of any answer.
	WarmCommandToAnswerMs float64 `json:"warm_command_to_bot_answer_ms"`
	// NewConnsPer100ms are the TCP connections the simulator accepted in
	// each 100 ms from the gateway's start; OpenConns those established.
	NewConnsPer100ms    []int `json:"new_connections_per_100ms"`
	OpenConns           []int `json:"open_connections_per_100ms"`
	MaxNewConnsPer100ms int   `json:"max_new_connections_per_100ms"`
	// Idle memory: fresh gateway without logins or portals; the same
	// database with L logins connected; then with N portals loaded.
	IdleEmpty  memSample `json:"idle_no_logins"`
	IdleLogins memSample `json:"idle_logins"`
	IdleLoaded memSample `json:"idle_portals_loaded"`
	PerLogin   memSample `json:"per_login"`
	PerPortal  memSample `json:"per_loaded_portal"`
	Targets    []string  `json:"targets"`
	Warnings   []string  `json:"warnings,omitempty"`
}

type coldBench struct {
	o          options
	out        io.Writer
	dir        string
	sim        *tgsim.Server
	wa         *whatsAppNet // -network whatsapp
	dendrite   *stack.Dendrite
	gw         *stack.Gateway
	client     *e2e.Client
	botID      string
	mgmt       string
	metricsURL string
	owner      id.UserID
	// lastCommand is the event ID of the last command sent to the bot.
	lastCommand string
	warnings    []string
}

func (b *coldBench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, "# "+format+"\n", args...)
}

func (b *coldBench) close() {
	if b.client != nil {
		_ = b.client.Close()
	}
	if b.gw != nil && b.gw.Running() {
		_ = b.gw.Stop()
	}
	if b.dendrite != nil {
		_ = b.dendrite.Stop()
	}
	if b.sim != nil {
		_ = b.sim.Close()
	}
	if b.wa != nil {
		b.wa.close()
	}
}

func runCold(ctx context.Context, o options, out io.Writer) (*coldReport, error) {
	b := &coldBench{o: o, out: out}
	rep := &coldReport{Started: time.Now().UTC(), Machine: stack.ThisMachine(), Dendrite: stack.DendriteVersion,
		Network: o.network, Portals: o.portals, Logins: o.logins, Loaded: min(o.load, o.portals)}
	var err error
	if b.dir = o.dir; b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "passerelle-bench-"); err != nil {
			return nil, err
		}
		if !o.keep {
			defer os.RemoveAll(b.dir)
		}
	} else if err = os.MkdirAll(b.dir, 0o700); err != nil {
		return nil, err
	}
	defer b.close()
	b.logf("machine: %d cores, %s; cold start with %d %s logins and %d portals in the database", rep.Machine.Cores, rep.Machine.CPUModel, o.logins, networkName(o.network), o.portals)
	if err = b.setUp(ctx); err != nil {
		return nil, err
	}
	if rep.WarmCommandToAnswerMs, err = b.botRoundTrip(ctx); err != nil {
		return nil, err
	}
	if rep.IdleEmpty, err = b.idleMemory(ctx, "empty"); err != nil {
		return nil, err
	}
	b.logf("idle, no logins: RSS %.0f KiB, heap %.0f KiB, %.0f goroutines", rep.IdleEmpty.RSSKiB, rep.IdleEmpty.HeapInuseKiB, rep.IdleEmpty.Goroutines)

	seedStart := time.Now()
	var staff []coldAccount
	var peers []*tgsim.Account
	if b.wa != nil {
		if err = b.linkWhatsApp(ctx, o.logins); err != nil {
			return nil, err
		}
		if err = b.gw.Stop(); err != nil {
			return nil, err
		}
		rep.SeedSeconds = time.Since(seedStart).Seconds()
		b.logf("%d WhatsApp logins linked by QR code in %.1f s", o.logins, rep.SeedSeconds)
	} else {
		if err = b.gw.Stop(); err != nil {
			return nil, err
		}
		contacts := (o.portals + o.logins - 1) / o.logins
		if staff, peers, err = createColdAccounts(ctx, b.sim, o.logins, contacts); err != nil {
			return nil, err
		}
		if err = seedColdDatabase(ctx, filepath.Join(b.gw.Dir, "passerelle.db"), b.gw.ServerName, b.owner, staff, peers, o.portals); err != nil {
			return nil, fmt.Errorf("writing the database: %w", err)
		}
		rep.SeedSeconds = time.Since(seedStart).Seconds()
		b.logf("database written in %.1f s: %d logins with their sessions, %d DM portals over %d contacts", rep.SeedSeconds, o.logins, o.portals, contacts)
	}

	if err = b.coldStart(ctx, rep); err != nil {
		return nil, err
	}
	if rep.IdleLogins, err = b.idleMemory(ctx, "logins"); err != nil {
		return nil, err
	}
	b.logf("idle, %d logins: RSS %.0f KiB, heap %.0f KiB, %.0f goroutines", o.logins, rep.IdleLogins.RSSKiB, rep.IdleLogins.HeapInuseKiB, rep.IdleLogins.Goroutines)

	// Load portals: a contact starts typing in each of the first N DMs.
	// The gateway loads the portal of the chat to show it; no message is
	// stored and no room is created.
	for i := range rep.Loaded {
		staffID, peerID := coldPair(i, staff, peers)
		if err = b.sim.SetTyping(peerID, staffID); err != nil {
			return nil, err
		}
	}
	rep.PerLogin = rep.IdleLogins.minus(rep.IdleEmpty).per(o.logins)
	if rep.Loaded > 0 {
		if err = b.waitLoaded(ctx, rep.Loaded); err != nil {
			return nil, err
		}
		if rep.IdleLoaded, err = b.idleMemory(ctx, "loaded"); err != nil {
			return nil, err
		}
		b.logf("idle, %d portals loaded: RSS %.0f KiB, heap %.0f KiB, %.0f goroutines", rep.Loaded, rep.IdleLoaded.RSSKiB, rep.IdleLoaded.HeapInuseKiB, rep.IdleLoaded.Goroutines)
		rep.PerPortal = rep.IdleLoaded.minus(rep.IdleLogins).per(rep.Loaded)
	}
	rep.Targets = coldTargets(rep)
	rep.Warnings = b.warnings
	printCold(out, rep)
	if o.jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return nil, err
		}
		if err = os.WriteFile(o.jsonPath, append(data, '\n'), 0o644); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func (m memSample) minus(o memSample) memSample {
	return memSample{RSSKiB: m.RSSKiB - o.RSSKiB, HeapInuseKiB: m.HeapInuseKiB - o.HeapInuseKiB, Goroutines: m.Goroutines - o.Goroutines,
		RSSAnonKiB: m.RSSAnonKiB - o.RSSAnonKiB, RSSFileKiB: m.RSSFileKiB - o.RSSFileKiB, HeapKeptKiB: m.HeapKeptKiB - o.HeapKeptKiB, StackKiB: m.StackKiB - o.StackKiB}
}

func (m memSample) per(n int) memSample {
	f := float64(n)
	return memSample{RSSKiB: m.RSSKiB / f, HeapInuseKiB: m.HeapInuseKiB / f, Goroutines: m.Goroutines / f,
		RSSAnonKiB: m.RSSAnonKiB / f, RSSFileKiB: m.RSSFileKiB / f, HeapKeptKiB: m.HeapKeptKiB / f, StackKiB: m.StackKiB / f}
}

func (b *coldBench) setUp(ctx context.Context) error {
	setupCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	binDir, gwBin, sim, err := prepareStack(setupCtx, b.o, b.dir, b.logf, zap.WarnLevel)
	if err != nil {
		return err
	}
	b.sim = sim
	if b.o.network == netWhatsApp {
		if b.wa, err = newWhatsAppNet(new(arrivalLog)); err != nil {
			return err
		}
	}
	hsPort, err := stack.FreePort()
	if err != nil {
		return err
	}
	metricsPort, err := stack.FreePort()
	if err != nil {
		return err
	}
	b.metricsURL = fmt.Sprintf("http://127.0.0.1:%d", metricsPort)
	level := b.o.gatewayLog
	gwOpts := stack.GatewayOptions{
		Binary:        gwBin,
		Dir:           filepath.Join(b.dir, "gateway"),
		HomeserverURL: fmt.Sprintf("http://127.0.0.1:%d", hsPort),
		Telegram:      &stack.TelegramTestServer{DC: b.sim.DC(), Address: b.sim.Addr(), PublicKeyPEM: b.sim.PublicKeyPEM()},
		Patch: func(doc *stack.YAMLDoc) error {
			for k, v := range map[string]any{"network.metrics.enabled": true, "network.metrics.listen": fmt.Sprintf("127.0.0.1:%d", metricsPort),
				"network.metrics.pprof": true, "logging.min_level": level} {
				if err := doc.Set(k, v); err != nil {
					return err
				}
			}
			return nil
		},
	}
	if b.wa != nil {
		b.wa.configure(&gwOpts)
	}
	if b.gw, err = stack.NewGateway(setupCtx, gwOpts); err != nil {
		return err
	}
	if b.botID, err = b.gw.BotUserID(); err != nil {
		return err
	}
	if b.dendrite, err = stack.StartDendrite(setupCtx, stack.DendriteOptions{
		BinDir:                binDir,
		DataDir:               filepath.Join(b.dir, "dendrite"),
		Port:                  hsPort,
		AppServiceConfigFiles: b.gw.RegistrationFiles(),
	}); err != nil {
		return err
	}
	if err = b.gw.Start(setupCtx); err != nil {
		return err
	}
	password := randomToken()
	if _, err = b.dendrite.RegisterUser(setupCtx, "bench", password, false); err != nil {
		return err
	}
	if b.client, err = e2e.StartClient(filepath.Join(b.dir, "client-bench.log")); err != nil {
		return err
	}
	if err = b.client.Login(setupCtx, b.dendrite.URL, "bench", password, e2e.LoginOptions{AutoJoin: true, DeviceName: "passerelle-bench"}); err != nil {
		return err
	}
	b.owner = id.UserID(b.client.UserID)
	if b.mgmt, err = b.client.CreateDM(setupCtx, b.botID, e2e.DMOptions{}); err != nil {
		return fmt.Errorf("DM with the bridge bot: %w", err)
	}
	if _, err = b.client.WaitMessage(setupCtx, b.mgmt, e2e.MessageFilter{Sender: b.botID, BodyContains: "bridge bot"}); err != nil {
		return fmt.Errorf("the bridge bot's welcome: %w", err)
	}
	return nil
}

// coldStart starts the gateway on the seeded database and times it.
func (b *coldBench) coldStart(ctx context.Context, rep *coldReport) error {
	simAddr := b.sim.Addr()
	if b.wa != nil {
		simAddr = b.wa.sim.Addr()
	}
	_, portStr, _ := strings.Cut(simAddr, ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("simulator address %q: %w", simAddr, err)
	}
	conns := startConnSampler(port, 100*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			conns.Stop()
		}
	}()
	readyAt := make(chan time.Time, 1)
	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	start := time.Now()
	go func() {
		for pollCtx.Err() == nil {
			if r, err := b.readiness(pollCtx); err == nil && r.Ready {
				readyAt <- time.Now()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	if err := b.gw.Start(ctx); err != nil {
		return err
	}
	rep.StartToMauReadyMs = ms(b.gw.ReadyDuration)
	var ready time.Time
	select {
	case ready = <-readyAt:
	case <-time.After(2 * time.Minute):
		return errors.New("the metrics listener's /ready never answered ready")
	}
	rep.StartToReadyMs = ms(ready.Sub(start))
	sentAt, answered, err := b.command(ctx)
	if err != nil {
		return fmt.Errorf("after the cold start: %w", err)
	}
	rep.CommandToAnswerMs = ms(answered.Sub(sentAt))
	rep.StartToAnswerMs = ms(answered.Sub(start))
	if received, replied, ok := commandTimes(b.gw.LogPath, b.lastCommand); ok {
		rep.StartToCommandInMs = ms(received.Sub(start))
		rep.GatewayCommandMs = ms(replied.Sub(received))
	}
	b.logf("cold start: /ready %.0f ms, mau ready %.0f ms, bot answered %.0f ms after start (%.0f ms after the command)",
		rep.StartToReadyMs, rep.StartToMauReadyMs, rep.StartToAnswerMs, rep.CommandToAnswerMs)

	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		r, err := b.readiness(waitCtx)
		if err == nil && r.Logins[b.o.network]["connected"] >= b.o.logins {
			break
		}
		if waitCtx.Err() != nil {
			return fmt.Errorf("not every login connected within 3 minutes (last /ready: %+v, %v)", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep.StartToConnectedMs = ms(time.Since(start))
	// The connections the logins opened, then one more second of samples.
	time.Sleep(time.Second)
	stopped = true
	rep.NewConnsPer100ms, rep.OpenConns = conns.Stop()
	for _, n := range rep.NewConnsPer100ms {
		rep.MaxNewConnsPer100ms = max(rep.MaxNewConnsPer100ms, n)
	}
	b.logf("all %d logins connected %.0f ms after start; at most %d new connections in 100 ms", b.o.logins, rep.StartToConnectedMs, rep.MaxNewConnsPer100ms)
	return nil
}

// command sends "help" to the bridge bot and returns when it was sent and
// when the client held the bot's answer.
func (b *coldBench) command(ctx context.Context) (sentAt, answered time.Time, err error) {
	sentAt = time.Now()
	sent, err := b.client.Send(ctx, b.mgmt, "help")
	if err != nil {
		return sentAt, sentAt, err
	}
	b.lastCommand = sent
	ans, err := b.client.WaitMessage(ctx, b.mgmt, e2e.MessageFilter{Sender: b.botID, After: sent, Timeout: time.Minute})
	if err != nil {
		return sentAt, sentAt, fmt.Errorf("the bot never answered: %w", err)
	}
	if answered = time.UnixMilli(ans.SeenAt); ans.SeenAt == 0 {
		answered = time.Now()
	}
	return sentAt, answered, nil
}

// botRoundTrip is the best of three command round trips to a warm
// gateway: what the homeserver and the client add to any answer.
func (b *coldBench) botRoundTrip(ctx context.Context) (float64, error) {
	best := time.Duration(0)
	for i := range 3 {
		sentAt, answered, err := b.command(ctx)
		if err != nil {
			return 0, err
		}
		if d := answered.Sub(sentAt); i == 0 || d < best {
			best = d
		}
	}
	return ms(best), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// readiness is the metrics listener's /ready body.
type readiness struct {
	Ready  bool                      `json:"ready"`
	Logins map[string]map[string]int `json:"logins"`
}

func (b *coldBench) readiness(ctx context.Context) (readiness, error) {
	var r readiness
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.metricsURL+"/ready", nil)
	if err != nil {
		return r, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&r)
	return r, err
}

// idleMemory waits until the gateway is idle, has it collect garbage (a
// heap profile with gc=1) and reads its RSS from /proc and its heap in use
// and goroutines from /metrics.
func (b *coldBench) idleMemory(ctx context.Context, name string) (memSample, error) {
	var m memSample
	idleCtx, cancel := context.WithTimeout(ctx, b.o.idleMax)
	defer cancel()
	if _, err := stack.WaitCPUIdle(idleCtx, []int{b.gw.PID()}, b.o.idleQuiet, 100*time.Millisecond); err != nil {
		if ctx.Err() != nil {
			return m, err
		}
		b.warnings = append(b.warnings, fmt.Sprintf("%s: the gateway was still busy after %s; its memory was read then", name, b.o.idleMax))
	}
	if err := b.waitTrimmed(ctx, name); err != nil {
		return m, err
	}
	for range 2 {
		if err := b.get(ctx, "/debug/pprof/heap?gc=1", io.Discard); err != nil {
			return m, err
		}
	}
	var metrics strings.Builder
	if err := b.get(ctx, "/metrics", &metrics); err != nil {
		return m, err
	}
	vals := promValues(metrics.String(), "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes",
		"go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes")
	m.Goroutines = vals["go_goroutines"]
	m.HeapInuseKiB = vals["go_memstats_heap_inuse_bytes"] / 1024
	m.HeapKeptKiB = heapKept(vals) / 1024
	m.StackKiB = vals["go_memstats_stack_inuse_bytes"] / 1024
	for field, to := range map[string]*float64{"VmRSS": &m.RSSKiB, "RssAnon": &m.RSSAnonKiB, "RssFile": &m.RSSFileKiB} {
		kib, err := procStatusKiB(b.gw.PID(), field)
		if err != nil {
			return m, err
		}
		*to = float64(kib)
	}
	// The goroutines by stack and the heap, to see what a login or a
	// portal keeps (go tool pprof -base heap-logins.pprof heap-loaded.pprof).
	for file, path := range map[string]string{"goroutines-" + name + ".txt": "/debug/pprof/goroutine?debug=1", "heap-" + name + ".pprof": "/debug/pprof/heap"} {
		f, err := os.Create(filepath.Join(b.dir, file))
		if err != nil {
			return m, err
		}
		err = b.get(ctx, path, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// waitTrimmed waits until the idle gateway has given back the free heap
// its last peak left (internal/memtrim: once a period of its own has gone
// by idle, at most two of them after the work ended), so that the RSS read
// is the idle gateway's, not the peak's.
func (b *coldBench) waitTrimmed(ctx context.Context, name string) error {
	deadline := time.Now().Add(3 * memtrim.DefaultEvery)
	for {
		var metrics strings.Builder
		if err := b.get(ctx, "/metrics", &metrics); err != nil {
			return err
		}
		vals := promValues(metrics.String(), "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes")
		kept := heapKept(vals)
		if kept < memtrim.DefaultMinFree {
			return nil
		}
		if time.Now().After(deadline) {
			b.warnings = append(b.warnings, fmt.Sprintf("%s: the gateway still kept %.1f MiB of free heap after %s idle", name, kept/(1<<20), 3*memtrim.DefaultEvery))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// heapKept is the Go heap that is free and not returned to the kernel, in
// bytes, from /metrics values.
func heapKept(vals map[string]float64) float64 {
	return vals["go_memstats_heap_idle_bytes"] - vals["go_memstats_heap_released_bytes"]
}

func (b *coldBench) get(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.metricsURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// promValues reads unlabelled samples from Prometheus text.
func promValues(text string, names ...string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[n] = f
				}
			}
		}
	}
	return out
}

// procStatusKiB reads a "kB" field of /proc/<pid>/status.
func procStatusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// waitLoaded waits until the gateway has handled the typing notifications
// of n portals (at debug level its JSON log has a line for each remote
// event a portal handles), then until it is idle.
func (b *coldBench) waitLoaded(ctx context.Context, n int) error {
	if b.o.gatewayLog == "debug" || b.o.gatewayLog == "trace" {
		waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		for {
			got := countTypingHandled(b.gw.LogPath)
			if got >= n {
				break
			}
			if waitCtx.Err() != nil {
				return fmt.Errorf("the gateway handled the typing of %d portals of %d", got, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	idleCtx, cancel := context.WithTimeout(ctx, b.o.idleMax)
	defer cancel()
	_, err := stack.WaitCPUIdle(idleCtx, []int{b.gw.PID()}, b.o.idleQuiet, 100*time.Millisecond)
	if err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// countTypingHandled counts the distinct portals that handled a typing
// notification, from the gateway's JSON log.
func countTypingHandled(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	portals := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"Handling remote event"`)) || !bytes.Contains(line, []byte(`"RemoteEventTyping"`)) {
			continue
		}
		var ev struct {
			ID       string `json:"portal_id"`
			Receiver string `json:"portal_receiver"`
		}
		if json.Unmarshal(line, &ev) == nil {
			portals[ev.ID+"/"+ev.Receiver] = true
		}
	}
	return len(portals)
}

// coldTargets compares the run with issue 13's targets.
func coldTargets(r *coldReport) []string {
	var t []string
	check := func(name string, got, limit float64, unit string) {
		verdict := "met"
		if got > limit {
			verdict = fmt.Sprintf("MISSED by %.2f %s", got-limit, unit)
			if limit > 0 {
				verdict += fmt.Sprintf(" (%.1f×)", got/limit)
			}
		}
		t = append(t, strings.TrimSpace(fmt.Sprintf("%s: %.2f %s, target ≤ %.0f %s: %s", name, got, unit, limit, unit, verdict)))
	}
	check("start → bot answering (client saw it)", r.StartToAnswerMs, 100, "ms")
	if r.Loaded > 0 {
		check("RSS per loaded idle portal", r.PerPortal.RSSKiB, 16, "KiB")
		// Goroutines are whole: fewer more in all than one per hundred
		// portals is not a goroutine per portal (timers, connections).
		extra := r.IdleLoaded.Goroutines - r.IdleLogins.Goroutines
		verdict := "met"
		if extra >= float64(r.Loaded)/100 {
			verdict = fmt.Sprintf("MISSED by %.3f goroutines", r.PerPortal.Goroutines)
		}
		t = append(t, fmt.Sprintf("goroutines per loaded idle portal: %.3f (%+.0f in all for %d portals), target 0: %s", r.PerPortal.Goroutines, extra, r.Loaded, verdict))
	}
	check("RSS per idle login", r.PerLogin.RSSKiB, 2048, "KiB")
	return t
}

func printCold(w io.Writer, r *coldReport) {
	fmt.Fprintf(w, "\nmachine: %d cores, %s (%s/%s, Linux %s)\n", r.Machine.Cores, r.Machine.CPUModel, r.Machine.OS, r.Machine.Arch, r.Machine.Kernel)
	fmt.Fprintf(w, "cold start: %d %s logins and %d DM portals in the database; %d portals loaded (a contact typing)\n\n", r.Logins, networkName(r.Network), r.Portals, r.Loaded)
	fmt.Fprintf(w, "start → /ready (metrics)            %8.0f ms\n", r.StartToReadyMs)
	fmt.Fprintf(w, "start → /_matrix/mau/ready          %8.0f ms\n", r.StartToMauReadyMs)
	fmt.Fprintf(w, "start → bot answered (sent at /ready)%7.0f ms  (command → answer %.0f ms)\n", r.StartToAnswerMs, r.CommandToAnswerMs)
	if r.GatewayCommandMs > 0 {
		fmt.Fprintf(w, "  gateway log: command in at %.0f ms, its answer PUT done %.0f ms later\n", r.StartToCommandInMs, r.GatewayCommandMs)
	}
	fmt.Fprintf(w, "warm gateway: command → answer      %8.0f ms  (homeserver + client round trip)\n", r.WarmCommandToAnswerMs)
	fmt.Fprintf(w, "start → all logins connected        %8.0f ms\n", r.StartToConnectedMs)
	fmt.Fprintf(w, "new %s connections per 100 ms: max %d; %s\n\n", networkName(r.Network), r.MaxNewConnsPer100ms, seriesString(r.NewConnsPer100ms))
	fmt.Fprintf(w, "%-28s %12s %14s %12s   %s\n", "idle gateway", "RSS KiB", "heap KiB", "goroutines", "RSS: files / anonymous = heap in use + heap kept unused + stacks + outside Go (KiB)")
	row := func(name string, m memSample) {
		fmt.Fprintf(w, "%-28s %12.1f %14.1f %12.2f   %.1f / %.1f = %.1f + %.1f + %.1f + %.1f\n", name, m.RSSKiB, m.HeapInuseKiB, m.Goroutines,
			m.RSSFileKiB, m.RSSAnonKiB, m.HeapInuseKiB, m.HeapKeptKiB, m.StackKiB, m.outsideGoKiB())
	}
	row("no logins, no portals", r.IdleEmpty)
	row(fmt.Sprintf("%d logins", r.Logins), r.IdleLogins)
	if r.Loaded > 0 {
		row(fmt.Sprintf("+ %d portals loaded", r.Loaded), r.IdleLoaded)
	}
	row("per login", r.PerLogin)
	if r.Loaded > 0 {
		row("per loaded portal", r.PerPortal)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		fmt.Fprintf(w, "target %s\n", t)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
}

// seriesString is a series of counts, trailing zeros cut.
func seriesString(xs []int) string {
	end := len(xs)
	for end > 0 && xs[end-1] == 0 {
		end--
	}
	parts := make([]string, end)
	for i, x := range xs[:end] {
		parts[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// commandTimes reads from the gateway's JSON log when the command event
// eventID was received and when the bot's answer to it was sent (the
// first PUT .../send/ completed in the command's context).
func commandTimes(path, eventID string) (received, replied time.Time, ok bool) {
	f, err := os.Open(path)
	if err != nil || eventID == "" {
		return received, replied, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(eventID)) {
			continue
		}
		var ev struct {
			EventID string    `json:"event_id"`
			Command string    `json:"mx_command"`
			Method  string    `json:"method"`
			URL     string    `json:"url"`
			Time    time.Time `json:"time"`
			Message string    `json:"message"`
		}
		if json.Unmarshal(line, &ev) != nil || ev.EventID != eventID {
			continue
		}
		switch {
		case ev.Message == "Received command" && received.IsZero():
			received = ev.Time
		case !received.IsZero() && ev.Message == "Request completed" && ev.Method == http.MethodPut && strings.Contains(ev.URL, "/send/"):
			return received, ev.Time, true
		}
	}
	return received, replied, false
}

// networkName is a -network value as the output names it.
func networkName(network string) string {
	if network == netWhatsApp {
		return "WhatsApp"
	}
	return "Telegram"
}

// linkWhatsApp makes n staff accounts on the WhatsApp simulator and links
// each to the gateway by the bot's QR code, one after the other, in the
// bench user's room with the bot.
func (b *coldBench) linkWhatsApp(ctx context.Context, n int) error {
	for i := range n {
		phone := strconv.Itoa(staffPhoneBase + i)
		if _, err := b.wa.sim.CreateAccount(phone, fmt.Sprintf("Staff%03d Cold", i)); err != nil {
			return err
		}
		if err := b.wa.qrLogIn(ctx, b.client, b.botID, b.mgmt, phone); err != nil {
			return fmt.Errorf("linking WhatsApp login %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}
