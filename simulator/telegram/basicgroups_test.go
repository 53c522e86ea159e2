package tgsim_test

import (
	"testing"

	"github.com/gotd/td/tg"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestBasicGroupRPC: a basic group message reaches every member with the
// member's own message ID (a PeerChat message), getChats/getFullChat show
// the group and its members, a non-member gets CHAT_ID_INVALID, the message
// stays out of the private history with its sender, and getDifference (as
// after a restart) returns it with the chat.
func TestBasicGroupRPC(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550101", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550102", FirstName: "Bob"})
	carol := createAccount(t, s, tgsim.AccountSpec{Phone: "15550103", FirstName: "Carol"})
	// Give Alice and Bob different history lengths so that IDs differ.
	if _, err := s.SendMessage(carol.ID, alice.ID, "hi alice", nil); err != nil {
		t.Fatal(err)
	}
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", About: "the team", Creator: carol.ID, Members: []int64{alice.ID, bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	ca := signedIn(t, s, alice)
	ca.startUpdates(alice.ID)
	cb := signedIn(t, s, bob)
	cb.startUpdates(bob.ID)

	ids, err := s.ChatPost(chat.ID, carol.ID, "hello team")
	if err != nil {
		t.Fatal(err)
	}
	if ids[alice.ID] == ids[bob.ID] {
		t.Fatalf("same ID %d for both members; Telegram numbers per account", ids[alice.ID])
	}
	for _, c := range []struct {
		cl *testClient
		id int64
	}{{ca, alice.ID}, {cb, bob.ID}} {
		m := c.cl.nextMessage(ctx)
		peer, ok := m.PeerID.(*tg.PeerChat)
		if !ok || peer.ChatID != chat.ID || m.Message != "hello team" || m.ID != ids[c.id] {
			t.Fatalf("member %d got %+v (want PeerChat %d, ID %d)", c.id, m, chat.ID, ids[c.id])
		}
		if from, ok := m.FromID.(*tg.PeerUser); !ok || from.UserID != carol.ID {
			t.Fatalf("from = %+v, want carol", m.FromID)
		}
	}

	api := ca.api()
	chats, err := api.MessagesGetChats(ctx, []int64{chat.ID})
	if err != nil {
		t.Fatal(err)
	}
	if list := chats.GetChats(); len(list) != 1 || list[0].(*tg.Chat).Title != "Team" || list[0].(*tg.Chat).ParticipantsCount != 3 {
		t.Fatalf("getChats = %+v", list)
	}
	full, err := api.MessagesGetFullChat(ctx, chat.ID)
	if err != nil {
		t.Fatal(err)
	}
	cf := full.FullChat.(*tg.ChatFull)
	parts := cf.Participants.(*tg.ChatParticipants).Participants
	if cf.About != "the team" || len(parts) != 3 {
		t.Fatalf("getFullChat = about %q, %d participants", cf.About, len(parts))
	}
	if _, ok := parts[0].(*tg.ChatParticipantCreator); !ok || parts[0].GetUserID() != carol.ID {
		t.Fatalf("first participant = %+v, want creator carol", parts[0])
	}

	// The private history with Carol holds only the private message.
	hist, err := api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: &tg.InputPeerUser{UserID: carol.ID, AccessHash: carol.AccessHash}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if msgs := hist.(*tg.MessagesMessages).Messages; len(msgs) != 1 || msgs[0].(*tg.Message).Message != "hi alice" {
		t.Fatalf("private history = %+v", msgs)
	}

	// getDifference from the start returns the private and the group
	// message, with the chat.
	diff, err := api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: 0, Date: 1})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := diff.(*tg.UpdatesDifference)
	if !ok || len(d.NewMessages) != 2 || len(d.Chats) != 1 || d.Chats[0].(*tg.Chat).ID != chat.ID {
		t.Fatalf("getDifference = %+v", diff)
	}
	if last := d.NewMessages[1].(*tg.Message); last.Message != "hello team" || last.ID != ids[alice.ID] {
		t.Fatalf("getDifference's group message = %+v", last)
	}

	// Not a member.
	dave := createAccount(t, s, tgsim.AccountSpec{Phone: "15550104", FirstName: "Dave"})
	cd := signedIn(t, s, dave)
	if _, err := cd.api().MessagesGetFullChat(ctx, chat.ID); err == nil {
		t.Fatal("getFullChat by a non-member succeeded")
	}
	if _, err := s.ChatPost(chat.ID, dave.ID, "let me in"); err == nil {
		t.Fatal("a non-member posted")
	}
	if got := s.ChatMessages(chat.ID, bob.ID); len(got) != 1 || got[0].ID != ids[bob.ID] {
		t.Fatalf("ChatMessages(bob) = %+v", got)
	}
}
