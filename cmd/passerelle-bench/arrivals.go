package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
)

// maxArrivals bounds an arrivalLog between two resets.
const maxArrivals = 1_000_000

// arrivalLog notes when each of a set of keys (event IDs, message bodies)
// first arrived somewhere, in Unix microseconds of this machine's clock.
type arrivalLog struct {
	mu sync.Mutex
	at map[string]int64
}

func (a *arrivalLog) record(key string, atUs int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at == nil {
		a.at = map[string]int64{}
	}
	if _, ok := a.at[key]; !ok && len(a.at) < maxArrivals {
		a.at[key] = atUs
	}
}

// recordTransaction notes the events of an appservice transaction (its
// JSON body) as arrived now.
func (a *arrivalLog) recordTransaction(body []byte) {
	now := time.Now().UnixMicro()
	var txn struct {
		Events []struct {
			EventID string `json:"event_id"`
		} `json:"events"`
	}
	if json.Unmarshal(body, &txn) != nil {
		return
	}
	for _, ev := range txn.Events {
		if ev.EventID != "" {
			a.record(ev.EventID, now)
		}
	}
}

func (a *arrivalLog) get(key string) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[key]
	return t, ok
}

func (a *arrivalLog) reset() {
	a.mu.Lock()
	a.at = nil
	a.mu.Unlock()
}

// txnProxy stands between the homeserver and a bridge's appservice
// listener: the homeserver's registration points at it, it notes when each
// transaction's events arrived and passes the request on unchanged. Its
// arrival time is the "transaction in" of the Matrix→remote added latency;
// passing on costs it a loopback round trip, counted in that latency.
type txnProxy struct {
	ln       net.Listener
	srv      *http.Server
	arrivals arrivalLog
	mu       sync.Mutex
	rp       *httputil.ReverseProxy
	// answers are how long the bridge took to answer each transaction,
	// in milliseconds, since the last reset (bounded). The homeserver
	// sends a bridge its next transaction only once it answered the last:
	// a slow answer holds every later event back.
	answers []float64
}

// resetAnswers forgets the transactions' answer times.
func (p *txnProxy) resetAnswers() {
	p.mu.Lock()
	p.answers = nil
	p.mu.Unlock()
}

// answerTimes are the answer times since the last reset, sorted.
func (p *txnProxy) answerTimes() []float64 {
	p.mu.Lock()
	out := append([]float64(nil), p.answers...)
	p.mu.Unlock()
	sort.Float64s(out)
	return out
}

func newTxnProxy() (*txnProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &txnProxy{ln: ln}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is where the homeserver is to send the transactions.
func (p *txnProxy) URL() string { return "http://" + p.ln.Addr().String() }

// patch points the bridge's registration at the proxy and the proxy at
// the bridge's listener (appservice.port), in the bridge's config before
// its registration is generated.
func (p *txnProxy) patch(doc *stack.YAMLDoc) error {
	var port int
	if err := doc.Get("appservice.port", &port); err != nil || port == 0 {
		return fmt.Errorf("no appservice.port in the config to proxy to: %v", err)
	}
	target, err := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.rp = httputil.NewSingleHostReverseProxy(target)
	p.mu.Unlock()
	return doc.Set("appservice.address", p.URL())
}

func (p *txnProxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	rp := p.rp
	p.mu.Unlock()
	if rp == nil {
		http.Error(w, "no target", http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/transactions/") {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.arrivals.recordTransaction(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		began := time.Now()
		rp.ServeHTTP(w, r)
		took := float64(time.Since(began).Microseconds()) / 1000
		p.mu.Lock()
		if len(p.answers) < maxArrivals {
			p.answers = append(p.answers, took)
		}
		p.mu.Unlock()
		return
	}
	rp.ServeHTTP(w, r)
}

func (p *txnProxy) close() {
	_ = p.srv.Close()
}
