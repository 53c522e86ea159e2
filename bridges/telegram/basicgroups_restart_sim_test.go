package telegram

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// newGroupSetupOn is newGroupSetup on a given database.
func newGroupSetupOn(t *testing.T, db dbtest.Backend) *groupSetup {
	t.Helper()
	s := newSim(t)
	gs := &groupSetup{s: s, db: db}
	gs.alice = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	gs.carol = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})
	gs.bob = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	gs.dave = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave"})
	gs.tb = startBridge(t, s, db.Open(t))
	gs.aliceUL = loginAs(t, gs.tb, s, testUser, gs.alice)
	gs.carolUL = loginAs(t, gs.tb, s, staffCarol, gs.carol)
	gs.waitConnected(t)
	return gs
}

// waitConnected waits until both logins are connected with their updates
// managers started.
func (gs *groupSetup) waitConnected(t *testing.T) {
	t.Helper()
	if !gs.tb.mx.Eventually(20*time.Second, func() bool {
		connected := map[networkid.UserLoginID]bool{}
		for _, st := range gs.tb.mx.BridgeStates() {
			if st.StateEvent == status.StateConnected {
				connected[networkid.UserLoginID(st.RemoteID)] = true
			}
		}
		return connected[gs.aliceUL.ID] && connected[gs.carolUL.ID] && gs.s.Sessions(gs.alice.ID) > 0 && gs.s.Sessions(gs.carol.ID) > 0
	}) {
		t.Fatal("the two logins never connected")
	}
}

// TestBasicGroupDedupeAcrossRestart: messages of a basic group are bridged
// by one login each; the gateway stops while carol's login is behind
// (its stored pts before the group's messages, as when it had not handled
// them yet); messages arrive while it is down and after it is back. After
// the restart carol's login catches up (updates.getDifference) through
// messages alice's login bridged before: each message is in the room once,
// and the copies recorded before the restart still map carol's IDs (her
// reply from Matrix names her own ID of the message) and bob's edit.
func TestBasicGroupDedupeAcrossRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db dbtest.Backend) {
		gs := newGroupSetupOn(t, db)
		s := gs.s
		chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID, gs.dave.ID}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		carolPts := s.Pts(gs.carol.ID)
		before := []string{"before 1", "before 2", "before 3"}
		var first map[int64]int
		for i, body := range before {
			from := gs.bob.ID
			if i == 1 {
				from = gs.dave.ID
			}
			ids, err := s.ChatPost(chat.ID, from, body)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = ids
			}
		}
		for _, body := range before {
			if _, ok := gs.tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == body }); !ok {
				t.Fatalf("%q never bridged", body)
			}
		}
		portal := gs.basicPortal(t, chat.ID)
		gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$a1", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
			MsgType: event.MsgText, Body: "alice before"}}})
		if !gs.tb.mx.Eventually(20*time.Second, func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, "alice before"); return ok }) {
			t.Fatalf("alice's message never reached the group: %s", statusText(gs.tb.mx.StatusesOf("$a1")))
		}
		gs.settle(t)

		// The gateway stops with carol's login behind.
		mx := gs.tb.mx
		gs.tb.stop()
		reopened := db.Open(t)
		if err := NewChildStore(reopened, dbutil.NoopLogger).UpdateState().SetPts(ctx, gs.carol.ID, carolPts); err != nil {
			t.Fatal(err)
		}
		during := []string{"during 1", "during 2"}
		for _, body := range during {
			if _, err := s.ChatPost(chat.ID, gs.dave.ID, body); err != nil {
				t.Fatal(err)
			}
		}
		gs.tb = startBridgeOn(t, s, reopened, mx, nil, nil)
		gs.aliceUL = gs.tb.br.GetCachedUserLoginByID(gs.aliceUL.ID)
		gs.carolUL = gs.tb.br.GetCachedUserLoginByID(gs.carolUL.ID)
		if gs.aliceUL == nil || gs.carolUL == nil {
			t.Fatal("the logins were not loaded after the restart")
		}
		gs.waitConnected(t)
		if _, err := s.ChatPost(chat.ID, gs.bob.ID, "after 1"); err != nil {
			t.Fatal(err)
		}
		if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "after 1" }); !ok {
			t.Fatal("the message after the restart never reached Matrix")
		}
		gs.settle(t)
		for _, body := range append(append(before, during...), "after 1") {
			if n := len(mx.MessagesWithBody(body)); n != 1 {
				t.Errorf("%q bridged %d times, want once", body, n)
			}
		}
		if n := len(mx.MessagesWithBody("alice before")); n != 0 {
			t.Errorf("alice's Matrix message came back %d times", n)
		}

		// bob edits the first message: one edit, on the right event.
		firstMX, _ := mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "before 1" })
		if err := s.ChatEdit(chat.ID, gs.bob.ID, first[gs.bob.ID], "before 1, edited"); err != nil {
			t.Fatal(err)
		}
		if !mx.Eventually(20*time.Second, func() bool {
			return len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == firstMX.EventID })) > 0
		}) {
			t.Error("bob's edit after the restart never reached Matrix")
		}
		// carol answers the second message from Matrix, through her own
		// ID of it.
		secondMX, _ := mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "before 2" })
		gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$c1", Sender: staffCarol, Content: event.Content{Parsed: &event.MessageEventContent{
			MsgType: event.MsgText, Body: "carol answers", RelatesTo: (&event.RelatesTo{}).SetReplyTo(secondMX.EventID)}}})
		if !mx.Eventually(20*time.Second, func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, "carol answers"); return ok }) {
			t.Fatalf("carol's answer never reached the group: %s", statusText(mx.StatusesOf("$c1")))
		}
		second, _ := chatMessage(s, chat.ID, gs.carol.ID, "before 2")
		if m, _ := chatMessage(s, chat.ID, gs.carol.ID, "carol answers"); m.ReplyToID != second.ID {
			t.Errorf("carol's answer replies to %d (her IDs), want %d", m.ReplyToID, second.ID)
		}
		last, _ := s.ChatPost(chat.ID, gs.dave.ID, "last")
		_ = last
		if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "last" }); !ok {
			t.Fatal("last never bridged")
		}
		gs.settle(t)
		if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == firstMX.EventID })); n != 1 {
			t.Errorf("bob's edit bridged %d times, want once", n)
		}
	})
}
