package wasim_test

import (
	"slices"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

func TestGroups(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550007777", "Alice")
	bob := mustAccount(t, srv, "15550008888", "Bob")
	carol := mustAccount(t, srv, "15550009999", "Carol")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)

	gid, err := srv.CreateGroup(ctx, bob.Phone, "Project", "Weekly sync", []string{alice.Phone, carol.Phone})
	if err != nil {
		t.Fatal(err)
	}
	joined := waitEvent[*events.JoinedGroup](t, c, nil)
	if joined.JID.String() != gid || joined.Name != "Project" || len(joined.Participants) != 3 {
		t.Fatalf("joined %s %q with %d participants", joined.JID, joined.Name, len(joined.Participants))
	}
	gjid := types.NewJID(joined.JID.User, types.GroupServer)
	info, err := c.GetGroupInfo(ctx, gjid)
	if err != nil {
		t.Fatal(err)
	}
	var phones []string
	for _, p := range info.Participants {
		phones = append(phones, p.JID.User)
		if p.JID.User == bob.Phone && (!p.IsSuperAdmin || p.LID != bob.LID) {
			t.Fatalf("owner participant %+v", p)
		}
	}
	if info.Topic != "Weekly sync" || !slices.Contains(phones, carol.Phone) || info.OwnerJID != bob.JID {
		t.Fatalf("group info %+v", info)
	}

	// Contact → group, with a mention of the client's account: the client
	// gets the sender key first (pkmsg), then the skmsg.
	id, err := srv.SendGroupText(ctx, bob.Phone, gid, "@alice welcome", []string{alice.Phone})
	if err != nil {
		t.Fatal(err)
	}
	evt := waitEvent[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id && m.Message.GetExtendedTextMessage() != nil })
	if evt.Info.Chat != gjid || evt.Info.Sender.User != bob.Phone || !evt.Info.IsGroup {
		t.Fatalf("group message source %+v", evt.Info.MessageSource)
	}
	if m := evt.Message.GetExtendedTextMessage(); m.GetText() != "@alice welcome" || !slices.Equal(m.GetContextInfo().GetMentionedJID(), []string{alice.JID.String()}) {
		t.Fatalf("group message %v", m)
	}
	waitDelivered(t, srv, id)
	// A second message uses the established sender key.
	id2, err := srv.SendGroupText(ctx, carol.Phone, gid, "hi all", nil)
	if err != nil {
		t.Fatal(err)
	}
	evt = waitEvent[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id2 && m.Message.GetConversation() != "" })
	if evt.Message.GetConversation() != "hi all" || evt.Info.Sender.User != carol.Phone {
		t.Fatalf("second group message %+v", evt)
	}
	waitDelivered(t, srv, id2)

	// Client → group: every member's phone can decrypt the skmsg.
	for _, text := range []string{"thanks", "see you"} {
		resp, err := c.SendMessage(ctx, gjid, &waE2E.Message{Conversation: proto.String(text)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := srv.WaitMessage(ctx, alice.Phone, gid, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != resp.ID || got.Text() != text || !got.Group {
			t.Fatalf("group message from client: %+v", got)
		}
	}

	// A group the client creates is known to the server.
	created, err := c.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: "From client", Participants: []types.JID{bob.JID}})
	if err != nil {
		t.Fatal(err)
	}
	g, ok := srv.GroupInfo(created.JID.String())
	if !ok || g.Name != "From client" || !slices.Equal(g.Members, []string{alice.Phone, bob.Phone}) {
		t.Fatalf("server group %+v", g)
	}
	if _, err = srv.SendGroupText(ctx, bob.Phone, created.JID.String(), "in your group", nil); err != nil {
		t.Fatal(err)
	}
	evt = waitEvent[*events.Message](t, c, func(m *events.Message) bool { return m.Message.GetConversation() == "in your group" })
	waitDelivered(t, srv, evt.Info.ID)
}

func TestContacts(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550010001", "Alice")
	bob := mustAccount(t, srv, "15550010002", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)

	res, err := c.IsOnWhatsApp(ctx, []string{"+" + bob.Phone, "+15559999999"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].IsIn || res[0].JID != bob.JID || res[1].IsIn {
		t.Fatalf("IsOnWhatsApp: %+v", res)
	}
	users, err := c.GetUserInfo(ctx, []types.JID{bob.JID, alice.JID})
	if err != nil {
		t.Fatal(err)
	}
	if users[bob.JID].LID != bob.LID || len(users[bob.JID].Devices) != 1 {
		t.Fatalf("bob: %+v", users[bob.JID])
	}
	if devs := users[alice.JID].Devices; len(devs) != 1 || devs[0].Device != 0 {
		t.Fatalf("alice's devices: %v (want the phone only: the asking device is left out)", devs)
	}
	if lid, _ := c.Store.LIDs.GetLIDForPN(ctx, bob.JID); lid != bob.LID {
		t.Fatalf("LID mapping for bob: %s", lid)
	}
	var _ = wasim.ErrNoAccount
}
