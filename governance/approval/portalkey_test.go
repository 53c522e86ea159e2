package approval_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// staffChat is the direct chat of one contact as staff member who sees it:
// the same portal ID for everyone, only the receiver differs.
func staffChat(who string) approval.NewRequest {
	login := networkid.UserLoginID("telegram." + who)
	return approval.NewRequest{Network: "telegram", Direction: audit.Inbound, Staff: id.UserID("@" + who + ":example.org"),
		Login: login, Portal: networkid.PortalKey{ID: "telegram.u4242", Receiver: login}, Contact: "telegram.4242", ContactName: "Xavier"}
}

func TestTwoStaffOneContactEachTheirOwnRequest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		_, s, _, _ := setup(t, b)
		a, bob := staffChat("alice"), staffChat("bob")
		ra := hold(t, s, a, "hello alice", start)
		rb := hold(t, s, bob, "SECRET for bob only", start.Add(time.Second))
		if ra.ID == rb.ID {
			t.Fatalf("alice and bob share request %d", ra.ID)
		}
		hold(t, s, a, "alice again", start.Add(2*time.Second))
		if _, err := s.Approve(ctx, ra.ID, "@admin:example.org", ""); err != nil {
			t.Fatal(err)
		}
		held, err := s.Held(ctx, ra.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := payloads(held); len(got) != 2 || got[0] != "hello alice" || got[1] != "alice again" {
			t.Fatalf("alice's held = %q", got)
		}
		for _, m := range held {
			if m.Login != a.Login {
				t.Fatalf("held event of %s in alice's request", m.Login)
			}
		}
		lastB, err := s.LastForChat(ctx, bob.Portal)
		if err != nil || lastB == nil || lastB.ID != rb.ID || lastB.State != approval.StatePending {
			t.Fatalf("bob's request after alice's approval = %+v, %v", lastB, err)
		}
		heldB, _ := s.Held(ctx, rb.ID)
		if got := payloads(heldB); len(got) != 1 || got[0] != "SECRET for bob only" {
			t.Fatalf("bob's held = %q", got)
		}
		// Bob's next message still waits for bob's own request.
		if r := hold(t, s, bob, "bob again", start.Add(3*time.Second)); r.ID != rb.ID || r.HeldCount != 2 {
			t.Fatalf("bob's second hold = %+v", r)
		}
		if _, err := s.Deny(ctx, rb.ID, "@admin:example.org", ""); err != nil {
			t.Fatal(err)
		}
		if lastA, _ := s.LastForChat(ctx, a.Portal); lastA == nil || lastA.State != approval.StateApproved {
			t.Fatalf("denying bob changed alice's chat: %+v", lastA)
		}
	})
}

func TestHoldRefusesAnotherLoginsEvent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		_, s, _, _ := setup(t, b)
		a := staffChat("alice")
		_, _, err := s.Hold(context.Background(), a, approval.HeldMessage{Time: start, Login: "telegram.bob", Payload: []byte("x")})
		if !errors.Is(err, approval.ErrWrongLogin) {
			t.Fatalf("hold of bob's event in alice's request: %v", err)
		}
	})
}

func payloads(held []approval.HeldMessage) []string {
	out := make([]string, len(held))
	for i, m := range held {
		out[i] = string(m.Payload)
	}
	return out
}

// TestUpgradeKeysExistingRequestsByReceiver upgrades a governance database
// of the first release (schema v1, requests keyed by portal ID alone) in
// place: existing requests and held events belong to their login's portal.
func TestUpgradeKeysExistingRequestsByReceiver(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		raw := b.Open(t)
		v1 := store.Child(raw)
		if _, err := v1.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+store.VersionTable+` (version INTEGER, compat INTEGER)`); err != nil {
			t.Fatal(err)
		}
		// Run only the v0 -> v1 upgrade, as the first release did.
		up := store.Table[0]
		if err := v1.DoTxn(ctx, nil, func(ctx context.Context) error { _, _, err := up.DangerouslyRun(ctx, v1); return err }); err != nil {
			t.Fatalf("v1 schema: %v", err)
		}
		if _, err := v1.Exec(ctx, `INSERT INTO `+store.VersionTable+` (version, compat) VALUES (1, 1)`); err != nil {
			t.Fatal(err)
		}
		_, err := v1.Exec(ctx, `INSERT INTO governance_approval_request (id, network, direction, staff, login, portal, is_group,
			contact, contact_name, contact_ident, state, created_at, expires_at, held_count)
			VALUES (7, 'telegram', 'inbound', '@alice:example.org', 'telegram.alice', 'telegram.u4242', false, 'telegram.4242',
			'Xavier', '', 'pending', 1, 99999999999999, 1)`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = v1.Exec(ctx, `INSERT INTO governance_approval_held (request_id, ord, ts, payload) VALUES (7, 1, 1, $1)`, []byte("old")); err != nil {
			t.Fatal(err)
		}
		db, err := store.Open(ctx, raw)
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		s := approval.NewStore(db, nil, ttl)
		a := staffChat("alice")
		last, err := s.LastForChat(ctx, a.Portal)
		if err != nil || last == nil || last.ID != 7 || last.Portal != a.Portal {
			t.Fatalf("alice's request after upgrade = %+v, %v", last, err)
		}
		if other, _ := s.LastForChat(ctx, staffChat("bob").Portal); other != nil {
			t.Fatalf("bob sees alice's request after upgrade: %+v", other)
		}
		held, err := s.Held(ctx, 7)
		if err != nil || len(held) != 1 || held[0].Login != "telegram.alice" || string(held[0].Payload) != "old" {
			t.Fatalf("held after upgrade = %+v, %v", held, err)
		}
		// Bob gets his own request; alice's pending one is still the one.
		rb, created, err := s.Create(ctx, staffChat("bob"))
		if err != nil || !created || rb.ID == 7 {
			t.Fatalf("bob's request after upgrade = %+v, %v, %v", rb, created, err)
		}
	})
}
