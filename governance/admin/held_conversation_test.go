package admin_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/variationselector"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// TestHeldConversationDeliveredInOrderTelegram: in a chat that waits for
// approval, the contact's messages, an edit, a reaction and a deletion are
// held with them; once an admin approves, Matrix gets the messages in the
// order the contact sent them, and each change after its message. The
// registry counts two messages and three activities, and the audit log says
// that a message was deleted, by the contact, without what it said.
func TestHeldConversationDeliveredInOrderTelegram(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, approvalMode)
		r := e.start()
		e.loginStaff(r)

		one := e.send(e.bob, "the report is attached")
		two := e.send(e.bob, "and the invoice, confidential")
		notice := e.waitNotice(e.adminRoom(), "request #1")
		if _, err := e.sim.EditMessage(e.bob.ID, e.alice.ID, one.SenderMsgID, "the report is attached (v2)"); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.React(e.bob.ID, e.alice.ID, one.SenderMsgID, tgsim.Reaction{Emoji: "👍"}); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.DeleteMessages(e.bob.ID, []int{two.SenderMsgID}, true); err != nil {
			t.Fatal(err)
		}
		if !poll(10*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 5
		}) {
			req, _ := r.gv.Approvals.Get(ctx, 1)
			t.Fatalf("held %d events, want the 2 messages, the edit, the reaction and the deletion", req.HeldCount)
		}
		if n := len(e.mx.Events()); n > 0 {
			for _, ev := range e.mx.Events() {
				if ev.Sender == e.ghost(e.bob) {
					t.Fatalf("a held event reached Matrix: %+v", ev)
				}
			}
		}

		r.react(e, adminMXID, notice.EventID, gate.ReactionApprove)
		checkHeldConversation(t, r, e.mx, e.ghost(e.bob), policy.NetworkTelegram, tgid.MakeUserID(e.bob.ID),
			"the report is attached", "and the invoice, confidential", "the report is attached (v2)")
	})
}

// TestHeldConversationDeliveredInOrderWhatsApp: the same on WhatsApp (an
// edit, a reaction and a revoke are messages there, held with the others).
func TestHeldConversationDeliveredInOrderWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeApproval}
		})
		r := w.start()
		w.loginStaff(r)

		one, err := w.srv.SendText(ctx, waBob, waAlice, "the report is attached")
		if err != nil {
			t.Fatal(err)
		}
		two, err := w.srv.SendText(ctx, waBob, waAlice, "and the invoice, confidential")
		if err != nil {
			t.Fatal(err)
		}
		w.waitNotice(w.adminRoom(), "request #1")
		if _, err = w.srv.SendEdit(ctx, waBob, waAlice, one, "the report is attached (v2)"); err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendReaction(ctx, waBob, waAlice, waBob, one, "👍"); err != nil {
			t.Fatal(err)
		}
		if _, err = w.srv.SendRevoke(ctx, waBob, waAlice, waBob, two); err != nil {
			t.Fatal(err)
		}
		if !poll(10*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 5
		}) {
			req, _ := r.gv.Approvals.Get(ctx, 1)
			t.Fatalf("held %d events, want the 2 messages, the edit, the reaction and the revoke", req.HeldCount)
		}
		if got := w.bodiesFromPhone(waBob); len(got) != 0 {
			t.Fatalf("held events reached Matrix: %q", got)
		}
		if out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-approve 1"); !strings.Contains(out, "approved") {
			t.Fatalf("gov-approve: %q", out)
		}
		checkHeldConversation(t, r.running, w.mx, waGhost(waBob), policy.NetworkWhatsApp, networkid.UserID("whatsapp."+waBob),
			"the report is attached", "and the invoice, confidential", "the report is attached (v2)")
	})
}

// checkHeldConversation checks what an approval delivered: the contact's two
// messages in order, the edit of the first and a 👍 on it after the first,
// the redaction of the second after the second; the registry's two messages
// and three activities; and one message_deleted audit entry, by the
// contact, without what the message said. Each change is checked after its
// own message only: Telegram orders messages, edits and deletions (they
// carry a pts) but not reactions, so a reaction to the first message may
// reach the gateway, and be held, before a second message that gotd still
// buffers (CI saw it: first message, reaction, second message).
func checkHeldConversation(t *testing.T, r *running, mx *fakematrix.Matrix, ghost id.UserID, network string, contact networkid.UserID,
	first, second, edited string) {
	t.Helper()
	ctx := context.Background()
	type step struct {
		kind string
		body string
	}
	var got []step
	ok := mx.Eventually(20*time.Second, func() bool {
		got = got[:0]
		for _, ev := range mx.Events() {
			if ev.Sender != ghost {
				continue
			}
			switch c := ev.Content.Parsed.(type) {
			case *event.MessageEventContent:
				if c.RelatesTo.GetReplaceID() != "" {
					got = append(got, step{"edit", c.NewContent.Body})
				} else {
					got = append(got, step{"message", c.Body})
				}
			case *event.ReactionEventContent:
				got = append(got, step{"reaction", c.RelatesTo.Key})
			case *event.RedactionEventContent:
				got = append(got, step{"redaction", ""})
			}
		}
		return len(got) >= 5
	})
	messages := []step{{"message", first}, {"message", second}}
	// after: each change and the message it must follow.
	after := []struct{ change, target step }{
		{step{"edit", edited}, messages[0]},
		{step{"reaction", variationselector.Add("👍")}, messages[0]},
		{step{"redaction", ""}, messages[1]},
	}
	if !ok || len(got) != len(messages)+len(after) {
		t.Fatalf("delivered after approval: %+v, want %+v and %d changes", got, messages, len(after))
	}
	if first, second := slices.Index(got, messages[0]), slices.Index(got, messages[1]); first < 0 || second < first {
		t.Errorf("delivered after approval: %+v, want %+v in that order", got, messages)
	}
	for _, a := range after {
		if c, m := slices.Index(got, a.change), slices.Index(got, a.target); c < 0 || m < 0 || c < m {
			t.Errorf("delivered after approval: %+v, want %+v after %+v", got, a.change, a.target)
		}
	}
	redactions := mx.Redactions()
	msgs := mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == second })
	if len(redactions) != 1 || len(msgs) != 1 || redactions[0].Redacts != msgs[0].EventID {
		t.Errorf("the redaction %+v does not redact the deleted message %+v", redactions, msgs)
	}

	var c *audit.Contact
	var err error
	poll(5*time.Second, func() bool {
		c, err = r.gv.Contacts.Get(ctx, network, contact)
		return err == nil && c != nil && c.ActivityIn == 3
	})
	if err != nil || c == nil {
		t.Fatalf("contact: %v, %v", c, err)
	}
	if c.MessagesIn != 2 || c.ActivityIn != 3 {
		t.Errorf("registry: %d messages and %d activities in, want 2 and 3", c.MessagesIn, c.ActivityIn)
	}
	entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionMessageDeleted}})
	if err != nil || len(entries) != 1 {
		t.Fatalf("message_deleted entries: %+v, %v", entries, err)
	}
	d := string(entries[0].Details)
	if !strings.Contains(d, `"by":"contact"`) || !strings.Contains(d, `"direction":"inbound"`) || strings.Contains(d, "invoice") ||
		entries[0].Contact == "" || entries[0].Portal == "" {
		t.Errorf("message_deleted entry: %+v", entries[0])
	}
}

// TestStaffDeletionAuditedTelegram: a staff member who deletes their
// message in Matrix deletes it for the contact too; the audit log says a
// staff member deleted a message (not what it said) and the registry
// counts it as outbound activity.
func TestStaffDeletionAuditedTelegram(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello")
		e.waitBodies(e.bob, "hello")
		portal, err := r.br.GetExistingPortalByKey(ctx, e.portalKey(e.bob))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("portal: %v, %v", portal, err)
		}
		r.sendMatrix(portal.MXID, "$secret", "the door code is tulip-umbrella")
		var sent tgsim.Message
		if !poll(10*time.Second, func() bool {
			for _, m := range e.sim.Messages(e.alice.ID, e.bob.ID) {
				if m.Text == "the door code is tulip-umbrella" {
					sent = m
					return true
				}
			}
			return false
		}) {
			t.Fatal("the staff member's message never reached Telegram")
		}
		e.mx.Inject(ctx, &event.Event{
			Type: event.EventRedaction, RoomID: portal.MXID, Sender: staffMXID, ID: "$undo", Redacts: "$secret",
			Content: event.Content{Parsed: &event.RedactionEventContent{Redacts: "$secret"}},
		})
		if !poll(10*time.Second, func() bool {
			for _, m := range e.sim.History(e.bob.ID, e.alice.ID) {
				if m.IDFor(e.bob.ID) == sent.IDFor(e.bob.ID) {
					return m.Deleted
				}
			}
			return false
		}) {
			t.Fatal("the contact still sees the deleted message")
		}
		checkStaffDeletionAudited(t, r, "tulip-umbrella")
		c, err := r.gv.Contacts.Get(ctx, policy.NetworkTelegram, tgid.MakeUserID(e.bob.ID))
		if err != nil || c == nil || c.MessagesOut != 1 || c.ActivityOut != 1 {
			t.Errorf("registry: %+v, %v; want 1 message and 1 activity out", c, err)
		}
	})
}

// TestStaffDeletionAuditedWhatsApp: the same on WhatsApp: a staff member's
// Matrix redaction revokes the message for the contact, and is audited
// without its content.
func TestStaffDeletionAuditedWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w := newWAEnv(t, b, nil)
		r := w.start()
		w.loginStaff(r)
		w.send(waBob, "hello")
		w.waitBodiesFrom(waBob, "hello")
		portal, err := r.br.GetExistingPortalByKey(ctx, w.portalKey(waBob))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("portal: %v, %v", portal, err)
		}
		r.sendMatrix(portal.MXID, "$secret", "the door code is tulip-umbrella")
		sent, err := w.srv.WaitMessage(ctx, waAlice, waBob, func(m wasim.Message) bool { return m.Text() == "the door code is tulip-umbrella" })
		if err != nil {
			t.Fatal(err)
		}
		w.mx.Inject(ctx, &event.Event{
			Type: event.EventRedaction, RoomID: portal.MXID, Sender: staffMXID, ID: "$undo", Redacts: "$secret",
			Content: event.Content{Parsed: &event.RedactionEventContent{Redacts: "$secret"}},
		})
		err = w.srv.WaitCondition(ctx, func() bool {
			for _, e := range w.srv.Conversation(waBob, waAlice) {
				if e.ID == sent.ID {
					return e.Revoked
				}
			}
			return false
		})
		if err != nil {
			t.Fatalf("the contact still sees the deleted message: %v", err)
		}
		checkStaffDeletionAudited(t, r.running, "tulip-umbrella")
	})
}

// waitAudit waits until the audit log has an entry of action, and returns
// the entries of that action.
func waitAudit(t *testing.T, r *running, action audit.Action) []audit.Entry {
	t.Helper()
	var entries []audit.Entry
	var err error
	if !poll(10*time.Second, func() bool {
		entries, err = r.gv.Audit.List(context.Background(), audit.Filter{Actions: []audit.Action{action}})
		return err == nil && len(entries) > 0
	}) {
		t.Fatalf("no %s entry in the audit log (%v)", action, err)
	}
	return entries
}

// checkStaffDeletionAudited checks the one message_deleted entry of a
// staff member's deletion: by staff, outbound, without secret.
func checkStaffDeletionAudited(t *testing.T, r *running, secret string) {
	t.Helper()
	entries := waitAudit(t, r, audit.ActionMessageDeleted)
	d := string(entries[0].Details)
	if len(entries) != 1 || !strings.Contains(d, `"by":"staff"`) || !strings.Contains(d, `"direction":"outbound"`) ||
		strings.Contains(d, secret) || entries[0].Staff != staffMXID {
		t.Errorf("message_deleted entries: %+v", entries)
	}
}
