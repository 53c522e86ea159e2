package wasim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types/events"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// TestHistorySyncAtPairing: a chat seeded with 150 messages (a reply, a
// file, a reaction among them) reaches a newly linked device as whatsmeow
// gets it from WhatsApp: push names, then the latest 100 (initial
// bootstrap), then the 50 older ones (recent), newest first, with their
// times, senders, reply, file and reaction.
func TestHistorySyncAtPairing(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550030001", "Alice")
	bob := mustAccount(t, srv, "15550030002", "Bob")
	start := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	var entries []wasim.HistoryEntry
	for i := range 150 {
		e := wasim.HistoryEntry{From: bob.Phone, Text: fmt.Sprintf("old %d", i), Time: start.Add(time.Duration(i) * time.Minute)}
		if i%2 == 1 {
			e.From = alice.Phone
		}
		entries = append(entries, e)
	}
	entries[140].Media = &wasim.MediaSpec{Kind: wasim.KindImage, Data: []byte("not really a png"), MIME: "image/png"}
	entries[141].Reactions = map[string]string{alice.Phone: "👍"}
	ids, err := srv.SeedHistory(alice.Phone, bob.Phone, entries[:145])
	if err != nil {
		t.Fatal(err)
	}
	entries[145].ReplyTo = ids[144] // seeded by the call before
	entries[146].ReplyTo = "missing"
	if _, err = srv.SeedHistory(alice.Phone, bob.Phone, entries[145:]); err == nil {
		t.Fatal("a reply to a message that does not exist was accepted")
	}
	entries[146].ReplyTo = ""
	rest, err := srv.SeedHistory(alice.Phone, bob.Phone, entries[145:])
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, rest...)

	c := pair(t, srv, alice.Phone)
	names := nextHistory(t, c).Data
	if names.GetSyncType() != waHistorySync.HistorySync_PUSH_NAME || len(names.GetPushnames()) != 1 || names.GetPushnames()[0].GetPushname() != "Bob" {
		t.Fatalf("first sync %s with push names %v", names.GetSyncType(), names.GetPushnames())
	}
	boot := nextHistory(t, c).Data
	if boot.GetSyncType() != waHistorySync.HistorySync_INITIAL_BOOTSTRAP || len(boot.GetConversations()) != 1 {
		t.Fatalf("second sync %s with %d chats", boot.GetSyncType(), len(boot.GetConversations()))
	}
	conv := boot.GetConversations()[0]
	if conv.GetID() != bob.JID.String() || len(conv.GetMessages()) != wasim.HistoryBootstrapMessages {
		t.Fatalf("bootstrap chat %s with %d messages", conv.GetID(), len(conv.GetMessages()))
	}
	for i, hm := range conv.GetMessages() {
		n := 149 - i
		wmi := hm.GetMessage()
		if wmi.GetKey().GetID() != ids[n] || wmi.GetMessageTimestamp() != uint64(entries[n].Time.Unix()) || wmi.GetKey().GetFromMe() != (n%2 == 1) {
			t.Fatalf("bootstrap message %d: %+v, want %s", i, wmi.GetKey(), ids[n])
		}
		switch n {
		case 140:
			if wmi.GetMessage().GetImageMessage().GetDirectPath() == "" {
				t.Errorf("the file came as %v", wmi.GetMessage())
			}
		case 141:
			if len(wmi.GetReactions()) != 1 || wmi.GetReactions()[0].GetText() != "👍" || !wmi.GetReactions()[0].GetKey().GetFromMe() {
				t.Errorf("reactions %v", wmi.GetReactions())
			}
		case 145:
			ext := wmi.GetMessage().GetExtendedTextMessage()
			if ext.GetText() != entries[n].Text || ext.GetContextInfo().GetStanzaID() != ids[144] {
				t.Errorf("the reply came as %v", wmi.GetMessage())
			}
		default:
			if text := wmi.GetMessage().GetConversation(); text != entries[n].Text {
				t.Errorf("message %d: %q", n, text)
			}
		}
	}
	recent := nextHistory(t, c).Data
	if recent.GetSyncType() != waHistorySync.HistorySync_RECENT || recent.GetProgress() != 100 || len(recent.GetConversations()) != 1 ||
		len(recent.GetConversations()[0].GetMessages()) != 50 || recent.GetConversations()[0].GetMessages()[49].GetMessage().GetKey().GetID() != ids[0] {
		t.Fatalf("third sync %s progress %d", recent.GetSyncType(), recent.GetProgress())
	}
}

func nextHistory(t *testing.T, c *client) *events.HistorySync {
	t.Helper()
	select {
	case hs := <-c.histories:
		return hs
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a history sync")
		return nil
	}
}

// TestSeedHistoryControl seeds a chat through the control API: the count
// form (texts from both sides, in the past) and the explicit form; a
// reply to an unknown message is refused.
func TestSeedHistoryControl(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550030011", "Alice")
	bob := mustAccount(t, srv, "15550030012", "Bob")
	hs := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(hs.Close)
	post := func(body any) (*http.Response, []string) {
		raw, _ := json.Marshal(body)
		resp, err := http.Post(hs.URL+"/seed-history", "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ IDs []string }
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out.IDs
	}
	resp, ids := post(map[string]any{"phone": alice.Phone, "chat": bob.Phone, "count": 10})
	if resp.StatusCode != http.StatusOK || len(ids) != 10 {
		t.Fatalf("seed 10: %s, %d IDs", resp.Status, len(ids))
	}
	at := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Second)
	resp, more := post(map[string]any{"phone": alice.Phone, "chat": bob.Phone, "messages": []map[string]any{
		{"from": bob.Phone, "text": "answering", "time": at, "reply_to": ids[9], "reactions": map[string]string{alice.Phone: "❤"}},
	}})
	if resp.StatusCode != http.StatusOK || len(more) != 1 {
		t.Fatalf("seed a reply: %s", resp.Status)
	}
	if resp, _ = post(map[string]any{"phone": alice.Phone, "chat": bob.Phone, "messages": []map[string]any{{"from": bob.Phone, "text": "x", "reply_to": "nope"}}}); resp.StatusCode == http.StatusOK {
		t.Fatal("a reply to an unknown message was seeded")
	}
	conv := srv.Conversation(alice.Phone, bob.Phone)
	if len(conv) != 11 {
		t.Fatalf("the chat has %d messages, want 11", len(conv))
	}
	last := conv[10]
	if last.Text != "answering" || last.ReplyTo != ids[9] || last.Reactions[alice.Phone] != "❤" || !last.Timestamp.Equal(at) {
		t.Fatalf("the reply: %+v", last)
	}
	for i, e := range conv[:10] {
		if !e.Timestamp.Before(time.Now().Add(-time.Hour)) || (e.From == alice.Phone) != (i%2 == 1) {
			t.Fatalf("seeded message %d: %+v", i, e)
		}
	}
}
