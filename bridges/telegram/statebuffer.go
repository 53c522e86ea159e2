package telegram

import (
	"context"
	"sync"
	"time"

	"github.com/gotd/td/telegram/updates"
	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/internal/clock"
)

// stateFlushEvery is how long the update state's moves wait in memory before
// they are written; maxBufferedChannels bounds the channels whose pts wait.
const (
	stateFlushEvery     = time.Second
	maxBufferedChannels = 256
)

// stateBuffer is the update state storage of one connection seen through a
// delay: gotd stores pts (or qts, seq, date, a channel's pts) after every
// update it hands over, one database write per bridged message in either
// direction. The moves are kept in memory and written together at most
// every stateFlushEvery, when the connection ends, and before any read.
//
// The stored state may then lag behind what was bridged, never run ahead of
// it: gotd stores a state only once the updates before it were handled, and
// a frozen guard (stateGuard, in front of the buffer) passes no move on. A
// gateway killed before a write asks Telegram for the difference from the
// older state at its next start, and the updates it gets again are the ones
// already bridged, which bridgev2 recognises by their message IDs.
type stateBuffer struct {
	updates.StateStorage // the store
	clock                clock.Clock
	every                time.Duration
	log                  zerolog.Logger

	scheduled sync.WaitGroup // flushes waiting for their time
	flushMu   sync.Mutex     // one flush at a time

	mu       sync.Mutex
	user     int64
	pending  pendingState
	channels map[int64]int
	armed    bool // a flush is scheduled
}

// pendingState is the moves of the common update state not yet written.
type pendingState struct {
	pts, qts, date, seq int
	has                 [4]bool // pts, qts, date, seq
}

func newStateBuffer(store updates.StateStorage, clk clock.Clock, log zerolog.Logger) *stateBuffer {
	return &stateBuffer{StateStorage: store, clock: clock.Or(clk), every: stateFlushEvery, log: log, channels: map[int64]int{}}
}

// move records one move under the lock and schedules a flush; a buffer
// full of channels is written at once. A connection is one account: a move
// of another one (none is expected) is written through, after the pending
// ones.
func (b *stateBuffer) move(ctx context.Context, userID int64, apply func(), through func() error) error {
	b.mu.Lock()
	if b.user != 0 && b.user != userID {
		b.mu.Unlock()
		return b.flushThen(ctx, through)
	}
	b.user = userID
	apply()
	full := len(b.channels) >= maxBufferedChannels
	arm := !b.armed && !full
	if arm {
		b.armed = true
	}
	b.mu.Unlock()
	if full {
		return b.flush(ctx)
	}
	if arm {
		b.scheduled.Add(1)
		go b.flushLater(b.clock.After(b.every))
	}
	return nil
}

func (b *stateBuffer) flushLater(due <-chan time.Time) {
	defer b.scheduled.Done()
	<-due
	// Not the connection's context: the moves are written even if it ended.
	b.flushOrWarn(context.Background())
}

// flushOrWarn writes the pending moves; a failure only makes the next start
// fetch more again.
func (b *stateBuffer) flushOrWarn(ctx context.Context) {
	if err := b.flush(ctx); err != nil {
		b.log.Warn().Err(err).Msg("Failed to write the Telegram update state; the next start asks for the difference from an older one")
	}
}

// flush writes the pending moves. Flushes run one at a time, so that an
// older move taken by one cannot be written after a newer one taken by the
// next.
func (b *stateBuffer) flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	user, p := b.user, b.pending
	var channels map[int64]int // handed over whole: moves go on into a new one
	if len(b.channels) > 0 {
		channels, b.channels = b.channels, map[int64]int{}
	}
	b.pending, b.armed = pendingState{}, false
	b.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	err := passMoves(ctx, b.StateStorage, user, heldState{st: p})
	for channel, pts := range channels {
		if err != nil {
			break
		}
		err = b.StateStorage.SetChannelPts(ctx, user, channel, pts)
	}
	return err
}

// flushThen writes the pending moves, then runs op on the store.
func (b *stateBuffer) flushThen(ctx context.Context, op func() error) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return op()
}

func (b *stateBuffer) SetPts(ctx context.Context, userID int64, pts int) error {
	return b.move(ctx, userID, func() { b.pending.pts, b.pending.has[0] = pts, true },
		func() error { return b.StateStorage.SetPts(ctx, userID, pts) })
}

func (b *stateBuffer) SetQts(ctx context.Context, userID int64, qts int) error {
	return b.move(ctx, userID, func() { b.pending.qts, b.pending.has[1] = qts, true },
		func() error { return b.StateStorage.SetQts(ctx, userID, qts) })
}

func (b *stateBuffer) SetDate(ctx context.Context, userID int64, date int) error {
	return b.move(ctx, userID, func() { b.pending.date, b.pending.has[2] = date, true },
		func() error { return b.StateStorage.SetDate(ctx, userID, date) })
}

func (b *stateBuffer) SetSeq(ctx context.Context, userID int64, seq int) error {
	return b.move(ctx, userID, func() { b.pending.seq, b.pending.has[3] = seq, true },
		func() error { return b.StateStorage.SetSeq(ctx, userID, seq) })
}

func (b *stateBuffer) SetDateSeq(ctx context.Context, userID int64, date, seq int) error {
	return b.move(ctx, userID, func() {
		b.pending.date, b.pending.seq = date, seq
		b.pending.has[2], b.pending.has[3] = true, true
	}, func() error { return b.StateStorage.SetDateSeq(ctx, userID, date, seq) })
}

func (b *stateBuffer) SetChannelPts(ctx context.Context, userID, channelID int64, pts int) error {
	return b.move(ctx, userID, func() { b.channels[channelID] = pts },
		func() error { return b.StateStorage.SetChannelPts(ctx, userID, channelID, pts) })
}

// SetState replaces the whole state: what is pending is written first, so
// that it cannot land after it.
func (b *stateBuffer) SetState(ctx context.Context, userID int64, st updates.State) error {
	return b.flushThen(ctx, func() error { return b.StateStorage.SetState(ctx, userID, st) })
}

func (b *stateBuffer) GetState(ctx context.Context, userID int64) (st updates.State, found bool, err error) {
	err = b.flushThen(ctx, func() error {
		st, found, err = b.StateStorage.GetState(ctx, userID)
		return err
	})
	return
}

func (b *stateBuffer) GetChannelPts(ctx context.Context, userID, channelID int64) (pts int, found bool, err error) {
	err = b.flushThen(ctx, func() error {
		pts, found, err = b.StateStorage.GetChannelPts(ctx, userID, channelID)
		return err
	})
	return
}

func (b *stateBuffer) ForEachChannels(ctx context.Context, userID int64, f func(ctx context.Context, channelID int64, pts int) error) error {
	return b.flushThen(ctx, func() error { return b.StateStorage.ForEachChannels(ctx, userID, f) })
}
