package appservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// A homeserver may make an event and fail to say so, and then not recognise
// the transaction ID when the same send comes again: Dendrite (v0.13.8)
// cancels a request whose client went away but makes its event anyway,
// without recording the transaction; stopping, it makes the event and
// answers 500; and it keeps transaction IDs in memory, so a restart forgets
// them. In each case the same PUT makes a second event. The client-server
// API gives no way to ask "did transaction T make an event?", but the room
// can be read.
//
// sendReconciler is the appservice's HTTP transport, in front of the real
// one. For a ghost's send with a transaction ID derived from the remote
// message (see withRemoteTxnID), it records a digest of the body in the
// database before the send leaves and forgets it once the homeserver has
// answered (2xx or 4xx). A digest left behind is an attempt whose outcome is unknown: the
// gateway died waiting (Dendrite, seeing the connection close, cancels the
// request and answers nothing, yet makes the event), or the homeserver
// answered 5xx after making it. Before the next attempt with that
// transaction ID, the reconciler reads the room's latest events and, if one
// from the same sender has the content of an earlier attempt (the
// ciphertext of an encrypted event is unique to its attempt), answers with
// that event instead of sending again.
//
// What it cannot see: an event the homeserver made but does not serve yet
// after a few looks (it is sent again, as without the reconciler).
type sendReconciler struct {
	next  http.RoundTripper
	store *sendStore
	log   zerolog.Logger
	// lookAgain is the pause between looks for an earlier attempt's event
	// (a homeserver may make an event a moment after the request ended).
	lookAgain time.Duration
}

// Bounds: the events read back to look for an earlier attempt, the looks,
// and the time each takes.
const (
	reconcileLookback = 50
	reconcileLooks    = 3
	reconcileTimeout  = 10 * time.Second
)

func newSendReconciler(next http.RoundTripper, store *sendStore, log zerolog.Logger) *sendReconciler {
	if next == nil {
		next = http.DefaultTransport
	}
	return &sendReconciler{next: next, store: store, log: log, lookAgain: 500 * time.Millisecond}
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
	ctx := req.Context()
	earlier, err := r.store.earlier(ctx, send.key)
	if err != nil {
		r.log.Warn().Err(err).Msg("Sending without looking for an earlier attempt")
	}
	if len(earlier) > 0 {
		if eventID, found := r.lookForEarlier(req, send, earlier); found {
			r.forget(ctx, send.key)
			r.log.Info().Str("event_id", eventID).Msg("An earlier attempt of this send had made its event: not sending it again")
			return eventResponse(req, eventID), nil
		}
	}
	digest, ok := contentDigest(body)
	if !ok {
		return r.next.RoundTrip(withBody(req, body))
	}
	if err = r.store.record(ctx, send.key, digest); err != nil {
		r.log.Warn().Err(err).Msg("Sending without a record of the attempt")
	}
	resp, err := r.next.RoundTrip(withBody(req, body))
	if err == nil && resp.StatusCode < 500 {
		r.forget(ctx, send.key)
	}
	return resp, err
}

// withBody is req with body, readable again.
func withBody(req *http.Request, body []byte) *http.Request {
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return out
}

// forget drops the attempts of an answered send, also when the request's
// context has ended in the meantime.
func (r *sendReconciler) forget(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reconcileTimeout)
	defer cancel()
	if err := r.store.answered(ctx, key); err != nil {
		r.log.Warn().Err(err).Msg("Failed to forget the attempts of an answered send")
	}
}

// lookForEarlier looks a few times, lookAgain apart.
func (r *sendReconciler) lookForEarlier(req *http.Request, send reconciledSend, earlier [][]byte) (string, bool) {
	for look := 0; look < reconcileLooks; look++ {
		if look > 0 {
			select {
			case <-req.Context().Done():
				return "", false
			case <-time.After(r.lookAgain):
			}
		}
		if eventID, found := r.findEarlier(req, send, earlier); found {
			return eventID, true
		}
	}
	return "", false
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
		digest, ok := contentDigest(evt.Content)
		if !ok {
			continue
		}
		for _, d := range earlier {
			if bytes.Equal(d, digest) {
				return evt.EventID, true
			}
		}
	}
	return "", false
}

// contentDigest is the SHA-256 of a JSON object re-encoded with sorted keys
// and no spaces, so that the body a gateway sent and the content a
// homeserver serves back compare equal. Only digests are stored: the body of
// a send to an unencrypted room is the message's text.
func contentDigest(raw []byte) ([]byte, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	canonical, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(canonical)
	return []byte(hex.EncodeToString(sum[:])), true
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
