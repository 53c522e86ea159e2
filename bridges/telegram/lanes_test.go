package telegram

import (
	"context"
	"sync"
	"testing"

	"github.com/gotd/td/telegram/updates"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// recordingState is an update state storage that records the whole state
// after each write.
type recordingState struct {
	updates.StateStorage
	mu     sync.Mutex
	writes []updates.State
}

func (r *recordingState) record(ctx context.Context, userID int64, f func(*updates.State)) error {
	st, _, err := r.StateStorage.GetState(ctx, userID)
	if err != nil {
		return err
	}
	f(&st)
	if err := r.StateStorage.SetState(ctx, userID, st); err != nil {
		return err
	}
	r.mu.Lock()
	r.writes = append(r.writes, st)
	r.mu.Unlock()
	return nil
}

func (r *recordingState) SetState(ctx context.Context, userID int64, st updates.State) error {
	return r.record(ctx, userID, func(s *updates.State) { *s = st })
}
func (r *recordingState) SetPts(ctx context.Context, userID int64, pts int) error {
	return r.record(ctx, userID, func(s *updates.State) { s.Pts = pts })
}
func (r *recordingState) SetQts(ctx context.Context, userID int64, qts int) error {
	return r.record(ctx, userID, func(s *updates.State) { s.Qts = qts })
}
func (r *recordingState) SetDate(ctx context.Context, userID int64, date int) error {
	return r.record(ctx, userID, func(s *updates.State) { s.Date = date })
}
func (r *recordingState) SetSeq(ctx context.Context, userID int64, seq int) error {
	return r.record(ctx, userID, func(s *updates.State) { s.Seq = seq })
}
func (r *recordingState) SetDateSeq(ctx context.Context, userID int64, date, seq int) error {
	return r.record(ctx, userID, func(s *updates.State) { s.Date, s.Seq = date, seq })
}

func (r *recordingState) last() (updates.State, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.writes) == 0 {
		return updates.State{}, 0
	}
	return r.writes[len(r.writes)-1], len(r.writes)
}

// TestCommonMovesWaitForTheLanes: with a chat's update still being
// bridged, the moves made after it (a pts, a whole state from a
// difference, a later pts and seq) are not written; once it is bridged
// they are, merged into one write, and a move with the lanes idle is
// written at once. A move made before the update was handed over is not
// held.
func TestCommonMovesWaitForTheLanes(t *testing.T) {
	ctx := context.Background()
	const user = 42
	rec := &recordingState{StateStorage: openStore(t, dbtest.SQLite(t)).UpdateState()}
	if err := rec.StateStorage.SetState(ctx, user, updates.State{Pts: 1, Qts: 1, Date: 1, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	var guard *stateGuard
	lanes := remote.NewLanes(0, func(low uint64) { guard.caughtUp(low) })
	guard = newStateGuard(rec, lanes)

	if err := guard.SetPts(ctx, user, 2); err != nil {
		t.Fatal(err)
	}
	if st, n := rec.last(); n != 1 || st.Pts != 2 {
		t.Fatalf("a move with the lanes idle: %d writes, last %+v; want pts 2 written at once", n, st)
	}
	release := make(chan struct{})
	if err := lanes.Go(ctx, "u7", func() bool { <-release; return true }); err != nil {
		t.Fatal(err)
	}
	for _, move := range []func() error{
		func() error { return guard.SetPts(ctx, user, 3) },
		func() error { return guard.SetState(ctx, user, updates.State{Pts: 10, Qts: 4, Date: 100, Seq: 5}) },
		func() error { return guard.SetPts(ctx, user, 11) },
		func() error { return guard.SetDateSeq(ctx, user, 101, 6) },
	} {
		if err := move(); err != nil {
			t.Fatal(err)
		}
	}
	if _, n := rec.last(); n != 1 {
		t.Fatalf("%d writes while the update before the moves is being bridged, want none after the first", n-1)
	}
	close(release)
	if err := lanes.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	want := updates.State{Pts: 11, Qts: 4, Date: 101, Seq: 6}
	if st, n := rec.last(); n != 2 || st != want {
		t.Errorf("once bridged: %d writes, last %+v; want one more write of %+v", n, st, want)
	}
	if err := guard.SetQts(ctx, user, 5); err != nil {
		t.Fatal(err)
	}
	if st, n := rec.last(); n != 3 || st.Qts != 5 {
		t.Errorf("a move with the lanes idle again: %d writes, last %+v; want qts 5 written at once", n, st)
	}
}
