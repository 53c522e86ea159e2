// Package policy decides whether a conversation may cross the border between
// Matrix and a remote network: per-network modes, allow/deny rules from the
// config file and from admins at runtime (persisted), and the evaluation of one
// request against them. Evaluation is pure; the gate that calls it, and that
// logs and explains its decisions, lives elsewhere.
package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/governance/e164"
)

// Network names, as they prefix every ID of the gateway.
const (
	NetworkTelegram = "telegram"
	NetworkWhatsApp = "whatsapp"
	// AnyNetwork in a rule's network field matches every network.
	AnyNetwork = "*"
)

// Networks lists the networks a rule or a mode may name. A typo in a network
// name must fail validation rather than make a deny rule match nothing.
var Networks = []string{NetworkTelegram, NetworkWhatsApp}

// Mode is what a network does with a chat that no rule decides.
type Mode string

const (
	// ModeOpen bridges everything that no rule denies.
	ModeOpen Mode = "open"
	// ModeAllowlist bridges only what a rule allows.
	ModeAllowlist Mode = "allowlist"
	// ModeApproval bridges what a rule allows or an admin approved; anything
	// else waits for an admin.
	ModeApproval Mode = "approval"
	// ModeClosed bridges only the chats already bridged (a portal with a
	// room, or an admin's approval) that no rule denies: no new chat. It is
	// where a network's migration deadline leads (see gate.Deadlines).
	ModeClosed Mode = "closed"
)

// ModeNames lists the modes, for messages.
const ModeNames = "open, allowlist, approval or closed"

// Valid reports whether m is one of the four modes.
func (m Mode) Valid() bool {
	return m == ModeOpen || m == ModeAllowlist || m == ModeApproval || m == ModeClosed
}

// KnowsApprovals reports whether a chat's earlier approval (or its existing
// room) counts in m: the caller looks it up for Request.Approved.
func (m Mode) KnowsApprovals() bool {
	return m == ModeApproval || m == ModeClosed
}

// Action is what a matching rule does.
type Action string

const (
	ActionAllow Action = "allow"
	ActionDeny  Action = "deny"
)

// Direction is the way a message or a new chat goes.
type Direction string

const (
	// Inbound: from the remote network to Matrix.
	Inbound Direction = "inbound"
	// Outbound: from a staff member on Matrix to the remote network.
	Outbound Direction = "outbound"
)

// Config is the policy section of the gateway config.
//
//	policy:
//	  default_mode: approval
//	  modes:
//	    telegram: allowlist
//	  rules:
//	    - {action: deny, phone_prefix: "+7", comment: "no bridging to +7"}
//	    - {action: allow, telegram_username: "@press_office", matrix_server: "example.org"}
type Config struct {
	// DefaultMode applies to every network without its own entry in Modes.
	// It may be empty only if Modes names every network.
	DefaultMode Mode `yaml:"default_mode"`
	// Modes maps a network name to its mode.
	Modes map[string]Mode `yaml:"modes"`
	// Rules are checked in order; the first matching deny rule wins over
	// every allow rule, otherwise the first matching allow rule decides.
	Rules []Rule `yaml:"rules"`
}

// Rule allows or denies the requests it matches. A request matches a rule
// when it matches every field that is set; at least one field besides Action
// and Comment must be set. Empty strings and 0 mean "not set".
type Rule struct {
	Action Action `yaml:"action" json:"action"`

	// Network limits the rule to one network; "" or "*" is every network.
	Network string `yaml:"network,omitempty" json:"network,omitempty"`
	// Direction limits the rule to inbound or outbound requests; "" is both.
	Direction Direction `yaml:"direction,omitempty" json:"direction,omitempty"`

	// Phone is one full E.164 number, matched exactly: "+33612345678".
	// Spaces, dashes, dots, parentheses and a leading 00 are accepted.
	Phone string `yaml:"phone,omitempty" json:"phone,omitempty"`
	// PhonePrefix matches every number that starts with it: "+7", "+3361234".
	PhonePrefix string `yaml:"phone_prefix,omitempty" json:"phone_prefix,omitempty"`
	// TelegramUserID is a Telegram user's numeric ID.
	TelegramUserID int64 `yaml:"telegram_user_id,omitempty" json:"telegram_user_id,omitempty"`
	// TelegramUsername matches case-insensitively; a leading @ is ignored.
	TelegramUsername string `yaml:"telegram_username,omitempty" json:"telegram_username,omitempty"`
	// Chat is a network-prefixed portal ID, "telegram.-1001234" or
	// "whatsapp.1234-5678@g.us": one specific chat or group.
	Chat networkid.PortalID `yaml:"chat,omitempty" json:"chat,omitempty"`

	// MatrixUser scopes the rule to one staff member.
	MatrixUser id.UserID `yaml:"matrix_user,omitempty" json:"matrix_user,omitempty"`
	// MatrixServer scopes the rule to the staff members of one homeserver.
	MatrixServer string `yaml:"matrix_server,omitempty" json:"matrix_server,omitempty"`

	// Comment is for humans; it is shown with the rule and never matched.
	Comment string `yaml:"comment,omitempty" json:"comment,omitempty"`
}

// String names the rule by its action and conditions, as written:
// `deny phone_prefix "+7" network "telegram"`.
func (r Rule) String() string {
	var b strings.Builder
	if r.Action == "" {
		b.WriteString("(no action)")
	} else {
		b.WriteString(string(r.Action))
	}
	add := func(key, val string) {
		if val != "" {
			fmt.Fprintf(&b, " %s %q", key, val)
		}
	}
	add("phone", r.Phone)
	add("phone_prefix", r.PhonePrefix)
	if r.TelegramUserID != 0 {
		fmt.Fprintf(&b, " telegram_user_id %d", r.TelegramUserID)
	}
	add("telegram_username", r.TelegramUsername)
	add("chat", string(r.Chat))
	add("network", r.Network)
	add("direction", string(r.Direction))
	add("matrix_user", string(r.MatrixUser))
	add("matrix_server", r.MatrixServer)
	return b.String()
}

// Errors returned (wrapped) by validation.
var (
	// ErrInvalidRule: a rule is malformed; the error is a *RuleError.
	ErrInvalidRule = errors.New("invalid policy rule")
	// ErrInvalidConfig: the policy config is malformed outside of its rules.
	ErrInvalidConfig = errors.New("invalid policy config")
)

// Source tells where a rule comes from.
type Source string

const (
	SourceConfig  Source = "config"
	SourceRuntime Source = "runtime"
)

// RuleRef identifies a rule for the audit log and for explanations.
type RuleRef struct {
	Source Source `json:"source"`
	// Index is the 1-based position of a config rule, or the ID of a runtime
	// rule (0 for a runtime rule not stored yet).
	Index int64 `json:"index"`
	// Rule is the rule as written.
	Rule Rule `json:"rule"`
}

// String is "policy rule 3 (deny phone_prefix "+7")" for the third rule of
// the config file, "runtime policy rule #12 (…)" for a rule added by an admin.
func (r RuleRef) String() string {
	switch {
	case r.Source == SourceConfig:
		return fmt.Sprintf("policy rule %d (%s)", r.Index, r.Rule)
	case r.Index == 0:
		return fmt.Sprintf("new policy rule (%s)", r.Rule)
	default:
		return fmt.Sprintf("runtime policy rule #%d (%s)", r.Index, r.Rule)
	}
}

// RuleError names the invalid rule and what is wrong with it.
type RuleError struct {
	RuleRef
	Err error
}

func (e *RuleError) Error() string { return e.RuleRef.String() + ": " + e.Err.Error() }

// Unwrap makes errors.Is match ErrInvalidRule and the cause.
func (e *RuleError) Unwrap() []error { return []error{ErrInvalidRule, e.Err} }

// compiledRule is a validated rule with its values normalised for matching.
type compiledRule struct {
	ref         RuleRef
	action      Action
	network     string // "" = any
	direction   Direction
	phone       string
	phonePrefix string
	tgID        int64
	tgUsername  string // lower case, no @
	chat        networkid.PortalID
	matrixUser  id.UserID
	server      string // lower case
}

func knownNetwork(name string) bool {
	for _, n := range Networks {
		if n == name {
			return true
		}
	}
	return false
}

// compileRule validates ref.Rule.
func compileRule(ref RuleRef) (*compiledRule, error) {
	c, err := compileRuleErr(ref.Rule)
	if err != nil {
		return nil, &RuleError{RuleRef: ref, Err: err}
	}
	c.ref = ref
	return c, nil
}

func compileRuleErr(r Rule) (*compiledRule, error) {
	c := &compiledRule{action: r.Action, direction: r.Direction, chat: r.Chat, matrixUser: r.MatrixUser}
	switch r.Action {
	case ActionAllow, ActionDeny:
	case "":
		return nil, errors.New("action is missing (allow or deny)")
	default:
		return nil, fmt.Errorf("unknown action %q (allow or deny)", r.Action)
	}
	switch r.Direction {
	case "", Inbound, Outbound:
	default:
		return nil, fmt.Errorf("unknown direction %q (inbound, outbound, or leave it out for both)", r.Direction)
	}
	switch {
	case r.Network == "" || r.Network == AnyNetwork:
	case knownNetwork(r.Network):
		c.network = r.Network
	default:
		return nil, fmt.Errorf("unknown network %q (one of %s, or %q)", r.Network, strings.Join(Networks, ", "), AnyNetwork)
	}
	conditions := 0
	if r.Network != "" || r.Direction != "" {
		conditions++
	}
	var err error
	if r.Phone != "" && r.PhonePrefix != "" {
		return nil, errors.New("set phone (one number) or phone_prefix, not both")
	}
	if r.Phone != "" {
		conditions++
		if c.phone, err = e164.Normalize(r.Phone); err != nil {
			if p, perr := e164.NormalizePrefix(r.Phone); perr == nil {
				return nil, fmt.Errorf("invalid E.164 number: %w (for every number starting with %s, write phone_prefix)", err, p)
			}
			return nil, fmt.Errorf("invalid E.164 number: %w", err)
		}
	}
	if r.PhonePrefix != "" {
		conditions++
		if c.phonePrefix, err = e164.NormalizePrefix(r.PhonePrefix); err != nil {
			return nil, fmt.Errorf("invalid E.164 prefix: %w", err)
		}
	}
	telegramOnly := false
	if r.TelegramUserID != 0 {
		conditions++
		telegramOnly = true
		if r.TelegramUserID < 0 {
			return nil, fmt.Errorf("telegram_user_id %d is not a user ID (user IDs are positive; use chat for a group)", r.TelegramUserID)
		}
		c.tgID = r.TelegramUserID
	}
	if r.TelegramUsername != "" {
		conditions++
		telegramOnly = true
		if c.tgUsername, err = NormalizeUsername(r.TelegramUsername); err != nil {
			return nil, err
		}
	}
	if telegramOnly {
		if c.network != "" && c.network != NetworkTelegram {
			return nil, fmt.Errorf("a Telegram user cannot match on network %q", r.Network)
		}
		c.network = NetworkTelegram
	}
	if r.Chat != "" {
		conditions++
		chatNetwork, _, err := netid.Split(string(r.Chat))
		if err != nil {
			return nil, fmt.Errorf("invalid chat: %w", err)
		}
		if !knownNetwork(chatNetwork) {
			return nil, fmt.Errorf("chat %q is on unknown network %q", r.Chat, chatNetwork)
		}
		if c.network != "" && c.network != chatNetwork {
			return nil, fmt.Errorf("chat %q is on %s, but the rule is limited to %s", r.Chat, chatNetwork, c.network)
		}
		c.network = chatNetwork
	}
	if r.MatrixUser != "" {
		conditions++
		_, server, err := r.MatrixUser.Parse()
		if err != nil || !strings.HasPrefix(string(r.MatrixUser), "@") {
			return nil, fmt.Errorf("matrix_user %q is not a Matrix user ID (@user:server)", r.MatrixUser)
		}
		if r.MatrixServer != "" && !strings.EqualFold(server, r.MatrixServer) {
			return nil, fmt.Errorf("matrix_user %q is not on matrix_server %q", r.MatrixUser, r.MatrixServer)
		}
	}
	if r.MatrixServer != "" {
		conditions++
		if !validServerName(r.MatrixServer) {
			return nil, fmt.Errorf("matrix_server %q is not a server name (example.org or example.org:8448)", r.MatrixServer)
		}
		c.server = strings.ToLower(r.MatrixServer)
	}
	if conditions == 0 {
		return nil, errors.New(`rule has no condition; to match everything, write network: "*"`)
	}
	return c, nil
}

// NormalizeUsername returns a Telegram username in lower case without its
// leading @, or an error if it cannot be one (4–32 letters, digits and
// underscores, starting with a letter).
func NormalizeUsername(raw string) (string, error) {
	u := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(raw), "@"))
	if len(u) < 4 || len(u) > 32 {
		return "", fmt.Errorf("telegram_username %q must have 4 to 32 characters", raw)
	}
	for i, c := range u {
		switch {
		case c >= 'a' && c <= 'z':
		case (c >= '0' && c <= '9') || c == '_':
			if i == 0 {
				return "", fmt.Errorf("telegram_username %q must start with a letter", raw)
			}
		default:
			return "", fmt.Errorf("telegram_username %q may hold only letters, digits and _", raw)
		}
	}
	return u, nil
}

func validServerName(s string) bool {
	host, port, hasPort := s, "", false
	if strings.HasPrefix(s, "[") { // IPv6 literal
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port, hasPort = port[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(s, ":")
	}
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// Validate checks the modes and every rule. The error names the first
// invalid rule by its position (1-based) and content.
func (cfg Config) Validate() error {
	_, err := Compile(cfg, nil)
	return err
}
