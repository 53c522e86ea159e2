package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// Scenarios "creation" and "flood" load the gateway while a live probe
// (probe.go) measures what an existing portal's messages wait meanwhile.
// They share one stack: Dendrite, the network's simulator (-network), the
// gateway with the staff member logged in, and the probe's portal, without
// the burst's references.

// loadReport is a creation or flood run, as written to -json.
type loadReport struct {
	Started      time.Time        `json:"started"`
	Machine      stack.Machine    `json:"machine"`
	DendriteCPUs string           `json:"dendrite_cpus,omitempty"`
	LoadCPUs     string           `json:"load_cpus,omitempty"`
	Dendrite     string           `json:"dendrite_version"`
	GatewayLog   string           `json:"gateway_log_level"`
	Network      string           `json:"network"`
	Creation     []creationResult `json:"creation,omitempty"`
	Flood        []floodResult    `json:"flood,omitempty"`
	Targets      []string         `json:"targets"`
	Warnings     []string         `json:"warnings,omitempty"`
}

// runLoad runs the creation and/or flood scenarios (kinds, in that order)
// on one stack.
func runLoad(ctx context.Context, o options, out io.Writer, kinds ...string) (*loadReport, error) {
	b := &bench{o: o, out: out}
	rep := &loadReport{Started: time.Now().UTC(), Machine: stack.ThisMachine(), Dendrite: stack.DendriteVersion, GatewayLog: o.gatewayLog, Network: o.network}
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
		rep.DendriteCPUs, rep.LoadCPUs = "0", "1"
		if rep.Machine.Cores > 2 {
			rep.LoadCPUs = fmt.Sprintf("1-%d", rep.Machine.Cores-1)
		}
		if out, err := exec.CommandContext(ctx, "taskset", "-a", "-p", "-c", rep.LoadCPUs, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("failed to pin the load to CPUs %s (is taskset installed?): %w\n%s", rep.LoadCPUs, err, out)
		}
	}
	b.logf("machine: %d cores, %s; Dendrite %s on CPUs %q, load on %q; Passerelle bridges %s", rep.Machine.Cores, rep.Machine.CPUModel, stack.DendriteVersion, rep.DendriteCPUs, rep.LoadCPUs, o.network)
	if err = b.setUpLive(ctx, rep.DendriteCPUs); err != nil {
		return nil, err
	}
	for _, kind := range kinds {
		switch kind {
		case "creation":
			for r := 1; r <= o.reps; r++ {
				for _, k := range o.create {
					res, err := b.creation(ctx, k, fmt.Sprintf("c%dr%d", k, r))
					if err != nil {
						return nil, fmt.Errorf("creation of %d portals, repetition %d: %w", k, r, err)
					}
					rep.Creation = append(rep.Creation, res)
					b.logf("rep %d, %d portals at once: homeserver %.3f CPU-s/portal, gateway %.3f CPU-s/portal, all first messages decrypted in %.1f s; live probe p50 %.0f ms p99 %.0f ms max %.0f ms (%d/%d)",
						r, k, res.HomeserverCPUs, res.GatewayCPUs, res.AllDecryptedS, res.Probe.P50ms, res.Probe.P99ms, res.Probe.MaxMs, res.Probe.Seen, res.Probe.Sent)
				}
			}
		case "flood":
			for r := 1; r <= o.reps; r++ {
				res, err := b.flood(ctx, o.n, fmt.Sprintf("f%d", r))
				if err != nil {
					return nil, fmt.Errorf("flood of %d, repetition %d: %w", o.n, r, err)
				}
				rep.Flood = append(rep.Flood, res)
				b.logf("rep %d, flood of %d: %d delivered in %.1f s, %d stall lines; live probe p50 %.0f ms p99 %.0f ms max %.0f ms (%d/%d)",
					r, res.Messages, res.Delivered, res.DurationS, len(res.Stalls), res.Probe.P50ms, res.Probe.P99ms, res.Probe.MaxMs, res.Probe.Seen, res.Probe.Sent)
			}
		default:
			return nil, fmt.Errorf("unknown load scenario %q", kind)
		}
	}
	rep.Targets, rep.Warnings = loadTargets(rep)
	printLoad(out, rep)
	b.printProfiles(out)
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

// setUpLive starts Dendrite and the gateway, logs the bench user and the
// staff member's account (and -creators others) in, and opens the live
// probe's portal.
func (b *bench) setUpLive(ctx context.Context, dendriteCPUs string) error {
	setupCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	binDir, gwBin, sim, err := prepareStack(setupCtx, b.o, b.dir, b.logf, zap.WarnLevel)
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
	if b.probeContact, err = b.net().addNamed("Paula", "Probe"); err != nil {
		return err
	}
	hsPort, err := stack.FreePort()
	if err != nil {
		return err
	}
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
			if err := pprofPatch(doc); err != nil {
				return err
			}
			return doc.Set("logging.min_level", b.o.gatewayLog)
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
	mgmt, err := b.startAndLogIn(setupCtx, binDir, hsPort, dendriteCPUs, append(b.gw.RegistrationFiles(), b.bare.regPath))
	if err != nil {
		return err
	}
	for range b.o.creators {
		if err = b.net().addStaff(setupCtx, b, mgmt); err != nil {
			return fmt.Errorf("staff login %d: %w", b.net().staffs(), err)
		}
		b.creators = append(b.creators, b.net().staffs()-1)
	}
	if len(b.creators) == 0 {
		b.creators = []int{0}
	}
	b.logf("%d staff logins receive the new chats", len(b.creators))
	if b.probePortal, err = b.openPortal(setupCtx, b.probeContact, 0, "Paula Probe"); err != nil {
		return err
	}
	b.logf("live probe portal %s ready", b.probePortal)
	return nil
}

// logOffset is the gateway log's size now: what is logged from here on
// belongs to the next load.
func (b *bench) logOffset() int64 {
	fi, err := os.Stat(b.gw.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// stallPatterns are what bridgev2 and gotd log when their queues fill or
// the update stream falls behind.
var stallPatterns = []string{
	"event channel is full", "event channel is still full", // bridgev2 portal queue
	"Difference too long", "Handle updates error", "Empty buffer", // gotd updates
	"Event handling is taking long",                                            // bridgev2's slow event warning
	"message ordering is no longer guaranteed", "Node handling is taking long", // whatsmeow
}

// stallLines are the gateway log lines from offset on that match a stall pattern.
func (b *bench) stallLines(offset int64) ([]string, error) {
	f, err := os.Open(b.gw.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err = f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		low := strings.ToLower(line)
		for _, p := range stallPatterns {
			if strings.Contains(low, strings.ToLower(p)) {
				if len(line) > 300 {
					line = line[:300]
				}
				out = append(out, line)
				break
			}
		}
	}
	return out, nil
}

// namedContact is a contact of the creation and flood scenarios: its index
// in the net's contacts and its first name, which its portal's name holds.
type namedContact struct {
	i     int
	first string
}

// newContacts makes k contacts named "<prefix>-NNN Contact".
func (b *bench) newContacts(k int, prefix string) ([]namedContact, error) {
	out := make([]namedContact, k)
	for n := range k {
		first := fmt.Sprintf("%s-%03d", prefix, n)
		i, err := b.net().addNamed(first, "Contact")
		if err != nil {
			return nil, err
		}
		out[n] = namedContact{i: i, first: first}
	}
	return out, nil
}

// liveTarget is issue 13's bound on a live message's wait during a load.
const liveTargetMs = 2000

// creationTargetCPUs is issue 13's bound on homeserver CPU per portal.
const creationTargetCPUs = 0.25

// loadTargets states each target against the run, and the warnings.
func loadTargets(rep *loadReport) (targets, warnings []string) {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	for _, c := range rep.Creation {
		targets = append(targets, fmt.Sprintf("creation of %d: homeserver %.3f CPU-s per portal (target ≤ %.2f: %s; a bare appservice's room and join: %.3f); live probe max %.0f ms (target ≤ %d ms: %s)",
			c.Portals, c.HomeserverCPUs, creationTargetCPUs, verdict(c.HomeserverCPUs <= creationTargetCPUs), c.BareHomeserverCPUs, c.Probe.MaxMs, liveTargetMs, verdict(c.Probe.MaxMs <= liveTargetMs)))
		if c.IdleTimeout {
			warnings = append(warnings, fmt.Sprintf("creation of %d: a process was still busy at the idle bound; its CPU figures stop there", c.Portals))
		}
		if c.Probe.Seen < c.Probe.Sent {
			warnings = append(warnings, fmt.Sprintf("creation of %d: the live probe's client decrypted %d of %d", c.Portals, c.Probe.Seen, c.Probe.Sent))
		}
	}
	for _, f := range rep.Flood {
		targets = append(targets, fmt.Sprintf("flood of %d: %d delivered (%s), %d out of order (%s), %d stall log lines (%s), live probe p99 %.0f ms (target ≤ %d ms: %s)",
			f.Messages, f.Delivered, verdict(f.Delivered == f.Messages), f.OutOfOrder, verdict(f.OutOfOrder == 0), len(f.Stalls), verdict(len(f.Stalls) == 0), f.Probe.P99ms, liveTargetMs, verdict(f.Probe.P99ms <= liveTargetMs)))
		if f.IdleTimeout {
			warnings = append(warnings, fmt.Sprintf("flood of %d: a process was still busy at the idle bound; its CPU figures stop there", f.Messages))
		}
	}
	return targets, warnings
}

func printLoad(w io.Writer, rep *loadReport) {
	fmt.Fprintf(w, "\nmachine: %d cores, %s (%s/%s, Linux %s); Passerelle bridges %s\n", rep.Machine.Cores, rep.Machine.CPUModel, rep.Machine.OS, rep.Machine.Arch, rep.Machine.Kernel, rep.Network)
	if rep.DendriteCPUs != "" {
		fmt.Fprintf(w, "Dendrite %s pinned to CPU %s; gateway, js client and load on CPUs %s; gateway log level %s\n", rep.Dendrite, rep.DendriteCPUs, rep.LoadCPUs, rep.GatewayLog)
	} else {
		fmt.Fprintf(w, "Dendrite %s not pinned (one core); gateway log level %s\n", rep.Dendrite, rep.GatewayLog)
	}
	if len(rep.Creation) > 0 {
		fmt.Fprintf(w, "\nportal creation: K contacts send a first message at once (quiet pass: CPU, time; second pass: live probe every %s on an existing portal)\n", probeEvery)
		fmt.Fprintf(w, "%8s  %12s  %12s  %12s  %12s  %14s  %12s  %22s\n", "portals", "HS CPU-s/p", "bare HS /room", "GW CPU-s/p", "all decr. s", "first p50/p99", "w/ probe s", "probe p50/p99/max ms")
		for _, c := range rep.Creation {
			fmt.Fprintf(w, "%8d  %12.3f  %12.3f  %12.3f  %12.1f  %14s  %12.1f  %22s\n", c.Portals, c.HomeserverCPUs, c.BareHomeserverCPUs, c.GatewayCPUs, c.AllDecryptedS,
				fmt.Sprintf("%.0f/%.0f", c.FirstP50ms, c.FirstP99ms), c.ProbedAllDecryptedS, fmt.Sprintf("%.0f/%.0f/%.0f (%d/%d)", c.Probe.P50ms, c.Probe.P99ms, c.Probe.MaxMs, c.Probe.Seen, c.Probe.Sent))
		}
		last := rep.Creation[len(rep.Creation)-1]
		if len(last.Requests) > 0 {
			fmt.Fprintf(w, "gateway → homeserver requests per created portal (%d at once, from the gateway's debug log):\n", last.Portals)
			for i, rc := range last.Requests {
				if i == 14 {
					break
				}
				fmt.Fprintf(w, "  %6.2f  %s\n", rc.PerMsg, rc.Request)
			}
		}
	}
	if len(rep.Flood) > 0 {
		fmt.Fprintf(w, "\nflood: one contact sends N messages at once into one portal; live probe every %s on another portal\n", probeEvery)
		fmt.Fprintf(w, "%8s  %10s  %9s  %10s  %14s  %12s  %12s  %12s  %7s  %22s\n", "messages", "delivered", "unordered", "duration s", "p50/p99 ms", "HS CPU-ms/m", "GW CPU-ms/m", "GW peak MB", "stalls", "probe p50/p99/max ms")
		for _, f := range rep.Flood {
			fmt.Fprintf(w, "%8d  %10d  %9d  %10.1f  %14s  %12.1f  %12.2f  %12.1f  %7d  %22s\n", f.Messages, f.Delivered, f.OutOfOrder, f.DurationS, fmt.Sprintf("%.0f/%.0f", f.P50ms, f.P99ms),
				f.HomeserverCPUms, f.GatewayCPUms, f.GatewayPeakRSSMB, len(f.Stalls), fmt.Sprintf("%.0f/%.0f/%.0f (%d/%d)", f.Probe.P50ms, f.Probe.P99ms, f.Probe.MaxMs, f.Probe.Seen, f.Probe.Sent))
			for i, s := range f.Stalls {
				if i == 5 {
					fmt.Fprintf(w, "  … %d more\n", len(f.Stalls)-5)
					break
				}
				fmt.Fprintf(w, "  stall: %s\n", s)
			}
		}
	}
	fmt.Fprintln(w)
	for _, t := range rep.Targets {
		fmt.Fprintf(w, "target %s\n", t)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
}

// parseCounts reads "1,10,100".
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a list of positive counts", s)
		}
		out = append(out, n)
	}
	return out, nil
}
