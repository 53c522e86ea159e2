package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func apiSend(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, admin.APIPrefix+path, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer "+apiToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestMigrationDirectory: with the real Telegram connector, an admin links
// a contact who wrote to a staff member to a Matrix account of another
// server, sees it in gov-migration (status linked, counts per network), and
// imports a CSV whose bad rows are named by line; a staff member links a
// contact they talk with (pending until an admin confirms), never one they
// do not; the admin API shows and changes the same; a non-admin cannot use
// gov-directory; every change is in the audit log.
func TestMigrationDirectory(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		e.waitBodies(e.bob, "hello from bob")
		r.waitRegistered(t, e.bob)
		room := e.adminRoom()

		out := r.command(t, e, adminMXID, room, "gov-directory add @bob_outside @bob:matrix.partner.example department=Press label=Editor")
		if !strings.Contains(out, "is linked to @bob:matrix.partner.example") {
			t.Fatalf("gov-directory add: %q", out)
		}
		out = r.command(t, e, adminMXID, room, "gov-migration contact @bob_outside")
		if !strings.Contains(out, "**linked** since") || !strings.Contains(out, "@bob:matrix.partner.example (confirmed, admin by @admin:test)") {
			t.Errorf("gov-migration contact: %q", out)
		}
		out = r.command(t, e, adminMXID, room, "gov-migration summary")
		if !strings.Contains(out, "telegram: bridged 0, invited 0, linked 1, cut_over 0, retired 0") {
			t.Errorf("gov-migration summary: %q", out)
		}
		out = r.command(t, e, adminMXID, room, "gov-directory add @bob_outside not-an-mxid")
		if !strings.Contains(out, "not a valid Matrix user ID") {
			t.Errorf("bad Matrix ID: %q", out)
		}

		// A staff member: not a contact they talk with, then one they do.
		out = r.command(t, e, staffMXID, room, "link-contact @carol_press @carol:example.org")
		if !strings.Contains(out, "not in the contact registry") {
			t.Errorf("link-contact of an unknown contact: %q", out)
		}
		e.send(e.carol, "carol here")
		e.waitBodies(e.carol, "carol here")
		r.waitRegistered(t, e.carol)
		out = r.command(t, e, staffMXID, room, "link-contact @carol_press @carol:example.org")
		if !strings.Contains(out, "pending") {
			t.Errorf("staff link-contact: %q", out)
		}
		out = r.command(t, e, staffMXID, room, "gov-directory confirm @carol_press")
		if !strings.Contains(out, "limited to the organisation's governance admins") {
			t.Errorf("non-admin gov-directory: %q", out)
		}
		out = r.command(t, e, adminMXID, room, "gov-directory list pending")
		if !strings.Contains(out, "@carol:example.org (pending, staff by @alice:test)") {
			t.Errorf("pending list: %q", out)
		}
		out = r.command(t, e, adminMXID, room, "gov-directory confirm @carol_press")
		if !strings.Contains(out, "Confirmed") {
			t.Errorf("confirm: %q", out)
		}

		// Import: a correction and two bad rows, by line.
		out = r.command(t, e, adminMXID, room, "gov-directory import\nidentity,matrix_id,department,label\n@bob_outside,@bob:example.org,Press\n@nobody_here,@x:example.org\n@carol_press,carol")
		if !strings.Contains(out, "1 linked, 0 unchanged, 2 refused") || !strings.Contains(out, "line 3") || !strings.Contains(out, "line 4") {
			t.Errorf("import: %q", out)
		}

		// The admin API.
		h := r.gv.APIHandler()
		rec := apiSend(h, http.MethodGet, "migration/summary", "")
		var summary struct {
			Networks map[string]map[string]int `json:"networks"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &summary) != nil || summary.Networks["telegram"]["linked"] != 2 {
			t.Errorf("GET migration/summary: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodPost, "directory/unlink", `{"identity":"@bob_outside"}`)
		if rec.Code != 200 {
			t.Errorf("POST directory/unlink: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodGet, "migration/contact?identity=%40bob_outside", "")
		var rep migration.ContactReport
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &rep) != nil || rep.Status != migration.StatusBridged || rep.Link != nil {
			t.Errorf("GET migration/contact after unlink: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodPost, "directory", `{"identity":"@bob_outside","matrix_id":"@bob:example.org","department":"Press"}`)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"confirmed"`) {
			t.Errorf("POST directory: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodPost, "directory", `{"identity":"@nobody_here","matrix_id":"@bob:example.org"}`)
		if rec.Code != 404 {
			t.Errorf("POST directory for an unknown contact: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodPost, "directory/import", "@carol_press,@carol:other.example\nbad,row,x")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"linked":1`) || !strings.Contains(rec.Body.String(), `"line":2`) {
			t.Errorf("POST directory/import: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodGet, "directory?state=confirmed", "")
		if rec.Code != 200 || strings.Count(rec.Body.String(), `"matrix_id"`) != 2 || !strings.Contains(rec.Body.String(), "@carol:other.example") {
			t.Errorf("GET directory: %d %s", rec.Code, rec.Body)
		}

		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{migration.ActionDirectoryLinked, migration.ActionDirectoryCorrected,
			migration.ActionDirectoryConfirmed, migration.ActionDirectoryUnlinked}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, en := range entries {
			got = append(got, string(en.Action)+" "+en.Actor)
		}
		want := []string{
			"directory_linked @admin:test", "directory_linked @alice:test", "directory_confirmed @admin:test",
			"directory_corrected @admin:test", "directory_unlinked system", "directory_linked system", "directory_corrected system",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

var claimCode = regexp.MustCompile("`(MX-[A-Z0-9]{5}-[A-Z0-9]{5})`")

// TestClaimCodeCommand: any Matrix user (not an admin) gets a claim code in
// their direct chat with the bot, not elsewhere; the audit log says a code
// was issued, never which.
func TestClaimCodeCommand(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		const claimant id.UserID = "@bob:matrix.partner.example"
		dm := id.RoomID("!bobdm:test")
		r.user(t, claimant).ManagementRoom = dm

		out := r.command(t, e, claimant, e.adminRoom(), "claim-code")
		if !strings.Contains(out, "direct chat with the bridge bot") {
			t.Errorf("claim-code outside the DM: %q", out)
		}
		out = r.command(t, e, claimant, dm, "claim-code")
		m := claimCode.FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "It works once") {
			t.Fatalf("claim-code: %q", out)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{migration.ActionClaimIssued}})
		if err != nil || len(entries) != 1 || entries[0].Actor != string(claimant) {
			t.Fatalf("claim_issued entries: %+v, %v", entries, err)
		}
		all, _ := r.gv.Audit.List(ctx, audit.Filter{})
		for _, en := range all {
			if strings.Contains(string(en.Details), m[1][3:8]) {
				t.Errorf("the audit log holds the code: %s", en.Details)
			}
		}
	})
}

// TestClaimCodeFromTelegram: a contact sends from Telegram, in their chat
// with a staff member, the code a Matrix user got from claim-code: the message is
// swallowed (not bridged, not counted), the contact is linked to that
// Matrix user (source claim, status linked, audited as the claimant), and
// the claimant is told in their DM with the bot; the staff member sees
// nothing. A wrong code, or the same code again, is just a message.
func TestClaimCodeFromTelegram(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		e.waitBodies(e.bob, "hello from bob")
		const claimant id.UserID = "@bob:matrix.partner.example"
		dm := id.RoomID("!bobdm:test")
		r.user(t, claimant).ManagementRoom = dm
		m := claimCode.FindStringSubmatch(r.command(t, e, claimant, dm, "claim-code"))
		if m == nil {
			t.Fatal("no claim code")
		}
		code := m[1]

		e.send(e.bob, "MX-AAAAA-AAAAA")
		e.waitBodies(e.bob, "hello from bob", "MX-AAAAA-AAAAA")
		bob := tgid.MakeUserID(e.bob.ID)
		// The registry counts a message once it is bridged, just after
		// Matrix got it: wait for the two.
		var before *audit.Contact
		var err error
		poll(5*time.Second, func() bool {
			before, err = r.gv.Contacts.Get(ctx, "telegram", bob)
			return err == nil && before != nil && before.MessagesIn >= 2
		})
		if err != nil || before == nil || before.MessagesIn != 2 {
			t.Fatalf("bob in the registry after two messages: %+v, %v", before, err)
		}
		messagesBefore := len(e.mx.Messages())

		e.send(e.bob, " "+strings.ToLower(code)+" ")
		e.waitNotice(dm, "linked to "+string(claimant))
		ident := migration.Identity{Network: "telegram", Contact: r.gv.Contacts.Key(bob)}
		entry, err := r.gv.Migration.Get(ctx, ident)
		if err != nil || entry == nil || entry.MatrixID != claimant || entry.Source != migration.SourceClaim || entry.State != migration.StateConfirmed {
			t.Fatalf("directory entry after claim: %+v, %v", entry, err)
		}
		if st, _, _ := r.gv.Migration.Status(ctx, ident); st != migration.StatusLinked {
			t.Errorf("status after claim: %s", st)
		}
		// The same code again is an ordinary message, bridged after the
		// swallowed one: so the swallowed one was never bridged.
		e.send(e.bob, code)
		e.waitBodies(e.bob, "hello from bob", "MX-AAAAA-AAAAA", code)
		for _, msg := range e.mx.Messages()[messagesBefore:] {
			if msg.RoomID != dm && strings.Contains(strings.ToLower(msg.Content.Body), "linked") {
				t.Errorf("the claim showed outside the claimant's DM: %s %q", msg.RoomID, msg.Content.Body)
			}
		}
		var after *audit.Contact
		poll(5*time.Second, func() bool {
			after, _ = r.gv.Contacts.Get(ctx, "telegram", bob)
			return after != nil && after.MessagesIn > before.MessagesIn
		})
		if after == nil {
			t.Fatal("bob is no longer in the registry")
		} else if after.MessagesIn != before.MessagesIn+1 {
			t.Errorf("messages in: %d before, %d after one swallowed code and one message", before.MessagesIn, after.MessagesIn)
		}
		linked, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{migration.ActionDirectoryLinked}})
		if len(linked) != 1 || linked[0].Actor != string(claimant) || linked[0].Contact != ident.Contact || !strings.Contains(string(linked[0].Details), `"source":"claim"`) {
			t.Errorf("directory_linked entries: %+v", linked)
		}
	})
}

// TestClaimCodeFromWhatsApp: the same claim from WhatsApp: the code sent by
// the contact links their number to the claimant, who is told in their DM;
// the code never reaches the staff member's portal.
func TestClaimCodeFromWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, nil)
		r := w.start()
		w.loginStaff(r)
		w.send(waBob, "hello from bob")
		w.waitBodiesFrom(waBob, "hello from bob")
		const claimant id.UserID = "@bob:matrix.partner.example"
		dm := id.RoomID("!bobwadm:test")
		r.user(t, claimant).ManagementRoom = dm
		m := claimCode.FindStringSubmatch(r.command(t, w.env, claimant, dm, "claim-code"))
		if m == nil {
			t.Fatal("no claim code")
		}
		code := m[1]
		w.send(waBob, code)
		w.waitNotice(dm, "linked to "+string(claimant))
		bob, err := waid.MakeUserID(types.NewJID(waBob, types.DefaultUserServer))
		if err != nil {
			t.Fatal(err)
		}
		ident := migration.Identity{Network: "whatsapp", Contact: r.gv.Contacts.Key(bob)}
		entry, err := r.gv.Migration.Get(ctx, ident)
		if err != nil || entry == nil || entry.MatrixID != claimant || entry.Source != migration.SourceClaim {
			t.Fatalf("directory entry after a claim from WhatsApp: %+v, %v", entry, err)
		}
		// The next message shows the code was swallowed, not bridged.
		w.send(waBob, "and now on Matrix too")
		w.waitBodiesFrom(waBob, "hello from bob", "and now on Matrix too")
	})
}
