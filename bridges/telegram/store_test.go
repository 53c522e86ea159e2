package telegram

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram/updates"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func openStore(t *testing.T, b dbtest.Backend) *Store {
	t.Helper()
	st := NewChildStore(b.Open(t), dbutil.NoopLogger)
	if err := st.Upgrade(context.Background()); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	return st
}

func TestStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		st := openStore(t, b)

		// Session.
		sess := st.Session(10)
		if _, err := sess.LoadSession(ctx); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("LoadSession on empty store: %v, want session.ErrNotFound", err)
		}
		if err := sess.StoreSession(ctx, []byte(`{"Version":1}`)); err != nil {
			t.Fatal(err)
		}
		if err := sess.StoreSession(ctx, []byte(`{"Version":2}`)); err != nil {
			t.Fatal(err)
		}

		// Update state.
		us := st.UpdateState()
		if _, found, err := us.GetState(ctx, 10); err != nil || found {
			t.Fatalf("GetState on empty store: found=%v err=%v", found, err)
		}
		if err := us.SetState(ctx, 10, updates.State{Pts: 1, Qts: 2, Date: 3, Seq: 4}); err != nil {
			t.Fatal(err)
		}
		for _, step := range []func() error{
			func() error { return us.SetPts(ctx, 10, 11) },
			func() error { return us.SetQts(ctx, 10, 12) },
			func() error { return us.SetDate(ctx, 10, 13) },
			func() error { return us.SetSeq(ctx, 10, 14) },
			func() error { return us.SetDateSeq(ctx, 10, 23, 24) },
			func() error { return us.SetChannelPts(ctx, 10, 500, 7) },
			func() error { return us.SetChannelPts(ctx, 10, 500, 8) },
			func() error { return us.SetChannelPts(ctx, 10, 501, 1) },
			func() error { return us.SetChannelPts(ctx, 99, 502, 1) },
			func() error { return st.ChannelAccessHasher().SetChannelAccessHash(ctx, 10, 500, -77) },
			func() error { return st.UserAccessHasher().SetUserAccessHash(ctx, 10, 20, 1<<62) },
			func() error { return st.PutUser(ctx, 10, 21, 5, "Alice_Bot") },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}

		// Restart: a new pool on the same database sees everything.
		st2 := openStore(t, b)
		data, err := st2.Session(10).LoadSession(ctx)
		if err != nil || string(data) != `{"Version":2}` {
			t.Fatalf("session after restart = %q, %v", data, err)
		}
		if ok, err := st2.HasSession(ctx, 11); ok || err != nil {
			t.Fatalf("HasSession(11) = %v, %v", ok, err)
		}
		state, found, err := st2.UpdateState().GetState(ctx, 10)
		if err != nil || !found || state != (updates.State{Pts: 11, Qts: 12, Date: 23, Seq: 24}) {
			t.Fatalf("state after restart = %+v, %v, %v", state, found, err)
		}
		pts, found, err := st2.UpdateState().GetChannelPts(ctx, 10, 500)
		if err != nil || !found || pts != 8 {
			t.Fatalf("channel pts = %d, %v, %v", pts, found, err)
		}
		if _, found, _ = st2.UpdateState().GetChannelPts(ctx, 10, 502); found {
			t.Fatal("channel pts leaked across accounts")
		}
		seen := map[int64]int{}
		err = st2.UpdateState().ForEachChannels(ctx, 10, func(_ context.Context, ch int64, pts int) error {
			seen[ch] = pts
			return nil
		})
		if err != nil || len(seen) != 2 || seen[500] != 8 || seen[501] != 1 {
			t.Fatalf("ForEachChannels = %v, %v", seen, err)
		}
		hash, found, err := st2.ChannelAccessHasher().GetChannelAccessHash(ctx, 10, 500)
		if err != nil || !found || hash != -77 {
			t.Fatalf("channel hash = %d, %v, %v", hash, found, err)
		}
		hash, found, err = st2.UserAccessHasher().GetUserAccessHash(ctx, 10, 20)
		if err != nil || !found || hash != 1<<62 {
			t.Fatalf("user hash = %d, %v, %v", hash, found, err)
		}
		if _, found, _ = st2.UserAccessHasher().GetUserAccessHash(ctx, 10, 500); found {
			t.Fatal("channel hash returned as a user hash")
		}
		// A later sighting without a username keeps the username.
		if err = st2.UserAccessHasher().SetUserAccessHash(ctx, 10, 21, 6); err != nil {
			t.Fatal(err)
		}
		typ, id, hash, found, err := st2.PeerByUsername(ctx, 10, "alice_bot")
		if err != nil || !found || typ != peerTypeUser || id != 21 || hash != 6 {
			t.Fatalf("PeerByUsername = %s %d %d %v %v", typ, id, hash, found, err)
		}

		// Logout clears the account, and only that account.
		if err = st2.DeleteAccount(ctx, 10); err != nil {
			t.Fatal(err)
		}
		if ok, _ := st2.HasSession(ctx, 10); ok {
			t.Fatal("session survived DeleteAccount")
		}
		if _, found, _ = st2.UpdateState().GetState(ctx, 10); found {
			t.Fatal("state survived DeleteAccount")
		}
		if _, found, _ = st2.UpdateState().GetChannelPts(ctx, 99, 502); !found {
			t.Fatal("DeleteAccount removed another account's data")
		}
		if _, found, _ = st2.UserAccessHasher().GetUserAccessHash(ctx, 10, 20); found {
			t.Fatal("an access hash read before the logout survived DeleteAccount")
		}
	})
}

// TestAccessHashesKnownInMemory: the access hashes read or written lately
// are answered without the table, a sighting that changes nothing writes
// nothing, and a new hash or username is written.
func TestAccessHashesKnownInMemory(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		st := openStore(t, b)
		hasher := st.UserAccessHasher()
		if err := st.PutUser(ctx, 10, 30, 7, "bob"); err != nil {
			t.Fatal(err)
		}
		if hash, found, err := hasher.GetUserAccessHash(ctx, 10, 30); err != nil || !found || hash != 7 {
			t.Fatalf("user hash = %d, %v, %v", hash, found, err)
		}
		// The table changes under the store (as only a test can): the
		// same sighting again is not written, and the hash comes from
		// memory.
		if _, err := st.db.Exec(ctx, `UPDATE telegram_access_hash SET access_hash=99 WHERE user_id=10 AND peer_id=30`); err != nil {
			t.Fatal(err)
		}
		for _, put := range []func() error{
			func() error { return st.PutUser(ctx, 10, 30, 7, "bob") },
			func() error { return st.PutUser(ctx, 10, 30, 7, "") },
			func() error { return hasher.SetUserAccessHash(ctx, 10, 30, 7) },
		} {
			if err := put(); err != nil {
				t.Fatal(err)
			}
		}
		var stored int64
		if err := st.db.QueryRow(ctx, `SELECT access_hash FROM telegram_access_hash WHERE user_id=10 AND peer_id=30`).Scan(&stored); err != nil || stored != 99 {
			t.Fatalf("stored hash %d (%v): a sighting that changed nothing was written", stored, err)
		}
		if hash, _, _ := hasher.GetUserAccessHash(ctx, 10, 30); hash != 7 {
			t.Fatalf("user hash %d, want 7 from memory", hash)
		}
		// A new username is written, and read back from the table.
		if err := st.PutUser(ctx, 10, 30, 7, "bob_new"); err != nil {
			t.Fatal(err)
		}
		if _, id, hash, found, err := st.PeerByUsername(ctx, 10, "bob_new"); err != nil || !found || id != 30 || hash != 7 {
			t.Fatalf("PeerByUsername(bob_new) = %d %d %v %v", id, hash, found, err)
		}
		if hash, _, _ := hasher.GetUserAccessHash(ctx, 10, 30); hash != 7 {
			t.Fatalf("user hash %d after the new username, want 7", hash)
		}
	})
}

// A frozen state guard keeps the stored update state where it was: the
// next connection asks for the difference from before the update that was
// not bridged.
func TestStateGuardFreezes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		s := openStore(t, b)
		g := &stateGuard{StateStorage: s.UpdateState()}
		if err := g.SetState(ctx, 7, updates.State{Pts: 10, Qts: 1, Date: 100, Seq: 1}); err != nil {
			t.Fatal(err)
		}
		if err := g.SetPts(ctx, 7, 11); err != nil {
			t.Fatal(err)
		}
		g.freeze()
		for _, set := range []func() error{
			func() error { return g.SetPts(ctx, 7, 12) },
			func() error { return g.SetQts(ctx, 7, 2) },
			func() error { return g.SetDate(ctx, 7, 200) },
			func() error { return g.SetSeq(ctx, 7, 2) },
			func() error { return g.SetDateSeq(ctx, 7, 300, 3) },
			func() error { return g.SetState(ctx, 7, updates.State{Pts: 99}) },
		} {
			if err := set(); err != nil {
				t.Fatal(err)
			}
		}
		st, found, err := s.UpdateState().GetState(ctx, 7)
		if err != nil || !found || st != (updates.State{Pts: 11, Qts: 1, Date: 100, Seq: 1}) {
			t.Fatalf("stored state after freeze = %+v, %v, %v", st, found, err)
		}
	})
}

// TestStateBufferWritesLater: the update state's moves reach the database
// together, a second later; a read, the end of the connection or a freeze
// writes them at once, and a frozen guard passes no later move.
func TestStateBufferWritesLater(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		store := openStore(t, b).UpdateState()
		if err := store.SetState(ctx, 7, updates.State{Pts: 10, Qts: 1, Date: 100, Seq: 1}); err != nil {
			t.Fatal(err)
		}
		stored := func() updates.State {
			t.Helper()
			st, found, err := store.GetState(ctx, 7)
			if err != nil || !found {
				t.Fatalf("stored state: %v, found %v", err, found)
			}
			return st
		}
		channelPts := func(channel int64) int {
			t.Helper()
			pts, _, err := store.GetChannelPts(ctx, 7, channel)
			if err != nil {
				t.Fatal(err)
			}
			return pts
		}
		clk := clocktest.New(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
		buf := newStateBuffer(store, clk, zerolog.Nop())
		for _, set := range []func() error{
			func() error { return buf.SetPts(ctx, 7, 11) },
			func() error { return buf.SetPts(ctx, 7, 12) },
			func() error { return buf.SetQts(ctx, 7, 2) },
			func() error { return buf.SetDateSeq(ctx, 7, 200, 2) },
			func() error { return buf.SetChannelPts(ctx, 7, 99, 5) },
		} {
			if err := set(); err != nil {
				t.Fatal(err)
			}
		}
		if st := stored(); st != (updates.State{Pts: 10, Qts: 1, Date: 100, Seq: 1}) || channelPts(99) != 0 {
			t.Fatalf("written before their time: %+v, channel pts %d", st, channelPts(99))
		}
		if n := clk.Timers(); n != 1 {
			t.Fatalf("%d flushes scheduled for five moves, want 1", n)
		}
		clk.Advance(stateFlushEvery)
		buf.scheduled.Wait()
		if st := stored(); st != (updates.State{Pts: 12, Qts: 2, Date: 200, Seq: 2}) || channelPts(99) != 5 {
			t.Fatalf("after a second: %+v, channel pts %d", st, channelPts(99))
		}

		// A read sees the moves before it.
		if err := buf.SetPts(ctx, 7, 13); err != nil {
			t.Fatal(err)
		}
		if st, _, err := buf.GetState(ctx, 7); err != nil || st.Pts != 13 {
			t.Fatalf("read through the buffer: %+v, %v", st, err)
		}
		// The end of the connection writes what waits.
		if err := buf.SetChannelPts(ctx, 7, 99, 6); err != nil {
			t.Fatal(err)
		}
		buf.flushOrWarn(ctx)
		if channelPts(99) != 6 {
			t.Fatalf("channel pts after the connection's end: %d, want 6", channelPts(99))
		}

		// A freeze writes the moves of handled updates at once, and none after.
		g := &stateGuard{StateStorage: buf}
		if err := g.SetPts(ctx, 7, 14); err != nil {
			t.Fatal(err)
		}
		g.freeze()
		if st := stored(); st.Pts != 14 {
			t.Fatalf("pts after the freeze: %d, want 14", st.Pts)
		}
		if err := g.SetPts(ctx, 7, 15); err != nil {
			t.Fatal(err)
		}
		clk.Advance(stateFlushEvery)
		buf.scheduled.Wait()
		if st := stored(); st.Pts != 14 {
			t.Fatalf("a move after the freeze was written: pts %d", st.Pts)
		}

		// Many channels at once are written without waiting.
		buf2 := newStateBuffer(store, clk, zerolog.Nop())
		for ch := range int64(maxBufferedChannels) {
			if err := buf2.SetChannelPts(ctx, 7, 1000+ch, 3); err != nil {
				t.Fatal(err)
			}
		}
		if channelPts(1000) != 3 || channelPts(1000+maxBufferedChannels-1) != 3 {
			t.Fatalf("%d channels waited in memory", maxBufferedChannels)
		}
		clk.Advance(stateFlushEvery)
		buf2.scheduled.Wait()
	})
}

// TestStateBufferConcurrentMoves: the channels' update states move from
// their own goroutines while flushes run (the race detector watches), and
// the last move of each is what is stored in the end.
func TestStateBufferConcurrentMoves(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, dbtest.SQLite(t)).UpdateState()
	clk := clocktest.New(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	buf := newStateBuffer(store, clk, zerolog.Nop())
	var wg sync.WaitGroup
	for ch := range int64(4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pts := 1; pts <= 50; pts++ {
				if err := buf.SetChannelPts(ctx, 7, 500+ch, pts); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			buf.flushOrWarn(ctx)
		}
	}()
	wg.Wait()
	buf.flushOrWarn(ctx)
	for ch := range int64(4) {
		if pts, _, err := store.GetChannelPts(ctx, 7, 500+ch); err != nil || pts != 50 {
			t.Errorf("channel %d: stored pts %d (%v), want 50", 500+ch, pts, err)
		}
	}
	clk.Advance(stateFlushEvery)
	buf.scheduled.Wait()
}
