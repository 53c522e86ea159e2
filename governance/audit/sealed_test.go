package audit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// In hashed mode, an entry's login, portal, contact and the identifiers and
// numbers in its details are stored as pseudonyms, hashed as stored; a
// filter by the real portal still finds the entry.
func TestSealedEntries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		s, err := seal.New([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		l := audit.NewLog(openDB(t, b))
		l.Seal = s
		e, err := l.Append(ctx, audit.Entry{
			Actor: audit.ActorSystem, Action: audit.ActionPortalCreated, Network: "whatsapp", Staff: "@alice:example.org",
			Login: "whatsapp.33612345678", Portal: "whatsapp.33698765432", Contact: "whatsapp.33698765432",
			Details: audit.Details(map[string]any{"receiver": "whatsapp.33612345678", "room_id": "!room:example.org",
				"remote_name": "+33 6 12 34 56 78", "other_name": "+1 555-000-1111", "expires_at": "2026-12-07T21:31:52.647Z", "args": []string{"whatsapp.33698765432", "because"}, "held": 3,
				"head_hash": "0123456789012345678901234567890123456789012345678901234567890abc"}),
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.List(ctx, audit.Filter{Portal: "whatsapp.33698765432"})
		if err != nil || len(got) != 1 {
			t.Fatalf("filter by the real portal: %d entries, %v", len(got), err)
		}
		stored := got[0]
		if stored.Hash != e.Hash || string(stored.Details) != string(e.Details) {
			t.Fatalf("Append returned %+v, stored %+v", e, stored)
		}
		for _, v := range []string{string(stored.Login), string(stored.Portal), stored.Contact} {
			if !seal.IsPseudonym(v) {
				t.Errorf("%q is not a pseudonym", v)
			}
		}
		details := string(stored.Details)
		kept := strings.NewReplacer("0123456789012345678901234567890123456789012345678901234567890abc", "", "2026-12-07T21:31:52.647Z", "").Replace(details)
		if seal.LooksLikeNumber(kept) || !strings.Contains(details, `"!room:example.org"`) || !strings.Contains(details, `"because"`) || !strings.Contains(details, `"2026-12-07T21:31:52.647Z"`) ||
			!strings.Contains(details, `"held":3`) || !strings.Contains(details, `"0123456789012345678901234567890123456789012345678901234567890abc"`) || !strings.Contains(details, s.Pseudonym(seal.KindLogin, "whatsapp.33612345678")) {
			t.Errorf("details stored as %s", details)
		}
		if r := mustVerify(t, l); !r.OK() {
			t.Fatalf("chain does not verify: %+v", r)
		}
	})
}
