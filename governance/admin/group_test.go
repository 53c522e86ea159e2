package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
)

// TestWhatsAppGroupWithDeniedMember: a deny rule that names a member of a
// group refuses the whole group, even when someone else writes, and the
// audit entry says why; a group without such a member is bridged.
func TestWhatsAppGroupWithDeniedMember(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Rules = []policy.Rule{{Action: policy.ActionDeny, Network: policy.NetworkWhatsApp, PhonePrefix: "+44", Comment: "no UK numbers"}}
		})
		r := w.start()
		w.loginStaff(r)

		denied, err := w.srv.CreateGroup(ctx, waBob, "Supplier and UK office", "", []string{waAlice, waCarol})
		if err != nil {
			t.Fatal(err)
		}
		allowed, err := w.srv.CreateGroup(ctx, waBob, "Supplier", "", []string{waAlice})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendGroupText(ctx, waBob, denied, "minutes of today", nil); err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendGroupText(ctx, waBob, allowed, "the invoice follows", nil); err != nil {
			t.Fatal(err)
		}
		if _, ok := w.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "the invoice follows" }); !ok {
			t.Fatal("the allowed group's message never reached Matrix")
		}
		var entries []audit.Entry
		if !poll(10*time.Second, func() bool {
			entries, err = r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionPolicyDenied}})
			return err == nil && len(entries) > 0
		}) {
			t.Fatal("no policy_denied entry for the group with a denied member")
		}
		if d := string(entries[0].Details); !strings.Contains(d, "a member of the group is refused") || !strings.Contains(d, "+44") {
			t.Errorf("policy_denied entry does not say why: %s", d)
		}
		if got := w.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == "minutes of today" }); len(got) != 0 {
			t.Errorf("the group with a denied member reached Matrix: %+v", got)
		}
		if _, ok := w.mx.RoomNamed("Supplier and UK office"); ok {
			t.Error("the group with a denied member got a portal")
		}
	})
}

// TestWhatsAppGroupApprovalNamesMembers: in approval mode a new group waits
// for an admin, and the request names the group and its outside members.
func TestWhatsAppGroupApprovalNamesMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeApproval}
		})
		r := w.start()
		w.loginStaff(r)
		group, err := w.srv.CreateGroup(ctx, waBob, "Prefecture crisis cell", "", []string{waAlice, waCarol})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendGroupText(ctx, waBob, group, "meeting at 6", nil); err != nil {
			t.Fatal(err)
		}
		notice := w.waitNotice(w.adminRoom(), "request #1")
		for _, want := range []string{"group Prefecture crisis cell", "Members:", "+" + waBob, "+" + waCarol} {
			if !strings.Contains(notice.Content.Body, want) {
				t.Errorf("request notice lacks %q:\n%s", want, notice.Content.Body)
			}
		}
		if strings.Contains(notice.Content.Body, "+"+waAlice) {
			t.Errorf("the request lists the staff member's own account as an outside member:\n%s", notice.Content.Body)
		}
	})
}
