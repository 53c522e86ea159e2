package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func approvalMode(cfg *gate.Config) {
	cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkTelegram: policy.ModeApproval}
}

// TestApprovalHoldsAcrossRestartAndDeliversInOrder: in approval mode the
// first messages of a new outside chat are held (nothing reaches Matrix), the
// admin room gets a request naming who and what, the held messages survive a
// restart, and an admin's ✅ reaction delivers them in order with their
// original timestamps; later messages are bridged directly.
func TestApprovalHoldsAcrossRestartAndDeliversInOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, approvalMode)
		r := e.start()
		e.loginStaff(r)

		one := e.send(e.bob, "one")
		time.Sleep(1100 * time.Millisecond) // distinct timestamps (whole seconds)
		two := e.send(e.bob, "two")
		notice := e.waitNotice(e.adminRoom(), "request #1")
		for _, want := range []string{"@alice:test", "Telegram", "Bob Outside", "@bob_outside", "+15550002", "direct chat"} {
			if !strings.Contains(notice.Content.Body, want) {
				t.Errorf("request notice lacks %q:\n%s", want, notice.Content.Body)
			}
		}
		if !poll(10*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 2
		}) {
			t.Fatal("the two messages were not held")
		}
		if got := e.bodiesFrom(e.bob); len(got) != 0 {
			t.Errorf("held messages reached Matrix: %q", got)
		}

		// Restart while the request is pending: nothing is lost, and a
		// message sent meanwhile joins the held ones.
		r.stop()
		r = e.start()
		e.waitConnected()
		three := e.send(e.bob, "three")
		if !poll(10*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 3
		}) {
			t.Fatal("the message after the restart was not held")
		}

		// A reaction by someone who is not an admin decides nothing.
		r.react(e, otherMXID, notice.EventID, gate.ReactionApprove)
		if req, _ := r.gv.Approvals.Get(ctx, 1); req.State != approval.StatePending {
			t.Fatalf("a non-admin's reaction changed the request: %s", req.State)
		}
		r.react(e, adminMXID, notice.EventID, gate.ReactionApprove)
		got := e.waitBodies(e.bob, "one", "two", "three")
		for i, m := range []int64{one.Date.Unix(), two.Date.Unix(), three.Date.Unix()} {
			if got[i].TS.Unix() != m {
				t.Errorf("message %d bridged with timestamp %s, want the original %s", i+1, got[i].TS, time.Unix(m, 0))
			}
		}
		req, err := r.gv.Approvals.Get(ctx, 1)
		if err != nil || req.State != approval.StateApproved || !req.Delivered {
			t.Fatalf("request after approval: %+v, %v", req, err)
		}
		e.waitNotice("", "An admin approved your Telegram chat with Bob Outside")

		// Later messages go straight through.
		e.send(e.bob, "four")
		e.waitBodies(e.bob, "one", "two", "three", "four")

		// Approving twice, or an unknown request: a clear error, nothing changed.
		out := r.command(t, e, adminMXID, e.adminRoom(), "gov-approve 1")
		if !strings.Contains(out, "already decided") {
			t.Errorf("approving twice: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-approve 99")
		if !strings.Contains(out, "unknown approval request") {
			t.Errorf("unknown request: %q", out)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionRequestCreated, audit.ActionRequestApproved, audit.ActionPortalCreated, audit.ActionFirstContact, audit.ActionLogin}})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[audit.Action]int{}
		for _, en := range entries {
			seen[en.Action]++
		}
		for _, a := range []audit.Action{audit.ActionRequestCreated, audit.ActionRequestApproved, audit.ActionPortalCreated, audit.ActionFirstContact, audit.ActionLogin} {
			if seen[a] != 1 {
				t.Errorf("audit log has %d %s entries, want 1 (%v)", seen[a], a, seen)
			}
		}
		if report, err := r.gv.Audit.Verify(ctx); err != nil || !report.OK() {
			t.Errorf("audit chain: %+v, %v", report, err)
		}
	})
}
