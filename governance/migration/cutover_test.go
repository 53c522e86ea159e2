package migration_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestCutOverRecord: a cut-over is recorded once per portal key (the same
// portal ID with another staff member's receiver is another chat), makes
// the contact cut_over, is audited, shows in the staff member's view, and in
// hashed mode keeps no portal or login ID in clear.
func TestCutOverRecord(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
			var key []byte
			if hashed {
				key = testHashKey
			}
			f := newFixture(t, b, key)
			ctx := context.Background()
			const staff id.UserID = "@alice:example.org"
			amina := f.ident("whatsapp", "whatsapp.33612345678")
			portal := networkid.PortalKey{ID: "whatsapp.33612345678", Receiver: "whatsapp.33700000001"}
			if _, err := f.reg.Record(ctx, audit.Observation{Network: "whatsapp", RemoteID: "whatsapp.33612345678", Staff: staff,
				Login: portal.Receiver, Portal: portal.ID, Direction: audit.Inbound, Kind: audit.KindMessage}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.dir.Link(ctx, "@admin:example.org", migration.LinkRequest{Identity: amina, MatrixID: "@amina:example.org", Source: migration.SourceAdmin}); err != nil {
				t.Fatal(err)
			}
			seq := f.head(t)
			c, err := f.dir.RecordCutOver(ctx, migration.CutOver{Portal: portal, Network: "whatsapp", Kind: migration.KindDM, OldRoom: "!old:example.org",
				NewRoom: "!new:example.org", Staff: staff, Contact: amina.Contact, Actor: string(staff), CreatedAs: migration.CreatedAsBot}, []migration.Identity{amina})
			if err != nil {
				t.Fatal(err)
			}
			if hashed && (c.Portal.ID == portal.ID || c.Portal.Receiver == portal.Receiver || strings.Contains(string(c.Portal.ID), "33612345678")) {
				t.Errorf("hashed mode stores the portal key in clear: %+v", c.Portal)
			}
			_, err = f.dir.RecordCutOver(ctx, migration.CutOver{Portal: portal, Network: "whatsapp", Kind: migration.KindDM, NewRoom: "!other:example.org", Staff: staff}, nil)
			if !errors.Is(err, migration.ErrAlreadyCutOver) {
				t.Errorf("second cut-over of the same portal key: %v", err)
			}
			got, err := f.dir.CutOverOf(ctx, portal)
			if err != nil || got == nil || got.NewRoom != "!new:example.org" || !got.At.Equal(f.clock.Now().Truncate(time.Millisecond)) {
				t.Errorf("CutOverOf = %+v, %v", got, err)
			}
			other := networkid.PortalKey{ID: portal.ID, Receiver: "whatsapp.33700000002"}
			if got, err = f.dir.CutOverOf(ctx, other); err != nil || got != nil {
				t.Errorf("another staff member's chat with the same contact is cut over: %+v, %v", got, err)
			}
			if st, _, err := f.dir.Status(ctx, amina); err != nil || st != migration.StatusCutOver {
				t.Errorf("status after cut-over: %s, %v", st, err)
			}
			var actions []string
			for _, e := range f.entries(t, seq) {
				actions = append(actions, string(e.Action))
			}
			if strings.Join(actions, " ") != "cut_over migration_status" {
				t.Errorf("audit entries: %v", actions)
			}
			rows, err := f.dir.StaffContacts(ctx, staff)
			if err != nil || len(rows) != 1 || rows[0].NewRoom != "!new:example.org" || rows[0].Status != migration.StatusCutOver || !rows[0].Linked() {
				t.Errorf("StaffContacts = %+v, %v", rows, err)
			}
			list, err := f.dir.CutOvers(ctx, "@someone:example.org")
			if err != nil || len(list) != 0 {
				t.Errorf("CutOvers of another staff member: %+v, %v", list, err)
			}
		})
	}
}

// TestReminderDue: at most one reminder per contact per interval, counted
// from the last one sent; another contact has its own.
func TestReminderDue(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, nil)
		ctx := context.Background()
		amina, press := f.ident("whatsapp", "whatsapp.33612345678"), f.ident("telegram", "telegram.4242")
		step := func(who migration.Identity, want bool) {
			t.Helper()
			if due, err := f.dir.ReminderDue(ctx, who, 24*time.Hour); err != nil || due != want {
				t.Errorf("ReminderDue(%v) at %s = %v, %v; want %v", who, f.clock.Now(), due, err, want)
			}
		}
		step(amina, true)
		step(amina, false)
		step(press, true)
		f.clock.Advance(23 * time.Hour)
		step(amina, false)
		f.clock.Advance(time.Hour)
		step(amina, true)
		f.clock.Advance(time.Hour)
		step(amina, false)
	})
}

// TestCutOverSeenAfterEarlierLookups: the gate looks a portal up on every
// inbound message and remembers that it is not cut over; a cut-over then
// recorded is seen at the next lookup, for that portal only.
func TestCutOverSeenAfterEarlierLookups(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, nil)
		ctx := context.Background()
		portal := networkid.PortalKey{ID: "telegram.u42", Receiver: "telegram.100"}
		other := networkid.PortalKey{ID: "telegram.u43", Receiver: "telegram.100"}
		for range 3 {
			for _, key := range []networkid.PortalKey{portal, other} {
				if got, err := f.dir.CutOverOf(ctx, key); err != nil || got != nil {
					t.Fatalf("CutOverOf(%v) before any cut-over = %+v, %v", key, got, err)
				}
			}
		}
		if _, err := f.dir.RecordCutOver(ctx, migration.CutOver{Portal: portal, Network: "telegram", Kind: migration.KindDM, OldRoom: "!old:example.org",
			NewRoom: "!new:example.org", Staff: "@alice:example.org", Actor: "@alice:example.org", CreatedAs: migration.CreatedAsBot}, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := f.dir.CutOverOf(ctx, portal); err != nil || got == nil || got.NewRoom != "!new:example.org" {
			t.Fatalf("CutOverOf after the cut-over = %+v, %v; want the new room", got, err)
		}
		if got, err := f.dir.CutOverOf(ctx, other); err != nil || got != nil {
			t.Fatalf("the other portal is cut over: %+v, %v", got, err)
		}
	})
}
