package approval_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// In hashed mode the store keeps requests and held events sealed, finds a
// chat by its real portal key, and gives back the real login, portal key
// and payloads.
func TestSealedStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db, s, log, clk := setup(t, b)
		sealer, err := seal.New([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		s.Seal, log.Seal = sealer, sealer
		nr := chat(1)
		nr.Login, nr.Portal.Receiver = "whatsapp.33600000001", "whatsapp.33600000001"
		nr.ContactIdent = ""
		first := hold(t, s, nr, `{"from":"33612345671@s.whatsapp.net","text":"one"}`, clk.Now())
		second := hold(t, s, nr, `{"from":"33612345671@s.whatsapp.net","text":"two"}`, clk.Now())
		if second.ID != first.ID || second.HeldCount != 2 || second.Portal != nr.Portal || second.Login != nr.Login {
			t.Fatalf("second hold: %+v", second)
		}
		last, err := s.LastForChat(ctx, nr.Portal)
		if err != nil || last == nil || last.ID != first.ID {
			t.Fatalf("LastForChat = %+v, %v", last, err)
		}
		req, err := s.Approve(ctx, first.ID, "@admin:example.org", "")
		if err != nil || req.Portal != nr.Portal || req.Login != nr.Login {
			t.Fatalf("Approve = %+v, %v", req, err)
		}
		held, err := s.Held(ctx, first.ID)
		if err != nil || len(held) != 2 || held[0].Login != nr.Login || !strings.Contains(string(held[1].Payload), `"two"`) {
			t.Fatalf("Held = %+v, %v", held, err)
		}
		other := chat(2)
		other.ContactIdent = ""
		denied := hold(t, s, other, "x", clk.Now())
		if _, err = s.Deny(ctx, denied.ID, "@admin:example.org", "called +33 6 12 34 56 72"); err != nil {
			t.Fatal(err)
		}

		for _, q := range []string{
			"SELECT login || ' ' || portal || ' ' || receiver || ' ' || contact || ' ' || contact_name || ' ' || contact_ident || ' ' || reason FROM governance_approval_request",
			"SELECT login FROM governance_approval_held",
		} {
			rows, err := db.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v string
				if err = rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				if seal.LooksLikeNumber(v) {
					t.Errorf("%s: %q holds a number", q, v)
				}
			}
			rows.Close()
		}
		var payload []byte
		if err = db.QueryRow(ctx, "SELECT payload FROM governance_approval_held LIMIT 1").Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(payload, []byte("3361234")) || bytes.Contains(payload, []byte("text")) {
			t.Errorf("held payload stored in the clear: %q", payload)
		}
	})
}

// Turning hashed mode on later: SealExisting seals the requests and held
// events stored before, and the store still finds their chats.
func TestSealExisting(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db, s, _, clk := setup(t, b)
		pending, denied := chat(1), chat(2)
		first := hold(t, s, pending, `{"from":"33612345671@s.whatsapp.net"}`, clk.Now())
		second := hold(t, s, denied, "x", clk.Now())
		if _, err := s.Deny(ctx, second.ID, "@admin:example.org", ""); err != nil {
			t.Fatal(err)
		}
		sealer, err := seal.New([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		s.Seal = sealer
		if n, err := s.SealExisting(ctx); err != nil || n != 3 {
			t.Fatalf("SealExisting = %d, %v; want 3 rows", n, err)
		}
		if n, err := s.SealExisting(ctx); err != nil || n != 0 {
			t.Fatalf("SealExisting again = %d, %v; want 0", n, err)
		}
		if last, err := s.LastForChat(ctx, denied.Portal); err != nil || last == nil || last.ID != second.ID {
			t.Fatalf("denied chat after sealing: %+v, %v", last, err)
		}
		again := hold(t, s, pending, "later", clk.Now())
		if again.ID != first.ID || again.HeldCount != 2 {
			t.Fatalf("pending chat after sealing: %+v", again)
		}
		held, err := s.Held(ctx, first.ID)
		if err != nil || len(held) != 2 || string(held[0].Payload) != `{"from":"33612345671@s.whatsapp.net"}` || held[0].Login != pending.Login {
			t.Fatalf("held after sealing: %+v, %v", held, err)
		}
		var v string
		err = db.QueryRow(ctx, "SELECT login || portal || receiver || contact || contact_ident FROM governance_approval_request WHERE id = $1", first.ID).Scan(&v)
		if err != nil || seal.LooksLikeNumber(v) {
			t.Fatalf("sealed request row: %q, %v", v, err)
		}
	})
}
