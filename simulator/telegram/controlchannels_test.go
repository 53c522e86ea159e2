package tgsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestControlChannels drives a supergroup through the HTTP control API:
// create with members, post, rename, promote, leave, a bot; read back.
func TestControlChannels(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", Username: "alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	h := httptest.NewServer(s.ControlHandler())
	t.Cleanup(h.Close)
	post := func(path, body string, want int) []byte {
		t.Helper()
		resp, err := http.Post(h.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s: status %d (%s), want %d", path, resp.StatusCode, data, want)
		}
		return data
	}
	var ch struct {
		ID      int64   `json:"id"`
		Title   string  `json:"title"`
		Members []int64 `json:"members"`
	}
	if err := json.Unmarshal(post("/channels", `{"title":"Support","creator":"+15550002","members":["@alice"]}`, http.StatusOK), &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Title != "Support" || len(ch.Members) != 2 {
		t.Fatalf("created %+v", ch)
	}
	id := jsonInt(ch.ID)
	post("/channels/post", `{"channel":`+id+`,"from":"@alice","text":"hello group"}`, http.StatusOK)
	post("/channels/post", `{"channel":`+id+`,"from":"+19999","text":"x"}`, http.StatusNotFound)
	post("/channels/rename", `{"channel":`+id+`,"by":"@alice","title":"Mine"}`, http.StatusBadRequest) // not an admin
	post("/channels/promote", `{"channel":`+id+`,"user":"@alice","admin":true}`, http.StatusOK)
	post("/channels/rename", `{"channel":`+id+`,"by":"@alice","title":"Mine"}`, http.StatusOK)
	post("/channels/leave", `{"channel":`+id+`,"user":"@alice"}`, http.StatusOK)
	post("/channels/post", `{"channel":12345,"from":"@alice","text":"x"}`, http.StatusNotFound)
	var bot struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(post("/bots", `{"first_name":"Acme","username":"acme_bot"}`, http.StatusOK), &bot); err != nil || bot.Token == "" {
		t.Fatalf("bot %+v: %v", bot, err)
	}
	post("/bots", `{"first_name":"Acme","username":"acme"}`, http.StatusBadRequest)

	resp, err := http.Get(h.URL + "/channels/messages?id=" + id)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []struct {
		From   int64  `json:"from"`
		Text   string `json:"text"`
		Action string `json:"action"`
		Title  string `json:"title"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if len(msgs) != 3 || msgs[0].Text != "hello group" || msgs[1].Action != "title" || msgs[1].Title != "Mine" || msgs[2].Action != "leave" {
		t.Fatalf("messages %+v", msgs)
	}
	if info, _ := s.ChannelInfo(ch.ID); info.Title != "Mine" || len(info.Members) != 1 || info.Members[0] != bob.ID {
		t.Fatalf("channel %+v", info)
	}
}
