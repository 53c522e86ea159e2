package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestStaffSignalsOnlyForBridgedChats: a staff member's read receipt or
// typing goes out only for a chat that is bridged now. In a chat that waits
// for approval it is refused without creating a request (one request, the
// contact's); once approved it goes; after a revocation it stops; and the
// organisation's staff_signals switch turns each kind off, presence
// included.
func TestStaffSignalsOnlyForBridgedChats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, approvalMode)
		r := e.start()
		login := e.loginStaff(r)
		key := e.portalKey(e.bob)
		signal := func(kind remote.OutboundKind) error {
			return r.gv.CheckOutbound(ctx, remote.Outbound{Kind: kind, Login: login, PortalKey: key, Remote: tgid.MakeUserID(e.bob.ID)})
		}
		refused := func(err error) bool {
			var refusal *remote.Refusal
			return errors.As(err, &refusal)
		}

		e.send(e.bob, "hello, anyone there?")
		notice := e.waitNotice(e.adminRoom(), "request #1")
		for _, kind := range []remote.OutboundKind{remote.OutboundReadReceipt, remote.OutboundTyping} {
			if err := signal(kind); !refused(err) {
				t.Errorf("%s in a chat waiting for approval: %v, want a refusal", kind, err)
			}
		}
		if reqs, err := r.gv.Approvals.Pending(ctx); err != nil || len(reqs) != 1 {
			t.Fatalf("requests after refused signals: %d (%v), want the contact's one", len(reqs), err)
		}

		r.react(e, adminMXID, notice.EventID, gate.ReactionApprove)
		e.waitBodies(e.bob, "hello, anyone there?")
		for _, kind := range []remote.OutboundKind{remote.OutboundReadReceipt, remote.OutboundTyping} {
			if err := signal(kind); err != nil {
				t.Errorf("%s in an approved chat: %v", kind, err)
			}
		}
		presence := remote.Outbound{Kind: remote.OutboundPresence, Login: login}
		if err := r.gv.CheckOutbound(ctx, presence); err != nil {
			t.Errorf("presence: %v", err)
		}

		portal, err := r.br.GetExistingPortalByKey(ctx, key)
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("portal after approval: %v, %v", portal, err)
		}
		room := portal.MXID
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-revoke "+string(room)); !strings.Contains(out, "Revoked") {
			t.Fatalf("gov-revoke: %q", out)
		}
		if err := signal(remote.OutboundReadReceipt); !refused(err) {
			t.Errorf("read receipt in a revoked chat: %v, want a refusal", err)
		}
		r.stop()

		// The organisation switches signals off.
		e.configure = func(cfg *gate.Config) {
			approvalMode(cfg)
			cfg.StaffSignals = gate.StaffSignals{Typing: true}
		}
		r = e.start()
		e.waitConnected()
		if login = r.br.GetCachedUserLoginByID(e.login); login == nil {
			t.Fatal("the staff login is gone after the restart")
		}
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-restore "+string(room)); !strings.Contains(out, "Restored") {
			t.Fatalf("gov-restore: %q", out)
		}
		if err := signal(remote.OutboundTyping); err != nil {
			t.Errorf("typing, switched on: %v", err)
		}
		if err := signal(remote.OutboundReadReceipt); !refused(err) {
			t.Errorf("read receipt, switched off: %v, want a refusal", err)
		}
		presence.Login = login
		if err := r.gv.CheckOutbound(ctx, presence); !refused(err) {
			t.Errorf("presence, switched off: %v, want a refusal", err)
		}
	})
}
