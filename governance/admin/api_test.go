package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestAdminAPIProxiesAndCallers: a request through a proxy (X-Forwarded-For
// or Forwarded) only looks loopback, so it is refused unless
// api.trust_forwarded; then the client the proxy names must be loopback
// (without allow_remote). Every call's audit entry names its caller, by
// address and token fingerprint, never by token.
func TestAdminAPIProxiesAndCallers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		h := r.gv.APIHandler()
		auth := "Bearer " + apiToken
		xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
		fwd := func(v string) http.Header { return http.Header{"Forwarded": {v}} }
		for _, c := range []struct {
			name   string
			trust  bool
			header http.Header
			want   int
			client string
		}{
			{"X-Forwarded-For, untrusted", false, xff("127.0.0.1"), 403, ""},
			{"Forwarded, untrusted", false, fwd("for=127.0.0.1"), 403, ""},
			{"empty X-Forwarded-For, untrusted", false, xff(""), 403, ""},
			{"trusted proxy, remote client", true, xff("127.0.0.1, 198.51.100.4"), 403, ""},
			{"trusted proxy, Forwarded remote client", true, fwd(`for="[2001:db8::1]:443";proto=https`), 403, ""},
			{"trusted proxy, no client named", true, xff(""), 403, ""},
			{"trusted proxy, loopback client", true, xff("198.51.100.4, 127.0.0.1"), 200, "127.0.0.1"},
			{"trusted proxy, Forwarded loopback client", true, fwd("for=192.0.2.9, for=127.0.0.1"), 200, "127.0.0.1"},
			{"direct, trusted proxy set", true, nil, 200, ""},
		} {
			r.gv.Config().API.TrustForwarded = c.trust
			before, _ := r.gv.Audit.Head(ctx)
			rec := apiGetWith(h, "head", "127.0.0.1:40000", auth, c.header)
			if rec.Code != c.want {
				t.Errorf("%s: HTTP %d, want %d: %s", c.name, rec.Code, c.want, rec.Body)
				continue
			}
			after, _ := r.gv.Audit.Head(ctx)
			if c.want != 200 {
				if after.Seq != before.Seq {
					t.Errorf("%s: a refused call wrote to the audit log", c.name)
				}
				continue
			}
			entries, err := r.gv.Audit.List(ctx, audit.Filter{Descending: true, Limit: 1})
			if err != nil || len(entries) != 1 {
				t.Fatal(err)
			}
			var details struct {
				Caller struct {
					RemoteAddr       string `json:"remote_addr"`
					Client           string `json:"client"`
					TokenFingerprint string `json:"token_fingerprint"`
				} `json:"caller"`
			}
			if err = json.Unmarshal(entries[0].Details, &details); err != nil {
				t.Fatal(err)
			}
			if details.Caller.RemoteAddr != "127.0.0.1:40000" || details.Caller.Client != c.client ||
				details.Caller.TokenFingerprint != admin.TokenFingerprint(apiToken) || !strings.HasPrefix(details.Caller.TokenFingerprint, "sha256:") {
				t.Errorf("%s: caller in the audit log: %+v", c.name, details.Caller)
			}
			if strings.Contains(string(entries[0].Details), apiToken) {
				t.Errorf("%s: the audit log holds the token: %s", c.name, entries[0].Details)
			}
		}
	})
}

// TestAdminAPILogPages: GET log gives a page of at most the limit (capped),
// with a Link to the next page by sequence number, until the last.
func TestAdminAPILogPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		for i := 0; i < 25; i++ {
			if _, err := r.gv.Audit.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionFirstContact}); err != nil {
				t.Fatal(err)
			}
		}
		h := r.gv.APIHandler()
		auth := "Bearer " + apiToken
		if rec := apiGet(h, "log?limit="+strconv.Itoa(admin.MaxLogPage+1), "127.0.0.1:5000", auth); rec.Code != 400 {
			t.Errorf("a limit over the maximum: HTTP %d", rec.Code)
		}
		var seen []int64
		path := "log?action=first_contact&limit=10"
		for pages := 0; path != ""; pages++ {
			if pages > 5 {
				t.Fatal("the pages never end")
			}
			rec := apiGet(h, path, "127.0.0.1:5000", auth)
			if rec.Code != 200 {
				t.Fatalf("%s: HTTP %d %s", path, rec.Code, rec.Body)
			}
			entries, err := audit.ParseEntries(rec.Body, audit.FormatJSON)
			if err != nil || len(entries) > 10 {
				t.Fatalf("%s: %d entries, %v", path, len(entries), err)
			}
			for _, e := range entries {
				seen = append(seen, e.Seq)
			}
			path = ""
			if link := rec.Header().Get("Link"); link != "" {
				next, _, _ := strings.Cut(strings.TrimPrefix(link, "<"), ">")
				path = strings.TrimPrefix(next, admin.APIPrefix)
			}
		}
		if len(seen) != 25 {
			t.Errorf("paged through %d entries, want 25: %v", len(seen), seen)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] <= seen[i-1] {
				t.Errorf("pages out of order: %v", seen)
			}
		}
	})
}

// TestHeadPublished: the gate posts the chain head in the admin room once
// audit_anchor_interval has passed (by its clock), and on gov-head; a head
// posted earlier checks out with gov-verify, and stops checking out once the
// chain is cut back before it; gov-log pages backwards.
func TestHeadPublished(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) { cfg.AuditAnchorInterval = gate.Duration(gate.DefaultAuditAnchorInterval) })
		e.anchorCheck = 20 * time.Millisecond
		r := e.start()
		for i := 0; i < 3; i++ {
			if _, err := r.gv.Audit.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionFirstContact}); err != nil {
				t.Fatal(err)
			}
		}
		e.clk.Advance(gate.DefaultAuditAnchorInterval + time.Minute)
		r.waitAuditAction(t, audit.ActionHeadPublished)
		notice := e.waitNotice(e.adminRoom(), "Audit chain head")
		published, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionHeadPublished}})
		var rec struct {
			Seq  int64  `json:"head_seq"`
			Hash string `json:"head_hash"`
		}
		if len(published) != 1 || json.Unmarshal(published[0].Details, &rec) != nil || !strings.Contains(notice.Content.Body, rec.Hash) ||
			rec.Seq != published[0].Seq-1 {
			t.Fatalf("published: %+v; notice %q", published, notice.Content.Body)
		}
		// Not again until the interval has passed once more.
		if n := len(e.mx.Messages()); poll(200*time.Millisecond, func() bool { return len(e.mx.Messages()) > n }) {
			t.Error("the head was posted again before the interval passed")
		}

		out := r.command(t, e, adminMXID, e.adminRoom(), "gov-verify "+strconv.FormatInt(rec.Seq, 10)+" "+rec.Hash)
		if !strings.Contains(out, "still holds the published head") {
			t.Errorf("gov-verify against the published head: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-head")
		if !strings.Contains(out, "Audit chain head:** entry") && !strings.Contains(out, "Audit chain head: entry") {
			t.Errorf("gov-head: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-log 2")
		if !strings.Contains(out, "head_published") || !strings.Contains(out, "before") {
			t.Errorf("gov-log 2: %q", out)
		}

		// Cut the chain back before the published head, out of band.
		if _, err := r.gv.DB.Exec(ctx, "DELETE FROM governance_audit_log WHERE seq >= $1", rec.Seq); err != nil {
			t.Fatal(err)
		}
		if _, err := r.gv.DB.Exec(ctx, "UPDATE governance_audit_head SET last_seq = $1, last_hash = (SELECT hash FROM governance_audit_log WHERE seq = $1) WHERE id = 0", rec.Seq-1); err != nil {
			t.Fatal(err)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-verify "+strconv.FormatInt(rec.Seq, 10)+" "+rec.Hash)
		// (gov-verify logs itself first: the entry at the published
		// sequence number is now another one.)
		if !strings.Contains(out, "does not verify") || !strings.Contains(out, fmt.Sprintf("entry %d: published", rec.Seq)) {
			t.Errorf("gov-verify of a truncated chain against the published head: %q", out)
		}
	})
}
