package telegram

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	"github.com/passerelle/passerelle/internal/metrics"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestSessionRevokedWhileConnected: the staff member ends the gateway's
// Telegram session from their phone (Settings → Devices) while the login is
// connected and idle. The connector finds out by itself, without waiting
// for a message to send: the login goes to BAD_CREDENTIALS
// tg-session-revoked, the staff member gets a notice saying to log in
// again, and the admin-room notice path (the login notifier reading the
// bridge's logins) announces it at once. The reconnect command cannot bring
// back a revoked session: the login stays in BAD_CREDENTIALS.
func TestSessionRevokedWhileConnected(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550061", FirstName: "Alice", LastName: "Liddell", Username: "alice"})
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ul := loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)

	revoked := time.Now()
	if n := s.RevokeAuthorizations(alice.ID); n != 1 {
		t.Fatalf("revoked %d authorizations, want 1", n)
	}
	if !tb.mx.WaitBridgeState(20*time.Second, status.StateBadCredentials, stateErrSessionRevoked) {
		t.Fatalf("no BAD_CREDENTIALS tg-session-revoked after the revocation; states: %+v", tb.mx.BridgeStates())
	}
	t.Logf("revocation detected after %v", time.Since(revoked).Round(time.Millisecond))
	st := ul.BridgeState.GetPrevUnsent()
	if !strings.Contains(st.Message, "SESSION_REVOKED") || !strings.Contains(st.Message, "log in again") {
		t.Fatalf("state message %q", st.Message)
	}
	if ul.Client.IsLoggedIn() {
		t.Fatal("the login still says it is logged in")
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool {
		return m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, "Telegram ended this session") &&
			strings.Contains(m.Content.Body, "terminated from another device") && strings.Contains(m.Content.Body, "Alice Liddell")
	}); !ok {
		t.Fatal("no notice to the staff member")
	}

	// The admin-room notice: the login notifier as the gateway runs it,
	// on this bridge's logins (read once the connection loop has ended:
	// bridgev2's last state is not safe to read while it changes).
	var notices []string
	notifier := &metrics.LoginNotifier{
		Logins: metrics.BridgeLogins(tb.br),
		Notify: func(_ context.Context, text string) error { notices = append(notices, text); return nil },
	}
	notifier.Check(context.Background())
	if len(notices) != 1 || !strings.Contains(notices[0], "Telegram login of "+string(testUser)+" is not connected: bad credentials") ||
		!strings.Contains(notices[0], "SESSION_REVOKED") || !strings.Contains(notices[0], "They need to log in again") {
		t.Fatalf("admin notices: %q", notices)
	}

	// reconnect tries the stored session again: still revoked.
	const mgmt id.RoomID = "!management:test"
	tb.mx.ResetBridgeStates()
	tb.br.Commands.Handle(context.Background(), mgmt, "$reconnect", tb.user(t), remote.ReconnectCommand, "")
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool {
		return m.RoomID == mgmt && strings.Contains(m.Content.Body, "Reconnecting your Telegram login Alice Liddell")
	}); !ok {
		t.Fatal("no answer to reconnect")
	}
	if !tb.mx.WaitBridgeState(20*time.Second, status.StateBadCredentials, "") {
		t.Fatalf("after reconnect, states %+v; want BAD_CREDENTIALS again", tb.mx.BridgeStates())
	}
	if tb.mx.HasBridgeState(status.StateConnected, "") {
		t.Fatalf("a revoked session reported CONNECTED after reconnect: %+v", tb.mx.BridgeStates())
	}
}
