package remote

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

// CatchUpNoticeFrom is the smallest gap (in messages) whose catching up is
// reported to the staff member: below it, a catch-up is quick and silent.
const CatchUpNoticeFrom = 1000

// CatchUp tells a staff member, in their management room, how far the
// bridging of a big gap has gone ("catching up: 3,200 of 10,000"). A
// connector makes one when it learns the size of a gap (after downtime, a
// difference that is too long) and adds what it bridged. It reports at the
// start, at every tenth (at least every CatchUpNoticeFrom messages) and at
// the end. A nil *CatchUp (a gap too small to report) does nothing.
type CatchUp struct {
	mu      sync.Mutex
	what    string
	total   int
	done    int
	next    int
	step    int
	ended   bool
	notify  func(ctx context.Context, text string)
	started bool
}

// ManagementNotice posts a notice from the bridge bot to the login's user's
// management room; it is the usual notify of a CatchUp.
func ManagementNotice(ctx context.Context, login *bridgev2.UserLogin, text string) error {
	if login == nil || login.Bridge == nil || login.Bridge.Bot == nil || login.User == nil {
		return errors.New("no management room to post to")
	}
	room, err := login.User.GetManagementRoom(ctx)
	if err != nil {
		return fmt.Errorf("failed to get the management room: %w", err)
	}
	_, err = login.Bridge.Bot.SendMessage(ctx, room, event.EventMessage, &event.Content{
		Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
	}, nil)
	if err != nil {
		return fmt.Errorf("failed to send a notice to the management room: %w", err)
	}
	return nil
}

// NewCatchUp starts the report of a gap of total messages; what names what
// is caught up ("your Telegram account"). It returns nil when the gap is
// smaller than CatchUpNoticeFrom or there is nowhere to report.
func NewCatchUp(what string, total int, notify func(ctx context.Context, text string)) *CatchUp {
	if total < CatchUpNoticeFrom || notify == nil {
		return nil
	}
	step := max(total/10, CatchUpNoticeFrom)
	return &CatchUp{what: what, total: total, step: step, next: step, notify: notify}
}

// Add records n more messages of the gap bridged, reporting when a step is
// passed (the first call also reports the start).
func (c *CatchUp) Add(ctx context.Context, n int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	var texts []string
	if !c.started {
		c.started = true
		texts = append(texts, fmt.Sprintf("Catching up with %s: %s messages to bridge.", c.what, thousands(c.total)))
	}
	c.done = min(c.done+n, c.total)
	if c.done >= c.next && c.done < c.total {
		texts = append(texts, fmt.Sprintf("Catching up with %s: %s of %s.", c.what, thousands(c.done), thousands(c.total)))
		for c.next <= c.done {
			c.next += c.step
		}
	}
	c.mu.Unlock()
	for _, t := range texts {
		c.notify(ctx, t)
	}
}

// Done reports the end of the catch-up (once).
func (c *CatchUp) Done(ctx context.Context) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	done := c.done
	c.mu.Unlock()
	c.notify(ctx, fmt.Sprintf("Caught up with %s: %s messages bridged.", c.what, thousands(done)))
}

// thousands writes n with a comma every three digits (3,200).
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
