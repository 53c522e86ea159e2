package migration_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
)

var testHashKey = []byte("0123456789abcdef0123456789abcdef")

func TestResolve(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
			var key []byte
			if hashed {
				key = testHashKey
			}
			f := newFixture(t, b, key)
			ctx := context.Background()
			for _, tc := range []struct {
				in      string
				network string
				remote  string
				err     error
			}{
				{"+33 6 12 34 56 78", "whatsapp", "whatsapp.33612345678", nil},
				{"0033612345678", "whatsapp", "whatsapp.33612345678", nil},
				{"whatsapp.33612345678", "whatsapp", "whatsapp.33612345678", nil},
				{"@press_office", "telegram", "telegram.4242", nil},
				{"@PRESS_OFFICE", "telegram", "telegram.4242", nil},
				{"4242", "telegram", "telegram.4242", nil},
				{"telegram:+49 151 12345678", "telegram", "telegram.77", nil},
				{"whatsapp:+4915112345678", "whatsapp", "whatsapp.4915112345678", nil},
				{"+4915112345678", "", "", migration.ErrAmbiguousContact},
				{"+33 7 00 00 00 00", "", "", migration.ErrUnknownContact},
				{"@nobody", "", "", migration.ErrUnknownContact},
				{"06 12 34 56 78", "", "", migration.ErrBadIdentity},
				{"", "", "", migration.ErrBadIdentity},
			} {
				got, err := f.dir.Resolve(ctx, tc.in)
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Errorf("hashed=%v Resolve(%q) = %v, %v; want error %v", hashed, tc.in, got, err, tc.err)
					}
					continue
				}
				if err != nil || got != f.ident(tc.network, tc.remote) {
					t.Errorf("hashed=%v Resolve(%q) = %v, %v; want %s", hashed, tc.in, got, err, tc.remote)
				}
				if hashed && strings.Contains(got.Contact, "336") {
					t.Errorf("hashed registry: Resolve(%q) shows the number: %q", tc.in, got.Contact)
				}
			}
		})
	}
}

func TestValidateMatrixID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"@amina:example.org", true},
		{"@amina:matrix.other-org.example:8448", true},
		{"amina:example.org", false},
		{"@amina", false},
		{"@:example.org", false},
		{"@ami na:example.org", false},
		{"!room:example.org", false},
	} {
		_, err := migration.ValidateMatrixID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateMatrixID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestDirectoryLinkCorrectUnlink(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, testHashKey)
		ctx := context.Background()
		amina := f.ident("whatsapp", "whatsapp.33612345678")
		start := f.head(t)

		e, err := f.dir.Link(ctx, "@admin:example.org", migration.LinkRequest{Identity: amina, MatrixID: "@amina:example.org", Department: "Press", Label: "Journalist", Source: migration.SourceAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if e.State != migration.StateConfirmed || e.MatrixID != "@amina:example.org" || e.Department != "Press" {
			t.Fatalf("admin link = %+v", e)
		}
		if st, _, _ := f.dir.Status(ctx, amina); st != migration.StatusLinked {
			t.Errorf("status after link = %s, want linked", st)
		}
		// Correct: another Matrix account, on another server.
		f.clock.Advance(1)
		e, err = f.dir.Link(ctx, "@admin:example.org", migration.LinkRequest{Identity: amina, MatrixID: "@amina:other.example", Source: migration.SourceAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if e.MatrixID != "@amina:other.example" || e.Department != "Press" || e.Label != "Journalist" {
			t.Errorf("corrected link = %+v, want the new ID and the old department and label", e)
		}
		if _, err = f.dir.Link(ctx, "@admin:example.org", migration.LinkRequest{Identity: amina, MatrixID: "amina", Source: migration.SourceAdmin}); !errors.Is(err, migration.ErrBadMatrixID) {
			t.Errorf("link to a bad Matrix ID: %v", err)
		}
		// A staff member cannot overwrite a confirmed link.
		if _, err = f.dir.Link(ctx, "@staff:example.org", migration.LinkRequest{Identity: amina, MatrixID: "@mallory:example.org", Source: migration.SourceStaff}); err == nil {
			t.Error("a staff member overwrote a confirmed link")
		}
		if _, err = f.dir.Unlink(ctx, "@admin:example.org", amina); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.dir.Get(ctx, amina); got != nil {
			t.Errorf("after unlink: %+v", got)
		}
		if st, _, _ := f.dir.Status(ctx, amina); st != migration.StatusBridged {
			t.Errorf("status after unlink = %s, want bridged", st)
		}
		if _, err = f.dir.Unlink(ctx, "@admin:example.org", amina); !errors.Is(err, migration.ErrNotLinked) {
			t.Errorf("second unlink: %v", err)
		}

		var got []string
		for _, en := range f.entries(t, start) {
			got = append(got, string(en.Action)+" "+en.Actor)
			if en.Contact != amina.Contact || en.Network != "whatsapp" {
				t.Errorf("entry %d names %s %q, want the contact's key", en.Seq, en.Network, en.Contact)
			}
			if strings.Contains(string(en.Details), "33612345678") {
				t.Errorf("entry %d shows the number in hashed mode: %s", en.Seq, en.Details)
			}
		}
		want := []string{
			"directory_linked @admin:example.org", "migration_status @admin:example.org",
			"directory_corrected @admin:example.org",
			"directory_unlinked @admin:example.org", "migration_status @admin:example.org",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if r, err := f.log.Verify(ctx); err != nil || len(r.Problems) > 0 {
			t.Errorf("log verify: %+v, %v", r, err)
		}
	})
}

func TestDirectoryStaffLinks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, nil)
		ctx := context.Background()
		press := f.ident("telegram", "telegram.4242")
		e, err := f.dir.Link(ctx, "@staff:example.org", migration.LinkRequest{Identity: press, MatrixID: "@press:example.org", Source: migration.SourceStaff})
		if err != nil {
			t.Fatal(err)
		}
		if e.State != migration.StatePending {
			t.Fatalf("staff link in confirm mode: %s, want pending", e.State)
		}
		if st, _, _ := f.dir.Status(ctx, press); st != migration.StatusBridged {
			t.Errorf("a pending link made the contact %s", st)
		}
		pending, err := f.dir.List(ctx, migration.ListFilter{State: migration.StatePending})
		if err != nil || len(pending) != 1 || pending[0].MatrixID != "@press:example.org" {
			t.Fatalf("pending list = %+v, %v", pending, err)
		}
		if _, err = f.dir.Confirm(ctx, "@admin:example.org", press); err != nil {
			t.Fatal(err)
		}
		if _, err = f.dir.Confirm(ctx, "@admin:example.org", press); !errors.Is(err, migration.ErrNotPending) {
			t.Errorf("second confirm: %v", err)
		}
		if st, _, _ := f.dir.Status(ctx, press); st != migration.StatusLinked {
			t.Errorf("confirmed link: status %s, want linked", st)
		}

		f.dir.StaffLinks = migration.StaffLinksTrust
		amina := f.ident("whatsapp", "whatsapp.33612345678")
		e, err = f.dir.Link(ctx, "@staff:example.org", migration.LinkRequest{Identity: amina, MatrixID: "@amina:example.org", Source: migration.SourceStaff})
		if err != nil || e.State != migration.StateConfirmed {
			t.Fatalf("staff link in trust mode: %+v, %v", e, err)
		}
		entries := f.entries(t, 0)
		var confirmed int
		for _, en := range entries {
			if en.Action == migration.ActionDirectoryConfirmed {
				confirmed++
				if en.Actor != "@admin:example.org" {
					t.Errorf("confirmed by %s", en.Actor)
				}
			}
		}
		if confirmed != 1 {
			t.Errorf("%d confirmations logged, want 1", confirmed)
		}
	})
}

func TestDirectoryImport(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, testHashKey)
		ctx := context.Background()
		csv := strings.Join([]string{
			"identity,matrix_id,department,label",
			"+33 6 12 34 56 78,@amina:example.org,Press,Journalist",
			"@press_office,@press:partner.example,Comms",
			"4242,not-a-mxid",
			"+33 7 00 00 00 00,@ghost:example.org",
			"\"unterminated",
		}, "\n")
		res, err := f.dir.Import(ctx, "@admin:example.org", strings.NewReader(csv))
		if err == nil {
			t.Fatalf("a broken CSV was accepted: %+v", res)
		}
		csv = strings.Join([]string{
			"identity,matrix_id,department,label",
			"+33 6 12 34 56 78,@amina:example.org,Press,Journalist",
			"@press_office,@press:partner.example,Comms",
			"4242,not-a-mxid",
			"+33 7 00 00 00 00,@ghost:example.org",
			"+4915112345678,@amb:example.org",
			"only-one-column",
		}, "\n")
		res, err = f.dir.Import(ctx, "@admin:example.org", strings.NewReader(csv))
		if err != nil {
			t.Fatal(err)
		}
		if res.Linked != 2 || res.Failed != 4 {
			t.Errorf("import = %+v, want 2 linked and 4 failed", res)
		}
		var lines []int
		for _, re := range res.Errors {
			lines = append(lines, re.Line)
		}
		if len(lines) != 4 || lines[0] != 4 || lines[1] != 5 || lines[2] != 6 || lines[3] != 7 {
			t.Errorf("failed lines = %v (%+v), want 4 5 6 7", lines, res.Errors)
		}
		list, err := f.dir.List(ctx, migration.ListFilter{})
		if err != nil || len(list) != 2 {
			t.Fatalf("directory after import = %+v, %v", list, err)
		}
		if list[0].Source != migration.SourceImport || list[0].State != migration.StateConfirmed {
			t.Errorf("imported entry = %+v", list[0])
		}
		// The same import again changes nothing.
		res, err = f.dir.Import(ctx, "@admin:example.org", strings.NewReader(csv))
		if err != nil || res.Linked != 0 || res.Unchanged != 2 {
			t.Errorf("second import = %+v, %v; want 2 unchanged", res, err)
		}
		big := strings.Repeat("+33612345678,@a:example.org\n", migration.MaxImportBytes/28+2)
		if _, err = f.dir.Import(ctx, "@admin:example.org", strings.NewReader(big)); !errors.Is(err, migration.ErrImportTooLarge) {
			t.Errorf("too large import: %v", err)
		}
		rows := strings.Repeat("1,@a:b.c\n", migration.MaxImportRows+1)
		if _, err = f.dir.Import(ctx, "@admin:example.org", strings.NewReader(rows)); !errors.Is(err, migration.ErrImportTooLarge) {
			t.Errorf("too many rows: %v", err)
		}
		var imports int
		for _, en := range f.entries(t, 0) {
			if en.Action == migration.ActionDirectoryLinked {
				imports++
			}
		}
		if imports != 2 {
			t.Errorf("%d links audited, want 2", imports)
		}
	})
}
