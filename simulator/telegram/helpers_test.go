package tgsim_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth/qrlogin"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// One server key for the whole package: RSA key generation is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newServer(t testing.TB) *tgsim.Server {
	t.Helper()
	s, err := tgsim.New(tgsim.Options{
		Key:    testKey(),
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func createAccount(t testing.TB, s *tgsim.Server, spec tgsim.AccountSpec) *tgsim.Account {
	t.Helper()
	a, err := s.CreateAccount(spec)
	if err != nil {
		t.Fatalf("CreateAccount(%s): %v", spec.Phone, err)
	}
	return a
}

// testClient is a real gotd client with gotd's updates manager, as a
// connector would run it. Its session and update state survive restarts.
type testClient struct {
	t        testing.TB
	srv      *tgsim.Server
	storage  *session.StorageMemory
	gaps     *updates.Manager
	loggedIn qrlogin.LoggedIn
	msgs     chan *tg.Message
	polls    chan *tg.UpdateMessagePoll

	client   *telegram.Client
	ctx      context.Context // cancelled by stop
	cancel   context.CancelFunc
	runDone  chan error
	gapsDone chan error
}

func newTestClient(t testing.TB, s *tgsim.Server) *testClient {
	c := &testClient{
		t:       t,
		srv:     s,
		storage: &session.StorageMemory{},
		msgs:    make(chan *tg.Message, 100),
		polls:   make(chan *tg.UpdateMessagePoll, 100),
	}
	d := tg.NewUpdateDispatcher()
	d.OnNewMessage(func(ctx context.Context, e tg.Entities, u *tg.UpdateNewMessage) error {
		if m, ok := u.Message.(*tg.Message); ok {
			c.msgs <- m
		}
		return nil
	})
	d.OnMessagePoll(func(ctx context.Context, e tg.Entities, u *tg.UpdateMessagePoll) error {
		c.polls <- u
		return nil
	})
	c.loggedIn = qrlogin.OnLoginToken(d)
	c.gaps = updates.New(updates.Config{Handler: d})
	t.Cleanup(c.stop)
	return c
}

// start connects the client (Run) and returns once it is connected.
func (c *testClient) start() {
	c.t.Helper()
	// What a gateway in another process does; ClientOptions() is the same.
	opts, err := tgsim.ClientOptionsFor(c.srv.Addr(), c.srv.DC(), c.srv.PublicKeyPEM())
	if err != nil {
		c.t.Fatal(err)
	}
	opts.SessionStorage = c.storage
	opts.UpdateHandler = c.gaps
	c.client = telegram.NewClient(1, "tgsim-test", opts)
	ctx, cancel := context.WithCancel(context.Background())
	c.ctx, c.cancel = ctx, cancel
	c.runDone = make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		c.runDone <- c.client.Run(ctx, func(ctx context.Context) error {
			close(ready)
			<-ctx.Done()
			return nil
		})
	}()
	select {
	case <-ready:
	case err := <-c.runDone:
		c.t.Fatalf("client stopped: %v", err)
	case <-time.After(2 * time.Minute):
		// Generous: a fresh MTProto key exchange under -race on a loaded
		// 2-core machine can take tens of seconds.
		c.t.Fatal("client did not connect")
	}
}

// startUpdates runs the updates manager as userID, as a connector does after
// login, and waits until it loaded its state. stop stops it.
func (c *testClient) startUpdates(userID int64) {
	ctx := c.ctx
	c.t.Helper()
	started := make(chan struct{})
	c.gapsDone = make(chan error, 1)
	api := c.client.API()
	go func() {
		c.gapsDone <- c.gaps.Run(ctx, api, userID, updates.AuthOptions{
			OnStart: func(context.Context) { close(started) },
		})
	}()
	select {
	case <-started:
	case err := <-c.gapsDone:
		c.t.Fatalf("updates manager stopped: %v", err)
	}
}

// stop disconnects the client and stops its updates manager.
func (c *testClient) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	<-c.runDone
	if c.gapsDone != nil {
		<-c.gapsDone
		c.gapsDone = nil
		c.gaps.Reset()
	}
}

func (c *testClient) api() *tg.Client { return c.client.API() }

// nextMessage waits for a new message update.
func (c *testClient) nextMessage(ctx context.Context) *tg.Message {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-ctx.Done():
		c.t.Fatalf("no message received: %v", ctx.Err())
		return nil
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
