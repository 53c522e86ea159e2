package appservice

import (
	"context"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/id"
)

// stepClock is a clock whose waits end at once, moving it forward by what
// was asked: the test sees every wait.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type countingSyncer struct {
	mautrix.Syncer
	handled []string
}

func (s *countingSyncer) ProcessResponse(_ context.Context, _ *mautrix.RespSync, since string) error {
	s.handled = append(s.handled, since)
	return nil
}

// TestPacedCryptoSync: answers that come back to back (a homeserver waking
// the bot's /sync for every event in its rooms) are held so that /syncs
// start at most once per interval; an answer after a quiet interval is not
// held; every answer is handled by the helper's own syncer.
func TestPacedCryptoSync(t *testing.T) {
	clk := &stepClock{now: time.Unix(1800000000, 0)}
	inner := &countingSyncer{}
	s := &pacedSyncer{Syncer: inner, every: 500 * time.Millisecond, clock: clk}
	ctx := context.Background()
	for i, gap := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond, 2 * time.Second} {
		clk.advance(gap)
		if err := s.ProcessResponse(ctx, &mautrix.RespSync{}, string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{480 * time.Millisecond, 400 * time.Millisecond}
	if len(clk.waits) != len(want) || clk.waits[0] != want[0] || clk.waits[1] != want[1] {
		t.Fatalf("waits between /syncs %v, want %v (none for the first answer and after a quiet 2 s)", clk.waits, want)
	}
	if len(inner.handled) != 4 {
		t.Fatalf("the helper's syncer handled %v, want all 4 answers", inner.handled)
	}
}

// fakeCrypto is a crypto helper with a client and a syncer, as bridgev2's
// Init leaves them.
type fakeCrypto struct {
	matrix.Crypto
	cli     *mautrix.Client
	started chan struct{}
	inits   int
}

func (f *fakeCrypto) Client() *mautrix.Client { return f.cli }
func (f *fakeCrypto) Start()                  { f.started <- struct{}{} }
func (f *fakeCrypto) Reset(context.Context, bool) error {
	f.inits++
	f.cli.Syncer = &countingSyncer{} // Init makes a new syncer
	return nil
}

// TestUsePacedCryptoSync: the connector's helper is wrapped once; its
// syncer is paced when the loop starts, and again after a reset.
func TestUsePacedCryptoSync(t *testing.T) {
	cli, err := mautrix.NewClient("http://127.0.0.1:1", id.UserID("@bot:test"), "")
	if err != nil {
		t.Fatal(err)
	}
	cli.Syncer = &countingSyncer{}
	fc := &fakeCrypto{cli: cli, started: make(chan struct{}, 2)}
	mc := &matrix.Connector{Crypto: fc}
	usePacedCryptoSync(mc, time.Second)
	usePacedCryptoSync(mc, time.Second)
	pc, ok := mc.Crypto.(*pacedCrypto)
	if !ok || pc.Crypto != matrix.Crypto(fc) {
		t.Fatalf("the connector's crypto is %T, want the paced helper around the original once", mc.Crypto)
	}
	mc.Crypto.Start()
	<-fc.started
	if _, ok := cli.Syncer.(*pacedSyncer); !ok {
		t.Fatalf("the bot's syncer is %T after Start, want paced", cli.Syncer)
	}
	if err = mc.Crypto.Reset(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	<-fc.started
	if _, ok := cli.Syncer.(*pacedSyncer); !ok || fc.inits != 1 {
		t.Fatalf("the bot's syncer is %T after a reset (%d resets), want paced", cli.Syncer, fc.inits)
	}
}

// TestNoCryptoNoPacing: without encryption there is nothing to pace.
func TestNoCryptoNoPacing(t *testing.T) {
	mc := &matrix.Connector{}
	usePacedCryptoSync(mc, time.Second)
	if mc.Crypto != nil {
		t.Fatalf("a connector without encryption got %T", mc.Crypto)
	}
}
