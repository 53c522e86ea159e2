package policy_test

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/passerelle/passerelle/governance/e164"
	"github.com/passerelle/passerelle/governance/policy"
)

func TestValidateNamesTheInvalidRule(t *testing.T) {
	valid := policy.Rule{Action: policy.ActionAllow, Network: "telegram"}
	for _, tc := range []struct {
		name string
		rule policy.Rule
		want string // the whole message must contain it
		is   error
	}{
		{"letters in prefix", policy.Rule{Action: "deny", PhonePrefix: "+33abc"}, `policy rule 2 (deny phone_prefix "+33abc"): invalid E.164 prefix`, e164.ErrMalformed},
		{"prefix written as exact", policy.Rule{Action: "deny", Phone: "+7"}, `policy rule 2 (deny phone "+7"): invalid E.164 number`, e164.ErrMalformed},
		{"prefix as exact hints", policy.Rule{Action: "deny", Phone: "+7"}, `write phone_prefix`, nil},
		{"national number", policy.Rule{Action: "allow", Phone: "06 12 34 56 78"}, `does not start with + or 00`, e164.ErrMalformed},
		{"both phone fields", policy.Rule{Action: "deny", Phone: "+33612345678", PhonePrefix: "+33"}, "not both", nil},
		{"no action", policy.Rule{PhonePrefix: "+7"}, `policy rule 2 ((no action) phone_prefix "+7"): action is missing`, nil},
		{"unknown action", policy.Rule{Action: "block", PhonePrefix: "+7"}, `unknown action "block"`, nil},
		{"no condition", policy.Rule{Action: "allow", Comment: "everything?"}, `rule has no condition`, nil},
		{"unknown network", policy.Rule{Action: "deny", Network: "telgram"}, `unknown network "telgram"`, nil},
		{"unknown direction", policy.Rule{Action: "deny", Direction: "both"}, `unknown direction "both"`, nil},
		{"telegram user on whatsapp", policy.Rule{Action: "allow", TelegramUserID: 42, Network: "whatsapp"}, `cannot match on network "whatsapp"`, nil},
		{"negative user id", policy.Rule{Action: "allow", TelegramUserID: -100123}, `not a user ID`, nil},
		{"short username", policy.Rule{Action: "allow", TelegramUsername: "@ab"}, `4 to 32 characters`, nil},
		{"username with dash", policy.Rule{Action: "allow", TelegramUsername: "press-office"}, `only letters, digits and _`, nil},
		{"username starting with digit", policy.Rule{Action: "allow", TelegramUsername: "1press"}, `start with a letter`, nil},
		{"chat without prefix", policy.Rule{Action: "deny", Chat: "-100123"}, `invalid chat`, nil},
		{"chat on unknown network", policy.Rule{Action: "deny", Chat: "signal.123"}, `unknown network "signal"`, nil},
		{"chat on other network", policy.Rule{Action: "deny", Chat: "telegram.123", Network: "whatsapp"}, `limited to whatsapp`, nil},
		{"matrix user without @", policy.Rule{Action: "allow", Network: "*", MatrixUser: "alice:example.org"}, `not a Matrix user ID`, nil},
		{"matrix user on other server", policy.Rule{Action: "allow", Network: "*", MatrixUser: "@alice:example.org", MatrixServer: "other.org"}, `not on matrix_server`, nil},
		{"bad server", policy.Rule{Action: "allow", Network: "*", MatrixServer: "https://example.org"}, `not a server name`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policy.Config{DefaultMode: policy.ModeOpen, Rules: []policy.Rule{valid, tc.rule}}
			err := cfg.Validate()
			if err == nil {
				t.Fatal("invalid rule accepted")
			}
			if !errors.Is(err, policy.ErrInvalidRule) {
				t.Errorf("error does not wrap ErrInvalidRule: %v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error does not wrap %v: %v", tc.is, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
			var re *policy.RuleError
			if !errors.As(err, &re) || re.Index != 2 || re.Source != policy.SourceConfig {
				t.Errorf("error does not point at config rule 2: %#v", re)
			}
		})
	}
}

func TestValidateModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  policy.Config
		want string // "" = valid
	}{
		{"default only", policy.Config{DefaultMode: policy.ModeApproval}, ""},
		{"every network named", policy.Config{Modes: map[string]policy.Mode{"telegram": "open", "whatsapp": "allowlist"}}, ""},
		{"empty config", policy.Config{}, "no mode for telegram"},
		{"a network missing", policy.Config{Modes: map[string]policy.Mode{"telegram": "open"}}, "no mode for whatsapp"},
		{"unknown default", policy.Config{DefaultMode: "shut"}, `default_mode "shut"`},
		{"unknown mode", policy.Config{DefaultMode: "open", Modes: map[string]policy.Mode{"telegram": "allow"}}, `modes.telegram: "allow"`},
		{"unknown network", policy.Config{DefaultMode: "open", Modes: map[string]policy.Mode{"signal": "open"}}, `unknown network "signal"`},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		} else if !errors.Is(err, policy.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want ErrInvalidConfig containing %q", tc.name, err, tc.want)
		}
	}
}

// TestYAMLConfig reads the config as an admin writes it.
func TestYAMLConfig(t *testing.T) {
	const doc = `
default_mode: approval
modes:
  telegram: allowlist
rules:
  - action: deny
    phone_prefix: "+7"
    comment: no bridging to +7
  - action: allow
    telegram_username: "@Press_Office"
    matrix_server: example.org
  - action: allow
    phone: "0033 6 12 34 56 78"
    direction: outbound
`
	var cfg policy.Config
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode("telegram") != policy.ModeAllowlist || p.Mode("whatsapp") != policy.ModeApproval {
		t.Errorf("modes: telegram %s, whatsapp %s", p.Mode("telegram"), p.Mode("whatsapp"))
	}
	d := p.Evaluate(policy.Request{Network: "telegram", Direction: policy.Inbound, Staff: "@alice:example.org",
		Remote: policy.Remote{TelegramUsername: "press_office"}, ChatID: "telegram.555"})
	if d.Verdict != policy.Allow || d.Rule == nil || d.Rule.Index != 2 {
		t.Errorf("press office: %+v", d)
	}
	d = p.Evaluate(policy.Request{Network: "whatsapp", Direction: policy.Outbound, Staff: "@alice:example.org",
		Remote: policy.Remote{Phone: "+33612345678"}, ChatID: "whatsapp.33612345678"})
	if d.Verdict != policy.Allow || d.Rule == nil || d.Rule.Index != 3 {
		t.Errorf("exact number written with 00: %+v", d)
	}
	if got := p.Rules()[0].String(); got != `policy rule 1 (deny phone_prefix "+7")` {
		t.Errorf("rule 1 is named %q", got)
	}
}
