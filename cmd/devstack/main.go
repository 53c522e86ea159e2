// Command devstack runs a complete local Passerelle on loopback for trying it
// out by hand: Dendrite, the Telegram and WhatsApp simulators with demo accounts, and the
// gateway, plus a Matrix user to log in with. Ctrl-C stops everything.
//
//	go run -tags goolm ./cmd/devstack      (or scripts/devstack)
//
// Every run starts from a fresh state in ./.devstack/run (the simulator lives
// in memory, so older gateway logins would point at accounts that no longer
// exist); logs stay there after the stack stops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(2)
	}
	if err = run(o); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

type options struct {
	dir         string
	hsPort      int
	gwPort      int
	simPort     int
	controlPort int
	gatewayBin  string
	postgres    string
	user        string
	password    string
	waPort      int
	waControl   int
}

// parseFlags reads the command line and checks it before anything starts.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".devstack", "state and logs directory")
	fs.IntVar(&o.hsPort, "hs-port", 8008, "Dendrite port on 127.0.0.1")
	fs.IntVar(&o.gwPort, "gateway-port", 29318, "gateway appservice port on 127.0.0.1")
	fs.IntVar(&o.simPort, "sim-port", 29320, "Telegram simulator port on 127.0.0.1")
	fs.IntVar(&o.controlPort, "control-port", 29319, "simulator control API port on 127.0.0.1")
	fs.StringVar(&o.gatewayBin, "gateway-bin", "", "use this gateway binary instead of building ./cmd/passerelle")
	fs.StringVar(&o.postgres, "postgres", "", "PostgreSQL DSN for the gateway (default: SQLite in the state directory)")
	fs.IntVar(&o.waPort, "wa-port", 29321, "WhatsApp simulator port on 127.0.0.1")
	fs.IntVar(&o.waControl, "wa-control-port", 29322, "WhatsApp simulator control API port on 127.0.0.1")
	fs.StringVar(&o.user, "user", "demo", "Matrix demo user's localpart (Dendrite allows a-z, 0-9 and _-+=./)")
	fs.StringVar(&o.password, "password", "", fmt.Sprintf("Matrix demo user's password, %d to %d bytes (default: random)", minPasswordLength, maxPasswordLength))
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	return o, o.validate()
}

// Dendrite's limits for a new user (internal/validate.go in v0.13.8): it
// refuses anything else only once everything else has started.
const (
	minPasswordLength = 8
	maxPasswordLength = 512
)

var validLocalpart = regexp.MustCompile(`^[0-9a-z_\-+=./]+$`)

// validate refuses, before anything starts, the flags that would make a
// component fail later.
func (o options) validate() error {
	if n := len(o.password); n > 0 && n < minPasswordLength {
		return fmt.Errorf("-password is %d characters long; Dendrite wants at least %d", n, minPasswordLength)
	} else if n > maxPasswordLength {
		return fmt.Errorf("-password is %d bytes long; Dendrite takes at most %d", n, maxPasswordLength)
	}
	if !validLocalpart.MatchString(o.user) {
		return fmt.Errorf("-user %q is not a valid Matrix localpart for Dendrite: use lower-case letters, digits and _-+=./", o.user)
	}
	if strings.HasPrefix(o.user, "passerelle") {
		return fmt.Errorf("-user %q is in the gateway's namespace (passerelle...): pick another name", o.user)
	}
	ports := map[int]string{}
	for _, p := range []struct {
		flag string
		port int
	}{
		{"-hs-port", o.hsPort}, {"-gateway-port", o.gwPort}, {"-sim-port", o.simPort},
		{"-control-port", o.controlPort}, {"-wa-port", o.waPort}, {"-wa-control-port", o.waControl},
	} {
		if p.port <= 0 || p.port > 65535 {
			return fmt.Errorf("%s %d is not a TCP port", p.flag, p.port)
		}
		if other, dup := ports[p.port]; dup {
			return fmt.Errorf("%s and %s are both %d", other, p.flag, p.port)
		}
		ports[p.port] = p.flag
	}
	return nil
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	base, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	runDir := filepath.Join(base, "run")
	if err = os.RemoveAll(runDir); err != nil {
		return err
	}
	if err = os.MkdirAll(runDir, 0o700); err != nil {
		return err
	}
	for _, p := range []int{o.hsPort, o.gwPort, o.simPort, o.controlPort, o.waPort, o.waControl} {
		if err = portFree(p); err != nil {
			return fmt.Errorf("%w (is another devstack running? pick other ports with -hs-port, -gateway-port, -sim-port, -control-port, -wa-port, -wa-control-port)", err)
		}
	}

	step("Dendrite " + stack.DendriteVersion + " (installed from source if missing: a few minutes the first time)")
	binDir, err := stack.EnsureDendrite(ctx)
	if err != nil {
		return err
	}

	gwBin := o.gatewayBin
	if gwBin == "" {
		step("building the gateway (first build takes a minute or two)")
		var took time.Duration
		if gwBin, took, err = stack.BuildGateway(ctx, filepath.Join(base, "bin"), "devstack"); err != nil {
			return err
		}
		fmt.Printf("   built in %s\n", took.Round(100*time.Millisecond))
	}

	step("Telegram simulator")
	simLog, err := zap.Config{
		Level:            zap.NewAtomicLevelAt(zap.DebugLevel),
		Encoding:         "console",
		EncoderConfig:    zap.NewDevelopmentEncoderConfig(),
		OutputPaths:      []string{filepath.Join(runDir, "tgsim.log")},
		ErrorOutputPaths: []string{filepath.Join(runDir, "tgsim.log")},
	}.Build()
	if err != nil {
		return err
	}
	defer simLog.Sync() //nolint:errcheck
	sim, err := tgsim.New(tgsim.Options{
		Addr:      "127.0.0.1:" + strconv.Itoa(o.simPort),
		FixedCode: demoCode,
		Logger:    simLog,
	})
	if err != nil {
		return err
	}
	defer sim.Close()
	if err = populate(sim); err != nil {
		return err
	}
	controlURL := "http://127.0.0.1:" + strconv.Itoa(o.controlPort)
	controlLn, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(o.controlPort))
	if err != nil {
		return err
	}
	control := &http.Server{Handler: sim.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = control.Serve(controlLn) }()
	defer control.Close()

	step("WhatsApp simulator")
	wa, err := startWhatsApp(ctx, "127.0.0.1:"+strconv.Itoa(o.waPort), "127.0.0.1:"+strconv.Itoa(o.waControl))
	if err != nil {
		return err
	}
	defer wa.close()

	step("gateway config and registration")
	hsURL := "http://127.0.0.1:" + strconv.Itoa(o.hsPort)
	gw, err := stack.NewGateway(ctx, stack.GatewayOptions{
		Binary:        gwBin,
		Dir:           filepath.Join(runDir, "gateway"),
		HomeserverURL: hsURL,
		Port:          o.gwPort,
		PostgresURI:   o.postgres,
		Permissions: map[string]string{
			"localhost":                 "user",
			"@" + o.user + ":localhost": "admin",
		},
		Telegram: &stack.TelegramTestServer{DC: sim.DC(), Address: sim.Addr(), PublicKeyPEM: sim.PublicKeyPEM()},
		WhatsApp: &stack.WhatsAppTestServer{Address: wa.sim.Addr(), RootPublicKeyHex: wasim.RootPublicKeyHex(whatsAppSeed)},
	})
	if err != nil {
		return err
	}

	step("starting Dendrite")
	dendrite, err := stack.StartDendrite(ctx, stack.DendriteOptions{
		BinDir:                binDir,
		DataDir:               filepath.Join(runDir, "dendrite"),
		Port:                  o.hsPort,
		AppServiceConfigFiles: gw.RegistrationFiles(),
	})
	if err != nil {
		return err
	}
	defer dendrite.Stop() //nolint:errcheck
	fmt.Printf("   answering after %s\n", dendrite.StartDuration.Round(time.Millisecond))

	step("starting the gateway")
	if err = gw.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, tail(gw.Log(), 40))
		return err
	}
	defer gw.Stop() //nolint:errcheck
	fmt.Printf("   ready after %s\n", gw.ReadyDuration.Round(time.Millisecond))

	password := o.password
	if password == "" {
		password = randomPassword()
	}
	if _, err = dendrite.RegisterUser(ctx, o.user, password, false); err != nil {
		return err
	}
	botID, err := gw.BotUserID()
	if err != nil {
		return err
	}
	printSummary(summary{
		hsURL: hsURL, user: dendrite.UserID(o.user), password: password, botID: botID,
		sim: sim, controlURL: controlURL, runDir: runDir, gw: gw, dendrite: dendrite, wa: wa,
	})

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nstopping…")
			return nil
		case <-tick.C:
			if !gw.Running() {
				fmt.Fprintln(os.Stderr, tail(gw.Log(), 40))
				return errors.New("the gateway exited; its log is " + gw.StdoutPath)
			}
			if dendrite.Exited() {
				return errors.New("Dendrite exited; its log is " + dendrite.LogPath)
			}
		}
	}
}

type summary struct {
	hsURL, user, password, botID, controlURL, runDir string
	sim                                              *tgsim.Server
	wa                                               *whatsAppDemo
	gw                                               *stack.Gateway
	dendrite                                         *stack.Dendrite
}

func printSummary(s summary) {
	rel := func(p string) string {
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		return p
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("")
	w("Passerelle dev stack is running on 127.0.0.1. Ctrl-C stops everything.")
	w("")
	w("Matrix")
	w("  homeserver      %s   (Dendrite %s, server name localhost)", s.hsURL, stack.DendriteVersion)
	w("  demo user       %s   password: %s", s.user, s.password)
	w("  bridge bot      %s   open an encrypted DM with it, send: help, then: login", s.botID)
	w("")
	w("Telegram simulator (in this process, forgotten at exit)")
	w("  DC %d at %s", s.sim.DC(), s.sim.Addr())
	w("  login code      %s (for every phone)", demoCode)
	for _, d := range demoAccounts {
		w("  %-10s      %s %s, @%s (%s)", "+"+strings.TrimPrefix(d.spec.Phone, "+"), d.spec.FirstName, d.spec.LastName, d.spec.Username, d.about)
	}
	w("  public key:")
	for _, line := range strings.Split(strings.TrimSpace(s.sim.PublicKeyPEM()), "\n") {
		w("    %s", line)
	}
	w("")
	w("Simulator control API (loopback only): %s", s.controlURL)
	w("  curl -s %s/accounts", s.controlURL)
	w("  curl -s -X POST %s/send -d '{\"from\":\"+15550002\",\"to\":\"+15550001\",\"text\":\"Hello from Alice\"}'", s.controlURL)
	w("  curl -s '%s/messages?a=%%2B15550001&b=%%2B15550002'", s.controlURL)
	w("")
	s.wa.describe(w)
	w("")
	w("Logs")
	w("  gateway         %s (JSON: %s)", rel(s.gw.StdoutPath), rel(s.gw.LogPath))
	w("  Dendrite        %s", rel(s.dendrite.LogPath))
	w("  simulator       %s", rel(filepath.Join(s.runDir, "tgsim.log")))
	fmt.Print(b.String())
}

func step(msg string) { fmt.Println("==>", msg) }

func portFree(port int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("port %d on 127.0.0.1 is taken", port)
	}
	return ln.Close()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
