package tgsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/log/logzap"
	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/transport"
	"go.uber.org/zap"
)

// Options configures a Server.
type Options struct {
	// Addr is the TCP listen address, "127.0.0.1:0" by default. It must be a
	// loopback address.
	Addr string
	// Key is the server RSA key; a 2048-bit key is generated if nil.
	Key *rsa.PrivateKey
	// DC is the data centre ID the server claims to be, 2 by default.
	DC int
	// FixedCode, if set, is the login code issued by every auth.sendCode
	// (for demos); otherwise codes are five random digits.
	FixedCode string
	// Logger receives the simulator's logs; nil means no logs.
	Logger *zap.Logger
}

// ErrClosed is returned by calls made after the server was closed.
var ErrClosed = errors.New("tgsim: server closed")

const (
	defaultAddr    = "127.0.0.1:0"
	defaultDC      = 2
	defaultCodeTTL = 5 * time.Minute
	defaultQRTTL   = 30 * time.Second
	// readTimeout closes connections that send nothing, pings included, for
	// this long. gotd pings every minute.
	readTimeout  = 3 * time.Minute
	writeTimeout = 10 * time.Second
)

// Server is a fake Telegram data centre listening on a loopback TCP socket.
// All its methods are safe for concurrent use.
type Server struct {
	log       *zap.Logger
	dc        int
	fixedCode string
	key       *rsa.PrivateKey
	ln        net.Listener
	addr      *net.TCPAddr
	mt        *tgtest.Server
	disp      *tg.ServerDispatcher
	files     *fileStore

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    chan struct{}
	closeOnce sync.Once
	nextConn  atomic.Uint64

	mu sync.Mutex
	st state // guarded by mu

	beforeAnswer atomic.Pointer[func(account int64, method string)]
}

// New creates a server and starts listening and serving immediately. Stop it
// with Close (or by cancelling the context given to Serve).
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = defaultAddr
	}
	if err := checkLoopback(opts.Addr); err != nil {
		return nil, err
	}
	if port, ok := strings.CutPrefix(opts.Addr, "localhost:"); ok {
		opts.Addr = "127.0.0.1:" + port // never let "localhost" pick ::1 behind our back
	}
	if opts.DC == 0 {
		opts.DC = defaultDC
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Key == nil {
		k, err := rsa.GenerateKey(rand.Reader, crypto.RSAKeyBits)
		if err != nil {
			return nil, fmt.Errorf("failed to generate server key: %w", err)
		}
		opts.Key = k
	}

	files, err := newFileStore()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		files.close()
		return nil, fmt.Errorf("failed to listen on %s: %w", opts.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		log:       opts.Logger,
		dc:        opts.DC,
		fixedCode: opts.FixedCode,
		key:       opts.Key,
		ln:        ln,
		addr:      ln.Addr().(*net.TCPAddr),
		ctx:       ctx,
		cancel:    cancel,
		closed:    make(chan struct{}),
		files:     files,
		st:        newState(),
	}
	// tgtest logs every connection at info level: keep only its warnings.
	mtLog := opts.Logger.Named("mtproto").WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	s.mt = tgtest.NewServer(tgtest.NewPrivateKey(opts.Key), tgtest.HandlerFunc(s.onMessage), tgtest.ServerOptions{
		DC:           opts.DC,
		Logger:       logzap.New(mtLog),
		ReadTimeout:  readTimeout,
		WriteTimeout: writeTimeout,
	})
	s.disp = s.newDispatcher()

	s.wg.Add(1)
	go s.acceptLoop()
	s.log.Info("Telegram simulator listening", zap.String("addr", s.Addr()), zap.Int("dc", s.dc))
	return s, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q is not a loopback address", addr)
}

// Serve blocks until ctx is cancelled or Close is called, then closes the
// server. The server already serves from New on: calling Serve is optional.
func (s *Server) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-s.closed:
	}
	return s.Close()
}

// Close stops listening, drops every connection and waits for the server's
// goroutines to finish. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		_ = s.ln.Close()
		s.mu.Lock()
		conns := make([]*conn, 0, len(s.st.conns))
		for c := range s.st.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
		s.wg.Wait()
		s.files.close()
		s.log.Info("Telegram simulator stopped")
	})
	return nil
}

func (s *Server) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Addr returns the listen address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr.String() }

// DC returns the data centre ID the server claims to be.
func (s *Server) DC() int { return s.dc }

// PublicKey returns the server public key, for telegram.Options.PublicKeys.
func (s *Server) PublicKey() telegram.PublicKey {
	return telegram.PublicKey{RSA: &s.key.PublicKey}
}

// PublicKeyPEM returns the server public key as a PKCS#1 "RSA PUBLIC KEY" PEM
// block, so that a separate process can be configured with it.
func (s *Server) PublicKeyPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{
		Type:  "RSA PUBLIC KEY",
		Bytes: x509.MarshalPKCS1PublicKey(&s.key.PublicKey),
	}))
}

// ParsePublicKeyPEM parses the first PEM block of a PKCS#1 or PKIX RSA public
// key, as returned by PublicKeyPEM.
func ParsePublicKeyPEM(data string) (telegram.PublicKey, error) {
	keys, err := crypto.ParseRSAPublicKeys([]byte(data))
	if err != nil {
		return telegram.PublicKey{}, fmt.Errorf("failed to parse public key: %w", err)
	}
	if len(keys) == 0 {
		return telegram.PublicKey{}, errors.New("failed to parse public key: no PEM block found")
	}
	return telegram.PublicKey{RSA: keys[0]}, nil
}

// DCOption returns the DC option that points at the server.
func (s *Server) DCOption() tg.DCOption {
	return tg.DCOption{
		ID:        s.dc,
		IPAddress: s.addr.IP.String(),
		Port:      s.addr.Port,
		Static:    true,
		Ipv6:      s.addr.IP.To4() == nil,
	}
}

// ClientOptions returns what a gotd client needs to reach the server: DC,
// DCList, PublicKeys and a plain Intermediate-transport Resolver. Callers add
// SessionStorage, UpdateHandler, Logger and so on.
func (s *Server) ClientOptions() telegram.Options {
	return telegram.Options{
		DC:         s.dc,
		DCList:     dcs.List{Options: []tg.DCOption{s.DCOption()}},
		PublicKeys: []telegram.PublicKey{s.PublicKey()},
		Resolver:   dcs.Plain(dcs.PlainOptions{Protocol: transport.Intermediate}),
	}
}

// ClientOptionsFor is ClientOptions for a process that only knows the
// server's address ("127.0.0.1:port"), DC and PublicKeyPEM: a gateway run as
// a separate process.
func ClientOptionsFor(addr string, dc int, publicKeyPEM string) (telegram.Options, error) {
	key, err := ParsePublicKeyPEM(publicKeyPEM)
	if err != nil {
		return telegram.Options{}, err
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return telegram.Options{}, fmt.Errorf("invalid address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return telegram.Options{}, fmt.Errorf("invalid port in %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return telegram.Options{}, fmt.Errorf("address %q must be an IP address", addr)
	}
	return telegram.Options{
		DC: dc,
		DCList: dcs.List{Options: []tg.DCOption{{
			ID: dc, IPAddress: ip.String(), Port: port, Static: true, Ipv6: ip.To4() == nil,
		}}},
		PublicKeys: []telegram.PublicKey{key},
		Resolver:   dcs.Plain(dcs.PlainOptions{Protocol: transport.Intermediate}),
	}, nil
}

// acceptLoop hands every TCP connection to its own tgtest Serve call, so that
// the request context identifies the connection: that is how the simulator
// knows which sessions are online and which connection they use.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if !s.isClosed() {
				s.log.Warn("Failed to accept connection", zap.Error(err))
			}
			return
		}
		ctx, cancel := context.WithCancel(s.ctx)
		c := &conn{Conn: nc, srv: s, id: s.nextConn.Add(1), cancel: cancel}
		s.mu.Lock()
		if s.isClosed() {
			s.mu.Unlock()
			cancel()
			_ = nc.Close()
			return
		}
		s.st.conns[c] = struct{}{}
		s.mu.Unlock()

		ctx = context.WithValue(ctx, connKey{}, c)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			l := &oneConnListener{conn: c, done: make(chan struct{})}
			if err := s.mt.Serve(ctx, transport.ListenCodec(nil, l)); err != nil && ctx.Err() == nil {
				s.log.Debug("Connection serve error", zap.Uint64("conn", c.id), zap.Error(err))
			}
		}()
	}
}

type connKey struct{}

// conn is one client TCP connection.
type conn struct {
	net.Conn
	srv    *Server
	id     uint64
	cancel context.CancelFunc
	closed atomic.Bool
}

// Close closes the socket and forgets the sessions that used it. tgtest calls
// it when its read loop ends, which is how client disconnects are noticed.
func (c *conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := c.Conn.Close()
	c.cancel()
	c.srv.connClosed(c)
	return err
}

func (c *conn) String() string { return strconv.FormatUint(c.id, 10) }

// oneConnListener is a net.Listener that yields a single connection, then
// blocks until closed.
type oneConnListener struct {
	conn     net.Conn
	accepted atomic.Bool
	done     chan struct{}
	once     sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.accepted.CompareAndSwap(false, true) {
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
