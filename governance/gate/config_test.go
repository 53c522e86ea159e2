package gate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
)

// loadNetworkSection decodes a `network:` section through the gateway, as
// bridgev2 does, with the gate as a component.
func loadNetworkSection(t *testing.T, section string) (*gateway.Gateway, *gate.Gate, error) {
	t.Helper()
	gw, err := gateway.New(&gateway.Network{ID: "telegram", Connector: telegram.NewConnector(), EnabledByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New()
	if err = gw.AddComponent(g); err != nil {
		t.Fatal(err)
	}
	_, data, _ := gw.GetConfig()
	// Telegram is off so that only the governance section is validated.
	return gw, g, yaml.Unmarshal([]byte("telegram: {enabled: false}\n"+section), data)
}

func TestConfigFromNetworkSection(t *testing.T) {
	gw, g, err := loadNetworkSection(t, `
governance:
    default_mode: approval
    modes: {telegram: allowlist}
    rules:
        - {action: deny, phone_prefix: "+7"}
        - {action: allow, telegram_username: "@press_office"}
    admins: ["@admin:example.org"]
    approval_ttl: 3d
    retention: 8760h
    audit_anchor_interval: 6h
    api: {token: 0123456789abcdef0123456789abcdef, trust_forwarded: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := g.Config()
	if cfg.Policy.DefaultMode != policy.ModeApproval || cfg.Policy.Modes["telegram"] != policy.ModeAllowlist || len(cfg.Policy.Rules) != 2 ||
		time.Duration(cfg.ApprovalTTL) != 72*time.Hour || time.Duration(cfg.Retention) != 8760*time.Hour || cfg.API.Token != "0123456789abcdef0123456789abcdef" ||
		!cfg.API.TrustForwarded || time.Duration(cfg.AuditAnchorInterval) != 6*time.Hour ||
		!cfg.IsAdmin("@admin:example.org") {
		t.Errorf("decoded config: %+v", cfg)
	}
	if err = gw.ValidateConfig(); err != nil {
		t.Errorf("ValidateConfig: %v", err)
	}
}

func TestDefaultConfigIsOpen(t *testing.T) {
	gw, g, err := loadNetworkSection(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if g.Config().Policy.DefaultMode != policy.ModeOpen || time.Duration(g.Config().ApprovalTTL) != gate.DefaultApprovalTTL ||
		time.Duration(g.Config().AuditAnchorInterval) != gate.DefaultAuditAnchorInterval || g.Config().API.TrustForwarded {
		t.Errorf("default config: %+v", g.Config())
	}
	if err = gw.ValidateConfig(); err != nil {
		t.Error(err)
	}
	example, _, _ := gw.GetConfig()
	if !strings.Contains(example, "\ngovernance:\n    # What may cross") {
		t.Errorf("example config lacks the governance section:\n%s", example)
	}
}

// TestInvalidConfigRefusesToStart: the gateway refuses to start with a
// message naming the bad rule or key; it never falls back to open.
func TestInvalidConfigRefusesToStart(t *testing.T) {
	for _, c := range []struct{ section, want string }{
		{"governance: {rules: [{action: deny, phone_prefix: \"7abc\"}]}", `network.governance: policy rule 1 (deny phone_prefix "7abc")`},
		{"governance: {rules: [{action: allow, network: telegram}, {action: block, phone: \"+33612345678\"}]}", `policy rule 2 (block phone "+33612345678"): unknown action`},
		{"governance: {default_mode: shut}", `default_mode "shut"`},
		{"governance: {admins: [\"admin\"]}", `admins[0] "admin" is not a Matrix user ID`},
		{"governance: {contact_hash_key: short}", "contact_hash_key has 5 bytes"},
		{"governance: {approval_ttl: 0}", "approval_ttl must be positive"},
		{"governance: {api: {token: s3cret-token}}", "api.token has 12 bytes, at least 32 are needed"},
		{"governance: {audit_anchor_interval: -1h}", "audit_anchor_interval must not be negative"},
		{"governance: {default_mode: approval}", "approval mode needs admins"},
		{"governance: {modes: {whatsapp: approval}}", "approval mode needs admins"},
		{"governance: {media: {signal: {inbound: {max_size: 1MB}}}}", "media.signal: unknown network"},
		{"governance: {media: {whatsapp: {outbound: {refused_types: [exe]}}}}", `media.whatsapp.outbound.refused_types[0] "exe" is not a MIME type pattern`},
		{"governance: {disappearing_messages: archive}", `disappearing_messages is "archive": it must be "honour" or "keep"`},
	} {
		gw, _, err := loadNetworkSection(t, c.section)
		if err == nil {
			err = gw.ValidateConfig()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.section, err, c.want)
		}
	}
	_, _, err := loadNetworkSection(t, "governance: {approval_ttl: soon}")
	if err == nil || !strings.Contains(err.Error(), `invalid duration "soon"`) {
		t.Errorf("bad duration: %v", err)
	}
	gw, _, _ := loadNetworkSection(t, "governance: {rules: [{action: deny, phone: \"+3361\"}]}")
	if err := gw.ValidateConfig(); !errors.Is(err, policy.ErrInvalidRule) {
		t.Errorf("invalid rule error %v does not wrap ErrInvalidRule", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "": 0, "90m": 90 * time.Minute, "30d": 30 * 24 * time.Hour, "1.5d": 36 * time.Hour} {
		if got, err := gate.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
}

// TestConfigUpgradeKeepsValues: the upgrader copies every key, the new ones
// (audit_anchor_interval, api.trust_forwarded) included, and fills in the
// defaults of a config written before they existed.
func TestConfigUpgradeKeepsValues(t *testing.T) {
	cfg := upgradeAndDecode(t, "audit_anchor_interval: 12h\napi: {token: abc, allow_remote: true, trust_forwarded: true}\n")
	if time.Duration(cfg.AuditAnchorInterval) != 12*time.Hour || !cfg.API.TrustForwarded || !cfg.API.AllowRemote || cfg.API.Token != "abc" {
		t.Errorf("upgraded config lost values: %+v", cfg)
	}
	cfg = upgradeAndDecode(t, "api: {token: abc}\n")
	if time.Duration(cfg.AuditAnchorInterval) != gate.DefaultAuditAnchorInterval || cfg.API.TrustForwarded ||
		cfg.DisappearingMessages != gate.DisappearingHonour {
		t.Errorf("upgraded old config lacks the defaults: %+v", cfg)
	}
	if cfg = upgradeAndDecode(t, "disappearing_messages: keep\n"); cfg.DisappearingMessages != gate.DisappearingKeep {
		t.Errorf("upgraded config lost disappearing_messages: %q", cfg.DisappearingMessages)
	}
}

// upgradeAndDecode runs the upgrader on an old section over the example and
// decodes the result.
func upgradeAndDecode(t *testing.T, old string) gate.Config {
	t.Helper()
	upgrade := func(old string) string {
		t.Helper()
		var base, user yaml.Node
		if err := yaml.Unmarshal([]byte(gate.ExampleConfig), &base); err != nil {
			t.Fatalf("example config does not parse: %v", err)
		}
		if err := yaml.Unmarshal([]byte(old), &user); err != nil {
			t.Fatal(err)
		}
		_, _, upgrader := gate.New().GetConfig()
		upgrader.DoUpgrade(configupgrade.NewHelper(&base, &user))
		out, err := yaml.Marshal(&base)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	decode := func(doc string) gate.Config {
		t.Helper()
		g := gate.New()
		_, data, _ := g.GetConfig()
		if err := yaml.Unmarshal([]byte(doc), data); err != nil {
			t.Fatal(err)
		}
		return *g.Config()
	}
	return decode(upgrade(old))
}

// TestMediaConfig: the media section decodes per network and direction
// through the gateway, its default refuses nothing, and the upgrader keeps it.
func TestMediaConfig(t *testing.T) {
	gw, g, err := loadNetworkSection(t, `
governance:
    media:
        "*": {outbound: {refused_types: [application/x-msdownload, application/x-sh]}}
        whatsapp:
            inbound: {max_size: 50MB, allowed_types: ["image/*", application/pdf]}
            outbound: {max_size: 16MiB}
`)
	if err != nil {
		t.Fatal(err)
	}
	if err = gw.ValidateConfig(); err != nil {
		t.Fatal(err)
	}
	media := g.Config().Media
	if media.Limit("whatsapp", policy.Inbound) != 50_000_000 || media.Limit("whatsapp", policy.Outbound) != 16<<20 ||
		media.Limit("telegram", policy.Outbound) != 0 {
		t.Errorf("decoded limits: %+v", media)
	}
	if r := media.Check(policy.MediaFile{Network: "telegram", Direction: policy.Outbound, MIME: "application/x-sh", Size: 1}); r == nil || r.Scope != "*" {
		t.Errorf("the \"*\" rules do not apply to telegram: %+v", r)
	}

	_, def, err := loadNetworkSection(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Config().Media) != 0 {
		t.Errorf("default media rules: %+v", def.Config().Media)
	}
	for _, network := range policy.Networks {
		for _, dir := range []policy.Direction{policy.Inbound, policy.Outbound} {
			if r := def.Config().Media.Check(policy.MediaFile{Network: network, Direction: dir, MIME: "application/x-msdownload", Size: 1 << 40}); r != nil {
				t.Errorf("default refuses %s %s: %+v", network, dir, r)
			}
		}
	}

	cfg := upgradeAndDecode(t, "media: {telegram: {inbound: {max_size: 5MB, refused_types: [\"video/*\"]}}}\n")
	if cfg.Media.Limit("telegram", policy.Inbound) != 5_000_000 || len(cfg.Media["telegram"].Inbound.RefusedTypes) != 1 {
		t.Errorf("upgraded media section: %+v", cfg.Media)
	}
	if cfg = upgradeAndDecode(t, "api: {token: abc}\n"); len(cfg.Media) != 0 {
		t.Errorf("upgraded config without media section: %+v", cfg.Media)
	}
}
