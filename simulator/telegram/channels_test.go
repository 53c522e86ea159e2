package tgsim_test

import (
	"testing"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// signedIn is a gotd client logged in as acc (no updates manager).
func signedIn(t *testing.T, s *tgsim.Server, acc *tgsim.Account) *testClient {
	t.Helper()
	ctx := testContext(t)
	c := newTestClient(t, s)
	c.start()
	sent, err := c.client.Auth().SendCode(ctx, "+"+acc.Phone, auth.SendCodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := s.LastCode(acc.Phone)
	if _, err := c.client.Auth().SignIn(ctx, "+"+acc.Phone, code, sent.(*tg.AuthSentCode).PhoneCodeHash); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChannelsRPC: supergroups and channels through real gotd calls:
// getChannels/getFullChannel, paged getParticipants, posting rights,
// editTitle rights, getChannelDifference in pages and too long, leave.
func TestChannelsRPC(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	var members []int64
	for i := range 7 {
		m := createAccount(t, s, tgsim.AccountSpec{Phone: "1555100" + string(rune('0'+i)), FirstName: "M"})
		members = append(members, m.ID)
	}
	group, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Group", About: "about", Creator: bob.ID, Members: append(members, alice.ID)})
	if err != nil {
		t.Fatal(err)
	}
	news, err := s.CreateChannel(tgsim.ChannelSpec{Title: "News", Broadcast: true, Creator: bob.ID, Members: []int64{alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	c := signedIn(t, s, alice)
	api := c.api()
	in := &tg.InputChannel{ChannelID: group.ID, AccessHash: group.AccessHash}

	chats, err := api.ChannelsGetChannels(ctx, []tg.InputChannelClass{in, &tg.InputChannel{ChannelID: group.ID, AccessHash: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if list := chats.GetChats(); len(list) != 1 || list[0].(*tg.Channel).Title != "Group" || !list[0].(*tg.Channel).Megagroup {
		t.Fatalf("getChannels (one good access hash, one bad) = %+v", list)
	}
	full, err := api.ChannelsGetFullChannel(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if cf := full.FullChat.(*tg.ChannelFull); cf.About != "about" || cf.ParticipantsCount != 9 {
		t.Fatalf("getFullChannel = about %q, %d members", cf.About, cf.ParticipantsCount)
	}

	// Paged participants: 9 members, pages of 4.
	seen := map[int64]bool{}
	for offset := 0; ; {
		res, err := api.ChannelsGetParticipants(ctx, &tg.ChannelsGetParticipantsRequest{Channel: in, Filter: &tg.ChannelParticipantsRecent{}, Offset: offset, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		page := res.(*tg.ChannelsChannelParticipants)
		if page.Count != 9 || len(page.Participants) > 4 {
			t.Fatalf("page at %d: count %d, %d participants", offset, page.Count, len(page.Participants))
		}
		for _, p := range page.Participants {
			switch v := p.(type) {
			case *tg.ChannelParticipantCreator:
				if v.UserID != bob.ID {
					t.Errorf("creator %d", v.UserID)
				}
				seen[v.UserID] = true
			case *tg.ChannelParticipant:
				seen[v.UserID] = true
			}
		}
		offset += len(page.Participants)
		if len(page.Participants) == 0 {
			break
		}
	}
	if len(seen) != 9 {
		t.Fatalf("participants seen over the pages: %d, want 9", len(seen))
	}

	// Posting: the supergroup takes alice's message, the broadcast channel
	// refuses it (not an admin).
	if _, err := api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: &tg.InputPeerChannel{ChannelID: group.ID, AccessHash: group.AccessHash}, Message: "hi all", RandomID: 1}); err != nil {
		t.Fatal(err)
	}
	if msgs := s.ChannelMessages(group.ID); len(msgs) != 1 || msgs[0].From != alice.ID || msgs[0].Text != "hi all" {
		t.Fatalf("group messages %+v", msgs)
	}
	_, err = api.MessagesSendMessage(ctx, &tg.MessagesSendMessageRequest{
		Peer: &tg.InputPeerChannel{ChannelID: news.ID, AccessHash: news.AccessHash}, Message: "not allowed", RandomID: 2})
	if !tgerr.Is(err, "CHAT_WRITE_FORBIDDEN") {
		t.Fatalf("a non-admin's post in a broadcast channel: %v", err)
	}
	// Renaming needs admin rights.
	if _, err := api.ChannelsEditTitle(ctx, &tg.ChannelsEditTitleRequest{Channel: in, Title: "Mine"}); !tgerr.Is(err, "CHAT_ADMIN_REQUIRED") {
		t.Fatalf("editTitle by a member: %v", err)
	}
	if err := s.PromoteChannelAdmin(group.ID, alice.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ChannelsEditTitle(ctx, &tg.ChannelsEditTitleRequest{Channel: in, Title: "Mine"}); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.ChannelInfo(group.ID); info.Title != "Mine" {
		t.Fatalf("title %q", info.Title)
	}

	// getChannelDifference: 30 posts fetched in pages of 10, in order; from
	// too far back (SetChannelTooLong), channelDifferenceTooLong.
	start, _ := s.ChannelInfo(group.ID)
	for range 30 {
		if _, err := s.ChannelPost(group.ID, bob.ID, "post", ""); err != nil {
			t.Fatal(err)
		}
	}
	pts, got, lastID := start.Pts, 0, 0
	for {
		diff, err := api.UpdatesGetChannelDifference(ctx, &tg.UpdatesGetChannelDifferenceRequest{Channel: in, Filter: &tg.ChannelMessagesFilterEmpty{}, Pts: pts, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		d, ok := diff.(*tg.UpdatesChannelDifference)
		if !ok {
			if _, empty := diff.(*tg.UpdatesChannelDifferenceEmpty); empty {
				break
			}
			t.Fatalf("difference %T", diff)
		}
		for _, m := range d.NewMessages {
			id := m.(*tg.Message).ID
			if lastID != 0 && id != lastID+1 {
				t.Fatalf("message %d after %d: not in order", id, lastID)
			}
			lastID = id
			got++
		}
		if len(d.NewMessages) > 10 {
			t.Fatalf("page of %d", len(d.NewMessages))
		}
		pts = d.Pts
		if d.Final {
			break
		}
	}
	if got != 30 {
		t.Fatalf("difference pages carried %d posts, want 30", got)
	}
	s.SetChannelTooLong(5)
	diff, err := api.UpdatesGetChannelDifference(ctx, &tg.UpdatesGetChannelDifferenceRequest{Channel: in, Filter: &tg.ChannelMessagesFilterEmpty{}, Pts: start.Pts, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if tl, ok := diff.(*tg.UpdatesChannelDifferenceTooLong); !ok || len(tl.Messages) != 10 {
		t.Fatalf("difference from 30 pts back with too-long 5: %T", diff)
	}

	// Leaving: the channel is private to alice afterwards.
	if _, err := api.ChannelsLeaveChannel(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ChannelsGetParticipants(ctx, &tg.ChannelsGetParticipantsRequest{Channel: in, Filter: &tg.ChannelParticipantsRecent{}, Limit: 10}); !tgerr.Is(err, "CHANNEL_PRIVATE") {
		t.Fatalf("getParticipants after leaving: %v", err)
	}
	if info, _ := s.ChannelInfo(group.ID); len(info.Members) != 8 {
		t.Fatalf("%d members after alice left", len(info.Members))
	}
}
