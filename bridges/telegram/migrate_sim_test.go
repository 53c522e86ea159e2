package telegram

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestBasicGroupMigration: a basic group with two staff members logged in
// becomes a supergroup. Messages before the migration (from contacts and
// from both staff members in Matrix), around it (in the group just before,
// in the supergroup just after, without waiting) and after it are each in
// the same Matrix room once: the portal is re-keyed to the supergroup. The
// supergroup's creator is its admin in the room; both staff members' Matrix
// messages then reach the supergroup through their own accounts, and an
// edit of a message from before the migration is refused clearly.
func TestBasicGroupMigration(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ctx := context.Background()
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", About: "the team", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID, gs.dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "before 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.dave.ID, "before 2"); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"before 1", "before 2"} {
		if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == body }); !ok {
			t.Fatalf("%q never bridged", body)
		}
	}
	portal := gs.basicPortal(t, chat.ID)
	roomID := portal.MXID
	for _, m := range []struct {
		id   id.EventID
		from id.UserID
		body string
	}{{"$a1", testUser, "alice before"}, {"$c1", staffCarol, "carol before"}} {
		gs.inject(portal, &event.Event{Type: event.EventMessage, ID: m.id, Sender: m.from, Content: event.Content{Parsed: &event.MessageEventContent{
			MsgType: event.MsgText, Body: m.body}}})
		if !mx.Eventually(20*time.Second, func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, m.body); return ok }) {
			t.Fatalf("%q never reached the group: %s", m.body, statusText(mx.StatusesOf(m.id)))
		}
	}

	// Around the migration, without waiting in between.
	if _, err := s.ChatPost(chat.ID, gs.dave.ID, "during, in the group"); err != nil {
		t.Fatal(err)
	}
	ch, err := s.MigrateChat(chat.ID, gs.bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.dave.ID, "too late"); err == nil {
		t.Error("the old group took a message after the migration")
	}
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$a3", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "alice during"}}})
	if _, err := s.ChannelPost(ch.ID, gs.dave.ID, "during, in the supergroup", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "during, from bob", ""); err != nil {
		t.Fatal(err)
	}

	// The portal is now the supergroup's, in the same room.
	newKey := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerChannel, ID: ch.ID})}
	var moved bool
	if !mx.Eventually(20*time.Second, func() bool {
		p, err := gs.tb.br.GetExistingPortalByKey(ctx, newKey)
		moved = err == nil && p != nil && p.MXID == roomID
		return moved
	}) {
		t.Fatal("the portal was not moved to the supergroup")
	}
	if p, _ := gs.tb.br.GetExistingPortalByKey(ctx, networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerChat, ID: chat.ID})}); p != nil && p.MXID != "" {
		t.Errorf("the old group still has a portal room %s", p.MXID)
	}
	// The supergroup's creator is its admin in the room.
	bobMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))
	if !mx.Eventually(20*time.Second, func() bool {
		pl := mx.PowerLevels(roomID)
		return pl != nil && pl.GetUserLevel(bobMXID) == powerCreator
	}) {
		t.Error("the supergroup's creator is not its admin in the room")
	}

	// After: from both staff members in Matrix, and from a contact.
	for _, m := range []struct {
		id   id.EventID
		from id.UserID
		body string
	}{{"$a2", testUser, "alice after"}, {"$c2", staffCarol, "carol after"}} {
		gs.inject(portal, &event.Event{Type: event.EventMessage, ID: m.id, Sender: m.from, Content: event.Content{Parsed: &event.MessageEventContent{
			MsgType: event.MsgText, Body: m.body}}})
	}
	inChannel := func(body string) (tgsim.ChannelMessage, bool) {
		for _, m := range s.ChannelMessages(ch.ID) {
			if m.Text == body {
				return m, true
			}
		}
		return tgsim.ChannelMessage{}, false
	}
	for _, want := range []struct {
		body string
		from int64
		id   id.EventID
	}{{"alice during", gs.alice.ID, "$a3"}, {"alice after", gs.alice.ID, "$a2"}, {"carol after", gs.carol.ID, "$c2"}} {
		if !mx.Eventually(20*time.Second, func() bool { _, ok := inChannel(want.body); return ok }) {
			t.Errorf("%q never reached the supergroup: %s", want.body, statusText(mx.StatusesOf(want.id)))
			continue
		}
		if m, _ := inChannel(want.body); m.From != want.from {
			t.Errorf("%q sent by %d, want %d", want.body, m.From, want.from)
		}
	}
	last, err := s.ChannelPost(ch.ID, gs.dave.ID, "after, from dave", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "after, from dave" }); !ok {
		t.Fatal("the message after the migration never reached Matrix")
	}
	gs.waitHandled(t, ch.ID, last.Pts)
	gs.settle(t)
	for _, body := range []string{"before 1", "before 2", "during, in the group", "during, in the supergroup", "during, from bob", "after, from dave"} {
		got := mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == body })
		if len(got) != 1 {
			t.Errorf("%q bridged %d times, want once", body, len(got))
		} else if got[0].RoomID != roomID {
			t.Errorf("%q in room %s, want %s", body, got[0].RoomID, roomID)
		}
	}
	for _, body := range []string{"alice before", "carol before", "alice during", "alice after", "carol after"} {
		if n := len(mx.MessagesWithBody(body)); n != 0 {
			t.Errorf("%q came back to Matrix %d times", body, n)
		}
	}
	if n := len(mx.Rooms()); n != 1 {
		t.Errorf("%d rooms, want the one portal", n)
	}

	// An edit of alice's message from before the migration: refused
	// clearly, and the supergroup's messages untouched.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$e1", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "* alice before, edited",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "alice before, edited"},
		RelatesTo:  (&event.RelatesTo{}).SetReplace("$a1")}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.StatusesOf("$e1") {
			if st.Status == event.MessageStatusFail && strings.Contains(st.Error(), "before it became a supergroup") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("the edit of an old message was not refused: %s", statusText(mx.StatusesOf("$e1")))
	}
	for _, m := range s.ChannelMessages(ch.ID) {
		if !m.Edited.IsZero() {
			t.Errorf("supergroup message %d (%q) was edited", m.ID, m.Text)
		}
	}
}
