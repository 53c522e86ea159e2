// Command passerelle-bench measures what a bridged message costs, through the
// real stack on loopback: Dendrite, the Telegram simulator, the gateway
// binary and a Matrix user whose client (matrix-js-sdk with Rust crypto,
// e2e/client) decrypts every message.
//
//	go run -tags goolm ./cmd/passerelle-bench -n 1000 -reps 3 -json bench.json
//	go run -tags goolm ./cmd/passerelle-bench -portals 1,10,100 -direction r2m,m2r -rate 0,10 -reps 3
//
// Scenario "telegram DM, encrypted, burst N remote→Matrix": a contact of
// the logged-in staff member sends N messages at once on the simulated
// Telegram; the gateway receives them over MTProto and bridges them into the
// staff member's encrypted portal, where the js client decrypts them. Each
// message's text carries its send time, and the client records when it
// decrypted each one: the latency is the difference (same machine clock).
//
// -portals, -direction and -rate vary it (scenarios.go): the messages
// spread over K portals, sent from Matrix to the remote contacts, paced
// instead of a burst.
//
// Reference "bare appservice": in the same run, on the same Dendrite, an
// appservice of its own (a second registration file) has a ghost with a
// real device PUT the same number of megolm-encrypted events into an
// encrypted room the same user is in. Its homeserver CPU per event is the
// floor an appservice can reach on this homeserver; the table gives the
// gateway's ratio to it. The bare appservice sends one event after the
// other (each PUT answered before the next), so its latency is a PUT's and
// a sync's, while the gateway's burst is all sent at once on Telegram and
// its latency includes the wait in line; compare their homeserver CPU.
//
// From the gateway's JSON log (debug level, the example config's), the
// command also lists the gateway's homeserver requests per bridged message
// by kind: where the homeserver's extra work comes from.
//
// CPU figures come from /proc/<pid>/stat (user + system time of every
// thread) of Dendrite and of the gateway, read before the first send and
// again once the process is idle (CPU time not moving for 2 s), so the
// homeserver's background work after the burst is counted. With two cores
// or more, Dendrite is pinned to core 0 with taskset and this command, the
// gateway and the js client to the other cores, so that the load does not
// run on Dendrite's core.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/e2e"
	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "passerelle-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.scenario == "coldstart" {
		_, err = runCold(ctx, o, os.Stdout)
	} else if o.scenario == "creation" || o.scenario == "flood" {
		_, err = runLoad(ctx, o, os.Stdout, o.scenario)
	} else {
		_, err = run(ctx, o, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "passerelle-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	n          int
	reps       int
	short      bool
	jsonPath   string
	dir        string
	keep       bool
	gatewayBin string
	gatewayLog string
	plain      bool
	idleQuiet  time.Duration
	idleMax    time.Duration
	profile    time.Duration
	// scenario "coldstart": logins, portals in the database, load of them
	// loaded.
	scenario string
	logins   int
	portals  int
	load     int
	// scenario "burst": the portal counts, directions (r2m, m2r) and rates
	// (msgs/s, 0: burst) measured, every combination.
	portalList []int
	dirs       []string
	rates      []float64
	// network is Passerelle's side of the burst scenario (telegram,
	// whatsapp).
	network string
	// scenario "creation": how many portals are created at once, per step.
	create []int
	// creators: staff logins that receive the new chats (creation, flood).
	creators int
}

// maxSpread is the spread over repetitions above which a run is noisy.
const maxSpread = 20

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("passerelle-bench", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 1000, "messages per burst")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of each scenario (median and spread)")
	fs.BoolVar(&o.short, "short", false, "a quick run: -n 20 -reps 1 (CI)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.dir, "dir", "", "work directory for configs, databases and logs (default: a temporary one, removed unless -keep)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.StringVar(&o.gatewayBin, "gateway-bin", "", "use this gateway binary instead of building ./cmd/passerelle")
	fs.StringVar(&o.gatewayLog, "gateway-log", "debug", "the gateway's logging.min_level (debug, console and JSON file, is the example config's; the request counts need it)")
	fs.StringVar(&o.network, "network", netTelegram, "the network Passerelle bridges, telegram or whatsapp (a simulator of either)")
	fs.BoolVar(&o.plain, "plain", false, "unencrypted rooms instead of encrypted ones (portal and bare appservice)")
	fs.DurationVar(&o.idleQuiet, "idle", 2*time.Second, "a process is idle when its CPU time has not moved for this long")
	fs.DurationVar(&o.idleMax, "idle-max", 60*time.Second, "give up waiting for idle processes after this long (the run is then flagged)")
	fs.DurationVar(&o.profile, "profile", 0, "burst: take the gateway's CPU profile for this long from the start of the first burst, and its heap profile after it, and stock bridgev2's CPU profile from the start of its first burst; creation and flood: its CPU profile for this long and a goroutine dump every 5 s from the start of each live probe (saved in the work directory; the CPU profiles' top functions are printed); 0: none")
	fs.StringVar(&o.scenario, "scenario", "burst", "burst: messages through a DM portal beside a bare appservice; coldstart: start on a database of -logins logins and -portals portals, then load -load of them, and measure readiness, connections and idle memory; creation: -create portals made at once, with a live probe on an existing portal; flood: -n messages at once into one portal, with the live probe on another")
	fs.IntVar(&o.logins, "logins", 100, "coldstart: logins in the database (-network whatsapp: linked by QR code first)")
	portals := fs.String("portals", "", "burst: comma-separated portal counts, the messages spread round-robin over that many DM portals (default 1); coldstart: DM portals in the database (default 10000)")
	dirs := fs.String("direction", dirR2M, "burst: comma-separated directions: r2m (remote contacts send, the Matrix client decrypts), m2r (the Matrix client sends, the remote contacts receive)")
	rates := fs.String("rate", "0", "burst: comma-separated send rates in msgs/s, 0 for a burst; a paced run sends message i at start + i/rate (open loop) and measures latency from that scheduled time")
	fs.IntVar(&o.load, "load", 1000, "coldstart: portals loaded after the start, for the memory per portal")
	create := fs.String("create", "1,10,100", "creation: portals created at once, one step per number")
	fs.IntVar(&o.creators, "creators", 10, "creation and flood: the new chats go to this many other staff logins (of the same Matrix user), not to the live probe's")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	if err := o.parseScenarioLists(*portals, *dirs, *rates); err != nil {
		return o, err
	}
	var err error
	if o.create, err = parseCounts(*create); err != nil {
		return o, fmt.Errorf("-create: %w", err)
	}
	if o.short {
		o.n, o.reps = 20, 1
		o.logins, o.load = 5, 100
		if *portals == "" {
			o.portals = 200
		}
		o.create = []int{3}
		// The new chats and the flood in the live probe's own login: its
		// chats are handled side by side (Telegram's lanes), and a probe
		// message that waited behind them would show.
		o.creators = 0
		if o.scenario == "flood" {
			o.n = 200
		}
		if o.scenario == "creation" || o.scenario == "flood" {
			o.idleQuiet = time.Second
		}
	}
	switch o.network {
	case netTelegram:
	case netWhatsApp:
		if o.scenario == "coldstart" {
			// The logins are linked through the bot, not written; the
			// database holds no portal (a loaded portal's memory is
			// bridgev2's: measure it on Telegram).
			if *portals != "" && o.portals != 0 {
				return o, fmt.Errorf("-scenario coldstart -network %s writes no portal: -portals must be 0", o.network)
			}
			o.portals, o.load = 0, 0
		}
	default:
		return o, fmt.Errorf("unknown -network %q (telegram or whatsapp)", o.network)
	}
	switch o.scenario {
	case "burst", "coldstart", "creation", "flood":
	default:
		return o, fmt.Errorf("unknown -scenario %q (burst, coldstart, creation or flood)", o.scenario)
	}
	if o.creators < 0 {
		return o, errors.New("-creators must be at least 0")
	}
	if o.logins < 1 || o.portals < 0 || o.load < 0 {
		return o, errors.New("-logins must be at least 1, -portals and -load at least 0")
	}
	if o.profile > 0 {
		o.keep = true // the profiles stay in the work directory
	}
	if o.n < 1 || o.reps < 1 {
		return o, errors.New("-n and -reps must be at least 1")
	}
	return o, nil
}

// report is the whole run, as written to -json.
type report struct {
	Started        time.Time          `json:"started"`
	Machine        stack.Machine      `json:"machine"`
	DendriteCPUs   string             `json:"dendrite_cpus,omitempty"`
	LoadCPUs       string             `json:"load_cpus,omitempty"`
	Dendrite       string             `json:"dendrite_version"`
	GatewayLog     string             `json:"gateway_log_level"`
	Network        string             `json:"network"`
	Encrypted      bool               `json:"encrypted"`
	Messages       int                `json:"messages_per_burst"`
	Repetitions    int                `json:"repetitions"`
	Portals        []int              `json:"portals"`
	Directions     []string           `json:"directions"`
	Rates          []float64          `json:"rates_msgs_per_s"`
	Scenarios      []*scenarioResult  `json:"scenarios"`
	Groups         []*group           `json:"groups"`
	Ratios         map[string]summary `json:"ratios"` // each group's, keyed "<group label>: <ratio>"
	Warnings       []string           `json:"warnings,omitempty"`
	DendritePeakMB float64            `json:"dendrite_peak_rss_mb"`
}

// bench is one run's stack.
type bench struct {
	o        options
	out      io.Writer
	dir      string
	sim      *tgsim.Server
	staff    *tgsim.Account
	dendrite *stack.Dendrite
	gw       *stack.Gateway
	bare     *bareAppService
	stock    *stockBridge
	client   *e2e.Client
	botID    string
	// contacts[i] is the simulated contact of Passerelle's portal
	// portals[i]; the first warmed portals have carried a Matrix message.
	contacts []*tgsim.Account
	// remote is -network's side when it is not Telegram (net()).
	remote  remoteNet
	portals []string
	warmed  int
	// gwProxy notes when the homeserver's transactions reach the gateway;
	// received when the contacts received each message (by text).
	gwProxy  *txnProxy
	received arrivalLog
	profiled bool
	// profiledCPUms is the gateway's CPU-ms per message of the profiled
	// pass (the first of Passerelle's); stockProfiledCPUms stock
	// bridgev2's in its profiled pass (its first), profiled into
	// stockCPUProfile.
	profiledCPUms      float64
	stockProfiled      bool
	stockProfiledCPUms float64
	// tgStaff are the Telegram staff logins after staff (telegramNet's
	// staff 1 on).
	tgStaff []*tgsim.Account
	// The creation and flood scenarios (live.go): the live probe's
	// contact (index in the net's contacts) and portal, and the staff
	// logins (net's indices) that receive the new chats (the probe's is
	// staff 0).
	probeContact int
	probePortal  string
	creators     []int
	// pprofURL is the gateway's /debug/pprof/ when -profile is set.
	pprofURL string
	profiles []string // profile files written, for the summary
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, "# "+format+"\n", args...)
}

func run(ctx context.Context, o options, out io.Writer) (*report, error) {
	b := &bench{o: o, out: out}
	rep := &report{Started: time.Now().UTC(), Machine: stack.ThisMachine(), Dendrite: stack.DendriteVersion,
		GatewayLog: o.gatewayLog, Network: o.network, Encrypted: !o.plain, Messages: o.n, Repetitions: o.reps,
		Portals: o.portalList, Directions: o.dirs, Rates: o.rates}
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
	if rep.Machine.Cores >= 2 {
		rep.DendriteCPUs = "0"
		rep.LoadCPUs = "1"
		if rep.Machine.Cores > 2 {
			rep.LoadCPUs = fmt.Sprintf("1-%d", rep.Machine.Cores-1)
		}
		// Every thread of this process, and so every child it starts
		// (gateway, js client), leaves core 0 to Dendrite.
		if out, err := exec.CommandContext(ctx, "taskset", "-a", "-p", "-c", rep.LoadCPUs, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("failed to pin the load to CPUs %s (is taskset installed?): %w\n%s", rep.LoadCPUs, err, out)
		}
	}
	b.logf("machine: %d cores, %s; Dendrite %s on CPUs %q, load on %q; Passerelle bridges %s", rep.Machine.Cores, rep.Machine.CPUModel, stack.DendriteVersion, rep.DendriteCPUs, rep.LoadCPUs, o.network)
	if err = b.setUp(ctx, rep.DendriteCPUs); err != nil {
		return nil, err
	}

	if err = b.runGroups(ctx, rep); err != nil {
		return nil, err
	}
	for _, s := range rep.Scenarios {
		rep.Warnings = append(rep.Warnings, s.noisy(maxSpread)...)
		for i, r := range s.Reps {
			if r.IdleTimeout {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s rep %d: a process was still busy %s after the burst; its CPU figures stop there", s.Name, i+1, o.idleMax))
			}
			if r.Seen < r.Messages {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s rep %d: %d of %d messages delivered live (latency over those)", s.Name, i+1, r.Seen, r.Messages))
			}
		}
	}
	if peak, err := b.dendrite.PeakRSS(); err == nil {
		rep.DendritePeakMB = float64(peak) / (1 << 20)
	}
	b.print(rep)
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

func (b *bench) print(rep *report) {
	w := b.out
	fmt.Fprintf(w, "\nmachine: %d cores, %s (%s/%s, Linux %s)\n", rep.Machine.Cores, rep.Machine.CPUModel, rep.Machine.OS, rep.Machine.Arch, rep.Machine.Kernel)
	if rep.DendriteCPUs != "" {
		fmt.Fprintf(w, "Dendrite %s pinned to CPU %s; gateway, js client and load on CPUs %s\n", rep.Dendrite, rep.DendriteCPUs, rep.LoadCPUs)
	} else {
		fmt.Fprintf(w, "Dendrite %s not pinned (one core)\n", rep.Dendrite)
	}
	fmt.Fprintf(w, "%d messages per row, %d repetition(s), median ±spread; gateway log level %s\n", rep.Messages, rep.Repetitions, rep.GatewayLog)
	printLegend(w, rep)
	fmt.Fprintln(w)
	printTable(w, rep.Scenarios)
	printGroupRatios(w, rep)
	fmt.Fprintf(w, "Dendrite peak RSS %.1f MB\n", rep.DendritePeakMB)
	if reps := rep.Scenarios[0].Reps; len(reps) > 0 && len(reps[len(reps)-1].GatewayRequests) > 0 {
		fmt.Fprintf(w, "gateway → homeserver requests per bridged message (last repetition, from the gateway's debug log):\n")
		for i, rc := range reps[len(reps)-1].GatewayRequests {
			if i == 8 {
				break
			}
			fmt.Fprintf(w, "  %6.2f  %s\n", rc.PerMsg, rc.Request)
		}
	}
	printStockRequests(w, rep)
	b.printProfiles(w)
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "WARNING: noisy run: %s\n", warn)
	}
}

func (b *bench) close() {
	if b.client != nil {
		_ = b.client.Close()
	}
	if b.gw != nil {
		_ = b.gw.Stop()
	}
	if b.dendrite != nil {
		_ = b.dendrite.Stop()
	}
	if b.bare != nil {
		b.bare.close()
	}
	if b.stock != nil {
		_ = b.stock.gw.Stop()
	}
	if b.remote != nil {
		b.remote.close()
	}
	if b.sim != nil {
		_ = b.sim.Close()
	}
	if b.gwProxy != nil {
		b.gwProxy.close()
	}
	if b.stock != nil && b.stock.proxy != nil {
		b.stock.proxy.close()
	}
}

func (b *bench) setUp(ctx context.Context, dendriteCPUs string) error {
	setupCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	binDir, gwBin, sim, err := prepareStack(setupCtx, b.o, b.dir, b.logf, zap.InfoLevel)
	if err != nil {
		return err
	}
	b.sim = sim
	if b.staff, err = b.sim.CreateAccount(tgsim.AccountSpec{Phone: "+15550071", FirstName: "Sam", LastName: "Staff"}); err != nil {
		return err
	}
	if err = b.startRemote(); err != nil {
		return err
	}
	if err = b.net().addContact(); err != nil {
		return err
	}
	if b.gwProxy, err = newTxnProxy(); err != nil {
		return err
	}
	hsPort, err := stack.FreePort()
	if err != nil {
		return err
	}
	level := b.o.gatewayLog
	pprofPatch, err := b.pprofPatch()
	if err != nil {
		return err
	}
	gwOpts := stack.GatewayOptions{
		Binary:        gwBin,
		Dir:           filepath.Join(b.dir, "gateway"),
		HomeserverURL: fmt.Sprintf("http://127.0.0.1:%d", hsPort),
		Patch: func(doc *stack.YAMLDoc) error {
			if b.o.plain {
				if err := doc.Set("encryption.default", false); err != nil {
					return err
				}
			}
			if err := b.gwProxy.patch(doc); err != nil {
				return err
			}
			if err := pprofPatch(doc); err != nil {
				return err
			}
			return doc.Set("logging.min_level", level)
		},
	}
	b.net().configure(&gwOpts)
	if b.gw, err = stack.NewGateway(setupCtx, gwOpts); err != nil {
		return err
	}
	if b.botID, err = b.gw.BotUserID(); err != nil {
		return err
	}
	if b.bare, err = newBareAppService(b.dir, b.gw.ServerName); err != nil {
		return err
	}
	if err = b.prepareStock(setupCtx, hsPort); err != nil {
		return err
	}
	mgmt, err := b.startAndLogIn(setupCtx, binDir, hsPort, dendriteCPUs, append(append(b.gw.RegistrationFiles(), b.bare.regPath), b.stock.gw.RegistrationFiles()...))
	if err != nil {
		return err
	}
	if err = b.send(setupCtx, 0, "hello"); err != nil {
		return err
	}
	room, err := b.client.WaitRoom(setupCtx, e2e.RoomFilter{Exclude: []string{mgmt}, NameContains: contactName(0), AutoJoin: true, Timeout: 2 * time.Minute})
	if err != nil {
		return fmt.Errorf("the contact's portal: %w", err)
	}
	b.portals = []string{room.RoomID}
	if _, err = b.client.WaitMessage(setupCtx, room.RoomID, e2e.MessageFilter{BodyContains: "hello", Timeout: time.Minute}); err != nil {
		return fmt.Errorf("the contact's first message: %w", err)
	}
	if err = b.bare.setUp(setupCtx, b.dendrite, id.UserID(b.client.UserID), !b.o.plain); err != nil {
		return err
	}
	b.logf("portal %s and bare appservice room %s ready", room.RoomID, b.bare.rooms[0])
	return b.startStock(setupCtx)
}

// step sends body to the bridge bot and waits for its answer containing
// want. bridgev2 posts a login prompt before it stores the login's state:
// an input sent the instant the prompt shows can be read as an unknown
// command, and is then sent again.
// startAndLogIn starts Dendrite with the appservice registrations and the
// gateway, logs the bench user's js client in and links the staff member's
// Telegram account through the bridge bot; it returns the bot's DM.
func (b *bench) startAndLogIn(setupCtx context.Context, binDir string, hsPort int, dendriteCPUs string, registrations []string) (mgmt string, err error) {
	if b.dendrite, err = stack.StartDendrite(setupCtx, stack.DendriteOptions{
		BinDir:                binDir,
		DataDir:               filepath.Join(b.dir, "dendrite"),
		Port:                  hsPort,
		AppServiceConfigFiles: registrations,
		CPUs:                  dendriteCPUs,
	}); err != nil {
		return "", err
	}
	if err = b.gw.Start(setupCtx); err != nil {
		return "", err
	}
	b.logf("Dendrite up in %s, gateway ready in %s", b.dendrite.StartDuration.Round(time.Millisecond), b.gw.ReadyDuration.Round(time.Millisecond))
	password := randomToken()
	if _, err = b.dendrite.RegisterUser(setupCtx, "bench", password, false); err != nil {
		return "", err
	}
	if b.client, err = e2e.StartClient(filepath.Join(b.dir, "client-bench.log")); err != nil {
		return "", err
	}
	if err = b.client.Login(setupCtx, b.dendrite.URL, "bench", password, e2e.LoginOptions{AutoJoin: true, DeviceName: "passerelle-bench"}); err != nil {
		return "", err
	}
	mgmt, err = b.client.CreateDM(setupCtx, b.botID, e2e.DMOptions{Unencrypted: b.o.plain})
	if err != nil {
		return "", fmt.Errorf("DM with the bridge bot: %w", err)
	}
	if _, err = b.client.WaitMessage(setupCtx, mgmt, e2e.MessageFilter{Sender: b.botID, BodyContains: "bridge bot"}); err != nil {
		return "", fmt.Errorf("the bridge bot's welcome: %w", err)
	}
	if err = b.net().logIn(setupCtx, b, mgmt); err != nil {
		return "", err
	}
	return mgmt, nil
}

func (b *bench) step(ctx context.Context, room, body, want string) error {
	return b.stepWith(ctx, b.botID, room, body, want)
}

// stepWith is step with another bridge's bot.
func (b *bench) stepWith(ctx context.Context, bot, room, body, want string) error {
	for attempt := 1; attempt <= 3; attempt++ {
		sent, err := b.client.Send(ctx, room, body)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		tick := time.NewTicker(100 * time.Millisecond)
		retry := false
		for !retry {
			evs, err := b.client.Messages(ctx, room, 30)
			if err != nil {
				tick.Stop()
				return err
			}
			after := false
			for i := range evs {
				ev := &evs[i]
				switch {
				case ev.EventID == sent:
					after = true
				case !after || ev.Sender != bot:
				case strings.Contains(ev.Body(), want):
					tick.Stop()
					return nil
				case strings.HasPrefix(ev.Body(), "Unknown command"):
					retry = true
				}
			}
			if time.Now().After(deadline) {
				tick.Stop()
				return fmt.Errorf("the bridge bot never answered %q with %q", body, want)
			}
			select {
			case <-ctx.Done():
				tick.Stop()
				return ctx.Err()
			case <-tick.C:
			}
		}
		tick.Stop()
	}
	return fmt.Errorf("the bridge bot did not understand %q three times", body)
}

// idle waits until every process in pids is idle and returns their CPU times.
func (b *bench) idle(ctx context.Context, pids []int) ([]time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.idleMax)
	defer cancel()
	t, err := stack.WaitCPUIdle(ctx, pids, b.o.idleQuiet, 100*time.Millisecond)
	if err != nil && t != nil && ctx.Err() != nil {
		return t, true, nil
	}
	return t, false, err
}

// burstTimeout bounds the wait for the last message of a burst of n.
func burstTimeout(n int) time.Duration { return 2*time.Minute + time.Duration(n)*time.Second }

// burstBody is message i of a burst: its text carries its send time.
func burstBody(tag string, i int) string {
	return bodyAt(tag, i, time.Now())
}

// parseBurstBody reads a burstBody back.
func parseBurstBody(tag, body string) (i int, sentMicro int64, ok bool) {
	rest, ok := strings.CutPrefix(body, "bench "+tag+" ")
	if !ok {
		return 0, 0, false
	}
	a, c, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, 0, false
	}
	var err error
	if i, err = strconv.Atoi(a); err != nil {
		return 0, 0, false
	}
	if sentMicro, err = strconv.ParseInt(c, 10, 64); err != nil {
		return 0, 0, false
	}
	return i, sentMicro, true
}

// prepareStack does what every scenario needs first: Dendrite's binaries,
// the js client installed, the gateway built (unless -gateway-bin) and the
// Telegram simulator started, logging at simLevel into dir/tgsim.log.
func prepareStack(ctx context.Context, o options, dir string, logf func(string, ...any), simLevel zapcore.Level) (binDir, gwBin string, sim *tgsim.Server, err error) {
	if binDir, err = stack.EnsureDendrite(ctx); err != nil {
		return "", "", nil, err
	}
	if err = e2e.CheckClientInstalled(); err != nil {
		return "", "", nil, err
	}
	if gwBin = o.gatewayBin; gwBin == "" {
		logf("building the gateway")
		if gwBin, _, err = stack.BuildGateway(ctx, filepath.Join(dir, "bin"), "bench"); err != nil {
			return "", "", nil, err
		}
	}
	simLog, err := zap.Config{
		Level:            zap.NewAtomicLevelAt(simLevel),
		Encoding:         "console",
		EncoderConfig:    zap.NewDevelopmentEncoderConfig(),
		OutputPaths:      []string{filepath.Join(dir, "tgsim.log")},
		ErrorOutputPaths: []string{filepath.Join(dir, "tgsim.log")},
	}.Build()
	if err != nil {
		return "", "", nil, err
	}
	if sim, err = tgsim.New(tgsim.Options{Logger: simLog}); err != nil {
		return "", "", nil, err
	}
	return binDir, gwBin, sim, nil
}
