package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

const joinLink = "https://register.example.org/join"

func inviteConfig(cfg *gate.Config) {
	cfg.Migration.Invitation = migration.InvitationTemplate{Language: "en",
		Text: "Hi {contact_name}! {staff_name} here: we are moving to Matrix. Join at {join_link}", JoinLink: joinLink}
}

// TestInviteToMatrix: with the real Telegram connector, a staff member runs
// invite-to-matrix in their chat with a contact: the contact receives the
// organisation's invitation on Telegram with the join link, the staff
// member sees a notice in the chat, the contact is "invited" and the audit
// log says so (never the text). A second invitation within
// migration.invite_period is refused with the date of the next one; after
// the period it goes. A contact an outbound deny rule refuses gets nothing
// (clear reply), a linked contact neither; another staff member cannot
// invite through Alice's chat, an admin can; bad input gets clear errors.
func TestInviteToMatrix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, inviteConfig)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		portal := e.waitBodies(e.bob, "hello from bob")[0].RoomID
		r.waitRegistered(t, e.bob)

		out := r.command(t, e, staffMXID, portal, "invite-to-matrix")
		want := "Hi Bob Outside! Alice Staff here: we are moving to Matrix. Join at " + joinLink
		if !e.mx.Eventually(10*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 1 }) {
			t.Fatalf("Bob got nothing on Telegram; reply %q", out)
		}
		if got := e.sentBy(e.alice, e.bob); got[0] != want {
			t.Errorf("Bob got %q, want %q", got, want)
		}
		notice := e.waitNotice(portal, "An invitation to Matrix was sent to Bob Outside on Telegram")
		if !strings.Contains(notice.Content.Body, joinLink) || notice.Sender != fakematrix.BotMXID {
			t.Errorf("staff notice: %+v %q", notice, notice.Content.Body)
		}
		bobIdent := migration.Identity{Network: "telegram", Contact: r.gv.Contacts.Key(tgid.MakeUserID(e.bob.ID))}
		if st, _, _ := r.gv.Migration.Status(ctx, bobIdent); st != migration.StatusInvited {
			t.Errorf("Bob's status: %s", st)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{migration.ActionInvitationSent}})
		if err != nil || len(entries) != 1 || entries[0].Actor != string(staffMXID) || entries[0].Staff != staffMXID || entries[0].Contact != bobIdent.Contact ||
			strings.Contains(string(entries[0].Details), "Matrix") {
			t.Errorf("invitation_sent entries: %+v, %v", entries, err)
		}

		// Again within the period, after a restart: refused, with the date
		// of the next one.
		next := e.clk.Now().Add(migration.DefaultInvitePeriod).UTC().Format("2006-01-02 15:04")
		e.clk.Advance(24 * time.Hour)
		r.stop()
		r = e.start()
		e.waitConnected()
		out = r.command(t, e, staffMXID, portal, "invite-to-matrix")
		if !strings.Contains(out, "The invitation was not sent") || !strings.Contains(out, "next invitation is allowed from "+next) {
			t.Errorf("second invitation within the period: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "invite-to-matrix @bob_outside "+string(staffMXID))
		if !strings.Contains(out, "next invitation is allowed from "+next) {
			t.Errorf("admin's second invitation within the period: %q", out)
		}

		// Another staff member may not use Alice's chat; bad input.
		for cmd, want := range map[string]string{
			"invite-to-matrix @bob_outside " + string(staffMXID): "Only the organisation's governance admins",
			"invite-to-matrix @nobody_here":                      "not in the contact registry",
			"invite-to-matrix @bob_outside":                      "has no logged-in Telegram chat with them",
			"invite-to-matrix @bob_outside not-a-user":           "not a valid Matrix user ID",
		} {
			if out = r.command(t, e, otherMXID, e.adminRoom(), cmd); !strings.Contains(out, want) {
				t.Errorf("%s by another staff member: %q, want %q", cmd, out, want)
			}
		}
		if out = r.command(t, e, otherMXID, portal, "invite-to-matrix"); !strings.Contains(out, "this is not your chat") {
			t.Errorf("invite-to-matrix in someone else's chat: %q", out)
		}

		// After the period, an admin invites Bob through Alice's chat.
		e.clk.Advance(migration.DefaultInvitePeriod)
		out = r.command(t, e, adminMXID, e.adminRoom(), "invite-to-matrix @bob_outside "+string(staffMXID))
		if !strings.Contains(out, "The invitation to Matrix was sent to Bob Outside on Telegram through "+string(staffMXID)) {
			t.Errorf("admin's invitation after the period: %q", out)
		}
		if !e.mx.Eventually(10*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 2 }) {
			t.Fatalf("Bob got %q", e.sentBy(e.alice, e.bob))
		}
		e.waitNotice(portal, "on Telegram at "+string(adminMXID)+"'s request")

		// An outbound deny rule: Carol is refused, nothing sent.
		e.send(e.carol, "carol here")
		carolPortal := e.waitBodies(e.carol, "carol here")[0].RoomID
		if out = r.command(t, e, adminMXID, e.adminRoom(), "gov-deny-rule telegram_username=carol_press direction=outbound comment=press embargo"); !strings.Contains(out, "Added") {
			t.Fatalf("gov-deny-rule: %q", out)
		}
		out = r.command(t, e, staffMXID, carolPortal, "invite-to-matrix")
		if !strings.Contains(out, "The invitation was not sent: the organisation's policy refuses this contact") {
			t.Errorf("invitation of a refused contact: %q", out)
		}
		// A linked contact is not invited.
		r.command(t, e, adminMXID, e.adminRoom(), "gov-remove-rule 1")
		if out = r.command(t, e, adminMXID, e.adminRoom(), "gov-directory add @carol_press @carol:example.org"); !strings.Contains(out, "linked") {
			t.Fatalf("gov-directory add: %q", out)
		}
		out = r.command(t, e, staffMXID, carolPortal, "invite-to-matrix")
		if !strings.Contains(out, "already has a Matrix account") {
			t.Errorf("invitation of a linked contact: %q", out)
		}
		e.send(e.carol, "still here")
		e.waitBodies(e.carol, "carol here", "still here")
		if got := e.sentBy(e.alice, e.carol); len(got) != 0 {
			t.Errorf("Carol got %q", got)
		}

		// The API.
		h := r.gv.APIHandler()
		rec := apiSend(h, http.MethodPost, "migration/invite", `{"identity":"@bob_outside","staff":"`+string(staffMXID)+`"}`)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "next invitation is allowed") {
			t.Errorf("POST migration/invite within the period: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodPost, "migration/invite", `{"identity":"@nobody_here","staff":"`+string(staffMXID)+`"}`)
		if rec.Code != http.StatusNotFound {
			t.Errorf("POST migration/invite of an unknown contact: %d %s", rec.Code, rec.Body)
		}
	})
}

// TestInviteDepartment: an admin invites the active contacts of a
// department (config migration.departments puts Alice in Press): a dry run
// names who would be invited (Dave, Carol, Bob) and who is refused (Erin,
// by an outbound deny rule) and sends nothing; a run sends the first
// invitation at once with a start notice in the admin room, refuses a
// second run, and stops on invite-stop with counts; run again, it skips
// Dave (invited) and sends the others one per migration.invite_rate
// (20 s on the gate's clock, advanced by the test), then an end notice with
// the counts. Staff members may not run it.
func TestInviteDepartment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			inviteConfig(cfg)
			cfg.Migration.Departments = map[string][]id.UserID{"Press": {staffMXID}}
		})
		dave, err := e.sim.CreateAccount(tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave", LastName: "Outside", Username: "dave_outside"})
		if err != nil {
			t.Fatal(err)
		}
		erin, err := e.sim.CreateAccount(tgsim.AccountSpec{Phone: "15550005", FirstName: "Erin", LastName: "Outside", Username: "erin_outside"})
		if err != nil {
			t.Fatal(err)
		}
		r := e.start()
		e.loginStaff(r)
		room := e.adminRoom()
		t0 := e.clk.Now()
		for i, acc := range []*tgsim.Account{erin, e.bob, e.carol, dave} {
			e.send(acc, "hello from "+acc.FirstName)
			e.waitBodies(acc, "hello from "+acc.FirstName)
			// The registry noted it (the gate's clock) before the clock moves
			// on: Dave is the most recent.
			if !poll(10*time.Second, func() bool {
				active, err := r.gv.Migration.ActiveContacts(ctx, t0.Add(-time.Hour), "Press")
				return err == nil && len(active) == i+1
			}) {
				t.Fatalf("%s is not an active contact of Press", acc.FirstName)
			}
			e.clk.Advance(time.Minute)
		}
		if out := r.command(t, e, adminMXID, room, "gov-deny-rule telegram_username=erin_outside direction=outbound"); !strings.Contains(out, "Added") {
			t.Fatalf("gov-deny-rule: %q", out)
		}
		invitedBy := func() int {
			n := 0
			for _, acc := range []*tgsim.Account{e.bob, e.carol, dave, erin} {
				n += len(e.sentBy(e.alice, acc))
			}
			return n
		}

		if out := r.command(t, e, staffMXID, room, "gov-migration invite-department Press"); !strings.Contains(out, "limited to the organisation's governance admins") {
			t.Errorf("a staff member's invite-department: %q", out)
		}
		if out := r.command(t, e, adminMXID, room, "gov-migration departments"); !strings.Contains(out, "Press: "+string(staffMXID)) {
			t.Errorf("gov-migration departments: %q", out)
		}
		if out := r.command(t, e, adminMXID, room, "gov-migration invite-department Accounts"); !strings.Contains(out, "no staff member is in that department") {
			t.Errorf("invite-department of an unknown department: %q", out)
		}
		out := r.command(t, e, adminMXID, room, "gov-migration invite-department Press --dry-run")
		if !strings.Contains(out, "Department Press: 3 to invite, 0 skipped, 1 refused by the policy (dry run: nothing sent).") ||
			strings.Index(out, "Dave Outside") > strings.Index(out, "Carol Press") || strings.Index(out, "Carol Press") > strings.Index(out, "Bob Outside") ||
			!strings.Contains(out, "Erin Outside (staff "+string(staffMXID)+") — the organisation's policy refuses this contact") {
			t.Errorf("dry run: %q", out)
		}
		if n := invitedBy(); n != 0 {
			t.Fatalf("the dry run sent %d invitation(s)", n)
		}

		t0 = e.clk.Now()
		r.command(t, e, adminMXID, room, "gov-migration invite-department Press")
		e.waitNotice(room, "Inviting 3 contact(s) of department Press to Matrix (0 skipped, 1 refused by the policy), at most one per staff account every 20s.")
		if !e.mx.Eventually(10*time.Second, func() bool { return len(e.sentBy(e.alice, dave)) == 1 }) {
			t.Fatalf("Dave got no invitation")
		}
		if got := e.sentBy(e.alice, dave)[0]; !strings.Contains(got, "Hi Dave Outside!") || !strings.Contains(got, joinLink) {
			t.Errorf("Dave got %q", got)
		}
		if out = r.command(t, e, adminMXID, room, "gov-migration invite-department Press"); !strings.Contains(out, "already being sent") {
			t.Errorf("a second run: %q", out)
		}
		r.command(t, e, adminMXID, room, "gov-migration invite-stop")
		e.waitNotice(room, "Invitations to department Press stopped by @admin:test: 1 sent, 0 skipped, 1 refused, 0 failed.")
		if n := invitedBy(); n != 1 {
			t.Errorf("%d invitation(s) sent before the stop", n)
		}
		if out = r.command(t, e, adminMXID, room, "gov-migration invite-stop"); !strings.Contains(out, "no department's invitations are being sent") {
			t.Errorf("invite-stop without a run: %q", out)
		}

		// Again: Dave is skipped, Carol and Bob go one per 20 s, with a
		// progress notice after each (every 10 outside the tests).
		defer admin.SetInviteProgressEvery(1)()
		r.command(t, e, adminMXID, room, "gov-migration invite-department Press")
		e.waitNotice(room, "Inviting 2 contact(s) of department Press to Matrix (1 skipped, 1 refused by the policy)")
		e.clk.Advance(20 * time.Second)
		if !e.mx.Eventually(10*time.Second, func() bool { return len(e.sentBy(e.alice, e.carol)) == 1 }) {
			t.Fatal("Carol got no invitation")
		}
		e.waitNotice(room, "Department Press: 1 of 2 invitation(s) sent.")
		if n := invitedBy(); n != 2 {
			t.Errorf("%d invitation(s) sent 20 s after the first", n)
		}
		e.clk.Advance(20 * time.Second)
		e.waitNotice(room, "Invitations to department Press finished: 2 sent, 1 skipped, 1 refused, 0 failed.")
		e.waitNotice(room, "Department Press: 2 of 2 invitation(s) sent.")
		if got := e.sentBy(e.alice, e.bob); len(got) != 1 || !strings.Contains(got[0], "Hi Bob Outside!") {
			t.Errorf("Bob got %q", got)
		}
		if got := e.sentBy(e.alice, erin); len(got) != 0 {
			t.Errorf("Erin got %q", got)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{migration.ActionInvitationSent}})
		if err != nil || len(entries) != 3 {
			t.Fatalf("invitation_sent entries: %+v, %v", entries, err)
		}
		for i, want := range []time.Duration{0, 20 * time.Second, 40 * time.Second} {
			if got := entries[i].Time.Sub(t0.Truncate(time.Millisecond)); got != want || entries[i].Actor != string(adminMXID) ||
				!strings.Contains(string(entries[i].Details), `"bulk":true`) {
				t.Errorf("invitation %d at +%s by %s (%s), want +%s", i, got, entries[i].Actor, entries[i].Details, want)
			}
		}
		out = r.command(t, e, adminMXID, room, "gov-migration summary")
		if !strings.Contains(out, "telegram: bridged 1, invited 3") {
			t.Errorf("summary: %q", out)
		}

		// The API: everybody is invited now (Erin refused); no run to stop.
		h := r.gv.APIHandler()
		rec := apiSend(h, http.MethodPost, "migration/invite-department", `{"department":"Press","dry_run":true}`)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"invite":[]`) || strings.Count(rec.Body.String(), "was invited recently") != 3 ||
			!strings.Contains(rec.Body.String(), "the organisation's policy refuses this contact") {
			t.Errorf("POST migration/invite-department (dry run): %d %s", rec.Code, rec.Body)
		}
		if rec = apiSend(h, http.MethodPost, "migration/invite-department", `{"department":"Nowhere"}`); rec.Code != 404 {
			t.Errorf("POST migration/invite-department of an unknown department: %d %s", rec.Code, rec.Body)
		}
		if rec = apiSend(h, http.MethodPost, "migration/invite-stop", ``); rec.Code != 404 {
			t.Errorf("POST migration/invite-stop without a run: %d %s", rec.Code, rec.Body)
		}
	})
}

// TestInviteToMatrixWhatsApp: the same from a WhatsApp chat, in hashed mode
// and with the default English invitation: Bob receives it on WhatsApp with
// a matrix.to link to Alice, Alice sees the notice, Bob is "invited"; an
// admin naming Bob by his number is refused within the period.
func TestInviteToMatrixWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		w := newWAEnv(t, b, func(cfg *gate.Config) { cfg.ContactHashKey = "0123456789abcdef0123456789abcdef" })
		r := w.start()
		w.loginStaff(r)
		w.send(waBob, "hello from bob")
		portal := w.waitBodiesFrom(waBob, "hello from bob")[0].RoomID

		r.command(t, w.env, staffMXID, portal, "invite-to-matrix")
		if !w.mx.Eventually(10*time.Second, func() bool { return len(w.sentBy(waAlice, waBob)) == 1 }) {
			t.Fatal("Bob got nothing on WhatsApp")
		}
		got := w.sentBy(waAlice, waBob)[0]
		if !strings.HasPrefix(got, "Hello Bob, this is ") || !strings.HasSuffix(got, "You can reach me there: https://matrix.to/#/@alice:test") {
			t.Errorf("Bob got %q", got)
		}
		w.waitNotice(portal, "An invitation to Matrix was sent to Bob on WhatsApp:")
		out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-migration contact +"+waBob)
		if !strings.Contains(out, "**invited**") || strings.Contains(out, waBob) {
			t.Errorf("gov-migration contact: %q", out)
		}
		out = r.command(t, w.env, adminMXID, w.adminRoom(), "invite-to-matrix +"+waBob+" "+string(staffMXID))
		if !strings.Contains(out, "next invitation is allowed from") {
			t.Errorf("second invitation: %q", out)
		}
		if n := len(w.sentBy(waAlice, waBob)); n != 1 {
			t.Errorf("Bob got %d invitations", n)
		}
	})
}

// TestDepartmentCommands: the config file puts Alice in Press at start; an
// admin moves her to Legal and puts Bob in Press, by command and API, and
// the move outlasts a restart with the same config file; bad input and
// non-admins are refused; every change is audited.
func TestDepartmentCommands(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			cfg.Migration.Departments = map[string][]id.UserID{"Press": {staffMXID}}
		})
		r := e.start()
		room := e.adminRoom()
		if out := r.command(t, e, adminMXID, room, "gov-migration departments"); !strings.Contains(out, "Press: @alice:test") {
			t.Errorf("departments from the config file: %q", out)
		}
		if out := r.command(t, e, adminMXID, room, "gov-migration department @alice:test Legal Affairs"); !strings.Contains(out, "@alice:test is in department Legal Affairs.") {
			t.Errorf("gov-migration department: %q", out)
		}
		for cmd, want := range map[string]string{
			"gov-migration department alice Legal":                         "not a valid Matrix user ID",
			"gov-migration department @alice:test":                         "Usage:",
			"gov-migration department @x:test " + strings.Repeat("d", 101): "longer than 100 bytes",
		} {
			if out := r.command(t, e, adminMXID, room, cmd); !strings.Contains(out, want) {
				t.Errorf("%s: %q, want %q", cmd, out, want)
			}
		}
		if out := r.command(t, e, staffMXID, room, "gov-migration department @alice:test Press"); !strings.Contains(out, "limited to the organisation's governance admins") {
			t.Errorf("a staff member's gov-migration department: %q", out)
		}
		h := r.gv.APIHandler()
		if rec := apiSend(h, http.MethodPost, "migration/department", `{"staff":"@bob:test","department":"Press"}`); rec.Code != 200 {
			t.Errorf("POST migration/department: %d %s", rec.Code, rec.Body)
		}
		if rec := apiSend(h, http.MethodPost, "migration/department", `{"staff":"bob","department":"Press"}`); rec.Code != 400 {
			t.Errorf("POST migration/department with a bad ID: %d %s", rec.Code, rec.Body)
		}

		r.stop()
		r = e.start()
		rec := apiSend(r.gv.APIHandler(), http.MethodGet, "migration/departments", "")
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"staff":{"@alice:test":"Legal Affairs","@bob:test":"Press"}}` {
			t.Errorf("GET migration/departments after a restart: %d %s", rec.Code, rec.Body)
		}
		if out := r.command(t, e, adminMXID, room, "gov-migration department @bob:test --clear"); !strings.Contains(out, "@bob:test is in no department now.") {
			t.Errorf("clear: %q", out)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{migration.ActionDepartmentChanged}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, en := range entries {
			got = append(got, en.Actor+" "+string(en.Staff)+" "+string(en.Details))
		}
		want := []string{
			`system @alice:test {"department":"Press","previous":"","source":"config"}`,
			`@admin:test @alice:test {"department":"Legal Affairs","previous":"Press","source":"admin"}`,
			`system @bob:test {"department":"Press","previous":"","source":"admin"}`,
			`@admin:test @bob:test {"department":"","previous":"Press","source":"admin"}`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("department_changed entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestInviteTwoStaffOneContact: Bob writes to Alice (Press), then to Dave
// (Legal): Bob is in Legal, the department of whom he talked with last, and
// Legal's run invites him through Dave's chat (Bob gets it from Dave's
// Telegram account, Dave sees the notice, Alice does not); then Alice's own
// invite-to-matrix is refused, since Bob was invited within the period,
// and Press has nobody to invite.
func TestInviteTwoStaffOneContact(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		e := newEnv(t, b, func(cfg *gate.Config) {
			inviteConfig(cfg)
			cfg.Migration.Departments = map[string][]id.UserID{"Press": {staffMXID}, "Legal": {daveMXID}}
		})
		dave, err := e.sim.CreateAccount(tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave", LastName: "Staff", Username: "dave_staff"})
		if err != nil {
			t.Fatal(err)
		}
		r := e.start()
		e.loginStaff(r)
		e.loginAs(r, daveMXID, dave)
		room := e.adminRoom()
		e.send(e.bob, "hello alice")
		alicePortal := e.waitBodies(e.bob, "hello alice")[0].RoomID
		// The registry notes who talked with Bob (the gate's clock).
		talkedLast := func(staff id.UserID) bool {
			active, err := r.gv.Migration.ActiveContacts(context.Background(), e.clk.Now().Add(-time.Hour), "")
			return err == nil && len(active) == 1 && len(active[0].Staff) > 0 && active[0].Staff[0] == staff
		}
		if !poll(10*time.Second, func() bool { return talkedLast(staffMXID) }) {
			t.Fatal("the registry never linked Bob to Alice")
		}
		e.clk.Advance(time.Minute)
		if _, err = e.sim.SendMessage(e.bob.ID, dave.ID, "hello dave", nil); err != nil {
			t.Fatal(err)
		}
		davePortal := e.waitBodies(e.bob, "hello alice", "hello dave")[1].RoomID
		if !poll(10*time.Second, func() bool { return talkedLast(daveMXID) }) {
			t.Fatal("the registry never linked Bob to Dave")
		}

		out := r.command(t, e, adminMXID, room, "gov-migration invite-department Legal --dry-run")
		if !strings.Contains(out, "Department Legal: 1 to invite") || !strings.Contains(out, "Bob Outside (staff "+string(daveMXID)+")") {
			t.Errorf("Legal's dry run: %q", out)
		}
		r.command(t, e, adminMXID, room, "gov-migration invite-department Legal")
		e.waitNotice(room, "Invitations to department Legal finished: 1 sent, 0 skipped, 0 refused, 0 failed.")
		if got := e.sentBy(dave, e.bob); len(got) != 1 || !strings.Contains(got[0], "Hi Bob Outside! Dave Staff here") {
			t.Errorf("Bob got %q from Dave", got)
		}
		if got := e.sentBy(e.alice, e.bob); len(got) != 0 {
			t.Errorf("Bob got %q from Alice", got)
		}
		e.waitNotice(davePortal, "An invitation to Matrix was sent to Bob Outside on Telegram at @admin:test's request")
		if m, ok := e.mx.MessageContaining(alicePortal, "An invitation to Matrix"); ok {
			t.Errorf("Alice's chat shows Dave's invitation: %q", m.Content.Body)
		}

		if out = r.command(t, e, staffMXID, alicePortal, "invite-to-matrix"); !strings.Contains(out, "next invitation is allowed from") {
			t.Errorf("Alice's invitation after Dave's: %q", out)
		}
		if out = r.command(t, e, adminMXID, room, "gov-migration invite-department Press"); !strings.Contains(out, "Nobody to invite in department Press: 0 skipped, 0 refused") {
			t.Errorf("Press's run: %q", out)
		}
	})
}
