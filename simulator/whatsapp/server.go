package wasim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/passerelle/passerelle/internal/clock"
)

// Errors returned by the simulator's control methods.
var (
	ErrNoAccount       = errors.New("no such account")
	ErrAccountExists   = errors.New("account already exists")
	ErrUnknownQR       = errors.New("QR code is not pending on this server")
	ErrExpiredQR       = errors.New("QR code has expired")
	ErrNoPairing       = errors.New("no pairing code request pending for this phone")
	ErrWrongCode       = errors.New("wrong pairing code")
	ErrNoGroup         = errors.New("no such group")
	ErrNotInGroup      = errors.New("account is not a member of the group")
	ErrAnnounceOnly    = errors.New("only admins can send messages to this group")
	ErrNotGroupAdmin   = errors.New("only admins can change this group")
	ErrNoDevice        = errors.New("account has no linked device")
	ErrNoSuchMessage   = errors.New("no such message")
	ErrServerClosed    = errors.New("simulator is closed")
	ErrPairingRejected = errors.New("client rejected the pairing")
)

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on; "127.0.0.1:0" when empty.
	Addr string
	// RootSeed seeds the certificate chain (DefaultRootSeed when empty).
	// Clients must trust RootPublicKeyFromSeed(RootSeed).
	RootSeed string
	// Log receives the simulator's logs; nothing is logged when nil.
	Log *zerolog.Logger
	// StreamErrorCloseDelay is how long the server keeps a socket open after
	// sending a fatal stream error (device removed, replaced); 1s when zero.
	StreamErrorCloseDelay time.Duration
	// MaxMediaSize caps an upload to the media server (2 GiB when zero).
	MaxMediaSize int64
	// Clock is the simulator's time: message timestamps and the edit
	// window follow it (the system clock when nil). A test shares one with
	// the connector to move both past the edit window.
	Clock clock.Clock
	// MaxOffline caps what the server keeps for a linked device that is not
	// connected (messages, receipts, notifications), as WhatsApp's offline
	// queue does: past it the oldest are dropped (the history sync covers
	// them). DefaultMaxOffline when zero.
	MaxOffline int
	// NoHistorySync: the phones send no history sync to the devices they
	// link (as with a phone whose history transfer is off).
	NoHistorySync bool
}

// DefaultMaxOffline is how many stanzas the server keeps per offline
// device by default.
const DefaultMaxOffline = 10000

// Server is an in-process fake WhatsApp server. Create it with Start.
type Server struct {
	cfg   Config
	log   zerolog.Logger
	certs *certChain
	ln    net.Listener
	hsrv  *http.Server
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	media *mediaServer

	mu        sync.Mutex
	accounts  map[string]*Account // by phone
	byLID     map[string]*Account // by LID user
	conns     map[*conn]struct{}
	qrRefs    map[string]qrRef
	codePairs map[string]*codePairing // by phone
	groups    map[string]*Group       // by group JID user
	// newsletters are the channels, by JID user.
	newsletters map[string]*Newsletter
	pictures    map[string]picture // profile and group pictures by JID
	timers      map[string]uint32  // disappearing timers (seconds) by timerKey
	nextLID     uint64
	nextGroup   uint64

	rec recorder
}

// now is the simulator's time.
func (s *Server) now() time.Time { return clock.Or(s.cfg.Clock).Now() }

// Start listens and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.StreamErrorCloseDelay == 0 {
		cfg.StreamErrorCloseDelay = time.Second
	}
	log := zerolog.Nop()
	if cfg.Log != nil {
		log = *cfg.Log
	}
	if cfg.MaxMediaSize == 0 {
		cfg.MaxMediaSize = 2 << 30
	}
	if cfg.MaxOffline <= 0 {
		cfg.MaxOffline = DefaultMaxOffline
	}
	certs, err := newCertChain(cfg.RootSeed)
	if err != nil {
		return nil, err
	}
	media, err := newMediaServer(cfg.MaxMediaSize)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		media.close()
		return nil, fmt.Errorf("failed to listen on %s: %w", cfg.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:         cfg,
		log:         log,
		certs:       certs,
		media:       media,
		ln:          ln,
		ctx:         ctx,
		stop:        cancel,
		accounts:    map[string]*Account{},
		byLID:       map[string]*Account{},
		conns:       map[*conn]struct{}{},
		qrRefs:      map[string]qrRef{},
		codePairs:   map[string]*codePairing{},
		groups:      map[string]*Group{},
		newsletters: map[string]*Newsletter{},
		pictures:    map[string]picture{},
		nextLID:     100000000000001,
		nextGroup:   120363000000000001,
	}
	s.rec.init()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/chat", s.serveWebsocket)
	// Media in clear text on the main address too, for a process that routes
	// every host there (ClientHTTP); MediaHTTPClient speaks HTTPS.
	mux.Handle("/mms/", media)
	mux.Handle("/v/", media)
	s.hsrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.hsrv.Serve(ln)
	}()
	return s, nil
}

// Addr is the host:port the server listens on; give it to ClientHTTP.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// RootPublicKey is the key clients must trust (see UseRootPublicKey).
func (s *Server) RootPublicKey() [32]byte { return RootPublicKeyFromSeed(s.cfg.RootSeed) }

// Close disconnects every client and stops the server.
func (s *Server) Close() error {
	s.stop()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.hsrv.Shutdown(ctx)
	s.wg.Wait()
	s.media.close()
	return err
}

func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug().Err(err).Msg("Websocket upgrade failed")
		return
	}
	ws.SetReadLimit(1 << 24)
	c := newConn(s, ws)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.run()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.detach(c)
}

// pushToDevice sends node to a linked device now, or queues it until the
// device next logs in.
func (s *Server) pushToDevice(dev *companion, node waBinary.Node) {
	s.mu.Lock()
	c := dev.conn
	if c == nil || !c.ready {
		s.queueLocked(dev, node)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if err := s.sendToDevice(dev, c, node); err != nil {
		s.mu.Lock()
		s.queueLocked(dev, node)
		s.mu.Unlock()
	}
}

// queueLocked adds node to the device's offline queue, dropping the oldest
// past Config.MaxOffline (counting the unacknowledged messages that are
// sent again first).
func (s *Server) queueLocked(dev *companion, node waBinary.Node) {
	dev.pending = append(dev.pending, node)
	over := len(dev.unacked) + len(dev.pending) - s.cfg.MaxOffline
	if over <= 0 {
		return
	}
	if n := min(over, len(dev.unacked)); n > 0 {
		dev.unacked = slices.Delete(dev.unacked, 0, n)
		over -= n
	}
	if over > 0 {
		dev.pending = slices.Delete(dev.pending, 0, over)
	}
}

// OfflineQueued is how many stanzas wait for the offline devices of
// account phone (what they get at their next login).
func (s *Server) OfflineQueued(phone string) int {
	acc, err := s.account(phone)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range acc.devices {
		if d.conn == nil || !d.conn.ready {
			n += len(d.pending) + len(d.unacked)
		}
	}
	return n
}

// sendToDevice sends node on the device's connection c; a message stays
// unacknowledged until the device acks it.
func (s *Server) sendToDevice(dev *companion, c *conn, node waBinary.Node) error {
	if node.Tag == "message" {
		s.mu.Lock()
		dev.unacked = append(dev.unacked, node)
		s.mu.Unlock()
	} else if node.Tag == "notification" {
		s.mu.Lock()
		if dev.notes == nil {
			dev.notes = map[string]struct{}{}
		}
		dev.notes[node.AttrGetter().OptionalString("id")] = struct{}{}
		s.mu.Unlock()
	}
	return c.send(node)
}

// ExpireOfflineNotifications drops the notifications waiting for the
// account's offline linked devices, as WhatsApp does when a device stays
// away longer than it keeps them (messages stay queued). It returns how
// many were dropped.
func (s *Server) ExpireOfflineNotifications(phone string) int {
	acc, err := s.account(phone)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped := 0
	for _, d := range acc.devices {
		if d.conn != nil && d.conn.ready {
			continue
		}
		kept := d.pending[:0]
		for _, n := range d.pending {
			if n.Tag == "notification" {
				dropped++
			} else {
				kept = append(kept, n)
			}
		}
		d.pending = kept
	}
	return dropped
}

// UnackedNotifications counts the notifications that connected devices
// have not acknowledged yet: whatsmeow acknowledges one once its handlers
// returned, so tests wait for 0 before disconnecting a client.
func (s *Server) UnackedNotifications() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, acc := range s.accounts {
		for _, d := range acc.devices {
			if d.conn != nil {
				n += len(d.notes)
			}
		}
	}
	return n
}

// acked forgets a message the device acknowledged.
func (s *Server) acked(dev *companion, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range dev.unacked {
		if n.AttrGetter().OptionalString("id") == id {
			dev.unacked = append(dev.unacked[:i:i], dev.unacked[i+1:]...)
			return
		}
	}
}

// detach forgets a closed connection.
func (s *Server) detach(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ref, r := range s.qrRefs {
		if r.conn == c {
			delete(s.qrRefs, ref)
		}
	}
	for phone, cp := range s.codePairs {
		if cp.conn == c {
			delete(s.codePairs, phone)
		}
	}
	if c.device != nil && c.device.conn == c {
		c.device.conn = nil
	}
}

func serverJID() types.JID { return types.ServerJID }
