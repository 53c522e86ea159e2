package approval_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
)

var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const ttl = 24 * time.Hour

func setup(t *testing.T, b dbtest.Backend) (*dbutil.Database, *approval.Store, *audit.Log, *clocktest.Manual) {
	t.Helper()
	db, err := store.Open(context.Background(), b.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(start)
	log := audit.NewLog(db)
	log.Now = clk.Now
	s := approval.NewStore(db, log, ttl)
	s.Now = clk.Now
	return db, s, log, clk
}

func chat(n int) approval.NewRequest {
	return approval.NewRequest{Network: "whatsapp", Direction: audit.Inbound, Staff: "@alice:example.org", Login: "whatsapp.alice",
		Portal: networkid.PortalKey{ID: networkid.PortalID("whatsapp." + fmt.Sprint(33612345670+n)), Receiver: "whatsapp.alice"}, Contact: "whatsapp." + fmt.Sprint(33612345670+n), ContactName: "Marie",
		ContactIdent: "+33 6 12 34 56 7" + fmt.Sprint(n)}
}

func hold(t *testing.T, s *approval.Store, nr approval.NewRequest, payload string, at time.Time) approval.Request {
	t.Helper()
	r, _, err := s.Hold(context.Background(), nr, approval.HeldMessage{Time: at, Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHoldKeepsMessagesInOrderAcrossRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		_, s, _, _ := setup(t, b)
		nr := chat(1)
		r, created, err := s.Hold(ctx, nr, approval.HeldMessage{Time: start.Add(-3 * time.Minute), Payload: []byte("one")})
		if err != nil || !created || r.State != approval.StatePending || r.HeldCount != 1 || !r.ExpiresAt.Equal(start.Add(ttl)) {
			t.Fatalf("first hold = %+v, %v, %v", r, created, err)
		}
		hold(t, s, nr, "two", start.Add(-2*time.Minute))
		r2, created, err := s.Hold(ctx, nr, approval.HeldMessage{Time: start.Add(-1 * time.Minute), Payload: []byte{0, 1, 2, 0xff}})
		if err != nil || created || r2.ID != r.ID || r2.HeldCount != 3 {
			t.Fatalf("third hold = %+v, %v, %v", r2, created, err)
		}
		other := hold(t, s, chat(2), "elsewhere", start)
		if other.ID == r.ID {
			t.Fatal("two chats share a request")
		}

		// A restart: a new store on a new connection pool.
		db2, err := store.Open(ctx, b.Open(t))
		if err != nil {
			t.Fatal(err)
		}
		s2 := approval.NewStore(db2, nil, ttl)
		pending, err := s2.Pending(ctx)
		if err != nil || len(pending) != 2 || pending[0].ID != r.ID || pending[0].ContactIdent != nr.ContactIdent || pending[0].Staff != nr.Staff {
			t.Fatalf("pending after restart = %+v, %v", pending, err)
		}
		held, err := s2.Held(ctx, r.ID)
		if err != nil || len(held) != 3 {
			t.Fatalf("held = %v, %v", held, err)
		}
		for i, want := range []approval.HeldMessage{
			{1, start.Add(-3 * time.Minute), "whatsapp.alice", []byte("one")},
			{2, start.Add(-2 * time.Minute), "whatsapp.alice", []byte("two")},
			{3, start.Add(-1 * time.Minute), "whatsapp.alice", []byte{0, 1, 2, 0xff}},
		} {
			if held[i].Order != want.Order || !held[i].Time.Equal(want.Time) || string(held[i].Payload) != string(want.Payload) || held[i].Login != want.Login {
				t.Errorf("held[%d] = %+v, want %+v", i, held[i], want)
			}
		}
		if _, _, err = s.Create(ctx, approval.NewRequest{Network: "whatsapp"}); !errors.Is(err, approval.ErrInvalidRequest) {
			t.Errorf("request without portal: %v", err)
		}
	})
}

func TestDecisionsAndBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		_, s, log, clk := setup(t, b)
		r := hold(t, s, chat(1), "hello", start)
		hold(t, s, chat(1), "again", start)
		clk.Advance(time.Minute)

		approved, err := s.Approve(ctx, r.ID, "@admin:example.org", "known journalist")
		if err != nil || approved.State != approval.StateApproved || approved.DecidedBy != "@admin:example.org" || !approved.DecidedAt.Equal(start.Add(time.Minute)) {
			t.Fatalf("approve = %+v, %v", approved, err)
		}
		_, err = s.Approve(ctx, r.ID, "@admin2:example.org", "")
		if !errors.Is(err, approval.ErrAlreadyDecided) || !strings.Contains(err.Error(), "approved by @admin:example.org") {
			t.Errorf("approve twice: %v", err)
		}
		if _, err = s.Deny(ctx, r.ID, "@admin2:example.org", ""); !errors.Is(err, approval.ErrAlreadyDecided) {
			t.Errorf("deny after approve: %v", err)
		}
		if _, err = s.Approve(ctx, 424242, "@admin:example.org", ""); !errors.Is(err, approval.ErrUnknownRequest) {
			t.Errorf("unknown ID: %v", err)
		}
		if _, err = s.Get(ctx, 424242); !errors.Is(err, approval.ErrUnknownRequest) {
			t.Errorf("Get unknown ID: %v", err)
		}
		if got, _ := s.Get(ctx, r.ID); got.State != approval.StateApproved || got.DecidedBy != "@admin:example.org" {
			t.Errorf("a refused decision changed the request: %+v", got)
		}

		// Approved: the held events stay until replayed, and the chat passes.
		if held, _ := s.Held(ctx, r.ID); len(held) != 2 {
			t.Fatalf("held after approval = %d", len(held))
		}
		if und, _ := s.Undelivered(ctx); len(und) != 1 || und[0].ID != r.ID {
			t.Fatalf("undelivered = %+v", und)
		}
		if _, _, err = s.Hold(ctx, chat(1), approval.HeldMessage{Time: start, Payload: []byte("x")}); !errors.Is(err, approval.ErrChatApproved) {
			t.Errorf("hold in approved chat: %v", err)
		}
		if last, _ := s.LastForChat(ctx, chat(1).Portal); last == nil || last.State != approval.StateApproved {
			t.Errorf("last for chat = %+v", last)
		}
		if err = s.MarkDelivered(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if held, _ := s.Held(ctx, r.ID); len(held) != 0 {
			t.Errorf("held after delivery = %d", len(held))
		}
		if und, _ := s.Undelivered(ctx); len(und) != 0 {
			t.Errorf("undelivered after delivery = %+v", und)
		}

		entries, _ := log.List(ctx, audit.Filter{Request: fmt.Sprint(r.ID)})
		if len(entries) != 2 || entries[0].Action != audit.ActionRequestCreated || entries[1].Action != audit.ActionRequestApproved ||
			entries[1].Actor != "@admin:example.org" || !strings.Contains(string(entries[1].Details), `"held":2`) {
			t.Errorf("audit entries = %+v", entries)
		}
	})
}

func TestDenyDropsPayloadsKeepsCount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db, s, log, _ := setup(t, b)
		r := hold(t, s, chat(1), "secret one", start)
		hold(t, s, chat(1), "secret two", start)
		keep := hold(t, s, chat(2), "other chat", start)
		denied, err := s.Deny(ctx, r.ID, "@admin:example.org", "unknown sender")
		if err != nil || denied.State != approval.StateDenied || denied.HeldCount != 2 {
			t.Fatalf("deny = %+v, %v", denied, err)
		}
		var n int
		if err = db.QueryRow(ctx, "SELECT COUNT(*) FROM governance_approval_held WHERE request_id = $1", r.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d held rows left after deny (%v)", n, err)
		}
		if held, _ := s.Held(ctx, keep.ID); len(held) != 1 {
			t.Errorf("deny touched another request's events")
		}
		if _, _, err = s.Hold(ctx, chat(1), approval.HeldMessage{Time: start, Payload: []byte("later")}); !errors.Is(err, approval.ErrChatDenied) {
			t.Errorf("hold in denied chat: %v", err)
		}
		if err = s.MarkDelivered(ctx, r.ID); err == nil {
			t.Error("a denied request was marked delivered")
		}
		entries, _ := log.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionRequestDenied}})
		if len(entries) != 1 || strings.Contains(string(entries[0].Details), "secret") {
			t.Errorf("denied entries = %+v", entries)
		}
	})
}

func TestExpireDue(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		_, s, log, clk := setup(t, b)
		old := hold(t, s, chat(1), "a", start)
		clk.Advance(12 * time.Hour)
		young := hold(t, s, chat(2), "b", clk.Now())
		if exp, err := s.ExpireDue(ctx); err != nil || len(exp) != 0 {
			t.Fatalf("nothing due yet: %+v, %v", exp, err)
		}
		clk.Advance(12 * time.Hour) // old is exactly ttl old
		exp, err := s.ExpireDue(ctx)
		if err != nil || len(exp) != 1 || exp[0].ID != old.ID || exp[0].State != approval.StateExpired || exp[0].DecidedBy != audit.ActorSystem {
			t.Fatalf("expired = %+v, %v", exp, err)
		}
		if held, _ := s.Held(ctx, old.ID); len(held) != 0 {
			t.Errorf("expired request kept its events")
		}
		if got, _ := s.Get(ctx, young.ID); got.State != approval.StatePending {
			t.Errorf("young request = %s", got.State)
		}
		if _, err = s.Approve(ctx, old.ID, "@admin:example.org", ""); !errors.Is(err, approval.ErrAlreadyDecided) {
			t.Errorf("approving an expired request: %v", err)
		}
		if entries, _ := log.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionRequestExpired}}); len(entries) != 1 {
			t.Errorf("expired entries = %+v", entries)
		}
		if r, err := log.Verify(ctx); err != nil || !r.OK() {
			t.Errorf("verify: %v %v", err, r.Err())
		}
	})
}

// TestConcurrentHoldsShareOneRequest: a burst of first messages from one chat
// makes one request that holds all of them, numbered without gaps.
func TestConcurrentHoldsShareOneRequest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		_, s, log, _ := setup(t, b)
		const n = 16
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if _, _, err := s.Hold(ctx, chat(1), approval.HeldMessage{Time: start, Payload: []byte(fmt.Sprint(i))}); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		pending, err := s.Pending(ctx)
		if err != nil || len(pending) != 1 || pending[0].HeldCount != n {
			t.Fatalf("pending = %+v, %v", pending, err)
		}
		held, _ := s.Held(ctx, pending[0].ID)
		for i, m := range held {
			if m.Order != int64(i+1) {
				t.Fatalf("orders = %v", held)
			}
		}
		if entries, _ := log.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionRequestCreated}}); len(entries) != 1 {
			t.Errorf("%d request_created entries", len(entries))
		}
	})
}
