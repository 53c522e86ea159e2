package tgsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func TestControlHandler(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", Username: "alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	h := httptest.NewServer(s.ControlHandler())
	t.Cleanup(h.Close)

	resp, err := http.Get(h.URL + "/accounts")
	if err != nil {
		t.Fatal(err)
	}
	var accounts []struct {
		ID    int64  `json:"id"`
		Phone string `json:"phone"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&accounts); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if len(accounts) != 2 || accounts[0].ID != alice.ID || accounts[1].Phone != "+15550002" {
		t.Fatalf("accounts: %+v", accounts)
	}

	tests := []struct {
		name, path, body string
		status           int
	}{
		{"SendByPhoneAndUsername", "/send", `{"from":"+15550002","to":"@alice","text":"hello"}`, http.StatusOK},
		{"SendByID", "/send", `{"from":` + jsonInt(alice.ID) + `,"to":` + jsonInt(bob.ID) + `,"text":"hi"}`, http.StatusOK},
		{"UnknownSender", "/send", `{"from":"+19999","to":"@alice","text":"x"}`, http.StatusNotFound},
		{"EmptyText", "/send", `{"from":"+15550002","to":"@alice","text":" "}`, http.StatusBadRequest},
		{"BadQRToken", "/qr/accept", `{"account":"@alice","token":"tg://login?token=AAAA"}`, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(h.URL+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	if h := s.Messages(alice.ID, bob.ID); len(h) != 2 || h[0].Text != "hello" || h[0].From != bob.ID || h[1].Text != "hi" {
		t.Fatalf("history: %+v", h)
	}
}

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestOptionsAndKeys(t *testing.T) {
	t.Parallel()
	if _, err := tgsim.New(tgsim.Options{Addr: "0.0.0.0:0", Key: testKey()}); err == nil {
		t.Fatal("New accepted a non-loopback address")
	}
	s := newServer(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.DC() != 2 {
		t.Fatalf("Addr %s, DC %d", s.Addr(), s.DC())
	}
	k, err := tgsim.ParsePublicKeyPEM(s.PublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint() != s.PublicKey().Fingerprint() {
		t.Fatal("PEM round trip changed the key")
	}
	opts := s.ClientOptions()
	if opts.DC != 2 || len(opts.DCList.Options) != 1 || len(opts.PublicKeys) != 1 || opts.Resolver == nil {
		t.Fatalf("ClientOptions: %+v", opts)
	}
	if _, err := s.CreateAccount(tgsim.AccountSpec{Phone: "+1 555 0001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(tgsim.AccountSpec{Phone: "15550001"}); err == nil {
		t.Fatal("duplicate phone accepted")
	}
}

// TestControlMedia: a contact sends a file and a location through the
// control API, and the bytes and metadata are read back.
func TestControlMedia(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", Username: "alice"})
	createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	h := httptest.NewServer(s.ControlHandler())
	t.Cleanup(h.Close)

	data := []byte("%PDF-1.4 a small pdf\x00\x01")
	body, _ := json.Marshal(map[string]any{"from": "+15550002", "to": "@alice", "kind": "document", "data": data, "name": "a.pdf", "mime": "application/pdf", "caption": "read me"})
	resp, err := http.Post(h.URL+"/send_media", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sent struct {
		ID    int    `json:"id"`
		Text  string `json:"text"`
		Media struct {
			Kind, MIME, Name string
			Size             int64
		} `json:"media"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sent); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("send_media: %d %v", resp.StatusCode, err)
	}
	_ = resp.Body.Close()
	if sent.Text != "read me" || sent.Media.Kind != "document" || sent.Media.Name != "a.pdf" || sent.Media.Size != int64(len(data)) {
		t.Errorf("sent %+v", sent)
	}
	resp, err = http.Get(fmt.Sprintf("%s/media?a=@alice&b=%%2B15550002&id=%d", h.URL, sent.ID))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("media read back: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}

	for _, tt := range []struct {
		body   string
		status int
	}{
		{`{"from":"+15550002","to":"@alice","kind":"venue","lat":1.5,"long":2.5,"title":"Cafe"}`, http.StatusOK},
		{`{"from":"+15550002","to":"@alice","kind":"geo","lat":91,"long":0}`, http.StatusBadRequest},
		{`{"from":"+15550002","to":"@alice","kind":"hologram"}`, http.StatusBadRequest},
	} {
		resp, err := http.Post(h.URL+"/send_media", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.body, resp.StatusCode, tt.status)
		}
	}
	if resp, _ := http.Get(h.URL + "/media?a=@alice&b=%2B15550002&id=2"); resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Error("a location has no file to read back")
	} else {
		_ = resp.Body.Close()
	}
}

// TestGapAndTTLControl: the control API sets the difference's slices and
// too-long threshold, pauses and resumes an account's pushes, sets a chat's
// self-destruct timer and moves the clock (the timed message goes).
func TestGapAndTTLControl(t *testing.T) {
	s := newServer(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", Username: "alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	h := httptest.NewServer(s.ControlHandler())
	t.Cleanup(h.Close)
	post := func(path, body string, status int) {
		t.Helper()
		resp, err := http.Post(h.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("%s: status %d, want %d", path, resp.StatusCode, status)
		}
	}
	post("/difference", `{"slice":100,"too_long":5000}`, http.StatusOK)
	post("/updates/pause", `{"account":"@alice"}`, http.StatusOK)
	post("/updates/resume", `{"account":"@alice"}`, http.StatusOK)
	post("/updates/pause", `{"account":"+19999"}`, http.StatusNotFound)
	post("/ttl", `{"by":"@alice","peer":"+15550002","seconds":60}`, http.StatusOK)
	if got := s.HistoryTTL(bob.ID, alice.ID); got != time.Minute {
		t.Fatalf("timer %s, want 1m", got)
	}
	if _, err := s.SendMessage(bob.ID, alice.ID, "timed", nil); err != nil {
		t.Fatal(err)
	}
	post("/clock", `{"advance_seconds":61}`, http.StatusOK)
	for _, m := range s.History(alice.ID, bob.ID) {
		if m.Text == "timed" && !m.Deleted {
			t.Error("the timed message outlived its timer")
		}
	}
}
