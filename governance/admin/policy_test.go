package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestAllowlistAndOutboundRefusal: in allowlist mode a chat no rule allows
// never reaches Matrix (and is logged as policy_denied); starting a chat with
// a refused identifier is refused; a deny rule added at runtime by an admin
// refuses the staff member's next message with a notice in the room, and the
// message never reaches Telegram. A non-admin cannot add rules.
func TestAllowlistAndOutboundRefusal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkTelegram: policy.ModeAllowlist}
			cfg.Policy.Rules = []policy.Rule{{Action: policy.ActionAllow, TelegramUsername: "@carol_press"}}
		})
		r := e.start()
		login := e.loginStaff(r)

		e.send(e.bob, "let me in")
		e.send(e.carol, "press question")
		e.waitBodies(e.carol, "press question")
		time.Sleep(500 * time.Millisecond)
		if got := e.bodiesFrom(e.bob); len(got) != 0 {
			t.Errorf("a refused chat reached Matrix: %q", got)
		}
		denied, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionPolicyDenied}})
		if len(denied) != 1 || denied[0].Portal != e.portalKey(e.bob).ID || !strings.Contains(string(denied[0].Details), "allowlist") {
			t.Errorf("policy_denied entries: %+v", denied)
		}

		// Starting a chat with Bob is refused with the reason.
		api := login.Client.(bridgev2.IdentifierResolvingNetworkAPI)
		_, err := api.ResolveIdentifier(ctx, "@bob_outside", true)
		var resp bridgev2.RespError
		if !errors.As(err, &resp) || resp.StatusCode != 403 || !strings.Contains(resp.Err, "does not allow this chat") {
			t.Errorf("start chat with a refused identifier: %v", err)
		}
		if _, err = api.ResolveIdentifier(ctx, "@carol_press", true); err != nil {
			t.Errorf("start chat with an allowed identifier: %v", err)
		}

		// A non-admin cannot add a rule; an admin can.
		out := r.command(t, e, staffMXID, e.adminRoom(), "gov-deny-rule telegram_username=carol_press")
		if !strings.Contains(out, "limited to the organisation's governance admins") || len(r.gv.Policy.Policy().Rules()) != 1 {
			t.Errorf("non-admin gov-deny-rule: %q, rules %v", out, r.gv.Policy.Policy().Rules())
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-deny-rule phone=+33")
		if !strings.Contains(out, "invalid") || len(r.gv.Policy.Policy().Rules()) != 1 {
			t.Errorf("malformed rule: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-deny-rule telegram_username=carol_press comment=left")
		if !strings.Contains(out, "Added runtime policy rule #1") {
			t.Errorf("gov-deny-rule: %q", out)
		}

		// Alice's next message to Carol is refused and explained in the room.
		portal, err := r.br.GetExistingPortalByKey(ctx, e.portalKey(e.carol))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("Carol's portal: %v, %v", portal, err)
		}
		r.sendMatrix(portal.MXID, "$refused", "this must not leave")
		notice := e.waitNotice(portal.MXID, "not bridged")
		if !strings.Contains(notice.Content.Body, "does not allow this chat on Telegram") || !strings.Contains(notice.Content.Body, "runtime policy rule #1") {
			t.Errorf("refusal notice: %q", notice.Content.Body)
		}
		time.Sleep(500 * time.Millisecond)
		for _, m := range e.sim.Messages(e.alice.ID, e.carol.ID) {
			if m.Text == "this must not leave" {
				t.Error("a refused message reached Telegram")
			}
		}
		// … and Carol's messages are now dropped on the way in.
		e.send(e.carol, "after the rule")
		time.Sleep(time.Second)
		if got := e.bodiesFrom(e.carol); len(got) != 1 {
			t.Errorf("messages after the deny rule reached Matrix: %q", got)
		}
	})
}
