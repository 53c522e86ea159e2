package telegram

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// injectLevel injects, from sender, the room's power levels with user set
// to level, the current levels as the previous content (as a homeserver
// sends them).
func injectLevel(t *testing.T, mx *fakematrix.Matrix, portal *bridgev2.Portal, sender, user id.UserID, level int, evtID id.EventID) {
	t.Helper()
	cur := mx.PowerLevels(portal.MXID)
	if cur == nil {
		t.Fatal("the portal has no power levels")
	}
	prev := cur.Clone()
	next := cur.Clone()
	next.Users = maps.Clone(next.Users)
	next.SetUserLevel(user, level)
	mx.Inject(context.Background(), &event.Event{
		Type: event.StatePowerLevels, ID: evtID, RoomID: portal.MXID, Sender: sender, StateKey: ptr.Ptr(""),
		Content:  event.Content{Parsed: next},
		Unsigned: event.Unsigned{PrevContent: &event.Content{Parsed: prev}},
	})
}

func userLevel(mx *fakematrix.Matrix, roomID id.RoomID, user id.UserID) int {
	pl := mx.PowerLevels(roomID)
	if pl == nil {
		return -1
	}
	return pl.GetUserLevel(user)
}

// TestPromoteDemoteFromMatrix: in a supergroup alice created, raising a
// contact's ghost to the admin level in Matrix makes them an admin on
// Telegram, lowering them takes it back; carol (no right to add admins)
// is refused: her change is undone with a notice. Her refused rename and
// kick are undone in the room the same way.
func TestPromoteDemoteFromMatrix(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{
		Title: "Admins", Creator: gs.alice.ID, Members: []int64{gs.carol.ID, gs.bob.ID, gs.dave.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "hello admins", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello admins" }); !ok {
		t.Fatal("the group's message never reached Matrix")
	}
	portal := gs.portal(t, ch.ID)
	bobMX := mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))
	daveMX := mx.FormatGhostMXID(tgid.MakeUserID(gs.dave.ID))
	isAdmin := func(user int64) bool {
		info, _ := s.ChannelInfo(ch.ID)
		return slices.Contains(info.Admins, user)
	}

	injectLevel(t, mx, portal, testUser, bobMX, powerAdmin, "$pl1")
	if !mx.Eventually(20*time.Second, func() bool { return isAdmin(gs.bob.ID) }) {
		t.Fatalf("bob's promotion never reached Telegram: %+v", mx.StatusesOf("$pl1"))
	}
	injectLevel(t, mx, portal, testUser, bobMX, 0, "$pl2")
	if !mx.Eventually(20*time.Second, func() bool { return !isAdmin(gs.bob.ID) }) {
		t.Fatalf("bob's demotion never reached Telegram: %+v", mx.StatusesOf("$pl2"))
	}

	// Carol may not add admins.
	notices := refusalNotices(mx, portal.MXID)
	injectLevel(t, mx, portal, staffCarol, daveMX, powerAdmin, "$pl3")
	if !mx.Eventually(20*time.Second, func() bool {
		return userLevel(mx, portal.MXID, daveMX) == 0 && refusalNotices(mx, portal.MXID) > notices
	}) {
		t.Errorf("carol's refused promotion was not undone with a notice: dave at %d, statuses %+v",
			userLevel(mx, portal.MXID, daveMX), mx.StatusesOf("$pl3"))
	}
	if isAdmin(gs.dave.ID) {
		t.Error("carol's refused promotion reached Telegram")
	}

	// A staff member's Matrix account raised by alice: carol's Telegram
	// account becomes an admin.
	injectLevel(t, mx, portal, testUser, staffCarol, powerAdmin, "$pl4")
	if !mx.Eventually(20*time.Second, func() bool { return isAdmin(gs.carol.ID) }) {
		t.Errorf("carol's promotion never reached Telegram: %+v", mx.StatusesOf("$pl4"))
	}
	if err := s.PromoteChannelAdmin(ch.ID, gs.carol.ID, false); err != nil {
		t.Fatal(err)
	}

	// Carol's rename is refused and undone.
	notices = refusalNotices(mx, portal.MXID)
	mx.Inject(context.Background(), &event.Event{Type: event.StateRoomName, ID: "$n1", RoomID: portal.MXID, Sender: staffCarol,
		StateKey: ptr.Ptr(""), Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Carol's"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		c := mx.State(portal.MXID, event.StateRoomName, "")
		return c != nil && c.AsRoomName().Name == "Admins" && refusalNotices(mx, portal.MXID) > notices
	}) {
		t.Errorf("carol's refused rename was not undone with a notice: %+v", mx.StatusesOf("$n1"))
	}

	// Carol's kick of dave is refused and undone.
	notices = refusalNotices(mx, portal.MXID)
	mx.Inject(context.Background(), &event.Event{Type: event.StateMember, ID: "$k1", RoomID: portal.MXID, Sender: staffCarol,
		StateKey: ptr.Ptr(daveMX.String()), Content: event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipLeave}},
		Unsigned: event.Unsigned{PrevContent: &event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipJoin}}}})
	if !mx.Eventually(20*time.Second, func() bool {
		return mx.Members(portal.MXID)[daveMX] == event.MembershipJoin && refusalNotices(mx, portal.MXID) > notices
	}) {
		t.Errorf("carol's refused kick was not undone with a notice: dave %q, statuses %+v", mx.Members(portal.MXID)[daveMX], mx.StatusesOf("$k1"))
	}
	if info, _ := s.ChannelInfo(ch.ID); !slices.Contains(info.Members, gs.dave.ID) {
		t.Error("carol's refused kick reached Telegram")
	}
}

// TestBasicGroupPromoteFromMatrix: the creator of a basic group promotes
// and demotes a member from Matrix (messages.editChatAdmin).
func TestBasicGroupPromoteFromMatrix(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Basic", Creator: gs.alice.ID, Members: []int64{gs.bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "hello basic"); err != nil {
		t.Fatal(err)
	}
	msg, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello basic" })
	if !ok {
		t.Fatal("the group's message never reached Matrix")
	}
	portal, err := gs.tb.br.GetPortalByMXID(context.Background(), msg.RoomID)
	if err != nil || portal == nil {
		t.Fatal("no portal", err)
	}
	bobMX := mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))
	injectLevel(t, mx, portal, testUser, bobMX, powerAdmin, "$bpl1")
	if !mx.Eventually(20*time.Second, func() bool { return slices.Contains(s.ChatAdmins(chat.ID), gs.bob.ID) }) {
		t.Fatalf("bob's promotion never reached Telegram: %+v", mx.StatusesOf("$bpl1"))
	}
	injectLevel(t, mx, portal, testUser, bobMX, 0, "$bpl2")
	if !mx.Eventually(20*time.Second, func() bool { return len(s.ChatAdmins(chat.ID)) == 0 }) {
		t.Fatalf("bob's demotion never reached Telegram: %+v", mx.StatusesOf("$bpl2"))
	}
}
