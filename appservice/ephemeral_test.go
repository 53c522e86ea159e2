package appservice

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/clock"
	"github.com/passerelle/passerelle/internal/stack"
)

type memSince struct {
	mu     sync.Mutex
	tokens map[id.UserID]string
}

func (m *memSince) since(_ context.Context, user id.UserID) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[user], nil
}

func (m *memSince) setSince(_ context.Context, user id.UserID, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[user] = token
	return nil
}

// delivered collects what a syncer hands on.
type delivered struct {
	mu  sync.Mutex
	evs []*event.Event
}

func (d *delivered) deliver(_ context.Context, evt *event.Event) {
	d.mu.Lock()
	d.evs = append(d.evs, evt)
	d.mu.Unlock()
}

func (d *delivered) all() []*event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.evs)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// TestEphemeralSyncOnDendrite runs the receipt-and-typing sync of a staff
// member against Dendrite, through a double-puppet registration like the one
// -g writes (no URL, non-exclusive namespace): it hands on the staff
// member's own read receipts and the typing notices of portal rooms, with
// user, room and event IDs, and leaves out receipts from before its first
// sync, receipts the gateway set through the double puppet, other users'
// receipts and rooms that are not portals. A new syncer on the same stored
// position replays nothing.
func TestEphemeralSyncOnDendrite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Dendrite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := stack.EnsureDendrite(ctx)
	if err != nil {
		t.Fatalf("Dendrite: %v", err)
	}
	dir := t.TempDir()
	asToken := randomToken(32)
	reg := dpRegistration{ID: "passerelle-doublepuppet", ASToken: asToken, HSToken: randomToken(32), SenderLocalpart: "dp-" + randomToken(4),
		Namespaces: dpRegNamespaces{Users: []dpRegNamespace{{Regex: DoublePuppetUsersRegex("localhost")}}}}
	data, err := yaml.Marshal(reg)
	if err != nil {
		t.Fatal(err)
	}
	regPath := filepath.Join(dir, "doublepuppet.yaml")
	if err = os.WriteFile(regPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	hs, err := stack.StartDendrite(ctx, stack.DendriteOptions{BinDir: bin, DataDir: filepath.Join(dir, "hs"), AppServiceConfigFiles: []string{regPath}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Stop() })

	staffReg, err := hs.RegisterUser(ctx, "staff", randomToken(8), false)
	if err != nil {
		t.Fatal(err)
	}
	otherReg, err := hs.RegisterUser(ctx, "colleague", randomToken(8), false)
	if err != nil {
		t.Fatal(err)
	}
	staffID := id.UserID(staffReg.UserID)
	staff, _ := mautrix.NewClient(hs.URL, staffID, staffReg.AccessToken)
	other, _ := mautrix.NewClient(hs.URL, id.UserID(otherReg.UserID), otherReg.AccessToken)

	room := func(name string) id.RoomID {
		resp, err := staff.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: name, Invite: []id.UserID{other.UserID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = other.JoinRoomByID(ctx, resp.RoomID); err != nil {
			t.Fatal(err)
		}
		return resp.RoomID
	}
	send := func(roomID id.RoomID, body string) id.EventID {
		resp, err := other.SendText(ctx, roomID, body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.EventID
	}
	portal, elsewhere := room("portal"), room("not a portal")
	old, phoneRead, read := send(portal, "one"), send(portal, "two"), send(portal, "three")
	elsewhereMsg := send(elsewhere, "elsewhere")
	// Read before the gateway ever synced: an old receipt.
	if err = staff.MarkRead(ctx, portal, old); err != nil {
		t.Fatal(err)
	}

	// The staff member's double puppet, as bridgev2 makes it with the
	// as_token secret: the second registration's token, masquerading.
	dp, _ := mautrix.NewClient(hs.URL, staffID, asToken)
	dp.SetAppServiceUserID = true
	who, err := dp.Whoami(ctx)
	if err != nil || who.UserID != staffID {
		t.Fatalf("whoami through the double-puppet registration: %+v, %v", who, err)
	}
	own := newOwnReceipts()
	dp.RequestHook = own.requestHook(staffID)
	store := &memSince{tokens: map[id.UserID]string{}}
	got := &delivered{}
	newSyncer := func() *ephemeralSyncer {
		return &ephemeralSyncer{
			client: dp, user: staffID, store: store, own: own, deliver: got.deliver, clock: clock.Real{},
			isPortal: func(_ context.Context, r id.RoomID) bool { return r == portal },
			log:      zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel),
			poll:     2 * time.Second,
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { newSyncer().Run(runCtx); close(done) }()
	eventually(t, "the first sync", func() bool { tok, _ := store.since(ctx, staffID); return tok != "" })

	// A read on the staff member's phone, which bridgev2 sets through the
	// double puppet: it comes back in the sync and must be dropped.
	if err = dp.SetReadMarkers(ctx, portal, &mautrix.ReqSetReadMarkers{Read: phoneRead, FullyRead: phoneRead}); err != nil {
		t.Fatalf("read marker through the double puppet: %v", err)
	}
	if own.seen.Len() != 1 {
		t.Fatalf("the double puppet's receipt was not recorded (%d)", own.seen.Len())
	}
	eventually(t, "the double puppet's own receipt to come back and be dropped", func() bool { return own.seen.Len() == 0 })

	// What the staff member does in their Matrix client, and what others do.
	for _, step := range []func() error{
		func() error { return other.MarkRead(ctx, portal, read) },
		func() error { return staff.MarkRead(ctx, elsewhere, elsewhereMsg) },
		func() error { return staff.MarkRead(ctx, portal, read) },
		func() error { _, err := staff.UserTyping(ctx, portal, true, 20*time.Second); return err },
	} {
		if err = step(); err != nil {
			t.Fatal(err)
		}
	}
	typingNow := func(users ...id.UserID) func() bool {
		return func() bool {
			for _, evt := range got.all() {
				if evt.Type == event.EphemeralEventTyping && slices.Equal(evt.Content.AsTyping().UserIDs, users) {
					return true
				}
			}
			return false
		}
	}
	eventually(t, "the staff member's typing", typingNow(staffID))
	eventually(t, "the staff member's receipt", func() bool {
		for _, evt := range got.all() {
			if evt.Type == event.EphemeralEventReceipt {
				return true
			}
		}
		return false
	})
	if _, err = staff.UserTyping(ctx, portal, false, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the staff member's typing to stop", typingNow())

	// Redactions: Dendrite pushes none to appservices, so the staff
	// member's own come through the sync; others' do not (sent first: by
	// the time the staff member's arrives, it would have too).
	var mine, theirs id.EventID
	for _, c := range []struct {
		cli *mautrix.Client
		dst *id.EventID
	}{{other, &theirs}, {staff, &mine}} {
		resp, err := c.cli.SendText(ctx, portal, "to be deleted")
		if err != nil {
			t.Fatal(err)
		}
		if _, err = c.cli.RedactEvent(ctx, portal, resp.EventID); err != nil {
			t.Fatal(err)
		}
		*c.dst = resp.EventID
	}
	var redactions []*event.Event
	eventually(t, "the staff member's redaction", func() bool {
		redactions = redactions[:0]
		for _, evt := range got.all() {
			if evt.Type == event.EventRedaction {
				redactions = append(redactions, evt)
			}
		}
		return len(redactions) > 0
	})
	if len(redactions) != 1 || redactions[0].Sender != staffID || redactions[0].Redacts != mine || redactions[0].RoomID != portal {
		t.Errorf("redactions handed on: %+v; want only the staff member's of %s (not %s)", redactions, mine, theirs)
	}

	receipts := 0
	for _, evt := range got.all() {
		if evt.RoomID != portal {
			t.Errorf("handed on an event of %s, which is not a portal", evt.RoomID)
		}
		if evt.Type == event.EventRedaction {
			continue
		}
		if evt.Type.Class != event.EphemeralEventType || evt.Mautrix.EventSource&event.SourceEphemeral == 0 {
			t.Errorf("event not marked ephemeral: %v %v", evt.Type.Class, evt.Mautrix.EventSource)
		}
		if evt.Type != event.EphemeralEventReceipt {
			continue
		}
		for eventID, byType := range *evt.Content.AsReceipt() {
			for receiptType, users := range byType {
				for userID := range users {
					receipts++
					if userID != staffID || eventID != read || receiptType != event.ReceiptTypeRead {
						t.Errorf("handed on a receipt of %s on %s (%s); want only %s on %s (old: %s, phone: %s)",
							userID, eventID, receiptType, staffID, read, old, phoneRead)
					}
				}
			}
		}
	}
	if receipts != 1 {
		t.Errorf("%d receipts handed on, want 1", receipts)
	}
	stop()
	<-done

	// A restart on the stored position hands nothing old on.
	before := len(got.all())
	runCtx, stop = context.WithCancel(ctx)
	defer stop()
	done = make(chan struct{})
	go func() { newSyncer().Run(runCtx); close(done) }()
	if _, err = staff.UserTyping(ctx, portal, true, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "typing after the restart", func() bool { return len(got.all()) > before })
	for _, evt := range got.all()[before:] {
		if evt.Type != event.EphemeralEventTyping {
			t.Errorf("after a restart the sync handed on %s again", evt.Type.Type)
		}
	}
	stop()
	<-done
}

// TestEphemeralSyncPaced: a homeserver that answers every /sync at once
// (as Dendrite does when events keep coming in the staff member's rooms) is
// asked at most once per ephemeralEvery.
func TestEphemeralSyncPaced(t *testing.T) {
	var syncs atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := syncs.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"next_batch":"s%d"}`, n)
	}))
	defer hs.Close()
	cli, err := mautrix.NewClient(hs.URL, "@staff:test", "token")
	if err != nil {
		t.Fatal(err)
	}
	clk := &stepClock{now: time.Unix(1800000000, 0)}
	s := &ephemeralSyncer{
		client: cli, user: "@staff:test", store: &memSince{tokens: map[id.UserID]string{}}, own: newOwnReceipts(),
		deliver: func(context.Context, *event.Event) {}, clock: clk,
		isPortal: func(context.Context, id.RoomID) bool { return true },
		log:      zerolog.Nop(),
		done:     func() bool { return syncs.Load() >= 4 },
	}
	s.Run(context.Background())
	if syncs.Load() != 4 {
		t.Fatalf("%d syncs, want 4", syncs.Load())
	}
	if len(clk.waits) != 3 {
		t.Fatalf("waits between syncs %v, want 3 (none before the first)", clk.waits)
	}
	for _, w := range clk.waits {
		if w != ephemeralEvery {
			t.Fatalf("waits between syncs %v, want %s each (the homeserver answered at once)", clk.waits, ephemeralEvery)
		}
	}
}
