package migration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// talk records a message between staff and a contact at the fixture's
// clock.
func (f *fixture) talk(t *testing.T, network, remoteID string, staff id.UserID) {
	t.Helper()
	_, err := f.reg.Record(context.Background(), audit.Observation{
		Network: network, RemoteID: networkid.UserID(remoteID), Staff: staff,
		Login: networkid.UserLoginID(network + ".login-" + string(staff)), Portal: networkid.PortalID(remoteID),
		Direction: audit.Inbound, Kind: audit.KindMessage,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStaffDepartments(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, nil)
		ctx := context.Background()
		const alice, bob, carol id.UserID = "@alice:example.org", "@bob:example.org", "@carol:example.org"

		// The config file's departments, applied at start.
		n, err := f.dir.ApplyConfigDepartments(ctx, map[string][]id.UserID{"Press": {alice, bob}, "Legal": {carol}})
		if err != nil || n != 3 {
			t.Fatalf("ApplyConfigDepartments = %d, %v", n, err)
		}
		// An admin moves Bob; a restart with the same config keeps that.
		head := f.head(t)
		if err = f.dir.SetStaffDepartment(ctx, "@admin:example.org", bob, "Legal"); err != nil {
			t.Fatal(err)
		}
		entries := f.entries(t, head)
		if len(entries) != 1 || entries[0].Action != migration.ActionDepartmentChanged || entries[0].Staff != bob || entries[0].Actor != "@admin:example.org" ||
			!strings.Contains(string(entries[0].Details), `"department":"Legal"`) || !strings.Contains(string(entries[0].Details), `"previous":"Press"`) {
			t.Errorf("audit of the change: %+v", entries)
		}
		if n, err = f.dir.ApplyConfigDepartments(ctx, map[string][]id.UserID{"Press": {alice, bob}, "Legal": {carol}}); err != nil || n != 0 {
			t.Errorf("second ApplyConfigDepartments = %d, %v", n, err)
		}
		// Carol leaves the config file: out of her department.
		if n, err = f.dir.ApplyConfigDepartments(ctx, map[string][]id.UserID{"Press": {alice, bob}}); err != nil || n != 1 {
			t.Errorf("ApplyConfigDepartments without Carol = %d, %v", n, err)
		}
		got, err := f.dir.StaffDepartments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[alice] != "Press" || got[bob] != "Legal" {
			t.Errorf("StaffDepartments = %v", got)
		}

		// Bad input.
		for _, tc := range []struct {
			staff id.UserID
			dept  string
			want  string
		}{
			{"alice", "Press", "not a valid Matrix user ID"},
			{alice, strings.Repeat("x", 101), "longer than"},
			{alice, "Press\nLegal", "line break"},
		} {
			if err := f.dir.SetStaffDepartment(ctx, "@admin:example.org", tc.staff, tc.dept); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SetStaffDepartment(%q, %q) = %v, want %q", tc.staff, tc.dept, err, tc.want)
			}
		}
		if _, err := f.dir.ApplyConfigDepartments(ctx, map[string][]id.UserID{"Press": {alice}, "Legal": {alice}}); err == nil || !strings.Contains(err.Error(), "two departments") {
			t.Errorf("a staff member in two departments: %v", err)
		}
		// Clearing.
		if err = f.dir.SetStaffDepartment(ctx, "@admin:example.org", bob, ""); err != nil {
			t.Fatal(err)
		}
		if got, _ = f.dir.StaffDepartments(ctx); got[bob] != "" || len(got) != 1 {
			t.Errorf("after clearing Bob: %v", got)
		}
	})
}

func TestActiveContacts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, testHashKey)
		ctx := context.Background()
		const alice, bob id.UserID = "@alice:example.org", "@bob:example.org"
		if err := f.dir.SetStaffDepartment(ctx, "@admin:example.org", alice, "Press"); err != nil {
			t.Fatal(err)
		}
		if err := f.dir.SetStaffDepartment(ctx, "@admin:example.org", bob, "Legal"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute) // after the fixture's sightings
		start := f.clock.Now()
		// Amina talked with Alice, then with Bob: Bob's department.
		f.talk(t, "whatsapp", "whatsapp.33612345678", alice)
		f.clock.Advance(time.Hour)
		f.talk(t, "whatsapp", "whatsapp.33612345678", bob)
		// Press (Telegram) talked with Bob, but the directory says Press.
		f.talk(t, "telegram", "telegram.4242", bob)
		if _, err := f.dir.Link(ctx, "@admin:example.org", migration.LinkRequest{Identity: f.ident("telegram", "telegram.4242"), MatrixID: "@press:example.org", Department: "Press", Source: migration.SourceAdmin}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		// telegram.77 talked with Alice most recently.
		f.talk(t, "telegram", "telegram.77", alice)

		all, err := f.dir.ActiveContacts(ctx, start, "")
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, c := range all {
			lines = append(lines, c.Network+" "+c.Department+" "+string(c.Status)+" "+joinIDs(c.Staff))
		}
		want := []string{
			"telegram Press bridged @alice:example.org",
			"telegram Press linked @bob:example.org", // seen as late as Amina: by network
			"whatsapp Legal bridged @bob:example.org,@alice:example.org",
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("ActiveContacts:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		if all[0].Contact != f.ident("telegram", "telegram.77").Contact || !all[0].LastSeen.Equal(f.clock.Now()) {
			t.Errorf("first contact %+v", all[0])
		}
		press, err := f.dir.ActiveContacts(ctx, start, "Press")
		if err != nil || len(press) != 2 || press[0].Contact != f.ident("telegram", "telegram.77").Contact || press[1].Contact != f.ident("telegram", "telegram.4242").Contact {
			t.Errorf("ActiveContacts(Press) = %+v, %v", press, err)
		}
		// Only the recent ones.
		recent, err := f.dir.ActiveContacts(ctx, f.clock.Now().Add(-30*time.Minute), "")
		if err != nil || len(recent) != 1 {
			t.Errorf("ActiveContacts(last 30 min) = %+v, %v", recent, err)
		}
		if none, err := f.dir.ActiveContacts(ctx, start, "Accounts"); err != nil || len(none) != 0 {
			t.Errorf("ActiveContacts(Accounts) = %+v, %v", none, err)
		}
	})
}

func joinIDs(ids []id.UserID) string {
	s := make([]string, len(ids))
	for i, x := range ids {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}
