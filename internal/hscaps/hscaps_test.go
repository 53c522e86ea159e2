package hscaps

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
)

func versions(t *testing.T, name string) *mautrix.RespVersions {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v mautrix.RespVersions
	if err = json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// defaults are the switches `passerelle -e` writes.
var defaults = Switches{DoublePuppet: true, Ephemeral: "auto"}

func TestDecideHomeservers(t *testing.T) {
	type want struct {
		status   Status
		detected string // substring
		effect   string // substring
	}
	for _, tc := range []struct {
		name   string
		file   string
		server Software
		sw     Switches
		upload int64
		known  bool
		latest string
		rows   map[string]want
	}{{
		name: "dendrite as the e2e stack runs it", file: "dendrite-0.13.8.json",
		server: Software{Name: "Dendrite", Version: "0.13.8+9a6a8c"}, sw: defaults,
		upload: 10 << 20, known: true, latest: "v1.2",
		rows: map[string]want{
			CapSpec:        {Degraded, "v1.2", "--ignore-unsupported-server"},
			CapEphemeral:   {Fallback, "Dendrite never pushes", "one /sync per staff member"},
			CapDeviceLists: {Fallback, "Dendrite never pushes", "bot's own device"},
			CapDevices:     {Fallback, "404", "m.login.application_service"},
			CapPing:        {Fallback, "no", "not checked"},
			CapAuthMedia:   {OK, "yes", "/_matrix/client/v1/media"},
			CapBatchSend:   {Fallback, "no", "replayed forward"},
			CapUploadSize:  {Limited, "10 MB", "over 10 MB"},
		},
	}, {
		name: "dendrite with appservice encryption switched on", file: "dendrite-0.13.8.json",
		server: Software{Name: "Dendrite"}, sw: Switches{DoublePuppet: true, EncryptionAppservice: true, MSC4190: true},
		latest: "v1.2",
		rows: map[string]want{
			CapDeviceLists: {Degraded, "never pushes", "set it to false"},
			CapDevices:     {Degraded, "404", "set it to false"},
			CapUploadSize:  {Fallback, "unknown", "refuses those over its limit"},
		},
	}, {
		name: "synapse, receipts not pushed yet", file: "synapse.json",
		server: Software{Name: "Synapse", Version: "1.140.0"}, sw: defaults,
		upload: 50 << 20, known: true, latest: "v1.12",
		rows: map[string]want{
			CapSpec:        {OK, "v1.12", "supported"},
			CapEphemeral:   {Fallback, "not seen yet", "until the homeserver is seen pushing"},
			CapDeviceLists: {Fallback, "a homeserver setting", "bot's own device"},
			CapPing:        {OK, "yes", "checked at start"},
			CapAuthMedia:   {OK, "yes", ""},
			CapBatchSend:   {Fallback, "no", "replayed forward"},
			CapUploadSize:  {Limited, "50 MB", "over 50 MB"},
		},
	}, {
		name: "synapse with everything pushed", file: "synapse.json",
		server: Software{Name: "Synapse"},
		sw:     Switches{DoublePuppet: true, Ephemeral: "auto", EphemeralSeen: true, EncryptionAppservice: true, MSC4190: true},
		known:  true, latest: "v1.12",
		rows: map[string]want{
			CapEphemeral:   {OK, "seen pushed", "no /sync"},
			CapDeviceLists: {OK, "a homeserver setting", "pushed in transactions"},
			CapDevices:     {OK, "a homeserver setting", "through MSC4190"},
			CapUploadSize:  {Limited, "not advertised", "assumes 50 MB"},
		},
	}, {
		name: "synapse, ephemeral: sync although pushed", file: "synapse.json",
		sw:     Switches{DoublePuppet: true, Ephemeral: "sync", EphemeralSeen: true},
		latest: "v1.12",
		rows: map[string]want{
			CapEphemeral: {Fallback, "seen pushed", "set auto"},
		},
	}, {
		name: "conduwuit (server name unknown)", file: "conduwuit.json", sw: defaults,
		upload: 20 << 20, known: true, latest: "v1.11",
		rows: map[string]want{
			CapSpec:       {OK, "v1.11", ""},
			CapEphemeral:  {Fallback, "not seen yet", "until the homeserver is seen pushing"},
			CapPing:       {OK, "yes", ""}, // v1.11 includes v1.7
			CapAuthMedia:  {OK, "yes", ""},
			CapUploadSize: {Limited, "20 MB", ""},
		},
	}, {
		name: "continuwuity, ephemeral: push never seen", file: "continuwuity.json",
		server: Software{Name: "continuwuity", Version: "0.5.0"}, sw: Switches{DoublePuppet: true, Ephemeral: "push"},
		latest: "v1.16",
		rows: map[string]want{
			CapEphemeral: {Degraded, "not seen yet", "until the homeserver pushes them"},
		},
	}, {
		name: "conduit, double puppeting off", file: "conduwuit.json",
		server: Software{Name: "Conduit"}, sw: Switches{Ephemeral: "auto"},
		latest: "v1.11",
		rows: map[string]want{
			CapEphemeral: {Degraded, "Conduit never pushes", "double puppeting is off"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := Decide(Input{Versions: versions(t, tc.file), Server: tc.server, Switches: tc.sw,
				UploadSize: tc.upload, UploadSizeKnown: tc.known})
			if r.Latest != tc.latest {
				t.Errorf("latest = %s, want %s", r.Latest, tc.latest)
			}
			if len(r.Rows) != 8 {
				t.Errorf("%d rows, want the 8 capabilities", len(r.Rows))
			}
			for capability, w := range tc.rows {
				row, ok := r.Row(capability)
				if !ok {
					t.Errorf("no row for %s", capability)
					continue
				}
				if row.Status != w.status || !strings.Contains(row.Detected, w.detected) || !strings.Contains(row.Effect, w.effect) {
					t.Errorf("%s = {%s, detected %q, effect %q}, want {%s, detected ~%q, effect ~%q}",
						capability, row.Status, row.Detected, row.Effect, w.status, w.detected, w.effect)
				}
			}
		})
	}
}

func TestReportNamesRelevantFlags(t *testing.T) {
	r := Decide(Input{Versions: versions(t, "synapse.json")})
	if got := strings.Join(r.Flags(), ","); got != "fi.mau.msc2659.stable,uk.tcpip.msc4133.stable" {
		t.Errorf("flags = %s", got)
	}
	// Advertised as false: named, but not among the flags that are on.
	if on, ok := r.Unstable["com.beeper.msc4169"]; !ok || on {
		t.Errorf("com.beeper.msc4169 = %v, %v; want present and false", on, ok)
	}
	d := Decide(Input{Versions: versions(t, "dendrite-0.13.8.json")})
	if got := strings.Join(d.Flags(), ","); got != "org.matrix.msc3916.stable" {
		t.Errorf("dendrite flags = %s", got)
	}
	var notOK []string
	for _, row := range d.NotOK() {
		notOK = append(notOK, row.Capability)
	}
	if len(notOK) != 7 || notOK[0] != CapSpec {
		t.Errorf("dendrite rows not OK = %v, want all but authenticated media", notOK)
	}
}

func TestDecideEmptyAnswer(t *testing.T) {
	r := Decide(Input{})
	row, _ := r.Row(CapSpec)
	if row.Status != Degraded {
		t.Errorf("no versions: spec row %s, want degraded", row.Status)
	}
}
