package policy

import (
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/e164"
)

// Request is one question to the policy: may this chat be bridged, in this
// direction, for this staff member?
type Request struct {
	// Network is the remote network ("telegram", "whatsapp").
	Network   string
	Direction Direction
	// Staff is the Matrix user whose account talks to the outside.
	Staff id.UserID
	// Remote is the outside person: the sender of an inbound message, the
	// recipient of an outbound one (for a group: the sender, or nobody).
	Remote Remote
	// ChatID is the network-prefixed portal ID of the chat.
	ChatID  networkid.PortalID
	IsGroup bool
	// Approved tells that an admin approved this chat or contact before. The
	// caller looks it up (in the approval store); it is only consulted in
	// approval mode, and a deny rule still wins over it.
	Approved bool
}

// Remote is what is known of an outside identity. Unknown fields stay empty.
type Remote struct {
	// Phone is a phone number; it is normalised (e164.Normalize) before
	// matching. A malformed number makes the request denied, never allowed.
	Phone            string
	TelegramUserID   int64
	TelegramUsername string
}

// Verdict is the outcome of an evaluation.
type Verdict string

const (
	Allow         Verdict = "allow"
	Deny          Verdict = "deny"
	NeedsApproval Verdict = "needs_approval"
)

// Decision is the answer to a Request.
type Decision struct {
	Verdict Verdict
	// Mode is the mode of the request's network.
	Mode Mode
	// Rule is the rule that decided, or nil when the mode (or an earlier
	// approval, or a malformed request) decided.
	Rule *RuleRef
	// Reason explains the decision in one sentence, for the audit log and for
	// the staff member. It holds no phone number of the request.
	Reason string
}

// Policy is a validated, immutable set of modes and rules. It is safe for
// concurrent use.
type Policy struct {
	defaultMode Mode
	modes       map[string]Mode
	// closed are the networks a migration deadline closed, whatever their
	// configured mode (Engine.Close).
	closed map[string]bool
	rules  []*compiledRule
}

// Compile validates cfg and the runtime rules and returns the effective
// policy: config rules first, then runtime rules. An invalid mode or rule is
// an error naming it; there is no fallback.
func Compile(cfg Config, runtime []RuntimeRule) (*Policy, error) {
	p := &Policy{defaultMode: cfg.DefaultMode, modes: make(map[string]Mode, len(cfg.Modes))}
	if cfg.DefaultMode != "" && !cfg.DefaultMode.Valid() {
		return nil, fmt.Errorf("%w: default_mode %q is not %s", ErrInvalidConfig, cfg.DefaultMode, ModeNames)
	}
	for network, mode := range cfg.Modes {
		if !knownNetwork(network) {
			return nil, fmt.Errorf("%w: modes: unknown network %q (one of %s)", ErrInvalidConfig, network, strings.Join(Networks, ", "))
		}
		if !mode.Valid() {
			return nil, fmt.Errorf("%w: modes.%s: %q is not %s", ErrInvalidConfig, network, mode, ModeNames)
		}
		p.modes[network] = mode
	}
	if cfg.DefaultMode == "" {
		for _, network := range Networks {
			if _, ok := p.modes[network]; !ok {
				return nil, fmt.Errorf("%w: no mode for %s: set modes.%s or default_mode (%s)", ErrInvalidConfig, network, network, ModeNames)
			}
		}
	}
	for i, r := range cfg.Rules {
		c, err := compileRule(RuleRef{Source: SourceConfig, Index: int64(i + 1), Rule: r})
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, c)
	}
	for _, rr := range runtime {
		c, err := compileRule(rr.Ref())
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, c)
	}
	return p, nil
}

// Mode returns the mode of a network.
func (p *Policy) Mode(network string) Mode {
	if p.closed[network] {
		return ModeClosed
	}
	if m, ok := p.modes[network]; ok {
		return m
	}
	return p.defaultMode
}

// Rules returns every rule of the policy, config rules first.
func (p *Policy) Rules() []RuleRef {
	refs := make([]RuleRef, len(p.rules))
	for i, c := range p.rules {
		refs[i] = c.ref
	}
	return refs
}

// normRequest holds the request values in the form rules are matched on.
type normRequest struct {
	*Request
	phone      string
	tgUsername string
	server     string
}

// Evaluate decides req. A deny rule wins over every allow rule and over an
// earlier approval; otherwise an allow rule decides; otherwise the network's
// mode: open allows, allowlist denies, approval allows what was approved and
// asks for approval of the rest, closed allows what was bridged before and
// denies the rest.
func (p *Policy) Evaluate(req Request) Decision {
	mode := p.Mode(req.Network)
	deny := func(reason string) Decision { return Decision{Verdict: Deny, Mode: mode, Reason: reason} }
	switch {
	case req.Network == "":
		return deny("the request names no network")
	case !knownNetwork(req.Network):
		return deny(fmt.Sprintf("%q is not a network the policy knows", req.Network))
	case req.Direction != Inbound && req.Direction != Outbound:
		return deny(fmt.Sprintf("the request has no valid direction (%q)", req.Direction))
	case !mode.Valid():
		return deny(fmt.Sprintf("%s has no valid policy mode", req.Network))
	}
	n := normRequest{Request: &req}
	if req.Remote.Phone != "" {
		var err error
		if n.phone, err = e164.Normalize(req.Remote.Phone); err != nil {
			return deny("the outside contact's phone number is malformed, so no rule can be checked against it")
		}
	}
	n.tgUsername = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(req.Remote.TelegramUsername), "@"))
	if _, server, err := req.Staff.Parse(); err == nil {
		n.server = strings.ToLower(server)
	}

	var allowedBy *compiledRule
	for _, c := range p.rules {
		if !c.matches(&n) {
			continue
		}
		if c.action == ActionDeny {
			ref := c.ref
			return Decision{Verdict: Deny, Mode: mode, Rule: &ref, Reason: "denied by " + ref.String()}
		}
		if allowedBy == nil {
			allowedBy = c
		}
	}
	if allowedBy != nil {
		ref := allowedBy.ref
		return Decision{Verdict: Allow, Mode: mode, Rule: &ref, Reason: "allowed by " + ref.String()}
	}
	switch mode {
	case ModeOpen:
		return Decision{Verdict: Allow, Mode: mode, Reason: fmt.Sprintf("%s is open and no rule denies this chat", req.Network)}
	case ModeAllowlist:
		return deny(fmt.Sprintf("no rule allows this chat on %s (allowlist mode)", req.Network))
	case ModeClosed:
		if req.Approved {
			return Decision{Verdict: Allow, Mode: mode, Reason: fmt.Sprintf("this chat was bridged before %s closed to new chats", req.Network)}
		}
		return deny(fmt.Sprintf("%s is closed to new chats", req.Network))
	default:
		if req.Approved {
			return Decision{Verdict: Allow, Mode: mode, Reason: "an admin approved this chat"}
		}
		return Decision{Verdict: NeedsApproval, Mode: mode, Reason: fmt.Sprintf("a new chat on %s waits for an admin's approval", req.Network)}
	}
}

func (c *compiledRule) matches(n *normRequest) bool {
	switch {
	case c.network != "" && c.network != n.Network:
	case c.direction != "" && c.direction != n.Direction:
	case c.matrixUser != "" && c.matrixUser != n.Staff:
	case c.server != "" && c.server != n.server:
	case c.chat != "" && c.chat != n.ChatID:
	case c.phone != "" && c.phone != n.phone:
	case c.phonePrefix != "" && (n.phone == "" || !strings.HasPrefix(n.phone, c.phonePrefix)):
	case c.tgID != 0 && c.tgID != n.Remote.TelegramUserID:
	case c.tgUsername != "" && c.tgUsername != n.tgUsername:
	default:
		return true
	}
	return false
}
