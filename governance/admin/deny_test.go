package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestDenyAndExpiry: a denial by command drops the held messages (counted,
// not kept), tells the staff member without the content, and drops later
// messages of the chat; a request nobody answers expires as denied after
// approval_ttl (injected clock). Non-admins change nothing.
func TestDenyAndExpiry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			approvalMode(cfg)
			cfg.ApprovalTTL = gate.Duration(time.Hour)
		})
		r := e.start()
		e.loginStaff(r)

		e.send(e.bob, "secret one")
		e.send(e.bob, "secret two")
		e.waitNotice(e.adminRoom(), "request #1")
		if !poll(10*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 2
		}) {
			t.Fatal("messages were not held")
		}

		out := r.command(t, e, otherMXID, e.adminRoom(), "gov-deny 1")
		if !strings.Contains(out, "limited to the organisation's governance admins") {
			t.Errorf("non-admin gov-deny: %q", out)
		}
		if req, _ := r.gv.Approvals.Get(ctx, 1); req.State != approval.StatePending {
			t.Fatalf("a non-admin denied the request: %s", req.State)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-deny 1 not a work contact")
		if !strings.Contains(out, "2 held message(s) discarded") {
			t.Errorf("gov-deny: %q", out)
		}
		told := e.waitNotice("", "An admin denied bridging your Telegram chat with Bob Outside")
		if !strings.Contains(told.Content.Body, "2 held message(s) were discarded") || strings.Contains(told.Content.Body, "secret") {
			t.Errorf("staff notice: %q", told.Content.Body)
		}
		if held, _ := r.gv.Approvals.Held(ctx, 1); len(held) != 0 {
			t.Errorf("denied request still holds %d messages", len(held))
		}
		e.send(e.bob, "secret three")

		// Carol's request expires unanswered.
		e.send(e.carol, "hello?")
		e.waitNotice(e.adminRoom(), "request #2")
		e.clk.Advance(30 * time.Minute)
		if err := r.gv.ExpireDue(ctx); err != nil {
			t.Fatal(err)
		}
		if req, _ := r.gv.Approvals.Get(ctx, 2); req.State != approval.StatePending {
			t.Fatalf("request expired early: %s", req.State)
		}
		e.clk.Advance(31 * time.Minute)
		if err := r.gv.ExpireDue(ctx); err != nil {
			t.Fatal(err)
		}
		if req, _ := r.gv.Approvals.Get(ctx, 2); req.State != approval.StateExpired || req.HeldCount != 1 {
			t.Fatalf("request after its TTL: %+v", req)
		}
		e.waitNotice("", "Nobody approved in time bridging your Telegram chat with Carol Press")
		e.waitNotice(e.adminRoom(), "Request #2 expired unanswered")
		e.send(e.carol, "anyone?")

		// Messages after a denial or an expiry never reach Matrix, and no new
		// request is made for them.
		time.Sleep(time.Second)
		if got := append(e.bodiesFrom(e.bob), e.bodiesFrom(e.carol)...); len(got) != 0 {
			t.Errorf("messages of refused chats reached Matrix: %q", got)
		}
		if pending, _ := r.gv.Approvals.Pending(ctx); len(pending) != 0 {
			t.Errorf("pending requests after denial and expiry: %+v", pending)
		}
		entries, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionRequestDenied, audit.ActionRequestExpired}})
		if len(entries) != 2 || entries[0].Actor != string(adminMXID) || entries[1].Actor != audit.ActorSystem {
			t.Errorf("decision entries: %+v", entries)
		}
	})
}
