package tgsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestRevokeSessionsFromAnotherDevice: the control API's revoke_sessions
// ends the account's sessions as "Terminate all other sessions" on the
// phone does. The connected client's connection is closed; once it has
// reconnected, its calls get 401 SESSION_REVOKED (what gotd's own check of
// its user after a reconnection then sees). The key can log in again.
func TestRevokeSessionsFromAnotherDevice(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550041", FirstName: "Alice", Username: "alice"})
	c := newTestClient(t, s)
	c.start()
	signIn := func() {
		t.Helper()
		sent, err := c.client.Auth().SendCode(ctx, "+15550041", auth.SendCodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		code, _ := s.LastCode("15550041")
		if _, err = c.client.Auth().SignIn(ctx, "+15550041", code, sent.(*tg.AuthSentCode).PhoneCodeHash); err != nil {
			t.Fatalf("signIn: %v", err)
		}
	}
	signIn()
	eventually(t, "one online session", func() bool { return s.Sessions(alice.ID) == 1 })

	h := httptest.NewServer(s.ControlHandler())
	t.Cleanup(h.Close)
	resp, err := http.Post(h.URL+"/revoke_sessions", "application/json", strings.NewReader(`{"account":"@alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Revoked int }
	err = json.NewDecoder(resp.Body).Decode(&got)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || got.Revoked != 1 {
		t.Fatalf("revoke_sessions: %s, %+v, %v", resp.Status, got, err)
	}
	if n := s.Authorizations(alice.ID); n != 0 {
		t.Fatalf("Authorizations after the revocation = %d", n)
	}
	// A call racing the closed connection fails with a network error; once
	// the client has reconnected, the answer is 401 SESSION_REVOKED.
	eventually(t, "401 SESSION_REVOKED to getUsers(self)", func() bool {
		_, err = c.api().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
		if err != nil && !tgerr.Is(err, "SESSION_REVOKED") {
			if _, rpc := tgerr.As(err); rpc {
				t.Fatalf("getUsers(self) after the revocation: want 401 SESSION_REVOKED, got %v", err)
			}
		}
		return auth.IsUnauthorized(err) && tgerr.Is(err, "SESSION_REVOKED")
	})

	// A new log-in on the same key works again.
	signIn()
	if _, err = c.api().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}}); err != nil {
		t.Fatalf("getUsers(self) after logging in again: %v", err)
	}
	if n := s.Authorizations(alice.ID); n != 1 {
		t.Fatalf("Authorizations after logging in again = %d", n)
	}

	// An unknown account: 404.
	resp, err = http.Post(h.URL+"/revoke_sessions", "application/json", strings.NewReader(`{"account":"@nobody"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("revoke_sessions for an unknown account: %s", resp.Status)
	}
}
