package whatsapp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// bodiesInOrder are the bodies among want that Matrix got, in its order
// (a body twice shows twice).
func bodiesInOrder(mx *fakematrix.Matrix, want ...string) []string {
	var got []string
	for _, m := range mx.Messages() {
		for _, w := range want {
			if m.Content.Body == w {
				got = append(got, w)
			}
		}
	}
	return got
}

// startWithBob links Alice's account; Bob's chat has its room.
func startWithBob(t *testing.T) (*wasim.Server, dbtest.Backend, *testBridge, context.Context) {
	t.Helper()
	srv := startSim(t)
	db := dbtest.SQLite(t)
	tb := startBridge(t, srv, db.Open(t))
	loginQR(t, tb, srv)
	ctx := ctxFor(t)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "bob first"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Bob's first message", func(m fakematrix.Message) bool { return m.Content.Body == "bob first" })
	return srv, db, tb, ctx
}

// TestNewChatDoesNotHoldOtherChats: Carol writes to the staff member for
// the first time while the homeserver is slow to create rooms; Bob, whose
// chat has its room, writes meanwhile. Bob's message reaches Matrix while
// Carol's room is still being created (a login's chats side by side), and
// Carol's messages stay unacknowledged to WhatsApp until they are bridged:
// the gateway stopped at that moment gets them again from WhatsApp at its
// next start, and bridges each once, in order.
func TestNewChatDoesNotHoldOtherChats(t *testing.T) {
	srv, db, tb, ctx := startWithBob(t)

	release := tb.mx.HoldRoomCreations()
	defer release()
	var carolIDs []string
	for _, text := range []string{"carol one", "carol two"} {
		id, err := srv.SendText(ctx, carolPh, alicePh, text)
		if err != nil {
			t.Fatal(err)
		}
		carolIDs = append(carolIDs, id)
	}
	bobID, err := srv.SendText(ctx, bobPh, alicePh, "bob meanwhile")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(waitLong, func(m fakematrix.Message) bool { return m.Content.Body == "bob meanwhile" }); !ok {
		t.Fatal("a message of an existing chat waited behind a new chat's room creation")
	}
	if n := len(tb.mx.MessagesWithBody("carol one")); n != 0 {
		t.Fatalf("Carol's message reached Matrix %d times while her room could not be created", n)
	}
	// Bob's message is acknowledged once bridged; Carol's wait for their
	// room (a kill now must not lose them).
	if !tb.mx.Eventually(waitLong, func() bool { return delivered(srv, bobID) }) {
		t.Error("Bob's bridged message was never acknowledged to WhatsApp")
	}
	for _, id := range carolIDs {
		if delivered(srv, id) {
			t.Errorf("Carol's message %s was acknowledged to WhatsApp before it was bridged", id)
		}
	}

	// The gateway stops while Carol's room is still being created.
	tb.stop()
	release()
	if n := len(tb.mx.MessagesWithBody("carol one")); n != 0 {
		t.Fatalf("Carol's message reached Matrix %d times after the gateway stopped", n)
	}
	tb2 := startBridgeOn(t, srv, db.Open(t), &manualClock{}, tb.mx)
	tb2.waitMsg(t, "Carol's second message after the restart", func(m fakematrix.Message) bool { return m.Content.Body == "carol two" })
	for _, id := range carolIDs {
		if !tb2.mx.Eventually(waitLong, func() bool { return delivered(srv, id) }) {
			t.Errorf("Carol's message %s was never acknowledged once bridged", id)
		}
	}
	got := bodiesInOrder(tb2.mx, "bob meanwhile", "carol one", "carol two")
	if len(got) != 3 || got[0] != "bob meanwhile" || got[1] != "carol one" || got[2] != "carol two" {
		t.Errorf("Matrix got %q, want Bob's message, then Carol's two in order, each once", got)
	}
}

// delivered reports whether Alice's device acknowledged the message id
// (a delivery or read receipt).
func delivered(srv *wasim.Server, id string) bool {
	for _, rc := range srv.Receipts() {
		if rc.From == alicePh && rc.Type != types.ReceiptTypeRetry && rc.Type != types.ReceiptTypeServerError && slices.Contains(rc.IDs, id) {
			return true
		}
	}
	return false
}

// TestFloodQueuesWithoutHoldingOtherChats: a new contact floods the staff
// member with 300 messages while the homeserver is slow to create their
// room. whatsmeow's receive loop is not held by the queued flood: a
// message of another chat, sent after the whole flood, reaches Matrix
// while the flood still waits; then the flood arrives, all of it, each
// message once and in order, and each is acknowledged to WhatsApp.
func TestFloodQueuesWithoutHoldingOtherChats(t *testing.T) {
	const flood = 300
	srv, _, tb, ctx := startWithBob(t)

	release := tb.mx.HoldRoomCreations()
	defer release()
	var want, ids []string
	for i := range flood {
		text := fmt.Sprintf("carol %d", i)
		id, err := srv.SendText(ctx, carolPh, alicePh, text)
		if err != nil {
			t.Fatal(err)
		}
		want, ids = append(want, text), append(ids, id)
	}
	if _, err := srv.SendText(ctx, bobPh, alicePh, "bob after the flood"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(waitLong, func(m fakematrix.Message) bool { return m.Content.Body == "bob after the flood" }); !ok {
		t.Fatalf("a message sent after a queued flood of %d in another chat did not pass it", flood)
	}
	if n := len(tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "carol ") })); n != 0 {
		t.Fatalf("%d of the flood reached Matrix while its room could not be created", n)
	}
	release()
	tb.waitMsg(t, "the flood's last message", func(m fakematrix.Message) bool { return m.Content.Body == want[flood-1] })
	if got := bodiesInOrder(tb.mx, want...); !slices.Equal(got, want) {
		t.Errorf("Matrix got %d of the flood's messages (want %d, each once, in order); first differences at %d", len(got), flood, firstDiff(got, want))
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, id := range ids {
			if !delivered(srv, id) {
				return false
			}
		}
		return true
	}) {
		t.Error("part of the flood was never acknowledged to WhatsApp once bridged")
	}
}

// firstDiff is the first index where a and b differ.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestGroupChangeDoesNotHoldOtherChats: Carol makes a group with the staff
// member and renames it at once, while the homeserver is slow to create
// its room. The group's notifications wait in the group's lane, and stay
// unacknowledged to WhatsApp until handled; whatsmeow's receive loop is not
// held by them: Bob's message, sent after both, reaches Matrix meanwhile.
// Once the room can be made, it is made and renamed, and both
// notifications are acknowledged.
func TestGroupChangeDoesNotHoldOtherChats(t *testing.T) {
	srv, _, tb, ctx := startWithBob(t)
	if !tb.mx.Eventually(waitLong, func() bool { return srv.UnackedNotifications() == 0 }) {
		t.Fatalf("%d notifications unacknowledged before the test", srv.UnackedNotifications())
	}

	rooms := len(tb.mx.Rooms())
	release := tb.mx.HoldRoomCreations()
	defer release()
	gid, err := srv.CreateGroup(ctx, carolPh, "Harbour", "", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.SetGroupSubject(ctx, carolPh, gid, "Harbour works"); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendText(ctx, bobPh, alicePh, "bob after the group's changes"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(waitLong, func(m fakematrix.Message) bool { return m.Content.Body == "bob after the group's changes" }); !ok {
		t.Fatal("a message of another chat waited behind a group's changes")
	}
	if n := srv.UnackedNotifications(); n != 2 {
		t.Errorf("%d notifications unacknowledged while the group's room could not be made, want its creation and rename", n)
	}
	if n := len(tb.mx.Rooms()); n != rooms {
		t.Fatalf("%d rooms made while room creations are held", n-rooms)
	}

	release()
	var roomID id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		if all := tb.mx.Rooms(); len(all) > rooms {
			roomID = all[rooms].ID
		}
		c := tb.mx.State(roomID, event.StateRoomName, "")
		if c == nil {
			return false
		}
		n, ok := c.Parsed.(*event.RoomNameEventContent)
		return ok && n.Name == "Harbour works"
	}) {
		t.Fatalf("the group's room (%q) was never made and renamed once it could be", roomID)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return srv.UnackedNotifications() == 0 }) {
		t.Errorf("%d of the group's notifications never acknowledged once handled", srv.UnackedNotifications())
	}
}
