package migration_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func TestWeekStart(t *testing.T) {
	for _, tc := range []struct {
		in    time.Time
		start string
		label string
	}{
		{time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), "2026-02-23", "2026-W09"},  // Sunday
		{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), "2026-03-02", "2026-W10"},  // Monday
		{time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC), "2026-12-28", "2026-W53"}, // Friday of week 53
		{time.Date(2026, 3, 2, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "2026-02-23", "2026-W09"},
	} {
		if got := migration.WeekStart(tc.in).Format(time.DateOnly); got != tc.start {
			t.Errorf("WeekStart(%s) = %s, want %s", tc.in, got, tc.start)
		}
		if got := migration.WeekLabel(tc.in); got != tc.label {
			t.Errorf("WeekLabel(%s) = %s, want %s", tc.in, got, tc.label)
		}
	}
}

// TestProgressFigures fills the tables as the gate and the admins would
// (contacts seen, links with departments, statuses, border messages over
// three weeks) and checks every figure of the report, the JSON form and
// the export tables; border counts older than the kept weeks are deleted.
func TestProgressFigures(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b, testHashKey)
		amina := f.ident("whatsapp", "whatsapp.33612345678")
		press := f.ident("telegram", "telegram.4242")
		t77 := f.ident("telegram", "telegram.77")
		wa49 := f.ident("whatsapp", "whatsapp.4915112345678")
		link := func(ident migration.Identity, mxid, dept string) {
			t.Helper()
			if _, err := f.dir.Link(ctx, "@admin:test", migration.LinkRequest{Identity: ident, MatrixID: id.UserID("@" + mxid + ":example.org"), Department: dept, Source: migration.SourceAdmin}); err != nil {
				t.Fatal(err)
			}
		}
		link(amina, "amina", "Press")
		link(press, "press", "Press")
		if err := f.dir.MarkCutOver(ctx, "@admin:test", press); err != nil {
			t.Fatal(err)
		}
		if err := f.dir.MarkInvited(ctx, "@admin:test", t77); err != nil {
			t.Fatal(err)
		}
		if _, err := f.dir.Link(ctx, "@admin:test", migration.LinkRequest{Identity: wa49, MatrixID: "@w:example.org", Department: "Legal", Source: migration.SourceStaff}); err != nil {
			t.Fatal(err)
		}
		// A contact last seen 40 days ago is not active.
		if _, err := f.reg.Record(ctx, audit.Observation{Network: "telegram", RemoteID: "telegram.9", Kind: audit.KindSeen, Time: f.clock.Now().Add(-40 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}

		count := func(ident migration.Identity, dir audit.Direction, kind audit.Kind, n int) {
			for range n {
				f.dir.CountBorder(ctx, migration.BorderMessage{Network: ident.Network, Contact: ident.Contact, Direction: dir, Kind: kind, KeepWeeks: 3})
			}
		}
		// Week 2026-W09 (the fixture's clock, a Sunday): old traffic.
		count(amina, audit.Inbound, audit.KindMessage, 5)
		// Week W10, counted together as the gate does (CountBorders), each
		// message at its own time, one of them still in W09.
		f.clock.Advance(24 * time.Hour)
		var batch []migration.BorderMessage
		add := func(ident migration.Identity, dir audit.Direction, kind audit.Kind, n int, at time.Time) {
			for range n {
				batch = append(batch, migration.BorderMessage{Network: ident.Network, Contact: ident.Contact, Direction: dir, Kind: kind, KeepWeeks: 3, Time: at})
			}
		}
		add(amina, audit.Inbound, audit.KindMessage, 3, time.Time{})
		add(amina, audit.Inbound, audit.KindMessage, 1, f.clock.Now().Add(-24*time.Hour)) // Sunday: W09
		add(amina, audit.Outbound, audit.KindMedia, 2, f.clock.Now())
		add(amina, audit.Outbound, audit.KindActivity, 4, time.Time{}) // a reaction is not a message
		add(press, audit.Inbound, audit.KindMessage, 1, f.clock.Now())
		f.dir.CountBorders(ctx, batch)
		// Week W11: W09 is now outside the 3 kept weeks? Not yet (W09, W10, W11).
		f.clock.Advance(7 * 24 * time.Hour)
		count(t77, audit.Outbound, audit.KindMessage, 2)
		// Week W12: the first count of the week deletes W09.
		f.clock.Advance(7 * 24 * time.Hour)
		count(wa49, audit.Inbound, audit.KindMessage, 1)
		// The contacts are seen again now, except telegram.9; Alice of
		// Legal talks with telegram.77, who has no directory entry: its
		// department is hers.
		for _, id := range []string{"whatsapp.33612345678", "telegram.4242", "telegram.77", "whatsapp.4915112345678"} {
			if _, err := f.reg.Record(ctx, audit.Observation{Network: netOf(id), RemoteID: networkid.UserID(id), Kind: audit.KindSeen, Staff: "@alice:test", Login: "telegram.1", Portal: "telegram.u1"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.dir.SetStaffDepartment(ctx, "@admin:test", "@alice:test", "Legal"); err != nil {
			t.Fatal(err)
		}

		figs := migration.Figures{Dir: f.dir, Weeks: 4, Logins: func(context.Context) ([]migration.StaffLogin, error) {
			return []migration.StaffLogin{{Network: "telegram", Staff: "@alice:test", Login: "telegram.1"}, {Network: "telegram", Staff: "@bob:test", Login: "telegram.2"},
				{Network: "whatsapp", Staff: "@alice:test", Login: "whatsapp.1"}, {Network: "telegram", Staff: "@alice:test", Login: "telegram.3"}}, nil
		}}
		rep, err := figs.Progress(ctx, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Week != "2026-W12" || !reflect.DeepEqual(rep.Networks, []string{"telegram", "whatsapp"}) {
			t.Errorf("week %s, networks %v", rep.Week, rep.Networks)
		}
		wantBorder := []migration.BorderWeek{
			{Week: "2026-W09", Start: "2026-02-23", Network: "telegram"}, {Week: "2026-W09", Start: "2026-02-23", Network: "whatsapp"}, // deleted
			{Week: "2026-W10", Start: "2026-03-02", Network: "telegram", In: 1}, {Week: "2026-W10", Start: "2026-03-02", Network: "whatsapp", In: 3, Out: 2},
			{Week: "2026-W11", Start: "2026-03-09", Network: "telegram", Out: 2}, {Week: "2026-W11", Start: "2026-03-09", Network: "whatsapp"},
			{Week: "2026-W12", Start: "2026-03-16", Network: "telegram"}, {Week: "2026-W12", Start: "2026-03-16", Network: "whatsapp", In: 1},
		}
		if !reflect.DeepEqual(rep.Border, wantBorder) {
			t.Errorf("border weeks:\n got %+v\nwant %+v", rep.Border, wantBorder)
		}
		wantActive := []migration.ActiveCount{{Network: "telegram", Department: "Legal", Contacts: 1}, {Network: "telegram", Department: "Press", Contacts: 1},
			{Network: "whatsapp", Department: "Legal", Contacts: 1}, {Network: "whatsapp", Department: "Press", Contacts: 1}}
		if !reflect.DeepEqual(rep.Active, wantActive) {
			t.Errorf("active contacts:\n got %+v\nwant %+v", rep.Active, wantActive)
		}
		wantFunnel := []migration.FunnelRow{
			{Network: "telegram", Bridged: 1, Invited: 1, CutOver: 1, Total: 3, ReachedInvited: 2, ReachedLinked: 1},
			{Network: "whatsapp", Bridged: 1, Linked: 1, Total: 2, ReachedInvited: 1, ReachedLinked: 1},
		}
		if !reflect.DeepEqual(rep.Funnel, wantFunnel) {
			t.Errorf("funnel:\n got %+v\nwant %+v", rep.Funnel, wantFunnel)
		}
		// No portal was cut over (the contact's status was set alone).
		if want := []migration.NetworkCount{{Network: "telegram", Count: 0}, {Network: "whatsapp", Count: 0}}; !reflect.DeepEqual(rep.ChatsCutOver, want) || rep.ChatsCutOverCounts != migration.ChatsCountedAsPortals {
			t.Errorf("chats cut over: %+v (%s)", rep.ChatsCutOver, rep.ChatsCutOverCounts)
		}
		if want := []migration.LoginCount{{Network: "telegram", Staff: 2, Logins: 3}, {Network: "whatsapp", Staff: 1, Logins: 1}}; !reflect.DeepEqual(rep.StaffLogins, want) {
			t.Errorf("staff logins: %+v", rep.StaffLogins)
		}
		// Press: 2 active, both linked or beyond; border messages of the
		// last 4 weeks (W09 deleted): amina 5, press 1. Legal: the staff
		// member's link of wa49 is pending, so bridged, 1 message;
		// telegram.77 (Alice's department) invited, 2 messages.
		wantDepts := []migration.DepartmentRow{
			{Department: "Press", Active: 2, LinkedOrBeyond: 2, Percent: 100, BorderMessages: 6},
			{Department: "Legal", Active: 2, BorderMessages: 3},
		}
		if !reflect.DeepEqual(rep.Departments, wantDepts) {
			t.Errorf("departments:\n got %+v\nwant %+v", rep.Departments, wantDepts)
		}

		// Chats cut over are the cut-over table's portals.
		raw := b.Open(t)
		if _, err = raw.Exec(ctx, `CREATE TABLE IF NOT EXISTS governance_cutover (
			portal_id TEXT NOT NULL, portal_receiver TEXT NOT NULL, network TEXT NOT NULL, kind TEXT NOT NULL,
			old_room TEXT NOT NULL, new_room TEXT NOT NULL, staff TEXT NOT NULL, contact TEXT NOT NULL DEFAULT '',
			actor TEXT NOT NULL, created_as TEXT NOT NULL, cut_at BIGINT NOT NULL, PRIMARY KEY (portal_id, portal_receiver))`); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"telegram.u1", "telegram.g2"} {
			if _, err = raw.Exec(ctx, `INSERT INTO governance_cutover (portal_id, portal_receiver, network, kind, old_room, new_room, staff, actor, created_as, cut_at)
				VALUES ($1, '', 'telegram', 'dm', '!old:test', '!new:test', '@alice:test', '@alice:test', 'bot', 0)`, p); err != nil {
				t.Fatal(err)
			}
		}
		withPortals, err := figs.Progress(ctx, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := []migration.NetworkCount{{Network: "telegram", Count: 2}, {Network: "whatsapp", Count: 0}}; !reflect.DeepEqual(withPortals.ChatsCutOver, want) || withPortals.ChatsCutOverCounts != migration.ChatsCountedAsPortals {
			t.Errorf("portals cut over: %+v (%s)", withPortals.ChatsCutOver, withPortals.ChatsCutOverCounts)
		}
		// A database without the table (a gateway before store upgrade 8):
		// the contacts with status cut_over.
		if _, err = raw.Exec(ctx, `DROP TABLE governance_cutover`); err != nil {
			t.Fatal(err)
		}
		noTable, err := figs.Progress(ctx, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := []migration.NetworkCount{{Network: "telegram", Count: 1}, {Network: "whatsapp", Count: 0}}; !reflect.DeepEqual(noTable.ChatsCutOver, want) || noTable.ChatsCutOverCounts != migration.ChatsCountedAsContacts {
			t.Errorf("chats cut over without the table: %+v (%s)", noTable.ChatsCutOver, noTable.ChatsCutOverCounts)
		}

		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var back migration.Report
		if err = json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back.Departments, rep.Departments) || !reflect.DeepEqual(back.Border, rep.Border) {
			t.Errorf("JSON round trip: %v\n%s", err, data)
		}
		tables := rep.Tables()
		if len(tables) != len(migration.TableNames) {
			t.Fatalf("%d tables", len(tables))
		}
		for i, tb := range tables {
			if tb.Name != migration.TableNames[i] {
				t.Errorf("table %d is %s", i, tb.Name)
			}
			for _, row := range tb.Rows {
				if len(row) != len(tb.Header) {
					t.Errorf("table %s: row %v does not match header %v", tb.Name, row, tb.Header)
				}
			}
		}
		if depts, _ := rep.Table("departments"); !reflect.DeepEqual(depts.Rows[0], []string{"Press", "2", "2", "100.0", "6"}) {
			t.Errorf("departments table: %v", depts.Rows)
		}
	})
}

func netOf(remoteID string) string {
	for i := range remoteID {
		if remoteID[i] == '.' {
			return remoteID[:i]
		}
	}
	return remoteID
}
