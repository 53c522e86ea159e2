package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestRetentionPurge: with a retention period, the gate's purge drops the
// audit entries older than it, logs the purge itself, and the chain still
// verifies; newer entries stay.
func TestRetentionPurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) { cfg.Retention = gate.Duration(30 * 24 * time.Hour) })
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello")
		e.waitBodies(e.bob, "hello")
		r.waitAudit(t, audit.ActionPortalCreated, string(e.portalKey(e.bob).ID))
		old, err := r.gv.Audit.List(ctx, audit.Filter{})
		if err != nil || len(old) == 0 {
			t.Fatalf("audit entries before the purge: %d, %v", len(old), err)
		}

		// Nothing is old enough yet.
		if err = r.gv.PurgeNow(ctx); err != nil {
			t.Fatal(err)
		}
		if kept, _ := r.gv.Audit.List(ctx, audit.Filter{}); len(kept) != len(old) {
			t.Fatalf("a purge within the retention period removed %d entries", len(old)-len(kept))
		}

		// 31 days later a new entry is written, then the purge runs.
		e.clk.Advance(31 * 24 * time.Hour)
		r.command(t, e, adminMXID, e.adminRoom(), "gov-requests") // logged as an admin action
		if err = r.gv.PurgeNow(ctx); err != nil {
			t.Fatal(err)
		}
		left, err := r.gv.Audit.List(ctx, audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range left {
			for _, o := range old {
				if en.Seq == o.Seq {
					t.Errorf("entry %d (%s) outlived the retention period", en.Seq, en.Action)
				}
			}
		}
		var purges, newer int
		for _, en := range left {
			switch en.Action {
			case audit.ActionRetentionPurge:
				purges++
			case audit.ActionAdminAction:
				newer++
			}
		}
		if purges != 1 || newer == 0 {
			t.Errorf("after the purge: %d retention_purge entries (want 1), %d newer admin entries (want them kept): %+v", purges, newer, left)
		}
		report, err := r.gv.Audit.Verify(ctx)
		if err != nil || !report.OK() {
			t.Errorf("the chain does not verify after the purge: %+v, %v", report, err)
		}
	})
}
