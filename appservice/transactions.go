package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"go.mau.fi/util/exhttp"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
)

// transactionsPath is where the homeserver PUTs appservice transactions.
const transactionsPath = "/_matrix/app/v1/transactions/"

// maxTransactionSize bounds a transaction's body (50 events of up to 64 KiB
// each, with room to spare).
const maxTransactionSize = 16 << 20

// handledTransactions makes the appservice answer a transaction only once
// its room events are stored in the Matrix inbox (see inbox.go), which
// handles them afterwards: sent to the remote network, refused, or failed.
// mautrix's own handler answers as soon as the events are queued in
// memory, so a gateway that dies before handling them loses them: the
// homeserver has its answer and never sends them again. Stored first, a
// transaction cut short by a crash is either sent again by the homeserver
// (not answered) or handled from the inbox at the next start; a message
// handled twice that way (a crash between its send and its deletion from
// the inbox) is recognised by the inbox (the bridge's record of it) or,
// when the crash came between the send and bridgev2's record, by the
// network itself (the remote message's identity is derived from the Matrix
// event ID); an event sent again after it was handled (the homeserver
// never got the answer) by its row in the inbox.
//
// A transaction can come before the bridge has started (crypto, logins):
// its events are stored and answered, and handled once it has.
//
// It takes over the room events of every transaction when events are
// dispatched synchronously (bridgev2's default without
// appservice.async_transactions); a transaction's other parts (ephemeral
// and to-device events, device lists, key counts) go to mautrix's handler,
// which answers once its room events are stored. Asynchronous dispatch,
// malformed bodies and events without an ID or room go to mautrix's
// handler as before.
func handledTransactions(as *appservice.AppService, ep *appservice.EventProcessor, inbox *matrixInbox) exhttp.Middleware {
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
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTransactionSize))
			_ = r.Body.Close()
			var txn appservice.Transaction
			var raw struct {
				Events []json.RawMessage `json:"events"`
			}
			ours := err == nil && json.Unmarshal(body, &txn) == nil && json.Unmarshal(body, &raw) == nil &&
				len(raw.Events) == len(txn.Events) && identified(txn.Events)
			var rest []byte // the transaction's other parts, for mautrix
			if ours && !onlyRoomEvents(&txn) {
				if len(txn.Events) == 0 {
					ours = false
				} else if rest, err = withoutRoomEvents(body); err != nil {
					ours = false
				}
			}
			if !ours {
				// mautrix answers malformed bodies and handles the rest.
				r.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(w, r)
				return
			}
			log := as.Log.With().Str("transaction_id", txnID).Logger()
			start := time.Now()
			again, err := inbox.store(r.Context(), txn.Events, raw.Events)
			if err != nil {
				log.Error().Err(err).Msg("Failed to store a transaction's events; the homeserver will send it again")
				mautrix.RespError{ErrCode: "M_UNKNOWN", Err: "The gateway could not store the events", StatusCode: http.StatusInternalServerError}.Write(w)
				return
			}
			// Events stored before this start go first (each room's order).
			select {
			case <-inbox.replayed:
			case <-r.Context().Done():
				return
			}
			for i, evt := range txn.Events {
				if inbox.echo(evt) {
					continue // ignored by the bridge (see echo)
				}
				if again[i] {
					err = inbox.requeue(r.Context(), evt)
				} else {
					err = inbox.queue(r.Context(), evt, false)
				}
				if err != nil {
					// Stored: sent again, the queued ones are recognised.
					mautrix.RespError{ErrCode: "M_UNKNOWN", Err: "The gateway is busy", StatusCode: http.StatusServiceUnavailable}.Write(w)
					return
				}
			}
			log.Debug().Int("events", len(txn.Events)).Dur("took", time.Since(start)).Msg("Stored transaction")
			if rest != nil {
				// mautrix handles the ephemeral and to-device parts and
				// answers (its answer, on failure, has the homeserver send
				// it all again: the stored events are recognised).
				r.Body = io.NopCloser(bytes.NewReader(rest))
				r.ContentLength = int64(len(rest))
				next.ServeHTTP(w, r)
				return
			}
			exhttp.WriteEmptyJSONResponse(w, http.StatusOK)
		})
	}
}

// withoutRoomEvents returns a transaction's body without its room events.
func withoutRoomEvents(body []byte) ([]byte, error) {
	var parts map[string]json.RawMessage
	if err := json.Unmarshal(body, &parts); err != nil {
		return nil, err
	}
	delete(parts, "events")
	return json.Marshal(parts)
}

// identified reports whether every event has an ID and a room (the
// inbox's keys).
func identified(events []*event.Event) bool {
	for _, evt := range events {
		if evt == nil || evt.ID == "" || evt.RoomID == "" {
			return false
		}
	}
	return true
}

// onlyRoomEvents reports whether txn carries room events and nothing else
// (no ephemeral or to-device events, device lists or key counts).
func onlyRoomEvents(txn *appservice.Transaction) bool {
	return txn.EphemeralEvents == nil && txn.ToDeviceEvents == nil && txn.DeviceLists == nil &&
		txn.DeviceOTKCount == nil && txn.FallbackKeys == nil &&
		txn.MSC2409EphemeralEvents == nil && txn.MSC2409ToDeviceEvents == nil && txn.MSC3202DeviceLists == nil &&
		txn.MSC3202DeviceOTKCount == nil && txn.MSC3202FallbackKeys == nil
}

// dispatchRoomEvent prepares a room event as mautrix's transaction handler
// does (source, class, parsed content, state store) and hands it to the
// event processor, which handles it before returning in synchronous mode.
// An encrypted event is marked so that a missing room key holds its room's
// events (withSessionHold) rather than bridgev2 giving up on it unseen.
func dispatchRoomEvent(ctx context.Context, as *appservice.AppService, ep *appservice.EventProcessor, evt *event.Event) {
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
	ep.Dispatch(withSessionHold(ctx, evt), evt)
}
