package appservice

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// heldHomeserver answers createRoom and sends once the test releases
// them, and records how many creations were at it at once.
type heldHomeserver struct {
	mu                sync.Mutex
	creating, maxSeen int
	created           int
	arrived           chan string // path of each request as it arrives
	release           map[string]chan struct{}
}

func newHeldHomeserver() *heldHomeserver {
	return &heldHomeserver{arrived: make(chan string, 1000), release: map[string]chan struct{}{}}
}

// gate is the channel that releases requests to path.
func (f *heldHomeserver) gate(path string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.release[path]
	if !ok {
		ch = make(chan struct{})
		f.release[path] = ch
	}
	return ch
}

func (f *heldHomeserver) RoundTrip(req *http.Request) (*http.Response, error) {
	create := isCreateRoom(req)
	if create {
		f.mu.Lock()
		f.creating++
		f.maxSeen = max(f.maxSeen, f.creating)
		f.mu.Unlock()
	}
	f.arrived <- req.URL.Path
	<-f.gate(req.URL.Path)
	if create {
		f.mu.Lock()
		f.creating--
		f.created++
		f.mu.Unlock()
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func do(t *testing.T, rt http.RoundTripper, method, path string) error {
	req, err := http.NewRequestWithContext(context.Background(), method, "http://hs"+path, nil)
	if err != nil {
		t.Error(err)
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

const (
	createPath = "/_matrix/client/v3/createRoom"
	sendPath   = "/_matrix/client/v3/rooms/!live:hs/send/m.room.encrypted/txn1"
)

// TestCreationPacerBoundsCreations: 100 portals created at once reach the
// homeserver at most maxCreations at a time and all complete, and a live
// message sent while creations fill every slot reaches the homeserver at
// once and completes while they are still held.
func TestCreationPacerBoundsCreations(t *testing.T) {
	hs := newHeldHomeserver()
	p := newCreationPacer(hs, maxCreations)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- do(t, p, http.MethodPost, createPath)
		}()
	}
	// Every slot taken by a creation the homeserver holds.
	for range maxCreations {
		if got := <-hs.arrived; got != createPath {
			t.Fatalf("%s reached the homeserver, want a creation", got)
		}
	}
	// A live message goes through while they are held.
	close(hs.gate(sendPath))
	if err := do(t, p, http.MethodPut, sendPath); err != nil {
		t.Fatalf("live send: %v", err)
	}
	if got := <-hs.arrived; got != sendPath {
		t.Fatalf("%s reached the homeserver, want the live send", got)
	}
	hs.mu.Lock()
	held := hs.creating
	hs.mu.Unlock()
	if held != maxCreations {
		t.Fatalf("%d creations at the homeserver while the send completed, want %d held", held, maxCreations)
	}
	close(hs.gate(createPath))
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("creation: %v", err)
		}
	}
	if hs.created != 100 || hs.maxSeen > maxCreations || hs.maxSeen < 1 {
		t.Fatalf("%d creations completed, at most %d at once; want 100, at most %d", hs.created, hs.maxSeen, maxCreations)
	}
}

// TestCreationPacerYieldsToSends: a creation whose turn comes while a
// message is being sent waits for that send to end, and then goes.
func TestCreationPacerYieldsToSends(t *testing.T) {
	hs := newHeldHomeserver()
	p := newCreationPacer(hs, maxCreations)
	yielding := make(chan struct{})
	p.onYield = func() { close(yielding) }
	sendDone := make(chan error, 1)
	go func() { sendDone <- do(t, p, http.MethodPut, sendPath) }()
	if got := <-hs.arrived; got != sendPath {
		t.Fatalf("%s arrived, want the send", got)
	}
	createDone := make(chan error, 1)
	go func() { createDone <- do(t, p, http.MethodPost, createPath) }()
	<-yielding // the creation waits behind the send in flight
	close(hs.gate(createPath))
	close(hs.gate(sendPath))
	if err := <-sendDone; err != nil {
		t.Fatal(err)
	}
	if got := <-hs.arrived; got != createPath {
		t.Fatalf("%s arrived, want the creation after the send", got)
	}
	if err := <-createDone; err != nil {
		t.Fatal(err)
	}
}

// TestCreationPacerWaitsAtMostLimit: under a steady stream of sends, a
// creation goes after creationYieldLimit of them have ended.
func TestCreationPacerWaitsAtMostLimit(t *testing.T) {
	hs := newHeldHomeserver()
	p := newCreationPacer(hs, 1)
	close(hs.gate(createPath))
	// One send always in flight: each is held until the next one arrived.
	paths := make([]string, creationYieldLimit+2)
	for i := range paths {
		paths[i] = "/_matrix/client/v3/rooms/!live:hs/send/m.room.message/t" + string(rune('a'+i))
	}
	sendErrs := make(chan error, len(paths))
	go func() { sendErrs <- do(t, p, http.MethodPut, paths[0]) }()
	<-hs.arrived
	yielding := make(chan struct{})
	p.onYield = func() { close(yielding) }
	createDone := make(chan error, 1)
	go func() { createDone <- do(t, p, http.MethodPost, createPath) }()
	<-yielding
	for i := 1; i < len(paths); i++ {
		go func() { sendErrs <- do(t, p, http.MethodPut, paths[i]) }()
		if got := <-hs.arrived; got != paths[i] {
			t.Fatalf("%s arrived, want send %d", got, i)
		}
		close(hs.gate(paths[i-1])) // the previous send ends; one stays in flight
		if i == creationYieldLimit {
			if got := <-hs.arrived; got != createPath {
				t.Fatalf("%s arrived after %d sends ended, want the creation", got, i)
			}
		}
	}
	if err := <-createDone; err != nil {
		t.Fatal(err)
	}
	close(hs.gate(paths[len(paths)-1]))
	for range paths {
		if err := <-sendErrs; err != nil {
			t.Fatal(err)
		}
	}
}
