package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestPortalControlRevokeRestore: admins get power level 100 in a new
// portal; a staff member's change of encryption is undone and explained;
// a revoked portal gets a notice, relays nothing either way, and relays
// again once restored.
func TestPortalControlRevokeRestore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello")
		e.waitBodies(e.bob, "hello")
		portal, err := r.br.GetExistingPortalByKey(ctx, e.portalKey(e.bob))
		if err != nil || portal == nil {
			t.Fatal(portal, err)
		}
		room := portal.MXID
		if !e.mx.Eventually(5*time.Second, func() bool { pl := e.mx.PowerLevels(room); return pl != nil && pl.GetUserLevel(adminMXID) == 100 }) {
			t.Error("admin did not get power level 100 in the portal")
		}
		r.waitAudit(t, audit.ActionPortalCreated, string(portal.ID))

		// Staff removes encryption: the bot puts it back and says so.
		stateKey := ""
		r.gv.Guard(ctx, &event.Event{
			Type: event.StateEncryption, RoomID: room, Sender: staffMXID, ID: "$noenc", StateKey: &stateKey,
			Content:  event.Content{Parsed: &event.EncryptionEventContent{}},
			Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"algorithm":"m.megolm.v1.aes-sha2"}`)}},
		})
		var restored bool
		for _, st := range e.mx.StateEvents() {
			if st.RoomID == room && st.Type == event.StateEncryption && st.Sender == "@bot:test" {
				restored = st.Content.Parsed.(*event.EncryptionEventContent).Algorithm == id.AlgorithmMegolmV1
			}
		}
		if !restored {
			t.Error("encryption was not restored")
		}
		e.waitNotice(room, "Changing or removing this room's encryption is not allowed")
		if entries, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionStateReverted}}); len(entries) != 1 || entries[0].Staff != staffMXID {
			t.Errorf("state_reverted entries: %+v", entries)
		}

		// Revoke by room ID; non-admins cannot.
		if out := r.command(t, e, staffMXID, room, "gov-revoke "+string(room)); !strings.Contains(out, "limited to") {
			t.Errorf("non-admin revoke: %q", out)
		}
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-revoke "+string(room)+" left the ministry"); !strings.Contains(out, "Revoked") {
			t.Fatalf("gov-revoke: %q", out)
		}
		e.waitNotice(room, "An admin revoked this chat")
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-revoke "+string(room)); !strings.Contains(out, "already revoked") {
			t.Errorf("revoking twice: %q", out)
		}
		var left bool
		for _, st := range e.mx.StateEvents() {
			if st.RoomID == room && st.Type == event.StateMember && st.Sender == e.ghost(e.bob) {
				left = true
			}
		}
		if !left {
			t.Error("the ghost did not leave the revoked portal")
		}
		e.send(e.bob, "while revoked")
		// Updates of one account are handled in order: once Carol's later
		// message is on Matrix, Bob's was handled (and dropped).
		e.send(e.carol, "marker")
		e.waitBodies(e.carol, "marker")
		r.sendMatrix(room, "$whilerevoked", "out while revoked")
		e.waitNotice(room, "An admin revoked this chat: it is no longer bridged to Telegram, so nothing was sent")
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-portals"); !strings.Contains(out, "revoked") {
			t.Errorf("gov-portals: %q", out)
		}

		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-restore "+string(portal.ID)); !strings.Contains(out, "Restored") {
			t.Fatalf("gov-restore: %q", out)
		}
		e.send(e.bob, "after restore")
		e.waitBodies(e.bob, "hello", "after restore")
		for _, m := range e.sim.Messages(e.alice.ID, e.bob.ID) {
			if m.Text == "out while revoked" {
				t.Error("a message of a revoked portal reached Telegram")
			}
		}
		entries, _ := r.gv.Audit.List(ctx, audit.Filter{Portal: string(portal.ID)})
		var actions []string
		for _, en := range entries {
			actions = append(actions, string(en.Action))
		}
		want := "portal_created state_reverted portal_revoked portal_allowed"
		if got := strings.Join(filterOut(actions, "first_contact", "admin_action"), " "); got != want {
			t.Errorf("portal audit trail: %s, want %s", got, want)
		}
	})
}

func filterOut(list []string, drop ...string) []string {
	var out []string
outer:
	for _, s := range list {
		for _, d := range drop {
			if s == d {
				continue outer
			}
		}
		out = append(out, s)
	}
	return out
}

// TestAdminAPI: the HTTP admin API refuses unauthenticated (401) and
// non-loopback (403) calls and changes nothing; with the token, the exports
// parse back to the same rows, and verify names an edited entry.
func TestAdminAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello")
		e.waitBodies(e.bob, "hello")
		// The gate logs portal_created just after the first message reaches
		// Matrix: wait for it, so that the audit log is still from here on.
		r.waitAudit(t, audit.ActionPortalCreated, string(e.portalKey(e.bob).ID))
		h := r.gv.APIHandler()
		before, _ := r.gv.Audit.List(ctx, audit.Filter{})

		for _, c := range []struct {
			name, remote, auth string
			want               int
		}{
			{"no token", "127.0.0.1:5000", "", 401},
			{"wrong token", "127.0.0.1:5000", "Bearer nope", 401},
			{"not bearer", "[::1]:5000", "Basic czNjcmV0LXRva2Vu", 401},
			{"remote client", "192.0.2.7:5000", "Bearer " + apiToken, 403},
		} {
			rec := apiGet(h, "contacts", c.remote, c.auth)
			if rec.Code != c.want {
				t.Errorf("%s: HTTP %d, want %d: %s", c.name, rec.Code, c.want, rec.Body)
			}
		}
		if after, _ := r.gv.Audit.List(ctx, audit.Filter{}); len(after) != len(before) {
			t.Errorf("refused calls wrote %d audit entries", len(after)-len(before))
		}

		for _, format := range []audit.Format{audit.FormatCSV, audit.FormatJSON} {
			rec := apiGet(h, "export/contacts?format="+string(format), "127.0.0.1:5000", "Bearer "+apiToken)
			if rec.Code != 200 {
				t.Fatalf("export contacts: %d %s", rec.Code, rec.Body)
			}
			parsed, err := audit.ParseContacts(rec.Body, format)
			want, _ := r.gv.Contacts.List(ctx, audit.ContactFilter{})
			if err != nil || len(parsed) != 1 || len(want) != 1 || parsed[0].RemoteID != want[0].RemoteID || parsed[0].MessagesIn != 1 ||
				parsed[0].Phone != "+15550002" || len(parsed[0].Links) != 1 {
				t.Errorf("contacts %s export parsed back as %+v (%v), want %+v", format, parsed, err, want)
			}
			rec = apiGet(h, "export/log?format="+string(format), "127.0.0.1:5000", "Bearer "+apiToken)
			entries, err := audit.ParseEntries(rec.Body, format)
			if err != nil || len(entries) == 0 {
				t.Fatalf("log %s export: %v", format, err)
			}
			if report := audit.VerifyEntries(entries); !report.OK() {
				t.Errorf("exported log does not verify: %+v", report)
			}
			stored, _ := r.gv.Audit.List(ctx, audit.Filter{Limit: len(entries)})
			for i := range entries {
				if entries[i].Hash != stored[i].Hash || entries[i].Action != stored[i].Action {
					t.Errorf("log %s export entry %d differs: %+v vs %+v", format, i, entries[i], stored[i])
				}
			}
		}

		// Edit one row behind the log's back: verify names it.
		if _, err := r.gv.DB.Exec(ctx, `UPDATE governance_audit_log SET actor = '@evil:test' WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		rec := apiGet(h, "verify", "127.0.0.1:5000", "Bearer "+apiToken)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ok":false`) || !strings.Contains(rec.Body.String(), `"seq":2,"kind":"edited"`) {
			t.Errorf("verify after tampering: %s", rec.Body)
		}
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-verify"); !strings.Contains(out, "entry 2: edited") {
			t.Errorf("gov-verify after tampering: %q", out)
		}

		// The API is off without a token.
		r.gv.Config().API.Token = ""
		if rec := apiGet(h, "contacts", "127.0.0.1:5000", "Bearer "+apiToken); rec.Code != 403 {
			t.Errorf("API without a token configured: %d", rec.Code)
		}
	})
}

// waitAudit waits until the audit log has an entry of action for portal.
func (r *running) waitAudit(t *testing.T, action audit.Action, portal string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		entries, err := r.gv.Audit.List(context.Background(), audit.Filter{Actions: []audit.Action{action}, Portal: portal})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s entry for %s in the audit log", action, portal)
}

// waitAuditAction waits until the audit log has an entry of action.
func (r *running) waitAuditAction(t *testing.T, action audit.Action) {
	t.Helper()
	r.waitAudit(t, action, "")
}
