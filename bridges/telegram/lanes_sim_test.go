package telegram

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestNewChatDoesNotHoldOtherChats: while a new contact's portal is being
// created (the homeserver is slow to create rooms), a message of another
// chat of the same account reaches Matrix at once, and so does its
// deletion (which names a message ID, not a chat); the new chat's messages
// follow, in order, once its room exists. Meanwhile the stored update
// state stays before the new chat's first message (a restart would fetch
// it again), and catches up with Telegram once everything is bridged.
func TestNewChatDoesNotHoldOtherChats(t *testing.T) {
	cs := newConvSetup(t, nil)
	s, mx := cs.s, cs.tb.mx
	carol := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})
	client := cs.ul.Client.(*Client)
	stored := func() int {
		t.Helper()
		guard := client.state.Load()
		// A read through the connection's buffer writes its pending moves
		// first: what it returns is what a kill now would leave.
		st, _, err := guard.StateStorage.GetState(context.Background(), cs.alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Pts
	}
	if !mx.Eventually(20*time.Second, func() bool { return stored() == s.Pts(cs.alice.ID) }) {
		t.Fatalf("stored pts %d never reached Telegram's %d before the test", stored(), s.Pts(cs.alice.ID))
	}
	before := s.Pts(cs.alice.ID)

	release := cs.tb.mx.HoldRoomCreations()
	defer release()
	for _, text := range []string{"carol one", "carol two"} {
		if _, err := s.SendMessage(carol.ID, cs.alice.ID, text, nil); err != nil {
			t.Fatal(err)
		}
	}
	meanwhile, err := s.SendMessage(cs.bob.ID, cs.alice.ID, "bob meanwhile", nil)
	if err != nil {
		t.Fatal(err)
	}
	bobMsg, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "bob meanwhile" })
	if !ok {
		t.Fatal("a message of an existing chat waited behind a new chat's portal creation")
	}
	// Bob deletes it: a deletion names message IDs only, but one of a
	// bridged message goes to its chat's lane, not behind carol's.
	if err = s.DeleteMessages(cs.bob.ID, []int{meanwhile.SenderMsgID}, true); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Redacted(bobMsg.EventID) }) {
		t.Fatal("a deletion in an existing chat waited behind a new chat's portal creation")
	}
	if n := len(mx.MessagesWithBody("carol one")); n != 0 {
		t.Fatalf("carol's message reached Matrix %d times while her room could not be created", n)
	}
	if got := stored(); got > before {
		t.Errorf("stored pts %d while carol's first message (after pts %d) is not bridged: a restart now would lose it", got, before)
	}

	release()
	cs.waitMsg(t, "carol's second message", func(m fakematrix.Message) bool { return m.Content.Body == "carol two" })
	var order []string
	for _, e := range mx.Events() {
		if c := msgContent(e); c != nil && e.Type == event.EventMessage {
			switch c.Body {
			case "carol one", "carol two", "bob meanwhile":
				order = append(order, c.Body)
			}
		}
	}
	if len(order) != 3 || order[0] != "bob meanwhile" || order[1] != "carol one" || order[2] != "carol two" {
		t.Errorf("Matrix got %q, want bob's message, then carol's two in order, each once", order)
	}
	if !mx.Eventually(20*time.Second, func() bool { return stored() == s.Pts(cs.alice.ID) }) {
		t.Errorf("stored pts %d never caught up with Telegram's %d once every chat was bridged", stored(), s.Pts(cs.alice.ID))
	}
}

// TestPollVoteDoesNotWaitForOtherChats: Bob votes on his poll while a new
// contact's portal is being created: the vote (an update without a pts,
// naming its chat) reaches Matrix at once, after the poll, without waiting
// for the other chat's room.
func TestPollVoteDoesNotWaitForOtherChats(t *testing.T) {
	cs := newConvSetup(t, nil)
	s, mx := cs.s, cs.tb.mx
	sent, err := s.SendMedia(cs.bob.ID, cs.alice.ID, tgsim.MediaSpec{Kind: "poll", Question: "Lunch where?", Answers: []string{"Bistro", "Canteen"}})
	if err != nil {
		t.Fatal(err)
	}
	poll := waitEvent(t, mx, 0, "poll", func(e fakematrix.Event) bool { return e.Type == event.EventUnstablePollStart })
	carol := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})

	release := mx.HoldRoomCreations()
	defer release()
	if _, err = s.SendMessage(carol.ID, cs.alice.ID, "carol's first", nil); err != nil {
		t.Fatal(err)
	}
	// The vote, which carries no pts, could overtake carol's message in
	// gotd: it is cast once her room is being created.
	if !mx.Eventually(20*time.Second, func() bool { return mx.HeldRoomCreations() == 1 }) {
		t.Fatal("carol's room is not being created")
	}
	if err = s.VotePoll(cs.bob.ID, sent, 1); err != nil {
		t.Fatal(err)
	}
	bobGhost := mx.FormatGhostMXID(tgid.MakeUserID(cs.bob.ID))
	if !mx.Eventually(20*time.Second, func() bool {
		for _, e := range mx.Events() {
			if c := msgContent(e); e.Type == event.EventUnstablePollResponse && e.Sender == bobGhost &&
				c != nil && c.RelatesTo != nil && c.RelatesTo.EventID == poll.EventID {
				return true
			}
		}
		return false
	}) {
		t.Fatal("a vote in an existing chat waited behind a new chat's portal creation")
	}
	if n := len(mx.MessagesWithBody("carol's first")); n != 0 {
		t.Fatalf("carol's message reached Matrix %d times while her room could not be created", n)
	}
	release()
	cs.waitMsg(t, "carol's message", func(m fakematrix.Message) bool { return m.Content.Body == "carol's first" })
}
