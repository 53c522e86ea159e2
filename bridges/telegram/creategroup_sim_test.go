package telegram

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/provisionutil"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
)

// TestCreateGroupFromMatrix: a staff member creates a Telegram group from
// Matrix (what the create-group command and the provisioning endpoint
// call) with two contacts. Every contact is asked about through the
// gateway first: a refused contact means nothing is created on Telegram.
// Allowed, a supergroup exists on Telegram with the name, the description
// and the contacts; the portal room has the name and topic, the staff
// member in it, and a contact's message in the new group reaches it.
func TestCreateGroupFromMatrix(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ctx := context.Background()

	caps := gs.tb.conn.GetCapabilities().Provisioning.GroupCreation[GroupTypeSupergroup]
	if !caps.Name.Required || !caps.Participants.Allowed {
		t.Fatalf("group creation not declared in the capabilities: %+v", gs.tb.conn.GetCapabilities().Provisioning.GroupCreation)
	}

	// Alice's account has seen both contacts (they wrote to her).
	for _, from := range []int64{gs.bob.ID, gs.dave.ID} {
		if _, err := s.SendMessage(from, gs.alice.ID, "hi alice", nil); err != nil {
			t.Fatal(err)
		}
	}
	if !mx.Eventually(20*time.Second, func() bool {
		return len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == "hi alice" })) == 2
	}) {
		t.Fatal("the contacts' messages were never bridged")
	}

	var (
		mu      sync.Mutex
		refused networkid.UserID
		asked   []remote.Outbound
		methods []string
	)
	gs.tb.conn.SetOutboundCheck(func(_ context.Context, out remote.Outbound) error {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, out)
		if out.Kind == remote.OutboundMemberAdd && out.Remote == refused {
			return &remote.Refusal{Reason: "not allowed by the organisation"}
		}
		return nil
	})
	s.SetBeforeAnswer(func(account int64, method string) {
		if account == gs.alice.ID {
			mu.Lock()
			methods = append(methods, method)
			mu.Unlock()
		}
	})
	t.Cleanup(func() { s.SetBeforeAnswer(nil) })
	called := func(method string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(methods, method)
	}

	params := func() *bridgev2.GroupCreateParams {
		return &bridgev2.GroupCreateParams{
			Type:         GroupTypeSupergroup,
			Name:         &event.RoomNameEventContent{Name: "Project"},
			Topic:        &event.TopicEventContent{Topic: "Planning"},
			Participants: []networkid.UserID{tgid.MakeUserID(gs.bob.ID), tgid.MakeUserID(gs.dave.ID)},
		}
	}

	// Dave refused by the gateway: no group on Telegram.
	mu.Lock()
	refused = tgid.MakeUserID(gs.dave.ID)
	mu.Unlock()
	if _, err := provisionutil.CreateGroup(ctx, gs.aliceUL, params()); err == nil {
		t.Fatal("a group with a refused contact was created")
	}
	if called("channels.createChannel") {
		t.Fatal("Telegram was asked to create the group although the gateway refused a contact")
	}
	mu.Lock()
	var askedDave bool
	for _, out := range asked {
		if out.Kind == remote.OutboundMemberAdd && out.Remote == refused && out.PortalKey.ID == "" && out.Chat.IsGroup && out.Identity.Phone == "+"+gs.dave.Phone {
			askedDave = true
		}
	}
	refused = ""
	mu.Unlock()
	if !askedDave {
		t.Fatal("the gateway was never asked about dave (with who he is, no portal yet)")
	}

	resp, err := provisionutil.CreateGroup(ctx, gs.aliceUL, params())
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if len(resp.FailedParticipants) != 0 {
		t.Fatalf("failed participants: %+v", resp.FailedParticipants)
	}
	peer, err := tgid.ParsePortalID(resp.ID)
	if err != nil || peer.Type != tgid.PeerChannel {
		t.Fatalf("the portal is not a Telegram group's: %q", resp.ID)
	}
	ch, ok := s.ChannelInfo(peer.ID)
	if !ok {
		t.Fatal("no group on Telegram")
	}
	if ch.Title != "Project" || ch.About != "Planning" || ch.Broadcast || ch.Creator != gs.alice.ID {
		t.Fatalf("Telegram's group = %+v", ch)
	}
	for _, id := range []int64{gs.alice.ID, gs.bob.ID, gs.dave.ID} {
		if !slices.Contains(ch.Members, id) {
			t.Fatalf("account %d is not a member of the new group: %v", id, ch.Members)
		}
	}

	if resp.MXID == "" {
		t.Fatal("no portal room")
	}
	if c := mx.State(resp.MXID, event.StateRoomName, ""); c == nil || c.AsRoomName().Name != "Project" {
		t.Fatalf("room name = %+v", c)
	}
	if c := mx.State(resp.MXID, event.StateTopic, ""); c == nil || c.AsTopic().Topic != "Planning" {
		t.Fatalf("room topic = %+v", c)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		return slices.Contains(mx.JoinedMembers(resp.MXID), testUser)
	}) {
		t.Fatal("the staff member is not in the new group's room")
	}

	// A contact writes in the new group: it reaches that room.
	if _, err := s.ChannelPost(peer.ID, gs.bob.ID, "welcome everyone", ""); err != nil {
		t.Fatal(err)
	}
	m, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "welcome everyone" })
	if !ok {
		t.Fatal("a message in the new group was never bridged")
	}
	if m.RoomID != resp.MXID {
		t.Fatalf("the message went to %s, not the new group's room %s", m.RoomID, resp.MXID)
	}
}

// TestCreateGroupInExistingRoom: the create-group command in an existing
// Matrix room (params.RoomID) makes that room the new group's portal.
func TestCreateGroupInExistingRoom(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ctx := context.Background()
	if _, err := s.SendMessage(gs.bob.ID, gs.alice.ID, "hi alice", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hi alice" }); !ok {
		t.Fatal("never bridged")
	}
	roomID, err := mx.Intent(testUser).CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "Ops"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := provisionutil.CreateGroup(ctx, gs.aliceUL, &bridgev2.GroupCreateParams{
		Type: GroupTypeSupergroup, Name: &event.RoomNameEventContent{Name: "Ops"}, RoomID: roomID,
		Participants: []networkid.UserID{tgid.MakeUserID(gs.bob.ID)},
	})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if resp.MXID != roomID {
		t.Fatalf("the portal is %s, not the room the command ran in (%s)", resp.MXID, roomID)
	}
	peer, err := tgid.ParsePortalID(resp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ch, ok := s.ChannelInfo(peer.ID); !ok || ch.Title != "Ops" || !slices.Contains(ch.Members, gs.bob.ID) {
		t.Fatalf("Telegram's group = %+v", ch)
	}
	if _, err := s.ChannelPost(peer.ID, gs.bob.ID, "ops here", ""); err != nil {
		t.Fatal(err)
	}
	m, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "ops here" })
	if !ok || m.RoomID != roomID {
		t.Fatalf("bob's message in the new group went to %s, want the room %s", m.RoomID, roomID)
	}
}
