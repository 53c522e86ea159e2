package admin_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestMigrationDeadlines: with the real Telegram connector, an organisation
// sets Telegram's deadlines (closed in 8 days, read-only in 40, logout in
// 80). The staff member and the admins are told ahead (once per notice
// period, the nearest when several are due), then when each step takes
// effect: after "closed" a new contact's chat is not bridged while the
// existing one goes on both ways; after "read_only" a Matrix message is
// refused with a notice and never reaches Telegram, while the contact's
// messages still arrive; after "logout" the staff login is ended and a new
// login is ended at once. Every announcement and step is in the audit log.
func TestMigrationDeadlines(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		var e *env
		e = newEnv(t, b, func(cfg *gate.Config) {
			day := func(n int) gate.Date { return gate.Date{Time: e.clk.Now().Add(time.Duration(n) * 24 * time.Hour)} }
			cfg.Migration.Deadlines = map[string]gate.NetworkDeadlines{"telegram": {Closed: day(8), ReadOnly: day(40), Logout: day(80)}}
		})
		r := e.start()
		e.loginStaff(r)
		staffRoom, err := r.user(t, staffMXID).GetManagementRoom(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.send(e.bob, "before the deadline")
		e.waitBodies(e.bob, "before the deadline")
		portal, err := r.br.GetExistingPortalByKey(ctx, e.portalKey(e.bob))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatal(portal, err)
		}

		apply := func() {
			t.Helper()
			if err := r.gv.ApplyDeadlines(ctx); err != nil {
				t.Fatal(err)
			}
		}
		count := func(text string) int {
			n := 0
			for _, m := range e.mx.Messages() {
				if strings.Contains(m.Content.Body, text) {
					n++
				}
			}
			return n
		}

		// 8 days ahead: the 30-day notice (the 7-day one is not due yet);
		// read-only (40 days) and logout (80 days) are not within 30 days.
		apply()
		e.waitNotice(staffRoom, "in 8 days")
		e.waitNotice(e.adminRoom(), "Telegram will close to new chats")
		apply()
		if n := count("Telegram will close to new chats"); n != 2 {
			t.Errorf("closing announced %d times (staff + admins once each), want 2", n)
		}
		if n := count("read-only"); n != 0 {
			t.Errorf("read-only announced %d times 40 days ahead", n)
		}
		e.clk.Advance(7 * 24 * time.Hour) // 1 day left: the 7-day and 1-day notices are both due: one is posted
		apply()
		e.waitNotice(staffRoom, "tomorrow")
		apply()
		if n := count("Telegram will close to new chats"); n != 4 {
			t.Errorf("closing announced %d times after a week, want 4", n)
		}

		// Closed: no new chat, the existing one goes on.
		e.clk.Advance(24*time.Hour + time.Minute)
		apply()
		e.waitNotice(staffRoom, "Migration deadline reached: Telegram is closed to new chats")
		e.send(e.carol, "a new contact after closing")
		e.send(e.bob, "still bridged")
		e.waitBodies(e.bob, "before the deadline", "still bridged")
		if got := e.bodiesFrom(e.carol); len(got) != 0 {
			t.Errorf("a new chat was bridged after closing: %q", got)
		}
		r.sendMatrix(portal.MXID, "$afterclosed", "answer after closing")
		if !poll(20*time.Second, func() bool {
			return strings.Contains(strings.Join(e.sentBy(e.alice, e.bob), "|"), "answer after closing")
		}) {
			t.Error("a message to an existing chat did not reach Telegram after closing")
		}
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-migration deadlines"); !strings.Contains(out, "telegram closed: ") ||
			!strings.Contains(out, "(in effect)") || !strings.Contains(out, "telegram read_only: ") || !strings.Contains(out, "(upcoming)") {
			t.Errorf("gov-migration deadlines: %q", out)
		}
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-rules"); !strings.Contains(out, "closed") {
			t.Errorf("gov-rules does not show telegram closed: %q", out)
		}

		// Read-only: nothing leaves, what the contact sends arrives.
		e.clk.Advance(32 * 24 * time.Hour)
		apply()
		e.waitNotice(staffRoom, "Migration deadline reached: Telegram chats are read-only")
		r.sendMatrix(portal.MXID, "$readonly", "answer when read-only")
		e.waitNotice(portal.MXID, "Telegram chats are read-only since")
		e.send(e.bob, "the contact still writes")
		e.waitBodies(e.bob, "before the deadline", "still bridged", "the contact still writes")
		for _, m := range e.sentBy(e.alice, e.bob) {
			if m == "answer when read-only" {
				t.Error("a message reached Telegram after the read-only deadline")
			}
		}

		// Logout: the login is ended, and a new one too.
		e.clk.Advance(40 * 24 * time.Hour)
		apply()
		e.waitNotice(staffRoom, "is being logged out of the gateway")
		if !poll(20*time.Second, func() bool { return len(r.br.GetAllCachedUserLogins()) == 0 }) {
			t.Fatalf("logins after the logout deadline: %d", len(r.br.GetAllCachedUserLogins()))
		}
		// A new login: it completes, and is ended at once.
		proc, err := r.conn.CreateLogin(ctx, r.user(t, staffMXID), telegram.FlowIDPhone)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = proc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		ui := proc.(bridgev2.LoginProcessUserInput)
		if _, err = ui.SubmitUserInput(ctx, map[string]string{"phone": "+" + e.alice.Phone}); err != nil {
			t.Fatal(err)
		}
		code, _ := e.sim.LastCode(e.alice.Phone)
		if step, err := ui.SubmitUserInput(ctx, map[string]string{"code": code}); err != nil || step.CompleteParams == nil {
			t.Fatalf("login after the deadline did not complete: %+v, %v", step, err)
		}
		if !poll(20*time.Second, func() bool { return len(r.br.GetAllCachedUserLogins()) == 0 }) {
			t.Error("a login made after the logout deadline was not ended")
		}

		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionDeadlineAnnounced, audit.ActionDeadlineReached}})
		if err != nil {
			t.Fatal(err)
		}
		var trail []string
		for _, en := range entries {
			var d struct{ Step string }
			_ = json.Unmarshal(en.Details, &d)
			trail = append(trail, string(en.Action)+":"+d.Step)
		}
		want := "deadline_announced:closed deadline_announced:closed deadline_reached:closed deadline_reached:read_only deadline_reached:logout"
		if got := strings.Join(trail, " "); got != want {
			t.Errorf("deadline audit trail: %s\nwant %s", got, want)
		}
		if logouts, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionLogout}}); len(logouts) < 2 {
			t.Errorf("logouts in the audit log: %d, want 2", len(logouts))
		}
	})
}

// TestMigrationDeadlinesWhatsApp: the same deadlines on WhatsApp. After
// "closed" a new contact's chat is not bridged while the existing one goes
// on; after "read_only" a Matrix message is refused with a notice and never
// reaches WhatsApp, while the contact's messages still arrive.
func TestMigrationDeadlinesWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		var w *waEnv
		w = newWAEnv(t, b, func(cfg *gate.Config) {
			day := func(n int) gate.Date { return gate.Date{Time: w.clk.Now().Add(time.Duration(n) * 24 * time.Hour)} }
			cfg.Migration.Deadlines = map[string]gate.NetworkDeadlines{"whatsapp": {Closed: day(8), ReadOnly: day(40)}}
		})
		r := w.start()
		w.loginStaff(r)
		w.send(waBob, "before the deadline")
		w.waitBodiesFrom(waBob, "before the deadline")
		portal, err := r.br.GetExistingPortalByKey(ctx, w.portalKey(waBob))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatal(portal, err)
		}
		apply := func() {
			t.Helper()
			if err := r.gv.ApplyDeadlines(ctx); err != nil {
				t.Fatal(err)
			}
		}
		apply()
		w.waitNotice(w.adminRoom(), "WhatsApp will close to new chats")

		w.clk.Advance(8*24*time.Hour + time.Minute)
		apply()
		w.waitNotice(w.adminRoom(), "Migration deadline reached: WhatsApp is closed to new chats")
		w.send(waCarol, "a new contact after closing")
		w.send(waBob, "still bridged")
		w.waitBodiesFrom(waBob, "before the deadline", "still bridged")
		if got := w.bodiesFromPhone(waCarol); len(got) != 0 {
			t.Errorf("a new WhatsApp chat was bridged after closing: %q", got)
		}
		r.sendMatrix(portal.MXID, "$waafterclosed", "answer after closing")
		if !poll(20*time.Second, func() bool { return slices.Contains(w.sentBy(waAlice, waBob), "answer after closing") }) {
			t.Errorf("a message to an existing WhatsApp chat did not arrive after closing: %q", w.sentBy(waAlice, waBob))
		}

		w.clk.Advance(32 * 24 * time.Hour)
		apply()
		w.waitNotice(w.adminRoom(), "Migration deadline reached: WhatsApp chats are read-only")
		r.sendMatrix(portal.MXID, "$wareadonly", "answer when read-only")
		w.waitNotice(portal.MXID, "WhatsApp chats are read-only since")
		w.send(waBob, "the contact still writes")
		w.waitBodiesFrom(waBob, "before the deadline", "still bridged", "the contact still writes")
		if slices.Contains(w.sentBy(waAlice, waBob), "answer when read-only") {
			t.Error("a message reached WhatsApp after the read-only deadline")
		}
	})
}
