package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/passerelle/passerelle/internal/clock"
)

// HomeserverCacheFor is how long one answer of the homeserver check is
// reused by /ready.
const HomeserverCacheFor = 5 * time.Second

// checkTimeout bounds each check of /ready.
const checkTimeout = 3 * time.Second

// Checks are what /ready asks.
type Checks struct {
	// Homeserver asks the homeserver something cheap
	// (/_matrix/client/versions); its answer is cached HomeserverCacheFor.
	Homeserver func(ctx context.Context) error
	// Database pings the database.
	Database func(ctx context.Context) error
	// Logins lists the logins with their states, and Networks the enabled
	// networks: each network gets a summary in /ready's body.
	Logins   LoginSource
	Networks []string
}

// Server serves /metrics, /health, /ready and /homeserver.
type Server struct {
	Metrics *Metrics
	Checks  Checks
	Clock   clock.Clock
	// Profiling serves Go's profiler under /debug/pprof/.
	Profiling bool
	// Capabilities is /homeserver's body: what the homeserver can do for
	// the gateway's features; false until it is known (503).
	Capabilities func() (any, bool)

	running atomic.Bool

	hsMu  sync.Mutex
	hsAt  time.Time // guarded by hsMu
	hsErr error     // guarded by hsMu

	srv *http.Server
	ln  net.Listener
}

// ErrRemoteListen refuses an address other machines can reach.
var ErrRemoteListen = errors.New("metrics listener is not on a loopback address")

// CheckListen refuses a listen address that is not loopback (an empty host
// listens on every interface), unless allowRemote.
func CheckListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid metrics listen address %q: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q (use 127.0.0.1 or ::1, or set allow_remote: true and protect it)", ErrRemoteListen, addr)
}

// SetRunning says whether the gateway runs its main loop (/health).
func (s *Server) SetRunning(running bool) { s.running.Store(running) }

// Handler is the HTTP handler of the endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /ready", s.ready)
	if s.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /homeserver", s.capabilities)
	return mux
}

// Listen starts serving on addr.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen for metrics on %s: %w", addr, err)
	}
	s.ln = ln
	write := 30 * time.Second
	if s.Profiling {
		// A CPU profile answers after its seconds.
		write = 5 * time.Minute
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: write}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Addr is the address it listens on (after Listen).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops serving.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.running.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not running\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// CheckResult is one check in /ready's body.
type CheckResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Readiness is /ready's body.
type Readiness struct {
	Ready  bool                   `json:"ready"`
	Checks map[string]CheckResult `json:"checks"`
	// Logins counts each enabled network's logins by state.
	Logins map[string]map[string]int `json:"logins"`
}

// Ready runs the checks.
func (s *Server) Ready(ctx context.Context) Readiness {
	r := Readiness{Ready: true, Checks: map[string]CheckResult{}}
	set := func(name string, err error) {
		if err != nil {
			r.Ready = false
			r.Checks[name] = CheckResult{Error: err.Error()}
			return
		}
		r.Checks[name] = CheckResult{OK: true}
	}
	// Not ready before the gateway runs its main loop (the appservice
	// answers the homeserver) nor once it is stopping.
	if s.running.Load() {
		set("gateway", nil)
	} else {
		set("gateway", errors.New("the gateway is starting or stopping"))
	}
	set("homeserver", s.homeserver(ctx))
	set("database", s.check(ctx, s.Checks.Database))
	var logins []LoginState
	if s.Checks.Logins != nil {
		logins = s.Checks.Logins()
	}
	r.Logins = LoginSummary(logins, s.Checks.Networks)
	unknown := 0
	for _, l := range logins {
		if l.State == LoginUnknown {
			unknown++
		}
	}
	if unknown > 0 {
		set("logins", fmt.Errorf("%d login(s) have not reported a state yet", unknown))
	} else {
		set("logins", nil)
	}
	return r
}

func (s *Server) check(ctx context.Context, f func(context.Context) error) error {
	if f == nil {
		return errors.New("not configured")
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	return f(ctx)
}

func (s *Server) homeserver(ctx context.Context) error {
	now := clock.Or(s.Clock).Now()
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	if !s.hsAt.IsZero() && now.Sub(s.hsAt) < HomeserverCacheFor {
		return s.hsErr
	}
	// Held under hsMu: concurrent /ready calls wait for one request
	// rather than each sending their own (checkTimeout bounds it).
	s.hsErr = s.check(ctx, s.Checks.Homeserver)
	s.hsAt = now
	return s.hsErr
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	res := s.Ready(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if !res.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(res)
}

func (s *Server) capabilities(w http.ResponseWriter, _ *http.Request) {
	var body any
	ok := false
	if s.Capabilities != nil {
		body, ok = s.Capabilities()
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "homeserver capabilities not detected yet"})
		return
	}
	_ = json.NewEncoder(w).Encode(body)
}
