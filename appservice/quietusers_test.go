package appservice

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/clock"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// pushRuleHomeserver answers appservice registrations and records which
// users had their master push rule enabled; it refuses push-rule changes
// while down is set.
type pushRuleHomeserver struct {
	mu    sync.Mutex
	muted []id.UserID
	down  bool
}

func (h *pushRuleHomeserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer as-token" {
		http.Error(w, `{"errcode":"M_FORBIDDEN"}`, http.StatusForbidden)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/_matrix/client/v3/register":
		var body struct {
			Username string `json:"username"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		_, _ = w.Write([]byte(`{"user_id":"@` + body.Username + `:example.org"}`))
	case r.Method == http.MethodPut && r.URL.Path == "/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled":
		var body struct {
			Enabled bool `json:"enabled"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !body.Enabled {
			http.Error(w, `{"errcode":"M_BAD_JSON"}`, http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.down {
			http.Error(w, `{"errcode":"M_UNKNOWN"}`, http.StatusBadGateway)
			return
		}
		h.muted = append(h.muted, id.UserID(r.URL.Query().Get("user_id")))
		_, _ = w.Write([]byte(`{}`))
	default:
		http.Error(w, `{"errcode":"M_UNRECOGNIZED"}`, http.StatusNotFound)
	}
}

func (h *pushRuleHomeserver) setDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

func (h *pushRuleHomeserver) mutedUsers() []id.UserID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]id.UserID(nil), h.muted...)
}

// instantClock paces nothing.
type instantClock struct{ clock.Real }

func (instantClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

// TestGatewayUsersAreMuted: a ghost registered by bridgev2 (and the bot)
// gets its master push rule enabled at once, a staff member's account never;
// a homeserver that refuses the change does not fail the registration, and
// the users left (also those registered before the gateway did this) are
// muted by the backfill, once each.
func TestGatewayUsersAreMuted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		hs := &pushRuleHomeserver{}
		srv := httptest.NewServer(hs)
		defer srv.Close()
		db := b.Open(t)
		defer db.Close()
		mc := newTestConnector(t, srv.URL, db)
		mc.AS.StateStore = mc.StateStore // as bridgev2's Init sets it
		bot := mc.AS.BotMXID()
		ghostA, ghostB, ghostC := mc.FormatGhostMXID("telegram.1"), mc.FormatGhostMXID("telegram.2"), mc.FormatGhostMXID("whatsapp.3")
		staff := id.UserID("@sam:example.org")
		// Registered by an earlier gateway version: no mute yet.
		for _, user := range []id.UserID{bot, ghostC, staff} {
			if err := mc.StateStore.MarkRegistered(ctx, user); err != nil {
				t.Fatal(err)
			}
		}

		stop := mustUseQuietUsers(t, ctx, mc, db)
		defer stop()

		if err := mc.AS.Intent(ghostA).EnsureRegistered(ctx); err != nil {
			t.Fatalf("registering a ghost: %v", err)
		}
		if got := hs.mutedUsers(); len(got) != 1 || got[0] != ghostA {
			t.Fatalf("muted after the ghost's registration: %v, want [%s]", got, ghostA)
		}
		if err := mc.AS.StateStore.MarkRegistered(ctx, staff); err != nil {
			t.Fatal(err)
		}
		if got := hs.mutedUsers(); len(got) != 1 {
			t.Fatalf("a staff member's account was muted: %v", got)
		}

		hs.setDown(true)
		if err := mc.AS.Intent(ghostB).EnsureRegistered(ctx); err != nil {
			t.Fatalf("a refused mute failed the ghost's registration: %v", err)
		}
		if registered, _ := mc.StateStore.IsRegistered(ctx, ghostB); !registered {
			t.Fatal("the ghost whose mute was refused is not marked registered")
		}
		q := quietOf(t, mc)
		if n, err := q.backfill(ctx); err == nil || n != 0 {
			t.Fatalf("backfill with the homeserver refusing: %d muted, error %v; want 0 and an error", n, err)
		}

		hs.setDown(false)
		n, err := q.backfill(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[id.UserID]bool{ghostA: true, bot: true, ghostB: true, ghostC: true}
		got := hs.mutedUsers()
		if n != 3 || len(got) != 4 {
			t.Fatalf("backfill muted %d (homeserver saw %v), want the bot and the two unmuted ghosts", n, got)
		}
		for _, user := range got {
			if !want[user] {
				t.Errorf("muted %s, which is not the gateway's", user)
			}
			delete(want, user)
		}
		if len(want) != 0 {
			t.Errorf("never muted: %v", want)
		}
		if n, err = q.backfill(ctx); err != nil || n != 0 {
			t.Fatalf("a second backfill muted %d (error %v), want none", n, err)
		}
	})
}

// TestQuietBackfillStops: the backfill ends when the gateway stops, between
// two users.
func TestQuietBackfillStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	hs, mc, db := newQuietTestConnector(t)
	for i := range 5 {
		if err := mc.StateStore.MarkRegistered(ctx, mc.FormatGhostMXID(networkUser(i))); err != nil {
			t.Fatal(err)
		}
	}
	ghosts := mc.Config.MakeUserIDRegex(".+")
	q, err := openQuietUsers(ctx, db, mc.AS, func(u id.UserID) bool { return ghosts.MatchString(string(u)) }, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	clk := chanClock{waiting: make(chan struct{}), ticks: make(chan time.Time)}
	q.clock = clk
	done := make(chan int)
	go func() {
		n, _ := q.backfill(ctx)
		done <- n
	}()
	<-clk.waiting // after the first user
	clk.ticks <- time.Time{}
	<-clk.waiting // after the second
	cancel()
	if n := <-done; n != 2 {
		t.Fatalf("backfill muted %d users before stopping, want 2", n)
	}
	if got := len(hs.mutedUsers()); got != 2 {
		t.Fatalf("homeserver saw %d mutes, want 2", got)
	}
}

// chanClock says when a wait starts and ends it when the test says so.
type chanClock struct {
	waiting chan struct{}
	ticks   chan time.Time
}

func (chanClock) Now() time.Time { return time.Now() }
func (c chanClock) After(time.Duration) <-chan time.Time {
	c.waiting <- struct{}{}
	return c.ticks
}

func networkUser(i int) networkid.UserID {
	return networkid.UserID("telegram." + strings.Repeat("1", i+1))
}

func mustUseQuietUsers(t *testing.T, ctx context.Context, mc *matrix.Connector, db *dbutil.Database) func() {
	t.Helper()
	_, stop, err := useQuietUsers(ctx, mc, db, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	quietOf(t, mc).clock = instantClock{}
	return stop
}

func quietOf(t *testing.T, mc *matrix.Connector) *quietUsers {
	t.Helper()
	s, ok := mc.AS.StateStore.(*quietStateStore)
	if !ok {
		t.Fatalf("the appservice's state store is %T, not the muting one", mc.AS.StateStore)
	}
	return s.q
}

// TestQuietUsersKeepsEncryptionKeeper: the muting wraps the state store the
// appservice already has; governance's encryption keeper stays in front, so
// a message is never sent unencrypted while staff remove a portal's
// encryption (e2e TestGovernance/PortalGuard found it replaced).
func TestQuietUsersKeepsEncryptionKeeper(t *testing.T) {
	ctx := context.Background()
	_, mc, db := newQuietTestConnector(t)
	mc.AS.StateStore = gate.KeepEncryption(mc.StateStore) // bridgev2's Init, then governance's

	stop := mustUseQuietUsers(t, ctx, mc, db)
	defer stop()
	room := id.RoomID("!portal:example.org")
	if err := mc.AS.StateStore.SetEncryptionEvent(ctx, room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
		t.Fatal(err)
	}
	if err := mc.AS.StateStore.SetEncryptionEvent(ctx, room, &event.EncryptionEventContent{}); err != nil {
		t.Fatal(err)
	}
	if encrypted, err := mc.AS.StateStore.IsEncrypted(ctx, room); err != nil || !encrypted {
		t.Fatalf("after staff removed the encryption, the gateway's store says encrypted=%v (%v): the keeper is gone", encrypted, err)
	}
}

// newQuietTestConnector is mautrix's Matrix connector on a SQLite database,
// talking to a homeserver that records mutes; both close with the test.
func newQuietTestConnector(t *testing.T) (*pushRuleHomeserver, *matrix.Connector, *dbutil.Database) {
	t.Helper()
	hs := &pushRuleHomeserver{}
	srv := httptest.NewServer(hs)
	t.Cleanup(srv.Close)
	db := dbtest.SQLite(t).Open(t)
	t.Cleanup(func() { _ = db.Close() })
	return hs, newTestConnector(t, srv.URL, db), db
}
