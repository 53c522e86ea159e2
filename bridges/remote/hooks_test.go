package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/passerelle/passerelle/bridges/remote"
)

// stepClock fires every After at once and records the waits asked for.
type stepClock struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *stepClock) Now() time.Time { return time.Unix(0, 0) }
func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Unix(0, 0)
	return ch
}

func testLogin() *bridgev2.UserLogin {
	return &bridgev2.UserLogin{Log: zerolog.Nop()}
}

func testEvent() bridgev2.RemoteEvent {
	return &simplevent.Message[string]{EventMeta: simplevent.EventMeta{
		Type: bridgev2.RemoteEventMessage, PortalKey: networkid.PortalKey{ID: "telegram.u1", Receiver: "telegram.2"},
	}}
}

var (
	homeserverDown = mautrix.HTTPError{Message: "request error", WrappedError: errors.New("dial tcp: connection refused")}
	homeserver502  = mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusBadGateway}}
	homeserver403  = mautrix.HTTPError{Response: &http.Response{StatusCode: http.StatusForbidden}, RespError: &mautrix.RespError{ErrCode: "M_FORBIDDEN"}}
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"homeserver unreachable", fmt.Errorf("failed to send: %w", homeserverDown), true},
		{"homeserver 502", fmt.Errorf("failed to send: %w", homeserver502), true},
		{"rate limited", fmt.Errorf("x: %w", mautrix.MLimitExceeded), true},
		{"forbidden", fmt.Errorf("x: %w", homeserver403), false},
		{"database", fmt.Errorf("%w: disk I/O", bridgev2.ErrDatabaseError), true},
		{"marked", fmt.Errorf("%w: gate db", remote.ErrTransient), true},
		{"not ready", fmt.Errorf("gate is %w", remote.ErrNotReady), true},
		{"deadline", context.DeadlineExceeded, true},
		{"conversion bug", errors.New("failed to convert message"), false},
		{"panic", remote.ErrPanic, false},
	} {
		if got := remote.Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// queueOf answers each call with the next result; the last one repeats.
func queueOf(results ...bridgev2.EventHandlingResult) (remote.Queue, *int) {
	calls := new(int)
	var mu sync.Mutex
	return func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		mu.Lock()
		defer mu.Unlock()
		i := min(*calls, len(results)-1)
		*calls++
		return results[i]
	}, calls
}

func TestDeliverRetriesWhileHomeserverIsDown(t *testing.T) {
	down := bridgev2.EventHandlingResultFailed.WithError(homeserverDown)
	q, calls := queueOf(down, down, down, down, down, down, down, bridgev2.EventHandlingResultSuccess)
	clk := &stepClock{}
	h := &remote.Hooks{Clock: clk}
	h.SetRemoteQueue(q)
	res := h.Deliver(context.Background(), testLogin(), testEvent())
	if !res.Success || *calls != 8 {
		t.Fatalf("Deliver = %+v after %d calls, want success after 8", res, *calls)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if fmt.Sprint(clk.waits) != fmt.Sprint(want) {
		t.Fatalf("waits = %v, want %v", clk.waits, want)
	}
}

func TestDeliverGivesUpOnUnknownFailures(t *testing.T) {
	q, calls := queueOf(bridgev2.EventHandlingResultFailed.WithError(errors.New("failed to convert")))
	h := &remote.Hooks{Clock: &stepClock{}}
	h.SetRemoteQueue(q)
	if res := h.Deliver(context.Background(), testLogin(), testEvent()); res.Success || *calls != remote.MaxUnknownAttempts {
		t.Fatalf("Deliver = %+v after %d calls, want failure after %d", res, *calls, remote.MaxUnknownAttempts)
	}
}

func TestDeliverStopsWithContext(t *testing.T) {
	q, _ := queueOf(bridgev2.EventHandlingResultFailed.WithError(homeserverDown))
	h := &remote.Hooks{} // the real clock: the first retry waits a second
	h.SetRemoteQueue(q)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := h.Deliver(ctx, testLogin(), testEvent())
	if res.Success || !errors.Is(res.Error, context.Canceled) {
		t.Fatalf("Deliver after cancel = %+v", res)
	}
}

func TestDeliverDoesNotRetryDecisions(t *testing.T) {
	for _, r := range []bridgev2.EventHandlingResult{bridgev2.EventHandlingResultIgnored, bridgev2.EventHandlingResultSuccess} {
		q, calls := queueOf(r)
		h := &remote.Hooks{Clock: &stepClock{}}
		h.SetRemoteQueue(q)
		h.Deliver(context.Background(), testLogin(), testEvent())
		if *calls != 1 {
			t.Fatalf("%+v was queued %d times", r, *calls)
		}
	}
}

func TestQueueTurnsPanicIntoFailure(t *testing.T) {
	h := &remote.Hooks{}
	h.SetRemoteQueue(func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult { panic("boom") })
	res := h.Queue(testLogin(), testEvent())
	if res.Success || !errors.Is(res.Error, remote.ErrPanic) {
		t.Fatalf("Queue of a panicking queue = %+v", res)
	}
}

func TestHooksWithoutGateway(t *testing.T) {
	h := &remote.Hooks{}
	if err := h.CheckOutbound(context.Background(), remote.Outbound{}); err != nil {
		t.Fatalf("check without a gateway: %v", err)
	}
	h.Sent(context.Background(), remote.Outbound{}) // no recorder: nothing happens
	var got []remote.OutboundKind
	h.SetSentRecorder(func(_ context.Context, out remote.Outbound) { got = append(got, out.Kind) })
	h.Sent(context.Background(), remote.Outbound{Kind: remote.OutboundMessage})
	if len(got) != 1 || got[0] != remote.OutboundMessage {
		t.Fatalf("recorder got %v", got)
	}
}

func TestMediaCheck(t *testing.T) {
	h := &remote.Hooks{}
	m := remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaFile, MIME: "application/x-msdownload", Size: 10}
	if err := h.CheckMedia(context.Background(), m); err != nil {
		t.Fatalf("check without a gateway: %v", err)
	}
	var asked []remote.Media
	h.SetMediaCheck(func(_ context.Context, m remote.Media) error {
		asked = append(asked, m)
		if m.MIME == "application/x-msdownload" {
			return &remote.Refusal{Reason: "executables may not leave"}
		}
		return nil
	})
	var refusal *remote.Refusal
	if err := h.CheckMedia(context.Background(), m); !errors.As(err, &refusal) || refusal.Reason != "executables may not leave" {
		t.Fatalf("refused file: %v", err)
	}
	m.MIME = "image/png"
	if err := h.CheckMedia(context.Background(), m); err != nil || len(asked) != 2 {
		t.Fatalf("allowed file: %v, asked %d times", err, len(asked))
	}
}
