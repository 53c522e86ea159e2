package remote

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ProfileUpdates applies the changes a network announces to its users'
// profiles (a new name, a new photo) to their ghosts, as writers of a
// ProfileGate: bridgev2 reads a message sender's ghost without the ghost's
// lock while it handles the message, so a ghost must not change while any
// message is handled. The change is applied off the caller's goroutine,
// one at a time: the caller (a network's update loop, or a backfill that
// runs inside a delivery, a reader of the gate) never waits for the gate.
// A change of a ghost replaces one of the same ghost still waiting; at
// most MaxPendingProfiles ghosts wait (more are dropped with a warning:
// the next change of the profile, or the next message, updates it).
//
// The zero value needs Gate.
type ProfileUpdates struct {
	Gate *ProfileGate

	mu      sync.Mutex
	pending map[string]profileJob
	order   []string
	running bool
}

type profileJob struct {
	ctx   context.Context
	apply func(ctx context.Context)
}

// MaxPendingProfiles bounds the ghosts waiting for their change.
const MaxPendingProfiles = 4096

// profileUpdateTimeout bounds one change (a photo's download and upload).
const profileUpdateTimeout = 2 * time.Minute

// Queue has apply run for the ghost key, later, as a writer of the gate.
// ctx gives apply its logger and values, not its end: the change is
// applied even if ctx ends first.
func (u *ProfileUpdates) Queue(ctx context.Context, key string, apply func(ctx context.Context)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending == nil {
		u.pending = make(map[string]profileJob)
	}
	if _, waiting := u.pending[key]; !waiting {
		if len(u.order) >= MaxPendingProfiles {
			zerolog.Ctx(ctx).Warn().Str("ghost", key).Msg("Too many ghost profile changes waiting: dropping this one")
			return
		}
		u.order = append(u.order, key)
	}
	u.pending[key] = profileJob{ctx: context.WithoutCancel(ctx), apply: apply}
	if !u.running {
		u.running = true
		go u.run()
	}
}

// run applies the waiting changes until none is left.
func (u *ProfileUpdates) run() {
	for {
		u.mu.Lock()
		if len(u.order) == 0 {
			u.running = false
			u.mu.Unlock()
			return
		}
		key := u.order[0]
		u.order = u.order[1:]
		job := u.pending[key]
		delete(u.pending, key)
		u.mu.Unlock()
		u.applyOne(key, job)
	}
}

func (u *ProfileUpdates) applyOne(key string, job profileJob) {
	ctx, cancel := context.WithTimeout(job.ctx, profileUpdateTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Any("panic", p).Str("stack", string(debug.Stack())).Str("ghost", key).
				Msg("Panic while updating a ghost's profile")
		}
	}()
	u.Gate.Lock()
	defer u.Gate.Unlock()
	job.apply(ctx)
}

// Waiting is how many ghosts' changes wait.
func (u *ProfileUpdates) Waiting() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.order)
}
