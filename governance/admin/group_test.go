package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestWhatsAppGroupWithDeniedMember: a deny rule that names a member of a
// group refuses the whole group, even when someone else writes, and the
// audit entry says why; a group without such a member is bridged.
func TestWhatsAppGroupWithDeniedMember(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Rules = []policy.Rule{{Action: policy.ActionDeny, Network: policy.NetworkWhatsApp, PhonePrefix: "+44", Comment: "no UK numbers"}}
		})
		r := w.start()
		w.loginStaff(r)

		denied, err := w.srv.CreateGroup(ctx, waBob, "Supplier and UK office", "", []string{waAlice, waCarol})
		if err != nil {
			t.Fatal(err)
		}
		allowed, err := w.srv.CreateGroup(ctx, waBob, "Supplier", "", []string{waAlice})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendGroupText(ctx, waBob, denied, "minutes of today", nil); err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendGroupText(ctx, waBob, allowed, "the invoice follows", nil); err != nil {
			t.Fatal(err)
		}
		if _, ok := w.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "the invoice follows" }); !ok {
			t.Fatal("the allowed group's message never reached Matrix")
		}
		entries := waitAudit(t, r.running, audit.ActionPolicyDenied)
		if d := string(entries[0].Details); !strings.Contains(d, "a member of the group is refused") || !strings.Contains(d, "+44") {
			t.Errorf("policy_denied entry does not say why: %s", d)
		}
		if got := w.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == "minutes of today" }); len(got) != 0 {
			t.Errorf("the group with a denied member reached Matrix: %+v", got)
		}
		if _, ok := w.mx.RoomNamed("Supplier and UK office"); ok {
			t.Error("the group with a denied member got a portal")
		}
	})
}

// TestWhatsAppGroupApprovalNamesMembers: in approval mode a new group waits
// for an admin, and the request names the group and its outside members.
func TestWhatsAppGroupApprovalNamesMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeApproval}
		})
		r := w.start()
		w.loginStaff(r)
		group, err := w.srv.CreateGroup(ctx, waBob, "Prefecture crisis cell", "", []string{waAlice, waCarol})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendGroupText(ctx, waBob, group, "meeting at 6", nil); err != nil {
			t.Fatal(err)
		}
		notice := w.waitNotice(w.adminRoom(), "request #1")
		for _, want := range []string{"group Prefecture crisis cell", "Members:", "+" + waBob, "+" + waCarol} {
			if !strings.Contains(notice.Content.Body, want) {
				t.Errorf("request notice lacks %q:\n%s", want, notice.Content.Body)
			}
		}
		if strings.Contains(notice.Content.Body, "+"+waAlice) {
			t.Errorf("the request lists the staff member's own account as an outside member:\n%s", notice.Content.Body)
		}
	})
}

// TestGroupDecisionsSurviveSharedPortals: before portals of groups were
// shared, the gate kept a group's state and requests per staff login. A
// group an admin revoked then stays revoked under its shared key, and a
// group an admin denied stays denied (no new request).
func TestGroupDecisionsSurviveSharedPortals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeApproval}
		})
		r := w.start()
		login := w.loginStaff(r)
		revoked, err := w.srv.CreateGroup(ctx, waBob, "Revoked group", "", []string{waAlice})
		if err != nil {
			t.Fatal(err)
		}
		denied, err := w.srv.CreateGroup(ctx, waBob, "Denied group", "", []string{waAlice})
		if err != nil {
			t.Fatal(err)
		}
		portalOf := func(group string) string {
			jid, err := types.ParseJID(group)
			if err != nil {
				t.Fatal(err)
			}
			id, err := waid.MakePortalID(jid)
			if err != nil {
				t.Fatal(err)
			}
			return string(id)
		}
		// What the previous release stored, per login.
		db := r.br.DB.Database
		if _, err = db.Exec(ctx, `INSERT INTO governance_gate_portal (portal_id, receiver, network, staff, room_id, controlled_at, revoked, revoked_at, revoked_by)
			VALUES ($1, $2, 'whatsapp', $3, '!old:test', 1, true, 2, $4)`, portalOf(revoked), string(login.ID), string(staffMXID), string(adminMXID)); err != nil {
			t.Fatal(err)
		}
		if _, err = db.Exec(ctx, `INSERT INTO governance_approval_request (network, direction, staff, login, portal, receiver, is_group, contact,
			contact_name, contact_ident, state, created_at, expires_at, held_count, decided_at, decided_by, reason)
			VALUES ('whatsapp', 'inbound', $1, $2, $3, $2, true, '', '', '', 'denied', 1, 2, 0, 3, $4, '')`,
			string(staffMXID), string(login.ID), portalOf(denied), string(adminMXID)); err != nil {
			t.Fatal(err)
		}

		for _, g := range []string{revoked, denied} {
			if _, err = w.srv.SendGroupText(ctx, waBob, g, "still there?", nil); err != nil {
				t.Fatal(err)
			}
		}
		allowed, err := w.srv.CreateGroup(ctx, waBob, "New group", "", []string{waAlice})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendGroupText(ctx, waBob, allowed, "a new group", nil); err != nil {
			t.Fatal(err)
		}
		// The new group gets a request: the two others were decided before.
		w.waitNotice(w.adminRoom(), "group New group")
		pending, err := r.gv.Approvals.Pending(ctx)
		if err != nil || len(pending) != 1 {
			t.Errorf("pending requests: %+v, %v; want only the new group's", pending, err)
		}
		if got := w.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == "still there?" }); len(got) != 0 {
			t.Errorf("a revoked or denied group reached Matrix: %+v", got)
		}
	})
}

// TestTelegramGroupWithDeniedMember: the same on Telegram, with a rule on a
// member's username: a supergroup with that member is refused, one without
// is bridged.
func TestTelegramGroupWithDeniedMember(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		e := newEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Rules = []policy.Rule{{Action: policy.ActionDeny, Network: policy.NetworkTelegram, TelegramUsername: "carol_press", Comment: "no press"}}
		})
		r := e.start()
		e.loginStaff(r)
		denied, err := e.sim.CreateChannel(tgsim.ChannelSpec{Title: "Suppliers and press", Creator: e.bob.ID, Members: []int64{e.alice.ID, e.carol.ID}})
		if err != nil {
			t.Fatal(err)
		}
		allowed, err := e.sim.CreateChannel(tgsim.ChannelSpec{Title: "Suppliers", Creator: e.bob.ID, Members: []int64{e.alice.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChannelPost(denied.ID, e.bob.ID, "minutes of today", ""); err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChannelPost(allowed.ID, e.bob.ID, "the invoice follows", ""); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "the invoice follows" }); !ok {
			t.Fatal("the allowed supergroup's message never reached Matrix")
		}
		entries := waitAudit(t, r, audit.ActionPolicyDenied)
		if d := string(entries[0].Details); !strings.Contains(d, "a member of the group is refused") {
			t.Errorf("policy_denied entry does not say why: %s", d)
		}
		if got := e.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == "minutes of today" }); len(got) != 0 {
			t.Errorf("the supergroup with a denied member reached Matrix: %+v", got)
		}
	})
}
