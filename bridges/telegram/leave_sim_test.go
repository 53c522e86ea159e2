package telegram

import (
	"context"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// newGroupSetupWith is newGroupSetup with the bridge's configuration
// changed by bridgeConfig.
func newGroupSetupWith(t *testing.T, bridgeConfig func(*bridgeconfig.BridgeConfig)) *groupSetup {
	t.Helper()
	s := newSim(t)
	gs := &groupSetup{s: s, db: dbtest.SQLite(t)}
	gs.alice = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	gs.carol = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})
	gs.bob = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	gs.dave = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave"})
	gs.tb = startBridgeOn(t, s, gs.db.Open(t), fakematrix.New(), nil, bridgeConfig)
	gs.aliceUL = loginAs(t, gs.tb, s, testUser, gs.alice)
	gs.carolUL = loginAs(t, gs.tb, s, staffCarol, gs.carol)
	gs.waitConnected(t)
	return gs
}

// leaveRoom is a staff member leaving a portal room in Matrix.
func (gs *groupSetup) leaveRoom(portal *bridgev2.Portal, who id.UserID, evtID id.EventID) {
	key := string(who)
	gs.inject(portal, &event.Event{Type: event.StateMember, ID: evtID, Sender: who, StateKey: &key,
		Content:  event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipLeave}},
		Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"membership":"join"}`)}}})
}

// carolSays sends a message from carol in a portal and waits until it is
// on Telegram: the portal handled every Matrix event before it.
func (gs *groupSetup) carolSays(t *testing.T, portal *bridgev2.Portal, text string, onTelegram func() bool) {
	t.Helper()
	gs.inject(portal, &event.Event{Type: event.EventMessage, Sender: staffCarol,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: text}}})
	if !gs.tb.mx.Eventually(20*time.Second, onTelegram) {
		t.Fatalf("carol's %q never reached Telegram", text)
	}
}

func (gs *groupSetup) inPortal(t *testing.T, login *bridgev2.UserLogin, key networkid.PortalKey) bool {
	t.Helper()
	up, err := gs.tb.br.DB.UserPortal.Get(context.Background(), login.UserLogin, key)
	if err != nil {
		t.Fatal(err)
	}
	return up != nil
}

func channelHas(s *tgsim.Server, channelID int64, text string) bool {
	for _, m := range s.ChannelMessages(channelID) {
		if m.Text == text {
			return true
		}
	}
	return false
}

// TestLeaveGroupFromMatrixOff: with bridge_matrix_leave off (the default),
// a staff member who leaves a group's portal stays in the Telegram group.
func TestLeaveGroupFromMatrixOff(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Support", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "hello", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" }); !ok {
		t.Fatal("never bridged")
	}
	portal := gs.portal(t, ch.ID)
	if !mx.Eventually(20*time.Second, func() bool { return gs.inPortal(t, gs.aliceUL, portal.PortalKey) }) {
		t.Fatal("alice's login never in the supergroup's portal")
	}
	gs.leaveRoom(portal, testUser, "$leave-off")
	gs.carolSays(t, portal, "after the leave", func() bool { return channelHas(s, ch.ID, "after the leave") })
	if info, _ := s.ChannelInfo(ch.ID); !slices.Contains(info.Members, gs.alice.ID) {
		t.Fatal("alice's account left the Telegram group although bridge_matrix_leave is off")
	}
}

// TestLeaveGroupFromMatrix: with bridge_matrix_leave on, a staff member who
// leaves a supergroup's portal, then a basic group's, leaves the Telegram
// group with their own account; their login is out of the portal, and
// Telegram's echo of the leave does not invite them back into the room.
// Another staff member in the group keeps the portal going.
func TestLeaveGroupFromMatrix(t *testing.T) {
	gs := newGroupSetupWith(t, func(c *bridgeconfig.BridgeConfig) { c.BridgeMatrixLeave = true })
	s, mx := gs.s, gs.tb.mx

	// A supergroup.
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Support", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "hello group", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello group" }); !ok {
		t.Fatal("never bridged")
	}
	portal := gs.portal(t, ch.ID)
	if !mx.Eventually(20*time.Second, func() bool { return mx.Members(portal.MXID)[testUser] == event.MembershipJoin }) {
		t.Fatal("alice never joined the supergroup's room")
	}
	// Her login delivered its copy: it is in the portal.
	if !mx.Eventually(20*time.Second, func() bool { return gs.inPortal(t, gs.aliceUL, portal.PortalKey) }) {
		t.Fatal("alice's login never in the supergroup's portal")
	}
	gs.leaveRoom(portal, testUser, "$leave-channel")
	if !mx.Eventually(20*time.Second, func() bool {
		info, _ := s.ChannelInfo(ch.ID)
		return !slices.Contains(info.Members, gs.alice.ID)
	}) {
		t.Fatal("alice's account never left the Telegram supergroup")
	}
	if info, _ := s.ChannelInfo(ch.ID); !slices.Contains(info.Members, gs.carol.ID) {
		t.Fatal("carol's account left too")
	}
	// After Telegram's echo (carol's login bridges the leave message, a
	// later message shows it was handled), alice is still out.
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "still here", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "still here" }); !ok {
		t.Fatal("the group's messages stopped reaching the room")
	}
	gs.carolSays(t, portal, "carol after alice left", func() bool { return channelHas(s, ch.ID, "carol after alice left") })
	if m := mx.Members(portal.MXID)[testUser]; m != event.MembershipLeave {
		t.Fatalf("alice's membership in the room is %q after leaving", m)
	}
	if gs.inPortal(t, gs.aliceUL, portal.PortalKey) {
		t.Fatal("alice's login is still in the supergroup's portal")
	}
	if !gs.inPortal(t, gs.carolUL, portal.PortalKey) {
		t.Fatal("carol's login is no longer in the portal")
	}

	// A basic group.
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "hello team"); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello team" }); !ok {
		t.Fatal("never bridged")
	}
	basic := gs.basicPortal(t, chat.ID)
	// Each message of a basic group is bridged by one login; the others
	// are in the portal from their copy of a message once it exists.
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "second"); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Members(basic.MXID)[testUser] == event.MembershipJoin }) {
		t.Fatal("alice never joined the basic group's room")
	}
	if !mx.Eventually(20*time.Second, func() bool { return gs.inPortal(t, gs.aliceUL, basic.PortalKey) }) {
		t.Fatal("alice's login never in the basic group's portal")
	}
	gs.settle(t) // no copy of a message in flight
	gs.leaveRoom(basic, testUser, "$leave-chat")
	if !mx.Eventually(20*time.Second, func() bool {
		info, _ := s.ChatInfo(chat.ID)
		return !slices.Contains(info.Members, gs.alice.ID)
	}) {
		t.Fatal("alice's account never left the Telegram basic group")
	}
	gs.settle(t)
	gs.carolSays(t, basic, "carol in team", func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, "carol in team"); return ok })
	if m := mx.Members(basic.MXID)[testUser]; m != event.MembershipLeave {
		t.Fatalf("alice's membership in the basic group's room is %q after leaving", m)
	}
	if gs.inPortal(t, gs.aliceUL, basic.PortalKey) {
		t.Fatal("alice's login is still in the basic group's portal")
	}
}
