package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func openDB(t *testing.T, b dbtest.Backend) *dbutil.Database {
	t.Helper()
	db, err := store.Open(context.Background(), b.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestEngineRuntimeRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := openDB(t, b)
		log := audit.NewLog(db)
		cfg := policy.Config{DefaultMode: policy.ModeOpen, Rules: []policy.Rule{{Action: "deny", PhonePrefix: "+7"}}}
		eng, err := policy.NewEngine(ctx, cfg, db, log)
		if err != nil {
			t.Fatal(err)
		}
		eng.Now = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
		req := policy.Request{Network: "whatsapp", Direction: policy.Inbound, Staff: "@alice:example.org",
			Remote: policy.Remote{Phone: "+380441234567"}, ChatID: "whatsapp.380441234567"}
		if d := eng.Evaluate(req); d.Verdict != policy.Allow {
			t.Fatalf("before: %+v", d)
		}
		added, err := eng.AddRule(ctx, "@admin:example.org", policy.Rule{Action: "deny", PhonePrefix: "+380", Comment: "incident 12"})
		if err != nil {
			t.Fatal(err)
		}
		d := eng.Evaluate(req)
		if d.Verdict != policy.Deny || d.Rule == nil || d.Rule.Source != policy.SourceRuntime || d.Rule.Index != added.ID {
			t.Fatalf("after adding: %+v", d)
		}
		if !strings.Contains(d.Reason, "runtime policy rule #") {
			t.Errorf("reason = %q", d.Reason)
		}

		// A restart keeps the runtime rule, after the config rules.
		eng2, err := policy.NewEngine(ctx, cfg, openDB(t, b), nil)
		if err != nil {
			t.Fatal(err)
		}
		refs := eng2.Policy().Rules()
		if len(refs) != 2 || refs[0].Source != policy.SourceConfig || refs[1].Index != added.ID ||
			refs[1].Rule.Comment != "incident 12" {
			t.Fatalf("rules after restart = %+v", refs)
		}
		if d := eng2.Evaluate(req); d.Verdict != policy.Deny {
			t.Fatalf("after restart: %+v", d)
		}

		// Invalid rules and unknown IDs change nothing.
		before, _ := log.List(ctx, audit.Filter{})
		_, err = eng.AddRule(ctx, "@admin:example.org", policy.Rule{Action: "deny", PhonePrefix: "+38O"})
		if !errors.Is(err, policy.ErrInvalidRule) || !strings.Contains(err.Error(), `new policy rule (deny phone_prefix "+38O")`) {
			t.Errorf("invalid rule: %v", err)
		}
		if _, err = eng.RemoveRule(ctx, "@admin:example.org", 9999); !errors.Is(err, policy.ErrUnknownRule) {
			t.Errorf("unknown rule: %v", err)
		}
		after, _ := log.List(ctx, audit.Filter{})
		if len(after) != len(before) || len(eng.Policy().Rules()) != 2 {
			t.Errorf("refused changes were applied or logged")
		}

		removed, err := eng.RemoveRule(ctx, "@admin:example.org", added.ID)
		if err != nil || removed.Rule.PhonePrefix != "+380" {
			t.Fatalf("remove = %+v, %v", removed, err)
		}
		if d := eng.Evaluate(req); d.Verdict != policy.Allow {
			t.Fatalf("after removing: %+v", d)
		}
		if err = eng2.Reload(ctx); err != nil || len(eng2.Policy().Rules()) != 1 {
			t.Fatalf("reload of a second instance: %v, %d rules", err, len(eng2.Policy().Rules()))
		}

		// Both changes are in the audit log, and the chain holds.
		changes, err := log.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionPolicyChanged}})
		if err != nil || len(changes) != 2 {
			t.Fatalf("policy_changed entries = %v, %v", changes, err)
		}
		if changes[0].Actor != "@admin:example.org" || !strings.Contains(string(changes[0].Details), `"op":"add"`) ||
			!strings.Contains(string(changes[1].Details), `"op":"remove"`) {
			t.Errorf("entries = %+v", changes)
		}
		if r, err := log.Verify(ctx); err != nil || !r.OK() {
			t.Fatalf("verify: %v %v", err, r.Err())
		}
	})
}

// TestEngineRefusesInvalidStoredRule: a stored rule that no longer validates
// (edited in the database, or a network removed) stops the start, naming it.
func TestEngineRefusesInvalidStoredRule(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := openDB(t, b)
		cfg := policy.Config{DefaultMode: policy.ModeAllowlist}
		eng, err := policy.NewEngine(ctx, cfg, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := eng.AddRule(ctx, "@admin:example.org", policy.Rule{Action: "allow", Network: "telegram"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = db.Exec(ctx, "UPDATE governance_policy_rule SET network = 'signal' WHERE id = $1", rr.ID); err != nil {
			t.Fatal(err)
		}
		_, err = policy.NewEngine(ctx, cfg, db, nil)
		if !errors.Is(err, policy.ErrInvalidRule) || !strings.Contains(err.Error(), "runtime policy rule #") ||
			!strings.Contains(err.Error(), `unknown network "signal"`) {
			t.Fatalf("NewEngine = %v", err)
		}
		if _, err = policy.NewEngine(ctx, policy.Config{DefaultMode: "shut"}, db, nil); !errors.Is(err, policy.ErrInvalidConfig) {
			t.Fatalf("invalid config: %v", err)
		}
	})
}

// TestEngineClose: a migration deadline closes a network whatever its
// configured mode, the other network keeps its mode, and a rule change
// (which recompiles the policy) keeps it closed.
func TestEngineClose(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := openDB(t, b)
		eng, err := policy.NewEngine(ctx, policy.Config{DefaultMode: policy.ModeOpen}, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		if changed, err := eng.Close(ctx, "telegram"); err != nil || !changed {
			t.Fatalf("Close = %v, %v", changed, err)
		}
		if changed, err := eng.Close(ctx, "telegram"); err != nil || changed {
			t.Fatalf("second Close = %v, %v; want no change", changed, err)
		}
		if _, err := eng.Close(ctx, "signal"); !errors.Is(err, policy.ErrInvalidConfig) {
			t.Fatalf("Close(signal) = %v", err)
		}
		if _, err = eng.AddRule(ctx, "@admin:example.org", policy.Rule{Action: "deny", Phone: "+4915100000000"}); err != nil {
			t.Fatal(err)
		}
		p := eng.Policy()
		if p.Mode("telegram") != policy.ModeClosed || p.Mode("whatsapp") != policy.ModeOpen {
			t.Fatalf("modes after Close: telegram %s, whatsapp %s", p.Mode("telegram"), p.Mode("whatsapp"))
		}
		req := policy.Request{Network: "telegram", Direction: policy.Inbound, Staff: "@alice:example.org", ChatID: "telegram:user:5"}
		if d := eng.Evaluate(req); d.Verdict != policy.Deny || !strings.Contains(d.Reason, "closed to new chats") {
			t.Errorf("new telegram chat: %+v", d)
		}
		req.Approved = true
		if d := eng.Evaluate(req); d.Verdict != policy.Allow {
			t.Errorf("bridged telegram chat: %+v", d)
		}
		req.Network, req.Approved = "whatsapp", false
		if d := eng.Evaluate(req); d.Verdict != policy.Allow {
			t.Errorf("new whatsapp chat: %+v", d)
		}
	})
}
