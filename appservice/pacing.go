package appservice

import (
	"net/http"
	"strings"
	"sync"
)

// Creating a portal costs far more than a message: on Dendrite (v0.13.8,
// one core) a portal is about nineteen events and half a CPU-second. With
// a hundred created at once (staff members each getting new chats), the
// live messages of another login's existing portal waited up to 35 s; with
// this bound, 3.9 s (passerelle-bench -scenario creation, README).
//
// creationPacer is the appservice's HTTP transport in front of the others:
// at most maxCreations createRoom requests are at the homeserver at once,
// the others wait their turn in the gateway (bounded by construction: a
// channel of maxCreations slots), and a creation whose turn came while
// messages are being sent lets them go first, for at most
// creationYieldLimit of them, so that a steady stream of messages cannot
// hold creations back for ever. Messages never wait for creations.
type creationPacer struct {
	next  http.RoundTripper
	slots chan struct{}

	mu sync.Mutex
	// sends are the message sends in flight, ended those that ended
	// since the start; sent is closed (and replaced) each time one ends.
	sends int
	ended uint64
	sent  chan struct{}
	// onYield, for tests, is called when a creation starts waiting for
	// the sends in flight.
	onYield func()
}

const (
	// maxCreations is how many portal rooms are created at once.
	maxCreations = 2
	// creationYieldLimit is how many message sends ending a creation
	// waits for before it goes anyway.
	creationYieldLimit = 16
)

func newCreationPacer(next http.RoundTripper, max int) *creationPacer {
	if next == nil {
		next = http.DefaultTransport
	}
	return &creationPacer{next: next, slots: make(chan struct{}, max), sent: make(chan struct{})}
}

// isCreateRoom is POST /_matrix/client/{version}/createRoom.
func isCreateRoom(req *http.Request) bool {
	return req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/createRoom")
}

// isMessageSend is PUT /_matrix/client/{version}/rooms/{roomID}/send/{type}/{txnID}.
func isMessageSend(req *http.Request) bool {
	return req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/send/") && strings.Contains(req.URL.Path, "/rooms/")
}

func (p *creationPacer) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case isCreateRoom(req):
		select {
		case p.slots <- struct{}{}:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		defer func() { <-p.slots }()
		p.mu.Lock()
		start, hook := p.ended, p.onYield
		p.mu.Unlock()
		for waited := false; ; waited = true {
			p.mu.Lock()
			busy, sent := p.sends > 0 && p.ended-start < creationYieldLimit, p.sent
			p.mu.Unlock()
			if !busy {
				break
			}
			if !waited && hook != nil {
				hook()
			}
			select {
			case <-sent:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
	case isMessageSend(req):
		p.mu.Lock()
		p.sends++
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.sends--
			p.ended++
			close(p.sent)
			p.sent = make(chan struct{})
			p.mu.Unlock()
		}()
	}
	return p.next.RoundTrip(req)
}
