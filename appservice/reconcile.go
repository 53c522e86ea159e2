package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/internal/lru"
)

// A homeserver may make an event and fail to say so: Dendrite stopping
// persists the event, then answers 500 or closes the connection. The
// transaction ID does not help the send that follows, because Dendrite keeps
// its transaction IDs in memory and the restarted process has forgotten
// them: the same PUT makes a second event. The client-server API gives no
// way to ask "did transaction T make an event?", but the room can be read.
//
// sendReconciler is the appservice's HTTP transport, in front of the real
// one. For a ghost's send with a transaction ID derived from the remote
// message (see withRemoteTxnID), it keeps the body of every attempt whose
// outcome was unknown (a network error or a 5xx). Before the next attempt
// with that transaction ID, it reads the room's latest events and, if one
// from the same sender has the content of an earlier attempt (the ciphertext
// of an encrypted event is unique to its attempt), answers with that event
// instead of sending again.
//
// What it cannot see: an event the homeserver made but does not serve yet
// (it is sent again, as without it), and attempts made by a gateway process
// that has since died (their bodies were in its memory).
type sendReconciler struct {
	next http.RoundTripper
	log  zerolog.Logger

	mu      sync.Mutex
	unknown *lru.Cache[string, [][]byte] // send path → bodies of attempts with an unknown outcome
}

// Bounds: sends whose outcome is unknown that are remembered, attempts per
// send, and the events read back to look for an earlier attempt.
const (
	maxUnknownSends    = 1000
	maxUnknownAttempts = 8
	reconcileLookback  = 50
	reconcileTimeout   = 10 * time.Second
)

func newSendReconciler(next http.RoundTripper, log zerolog.Logger) *sendReconciler {
	if next == nil {
		next = http.DefaultTransport
	}
	return &sendReconciler{next: next, log: log, unknown: lru.New[string, [][]byte](maxUnknownSends)}
}

// reconciledSend is a PUT /rooms/{roomID}/send/{type}/{txnID} this
// transport watches.
type reconciledSend struct {
	key       string // the escaped path, which names room, type and transaction
	roomPath  string // the escaped /_matrix/client/{version}/rooms/{roomID}
	eventType string
}

func parseReconciledSend(req *http.Request) (reconciledSend, bool) {
	if req.Method != http.MethodPut {
		return reconciledSend{}, false
	}
	path := req.URL.EscapedPath()
	const prefix = "/_matrix/client/"
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return reconciledSend{}, false
	}
	parts := strings.Split(rest, "/") // version, "rooms", room, "send", type, txn
	if len(parts) != 6 || parts[1] != "rooms" || parts[3] != "send" || !strings.HasPrefix(parts[5], remoteTxnPrefix) {
		return reconciledSend{}, false
	}
	eventType, err := url.PathUnescape(parts[4])
	if err != nil {
		return reconciledSend{}, false
	}
	return reconciledSend{
		key:       path,
		roomPath:  prefix + parts[0] + "/rooms/" + parts[2],
		eventType: eventType,
	}, true
}

// RoundTrip implements http.RoundTripper.
func (r *sendReconciler) RoundTrip(req *http.Request) (*http.Response, error) {
	send, ok := parseReconciledSend(req)
	if !ok || req.Body == nil {
		return r.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	earlier, _ := r.unknown.Get(send.key)
	r.mu.Unlock()
	if len(earlier) > 0 {
		if eventID, found := r.findEarlier(req, send, earlier); found {
			r.forget(send.key)
			r.log.Info().Str("event_id", eventID).Msg("A send whose answer was lost had made its event: not sending it again")
			return eventResponse(req, eventID), nil
		}
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	resp, err := r.next.RoundTrip(out)
	switch {
	case err != nil || resp.StatusCode >= 500:
		r.remember(send.key, body)
	default:
		r.forget(send.key)
	}
	return resp, err
}

func (r *sendReconciler) remember(key string, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bodies, _ := r.unknown.Get(key)
	if len(bodies) >= maxUnknownAttempts {
		bodies = bodies[1:]
	}
	r.unknown.Put(key, append(append([][]byte(nil), bodies...), body))
}

func (r *sendReconciler) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unknown.Remove(key)
}

// findEarlier reads the room's latest events as the sender and returns the
// one whose content is one of the earlier bodies.
func (r *sendReconciler) findEarlier(req *http.Request, send reconciledSend, earlier [][]byte) (string, bool) {
	ctx, cancel := context.WithTimeout(req.Context(), reconcileTimeout)
	defer cancel()
	u := *req.URL
	u.Path, u.RawPath = "", ""
	u.Opaque = ""
	q := req.URL.Query()
	q.Set("dir", "b")
	q.Set("limit", fmt.Sprint(reconcileLookback))
	q.Del("ts")
	u.RawQuery = q.Encode()
	target := u.Scheme + "://" + u.Host + send.roomPath + "/messages?" + u.RawQuery
	get, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", false
	}
	get.Header = req.Header.Clone()
	get.Header.Del("Content-Type")
	resp, err := r.next.RoundTrip(get)
	if err != nil {
		r.log.Debug().Err(err).Msg("Could not read the room to reconcile a send")
		return "", false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.log.Debug().Int("status", resp.StatusCode).Msg("Could not read the room to reconcile a send")
		return "", false
	}
	var page struct {
		Chunk []struct {
			EventID string          `json:"event_id"`
			Sender  string          `json:"sender"`
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		} `json:"chunk"`
	}
	if err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page); err != nil {
		return "", false
	}
	sender := req.URL.Query().Get("user_id")
	for _, evt := range page.Chunk {
		if evt.Type != send.eventType || (sender != "" && evt.Sender != sender) {
			continue
		}
		for _, body := range earlier {
			if sameJSON(evt.Content, body) {
				return evt.EventID, true
			}
		}
	}
	return "", false
}

func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func eventResponse(req *http.Request, eventID string) *http.Response {
	body, _ := json.Marshal(map[string]string{"event_id": eventID})
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": []string{"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
