package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestMigratedGroupKeepsItsGovernance: a Telegram basic group that becomes a
// supergroup keeps its portal under the supergroup's key, and its
// governance follows: an approved group stays approved (no new request), a
// revoked group stays revoked (the supergroup's messages never reach
// Matrix).
func TestMigratedGroupKeepsItsGovernance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, approvalMode)
		r := e.start()
		e.loginStaff(r)
		reached := func(text string) bool {
			return len(e.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == text })) > 0
		}
		wait := func(text string) fakematrix.Message {
			t.Helper()
			m, ok := e.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == text })
			if !ok {
				t.Fatalf("%q never reached Matrix", text)
			}
			return m
		}

		// An approved group.
		approved, err := e.sim.CreateChat(tgsim.ChatSpec{Title: "Harbour works", Creator: e.bob.ID, Members: []int64{e.alice.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChatPost(approved.ID, e.bob.ID, "the crane arrives monday"); err != nil {
			t.Fatal(err)
		}
		notice := e.waitNotice(e.adminRoom(), "request #1")
		r.react(e, adminMXID, notice.EventID, "✅")
		room := wait("the crane arrives monday").RoomID

		// A revoked group.
		revoked, err := e.sim.CreateChat(tgsim.ChatSpec{Title: "Old committee", Creator: e.bob.ID, Members: []int64{e.alice.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChatPost(revoked.ID, e.bob.ID, "last minutes"); err != nil {
			t.Fatal(err)
		}
		notice = e.waitNotice(e.adminRoom(), "request #2")
		r.react(e, adminMXID, notice.EventID, "✅")
		revokedRoom := wait("last minutes").RoomID
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-revoke "+string(revokedRoom)); !strings.Contains(out, "Revoked") {
			t.Fatalf("gov-revoke: %q", out)
		}

		// Both become supergroups.
		sgApproved, err := e.sim.MigrateChat(approved.ID, e.bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		sgRevoked, err := e.sim.MigrateChat(revoked.ID, e.bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChannelPost(sgRevoked.ID, e.bob.ID, "minutes after the migration", ""); err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChannelPost(sgApproved.ID, e.bob.ID, "the crane is here", ""); err != nil {
			t.Fatal(err)
		}
		if got := wait("the crane is here").RoomID; got != room {
			t.Errorf("the approved group's supergroup wrote in %s, want its portal %s", got, room)
		}
		if reqs, _ := r.gv.Approvals.Pending(ctx); len(reqs) != 0 {
			t.Errorf("the migrated approved group asked again: %+v", reqs)
		}
		last, err := r.gv.Approvals.LastForChat(ctx, tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: sgApproved.ID}, ""))
		if err != nil || last == nil || last.ID != 1 || last.State != approval.StateApproved {
			t.Errorf("the supergroup's last request: %+v, %v; want #1, approved", last, err)
		}
		// The revoked supergroup's post never reaches Matrix and asks
		// nobody. (Were the move lost, the connector would wait for it for
		// its migration wait, 10 s, then make a request under the new key.)
		if poll(12*time.Second, func() bool {
			reqs, _ := r.gv.Approvals.Pending(ctx)
			return reached("minutes after the migration") || len(reqs) > 0
		}) {
			reqs, _ := r.gv.Approvals.Pending(ctx)
			t.Errorf("a revoked group's supergroup got through: reached Matrix %v, pending requests %+v", reached("minutes after the migration"), reqs)
		}
	})
}
