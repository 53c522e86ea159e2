package admin_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// hashKey is contact_hash_key in the hashed-mode tests.
const hashKey = "a hash key of at least thirty-two bytes"

func hashedApproval(network string) func(*gate.Config) {
	return func(cfg *gate.Config) {
		cfg.ContactHashKey = hashKey
		cfg.Policy.Modes = map[string]policy.Mode{network: policy.ModeApproval}
	}
}

// TestHashedModeWhatsApp: with contact_hash_key set, the governance flows
// on WhatsApp (held messages, approval with delivery into the right portal,
// denial, a revoked portal refusing a message, restore, a refused start of
// chat, gov-* outputs and exports) leave no phone number in any governance
// table, audit export or admin-room message.
func TestHashedModeWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, hashedApproval(policy.NetworkWhatsApp))
		r := w.start()
		login := w.loginStaff(r)

		// Held, then approved: delivered into Bob's portal.
		w.send(waBob, "one")
		w.send(waBob, "two")
		notice := w.waitNotice(w.adminRoom(), "request #1")
		if !strings.Contains(notice.Content.Body, "Bob") || !strings.Contains(notice.Content.Body, r.gv.ShownPortal(w.portalKey(waBob).ID)) {
			t.Errorf("request notice names neither Bob nor the portal's pseudonym:\n%s", notice.Content.Body)
		}
		if !r.mx.Eventually(20*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 2
		}) {
			t.Fatal("the two messages were not held")
		}
		r.command(t, w.env, adminMXID, w.adminRoom(), "gov-requests")
		// While they are held: the held events (WhatsApp JIDs and text) too.
		held := dumpGovernanceTables(t, r.br.DB.Database)
		if msgs, err := r.gv.Approvals.Held(ctx, 1); err != nil || len(msgs) != 2 || !strings.Contains(held["table governance_approval_held"], "payload=") {
			t.Errorf("held events: %d, %v; dumped: %q", len(msgs), err, held["table governance_approval_held"])
		}
		checkTexts(t, held, waAlice, waBob, waCarol)
		if out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-approve 1"); !strings.Contains(out, "2 held message(s) delivered") {
			t.Fatalf("gov-approve: %q", out)
		}
		got := w.waitBodiesFrom(waBob, "one", "two")
		portal, err := r.br.GetExistingPortalByKey(ctx, w.portalKey(waBob))
		if err != nil || portal == nil || portal.MXID == "" || got[0].RoomID != portal.MXID || got[1].RoomID != portal.MXID {
			t.Fatalf("held messages went to %s and %s, Bob's portal is %+v (%v)", got[0].RoomID, got[1].RoomID, portal, err)
		}

		// Held, then denied (with a number in the reason): nothing arrives,
		// and starting a chat with that number is refused.
		w.send(waCarol, "hello from the UK")
		w.waitNotice(w.adminRoom(), "request #2")
		if out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-deny 2 she called from +44 7700 900123"); !strings.Contains(out, "Request #2 denied") {
			t.Fatalf("gov-deny: %q", out)
		}
		_, err = login.Client.(bridgev2.IdentifierResolvingNetworkAPI).ResolveIdentifier(ctx, "+"+waCarol, true)
		var resp bridgev2.RespError
		if !errors.As(err, &resp) || resp.StatusCode != 403 {
			t.Errorf("start chat with a denied number: %v", err)
		}

		// Revoked by its pseudonym: a message is refused; restored: it leaves.
		shown := r.gv.ShownPortal(portal.ID)
		if out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-revoke "+shown+" revoked for +1 555 000 2222"); !strings.Contains(out, "Revoked `"+shown+"`") {
			t.Fatalf("gov-revoke by pseudonym: %q", out)
		}
		r.sendMatrix(portal.MXID, "$refused", "this must not leave")
		w.waitNotice(portal.MXID, "An admin revoked this chat")
		if out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-restore "+shown); !strings.Contains(out, "Restored") {
			t.Fatalf("gov-restore by pseudonym: %q", out)
		}
		r.sendMatrix(portal.MXID, "$allowed", "after restore")
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err = w.srv.WaitMessage(wctx, waAlice, waBob, func(m wasim.Message) bool { return m.Text() == "after restore" }); err != nil {
			t.Fatalf("message after restore: %v", err)
		}
		for _, m := range w.srv.Messages() {
			if m.Text() == "this must not leave" {
				t.Error("a message of a revoked portal reached WhatsApp")
			}
		}
		// The registry still finds Bob by his number, and counts him.
		var found []audit.Contact
		if !r.mx.Eventually(10*time.Second, func() bool {
			found, err = r.gv.Contacts.List(ctx, audit.ContactFilter{Query: "+" + waBob})
			return err == nil && len(found) == 1 && found[0].MessagesIn == 2
		}) {
			t.Errorf("the registry does not find Bob by his number with his counts: %+v, %v", found, err)
		}

		exports := adminOutputs(t, r.running, w.env, shown)
		checkNoNumbers(t, r.running, w.env, exports, waAlice, waBob, waCarol)
	})
}

// TestHashedModeTelegram: the same on Telegram, whose user IDs (7 digits
// and more) are personal identifiers like phone numbers.
func TestHashedModeTelegram(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, hashedApproval(policy.NetworkTelegram))
		r := e.start()
		e.loginStaff(r)

		e.send(e.bob, "tg one")
		e.send(e.bob, "tg two")
		e.waitNotice(e.adminRoom(), "request #1")
		if !r.mx.Eventually(20*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 2
		}) {
			t.Fatal("the two messages were not held")
		}
		var known []string
		for _, acc := range []struct {
			id    int64
			phone string
		}{{e.alice.ID, e.alice.Phone}, {e.bob.ID, e.bob.Phone}, {e.carol.ID, e.carol.Phone}} {
			known = append(known, strconv.FormatInt(acc.id, 10), acc.phone)
		}
		held := dumpGovernanceTables(t, r.br.DB.Database)
		if msgs, err := r.gv.Approvals.Held(ctx, 1); err != nil || len(msgs) != 2 || !strings.Contains(held["table governance_approval_held"], "payload=") {
			t.Errorf("held events: %d, %v; dumped: %q", len(msgs), err, held["table governance_approval_held"])
		}
		checkTexts(t, held, known...)
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-approve 1"); !strings.Contains(out, "2 held message(s) delivered") {
			t.Fatalf("gov-approve: %q", out)
		}
		got := e.waitBodies(e.bob, "tg one", "tg two")
		portal, err := r.br.GetExistingPortalByKey(ctx, e.portalKey(e.bob))
		if err != nil || portal == nil || portal.MXID == "" || got[0].RoomID != portal.MXID || got[1].RoomID != portal.MXID {
			t.Fatalf("held messages went to %s and %s, Bob's portal is %+v (%v)", got[0].RoomID, got[1].RoomID, portal, err)
		}

		e.send(e.carol, "tg hello")
		e.waitNotice(e.adminRoom(), "request #2")
		if out := r.command(t, e, adminMXID, e.adminRoom(), fmt.Sprintf("gov-deny 2 user %d", e.carol.ID)); !strings.Contains(out, "Request #2 denied") {
			t.Fatalf("gov-deny: %q", out)
		}
		shown := r.gv.ShownPortal(portal.ID)
		r.command(t, e, adminMXID, e.adminRoom(), "gov-revoke "+shown)
		r.command(t, e, adminMXID, e.adminRoom(), "gov-restore "+shown)

		exports := adminOutputs(t, r, e, shown)
		checkNoNumbers(t, r, e, exports, known...)
	})
}

// adminOutputs runs the admins' read commands (their replies land in the
// admin room) and returns the audit and contact exports, in CSV and JSON,
// as the admin API streams them.
func adminOutputs(t *testing.T, r *running, e *env, shownPortal string) map[string]string {
	t.Helper()
	for _, cmd := range []string{"gov-log 100", "gov-contacts", "gov-portals", "gov-portals " + shownPortal, "gov-requests", "gov-verify", "gov-head",
		"gov-export log csv", "gov-export log json", "gov-export contacts csv", "gov-export contacts json"} {
		if out := r.command(t, e, adminMXID, e.adminRoom(), cmd); strings.Contains(out, "failed") {
			t.Errorf("%s: %q", cmd, out)
		}
	}
	if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-portals "+shownPortal); !strings.Contains(out, "1 portal(s)") {
		t.Errorf("gov-portals by pseudonym: %q", out)
	}
	exports := map[string]string{}
	h := r.gv.APIHandler()
	for _, path := range []string{"export/log?format=csv", "export/log?format=json", "export/contacts?format=csv", "export/contacts?format=json", "log?limit=1000", "contacts"} {
		rec := apiGet(h, path, "127.0.0.1:1234", "Bearer "+apiToken)
		if rec.Code != 200 {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body.String())
		}
		exports["API "+path] = rec.Body.String()
	}
	var buf bytes.Buffer
	if err := r.gv.Audit.Export(context.Background(), &buf, audit.FormatJSON, audit.Filter{}); err != nil {
		t.Fatal(err)
	}
	for _, action := range []audit.Action{audit.ActionRequestApproved, audit.ActionRequestDenied, audit.ActionPortalRevoked, audit.ActionPortalAllowed, audit.ActionFirstContact} {
		if !strings.Contains(buf.String(), `"`+string(action)+`"`) {
			t.Errorf("the audit export lacks %s:\n%s", action, buf.String())
		}
	}
	return exports
}

// timestampColumns are the governance columns that hold unix milliseconds
// (13 digits): they are dumped as RFC 3339 times, so that only an
// identifier can make a run of digits.
var timestampColumns = map[string]bool{
	"ts": true, "created_at": true, "expires_at": true, "decided_at": true, "first_seen": true, "last_seen": true,
	"controlled_at": true, "revoked_at": true, "since": true, "added_at": true,
}

// notIdentifiers are masked before looking for runs of digits: SHA-256
// hashes of the audit chain (64 hex digits: a hash column, an export's hash
// fields and trailer, gov-head), the API token's fingerprint (hex: it has
// runs of decimal digits by chance), and RFC 3339 times (an export's
// exported_at has nanoseconds). Pseudonyms and sealed values are written
// with letters only and never have these forms. The known identifiers are
// looked for without masking anything.
var notIdentifiers = regexp.MustCompile(`\b[0-9a-f]{64}\b|sha256:[0-9a-f]{16}\b|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

var digitRun = regexp.MustCompile(`[0-9]{7,}`)

// checkNoNumbers dumps every governance table (every row and column, as
// text), takes the exports and the admin room's messages, and fails on a
// run of 7 or more digits anywhere, and on any of the known identifiers
// (which is checked without masking anything).
func checkNoNumbers(t *testing.T, r *running, e *env, exports map[string]string, known ...string) {
	t.Helper()
	texts := dumpGovernanceTables(t, r.br.DB.Database)
	for name, text := range exports {
		texts[name] = text
	}
	n := 0
	for _, m := range e.mx.Messages() {
		if m.RoomID == e.adminRoom() {
			n++
			texts[fmt.Sprintf("admin room message %d", n)] = m.Content.Body + "\n" + m.Content.FormattedBody
		}
	}
	if n < 10 {
		t.Errorf("only %d messages in the admin room", n)
	}
	checkTexts(t, texts, known...)
}

// checkTexts fails on a run of 7 or more digits in any of texts (after
// masking notIdentifiers), and on any of the known identifiers (without
// masking anything).
func checkTexts(t *testing.T, texts map[string]string, known ...string) {
	t.Helper()
	for name, text := range texts {
		for _, k := range known {
			if strings.Contains(text, k) {
				t.Errorf("%s holds the identifier %s:\n%s", name, k, text)
			}
		}
		if run := digitRun.FindString(notIdentifiers.ReplaceAllString(text, "<masked>")); run != "" {
			t.Errorf("%s holds the run of digits %s:\n%s", name, run, text)
		}
	}
}

// dumpGovernanceTables returns the text of every table whose name starts
// with governance_, one entry per table.
func dumpGovernanceTables(t *testing.T, db *dbutil.Database) map[string]string {
	t.Helper()
	ctx := context.Background()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'governance\_%' ESCAPE '\'`
	if db.Dialect == dbutil.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'governance\_%' ESCAPE '\'`
	}
	rows, err := db.Query(ctx, q)
	tables, err := dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[string], err).AsList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, table := range tables {
		out["table "+table] = dumpTable(t, db, table)
	}
	for _, want := range []string{"governance_approval_request", "governance_approval_held", "governance_audit_log", "governance_contact",
		"governance_contact_link", "governance_gate_portal", "governance_gate_login"} {
		if _, ok := out["table "+want]; !ok {
			t.Errorf("table %s not found among %q", want, tables)
		}
	}
	return out
}

func dumpTable(t *testing.T, db *dbutil.Database, table string) string {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err = rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			fmt.Fprintf(&b, "%s=%s ", cols[i], cellText(cols[i], v))
		}
		b.WriteString("\n")
	}
	if err = rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// cellText is a cell as text: bytes as they are (a held payload, sealed or
// not), integer timestamps as times, everything else as Go prints it.
func cellText(col string, v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(v)
	case int64:
		if timestampColumns[col] {
			return time.UnixMilli(v).UTC().Format(time.RFC3339Nano)
		}
		return strconv.FormatInt(v, 10)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case sql.RawBytes:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// TestHashedModeTurnedOnLater: contact_hash_key set on a gateway that ran
// without it. At start the gate seals what it and the approval store kept:
// a pending request is still approved and delivered into its portal, a
// denied chat stays denied (no new request), a revoked portal stays
// revoked, and those tables then hold no number. (The audit log and the
// contact registry keep what they wrote before: README.)
func TestHashedModeTurnedOnLater(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeApproval}
		})
		r := w.start()
		w.loginStaff(r)
		w.send(waCarol, "carol one")
		w.waitNotice(w.adminRoom(), "request #1")
		r.command(t, w.env, adminMXID, w.adminRoom(), "gov-approve 1")
		w.waitBodiesFrom(waCarol, "carol one")
		if out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-revoke whatsapp."+waCarol); !strings.Contains(out, "Revoked") {
			t.Fatalf("gov-revoke: %q", out)
		}
		w.send(waBob, "bob one")
		w.waitNotice(w.adminRoom(), "request #2")
		if !r.mx.Eventually(20*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 2)
			return err == nil && req.HeldCount == 1
		}) {
			t.Fatal("Bob's message was not held")
		}
		r.stop()

		w.configure = hashedApproval(policy.NetworkWhatsApp)
		r = w.start()
		w.waitConnected()
		if out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-approve 2"); !strings.Contains(out, "1 held message(s) delivered") {
			t.Fatalf("gov-approve after turning hashed mode on: %q", out)
		}
		got := w.waitBodiesFrom(waBob, "bob one")
		portal, err := r.br.GetExistingPortalByKey(ctx, w.portalKey(waBob))
		if err != nil || portal == nil || got[0].RoomID != portal.MXID {
			t.Fatalf("held message went to %s, Bob's portal is %+v (%v)", got[0].RoomID, portal, err)
		}
		// Carol's portal is still revoked: her message is dropped, and Bob's,
		// sent after it, arrives.
		w.send(waCarol, "carol two")
		w.send(waBob, "bob two")
		w.waitBodiesFrom(waBob, "bob one", "bob two")
		if got := w.bodiesFromPhone(waCarol); len(got) != 1 {
			t.Errorf("messages from Carol's revoked portal: %q", got)
		}
		if revoked, err := r.gv.PortalRevoked(ctx, w.portalKey(waCarol)); err != nil || !revoked {
			t.Errorf("Carol's portal revoked after turning hashed mode on: %v, %v", revoked, err)
		}
		tables := dumpGovernanceTables(t, r.br.DB.Database)
		for name := range tables {
			switch name {
			case "table governance_approval_request", "table governance_approval_held", "table governance_gate_portal", "table governance_gate_login":
			default:
				delete(tables, name)
			}
		}
		checkTexts(t, tables, waAlice, waBob, waCarol)
	})
}
