package migration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func TestClaimCodes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, testHashKey)
		ctx := context.Background()
		f.dir.ClaimTTL = 30 * time.Minute
		amina := f.ident("whatsapp", "whatsapp.33612345678")
		press := f.ident("telegram", "telegram.4242")

		code, expires, err := f.dir.IssueClaim(ctx, "@amina:other.example", "!dm:example.org")
		if err != nil {
			t.Fatal(err)
		}
		if !migration.LooksLikeClaim(code) || len(code) != len("MX-ABCDE-FGHJK") || !expires.Equal(f.clock.Now().Add(30*time.Minute)) {
			t.Fatalf("code %q, expires %s", code, expires)
		}
		code2, _, _ := f.dir.IssueClaim(ctx, "@other:example.org", "!dm2:example.org")
		if code2 == code {
			t.Fatal("two users got the same code")
		}
		for _, entry := range f.entries(t, 0) {
			if strings.Contains(string(entry.Details), code[3:8]) {
				t.Errorf("the audit log holds the code: %s", entry.Details)
			}
		}

		// Not a code, a wrong code: just messages.
		for _, text := range []string{"hello", "MX-AAAAA-AAAAA", code + " please", ""} {
			if c, ok, err := f.dir.Redeem(ctx, amina, text); ok || err != nil || c != nil {
				t.Errorf("Redeem(%q) = %v, %v, %v", text, c, ok, err)
			}
		}
		// The code, typed loosely.
		typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
		c, ok, err := f.dir.Redeem(ctx, amina, "  "+typed+"\n")
		if err != nil || !ok {
			t.Fatalf("Redeem(%q) = %v, %v", typed, ok, err)
		}
		if c.MatrixID != "@amina:other.example" || c.RoomID != "!dm:example.org" || c.Entry.Source != migration.SourceClaim || c.Entry.State != migration.StateConfirmed {
			t.Errorf("claim = %+v, entry %+v", c, c.Entry)
		}
		if st, _, _ := f.dir.Status(ctx, amina); st != migration.StatusLinked {
			t.Errorf("status after claim = %s", st)
		}
		// Single use.
		if _, ok, _ = f.dir.Redeem(ctx, press, code); ok {
			t.Error("a code was used twice")
		}
		// Expired.
		f.clock.Advance(31 * time.Minute)
		if _, ok, _ = f.dir.Redeem(ctx, press, code2); ok {
			t.Error("an expired code linked")
		}
		if e, _ := f.dir.Get(ctx, press); e != nil {
			t.Errorf("press linked by an expired code: %+v", e)
		}
		// A new code voids the user's older one.
		old, _, _ := f.dir.IssueClaim(ctx, "@press:example.org", "!dm3:example.org")
		newer, _, _ := f.dir.IssueClaim(ctx, "@press:example.org", "!dm3:example.org")
		if _, ok, _ = f.dir.Redeem(ctx, press, old); ok {
			t.Error("a replaced code linked")
		}
		// A claim confirms a staff member's pending link, to the claimant.
		if _, err = f.dir.Link(ctx, "@staff:example.org", migration.LinkRequest{Identity: press, MatrixID: "@wrong:example.org", Source: migration.SourceStaff}); err != nil {
			t.Fatal(err)
		}
		if c, ok, err = f.dir.Redeem(ctx, press, newer); !ok || err != nil || c.Entry.MatrixID != "@press:example.org" || c.Entry.State != migration.StateConfirmed {
			t.Errorf("claim over a pending link: %+v, %v, %v", c, ok, err)
		}
		var linkedBy []string
		for _, en := range f.entries(t, 0) {
			if en.Action == migration.ActionDirectoryLinked || en.Action == migration.ActionDirectoryCorrected {
				linkedBy = append(linkedBy, en.Actor)
			}
		}
		if strings.Join(linkedBy, " ") != "@amina:other.example @staff:example.org @press:example.org" {
			t.Errorf("links made by %v", linkedBy)
		}
	})
}
