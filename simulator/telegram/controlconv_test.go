package tgsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestControlConversation drives a contact through the control API: a
// reply with a quote, an edit, reactions (a refused one, a custom emoji),
// a read, typing, presence and a deletion, and reads back what each side
// saw.
func TestControlConversation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", Username: "alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob", Username: "bob", Premium: true})
	h := httptest.NewServer(s.ControlHandler())
	t.Cleanup(h.Close)
	post := func(path, body string, want int) {
		t.Helper()
		resp, err := http.Post(h.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s %s: status %d, want %d", path, body, resp.StatusCode, want)
		}
	}
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(h.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.SendMessage(alice.ID, bob.ID, "question", nil)
	if err != nil {
		t.Fatal(err)
	}
	post("/reply", `{"from":"@bob","to":"@alice","text":"answer","reply_to":`+jsonInt(int64(first.ID))+`,"quote":"question"}`, http.StatusOK)
	post("/edit", `{"from":"@bob","to":"@alice","id":`+jsonInt(int64(first.ID+1))+`,"text":"better answer"}`, http.StatusOK)
	post("/edit", `{"from":"@bob","to":"@alice","id":`+jsonInt(int64(first.ID))+`,"text":"not mine"}`, http.StatusBadRequest)
	post("/custom_emoji", `{"id":42,"fallback":"🎉"}`, http.StatusOK)
	post("/react", `{"by":"@bob","peer":"@alice","id":`+jsonInt(int64(first.ID))+`,"emoji":["👍"],"custom_emoji":[42]}`, http.StatusOK)
	post("/react", `{"by":"@bob","peer":"@alice","id":`+jsonInt(int64(first.ID))+`,"emoji":["not an emoji"]}`, http.StatusBadRequest)
	post("/react", `{"by":"@alice","peer":"@bob","id":`+jsonInt(int64(first.SenderMsgID))+`,"emoji":["👍","❤"]}`, http.StatusBadRequest) // one without Premium
	post("/read", `{"reader":"@bob","peer":"@alice","max_id":0}`, http.StatusOK)
	post("/typing", `{"from":"@bob","to":"@alice"}`, http.StatusOK)
	post("/status", `{"account":"@bob","online":false}`, http.StatusOK)

	var msgs []struct {
		ID        int    `json:"id"`
		Text      string `json:"text"`
		ReplyTo   int    `json:"reply_to"`
		Quote     string `json:"quote"`
		Edited    string `json:"edited"`
		Deleted   bool   `json:"deleted"`
		Reactions []struct {
			User          int64  `json:"user"`
			Emoji         string `json:"emoji"`
			CustomEmojiID int64  `json:"custom_emoji_id"`
		} `json:"reactions"`
	}
	get("/messages?a=@alice&b=@bob", &msgs)
	if len(msgs) != 2 || msgs[1].Text != "better answer" || msgs[1].Edited == "" || msgs[1].ReplyTo != first.SenderMsgID || msgs[1].Quote != "question" {
		t.Fatalf("alice sees %+v", msgs)
	}
	if r := msgs[0].Reactions; len(r) != 2 || r[0].Emoji != "👍" || r[1].Emoji != "🎉" || r[1].CustomEmojiID != 42 || r[0].User != bob.ID {
		t.Errorf("reactions %+v", r)
	}
	var rs struct {
		ReadInbox  int `json:"read_inbox"`
		ReadOutbox int `json:"read_outbox"`
	}
	get("/read_state?a=@alice&b=@bob", &rs)
	if rs.ReadOutbox != first.SenderMsgID || rs.ReadInbox != 0 {
		t.Errorf("alice's read state %+v", rs)
	}
	var typing []struct {
		From int64 `json:"from"`
	}
	get("/typing?a=@alice", &typing)
	if len(typing) != 1 || typing[0].From != bob.ID {
		t.Errorf("typing seen %+v", typing)
	}
	var presence struct {
		Online   bool    `json:"online"`
		LastSeen *string `json:"last_seen"`
	}
	get("/status?a=@bob", &presence)
	if presence.Online || presence.LastSeen == nil {
		t.Errorf("presence %+v", presence)
	}

	// A deletion with revoke goes for both sides; the history still shows
	// it with deleted=1.
	post("/delete", `{"by":"@bob","ids":[`+jsonInt(int64(first.ID+1))+`]}`, http.StatusOK)
	get("/messages?a=@alice&b=@bob", &msgs)
	if len(msgs) != 1 {
		t.Errorf("after deletion alice sees %d messages", len(msgs))
	}
	get("/messages?a=@alice&b=@bob&deleted=1", &msgs)
	if len(msgs) != 2 || !msgs[1].Deleted {
		t.Errorf("history with deletions: %+v", msgs)
	}

	// Past the edit window, an edit is refused as Telegram does.
	s.SetEditWindow(1)
	post("/edit", `{"from":"@alice","to":"@bob","id":`+jsonInt(int64(first.SenderMsgID))+`,"text":"late"}`, http.StatusConflict)
}
