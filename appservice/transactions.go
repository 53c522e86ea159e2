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
	"maunium.net/go/mautrix/id"
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
			var events []*event.Event
			var raw []json.RawMessage
			var others map[string]json.RawMessage // the transaction's other parts, for mautrix
			ours := err == nil
			if ours {
				raw, others, err = splitTransaction(body)
				ours = err == nil
			}
			if ours {
				events, ours = decodeRoomEvents(raw, inbox.echo)
			}
			var rest []byte
			if ours && len(others) > 0 {
				if len(events) == 0 {
					ours = false
				} else if rest, err = json.Marshal(others); err != nil {
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
			again, err := inbox.store(r.Context(), events, raw)
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
			for i, evt := range events {
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
			log.Debug().Int("events", len(events)).Dur("took", time.Since(start)).Msg("Stored transaction")
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

// splitTransaction splits a transaction's body into its room events'
// JSON and its other parts (ephemeral and to-device events, device lists,
// key counts; a part given as null is left out), none of them decoded.
func splitTransaction(body []byte) (events []json.RawMessage, others map[string]json.RawMessage, err error) {
	if err = json.Unmarshal(body, &others); err != nil {
		return nil, nil, err
	}
	if others == nil {
		return nil, nil, errors.New("the transaction is not an object")
	}
	if evs, ok := others["events"]; ok {
		if err = json.Unmarshal(evs, &events); err != nil {
			return nil, nil, err
		}
		delete(others, "events")
	}
	for k, v := range others {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(others, k)
		}
	}
	return events, others, nil
}

// eventHead is what tells an echo from the other events, read without
// decoding the event's content.
type eventHead struct {
	Type     string     `json:"type"`
	ID       id.EventID `json:"event_id"`
	RoomID   id.RoomID  `json:"room_id"`
	Sender   id.UserID  `json:"sender"`
	StateKey *string    `json:"state_key"`
}

// decodeRoomEvents decodes a transaction's room events; it reports false
// when one is malformed or lacks an ID or a room (the inbox's keys). An
// echo (see matrixInbox.echo), which is neither stored nor handled, is
// read only as far as its head: every remote→Matrix message comes back so,
// and decoding its content was most of the transaction's cost.
func decodeRoomEvents(raw []json.RawMessage, echo func(*event.Event) bool) ([]*event.Event, bool) {
	events := make([]*event.Event, len(raw))
	for i, r := range raw {
		var head eventHead
		if json.Unmarshal(r, &head) != nil || head.ID == "" || head.RoomID == "" {
			return nil, false
		}
		evt := &event.Event{ID: head.ID, RoomID: head.RoomID, Sender: head.Sender, StateKey: head.StateKey, Type: event.Type{Type: head.Type}}
		if !echo(evt) {
			evt = &event.Event{}
			if json.Unmarshal(r, evt) != nil || evt.ID == "" || evt.RoomID == "" {
				return nil, false
			}
		}
		events[i] = evt
	}
	return events, true
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
