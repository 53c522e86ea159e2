package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/status"
)

type noticeWorld struct {
	clk     testClock
	logins  []LoginState
	notices []string
	fail    error
	n       *LoginNotifier
}

func newNoticeWorld() *noticeWorld {
	w := &noticeWorld{clk: newClock()}
	w.n = &LoginNotifier{
		Logins: func() []LoginState { return w.logins },
		Notify: func(_ context.Context, text string) error {
			if w.fail != nil {
				return w.fail
			}
			w.notices = append(w.notices, text)
			return nil
		},
		Clock:           w.clk,
		DisconnectAfter: 10 * time.Minute,
	}
	return w
}

func (w *noticeWorld) set(i int, state string) { w.logins[i].State = state }

// check runs one pass and returns the notices it sent.
func (w *noticeWorld) check() []string {
	before := len(w.notices)
	w.n.Check(context.Background())
	return w.notices[before:]
}

func TestBadLoginNoticeOncePerEpisode(t *testing.T) {
	w := newNoticeWorld()
	w.logins = []LoginState{
		{Network: "telegram", ID: "telegram.1", Staff: "@sam:example.org", State: LoginConnected},
		{Network: "whatsapp", ID: "whatsapp.2", Staff: "@kim:example.org", State: LoginConnected},
	}
	if got := w.check(); len(got) != 0 {
		t.Fatalf("notices while all are connected: %q", got)
	}
	w.set(0, LoginBadCreds)
	w.logins[0].Message = "Telegram ended this session; log in again"
	got := w.check()
	if len(got) != 1 || !strings.Contains(got[0], "Telegram login of @sam:example.org is not connected: bad credentials") ||
		!strings.Contains(got[0], "Telegram ended this session") || !strings.Contains(got[0], "log in again") {
		t.Fatalf("notice for bad credentials: %q", got)
	}
	// Same episode: the login tries to reconnect and fails again.
	w.set(0, LoginConnecting)
	w.check()
	w.set(0, LoginBadCreds)
	w.clk.Advance(time.Hour)
	if got = w.check(); len(got) != 0 {
		t.Fatalf("second notice in one episode: %q", got)
	}
	// Back, then bad again: a new episode, a new notice.
	w.set(0, LoginConnected)
	w.check()
	w.set(0, LoginLoggedOut)
	if got = w.check(); len(got) != 1 || !strings.Contains(got[0], "logged out") {
		t.Fatalf("notice of the second episode: %q", got)
	}
}

func TestDisconnectNoticeAfterItLasts(t *testing.T) {
	w := newNoticeWorld()
	w.logins = []LoginState{{Network: "whatsapp", ID: "whatsapp.2", Staff: "@kim:example.org", State: LoginTransient}}
	w.check()
	w.clk.Advance(9 * time.Minute)
	if got := w.check(); len(got) != 0 {
		t.Fatalf("notice after 9 minutes of disconnection: %q", got)
	}
	// Reconnecting for a moment ends the episode; the wait starts again.
	w.set(0, LoginConnected)
	w.check()
	w.set(0, LoginTransient)
	w.check()
	w.clk.Advance(9 * time.Minute)
	if got := w.check(); len(got) != 0 {
		t.Fatalf("notice 9 minutes into a new episode: %q", got)
	}
	w.clk.Advance(time.Minute)
	got := w.check()
	if len(got) != 1 || !strings.Contains(got[0], "WhatsApp login of @kim:example.org is not connected: transient disconnect for 10m") {
		t.Fatalf("notice after 10 minutes: %q", got)
	}
	w.clk.Advance(time.Hour)
	if got = w.check(); len(got) != 0 {
		t.Fatalf("repeated notice: %q", got)
	}
}

// A WhatsApp session another connection took over does not come back by
// itself: the admins hear of it at once (not after the disconnection
// delay), and the notice names the reconnect command, not a new log-in.
func TestReplacedSessionNoticeNamesReconnect(t *testing.T) {
	w := newNoticeWorld()
	w.logins = []LoginState{{Network: "whatsapp", ID: "whatsapp.2", Staff: "@kim:example.org", State: LoginConnected}}
	w.check()
	w.logins[0].State, w.logins[0].Action = LoginUnknownError, status.UserActionRestart
	w.logins[0].Message = "another connection took over the session (stream replaced)"
	got := w.check()
	if len(got) != 1 || !strings.Contains(got[0], "WhatsApp login of @kim:example.org is not connected: unknown error (another connection") ||
		!strings.Contains(got[0], "`reconnect` command (no new pairing)") || strings.Contains(got[0], "log in again") || strings.Contains(got[0], " for 0") {
		t.Fatalf("notice for a replaced session: %q", got)
	}
	// The same state without an action waits for the delay like any
	// disconnection.
	w.set(0, LoginConnected)
	w.check()
	w.logins[0].State, w.logins[0].Action = LoginUnknownError, ""
	if got = w.check(); len(got) != 0 {
		t.Fatalf("notice at once for an unknown error without an action: %q", got)
	}
}

func TestNoticeRetriedWhenAdminRoomFails(t *testing.T) {
	w := newNoticeWorld()
	w.logins = []LoginState{{Network: "telegram", ID: "telegram.1", Staff: "@sam:example.org", State: LoginBadCreds}}
	w.fail = errors.New("homeserver away")
	w.check()
	w.fail = nil
	if got := w.check(); len(got) != 1 {
		t.Fatalf("after a failed send, the next check sent %q, want the notice once", got)
	}
	if got := w.check(); len(got) != 0 {
		t.Fatalf("sent again: %q", got)
	}
}

func TestDailySummaryOfLoginsNotConnected(t *testing.T) {
	w := newNoticeWorld()
	w.logins = []LoginState{
		{Network: "telegram", ID: "telegram.1", Staff: "@sam:example.org", State: LoginConnected},
		{Network: "whatsapp", ID: "whatsapp.2", Staff: "@kim:example.org", State: LoginConnecting},
	}
	w.check()
	w.clk.Advance(23 * time.Hour)
	if got := w.check(); len(got) != 0 {
		t.Fatalf("summary before a day: %q", got)
	}
	w.clk.Advance(time.Hour)
	got := w.check()
	if len(got) != 1 || !strings.HasPrefix(got[0], "Daily login summary: 1 staff login(s) not connected") ||
		!strings.Contains(got[0], "WhatsApp: @kim:example.org, connecting") || strings.Contains(got[0], "@sam") {
		t.Fatalf("daily summary: %q", got)
	}
	// All connected the next day: no summary.
	w.set(1, LoginConnected)
	w.clk.Advance(24 * time.Hour)
	if got = w.check(); len(got) != 0 {
		t.Fatalf("summary with every login connected: %q", got)
	}
}

func TestNoticesForgetLoginsThatAreGone(t *testing.T) {
	w := newNoticeWorld()
	w.logins = []LoginState{{Network: "telegram", ID: "telegram.1", Staff: "@sam:example.org", State: LoginBadCreds}}
	w.check()
	w.logins = nil
	w.check()
	if n := len(w.n.episodes); n != 0 {
		t.Errorf("%d episodes kept for logins that are gone", n)
	}
}
