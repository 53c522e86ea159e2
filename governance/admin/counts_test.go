package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestCountsGatheredAreNeverMissing: the gate writes a known contact's
// message counts together (here: gathered for an hour), and still an
// admin who looks sees every message: the contacts command and the
// registry show all of them at once; and a gateway that stops writes what
// it gathered, so the database holds every message after a restart.
func TestCountsGatheredAreNeverMissing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		e.countWindow = time.Hour
		r := e.start()
		e.loginStaff(r)
		var want []string
		for i := range 6 {
			want = append(want, fmt.Sprintf("message %d", i))
			e.send(e.bob, want[i])
		}
		e.waitBodies(e.bob, want...)

		// What the database holds before anyone reads: the first message
		// (a new contact) at once, the others gathered.
		stored := func() int64 {
			t.Helper()
			db, err := store.Open(ctx, b.Open(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			reg, err := audit.NewRegistry(db, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err := reg.Get(ctx, policy.NetworkTelegram, tgid.MakeUserID(e.bob.ID))
			if err != nil || c == nil {
				t.Fatalf("Bob in the database: %v, %v", c, err)
			}
			return c.MessagesIn
		}
		if n := stored(); n == 6 {
			t.Fatalf("all 6 counts were written at once: nothing gathered")
		}
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-contacts bob_outside"); !strings.Contains(out, "in 6 (media 0)") {
			t.Errorf("gov-contacts right after the messages: %q, want \"in 6 (media 0)\"", out)
		}
		if n := e.contact(r, e.bob).MessagesIn; n != 6 {
			t.Errorf("registry: %d messages in, want 6", n)
		}

		e.send(e.bob, "one more")
		e.waitBodies(e.bob, append(want, "one more")...)
		r.stop()
		if n := stored(); n != 7 {
			t.Errorf("after a stop the database holds %d messages in, want 7", n)
		}
	})
}
