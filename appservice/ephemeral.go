package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/clock"
	"github.com/passerelle/passerelle/internal/lru"
)

// ephemeralFilter keeps only the read receipts and typing notices of the
// rooms, and redactions: no other timeline event, state, account data or
// presence bodies. It is sent inline (a filter ID would have to be created
// and stored per user). Redactions are there because Dendrite v0.13.8
// never pushes m.room.redaction events to appservices either.
const ephemeralFilter = `{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},` +
	`"room":{"timeline":{"limit":50,"types":["m.room.redaction"]},"state":{"not_types":["*"]},` +
	`"account_data":{"not_types":["*"]},"ephemeral":{"types":["m.receipt","m.typing"]}}}`

// Bounds of the receipt-and-typing sync.
const (
	// ephemeralPoll is the long-poll timeout of one /sync.
	ephemeralPoll = 25 * time.Second
	// ephemeralBackoffMin and ephemeralBackoffMax bound the wait after a
	// failed /sync (the homeserver is down or refuses).
	ephemeralBackoffMin = time.Second
	ephemeralBackoffMax = time.Minute
	// ephemeralEvery is the least time between the starts of two /syncs:
	// the homeserver wakes a staff member's /sync for every event in
	// their rooms, bridged messages included, and under traffic the
	// wake-ups are batched instead (a read receipt or typing notice waits
	// up to this long).
	ephemeralEvery = 500 * time.Millisecond
	// maxEphemeralPerSync bounds the events one /sync may hand on.
	maxEphemeralPerSync = 1000
	// ownReceiptsKept bounds the memory of receipts the gateway set.
	ownReceiptsKept = 4096
)

// sinceStore keeps where each staff member's sync left off.
type sinceStore interface {
	since(ctx context.Context, user id.UserID) (string, error)
	setSince(ctx context.Context, user id.UserID, token string) error
}

// ephemeralSyncer reads one staff member's read receipts and typing notices
// in portal rooms with /sync, as that staff member (the double-puppet
// registration's as_token with ?user_id=), and hands them to bridgev2 as if
// the homeserver had pushed them to the appservice. It exists because
// Dendrite (and Conduit) never push ephemeral events to appservices.
//
// Only the staff member's own receipts are handed on (every staff member in
// a room has a syncer of their own), minus those the gateway itself set for
// them through their double puppet (a read on their phone): sending those
// back to the network would loop. Typing notices carry the room's whole
// list, which bridgev2 diffs, so the same list from two syncers is harmless.
type ephemeralSyncer struct {
	client *mautrix.Client
	user   id.UserID
	store  sinceStore
	// isPortal tells the rooms whose events are handed on.
	isPortal func(ctx context.Context, roomID id.RoomID) bool
	own      *ownReceipts
	deliver  func(ctx context.Context, evt *event.Event)
	clock    clock.Clock
	log      zerolog.Logger
	// poll is the long-poll timeout (ephemeralPoll when zero).
	poll time.Duration
	// done, when it reports true, ends Run (the homeserver pushes after all).
	done func() bool
	// every is the least time between two /syncs (ephemeralEvery when
	// zero; negative: none).
	every time.Duration
}

// Run syncs until ctx ends or done reports true, backing off (on the
// injected clock) while the homeserver fails.
func (s *ephemeralSyncer) Run(ctx context.Context) {
	backoff := ephemeralBackoffMin
	every := s.every
	if every == 0 {
		every = ephemeralEvery
	}
	var last time.Time
	for ctx.Err() == nil && (s.done == nil || !s.done()) {
		if wait := last.Add(every).Sub(s.clock.Now()); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.clock.After(wait):
			}
		}
		last = s.clock.Now()
		if err := s.once(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("Receipt and typing sync failed")
			select {
			case <-ctx.Done():
				return
			case <-s.clock.After(backoff):
			}
			backoff = min(backoff*2, ephemeralBackoffMax)
			continue
		}
		backoff = ephemeralBackoffMin
	}
}

// once runs one /sync and hands its events on. The first sync of a staff
// member (no stored position) hands nothing on: those receipts are old.
func (s *ephemeralSyncer) once(ctx context.Context) error {
	since, err := s.store.since(ctx, s.user)
	if err != nil {
		return err
	}
	poll := s.poll
	if poll == 0 {
		poll = ephemeralPoll
	}
	req := mautrix.ReqSync{Since: since, FilterID: ephemeralFilter, SetPresence: event.PresenceOffline}
	if since != "" {
		req.Timeout = int(poll.Milliseconds())
	}
	resp, err := s.client.FullSyncRequest(ctx, req)
	if err != nil {
		return fmt.Errorf("failed to sync as %s: %w", s.user, err)
	}
	if since != "" {
		s.handle(ctx, resp)
	}
	if resp.NextBatch == "" {
		return errors.New("the sync answer has no next_batch")
	}
	return s.store.setSince(ctx, s.user, resp.NextBatch)
}

func (s *ephemeralSyncer) handle(ctx context.Context, resp *mautrix.RespSync) {
	handed := 0
	for roomID, room := range resp.Rooms.Join {
		if (len(room.Ephemeral.Events) == 0 && len(room.Timeline.Events) == 0) || !s.isPortal(ctx, roomID) {
			continue
		}
		for _, evt := range room.Timeline.Events {
			if evt.Type != event.EventRedaction || evt.Sender != s.user {
				continue
			}
			if handed >= maxEphemeralPerSync {
				s.log.Warn().Int("limit", maxEphemeralPerSync).Msg("Too many synced events in one sync; dropping the rest")
				return
			}
			evt.RoomID = roomID
			evt.Type.Class = event.MessageEventType
			evt.Mautrix.EventSource = event.SourceTimeline | event.SourceJoin
			if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
				s.log.Debug().Err(err).Stringer("room_id", roomID).Msg("Dropping unparsable redaction")
				continue
			}
			handed++
			s.deliver(ctx, evt)
		}
		for _, evt := range room.Ephemeral.Events {
			if handed >= maxEphemeralPerSync {
				s.log.Warn().Int("limit", maxEphemeralPerSync).Msg("Too many receipts and typing notices in one sync; dropping the rest")
				return
			}
			evt.RoomID = roomID
			evt.Type.Class = event.EphemeralEventType
			evt.Mautrix.EventSource = event.SourceEphemeral | event.SourceJoin
			if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
				s.log.Debug().Err(err).Stringer("room_id", roomID).Msg("Dropping unparsable ephemeral event")
				continue
			}
			switch evt.Type {
			case event.EphemeralEventReceipt:
				if !s.keepOwnReceipts(evt) {
					continue
				}
			case event.EphemeralEventTyping:
			default:
				continue
			}
			handed++
			s.deliver(ctx, evt)
		}
	}
}

// keepOwnReceipts narrows a receipt event to the syncing staff member's
// receipts that the gateway did not set itself; it reports whether any is
// left.
func (s *ephemeralSyncer) keepOwnReceipts(evt *event.Event) bool {
	content := *evt.Content.AsReceipt()
	for eventID, receipts := range content {
		for receiptType, users := range receipts {
			for userID := range users {
				if userID != s.user || s.own.take(userID, evt.RoomID, eventID) {
					delete(users, userID)
				}
			}
			if len(users) == 0 {
				delete(receipts, receiptType)
			}
		}
		if len(receipts) == 0 {
			delete(content, eventID)
		}
	}
	return len(content) > 0
}

// ownReceipt is a read receipt the gateway set for a staff member.
type ownReceipt struct {
	user  id.UserID
	room  id.RoomID
	event id.EventID
}

// ownReceipts remembers the read receipts the gateway set through double
// puppets, so that the receipt sync does not take them for the staff
// member's own reads. Dendrite keeps no extra fields on receipts, so
// bridgev2's marker (fi.mau.double_puppet_source) does not come back.
type ownReceipts struct {
	seen *lru.Cache[ownReceipt, struct{}]
}

func newOwnReceipts() *ownReceipts {
	return &ownReceipts{seen: lru.New[ownReceipt, struct{}](ownReceiptsKept)}
}

// take reports whether the gateway set this receipt, and forgets it.
func (o *ownReceipts) take(user id.UserID, room id.RoomID, evt id.EventID) bool {
	key := ownReceipt{user, room, evt}
	if _, ok := o.seen.Get(key); ok {
		o.seen.Remove(key)
		return true
	}
	return false
}

func (o *ownReceipts) add(user id.UserID, room id.RoomID, evt id.EventID) {
	if user != "" && room != "" && evt != "" {
		o.seen.Put(ownReceipt{user, room, evt}, struct{}{})
	}
}

// requestHook returns a mautrix request hook for a staff member's
// double-puppet client that records the read receipts and read markers it
// sets. It runs before the request leaves, so the receipt is known before
// the sync can bring it back.
func (o *ownReceipts) requestHook(user id.UserID) func(req *http.Request) {
	return func(req *http.Request) {
		if req.Method != http.MethodPost {
			return
		}
		segs := strings.Split(req.URL.EscapedPath(), "/")
		for i := range segs {
			if s, err := url.PathUnescape(segs[i]); err == nil {
				segs[i] = s
			}
		}
		// .../rooms/{room}/receipt/{type}/{event} or .../rooms/{room}/read_markers
		for i := 0; i+1 < len(segs); i++ {
			if segs[i] != "rooms" {
				continue
			}
			room := id.RoomID(segs[i+1])
			rest := segs[i+2:]
			switch {
			case len(rest) == 3 && rest[0] == "receipt":
				o.add(user, room, id.EventID(rest[2]))
			case len(rest) == 1 && rest[0] == "read_markers" && req.GetBody != nil:
				body, err := req.GetBody()
				if err != nil {
					return
				}
				var markers map[string]json.RawMessage
				err = json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&markers)
				_ = body.Close()
				if err != nil {
					return
				}
				for _, key := range []string{"m.read", "m.read.private"} {
					var evt id.EventID
					if json.Unmarshal(markers[key], &evt) == nil {
						o.add(user, room, evt)
					}
				}
			}
			return
		}
	}
}
