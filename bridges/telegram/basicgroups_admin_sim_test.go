package telegram

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestBasicGroupMembersAndSettings: from Matrix, a staff member renames a
// basic group, changes its description, removes a contact and adds them
// back, each through their own account after the gateway's check. A
// change the gateway refuses (a rename, adding a contact) and one Telegram
// refuses (removing a member without being the group's creator) leaves
// Telegram unchanged, is undone in the room and explained there. Changes
// made on Telegram (a member removed by the creator) reach the room.
func TestBasicGroupMembersAndSettings(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	var (
		mu     sync.Mutex
		refuse = map[remote.OutboundKind]bool{}
		asked  []remote.Outbound
	)
	gs.tb.conn.SetOutboundCheck(func(_ context.Context, out remote.Outbound) error {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, out)
		if refuse[out.Kind] {
			return &remote.Refusal{Reason: "not allowed by the organisation"}
		}
		return nil
	})
	setRefused := func(kind remote.OutboundKind, on bool) {
		mu.Lock()
		refuse[kind] = on
		mu.Unlock()
	}
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", About: "old about", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID, gs.dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.dave.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" }); !ok {
		t.Fatal("never bridged")
	}
	portal := gs.basicPortal(t, chat.ID)
	daveMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.dave.ID))
	info := func() tgsim.Chat { c, _ := s.ChatInfo(chat.ID); return c }
	isMember := func(uid int64) bool {
		for _, m := range info().Members {
			if m == uid {
				return true
			}
		}
		return false
	}
	roomName := func() string {
		if c := mx.State(portal.MXID, event.StateRoomName, ""); c != nil {
			return c.AsRoomName().Name
		}
		return ""
	}
	noticed := func(text string) bool {
		_, ok := mx.FindMessage(func(m fakematrix.Message) bool {
			return m.RoomID == portal.MXID && m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, text)
		})
		return ok
	}

	// Rename and description, allowed.
	gs.inject(portal, &event.Event{Type: event.StateRoomName, ID: "$n1", Sender: testUser, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Team (renamed)"}}})
	if !mx.Eventually(20*time.Second, func() bool { return info().Title == "Team (renamed)" }) {
		t.Errorf("the rename never reached Telegram: %s", statusText(mx.StatusesOf("$n1")))
	}
	gs.inject(portal, &event.Event{Type: event.StateTopic, ID: "$t1", Sender: testUser, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.TopicEventContent{Topic: "new about"}}})
	if !mx.Eventually(20*time.Second, func() bool { return info().About == "new about" }) {
		t.Errorf("the description never reached Telegram: %s", statusText(mx.StatusesOf("$t1")))
	}

	// A rename on Telegram (bob's phone) reaches the room.
	if err := s.ChatEditTitle(chat.ID, gs.bob.ID, "Team (bob's name)"); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return roomName() == "Team (bob's name)" }) {
		t.Errorf("bob's rename never reached the room: %q", roomName())
	}
	gs.inject(portal, &event.Event{Type: event.StateRoomName, ID: "$n1b", Sender: testUser, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Team (renamed)"}}})
	if !mx.Eventually(20*time.Second, func() bool { return info().Title == "Team (renamed)" }) {
		t.Errorf("the second rename never reached Telegram: %s", statusText(mx.StatusesOf("$n1b")))
	}

	// A rename the gateway refuses: Telegram keeps its title, the room its
	// name, and the room is told.
	setRefused(remote.OutboundGroupChange, true)
	gs.inject(portal, &event.Event{Type: event.StateRoomName, ID: "$n2", Sender: testUser, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Refused name"}}})
	if !mx.Eventually(20*time.Second, func() bool { return noticed("not allowed by the organisation") && roomName() == "Team (renamed)" }) {
		t.Errorf("the refused rename: room name %q, statuses %s", roomName(), statusText(mx.StatusesOf("$n2")))
	}
	if got := info().Title; got != "Team (renamed)" {
		t.Errorf("Telegram title %q after a refused rename", got)
	}
	setRefused(remote.OutboundGroupChange, false)

	// alice (not the group's creator) removes dave: Telegram refuses,
	// dave is back in the room.
	gs.inject(portal, &event.Event{Type: event.StateMember, ID: "$k1", Sender: testUser, StateKey: ptr.Ptr(daveMXID.String()),
		Content:  event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipLeave}},
		Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"membership":"join"}`)}}})
	if !mx.Eventually(20*time.Second, func() bool {
		return noticed("no right to remove members") && mx.Members(portal.MXID)[daveMXID] == event.MembershipJoin
	}) {
		t.Errorf("the refused removal: dave %q, statuses %s", mx.Members(portal.MXID)[daveMXID], statusText(mx.StatusesOf("$k1")))
	}
	if !isMember(gs.dave.ID) {
		t.Error("dave was removed on Telegram by a member without the right")
	}

	// bob (the creator) removes dave on Telegram: dave leaves the room.
	if err := s.ChatDeleteUser(chat.ID, gs.bob.ID, gs.dave.ID); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Members(portal.MXID)[daveMXID] == event.MembershipLeave }) {
		t.Errorf("dave's removal on Telegram never reached the room: %q", mx.Members(portal.MXID)[daveMXID])
	}

	// Adding dave back, refused by the gateway: not added, invite undone.
	setRefused(remote.OutboundMemberAdd, true)
	gs.inject(portal, &event.Event{Type: event.StateMember, ID: "$i1", Sender: testUser, StateKey: ptr.Ptr(daveMXID.String()),
		Content:  event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipInvite}},
		Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"membership":"leave"}`)}}})
	if !mx.Eventually(20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, out := range asked {
			if out.Kind == remote.OutboundMemberAdd && out.Remote == tgid.MakeUserID(gs.dave.ID) && out.Chat.IsGroup && out.Chat.Name == "Team (renamed)" {
				return true
			}
		}
		return false
	}) {
		t.Error("the gateway was never asked about adding dave (with the group named)")
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Members(portal.MXID)[daveMXID] == event.MembershipLeave }) {
		t.Errorf("the refused invite was not undone: dave %q", mx.Members(portal.MXID)[daveMXID])
	}
	if isMember(gs.dave.ID) {
		t.Error("dave was added on Telegram although the gateway refused")
	}
	setRefused(remote.OutboundMemberAdd, false)

	// Adding dave back, allowed: a member again, joined in the room.
	gs.inject(portal, &event.Event{Type: event.StateMember, ID: "$i2", Sender: testUser, StateKey: ptr.Ptr(daveMXID.String()),
		Content:  event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipInvite}},
		Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"membership":"leave"}`)}}})
	if !mx.Eventually(20*time.Second, func() bool { return isMember(gs.dave.ID) }) {
		t.Fatalf("the invite never reached Telegram: %s", statusText(mx.StatusesOf("$i2")))
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Members(portal.MXID)[daveMXID] == event.MembershipJoin }) {
		t.Errorf("dave, added back, is %q in the room", mx.Members(portal.MXID)[daveMXID])
	}
	// And he can write again.
	if _, err := s.ChatPost(chat.ID, gs.dave.ID, "back again"); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "back again" && m.RoomID == portal.MXID }); !ok {
		t.Error("dave's message after being added back never reached the room")
	}
}
