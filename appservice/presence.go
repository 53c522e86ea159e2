package appservice

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
)

// Bounds of the ghost presence worker.
const (
	// maxPendingPresence is how many ghosts may wait for their presence to
	// be set; more are dropped until the worker catches up.
	maxPendingPresence = 1024
	// presenceRecent is how long after being last seen a remote user shows
	// as unavailable rather than offline.
	presenceRecent = 5 * time.Minute
	// presenceTimeout bounds one presence update.
	presenceTimeout = 10 * time.Second
)

// ghostPresence sets the presence of existing ghosts from what the networks
// report (remote.PresenceSink). Reports are coalesced per ghost (the latest
// wins) and handled by one worker, so a connector never waits on the
// homeserver; beyond maxPendingPresence ghosts waiting, reports are dropped.
type ghostPresence struct {
	// ghost returns the client (appservice intent) of an existing ghost, or nil;
	// it never creates one.
	ghost func(ctx context.Context, user networkid.UserID) *mautrix.Client
	log   zerolog.Logger
	now   func() time.Time

	mu      sync.Mutex
	pending map[networkid.UserID]remote.Presence
	order   []networkid.UserID
	wake    chan struct{}
}

func newGhostPresence(br *bridgev2.Bridge, log zerolog.Logger) *ghostPresence {
	return newPresenceWorker(existingGhost(br), log)
}

func newPresenceWorker(ghost func(context.Context, networkid.UserID) *mautrix.Client, log zerolog.Logger) *ghostPresence {
	return &ghostPresence{ghost: ghost, log: log, now: time.Now, pending: map[networkid.UserID]remote.Presence{}, wake: make(chan struct{}, 1)}
}

// existingGhost looks a ghost up in bridgev2 without creating it.
func existingGhost(br *bridgev2.Bridge) func(context.Context, networkid.UserID) *mautrix.Client {
	return func(ctx context.Context, user networkid.UserID) *mautrix.Client {
		ghost, err := br.GetExistingGhostByID(ctx, user)
		if err != nil || ghost == nil {
			return nil
		}
		if intent := ghostClient(ghost.Intent); intent != nil {
			return intent.Client
		}
		return nil
	}
}

// Sink is the remote.PresenceSink the gateway hands to the networks.
func (g *ghostPresence) Sink(_ context.Context, _ *bridgev2.UserLogin, p remote.Presence) {
	if g == nil || p.User == "" {
		return
	}
	g.mu.Lock()
	if _, waiting := g.pending[p.User]; !waiting {
		if len(g.pending) >= maxPendingPresence {
			g.mu.Unlock()
			g.log.Debug().Msg("Dropping a presence update: too many waiting")
			return
		}
		g.order = append(g.order, p.User)
	}
	g.pending[p.User] = p
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *ghostPresence) start(ctx context.Context) {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-g.wake:
			}
			for ctx.Err() == nil {
				p, ok := g.next()
				if !ok {
					break
				}
				g.set(ctx, p)
			}
		}
	}()
}

func (g *ghostPresence) next() (remote.Presence, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.order) == 0 {
		return remote.Presence{}, false
	}
	user := g.order[0]
	g.order = g.order[1:]
	p := g.pending[user]
	delete(g.pending, user)
	return p, true
}

// presenceState maps a remote presence to Matrix's: online; unavailable
// when last seen within presenceRecent; offline otherwise. The
// client-server API takes no last_active_ago from a client: the homeserver
// counts it from the update.
func presenceState(p remote.Presence, now time.Time) event.Presence {
	switch {
	case p.Online:
		return event.PresenceOnline
	case !p.LastSeen.IsZero() && now.Sub(p.LastSeen) < presenceRecent:
		return event.PresenceUnavailable
	default:
		return event.PresenceOffline
	}
}

func (g *ghostPresence) set(ctx context.Context, p remote.Presence) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error().Any("panic", r).Str("stack", string(debug.Stack())).Msg("Setting a ghost's presence panicked")
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	// Presence never makes a ghost.
	client := g.ghost(ctx, p.User)
	if client == nil {
		return
	}
	state := presenceState(p, g.now())
	if err := client.SetPresence(ctx, mautrix.ReqPresence{Presence: state}); err != nil {
		g.log.Debug().Err(err).Stringer("ghost", client.UserID).Msg("Failed to set a ghost's presence")
		return
	}
	g.log.Debug().Stringer("ghost", client.UserID).Str("presence", string(state)).Msg("Set a ghost's presence")
}

// ghostClient is the appservice intent under a ghost's bridgev2 intent.
func ghostClient(intent bridgev2.MatrixAPI) *appservice.IntentAPI {
	switch i := intent.(type) {
	case *matrix.ASIntent:
		return i.Matrix
	case *idempotentIntent:
		return i.ASIntent.Matrix
	}
	return nil
}
