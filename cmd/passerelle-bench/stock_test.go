package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestStockRatios checks Passerelle's ratios to stock bridgev2 are taken
// repetition by repetition (same Dendrite state), summarized, and printed
// with their spread.
func TestStockRatios(t *testing.T) {
	pass := &scenarioResult{Reps: []repResult{{HomeserverCPUms: 30, GatewayCPUms: 4}, {HomeserverCPUms: 40, GatewayCPUms: 6}, {HomeserverCPUms: 33, GatewayCPUms: 3}}}
	stock := &scenarioResult{Reps: []repResult{{HomeserverCPUms: 30, GatewayCPUms: 2}, {HomeserverCPUms: 20, GatewayCPUms: 3}, {HomeserverCPUms: 30, GatewayCPUms: 2}}}
	r := stockRatios(pass, stock)
	if hs := r["homeserver_cpu_passerelle_over_stock"]; hs.Median != 1.1 || hs.Min != 1 || hs.Max != 2 {
		t.Errorf("homeserver ratio %+v, want median 1.1 (1, 2, 1.1)", hs)
	}
	if gw := r["gateway_cpu_passerelle_over_stock"]; gw.Median != 2 || gw.Min != 1.5 || gw.Max != 2 {
		t.Errorf("gateway ratio %+v, want median 2 (2, 2, 1.5)", gw)
	}
	var out bytes.Buffer
	printStockRatios(&out, &report{Repetitions: 3, Ratios: r})
	for _, want := range []string{
		"homeserver CPU per message, Passerelle / stock bridgev2: 1.10× ±91%",
		"gateway CPU per message, Passerelle / stock bridgev2: 2.00× ±25%",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed %q, want a line %q", out.String(), want)
		}
	}
}
