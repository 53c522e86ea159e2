package tgsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
