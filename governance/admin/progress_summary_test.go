package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
)

// waitBorder waits until this week's border messages (the gate counts
// them just after the registry, once the message is bridged) add up to n.
func waitBorder(t *testing.T, r *running, e *env, n int64) {
	t.Helper()
	var got int64
	if !poll(20*time.Second, func() bool {
		rep, err := r.gv.Figures().Progress(context.Background(), e.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		got = 0
		for _, b := range rep.Border {
			if b.Week == rep.Week {
				got += b.In + b.Out
			}
		}
		return got == n
	}) {
		t.Fatalf("%d border messages this week, want %d", got, n)
	}
}

// nextMonday9 is the first Monday 09:00 in loc after t.
func nextMonday9(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	d := time.Date(l.Year(), l.Month(), l.Day(), 9, 0, 0, 0, loc)
	for d.Weekday() != time.Monday || !d.After(l) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// TestWeeklyProgressSummary: the weekly summary is posted in the admin room
// on Monday at 09:00 in the configured time zone (Europe/Paris here), not a
// minute before, once per week even when the tick runs again or the
// gateway restarts, and again the next Monday; it holds the figures
// (border messages, statuses, staff logins) that `gov-migration progress`
// prints on demand, which a non-admin cannot run.
func TestWeeklyProgressSummary(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) { cfg.Migration.Progress.SummaryTimezone = "Europe/Paris" })
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		e.waitBodies(e.bob, "hello from bob")
		waitBorder(t, r, e, 1)
		room := e.adminRoom()
		summaries := func() []fakematrix.Message {
			return e.mx.MessagesWhere(func(m fakematrix.Message) bool {
				return m.RoomID == room && strings.Contains(m.Content.Body, "Migration progress, week")
			})
		}
		tick := func() {
			t.Helper()
			if _, err := r.gv.SummaryTick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		waitSummaries := func(n int) {
			t.Helper()
			if !e.mx.Eventually(10*time.Second, func() bool { return len(summaries()) >= n }) || len(summaries()) != n {
				t.Fatalf("%d weekly summaries, want %d", len(summaries()), n)
			}
		}
		paris, err := time.LoadLocation("Europe/Paris")
		if err != nil {
			t.Fatal(err)
		}
		tick() // the first tick ever only remembers the week
		monday := nextMonday9(e.clk.Now(), paris)
		e.clk.Advance(monday.Add(-time.Minute).Sub(e.clk.Now()))
		tick()
		if n := len(summaries()); n != 0 {
			t.Fatalf("%d summaries before Monday 09:00 Paris time", n)
		}
		e.clk.Advance(time.Minute)
		tick()
		waitSummaries(1)
		text := summaries()[0].Content.Body
		for _, want := range []string{"telegram 1/0", "telegram: bridged 1, invited 0, linked 0, cut over 0, retired 0 (of 1)", "Staff still holding a login: telegram 1 (1 logins)", "(none): 1 active, 0.0% linked, 1 border messages"} {
			if !strings.Contains(text, want) {
				t.Errorf("summary lacks %q:\n%s", want, text)
			}
		}
		tick()
		waitSummaries(1)

		// A restart on the same Monday posts nothing more.
		r.stop()
		r = e.start()
		tick()
		waitSummaries(1)

		// The next Monday, the next summary.
		e.clk.Advance(7 * 24 * time.Hour)
		tick()
		waitSummaries(2)
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionProgressSummary}})
		if err != nil || len(entries) != 2 {
			t.Errorf("progress_summary entries: %d, %v", len(entries), err)
		}

		out := r.command(t, e, adminMXID, room, "gov-migration progress")
		if !strings.Contains(out, "Migration progress, week") || !strings.Contains(out, "telegram: bridged 1, invited 0, linked 0, cut over 0, retired 0 (of 1)") {
			t.Errorf("gov-migration progress: %q", out)
		}
		out = r.command(t, e, otherMXID, room, "gov-migration progress")
		if !strings.Contains(out, "limited to the organisation's governance admins") || strings.Contains(out, "Migration progress, week") {
			t.Errorf("non-admin gov-migration progress: %q", out)
		}
	})
}
