package telegram

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestBasicGroupSharedPortal: a basic group with two staff members (alice,
// carol, both logged in) and two contacts. Each message reaches both
// logins with a different ID (each account's own box) and is bridged once,
// into one portal without receiver, named after the group, with its topic,
// the contacts' ghosts joined and the staff invited.
func TestBasicGroupSharedPortal(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	chat, err := s.CreateChat(tgsim.ChatSpec{
		Title: "Team", About: "The team", Creator: gs.bob.ID,
		Members: []int64{gs.alice.ID, gs.carol.ID, gs.dave.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Only carol's box gets a private message: the boxes diverge. Its
	// portal is made before the group's: two portals made at once with the
	// same new ghost (dave) race inside bridgev2 (Ghost.UpdateInfoIfNecessary
	// reads the ghost without its lock), which the race detector reports.
	if _, err := s.SendMessage(gs.dave.ID, gs.carol.ID, "private to carol", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "private to carol" }); !ok {
		t.Fatal("the private message never reached Matrix")
	}
	bodies := []string{"hello team", "second message", "hello team"}
	senders := []*tgsim.Account{gs.bob, gs.dave, gs.dave}
	for i, body := range bodies {
		_, err := s.ChatPost(chat.ID, senders[i].ID, body)
		if err != nil {
			t.Fatal(err)
		}
	}
	// Both logins handled every group message: their stored pts reached
	// their boxes' (fresh accounts: one pts per stored message).
	st := gs.tb.conn.Store.UpdateState()
	want := map[int64]int{gs.alice.ID: len(bodies), gs.carol.ID: len(bodies) + 1}
	if !mx.Eventually(20*time.Second, func() bool {
		for uid, pts := range want {
			got, ok, err := st.GetState(context.Background(), uid)
			if err != nil || !ok || got.Pts < pts {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the logins never handled the group's messages")
	}
	key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerChat, ID: chat.ID})}
	portal, err := gs.tb.br.GetExistingPortalByKey(context.Background(), key)
	if err != nil || portal == nil || portal.MXID == "" {
		t.Fatalf("no shared portal for the basic group (%v)", err)
	}
	inPortal := func(body string) []fakematrix.Message {
		return mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == portal.MXID && m.Content.Body == body })
	}
	// The login that claimed a message may still be sending it when the
	// other login's pts moved past its copy.
	mx.Eventually(10*time.Second, func() bool { return len(inPortal("hello team")) >= 2 && len(inPortal("second message")) >= 1 })
	if got := inPortal("hello team"); len(got) != 2 {
		t.Errorf("\"hello team\" (posted twice, by bob then dave) bridged %d times, want 2", len(got))
	} else if got[0].Sender != mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID)) || got[1].Sender != mx.FormatGhostMXID(tgid.MakeUserID(gs.dave.ID)) {
		t.Errorf("\"hello team\" senders %s, %s", got[0].Sender, got[1].Sender)
	}
	if got := inPortal("second message"); len(got) != 1 {
		t.Errorf("\"second message\" bridged %d times, want once", len(got))
	}
	if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == portal.MXID })); n != 3 {
		t.Errorf("%d messages in the group portal, want 3", n)
	}
	if portal.Name != "Team" || portal.Topic != "The team" {
		t.Errorf("portal name %q topic %q", portal.Name, portal.Topic)
	}
	members := mx.Members(portal.MXID)
	for _, staff := range []id.UserID{testUser, staffCarol} {
		if m := members[staff]; m != event.MembershipInvite && m != event.MembershipJoin {
			t.Errorf("staff %s is %q in the portal, want invited", staff, m)
		}
	}
	for _, contact := range []*tgsim.Account{gs.bob, gs.dave} {
		if m := members[mx.FormatGhostMXID(tgid.MakeUserID(contact.ID))]; m != event.MembershipJoin {
			t.Errorf("contact %s is %q in the portal, want joined", contact.FirstName, m)
		}
	}
	desc, err := gs.carolUL.Client.(*Client).DescribeChat(context.Background(), key)
	if err != nil || !desc.IsGroup || desc.Name != "Team" {
		t.Errorf("the group is described as %+v (%v)", desc, err)
	}
}
