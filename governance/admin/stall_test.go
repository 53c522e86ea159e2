package admin_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// stallFor is how long the stalled export client reads nothing: longer than
// SQLite's 5 s busy timeout by default; the acceptance of issue 7 runs it
// with -admin.stall=60s.
var stallFor = flag.Duration("admin.stall", 6*time.Second, "how long the stalled export client reads nothing")

// smallBuffers shrinks the socket buffers of conn, so that a response the
// client does not read fills them after a few kilobytes and the server
// blocks in a write.
func smallBuffers(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(4096)
		_ = tcp.SetWriteBuffer(4096)
	}
}

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		smallBuffers(conn)
	}
	return conn, err
}

// apiServer serves the admin API over real loopback TCP with small socket
// buffers; closed receives once for every connection the server closes.
func apiServer(t *testing.T, gv *admin.Governance) (srv *httptest.Server, client *http.Client, closed chan struct{}) {
	closed = make(chan struct{}, 16)
	srv = httptest.NewUnstartedServer(gv.APIHandler())
	srv.Listener = smallBufferListener{srv.Listener}
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	dialer := &net.Dialer{}
	client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			smallBuffers(conn)
		}
		return conn, err
	}}}
	return srv, client, closed
}

func startExport(t *testing.T, srv *httptest.Server, client *http.Client, format audit.Format) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+admin.APIPrefix+"export/log?format="+string(format), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: HTTP %d", resp.StatusCode)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// TestStalledExportClientDoesNotBlockTheBridge: an admin API client that
// starts an audit log export and then reads nothing holds no lock: while it
// stalls, audit appends finish within a second and a message from outside
// (whose bridging appends to the log) reaches Matrix; once it reads again,
// its export is whole and verifies. A client that stalls longer than the
// write timeout is cut off.
func TestStalledExportClientDoesNotBlockTheBridge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello")
		e.waitBodies(e.bob, "hello")
		r.waitAudit(t, audit.ActionPortalCreated, string(e.portalKey(e.bob).ID))
		// Enough entries for several hundred kilobytes of export: far more
		// than the socket buffers hold.
		for i := 0; i < audit.PageSize+200; i++ {
			if _, err := r.gv.Audit.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionFirstContact, Network: "telegram",
				Contact: "telegram.1", Details: audit.Details(map[string]any{"padding": "an export of a busy log is long"})}); err != nil {
				t.Fatal(err)
			}
		}
		r.gv.APIWriteTimeout = *stallFor + 30*time.Second
		srv, client, closed := apiServer(t, r.gv)
		resp := startExport(t, srv, client, audit.FormatJSON)
		head, err := r.gv.Audit.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}

		// The client reads nothing now.
		stallEnd := time.Now().Add(*stallFor)
		sent := []string{"hello"}
		for i := 0; time.Now().Before(stallEnd); i++ {
			start := time.Now()
			_, err := r.gv.Audit.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionAdminAction, Details: audit.Details(map[string]any{"during": "stall"})})
			if took := time.Since(start); err != nil || took > time.Second {
				t.Fatalf("audit append while an export client stalls took %v: %v", took, err)
			}
			if i%10 == 0 {
				text := "still bridged " + time.Now().Format(time.StampMilli)
				e.send(e.bob, text)
				sent = append(sent, text)
				e.waitBodies(e.bob, sent...)
			}
			select {
			case <-closed:
				t.Fatal("the server closed the stalled connection before its write timeout")
			case <-time.After(100 * time.Millisecond): // pace the appends through the stall
			}
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the export after the stall: %v", err)
		}
		exp, err := audit.ParseExport(bytes.NewReader(body), audit.FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		if exp.Trailer == nil || exp.Trailer.Head.Seq < head.Seq || int64(len(exp.Entries)) != exp.Trailer.Head.Seq {
			t.Fatalf("export after the stall: %d entries, trailer %+v, head when it started %d", len(exp.Entries), exp.Trailer, head.Seq)
		}
		if rep := audit.VerifyEntries(exp.Entries); !rep.OK() || exp.Entries[len(exp.Entries)-1].Hash != exp.Trailer.Head.Hash {
			t.Fatalf("export after the stall does not verify: %v", rep.Err())
		}

		// With a short write timeout, a client that stops reading is cut
		// off, and its export has no trailer.
		r.gv.APIWriteTimeout = time.Second
		resp = startExport(t, srv, client, audit.FormatCSV)
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatal("the server never cut off a client that read nothing")
		}
		body, _ = io.ReadAll(resp.Body)
		if exp, err := audit.ParseExport(bytes.NewReader(body), audit.FormatCSV); err == nil && exp.Trailer != nil {
			t.Fatalf("an export cut off by the write timeout has its trailer (%d entries)", len(exp.Entries))
		}
	})
}
