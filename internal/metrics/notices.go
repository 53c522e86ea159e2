package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/passerelle/passerelle/internal/clock"
)

// Defaults of the login notices.
const (
	DefaultDisconnectNoticeAfter = 10 * time.Minute
	DefaultSummaryEvery          = 24 * time.Hour
	DefaultLoginCheckEvery       = 5 * time.Second
	// maxSummaryLines caps the logins listed by name in one summary.
	maxSummaryLines = 50
)

// LoginNotifier tells the admins when a staff login goes bad: at once for
// bad credentials or a logout the network made, after DisconnectAfter for a
// disconnection that lasts; once per episode (an episode ends when the
// login is connected again). Every SummaryEvery it sends a summary of the
// logins that are not connected (none when all are).
type LoginNotifier struct {
	Logins LoginSource
	// Notify posts a notice in the admin room.
	Notify          func(ctx context.Context, text string) error
	Clock           clock.Clock
	DisconnectAfter time.Duration
	SummaryEvery    time.Duration

	mu          sync.Mutex
	episodes    map[networkid.UserLoginID]*episode // guarded by mu; one per login bridgev2 has
	lastSummary time.Time                          // guarded by mu
}

type episode struct {
	since    time.Time // first disconnected state of the episode (zero: none yet)
	notified bool
}

func (n *LoginNotifier) now() time.Time { return clock.Or(n.Clock).Now() }

// Run checks every interval until ctx ends.
func (n *LoginNotifier) Run(ctx context.Context, interval time.Duration) {
	clk := clock.Or(n.Clock)
	for {
		n.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-clk.After(interval):
		}
	}
}

// Check looks at every login once and sends the notices that are due.
func (n *LoginNotifier) Check(ctx context.Context) {
	now := n.now()
	logins := n.Logins()
	var due []string
	var sent []*episode
	n.mu.Lock()
	if n.episodes == nil {
		n.episodes = map[networkid.UserLoginID]*episode{}
		n.lastSummary = now
	}
	seen := make(map[networkid.UserLoginID]bool, len(logins))
	for _, l := range logins {
		seen[l.ID] = true
		ep := n.episodes[l.ID]
		switch l.State {
		case LoginConnected:
			delete(n.episodes, l.ID)
			continue
		case LoginConnecting, LoginUnknown:
			continue
		}
		if ep == nil {
			ep = &episode{}
			n.episodes[l.ID] = ep
		}
		if ep.since.IsZero() {
			ep.since = now
		}
		if ep.notified {
			continue
		}
		// Bad credentials, a logout, or a state that asks the staff member
		// to act do not end by themselves: the admins hear of them at once.
		bad := l.State == LoginBadCreds || l.State == LoginLoggedOut || l.Action != ""
		if bad || now.Sub(ep.since) >= n.disconnectAfter() {
			due = append(due, badLoginText(l, now.Sub(ep.since)))
			sent = append(sent, ep)
		}
	}
	for id := range n.episodes {
		if !seen[id] {
			delete(n.episodes, id)
		}
	}
	summaryDue := now.Sub(n.lastSummary) >= n.summaryEvery()
	n.mu.Unlock()

	log := zerolog.Ctx(ctx)
	for i, text := range due {
		if err := n.Notify(ctx, text); err != nil {
			log.Err(err).Msg("Failed to tell the admins about a bad login; trying again at the next check")
			continue
		}
		n.mu.Lock()
		sent[i].notified = true
		n.mu.Unlock()
	}
	if summaryDue {
		text := summaryText(logins)
		if text != "" {
			if err := n.Notify(ctx, text); err != nil {
				log.Err(err).Msg("Failed to send the daily login summary; trying again at the next check")
				return
			}
		}
		n.mu.Lock()
		n.lastSummary = now
		n.mu.Unlock()
	}
}

func (n *LoginNotifier) disconnectAfter() time.Duration {
	if n.DisconnectAfter > 0 {
		return n.DisconnectAfter
	}
	return DefaultDisconnectNoticeAfter
}

func (n *LoginNotifier) summaryEvery() time.Duration {
	if n.SummaryEvery > 0 {
		return n.SummaryEvery
	}
	return DefaultSummaryEvery
}

func networkName(network string) string {
	switch network {
	case "whatsapp":
		return "WhatsApp"
	case "":
		return "Unknown network"
	}
	return strings.ToUpper(network[:1]) + network[1:]
}

func stateText(state string) string {
	return strings.ReplaceAll(state, "_", " ")
}

func badLoginText(l LoginState, lasted time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The %s login of %s is not connected: %s", networkName(l.Network), l.Staff, stateText(l.State))
	if (l.State == LoginTransient || l.State == LoginUnknownError) && lasted >= time.Minute {
		fmt.Fprintf(&b, " for %s", lasted.Round(time.Minute))
	}
	if l.Message != "" {
		fmt.Fprintf(&b, " (%s)", l.Message)
	}
	switch {
	case l.Action == status.UserActionRestart:
		b.WriteString(". They can take it back with the `reconnect` command (no new pairing); their chats on this network are not bridged until then.")
	case l.State == LoginBadCreds || l.State == LoginLoggedOut || l.Action == status.UserActionRelogin:
		b.WriteString(". They need to log in again; their chats on this network are not bridged until then.")
	default:
		b.WriteString(". Their chats on this network are not bridged until it reconnects.")
	}
	return b.String()
}

func summaryText(logins []LoginState) string {
	var lines []string
	for _, l := range logins {
		if l.State != LoginConnected {
			lines = append(lines, fmt.Sprintf("- %s: %s, %s", networkName(l.Network), l.Staff, stateText(l.State)))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	slices.Sort(lines)
	total, more := len(lines), ""
	if len(lines) > maxSummaryLines {
		more = fmt.Sprintf("\n- and %d more", len(lines)-maxSummaryLines)
		lines = lines[:maxSummaryLines]
	}
	return fmt.Sprintf("Daily login summary: %d staff login(s) not connected:\n%s%s", total, strings.Join(lines, "\n"), more)
}
