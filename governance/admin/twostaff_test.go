package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

const daveMXID id.UserID = "@dave:test"

// twoStaff is one outside contact who writes to two staff members, Alice
// (A) and Dave (B), in approval mode, on some network.
type twoStaff struct {
	r          *running
	mx         *fakematrix.Matrix
	ghost      id.UserID
	keyA, keyB networkid.PortalKey
	sendToA    func(text string)
	sendToB    func(text string)
}

func (ts *twoStaff) request(t *testing.T, key networkid.PortalKey) *approval.Request {
	t.Helper()
	req, err := ts.r.gv.Approvals.LastForChat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func (ts *twoStaff) room(key networkid.PortalKey) id.RoomID {
	portal, err := ts.r.br.GetExistingPortalByKey(context.Background(), key)
	if err != nil || portal == nil {
		return ""
	}
	return portal.MXID
}

// bodiesIn is what the contact's ghost said in the portal of key.
func (ts *twoStaff) bodiesIn(key networkid.PortalKey) []string {
	roomID := ts.room(key)
	if roomID == "" {
		return nil
	}
	var out []string
	for _, m := range ts.mx.MessagesFrom(ts.ghost) {
		if m.RoomID == roomID {
			out = append(out, m.Content.Body)
		}
	}
	return out
}

func (ts *twoStaff) waitBodiesIn(t *testing.T, key networkid.PortalKey, want ...string) {
	t.Helper()
	if !poll(20*time.Second, func() bool { return strings.Join(ts.bodiesIn(key), "\x00") == strings.Join(want, "\x00") }) {
		t.Fatalf("portal of %s has %q from the contact, want %q", key.Receiver, ts.bodiesIn(key), want)
	}
}

func (ts *twoStaff) noMatrixMessageContaining(t *testing.T, text string) {
	t.Helper()
	for _, m := range ts.mx.Messages() {
		if strings.Contains(m.Content.Body, text) {
			t.Fatalf("%q reached Matrix in room %s from %s", text, m.RoomID, m.Sender)
		}
	}
}

// run checks that each staff member gets a request of their own, that
// approving A delivers only A's held messages into A's portal, and that
// B's chat waits for B's own request.
func (ts *twoStaff) run(t *testing.T, e *env) {
	ctx := context.Background()
	if ts.keyA.ID != ts.keyB.ID || ts.keyA.Receiver == ts.keyB.Receiver {
		t.Fatalf("the two staff members' portals should share the ID and differ by receiver: %v, %v", ts.keyA, ts.keyB)
	}
	ts.sendToA("hello alice")
	ts.sendToB("SECRET for Dave only")
	var reqA, reqB *approval.Request
	if !poll(20*time.Second, func() bool {
		reqA, reqB = ts.request(t, ts.keyA), ts.request(t, ts.keyB)
		return reqA != nil && reqB != nil && reqA.HeldCount == 1 && reqB.HeldCount == 1
	}) {
		t.Fatalf("requests: A %+v, B %+v; want one each with one held message", reqA, reqB)
	}
	if reqA.ID == reqB.ID || reqA.Staff != staffMXID || reqB.Staff != daveMXID {
		t.Fatalf("requests are not each staff member's own: A %+v, B %+v", reqA, reqB)
	}
	e.waitNotice(e.adminRoom(), fmt.Sprintf("request #%d", reqB.ID))

	out := ts.r.command(t, e, adminMXID, e.adminRoom(), fmt.Sprintf("gov-approve %d", reqA.ID))
	if !strings.Contains(out, "approved") {
		t.Fatalf("gov-approve %d: %q", reqA.ID, out)
	}
	ts.waitBodiesIn(t, ts.keyA, "hello alice")
	ts.noMatrixMessageContaining(t, "SECRET")
	if got := ts.request(t, ts.keyB); got.State != approval.StatePending || got.ID != reqB.ID {
		t.Fatalf("approving A's request changed B's: %+v", got)
	}
	if room := ts.room(ts.keyB); room != "" {
		t.Fatalf("B's chat got a portal room %s before B's request was decided", room)
	}

	// B's next message still waits for B's own request; A's go through.
	ts.sendToB("second for Dave")
	if !poll(20*time.Second, func() bool { return ts.request(t, ts.keyB).HeldCount == 2 }) {
		t.Fatalf("B's second message was not held: %+v", ts.request(t, ts.keyB))
	}
	ts.sendToA("alice live")
	ts.waitBodiesIn(t, ts.keyA, "hello alice", "alice live")
	ts.noMatrixMessageContaining(t, "second for Dave")

	// Approving B delivers B's held messages into B's portal only.
	if _, err := ts.r.gv.Approve(ctx, adminMXID, reqB.ID); err != nil {
		t.Fatal(err)
	}
	ts.waitBodiesIn(t, ts.keyB, "SECRET for Dave only", "second for Dave")
	ts.waitBodiesIn(t, ts.keyA, "hello alice", "alice live")
	if ts.room(ts.keyA) == ts.room(ts.keyB) {
		t.Fatal("A and B share a portal room")
	}
}

func TestTwoStaffOneContactTelegram(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		e := newEnv(t, b, approvalMode)
		dave, err := e.sim.CreateAccount(tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave", LastName: "Staff", Username: "dave_staff"})
		if err != nil {
			t.Fatal(err)
		}
		r := e.start()
		loginA := e.loginStaff(r)
		loginB := e.loginAs(r, daveMXID, dave)
		ts := &twoStaff{
			r: r, mx: e.mx, ghost: e.ghost(e.bob),
			keyA:    e.portalKey(e.bob),
			keyB:    networkid.PortalKey{ID: e.portalKey(e.bob).ID, Receiver: loginB.ID},
			sendToA: func(text string) { e.send(e.bob, text) },
			sendToB: func(text string) {
				if _, err := e.sim.SendMessage(e.bob.ID, dave.ID, text, nil); err != nil {
					t.Fatal(err)
				}
			},
		}
		if ts.keyA.Receiver != loginA.ID {
			t.Fatalf("A's portal key %v is not A's login %s", ts.keyA, loginA.ID)
		}
		ts.run(t, e)
	})
}

const waDave = "15550004444"

func TestTwoStaffOneContactWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeApproval}
		})
		if _, err := w.srv.CreateAccount(waDave, "Dave"); err != nil {
			t.Fatal(err)
		}
		r := w.start()
		w.loginStaff(r)
		loginB := w.loginAs(r, daveMXID, waDave)
		sendTo := func(to string) func(string) {
			return func(text string) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if _, err := w.srv.SendText(ctx, waBob, to, text); err != nil {
					t.Fatal(err)
				}
			}
		}
		ts := &twoStaff{
			r: r.running, mx: w.mx, ghost: waGhost(waBob),
			keyA:    w.portalKey(waBob),
			keyB:    networkid.PortalKey{ID: w.portalKey(waBob).ID, Receiver: loginB.ID},
			sendToA: sendTo(waAlice),
			sendToB: sendTo(waDave),
		}
		ts.run(t, w.env)
	})
}
