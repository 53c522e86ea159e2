package admin_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestGroupChangesFromMatrixGoverned: a staff member changes a Telegram
// group from Matrix through the gate. A rename of a bridged group reaches
// Telegram; adding a contact the policy denies is refused (the contact is
// not added, and the audit log says why); once an admin revokes the group,
// a rename no longer reaches Telegram.
func TestGroupChangesFromMatrixGoverned(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Rules = []policy.Rule{{Action: policy.ActionDeny, Network: policy.NetworkTelegram, TelegramUsername: "carol_press", Comment: "no press"}}
		})
		r := e.start()
		e.loginStaff(r)
		// Carol wrote to Alice once (refused: the policy denies her), so
		// Alice's account knows her.
		e.send(e.carol, "a question from the press")
		waitAudit(t, r, audit.ActionPolicyDenied)
		ch, err := e.sim.CreateChannel(tgsim.ChannelSpec{Title: "Suppliers", Creator: e.alice.ID, Members: []int64{e.bob.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChannelPost(ch.ID, e.bob.ID, "the invoice follows", ""); err != nil {
			t.Fatal(err)
		}
		msg, ok := e.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "the invoice follows" })
		if !ok {
			t.Fatal("the supergroup's message never reached Matrix")
		}
		room := msg.RoomID
		inject := func(evt *event.Event) {
			evt.RoomID, evt.Sender, evt.Timestamp = room, staffMXID, time.Now().UnixMilli()
			r.mx.Inject(ctx, evt)
		}
		rename := func(evtID id.EventID, name string) {
			inject(&event.Event{Type: event.StateRoomName, ID: evtID, StateKey: ptr.Ptr(""),
				Content: event.Content{Parsed: &event.RoomNameEventContent{Name: name}}})
		}
		title := func() string { info, _ := e.sim.ChannelInfo(ch.ID); return info.Title }

		rename("$rename1", "Suppliers 2027")
		if !poll(20*time.Second, func() bool { return title() == "Suppliers 2027" }) {
			t.Fatalf("the rename of a bridged group never reached Telegram (title %q)", title())
		}

		carol := e.mx.FormatGhostMXID(tgid.MakeUserID(e.carol.ID))
		inject(&event.Event{Type: event.StateMember, ID: "$invite-carol", StateKey: ptr.Ptr(carol.String()),
			Content:  event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipInvite}},
			Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"membership":"leave"}`)}}})
		var denied *audit.Entry
		if !poll(20*time.Second, func() bool {
			entries, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionPolicyDenied}})
			for i, en := range entries {
				if strings.Contains(string(en.Details), `"direction":"outbound"`) {
					denied = &entries[i]
				}
			}
			return denied != nil
		}) {
			t.Fatalf("adding a denied contact left no outbound policy_denied entry; statuses: %+v", e.mx.StatusesOf("$invite-carol"))
		}
		if d := string(denied.Details); !strings.Contains(d, "carol_press") || denied.Portal != tgid.MakePortalID(tgid.Peer{Type: tgid.PeerChannel, ID: ch.ID}) {
			t.Errorf("the policy_denied entry does not name the rule and the group: %+v", denied)
		}
		if info, _ := e.sim.ChannelInfo(ch.ID); slices.Contains(info.Members, e.carol.ID) {
			t.Error("a contact the policy denies was added to the group")
		}

		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-revoke "+string(room)); !strings.Contains(out, "Revoked") {
			t.Fatalf("gov-revoke: %q", out)
		}
		rename("$rename2", "Taken back")
		if !poll(20*time.Second, func() bool {
			for _, st := range e.mx.StatusesOf("$rename2") {
				if strings.Contains(st.Error(), "revoked") {
					return true
				}
			}
			return false
		}) {
			t.Errorf("a rename in a revoked group was not refused: %+v", e.mx.StatusesOf("$rename2"))
		}
		if got := title(); got != "Suppliers 2027" {
			t.Errorf("a revoked group was renamed on Telegram to %q", got)
		}
	})
}
