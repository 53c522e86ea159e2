package policy_test

import (
	"testing"

	"github.com/passerelle/passerelle/governance/policy"
)

func TestEvaluate(t *testing.T) {
	rules := []policy.Rule{
		/* 1 */ {Action: "deny", PhonePrefix: "+7"},
		/* 2 */ {Action: "allow", PhonePrefix: "+3361234"},
		/* 3 */ {Action: "deny", Phone: "+33 6 12 34 99 99"},
		/* 4 */ {Action: "allow", TelegramUsername: "@Press_Office"},
		/* 5 */ {Action: "allow", TelegramUserID: 4242},
		/* 6 */ {Action: "allow", Chat: "telegram.-1001234", MatrixServer: "Example.org"},
		/* 7 */ {Action: "allow", Network: "whatsapp", MatrixUser: "@boss:example.org"},
		/* 8 */ {Action: "deny", Chat: "whatsapp.leaks@g.us"},
		/* 9 */ {Action: "allow", Phone: "+4915112345678", Direction: "outbound"},
		/* 10 */ {Action: "deny", Network: "*", MatrixServer: "guests.example.org"},
		/* 11 */ {Action: "allow", Phone: "+79991234567", Comment: "deny wins: this never allows"},
	}
	base := func(mods ...func(*policy.Request)) policy.Request {
		r := policy.Request{Network: "whatsapp", Direction: policy.Inbound, Staff: "@alice:example.org", ChatID: "whatsapp.1"}
		for _, m := range mods {
			m(&r)
		}
		return r
	}
	phone := func(p string) func(*policy.Request) { return func(r *policy.Request) { r.Remote.Phone = p } }
	network := func(n string) func(*policy.Request) { return func(r *policy.Request) { r.Network = n } }
	staff := func(s string) func(*policy.Request) {
		return func(r *policy.Request) { r.Staff = policyUser(s) }
	}
	chat := func(c string) func(*policy.Request) { return func(r *policy.Request) { r.ChatID = policyChat(c) } }
	outbound := func(r *policy.Request) { r.Direction = policy.Outbound }
	approved := func(r *policy.Request) { r.Approved = true }
	username := func(u string) func(*policy.Request) { return func(r *policy.Request) { r.Remote.TelegramUsername = u } }
	tgID := func(id int64) func(*policy.Request) { return func(r *policy.Request) { r.Remote.TelegramUserID = id } }

	const (
		allow = policy.Allow
		deny  = policy.Deny
		ask   = policy.NeedsApproval
	)
	for _, tc := range []struct {
		name string
		mode policy.Mode
		req  policy.Request
		want policy.Verdict
		rule int64 // 0: the mode decided
	}{
		// Prefixes and exact numbers.
		{"prefix denies", policy.ModeOpen, base(phone("+79990000000")), deny, 1},
		{"prefix denies, spaced", policy.ModeOpen, base(phone("+7 999 000 00 00")), deny, 1},
		{"prefix denies, 00", policy.ModeOpen, base(phone("007 999 000 00 00")), deny, 1},
		{"prefix is not a substring", policy.ModeOpen, base(phone("+33799900000")), allow, 0},
		{"longer prefix allows", policy.ModeAllowlist, base(phone("+33612345678")), allow, 2},
		{"outside the prefix", policy.ModeAllowlist, base(phone("+33612355678")), deny, 0},
		{"exact deny inside allowed prefix", policy.ModeAllowlist, base(phone("+33612349999")), deny, 3},
		{"exact number does not match longer", policy.ModeOpen, base(phone("+336123499990")), allow, 2},
		{"deny wins over exact allow", policy.ModeAllowlist, base(phone("+79991234567")), deny, 1},
		{"malformed number fails closed", policy.ModeOpen, base(phone("+33 6 12 AB")), deny, 0},
		{"national number fails closed", policy.ModeOpen, base(phone("06 12 34 56 78")), deny, 0},
		{"no number: phone rules do not match", policy.ModeAllowlist, base(), deny, 0},
		// Telegram identities.
		{"username, any case and @", policy.ModeAllowlist, base(network("telegram"), username("@PRESS_office")), allow, 4},
		{"username is exact", policy.ModeAllowlist, base(network("telegram"), username("press_office2")), deny, 0},
		{"username rule is telegram only", policy.ModeAllowlist, base(username("press_office")), deny, 0},
		{"user id", policy.ModeAllowlist, base(network("telegram"), tgID(4242)), allow, 5},
		{"other user id", policy.ModeAllowlist, base(network("telegram"), tgID(4243)), deny, 0},
		// Chats and scopes.
		{"chat scoped to server", policy.ModeAllowlist, base(network("telegram"), chat("telegram.-1001234")), allow, 6},
		{"server scope is case-insensitive", policy.ModeAllowlist, base(network("telegram"), chat("telegram.-1001234"), staff("@bob:EXAMPLE.org")), allow, 6},
		{"chat, staff on other server", policy.ModeAllowlist, base(network("telegram"), chat("telegram.-1001234"), staff("@bob:partner.org")), deny, 0},
		{"user scope", policy.ModeAllowlist, base(staff("@boss:example.org")), allow, 7},
		{"user scope, other network", policy.ModeAllowlist, base(network("telegram"), staff("@boss:example.org")), deny, 0},
		{"user scope, other user", policy.ModeAllowlist, base(staff("@boss2:example.org")), deny, 0},
		{"chat deny beats user allow", policy.ModeAllowlist, base(staff("@boss:example.org"), chat("whatsapp.leaks@g.us")), deny, 8},
		{"server-wide deny", policy.ModeOpen, base(network("telegram"), staff("@guest:guests.example.org")), deny, 10},
		{"server deny is not a suffix match", policy.ModeOpen, base(staff("@x:evilguests.example.org")), allow, 0},
		// Direction.
		{"outbound-only rule, outbound", policy.ModeAllowlist, base(outbound, phone("+4915112345678")), allow, 9},
		{"outbound-only rule, inbound", policy.ModeAllowlist, base(phone("+4915112345678")), deny, 0},
		// Modes.
		{"open", policy.ModeOpen, base(phone("+4915100000000")), allow, 0},
		{"allowlist", policy.ModeAllowlist, base(phone("+4915100000000")), deny, 0},
		{"approval, new", policy.ModeApproval, base(phone("+4915100000000")), ask, 0},
		{"approval, approved before", policy.ModeApproval, base(phone("+4915100000000"), approved), allow, 0},
		{"approval, allowed by rule", policy.ModeApproval, base(phone("+33612345678")), allow, 2},
		{"approval, deny beats approval", policy.ModeApproval, base(phone("+79990000000"), approved), deny, 1},
		{"approved is ignored in allowlist", policy.ModeAllowlist, base(phone("+4915100000000"), approved), deny, 0},
		{"closed, new", policy.ModeClosed, base(phone("+4915100000000")), deny, 0},
		{"closed, bridged before", policy.ModeClosed, base(phone("+4915100000000"), approved), allow, 0},
		{"closed, allowed by rule", policy.ModeClosed, base(phone("+33612345678")), allow, 2},
		{"closed, deny beats bridged before", policy.ModeClosed, base(phone("+79990000000"), approved), deny, 1},
		// Malformed requests fail closed.
		{"no network", policy.ModeOpen, base(network("")), deny, 0},
		{"unknown network", policy.ModeOpen, base(network("signal")), deny, 0},
		{"no direction", policy.ModeOpen, base(func(r *policy.Request) { r.Direction = "" }), deny, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Compile(policy.Config{DefaultMode: tc.mode, Rules: rules}, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Evaluate(tc.req)
			if d.Verdict != tc.want {
				t.Errorf("verdict = %s (%s), want %s", d.Verdict, d.Reason, tc.want)
			}
			switch {
			case tc.rule == 0 && d.Rule != nil:
				t.Errorf("decided by %s, want the mode", d.Rule)
			case tc.rule != 0 && (d.Rule == nil || d.Rule.Index != tc.rule):
				t.Errorf("decided by %v (%s), want rule %d", d.Rule, d.Reason, tc.rule)
			}
			if d.Reason == "" || d.Mode != tc.mode && tc.req.Network != "signal" {
				t.Errorf("decision = %+v", d)
			}
		})
	}
}

// TestEvaluateReasonHidesNumber: reasons go to logs and rooms; they name the
// rule, never the remote number of the request.
func TestEvaluateReasonHidesNumber(t *testing.T) {
	p, err := policy.Compile(policy.Config{DefaultMode: policy.ModeAllowlist}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range []string{"+4915112345678", "+49 151 ABC"} {
		d := p.Evaluate(policy.Request{Network: "whatsapp", Direction: policy.Inbound, Remote: policy.Remote{Phone: ph}})
		if d.Verdict != policy.Deny || containsAny(d.Reason, "15112345678", "151 ABC") {
			t.Errorf("decision for %s = %+v", ph, d)
		}
	}
}

func TestPerNetworkModes(t *testing.T) {
	p, err := policy.Compile(policy.Config{Modes: map[string]policy.Mode{"telegram": "open", "whatsapp": "approval"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg := p.Evaluate(policy.Request{Network: "telegram", Direction: policy.Inbound, ChatID: "telegram.1"})
	wa := p.Evaluate(policy.Request{Network: "whatsapp", Direction: policy.Inbound, ChatID: "whatsapp.1"})
	if tg.Verdict != policy.Allow || wa.Verdict != policy.NeedsApproval {
		t.Errorf("telegram %s, whatsapp %s", tg.Verdict, wa.Verdict)
	}
}
