package wasim_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
	"github.com/passerelle/passerelle/simulator/whatsapp/memstore"
)

const waitTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	// Set once, before any client exists: whatsmeow reads it while connecting.
	wasim.UseRootPublicKey(wasim.RootPublicKeyFromSeed(""))
	os.Exit(m.Run())
}

func debug() bool { return os.Getenv("WASIM_DEBUG") != "" }

func startServer(t testing.TB) *wasim.Server {
	t.Helper()
	cfg := wasim.Config{StreamErrorCloseDelay: 300 * time.Millisecond}
	if debug() {
		log := zerolog.New(zerolog.NewConsoleWriter()).Level(zerolog.TraceLevel).With().Str("component", "wasim").Logger()
		cfg.Log = &log
	}
	srv, err := wasim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func mustAccount(t testing.TB, srv *wasim.Server, phone, name string) *wasim.Account {
	t.Helper()
	acc, err := srv.CreateAccount(phone, name)
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// client is a real whatsmeow client with an in-memory store, whose events
// are collected in a channel.
type client struct {
	*whatsmeow.Client
	store  *memstore.Store
	events chan any
	// histories are the history syncs, kept apart from events (which
	// waitEvent drops while it looks for another type).
	histories chan *events.HistorySync
}

func newClient(t testing.TB, srv *wasim.Server, ms *memstore.Store, dev *store.Device) *client {
	t.Helper()
	var log waLog.Logger
	if debug() {
		log = waLog.Stdout("Client", "DEBUG", true)
	}
	c := &client{Client: whatsmeow.NewClient(dev, log), store: ms, events: make(chan any, 1024), histories: make(chan *events.HistorySync, 16)}
	srv.RouteClient(c.Client)
	c.AddEventHandler(func(evt any) {
		if hs, ok := evt.(*events.HistorySync); ok {
			c.histories <- hs
			return
		}
		select {
		case c.events <- evt:
		default:
		}
	})
	t.Cleanup(func() {
		// whatsmeow acks from goroutines that race Disconnect (under
		// -race): let the server see the acks first.
		deadline := time.Now().Add(2 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		for srv.Unacked() > 0 && time.Now().Before(deadline) {
			<-tick.C
		}
		tick.Stop()
		c.Disconnect()
	})
	return c
}

// waitEvent waits for the first event of type T for which pred (nil: any)
// holds, dropping other events.
func waitEvent[T any](t testing.TB, c *client, pred func(T) bool) T {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case evt := <-c.events:
			if typed, ok := evt.(T); ok && (pred == nil || pred(typed)) {
				return typed
			}
		case <-timer.C:
			var zero T
			t.Fatalf("timed out waiting for %T", zero)
			return zero
		}
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// pair links a new client to the account by QR code and waits until it is
// connected.
func pair(t testing.TB, srv *wasim.Server, phone string) *client {
	t.Helper()
	ms := memstore.New(nil)
	c := newClient(t, srv, ms, ms.NewDevice())
	qr, err := c.GetQRChannel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err = c.Connect(); err != nil {
		t.Fatal(err)
	}
	var code string
	select {
	case item := <-qr:
		if item.Event != whatsmeow.QRChannelEventCode {
			t.Fatalf("unexpected QR channel event %q (%v)", item.Event, item.Error)
		}
		code = item.Code
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for QR code")
	}
	if err = srv.ScanQR(ctxT(t), phone, code); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.PairSuccess](t, c, nil)
	waitEvent[*events.Connected](t, c, nil)
	return c
}
