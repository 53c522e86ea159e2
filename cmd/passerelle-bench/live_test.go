package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadShort runs the creation and flood scenarios' short mode on one
// stack (3 portals made at once, then a flood of 200) and checks what an
// operator reads: every portal made and every first message decrypted,
// nothing of the flood lost, the live probe's messages all arrived, the
// targets stated, and the same in the JSON file. No timing is asserted.
func TestLoadShort(t *testing.T) { loadShort(t, netTelegram) }

// TestLoadShortWhatsApp: the same with WhatsApp on Passerelle's side (the
// staff member linked by QR code, the contacts sending from the WhatsApp
// simulator's phones).
func TestLoadShortWhatsApp(t *testing.T) { loadShort(t, netWhatsApp) }

func loadShort(t *testing.T, network string) {
	needTools(t)
	o, err := parseFlags([]string{"-scenario", "creation", "-short", "-network", network, "-json", filepath.Join(t.TempDir(), "load.json"), "-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.create) != 1 || o.create[0] != 3 {
		t.Fatalf("-short creates %v portals at once, want 3", o.create)
	}
	fo, err := parseFlags([]string{"-scenario", "flood", "-short"})
	if err != nil || fo.n != 200 {
		t.Fatalf("-scenario flood -short floods %d messages (%v), want 200", fo.n, err)
	}
	o.n = fo.n
	if bin := os.Getenv("PASSERELLE_E2E_GATEWAY_BIN"); bin != "" {
		o.gatewayBin = bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := runLoad(ctx, o, &out, "creation", "flood")
	t.Logf("output:\n%s", out.String())
	if err != nil {
		if data, rerr := os.ReadFile(filepath.Join(o.dir, "gateway", "gateway.stdout.log")); rerr == nil {
			t.Logf("gateway log tail:\n%s", tailLines(string(data), 60))
		}
		t.Fatal(err)
	}
	text := out.String()
	if rep.Network != network {
		t.Errorf("the report's network is %q, want %q", rep.Network, network)
	}
	for _, want := range []string{"Passerelle bridges " + network, "portal creation:", "flood:", "target creation of 3", "target flood of 200", "requests per created portal"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output has no %q", want)
		}
	}
	if len(rep.Creation) != 1 || len(rep.Flood) != 1 {
		t.Fatalf("%d creation and %d flood results, want one each", len(rep.Creation), len(rep.Flood))
	}
	// createPortals fails unless every portal was joined and every first
	// message decrypted; these are what it measured of them.
	c := rep.Creation[0]
	if c.Portals != 3 || !(c.HomeserverCPUs > 0) || !(c.BareHomeserverCPUs > 0) || !(c.GatewayCPUs > 0) || !(c.AllDecryptedS > 0) || !(c.ProbedAllDecryptedS > 0) {
		t.Errorf("creation of 3: %+v, want every figure measured", c)
	}
	for name, p := range map[string]probeStats{"creation": c.Probe, "flood": rep.Flood[0].Probe} {
		if p.Sent < 2 || p.Seen != p.Sent || !(p.MaxMs > 0) {
			t.Errorf("live probe during the %s: %d sent, %d decrypted (max %v ms), want every one", name, p.Sent, p.Seen, p.MaxMs)
		}
	}
	if f := rep.Flood[0]; f.Messages != 200 || f.Delivered != 200 || f.OutOfOrder != 0 || !(f.DurationS > 0) || !(f.GatewayPeakRSSMB > 0) {
		t.Errorf("flood: %d of %d delivered (%d out of order) in %v s (gateway peak %v MB), want all 200 in order and the peak measured", f.Delivered, f.Messages, f.OutOfOrder, f.DurationS, f.GatewayPeakRSSMB)
	}
	data, err := os.ReadFile(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err = json.Unmarshal(data, &back); err != nil {
		t.Fatalf("the JSON file does not parse: %v", err)
	}
	for _, key := range []string{"machine", "network", "creation", "flood", "targets"} {
		if _, ok := back[key]; !ok {
			t.Errorf("the JSON file has no %q", key)
		}
	}
}
