package remote

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/internal/clock"
)

var (
	_ QueueSetter         = (*Hooks)(nil)
	_ OutboundCheckSetter = (*Hooks)(nil)
	_ SentRecorderSetter  = (*Hooks)(nil)
)

// Hooks is embedded by every network connector: it is the connector's side
// of the one door (the queue its remote events go through, the outbound
// check it asks before sending, the recorder it tells after sending), set by
// the gateway before Init. The zero value queues straight into bridgev2 and
// lets everything go.
type Hooks struct {
	// Clock paces delivery retries; the system clock when nil.
	Clock clock.Clock

	mu       sync.RWMutex
	queue    Queue
	outbound OutboundCheck
	sent     SentRecorder
	media    MediaCheck
	presence PresenceSink
	backfill BackfillFilter

	disappearing DisappearingPolicy
}

// SetRemoteQueue implements QueueSetter.
func (h *Hooks) SetRemoteQueue(q Queue) {
	h.mu.Lock()
	h.queue = q
	h.mu.Unlock()
}

// SetOutboundCheck implements OutboundCheckSetter.
func (h *Hooks) SetOutboundCheck(check OutboundCheck) {
	h.mu.Lock()
	h.outbound = check
	h.mu.Unlock()
}

// SetSentRecorder implements SentRecorderSetter.
func (h *Hooks) SetSentRecorder(rec SentRecorder) {
	h.mu.Lock()
	h.sent = rec
	h.mu.Unlock()
}

// Queue hands evt to the queue once. A panic below it becomes a failed
// result, never a dead process.
func (h *Hooks) Queue(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) (res bridgev2.EventHandlingResult) {
	h.mu.RLock()
	q := h.queue
	h.mu.RUnlock()
	if q == nil {
		q = Direct
	}
	defer func() {
		if p := recover(); p != nil {
			login.Log.Error().Any("panic", p).Str("stack", string(debug.Stack())).
				Stringer("event_type", evt.GetType()).Msg("Panic while bridging a remote event")
			res = bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("%w: %v", ErrPanic, p))
		}
	}()
	return q(login, evt)
}

// CheckOutbound asks the outbound check; nil when there is none.
func (h *Hooks) CheckOutbound(ctx context.Context, out Outbound) error {
	h.mu.RLock()
	check := h.outbound
	h.mu.RUnlock()
	if check == nil {
		return nil
	}
	return check(ctx, out)
}

// AllowsSignal asks the outbound check about a signal (read receipt,
// typing, presence): false means drop it quietly (a debug log says why).
func (h *Hooks) AllowsSignal(ctx context.Context, out Outbound) bool {
	if err := h.CheckOutbound(ctx, out); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Str("kind", string(out.Kind)).Msg("Signal not sent to the network: refused by the outbound check")
		return false
	}
	return true
}

// Sent tells the recorder that out was sent.
func (h *Hooks) Sent(ctx context.Context, out Outbound) {
	h.mu.RLock()
	rec := h.sent
	h.mu.RUnlock()
	if rec != nil {
		rec(ctx, out)
	}
}

// ErrPanic is wrapped in the result of an event whose handling panicked.
var ErrPanic = errors.New("panic while bridging remote event")

// Delivery retries: from MinRetry doubling to MaxRetry; an error that is not
// known to be transient is tried MaxUnknownAttempts times in all.
const (
	MinRetry           = time.Second
	MaxRetry           = 30 * time.Second
	MaxUnknownAttempts = 3
)

// RetryDelay is the wait before retry n (1-based).
func RetryDelay(n int) time.Duration {
	d := MinRetry
	for i := 1; i < n && d < MaxRetry; i++ {
		d *= 2
	}
	return min(d, MaxRetry)
}

// Deliver hands evt to the queue until it is bridged or decided (ignored,
// held, refused). While bridging fails for a reason that passes (the
// homeserver or the database is unreachable, the gate is not running), it
// tries again with backoff, for as long as ctx lasts: the caller, which
// acknowledges the event to its network only when Deliver succeeds, then
// loses nothing and keeps the chat's order. A failure of unknown kind is
// tried MaxUnknownAttempts times. When ctx ends first, the result is a
// failure wrapping ctx.Err(): the caller must not acknowledge the event.
func (h *Hooks) Deliver(ctx context.Context, login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
	clk := clock.Or(h.Clock)
	unknown := 0
	for attempt := 1; ; attempt++ {
		res := h.Queue(login, evt)
		if res.Success || res.Ignored || res.Queued {
			return res
		}
		transient := Transient(res.Error)
		if !transient {
			unknown++
			if unknown >= MaxUnknownAttempts {
				return res
			}
		}
		wait := RetryDelay(attempt)
		zerolog.Ctx(ctx).Warn().Err(res.Error).Bool("transient", transient).Int("attempt", attempt).
			Dur("retry_in", wait).Stringer("event_type", evt.GetType()).Msg("Bridging a remote event failed, retrying")
		select {
		case <-ctx.Done():
			return bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("gave up bridging a remote event: %w (last error: %w)", ctx.Err(), res.Error))
		case <-clk.After(wait):
		}
	}
}
