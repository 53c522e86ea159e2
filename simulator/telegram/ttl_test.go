package tgsim_test

import (
	"testing"
	"time"

	"github.com/gotd/td/tg"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestHistoryTTL: a chat's timer set by a client is a service message;
// the chat's new messages carry ttl_period and are gone for both users once
// the simulator's clock passes it; messages from before the timer stay.
func TestHistoryTTL(t *testing.T) {
	s := newServer(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550101", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550102", FirstName: "Bob"})
	if _, err := s.SendMessage(bob.ID, alice.ID, "before", nil); err != nil {
		t.Fatal(err)
	}
	api := signedIn(t, s, alice).api()
	ctx := testContext(t)
	bobPeer := &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash}
	upd, err := api.MessagesSetHistoryTTL(ctx, &tg.MessagesSetHistoryTTLRequest{Peer: bobPeer, Period: 3600})
	if err != nil {
		t.Fatal(err)
	}
	svc, ok := upd.(*tg.Updates).Updates[0].(*tg.UpdateNewMessage).Message.(*tg.MessageService)
	if !ok {
		t.Fatalf("setHistoryTTL answer %+v", upd)
	}
	if a, ok := svc.Action.(*tg.MessageActionSetMessagesTTL); !ok || a.Period != 3600 {
		t.Fatalf("service action %+v", svc.Action)
	}
	if got := s.HistoryTTL(bob.ID, alice.ID); got != time.Hour {
		t.Fatalf("HistoryTTL = %s", got)
	}
	timed, err := s.SendMessage(bob.ID, alice.ID, "timed", nil)
	if err != nil {
		t.Fatal(err)
	}
	hist := func() map[string]int {
		res, err := api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: bobPeer, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, m := range res.(*tg.MessagesMessages).Messages {
			if msg, ok := m.(*tg.Message); ok {
				ttl, _ := msg.GetTTLPeriod()
				out[msg.Message] = ttl
			}
		}
		return out
	}
	if h := hist(); h["timed"] != 3600 || h["before"] != 0 {
		t.Fatalf("history before expiry: %v", h)
	}
	s.AdvanceClock(59 * time.Minute)
	if _, ok := hist()["timed"]; !ok {
		t.Fatal("the timed message went before its time")
	}
	s.AdvanceClock(2 * time.Minute)
	if h := hist(); len(h) != 1 || h["before"] != 0 {
		t.Fatalf("history after expiry: %v", h)
	}
	for _, m := range s.History(bob.ID, alice.ID) {
		if m.SenderMsgID == timed.SenderMsgID && !m.Deleted {
			t.Error("the timed message is still in the sender's history")
		}
	}
}
