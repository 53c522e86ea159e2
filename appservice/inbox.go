package appservice

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/clock"
	"github.com/passerelle/passerelle/internal/metrics"
)

// The Matrix inbox: the gateway answers a homeserver transaction once its
// room events are stored in the gateway's database, and handles them
// afterwards, each room's events in order and the rooms side by side.
//
// A homeserver sends an appservice its next transaction only after the
// answer to the previous one. Answered after its events were handled (as
// the gateway did before, for crash safety), one slow portal (a large file,
// a remote network slow to answer, a staff member's room key late) held
// every other portal's events of the transactions behind it. Answered at
// once (as mautrix does), a gateway that stops or dies before handling
// them loses them: the homeserver never sends them again. Stored first,
// neither: a crash leaves the events in the inbox, handled first at the
// next start; a slow portal holds only its own events.
//
// Bounded by construction: at most inboxSpan events are queued ahead of
// the oldest one not handled; past that the answer waits (the homeserver
// then holds the rest, as it would for a slow gateway). A handled event's
// row is kept, without its content, for inboxKeepHandled and then deleted.
//
// The inbox is also where a Matrix message is recognised as bridged
// already, in place of bridgev2's deduplicate_matrix_messages: bridgev2
// looks up every Matrix message by event ID or transaction ID in one
// query that no index serves (both ORed), so each message read every
// message the login ever bridged (23 ms per message at 100,000 of them on
// SQLite). Here an event is checked only when it may have been handled
// before: a homeserver sending a transaction again finds its events' rows
// (kept a day after they were handled), and an event stored by an earlier
// run (a crash between its send and its row's update) is looked up by its
// event ID (bridged, an indexed lookup).

// inboxVersionTable is the version table of the inbox's schema.
const inboxVersionTable = "passerelle_matrix_inbox_version"

//go:embed upgrades/inbox/*.sql
var rawInboxUpgrades embed.FS

var inboxUpgradeTable = dbutil.BuildUpgradeTable().WithFSPath(rawInboxUpgrades, "upgrades/inbox").Finish()

// inboxSpan bounds the events queued ahead of the oldest one not handled.
const inboxSpan = 4096

// inboxReplayPage is how many stored events a start reads at a time.
const inboxReplayPage = 256

// inboxKeepHandled is how long a handled event's row is kept (to recognise
// the event sent again), and inboxPruneEvery how often older ones are
// deleted.
const (
	inboxKeepHandled = 24 * time.Hour
	inboxPruneEvery  = 10 * time.Minute
)

type matrixInbox struct {
	db    *dbutil.Database
	as    *appservice.AppService
	ep    *appservice.EventProcessor
	ready <-chan struct{}
	ours  func(id.UserID) bool // the gateway's bot and ghosts (nil: none)
	// bridged reports whether the bridge has bridged an event already
	// (nil: never asked).
	bridged func(context.Context, id.EventID) (bool, error)
	clock   clock.Clock
	lanes   *remote.Lanes
	log     zerolog.Logger

	seq      atomic.Int64  // the last position given to a stored event
	replayed chan struct{} // closed once the events stored before the start are queued
	stopping atomic.Bool   // the gateway stops: events not begun stay stored
	done     chan struct{} // closed by stop: the pruning ends
	stopOnce sync.Once

	mu     sync.Mutex
	queued map[id.EventID]struct{} // queued and not yet handled
}

// openMatrixInbox opens the inbox and queues the events a previous run
// stored and did not handle; they, like every later event, are handled
// once ready is closed (the bridge has started). ours tells the gateway's
// own users (its bot and ghosts), whose echoes are not stored (see echo);
// bridged whether the bridge has bridged an event (asked only of events
// that may have been handled before).
func openMatrixInbox(ctx context.Context, parent *dbutil.Database, as *appservice.AppService, ep *appservice.EventProcessor, ready <-chan struct{}, ours func(id.UserID) bool, bridged func(context.Context, id.EventID) (bool, error), log zerolog.Logger) (*matrixInbox, error) {
	db, err := openSchema(ctx, parent, inboxVersionTable, inboxUpgradeTable, "Matrix inbox", nil)
	if err != nil {
		return nil, err
	}
	in := &matrixInbox{
		db: db, as: as, ep: ep, ready: ready, ours: ours, bridged: bridged, clock: clock.Real{}, log: log,
		lanes:    remote.NewLanes(inboxSpan, nil),
		replayed: make(chan struct{}),
		done:     make(chan struct{}),
		queued:   make(map[id.EventID]struct{}),
	}
	// Only waiting events' positions matter (handled ones are never
	// replayed), so the next position follows the last waiting one.
	var last sql.NullInt64
	if err = db.QueryRow(ctx, `SELECT MAX(seq) FROM passerelle_matrix_inbox WHERE handled IS NULL`).Scan(&last); err != nil {
		return nil, fmt.Errorf("failed to read the Matrix inbox: %w", err)
	}
	in.seq.Store(last.Int64)
	go in.replay(last.Int64)
	go in.pruneEvery()
	return in, nil
}

// pruneEvery deletes the rows of events handled more than
// inboxKeepHandled ago, at start and every inboxPruneEvery until stop.
func (in *matrixInbox) pruneEvery() {
	for {
		in.prune()
		select {
		case <-in.done:
			return
		case <-in.clock.After(inboxPruneEvery):
		}
	}
}

// prune deletes the rows of events handled more than inboxKeepHandled ago.
func (in *matrixInbox) prune() {
	cutoff := in.clock.Now().Add(-inboxKeepHandled).UnixMilli()
	ctx := in.log.WithContext(context.Background())
	if _, err := in.db.Exec(ctx, `DELETE FROM passerelle_matrix_inbox WHERE handled IS NOT NULL AND handled < $1`, cutoff); err != nil {
		in.log.Warn().Err(err).Msg("Failed to delete old handled events from the Matrix inbox")
	}
}

// replay queues the events stored up to position upTo, in order.
func (in *matrixInbox) replay(upTo int64) {
	defer close(in.replayed)
	ctx := in.log.WithContext(context.Background())
	after, count := int64(0), 0
	for {
		type stored struct {
			seq   int64
			event string
		}
		var page []stored
		rows, err := in.db.Query(ctx, `SELECT seq, event FROM passerelle_matrix_inbox WHERE handled IS NULL AND seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
			after, upTo, inboxReplayPage)
		if err == nil {
			for rows.Next() {
				var s stored
				if err = rows.Scan(&s.seq, &s.event); err != nil {
					break
				}
				page = append(page, s)
			}
			if err == nil {
				err = rows.Err()
			}
			_ = rows.Close()
		}
		if err != nil {
			in.log.Error().Err(err).Msg("Failed to read the Matrix inbox; its events are handled at the next start")
			return
		}
		for _, s := range page {
			after = s.seq
			var evt event.Event
			if err = json.Unmarshal([]byte(s.event), &evt); err != nil || evt.ID == "" || evt.RoomID == "" {
				in.log.Error().Err(err).Int64("seq", s.seq).Msg("Dropping an unreadable event of the Matrix inbox")
				_, _ = in.db.Exec(ctx, `DELETE FROM passerelle_matrix_inbox WHERE seq = $1`, s.seq)
				continue
			}
			// Handled perhaps, if the run stopped before its row's
			// update: checked.
			if err = in.queue(ctx, &evt, true); err != nil {
				return
			}
			count++
		}
		if len(page) < inboxReplayPage {
			break
		}
	}
	if count > 0 {
		in.log.Info().Int("events", count).Msg("Handling the Matrix events stored before the last stop")
	}
}

// echo reports whether evt is the echo of an event the gateway itself sent
// (a timeline event of its bot or of a ghost: every message bridged from a
// remote network comes back so). The bridge ignores those (bridgev2 drops
// its own users' events before anything else, the governance guard looks
// at state events, its reactions at the admins'), so the transaction
// handler neither stores nor hands them on: that spares each
// remote→Matrix message two database writes, and the decoding of the
// echo's content and its dispatch. State events (a ghost's join, a
// tombstone) are stored and handled.
func (in *matrixInbox) echo(evt *event.Event) bool {
	return evt.StateKey == nil && in.ours != nil && in.ours(evt.Sender)
}

// store records a transaction's room events (raw: their JSON, in the same
// order) in one database transaction, echoes left out. again[i] tells that
// events[i] was in the inbox already (the homeserver sending a
// transaction again): its row is kept as it is (see requeue).
func (in *matrixInbox) store(ctx context.Context, events []*event.Event, raw []json.RawMessage) (again []bool, err error) {
	again = make([]bool, len(events))
	stored := 0
	for _, evt := range events {
		if !in.echo(evt) {
			stored++
		}
	}
	if stored == 0 {
		return again, nil
	}
	now := in.clock.Now().UnixMilli()
	return again, in.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for i, evt := range events {
			again[i] = false
			if in.echo(evt) {
				continue
			}
			res, err := in.db.Exec(ctx, `INSERT INTO passerelle_matrix_inbox (event_id, seq, room_id, event, received)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING`,
				evt.ID, in.seq.Add(1), evt.RoomID, string(raw[i]), now)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && n == 0 {
				again[i] = true
			}
		}
		return nil
	})
}

// queue hands evt to its room's lane, unless it is queued already; it
// waits while inboxSpan events are ahead of the oldest not handled. An
// event queued with check may have been handled before (see handle).
func (in *matrixInbox) queue(ctx context.Context, evt *event.Event, check bool) error {
	in.mu.Lock()
	if _, ok := in.queued[evt.ID]; ok {
		in.mu.Unlock()
		return nil
	}
	in.queued[evt.ID] = struct{}{}
	in.mu.Unlock()
	err := in.lanes.Go(ctx, string(evt.RoomID), func() bool {
		in.handle(evt, check)
		return true
	})
	if err != nil {
		in.forget(evt.ID)
	}
	return err
}

// requeue queues an event that a transaction sent again found in the
// inbox, unless it is queued already or was handled (its row says so).
// handle updates an event's row before it forgets the event, so an event
// not queued any more has its row's word.
func (in *matrixInbox) requeue(ctx context.Context, evt *event.Event) error {
	in.mu.Lock()
	_, queued := in.queued[evt.ID]
	in.mu.Unlock()
	if queued {
		return nil
	}
	var handled sql.NullInt64
	err := in.db.QueryRow(ctx, `SELECT handled FROM passerelle_matrix_inbox WHERE event_id = $1`, evt.ID).Scan(&handled)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // handled long ago and pruned since
	case err != nil:
		return err
	case handled.Valid:
		zerolog.Ctx(ctx).Debug().Stringer("event_id", evt.ID).Msg("Event sent again was handled already")
		return nil
	}
	return in.queue(ctx, evt, true)
}

func (in *matrixInbox) forget(evtID id.EventID) {
	in.mu.Lock()
	delete(in.queued, evtID)
	in.mu.Unlock()
}

// handle hands an event to the bridge once it has started, and marks its
// row handled (echoes never come here: see echo). An event queued with check is
// first looked up in the bridge: one it bridged already is not handed on.
func (in *matrixInbox) handle(evt *event.Event, check bool) {
	<-in.ready
	defer in.forget(evt.ID)
	if in.stopping.Load() {
		return // stays stored: handled at the next start
	}
	log := in.log.With().Stringer("event_id", evt.ID).Logger()
	ctx := log.WithContext(context.Background())
	if check && in.bridged != nil {
		if done, err := in.bridged(ctx, evt.ID); err != nil {
			// Handed on: the networks recognise a message sent twice
			// (its remote ID derives from the event ID).
			log.Warn().Err(err).Msg("Failed to look up whether an event was bridged; handling it")
		} else if done {
			log.Info().Msg("Matrix event bridged already (before a restart or a lost answer); not sending it again")
			in.markHandled(ctx, evt)
			return
		}
	}
	func() {
		// An event that panics is dropped, not handled again at every
		// start (the event processor recovers its handlers' panics; this
		// covers the preparation around them).
		defer func() {
			if p := recover(); p != nil {
				log.Error().Any("panic", p).Msg("Panic while handling a Matrix event; dropping it")
			}
		}()
		dispatchRoomEvent(ctx, in.as, in.ep, evt)
	}()
	in.markHandled(ctx, evt)
}

// markHandled empties a handled event's row and stamps it: kept
// inboxKeepHandled to recognise the event sent again.
func (in *matrixInbox) markHandled(ctx context.Context, evt *event.Event) {
	if _, err := in.db.Exec(ctx, `UPDATE passerelle_matrix_inbox SET handled = $2, event = '' WHERE event_id = $1`,
		evt.ID, in.clock.Now().UnixMilli()); err != nil {
		// Handled again at the next start, where it is looked up first.
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to mark a handled event in the Matrix inbox")
	}
}

// pending is the number of events queued and not handled yet.
func (in *matrixInbox) pending() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.queued)
}

// inboxMetricName is the inbox's depth on the metrics listener.
const inboxMetricName = metrics.NameMatrixInbox

// collector reports the inbox's depth: the Matrix events answered for and
// not handled yet (waiting behind their room's earlier events, or being
// handled). It grows when a portal is slow or the bridge has not started.
func (in *matrixInbox) collector() prometheus.Collector {
	return metrics.InboxCollector(in.pending)
}

// stop makes the events not begun stay in the inbox, for the next start,
// and ends the pruning.
func (in *matrixInbox) stop() {
	in.stopping.Store(true)
	in.stopOnce.Do(func() { close(in.done) })
}

// wait returns once every event queued so far was handled (tests).
func (in *matrixInbox) wait(ctx context.Context) error {
	return in.lanes.Wait(ctx)
}
