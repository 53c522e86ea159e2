package appservice

import (
	"context"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/clock"
	"github.com/passerelle/passerelle/internal/lru"
)

// The bridge bot's device receives its to-device messages (room keys of
// staff members' messages, key requests, device list changes) with a /sync
// loop: homeservers without MSC2409/MSC3202 (Dendrite) give an appservice
// no other way. The loop's filter leaves every room event out, but a
// homeserver wakes a waiting /sync for every new event in the bot's rooms,
// which are all the portals, and answers it: during a burst the bot made
// one /sync for nearly every bridged message (0.85 per message measured
// with passerelle-bench), each one a round of database reads on the
// homeserver for an empty answer.
//
// pacedCrypto is the bridge's crypto helper with that loop paced: a /sync
// starts at least cryptoSyncEvery after the previous one returned. A quiet
// gateway is not slowed (a long-poll waiting for a to-device message answers
// as soon as it comes); under traffic the wake-ups are batched. The cost is
// that a room key sent to the bot just after a /sync returned waits up to
// cryptoSyncEvery: the first message of a new megolm session from Matrix
// can be bridged that much later.
const cryptoSyncEvery = 500 * time.Millisecond

type pacedCrypto struct {
	matrix.Crypto
	every time.Duration
	clock clock.Clock
	// missed are the sessions whose keys a held wait did not get (see
	// sessionhold.go).
	missed *lru.Cache[id.SessionID, struct{}]
	// config is the bridge's (see ratchet.go); nil: left as bridgev2 has it.
	config *bridgeconfig.Config
}

// usePacedCryptoSync paces the crypto helper's /sync loop. It runs after
// the bridge's Init (the connector has its helper) and before Start.
func usePacedCryptoSync(mc *matrix.Connector, every time.Duration) {
	if mc.Crypto == nil {
		return
	}
	if _, done := mc.Crypto.(*pacedCrypto); done {
		return
	}
	mc.Crypto = &pacedCrypto{Crypto: mc.Crypto, every: every, clock: clock.Real{}, missed: newMissedSessions(), config: mc.Config}
}

// Start wraps the helper's syncer (made by its Init) and starts the loop.
func (p *pacedCrypto) Start() {
	p.pace()
	p.Crypto.Start()
}

// Reset resets the helper (its Init makes a new syncer) and starts the loop
// again through Start, so that the new syncer is paced too.
func (p *pacedCrypto) Reset(ctx context.Context, startAfterReset bool) error {
	err := p.Crypto.Reset(ctx, false)
	p.quietRatchet() // a new machine
	if err == nil && startAfterReset {
		go p.Start()
	}
	return err
}

func (p *pacedCrypto) pace() {
	cli := p.Client()
	if cli == nil || cli.Syncer == nil {
		return
	}
	if _, done := cli.Syncer.(*pacedSyncer); done {
		return
	}
	cli.Syncer = &pacedSyncer{Syncer: cli.Syncer, every: p.every, clock: p.clock}
}

// pacedSyncer holds each handled /sync answer until every has passed since
// the previous one, so that the next /sync starts no sooner.
type pacedSyncer struct {
	mautrix.Syncer
	every time.Duration
	clock clock.Clock

	mu   sync.Mutex
	last time.Time
}

func (s *pacedSyncer) ProcessResponse(ctx context.Context, resp *mautrix.RespSync, since string) error {
	err := s.Syncer.ProcessResponse(ctx, resp, since)
	s.mu.Lock()
	wait := s.last.Add(s.every).Sub(s.clock.Now())
	s.mu.Unlock()
	if wait > 0 {
		select {
		case <-ctx.Done():
		case <-s.clock.After(wait):
		}
	}
	s.mu.Lock()
	s.last = s.clock.Now()
	s.mu.Unlock()
	return err
}
