package main

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// The gateway's CPU profile split in parts: each sample is charged to the
// leaf-most frame of its stack that belongs to a known part, so that the
// network library's work (Signal or MTProto encryption, its protocol and
// its state store) is told apart from the bridge's (bridgev2, mautrix and
// Passerelle), which stock bridgev2's synthetic connector is compared
// with. A library calling back into the bridge (whatsmeow's event handler
// runs the bridge's code on its goroutine) is not charged for what the
// bridge does there: the leaf-most known frame is the bridge's. Samples
// with no known frame (the garbage collector, the scheduler, a cgo stack
// cut short) are "other".

// networkPrefixes are the network libraries and their stores.
var networkPrefixes = []string{
	"go.mau.fi/whatsmeow",
	"go.mau.fi/libsignal",
	"github.com/gotd/td",
	"github.com/passerelle/passerelle/bridges/whatsapp/wastore",
}

// bridgePrefixes are the bridge: the framework and Passerelle.
var bridgePrefixes = []string{
	"maunium.net/go/mautrix",
	"github.com/passerelle/passerelle",
}

// cpuParts is a CPU profile's samples by part.
type cpuParts struct {
	Network time.Duration `json:"network_library"`
	Bridge  time.Duration `json:"bridge"`
	Other   time.Duration `json:"other"`
}

func (p cpuParts) total() time.Duration { return p.Network + p.Bridge + p.Other }

// networkShare is the network library's share of the samples charged to
// a part (other left out: the garbage collector and the scheduler work for
// both).
func (p cpuParts) networkShare() float64 {
	if p.Network+p.Bridge == 0 {
		return 0
	}
	return float64(p.Network) / float64(p.Network+p.Bridge)
}

// partOf is the part of one function name, "" when it is in none.
func partOf(fn string) string {
	for _, pre := range networkPrefixes {
		if strings.HasPrefix(fn, pre) {
			return "network"
		}
	}
	for _, pre := range bridgePrefixes {
		if strings.HasPrefix(fn, pre) {
			return "bridge"
		}
	}
	return ""
}

// profileParts splits the CPU profile file (go tool pprof -traces).
func profileParts(file string) (cpuParts, error) {
	out, err := exec.Command("go", "tool", "pprof", "-traces", file).Output()
	if err != nil {
		return cpuParts{}, fmt.Errorf("go tool pprof -traces %s: %w", file, err)
	}
	return parseTraces(strings.NewReader(string(out)))
}

// parseTraces reads go tool pprof -traces output: a header, then one block
// per stack, blocks separated by "-----------+----…" lines, the first line
// of a block its value and leaf frame ("      50ms   runtime.cgocall"),
// the next lines the callers, leaf first.
func parseTraces(r io.Reader) (cpuParts, error) {
	var parts cpuParts
	var value time.Duration
	part := ""
	inBlock := false
	flush := func() {
		if !inBlock {
			return
		}
		switch part {
		case "network":
			parts.Network += value
		case "bridge":
			parts.Bridge += value
		default:
			parts.Other += value
		}
		inBlock, part, value = false, "", 0
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			inBlock = true
			continue
		}
		if !inBlock {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		fn := fields[0]
		if value == 0 && part == "" && len(fields) >= 2 {
			if d, err := time.ParseDuration(fields[0]); err == nil {
				value, fn = d, fields[1]
			}
		}
		if part == "" {
			part = partOf(fn)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return parts, err
	}
	if parts.total() == 0 {
		return parts, fmt.Errorf("no samples in the profile's traces")
	}
	return parts, nil
}

// printParts prints the parts of a CPU profile and, given the gateway's
// CPU-ms per message over the profiled pass, what the bridge's part of it
// comes to.
func printParts(w io.Writer, p cpuParts, gatewayCPUms float64) {
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(p.total()) }
	fmt.Fprintf(w, "gateway CPU by part (each sample charged to its leaf-most frame of a part): network library and its store (%s) %.1f%%, bridge (bridgev2, mautrix, Passerelle) %.1f%%, other (GC, scheduler, cut-short stacks) %.1f%%\n",
		"whatsmeow, libsignal, gotd, wastore", pct(p.Network), pct(p.Bridge), pct(p.Other))
	if gatewayCPUms > 0 {
		share := p.networkShare()
		fmt.Fprintf(w, "  of the profiled pass's %.2f gateway CPU-ms per message: network library %.2f, the rest %.2f (the other samples shared in proportion)\n",
			gatewayCPUms, gatewayCPUms*share, gatewayCPUms*(1-share))
	}
}
