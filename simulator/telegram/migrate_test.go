package tgsim_test

import (
	"errors"
	"testing"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestMigrateChat: only the creator turns a basic group into a supergroup;
// the supergroup has the group's title, members and the creator as admin;
// getChats shows the group deactivated with migrated_to, the supergroup's
// full info names the group; the group takes no message any more, from the
// world API or a client.
func TestMigrateChat(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550111", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550112", FirstName: "Bob"})
	carol := createAccount(t, s, tgsim.AccountSpec{Phone: "15550113", FirstName: "Carol"})
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", About: "the team", Creator: carol.ID, Members: []int64{alice.ID, bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, bob.ID, "before"); err != nil {
		t.Fatal(err)
	}
	ca := signedIn(t, s, alice)
	api := ca.api()
	if _, err := api.MessagesMigrateChat(ctx, chat.ID); !tgerr.Is(err, "CHAT_ADMIN_REQUIRED") {
		t.Fatalf("a member migrated the group: %v", err)
	}
	ch, err := s.MigrateChat(chat.ID, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Title != "Team" || len(ch.Members) != 3 || len(ch.Admins) != 1 || ch.Admins[0] != carol.ID {
		t.Errorf("supergroup %+v", ch)
	}
	chats, err := api.MessagesGetChats(ctx, []int64{chat.ID})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := chats.GetChats()[0].(*tg.Chat)
	if !ok || !got.Deactivated {
		t.Fatalf("the old group is %+v", chats.GetChats()[0])
	}
	if to, ok := got.GetMigratedTo(); !ok || to.(*tg.InputChannel).ChannelID != ch.ID {
		t.Errorf("migrated_to = %+v, want %d", to, ch.ID)
	}
	in := migratedTo(t, got)
	full, err := api.ChannelsGetFullChannel(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if cf := full.FullChat.(*tg.ChannelFull); cf.MigratedFromChatID != chat.ID || cf.MigratedFromMaxID == 0 {
		t.Errorf("migrated_from %d (max %d), want %d", cf.MigratedFromChatID, cf.MigratedFromMaxID, chat.ID)
	}
	msgs := s.ChannelMessages(ch.ID)
	if len(msgs) != 1 || msgs[0].Action != "migrate_from" {
		t.Errorf("the supergroup starts with %+v, want the migrate_from service message", msgs)
	}
	if _, err := s.ChatPost(chat.ID, bob.ID, "after"); !errors.Is(err, tgsim.ErrChatMigrated) {
		t.Errorf("post to the old group: %v", err)
	}
	_, err = api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerChat{ChatID: chat.ID}, Message: "after", RandomID: 7})
	if !tgerr.Is(err, "CHAT_ID_INVALID") {
		t.Errorf("a client's post to the old group: %v", err)
	}
}

func migratedTo(t *testing.T, c *tg.Chat) *tg.InputChannel {
	t.Helper()
	v, _ := c.GetMigratedTo()
	in, ok := v.(*tg.InputChannel)
	if !ok {
		t.Fatalf("migrated_to %T", v)
	}
	return in
}
