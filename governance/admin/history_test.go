package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// history builds a batch of n messages of history from sender (or from the
// staff member when sender is nil).
func history(login *bridgev2.UserLogin, portal *bridgev2.Portal, chat remote.Chat, contact *tgsim.Account, senders ...*tgsim.Account) remote.History {
	h := remote.History{Login: login, Portal: portal, Chat: chat}
	if contact != nil {
		h.Remote = tgid.MakeUserID(contact.ID)
	}
	for i, s := range senders {
		m := remote.HistoryMessage{Message: &bridgev2.BackfillMessage{ID: networkid.MessageID(strings.Repeat("m", i+1))}}
		if s == nil {
			m.FromMe = true
		} else {
			m.Sender = remote.Identity{ID: tgid.MakeUserID(s.ID), Username: s.Username, DisplayName: s.FirstName}
		}
		m.HasMedia = i == 0
		h.Messages = append(h.Messages, m)
	}
	return h
}

// TestHistoryOnlyForBridgedChats: a chat's history is bridged only when the
// chat is: nothing while it waits for approval (and no second request),
// all of it once approved (counted per contact, message or media, in and
// out, and one history_bridged audit entry), nothing after a revocation.
func TestHistoryOnlyForBridgedChats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, approvalMode)
		r := e.start()
		login := e.loginStaff(r)
		key := e.portalKey(e.bob)

		e.send(e.bob, "hello, anyone there?")
		notice := e.waitNotice(e.adminRoom(), "request #1")
		portal, err := r.br.GetPortalByKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		batch := func() remote.History {
			return history(login, portal, remote.Chat{}, e.bob, e.bob, nil, e.bob)
		}
		if got := r.gv.FilterBackfill(ctx, batch()); len(got) != 0 {
			t.Errorf("history of a chat waiting for approval: %d messages bridged, want none", len(got))
		}
		if reqs, err := r.gv.Approvals.Pending(ctx); err != nil || len(reqs) != 1 {
			t.Fatalf("requests after a refused history: %d (%v), want the contact's one", len(reqs), err)
		}

		r.react(e, adminMXID, notice.EventID, gate.ReactionApprove)
		e.waitBodies(e.bob, "hello, anyone there?")
		var before *audit.Contact
		if !poll(10*time.Second, func() bool {
			before, err = r.gv.Contacts.Get(ctx, policy.NetworkTelegram, tgid.MakeUserID(e.bob.ID))
			return err == nil && before != nil && before.MessagesIn == 1
		}) {
			t.Fatalf("bob's first message is not in the registry: %+v, %v", before, err)
		}
		got := r.gv.FilterBackfill(ctx, batch())
		if len(got) != 3 || got[0].ID != "m" || got[2].ID != "mmm" {
			t.Fatalf("history of an approved chat: %d messages, want the 3 in order", len(got))
		}
		after, err := r.gv.Contacts.Get(ctx, policy.NetworkTelegram, tgid.MakeUserID(e.bob.ID))
		if err != nil {
			t.Fatal(err)
		}
		// Two messages in (one with media), one out.
		if after.MediaIn-before.MediaIn != 1 || after.MessagesIn-before.MessagesIn != 2 || after.MessagesOut-before.MessagesOut != 1 {
			t.Errorf("registry after the history: media in +%d, messages in +%d, out +%d; want +1, +2, +1",
				after.MediaIn-before.MediaIn, after.MessagesIn-before.MessagesIn, after.MessagesOut-before.MessagesOut)
		}
		entries := waitAudit(t, r, audit.ActionHistoryBridged)
		if len(entries) != 1 || entries[0].Portal != key.ID || !strings.Contains(string(entries[0].Details), `"messages":3`) {
			t.Errorf("history_bridged entries: %+v", entries)
		}

		portal, _ = r.br.GetExistingPortalByKey(ctx, key)
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-revoke "+string(portal.MXID)); !strings.Contains(out, "Revoked") {
			t.Fatalf("gov-revoke: %q", out)
		}
		if got := r.gv.FilterBackfill(ctx, batch()); len(got) != 0 {
			t.Errorf("history of a revoked chat: %d messages bridged, want none", len(got))
		}
	})
}

// TestGroupHistoryWithDeniedSender: in a group, whoever wrote in the history
// counts as a member: a deny rule naming one of them keeps the whole history
// out; a history without them is bridged.
func TestGroupHistoryWithDeniedSender(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Rules = []policy.Rule{{Action: policy.ActionDeny, Network: policy.NetworkTelegram, TelegramUsername: "carol_press"}}
		})
		r := e.start()
		login := e.loginStaff(r)
		portal, err := r.br.GetPortalByKey(ctx, tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: 4242}, login.ID))
		if err != nil {
			t.Fatal(err)
		}
		chat := remote.Chat{IsGroup: true, Name: "Suppliers"}
		if got := r.gv.FilterBackfill(ctx, history(login, portal, chat, nil, e.bob, e.carol, nil)); len(got) != 0 {
			t.Errorf("a group history with a denied sender: %d messages bridged, want none", len(got))
		}
		if got := r.gv.FilterBackfill(ctx, history(login, portal, chat, nil, e.bob, nil, e.bob)); len(got) != 3 {
			t.Errorf("a group history without denied senders: %d messages bridged, want 3", len(got))
		}
	})
}

// TestApprovedChatHistoryThenHeldThenLive: a contact who wrote to a staff
// member before they linked Telegram, and again while the chat waited for
// approval, finds one ordered conversation once an admin approves: the
// earlier history first (with its original times), then the held
// messages, then the live ones, each once.
func TestApprovedChatHistoryThenHeldThenLive(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		e := newEnv(t, b, approvalMode)
		e.backfill = &remote.BackfillLimits{InitialMessages: 50, MaxAgeDays: 30}
		var old []tgsim.Message
		for _, text := range []string{"old one", "old two", "old three"} {
			old = append(old, e.send(e.bob, text))
		}
		r := e.start()
		e.loginStaff(r)

		e.send(e.bob, "held one")
		e.send(e.bob, "held two")
		notice := e.waitNotice(e.adminRoom(), "request #1")
		if got := e.bodiesFrom(e.bob); len(got) != 0 {
			t.Fatalf("messages on Matrix before approval: %q", got)
		}
		r.react(e, adminMXID, notice.EventID, gate.ReactionApprove)
		got := e.waitBodies(e.bob, "old one", "old two", "old three", "held one", "held two")
		for i, m := range old {
			if want := m.Date; !got[i].TS.Equal(want) {
				t.Errorf("%q has time %v on Matrix, want its Telegram time %v", got[i].Content.Body, got[i].TS, want)
			}
		}
		e.send(e.bob, "live")
		got = e.waitBodies(e.bob, "old one", "old two", "old three", "held one", "held two", "live")
		for _, m := range got[1:] {
			if m.RoomID != got[0].RoomID {
				t.Fatalf("the conversation is split over rooms %s and %s", got[0].RoomID, m.RoomID)
			}
		}
	})
}
