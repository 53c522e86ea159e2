package tgsim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestDifferenceSlicesAndTooLong: a client far behind gets its difference
// in slices of the set size, oldest first, each slice going on where the
// last one stopped; further behind than SetDifferenceTooLong, it is told
// differenceTooLong with the current pts.
func TestDifferenceSlicesAndTooLong(t *testing.T) {
	s := newServer(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550101", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550102", FirstName: "Bob"})
	for i := range 25 {
		if _, err := s.SendMessage(bob.ID, alice.ID, fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	s.SetDifferenceSlice(10)
	api := signedIn(t, s, alice).api()
	ctx := testContext(t)
	var got []string
	pts, current := 0, 0
	for range 10 {
		diff, err := api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: pts, Date: 1})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []tg.MessageClass
		switch d := diff.(type) {
		case *tg.UpdatesDifferenceSlice:
			if len(d.NewMessages) != 10 {
				t.Fatalf("a slice of %d messages, want 10", len(d.NewMessages))
			}
			msgs, pts = d.NewMessages, d.IntermediateState.Pts
		case *tg.UpdatesDifference:
			msgs, pts, current = d.NewMessages, -1, d.State.Pts
		default:
			t.Fatalf("getDifference = %T", diff)
		}
		for _, m := range msgs {
			got = append(got, m.(*tg.Message).Message)
		}
		if pts < 0 {
			break
		}
	}
	if len(got) != 25 || got[0] != "m0" || got[24] != "m24" {
		t.Fatalf("messages through the slices: %q", got)
	}

	s.SetDifferenceTooLong(20)
	diff, err := api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: 0, Date: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tl, ok := diff.(*tg.UpdatesDifferenceTooLong); !ok || tl.Pts != current {
		t.Fatalf("getDifference 25 behind = %+v, want differenceTooLong at pts %d", diff, current)
	}
	diff, err = api.UpdatesGetDifference(ctx, &tg.UpdatesGetDifferenceRequest{Pts: current - 5, Date: 1})
	if d, ok := diff.(*tg.UpdatesDifference); err != nil || !ok || len(d.NewMessages) != 5 {
		t.Fatalf("getDifference 5 behind = %+v, %v", diff, err)
	}
}

// TestHistoryPagesForward: getHistory with offset_id and a negative
// add_offset gives the messages after an ID, oldest page first, as a
// client catching up asks; getDialogs pages by offset_id, most recent chat
// first.
func TestHistoryPagesForward(t *testing.T) {
	s := newServer(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550101", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550102", FirstName: "Bob"})
	carol := createAccount(t, s, tgsim.AccountSpec{Phone: "15550103", FirstName: "Carol"})
	for i := range 10 {
		if _, err := s.SendMessage(bob.ID, alice.ID, fmt.Sprintf("b%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SendMessage(carol.ID, alice.ID, "c0", nil); err != nil {
		t.Fatal(err)
	}
	api := signedIn(t, s, alice).api()
	ctx := testContext(t)
	peer := &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash}
	res, err := api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: peer, OffsetID: 4, AddOffset: -3, Limit: 3, MinID: 3})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, m := range res.(*tg.MessagesMessages).Messages {
		ids = append(ids, m.GetID())
	}
	if fmt.Sprint(ids) != "[6 5 4]" {
		t.Fatalf("the page after 3 = %v, want [6 5 4]", ids)
	}
	dialogs, err := api.MessagesGetDialogs(ctx, &tg.MessagesGetDialogsRequest{OffsetPeer: &tg.InputPeerEmpty{}, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := dialogs.(*tg.MessagesDialogs).Dialogs
	if len(d) != 1 || d[0].(*tg.Dialog).Peer.(*tg.PeerUser).UserID != carol.ID {
		t.Fatalf("first dialog = %+v, want carol's", d)
	}
	dialogs, err = api.MessagesGetDialogs(ctx, &tg.MessagesGetDialogsRequest{OffsetPeer: &tg.InputPeerEmpty{}, OffsetID: d[0].(*tg.Dialog).TopMessage, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := dialogs.(*tg.MessagesDialogs).Dialogs; len(d) != 1 || d[0].(*tg.Dialog).Peer.(*tg.PeerUser).UserID != bob.ID {
		t.Fatalf("second dialog = %+v, want bob's", d)
	}
}

// TestDialogsByLastActivity: getDialogs lists private chats, basic groups,
// supergroups and channels together, the most recently active first, and
// pages after offset_peer.
func TestDialogsByLastActivity(t *testing.T) {
	s := newServer(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550101", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550102", FirstName: "Bob"})
	carol := createAccount(t, s, tgsim.AccountSpec{Phone: "15550103", FirstName: "Carol"})
	if _, err := s.SendMessage(bob.ID, alice.ID, "old", nil); err != nil {
		t.Fatal(err)
	}
	s.AdvanceClock(time.Minute)
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Group", Creator: bob.ID, Members: []int64{alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, bob.ID, "in the supergroup", ""); err != nil {
		t.Fatal(err)
	}
	s.AdvanceClock(time.Minute)
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: carol.ID, Members: []int64{alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, carol.ID, "in the basic group"); err != nil {
		t.Fatal(err)
	}
	s.AdvanceClock(time.Minute)
	if _, err := s.SendMessage(carol.ID, alice.ID, "newest", nil); err != nil {
		t.Fatal(err)
	}
	api := signedIn(t, s, alice).api()
	ctx := testContext(t)
	var order []string
	var offset tg.InputPeerClass = &tg.InputPeerEmpty{}
	for range 10 {
		res, err := api.MessagesGetDialogs(ctx, &tg.MessagesGetDialogsRequest{OffsetPeer: offset, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		d := res.(*tg.MessagesDialogs).Dialogs
		if len(d) == 0 {
			break
		}
		switch p := d[0].(*tg.Dialog).Peer.(type) {
		case *tg.PeerUser:
			order = append(order, fmt.Sprint("user ", p.UserID))
			acc := bob
			if p.UserID == carol.ID {
				acc = carol
			}
			offset = &tg.InputPeerUser{UserID: acc.ID, AccessHash: acc.AccessHash}
		case *tg.PeerChat:
			order = append(order, "chat")
			offset = &tg.InputPeerChat{ChatID: p.ChatID}
		case *tg.PeerChannel:
			order = append(order, "channel")
			offset = &tg.InputPeerChannel{ChannelID: p.ChannelID, AccessHash: ch.AccessHash}
		}
	}
	want := []string{fmt.Sprint("user ", carol.ID), "chat", "channel", fmt.Sprint("user ", bob.ID)}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("dialogs %q, want %q", order, want)
	}
}
