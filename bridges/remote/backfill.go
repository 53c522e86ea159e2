package remote

import (
	"context"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// HistoryMessage is one message of a chat's history, as a connector's
// FetchMessages converted it, with what the gate needs to judge it.
type HistoryMessage struct {
	Message *bridgev2.BackfillMessage
	// Sender is who wrote it (empty when FromMe).
	Sender Identity
	FromMe bool
	// HasMedia tells a message with a file from one without.
	HasMedia bool
}

// History is a batch of a chat's history that a connector is about to hand
// to bridgev2 (backfill into a new portal, or catching up after downtime).
type History struct {
	Login  *bridgev2.UserLogin
	Portal *bridgev2.Portal
	// Chat is what the connector knows of the chat (IsGroup, name, members).
	Chat Chat
	// Remote and Identity are the other user of a direct chat.
	Remote   networkid.UserID
	Identity Identity
	// Messages are in chronological order.
	Messages []HistoryMessage
}

// BackfillFilter decides what of a chat's history may be bridged: it returns
// the messages to hand to bridgev2, in their order (none when the chat is not
// bridged now). The gateway's filter is the governance gate's.
type BackfillFilter func(ctx context.Context, h History) []*bridgev2.BackfillMessage

// BackfillFilterSetter is implemented by connectors that backfill.
type BackfillFilterSetter interface {
	SetBackfillFilter(filter BackfillFilter)
}

var _ BackfillFilterSetter = (*Hooks)(nil)

// SetBackfillFilter implements BackfillFilterSetter.
func (h *Hooks) SetBackfillFilter(filter BackfillFilter) {
	h.mu.Lock()
	h.backfill = filter
	h.mu.Unlock()
}

// FilterBackfill asks the backfill filter about a batch of history. Without
// a filter (a connector outside a gateway) every message passes.
func (h *Hooks) FilterBackfill(ctx context.Context, hist History) []*bridgev2.BackfillMessage {
	h.mu.RLock()
	filter := h.backfill
	h.mu.RUnlock()
	if filter != nil {
		return filter(ctx, hist)
	}
	out := make([]*bridgev2.BackfillMessage, 0, len(hist.Messages))
	for _, m := range hist.Messages {
		out = append(out, m.Message)
	}
	return out
}

// BackfillLimits is a network's `backfill` config section: how much of a
// chat's history goes into its portal when the portal is made.
type BackfillLimits struct {
	// InitialMessages is how many of a chat's latest messages go into its
	// new portal; 0 backfills nothing.
	InitialMessages int `yaml:"initial_messages"`
	// MaxAgeDays leaves out messages older than this many days; 0 has no
	// age limit.
	MaxAgeDays int `yaml:"max_age_days"`
	// ChatsAtLogin is how many of the account's most recent chats get a
	// portal when it is linked (or reconnects); the others get theirs when
	// they next speak. 0 makes none at login.
	ChatsAtLogin int `yaml:"chats_at_login"`
}

// Cutoff is the oldest time a backfilled message may have (zero: none).
func (l BackfillLimits) Cutoff(now time.Time) time.Time {
	if l.MaxAgeDays <= 0 {
		return time.Time{}
	}
	return now.AddDate(0, 0, -l.MaxAgeDays)
}
