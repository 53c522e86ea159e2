package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.mau.fi/util/exhttp"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// transactionsPath is where the homeserver PUTs appservice transactions.
const transactionsPath = "/_matrix/app/v1/transactions/"

// maxTransactionSize bounds a transaction's body (50 events of up to 64 KiB
// each, with room to spare).
const maxTransactionSize = 16 << 20

// handledTransactions makes the appservice answer a transaction only once
// its events have been handled: sent to the remote network, refused, or
// failed. mautrix's own handler answers as soon as the events are queued
// in memory, so a gateway that dies before handling them loses them: the
// homeserver has its answer and never sends them again. Answered after
// handling, a transaction cut short by a crash is sent again by the
// homeserver when the gateway is back; a message it had already sent is
// recognised by bridgev2 (deduplicate_matrix_messages) or, when the crash
// came between the send and the record, by the network itself (the remote
// message's identity is derived from the Matrix event ID).
//
// The appservice listener opens before the bridge has started (crypto,
// logins): a transaction is held until ready is closed, or answered 503
// after readyWait so that the homeserver sends it again. Handled earlier,
// an encrypted event fails in the crypto machine and is lost.
//
// It takes over only transactions that carry nothing but room events, and
// only when events are dispatched synchronously (bridgev2's default
// without appservice.async_transactions); anything else goes to mautrix's
// handler as before.
func handledTransactions(as *appservice.AppService, ep *appservice.EventProcessor, ready <-chan struct{}) exhttp.Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			txnID, ok := strings.CutPrefix(r.URL.Path, transactionsPath)
			if r.Method != http.MethodPut || !ok || txnID == "" || strings.Contains(txnID, "/") || ep.ExecMode != appservice.Sync {
				next.ServeHTTP(w, r)
				return
			}
			if !as.CheckServerToken(w, r) {
				return
			}
			if !waitReady(r.Context(), ready) {
				mautrix.RespError{ErrCode: "M_UNKNOWN", Err: "The bridge is starting", StatusCode: http.StatusServiceUnavailable}.Write(w)
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTransactionSize))
			_ = r.Body.Close()
			var txn appservice.Transaction
			if err != nil || json.Unmarshal(body, &txn) != nil || !onlyRoomEvents(&txn) {
				// mautrix answers malformed bodies and handles the rest.
				r.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(w, r)
				return
			}
			log := as.Log.With().Str("transaction_id", txnID).Logger()
			// Not the request's context: handling goes on if the homeserver
			// gives up waiting (it then sends the transaction again).
			ctx := log.WithContext(context.Background())
			start := time.Now()
			dispatchByRoom(ctx, as, ep, txn.Events)
			log.Debug().Int("events", len(txn.Events)).Dur("took", time.Since(start)).Msg("Handled transaction")
			exhttp.WriteEmptyJSONResponse(w, http.StatusOK)
		})
	}
}

// readyWait bounds how long a transaction waits for the bridge to start;
// the homeserver gives up on a request after 30 s.
const readyWait = 20 * time.Second

func waitReady(ctx context.Context, ready <-chan struct{}) bool {
	timer := time.NewTimer(readyWait)
	defer timer.Stop()
	select {
	case <-ready:
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}

// onlyRoomEvents reports whether txn carries room events and nothing else
// (no ephemeral or to-device events, device lists or key counts).
func onlyRoomEvents(txn *appservice.Transaction) bool {
	return txn.EphemeralEvents == nil && txn.ToDeviceEvents == nil && txn.DeviceLists == nil &&
		txn.DeviceOTKCount == nil && txn.FallbackKeys == nil &&
		txn.MSC2409EphemeralEvents == nil && txn.MSC2409ToDeviceEvents == nil && txn.MSC3202DeviceLists == nil &&
		txn.MSC3202DeviceOTKCount == nil && txn.MSC3202FallbackKeys == nil
}

// dispatchByRoom handles a transaction's events room by room, the rooms
// side by side and each room's events in order: a slow send in one portal
// (a large file, a network that is slow to answer) does not hold back the
// other portals' events of the same transaction. It returns once all are
// handled. Bounded by construction: one goroutine per room of the
// transaction, whose size the homeserver bounds (and maxTransactionSize).
func dispatchByRoom(ctx context.Context, as *appservice.AppService, ep *appservice.EventProcessor, events []*event.Event) {
	budget := &holdBudget{}
	var rooms []id.RoomID
	byRoom := make(map[id.RoomID][]*event.Event)
	for _, evt := range events {
		if _, seen := byRoom[evt.RoomID]; !seen {
			rooms = append(rooms, evt.RoomID)
		}
		byRoom[evt.RoomID] = append(byRoom[evt.RoomID], evt)
	}
	if len(rooms) == 1 {
		for _, evt := range events {
			dispatchRoomEvent(ctx, as, ep, evt, budget)
		}
		return
	}
	var wg sync.WaitGroup
	for _, room := range rooms {
		wg.Go(func() {
			for _, evt := range byRoom[room] {
				dispatchRoomEvent(ctx, as, ep, evt, budget)
			}
		})
	}
	wg.Wait()
}

// dispatchRoomEvent prepares a room event as mautrix's transaction handler
// does (source, class, parsed content, state store) and hands it to the
// event processor, which handles it before returning in synchronous mode.
// An encrypted event is marked so that a missing room key holds the
// transaction (withSessionHold) rather than its answer losing the event.
func dispatchRoomEvent(ctx context.Context, as *appservice.AppService, ep *appservice.EventProcessor, evt *event.Event, budget *holdBudget) {
	evt.Mautrix.ReceivedAt = time.Now()
	if evt.StateKey != nil {
		evt.Mautrix.EventSource = event.SourceTimeline & event.SourceJoin
		evt.Type.Class = event.StateEventType
	} else {
		evt.Mautrix.EventSource = event.SourceTimeline
		evt.Type.Class = event.MessageEventType
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrUnsupportedContentType) {
		as.Log.Warn().Err(err).Stringer("event_id", evt.ID).Str("event_type", evt.Type.Type).
			Msg("Failed to parse content of event")
	}
	if evt.Type.IsState() {
		mautrix.UpdateStateStore(ctx, as.StateStore, evt)
	}
	ep.Dispatch(withSessionHold(ctx, evt, budget), evt)
}
