package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/hscaps"
	"github.com/passerelle/passerelle/internal/stack"
)

// TestHomeserverCapabilitiesOnDendrite: at start the gateway detects what
// the real Dendrite of the stack can do, logs it (one line per feature that
// runs degraded, limited or on a fallback) and serves the same table on
// /homeserver: spec v1.2 only (bridgev2 wants v1.4: degraded), no ephemeral
// push (receipts and typing read with /sync), no to-device push (the bot's
// own device), authenticated media, and the upload limit Dendrite's config
// sets. With federation on, Dendrite tells its name on
// /_matrix/federation/v1/version and the table says "never" instead of "not
// seen yet".
func TestHomeserverCapabilitiesOnDendrite(t *testing.T) {
	t.Run("federation off", func(t *testing.T) { homeserverCapabilities(t, false) })
	t.Run("federation on", func(t *testing.T) { homeserverCapabilities(t, true) })
}

func homeserverCapabilities(t *testing.T, federation bool) {
	const uploadLimit = 7 << 20 // not Dendrite's default, so that the test sees it read
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := NewStack(t, StackOptions{
		DendritePatch: func(doc *stack.YAMLDoc) error {
			if err := doc.Set("global.disable_federation", !federation); err != nil {
				return err
			}
			return doc.Set("media_api.max_file_size_bytes", uploadLimit)
		},
		GatewayPatch: func(doc *stack.YAMLDoc) error {
			if err := doc.Set("network.metrics.enabled", true); err != nil {
				return err
			}
			return doc.Set("network.metrics.listen", fmt.Sprintf("127.0.0.1:%d", port))
		},
	})

	var report hscaps.Report
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(base + "/homeserver")
		if err != nil {
			t.Fatal(err)
		}
		code := resp.StatusCode
		if code == http.StatusOK {
			err = json.NewDecoder(resp.Body).Decode(&report)
		}
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/homeserver answered %d for a minute", code)
		}
		<-tick.C
	}
	t.Logf("Dendrite as detected: server %+v, latest %s, unstable %v, upload %d", report.Server, report.Latest, report.Flags(), report.UploadSize)
	for _, row := range report.Rows {
		t.Logf("  %-48s %-40s %-9s %s", row.Capability, row.Detected, row.Status, row.Effect)
	}

	if report.Latest != "v1.2" {
		t.Errorf("latest spec version = %s, want v1.2 (Dendrite v0.13.8)", report.Latest)
	}
	if report.UploadSize != uploadLimit {
		t.Errorf("upload size = %d, want Dendrite's media_api.max_file_size_bytes %d", report.UploadSize, uploadLimit)
	}
	want := map[string]hscaps.Status{
		hscaps.CapSpec:        hscaps.Degraded,
		hscaps.CapEphemeral:   hscaps.Fallback,
		hscaps.CapDeviceLists: hscaps.Fallback,
		hscaps.CapDevices:     hscaps.Fallback,
		hscaps.CapPing:        hscaps.Fallback,
		hscaps.CapAuthMedia:   hscaps.OK,
		hscaps.CapBatchSend:   hscaps.Fallback,
		hscaps.CapUploadSize:  hscaps.Limited,
	}
	for capability, status := range want {
		row, ok := report.Row(capability)
		if !ok || row.Status != status {
			t.Errorf("%s: %+v, want status %s", capability, row, status)
		}
	}
	if row, _ := report.Row(hscaps.CapEphemeral); !strings.Contains(row.Effect, "/sync") || row.Detected == "yes (seen pushed)" {
		t.Errorf("receipts and typing: %+v, want read with /sync, never seen pushed", row)
	}
	wantName, wantDetected := "", "not seen yet (not advertised in /versions)"
	if federation {
		wantName, wantDetected = "Dendrite", "no (Dendrite never pushes them)"
	}
	if report.Server.Name != wantName {
		t.Errorf("server name = %q, want %q", report.Server.Name, wantName)
	}
	if row, _ := report.Row(hscaps.CapEphemeral); row.Detected != wantDetected {
		t.Errorf("ephemeral push detected %q, want %q", row.Detected, wantDetected)
	}
	if row, _ := report.Row(hscaps.CapUploadSize); row.Detected != "7 MB" {
		t.Errorf("upload limit detected %q, want 7 MB", row.Detected)
	}

	// The operator reads the same in the log: the versions, and one line
	// per feature that is not plainly OK.
	log, err := os.ReadFile(s.Gateway.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var sawVersions, sawSpec bool
	for _, line := range strings.Split(string(log), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		switch entry["message"] {
		case "Homeserver capabilities":
			sawVersions = entry["latest_spec_version"] == "v1.2"
		case "Feature degraded by the homeserver":
			sawSpec = sawSpec || entry["capability"] == hscaps.CapSpec
		}
	}
	if !sawVersions || !sawSpec {
		t.Errorf("gateway log: versions line %v, degraded spec line %v; want both", sawVersions, sawSpec)
	}
}
