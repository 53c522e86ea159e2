// Package hscaps decides, from what the homeserver answers and the gateway's
// switches, which homeserver capabilities Passerelle's features can rely on
// and which features run degraded or on a fallback. It does no I/O: the
// caller gives it the /_matrix/client/versions answer (bridgev2 fetched it
// already), the media config and, when the homeserver tells it, its name.
package hscaps

import (
	"sort"
	"strings"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/matrix"

	"github.com/passerelle/passerelle/bridges/media"
)

// Status says how a feature runs on this homeserver.
type Status string

const (
	// OK: the feature works as designed.
	OK Status = "ok"
	// Fallback: the capability is missing and Passerelle does the same
	// work another way (a /sync, a forward replay); users see no loss.
	Fallback Status = "fallback"
	// Limited: the feature works within a bound the homeserver sets.
	Limited Status = "limited"
	// Degraded: part of the feature is lost, or the gateway runs outside
	// what bridgev2 supports.
	Degraded Status = "degraded"
)

// Capability names, in the order of the report's rows (the README's table
// uses the same names).
const (
	CapSpec          = "spec v1.4+"
	CapEphemeral     = "MSC2409 ephemeral push"
	CapDeviceLists   = "MSC3202 device lists and to-device push"
	CapDevices       = "MSC4190 device management"
	CapPing          = "appservice ping (MSC2659, v1.7)"
	CapAuthMedia     = "authenticated media (MSC3916, v1.11)"
	CapBatchSend     = "batch send (MSC2716 / com.beeper.batch_sending)"
	CapUploadSize    = "media upload limit (m.upload.size)"
	defaultUploadCap = 50 << 20 // what bridgev2 assumes when the homeserver says nothing
)

// Software is the homeserver's name and version
// (/_matrix/federation/v1/version), when it answers.
type Software struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// Switches are the gateway's settings that decide which capabilities are
// used, and what was seen at run time.
type Switches struct {
	// EncryptionAppservice is encryption.appservice (MSC2409 to-device
	// and MSC3202 device lists pushed to the appservice).
	EncryptionAppservice bool
	// MSC4190 is encryption.msc4190.
	MSC4190 bool
	// DoublePuppet is double_puppet.enabled: the receipt-and-typing sync
	// runs through the double-puppet registration.
	DoublePuppet bool
	// Ephemeral is double_puppet.ephemeral: auto, sync or push.
	Ephemeral string
	// EphemeralSeen is set once the homeserver pushed a receipt or a
	// typing notice to the appservice.
	EphemeralSeen bool
}

// Input is everything the decision needs.
type Input struct {
	Versions *mautrix.RespVersions
	// UploadSize is m.upload.size; UploadSizeKnown is false when the
	// media config could not be read or has no m.upload.size.
	UploadSize      int64
	UploadSizeKnown bool
	Server          Software
	Switches
}

// Row is one capability and what it means for one feature.
type Row struct {
	Capability string `json:"capability"`
	Detected   string `json:"detected"`
	Feature    string `json:"feature"`
	Status     Status `json:"status"`
	Effect     string `json:"effect"`
}

// Report is the whole decision.
type Report struct {
	Server   Software `json:"server"`
	Versions []string `json:"versions"`
	Latest   string   `json:"latest"`
	// Unstable lists the unstable features that matter to Passerelle,
	// as the homeserver advertises them (absent ones are left out).
	Unstable   map[string]bool `json:"unstable_features"`
	UploadSize int64           `json:"upload_size,omitempty"`
	Rows       []Row           `json:"rows"`
}

// Row returns the row of a capability.
func (r Report) Row(capability string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Capability == capability {
			return row, true
		}
	}
	return Row{}, false
}

// NotOK lists the rows whose status is not OK.
func (r Report) NotOK() []Row {
	var out []Row
	for _, row := range r.Rows {
		if row.Status != OK {
			out = append(out, row)
		}
	}
	return out
}

// relevant are the unstable flags a report names when advertised.
var relevant = []mautrix.UnstableFeature{
	mautrix.FeatureAppservicePing,
	mautrix.FeatureAuthenticatedMedia,
	mautrix.FeatureAsyncUploads,
	mautrix.BeeperFeatureBatchSending,
	mautrix.BeeperFeatureHungry,
	mautrix.FeatureArbitraryProfileFields,
	mautrix.FeatureUnstableProfileFields,
	mautrix.FeatureRedactSendAsEvent,
}

// known are homeservers whose behaviour is known without a flag: none of
// them advertises MSC2409, MSC3202 or MSC4190 in /versions.
type known struct {
	pushesEphemeral, pushesToDevice, msc4190 bool
}

var knownServers = map[string]known{
	// Dendrite v0.13.8: no ephemeral, to-device or device-list pushes,
	// MSC4190 answers 404 (measured, e2e).
	"dendrite": {},
	// Conduit pushes no ephemeral events to appservices.
	"conduit": {},
}

func knownServer(s Software) (known, bool) {
	k, ok := knownServers[strings.ToLower(strings.TrimSpace(s.Name))]
	return k, ok
}

// Decide builds the report. A nil Versions is read as an empty answer.
func Decide(in Input) Report {
	v := in.Versions
	if v == nil {
		v = &mautrix.RespVersions{}
	}
	r := Report{Server: in.Server, Unstable: map[string]bool{}}
	for _, sv := range v.Versions {
		r.Versions = append(r.Versions, sv.String())
	}
	r.Latest = v.GetLatest().String()
	for _, f := range relevant {
		if on, ok := v.UnstableFeatures[f.UnstableFlag]; ok {
			r.Unstable[f.UnstableFlag] = on
		}
	}
	if in.UploadSizeKnown {
		r.UploadSize = in.UploadSize
	}
	k, isKnown := knownServer(in.Server)
	name := in.Server.Name
	r.Rows = []Row{
		specRow(v),
		ephemeralRow(in.Switches, k, isKnown, name),
		deviceListRow(in.Switches, k, isKnown, name),
		devicesRow(in.Switches, k, isKnown, name),
		pingRow(v),
		authMediaRow(v),
		batchRow(v),
		uploadRow(in),
	}
	return r
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func specRow(v *mautrix.RespVersions) Row {
	row := Row{Capability: CapSpec, Feature: "the bridge core (bridgev2)",
		Detected: "latest " + v.GetLatest().String()}
	if v.ContainsGreaterOrEqual(matrix.MinSpecVersion) {
		row.Status, row.Effect = OK, "supported by bridgev2"
		return row
	}
	row.Status = Degraded
	row.Effect = "below what bridgev2 requires: the gateway starts only with --ignore-unsupported-server " +
		"(Dendrite, which advertises v1.2, is run this way by every end-to-end test)"
	return row
}

func ephemeralRow(s Switches, k known, isKnown bool, name string) Row {
	row := Row{Capability: CapEphemeral,
		Feature: "staff read receipts and typing to the networks (double_puppet.ephemeral: " + ephemeralMode(s) + ")"}
	never := isKnown && !k.pushesEphemeral
	switch {
	case s.EphemeralSeen:
		row.Detected = "yes (seen pushed)"
	case never:
		row.Detected = "no (" + name + " never pushes them)"
	default:
		row.Detected = "not seen yet (not advertised in /versions)"
	}
	syncing := "read with one /sync per staff member through the double-puppet registration"
	switch mode := ephemeralMode(s); {
	case !s.DoublePuppet && !s.EphemeralSeen:
		row.Status = Degraded
		row.Effect = "double puppeting is off, so nothing syncs them: staff reads and typing reach the networks only if the homeserver pushes them"
	case s.EphemeralSeen && mode == "sync":
		row.Status, row.Effect = Fallback, "pushed, but double_puppet.ephemeral: sync reads them with /sync anyway (set auto)"
	case s.EphemeralSeen:
		row.Status, row.Effect = OK, "pushed to the appservice; no /sync"
	case mode == "push":
		row.Status = Degraded
		row.Effect = "double_puppet.ephemeral: push and none pushed so far: staff reads and typing do not reach the networks"
		if !never {
			row.Effect += " until the homeserver pushes them"
		}
	case mode == "sync" || never:
		row.Status, row.Effect = Fallback, syncing
	default:
		row.Status, row.Effect = Fallback, syncing+" until the homeserver is seen pushing them"
	}
	return row
}

func ephemeralMode(s Switches) string {
	if m := strings.ToLower(strings.TrimSpace(s.Ephemeral)); m != "" {
		return m
	}
	return "auto"
}

func deviceListRow(s Switches, k known, isKnown bool, name string) Row {
	row := Row{Capability: CapDeviceLists,
		Feature: "end-to-bridge encryption (encryption.appservice: " + yesNo(s.EncryptionAppservice) + ")"}
	never := isKnown && !k.pushesToDevice
	switch {
	case never:
		row.Detected = "no (" + name + " never pushes them)"
	default:
		row.Detected = "not advertised in /versions (a homeserver setting)"
	}
	switch {
	case !s.EncryptionAppservice:
		row.Status, row.Effect = Fallback, "the bot's own device reads keys and to-device events with /sync"
	case never:
		row.Status = Degraded
		row.Effect = "encryption.appservice is on but no keys or to-device events arrive: encrypted rooms cannot be read; set it to false"
	default:
		row.Status, row.Effect = OK, "keys and to-device events pushed in transactions, if the homeserver is set up for it (see the README)"
	}
	return row
}

func devicesRow(s Switches, k known, isKnown bool, name string) Row {
	row := Row{Capability: CapDevices, Feature: "the bot's encryption device (encryption.msc4190: " + yesNo(s.MSC4190) + ")"}
	never := isKnown && !k.msc4190
	if never {
		row.Detected = "no (" + name + " answers 404)"
	} else {
		row.Detected = "not advertised in /versions (a homeserver setting)"
	}
	switch {
	case !s.MSC4190:
		row.Status, row.Effect = Fallback, "the bot logs in with m.login.application_service to get its device"
	case never:
		row.Status, row.Effect = Degraded, "encryption.msc4190 is on but the homeserver cannot create the device: encryption fails to start; set it to false"
	default:
		row.Status, row.Effect = OK, "the bot's device is created through MSC4190"
	}
	return row
}

// featureRow is the row of a capability the homeserver advertises in
// /versions: OK with it, a fallback without.
func featureRow(ok bool, capability, feature, withIt, without string) Row {
	row := Row{Capability: capability, Detected: yesNo(ok), Feature: feature, Status: OK, Effect: withIt}
	if !ok {
		row.Status, row.Effect = Fallback, without
	}
	return row
}

func pingRow(v *mautrix.RespVersions) Row {
	return featureRow(v.Supports(mautrix.FeatureAppservicePing), CapPing, "start-up check that the homeserver reaches the gateway",
		"checked at start: a wrong url in the registration stops the start",
		"not checked: a wrong url in the registration shows only as Matrix messages never reaching the networks")
}

func authMediaRow(v *mautrix.RespVersions) Row {
	return featureRow(v.Supports(mautrix.FeatureAuthenticatedMedia), CapAuthMedia, "media from Matrix to the networks",
		"downloaded through /_matrix/client/v1/media with the bot's token",
		"downloaded through the legacy unauthenticated /_matrix/media/v3")
}

func batchRow(v *mautrix.RespVersions) Row {
	return featureRow(v.Supports(mautrix.BeeperFeatureBatchSending), CapBatchSend, "chat history (backfill)",
		"history inserted in batches; older history fetched on demand when a user scrolls back",
		"history replayed forward when the portal is made, with the original times; no scrolling back for older messages")
}

func uploadRow(in Input) Row {
	row := Row{Capability: CapUploadSize, Feature: "files from the networks to Matrix"}
	switch {
	case !in.UploadSizeKnown:
		row.Detected = "unknown (media config unreadable)"
		row.Status = Fallback
		row.Effect = "the gateway tries every file and the homeserver refuses those over its limit"
	case in.UploadSize <= 0:
		row.Detected = "not advertised"
		row.Status = Limited
		row.Effect = "bridgev2 assumes " + media.FormatSize(defaultUploadCap) + ": a bigger file is not uploaded; the room gets a notice saying so"
	default:
		row.Detected = media.FormatSize(in.UploadSize)
		row.Status = Limited
		row.Effect = "a file over " + media.FormatSize(in.UploadSize) + " is not uploaded; the room gets a notice saying so"
	}
	return row
}

// Flags lists the advertised unstable flags of a report, sorted, for a log
// line.
func (r Report) Flags() []string {
	out := make([]string, 0, len(r.Unstable))
	for f, on := range r.Unstable {
		if on {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}
