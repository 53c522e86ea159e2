package admin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestStaffLoginAndLogoutAreAudited: a staff member's Telegram login is
// logged once (not again when the bridge restarts), and a `logout` is logged
// when the gate next compares its logins with bridgev2's.
func TestStaffLoginAndLogoutAreAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		login := e.loginStaff(r)
		count := func(action audit.Action) int {
			entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{action}})
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range entries {
				if en.Staff != staffMXID || string(en.Login) != string(login.ID) || en.Network != "telegram" {
					t.Errorf("%s entry names staff %s, login %s, network %s", action, en.Staff, en.Login, en.Network)
				}
			}
			return len(entries)
		}
		r.waitAuditAction(t, audit.ActionLogin)

		r.stop()
		r = e.start()
		e.waitConnected()
		if n := count(audit.ActionLogin); n != 1 {
			t.Errorf("%d login entries after a restart, want 1", n)
		}

		out := r.command(t, e, staffMXID, "!mgmt:test", "logout "+string(login.ID))
		if !strings.Contains(strings.ToLower(out), "logged out") {
			t.Fatalf("logout answered %q", out)
		}
		if err := r.gv.ReconcileLogins(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(audit.ActionLogout); n != 1 {
			t.Errorf("%d logout entries, want 1", n)
		}
		if err := r.gv.ReconcileLogins(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(audit.ActionLogout); n != 1 {
			t.Errorf("%d logout entries after a second comparison, want 1", n)
		}
	})
}
