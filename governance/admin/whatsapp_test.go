package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// The WhatsApp accounts of these tests: the staff member's, and two outside
// contacts in different countries.
const (
	waAlice = "15550001111"
	waBob   = "15550002222"
	waCarol = "447700900123"
)

// waEnv is env with the WhatsApp simulator instead of Telegram's.
type waEnv struct {
	*env
	srv *wasim.Server
}

// waRunning is one bridge process whose gateway hosts WhatsApp.
type waRunning struct {
	*running
	waConn *whatsapp.WhatsAppConnector
}

func newWAEnv(t *testing.T, b dbtest.Backend, configure func(*gate.Config)) *waEnv {
	t.Helper()
	srv, err := wasim.Start(wasim.Config{StreamErrorCloseDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("failed to start simulator: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for phone, name := range map[string]string{waAlice: "Alice", waBob: "Bob", waCarol: "Carol"} {
		if _, err = srv.CreateAccount(phone, name); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, backend: b, mx: fakematrix.New(), clk: clocktest.New(time.Now()), configure: configure}
	return &waEnv{env: e, srv: srv}
}

func (w *waEnv) start() *waRunning {
	t := w.t
	t.Helper()
	conn := whatsapp.NewConnector()
	conn.Config = whatsapp.Config{TestServer: whatsapp.TestServerConfig{Address: w.srv.Addr(), RootPublicKey: wasim.RootPublicKeyHex("")}}
	if err := conn.ValidateConfig(); err != nil {
		t.Fatal(err)
	}
	r := w.startNetwork(&gateway.Network{ID: waid.Network, Connector: conn, EnabledByDefault: true})
	return &waRunning{running: r, waConn: conn}
}

// loginStaff links Alice's WhatsApp account by QR and waits until the login
// is connected.
func (w *waEnv) loginStaff(r *waRunning) *bridgev2.UserLogin {
	login := w.loginAs(r, staffMXID, waAlice)
	w.login = login.ID
	return login
}

// loginAs links the WhatsApp account of phone for the Matrix user mxid by
// QR and waits until that login is connected.
func (w *waEnv) loginAs(r *waRunning, mxid id.UserID, phone string) *bridgev2.UserLogin {
	t := w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.mx.ResetBridgeStates()
	proc, err := r.waConn.CreateLogin(ctx, r.user(t, mxid), whatsapp.FlowIDQR)
	if err != nil {
		t.Fatal(err)
	}
	step, err := proc.Start(ctx)
	if err != nil || step.DisplayAndWaitParams == nil {
		t.Fatalf("login start: %+v, %v", step, err)
	}
	if err = w.srv.ScanQR(ctx, phone, step.DisplayAndWaitParams.Data); err != nil {
		t.Fatal(err)
	}
	for step.Type != bridgev2.LoginStepTypeComplete {
		if step, err = proc.(bridgev2.LoginProcessDisplayAndWait).Wait(ctx); err != nil {
			t.Fatalf("login wait: %v", err)
		}
	}
	w.waitConnected()
	return step.CompleteParams.UserLogin
}

func waGhost(phone string) id.UserID { return id.UserID("@gw_whatsapp." + phone + ":test") }

func (w *waEnv) portalKey(phone string) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID("whatsapp." + phone), Receiver: w.login}
}

// send makes the phone of from send text to Alice on WhatsApp; it returns
// the whole-second span in which WhatsApp stamped it.
func (w *waEnv) send(from, text string) (earliest, latest int64) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	earliest = time.Now().Unix()
	if _, err := w.srv.SendText(ctx, from, waAlice, text); err != nil {
		w.t.Fatal(err)
	}
	return earliest, time.Now().Unix()
}

// sentBy lists the texts the phone to received from the phone from, in order.
func (w *waEnv) sentBy(from, to string) []string {
	var out []string
	for _, m := range w.srv.Messages() {
		if m.From == from && m.To == to {
			out = append(out, m.Text())
		}
	}
	return out
}

func (w *waEnv) bodiesFromPhone(phone string) []string {
	var out []string
	for _, m := range w.mx.MessagesFrom(waGhost(phone)) {
		out = append(out, m.Content.Body)
	}
	return out
}

func (w *waEnv) waitBodiesFrom(phone string, want ...string) []fakematrix.Message {
	w.t.Helper()
	return w.waitBodiesFromWithin(phone, 20*time.Second, want...)
}

func (w *waEnv) waitBodiesFromWithin(phone string, timeout time.Duration, want ...string) []fakematrix.Message {
	w.t.Helper()
	var got []fakematrix.Message
	ok := w.mx.Eventually(timeout, func() bool {
		got = w.mx.MessagesFrom(waGhost(phone))
		return len(got) >= len(want)
	})
	bodies := w.bodiesFromPhone(phone)
	if !ok || strings.Join(bodies, "\x00") != strings.Join(want, "\x00") {
		w.t.Fatalf("messages from %s on Matrix: %q, want %q", phone, bodies, want)
	}
	return got
}

// TestWhatsAppApprovalDeliversHeldInOrder: in approval mode the first
// WhatsApp messages of a new outside contact are held, the request names the
// contact's push name and number, a restart loses nothing, and after an
// admin's approval the held messages arrive in order from the contact's
// ghost with their original WhatsApp timestamps; later messages go straight
// through, and the contact is in the registry with its number.
func TestWhatsAppApprovalDeliversHeldInOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeApproval}
		})
		r := w.start()
		w.loginStaff(r)

		var spans [3][2]int64
		spans[0][0], spans[0][1] = w.send(waBob, "one")
		time.Sleep(1100 * time.Millisecond) // WhatsApp timestamps are whole seconds
		spans[1][0], spans[1][1] = w.send(waBob, "two")
		notice := w.waitNotice(w.adminRoom(), "request #1")
		for _, want := range []string{"@alice:test", "WhatsApp", "Bob (+" + waBob + ")", "direct chat", "whatsapp." + waBob} {
			if !strings.Contains(notice.Content.Body, want) {
				t.Errorf("request notice lacks %q:\n%s", want, notice.Content.Body)
			}
		}
		if !poll(10*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 2
		}) {
			t.Fatal("the two messages were not held")
		}

		// Restart while the request is pending: a message sent meanwhile
		// joins the held ones.
		time.Sleep(200 * time.Millisecond) // let receipts go out
		r.stop()
		r = w.start()
		w.waitConnected()
		time.Sleep(1100 * time.Millisecond)
		spans[2][0], spans[2][1] = w.send(waBob, "three")
		if !poll(10*time.Second, func() bool {
			req, err := r.gv.Approvals.Get(ctx, 1)
			return err == nil && req.HeldCount == 3
		}) {
			t.Fatal("the message after the restart was not held")
		}
		if got := w.bodiesFromPhone(waBob); len(got) != 0 {
			t.Errorf("held messages reached Matrix: %q", got)
		}

		time.Sleep(1100 * time.Millisecond) // approval time differs from the originals
		out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-approve 1")
		if !strings.Contains(out, "Request #1 approved: 3 held message(s) delivered") {
			t.Errorf("gov-approve: %q", out)
		}
		got := w.waitBodiesFrom(waBob, "one", "two", "three")
		for i, span := range spans {
			if ts := got[i].TS.Unix(); ts < span[0] || ts > span[1] {
				t.Errorf("message %d bridged with timestamp %s, want its WhatsApp time (%s…%s)", i+1, got[i].TS, time.Unix(span[0], 0), time.Unix(span[1], 0))
			}
		}
		if got[0].RoomID != got[1].RoomID || got[1].RoomID != got[2].RoomID {
			t.Errorf("held messages went to different rooms: %s %s %s", got[0].RoomID, got[1].RoomID, got[2].RoomID)
		}
		req, err := r.gv.Approvals.Get(ctx, 1)
		if err != nil || req.State != approval.StateApproved || !req.Delivered {
			t.Fatalf("request after approval: %+v, %v", req, err)
		}
		w.waitNotice("", "An admin approved your WhatsApp chat with Bob")

		w.send(waBob, "four")
		w.waitBodiesFrom(waBob, "one", "two", "three", "four")

		// The registry counts a message once it is bridged.
		var contact *audit.Contact
		poll(5*time.Second, func() bool {
			contact, err = r.gv.Contacts.Get(ctx, policy.NetworkWhatsApp, "whatsapp."+waBob)
			return err == nil && contact != nil && contact.MessagesIn == 4
		})
		if err != nil || contact == nil || contact.Phone != "+"+waBob || contact.MessagesIn != 4 || len(contact.DisplayNames) == 0 || contact.DisplayNames[0] != "Bob" {
			t.Errorf("registry contact: %+v, %v", contact, err)
		}
		if report, err := r.gv.Audit.Verify(ctx); err != nil || !report.OK() {
			t.Errorf("audit chain: %+v, %v", report, err)
		}
		time.Sleep(200 * time.Millisecond)
	})
}

// TestWhatsAppDenyRuleOnPhonePrefix: a deny rule on a country prefix drops a
// WhatsApp message from a number under it before it reaches Matrix (and
// logs the denial), while other numbers are bridged.
func TestWhatsAppDenyRuleOnPhonePrefix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkWhatsApp: policy.ModeOpen}
			cfg.Policy.Rules = []policy.Rule{{Action: policy.ActionDeny, Network: policy.NetworkWhatsApp, PhonePrefix: "+44", Comment: "no UK numbers"}}
		})
		r := w.start()
		w.loginStaff(r)

		w.send(waCarol, "from the UK")
		w.send(waBob, "from the US")
		w.waitBodiesFrom(waBob, "from the US")
		time.Sleep(500 * time.Millisecond)
		if got := w.bodiesFromPhone(waCarol); len(got) != 0 {
			t.Errorf("a message from a denied prefix reached Matrix: %q", got)
		}
		if portal, err := r.br.GetExistingPortalByKey(ctx, w.portalKey(waCarol)); err != nil || portal != nil && portal.MXID != "" {
			t.Errorf("the denied chat got a portal: %+v, %v", portal, err)
		}
		denied, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionPolicyDenied}})
		if len(denied) != 1 || denied[0].Portal != w.portalKey(waCarol).ID || !strings.Contains(string(denied[0].Details), "+44") {
			t.Errorf("policy_denied entries: %+v", denied)
		}
		time.Sleep(200 * time.Millisecond)
	})
}

// TestWhatsAppOutboundRefusal: once an admin denies a WhatsApp number, the
// staff member's next message to it is refused with a notice in the room
// and never reaches WhatsApp, starting a chat with it is refused, and its
// messages are dropped on the way in. The connector describes the contact
// by number.
func TestWhatsAppOutboundRefusal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, nil)
		r := w.start()
		login := w.loginStaff(r)

		w.send(waBob, "hello")
		w.waitBodiesFrom(waBob, "hello")
		ident, err := login.Client.(remote.Describer).DescribeRemoteUser(ctx, "whatsapp."+waBob)
		if err != nil || ident.Phone != "+"+waBob || ident.DisplayName != "Bob" {
			t.Errorf("DescribeRemoteUser = %+v, %v", ident, err)
		}

		out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-deny-rule phone=+"+waBob+" network=whatsapp comment=left")
		if !strings.Contains(out, "Added runtime policy rule #1") {
			t.Fatalf("gov-deny-rule: %q", out)
		}
		portal, err := r.br.GetExistingPortalByKey(ctx, w.portalKey(waBob))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("Bob's portal: %v, %v", portal, err)
		}
		r.sendMatrix(portal.MXID, "$refused", "this must not leave")
		notice := w.waitNotice(portal.MXID, "not bridged")
		if !strings.Contains(notice.Content.Body, "does not allow this chat on WhatsApp") || !strings.Contains(notice.Content.Body, "runtime policy rule #1") {
			t.Errorf("refusal notice: %q", notice.Content.Body)
		}

		_, err = login.Client.(bridgev2.IdentifierResolvingNetworkAPI).ResolveIdentifier(ctx, "+"+waBob, true)
		var resp bridgev2.RespError
		if !errors.As(err, &resp) || resp.StatusCode != 403 || !strings.Contains(resp.Err, "does not allow this chat") {
			t.Errorf("start chat with a refused number: %v", err)
		}

		w.send(waBob, "after the rule")
		time.Sleep(time.Second)
		for _, m := range w.srv.Messages() {
			if m.Text() == "this must not leave" {
				t.Error("a refused message reached WhatsApp")
			}
		}
		if got := w.bodiesFromPhone(waBob); len(got) != 1 {
			t.Errorf("messages after the deny rule reached Matrix: %q", got)
		}
		denied, _ := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionPolicyDenied}})
		if len(denied) != 3 {
			t.Errorf("policy_denied entries (message, start chat, inbound): %d", len(denied))
		}
	})
}
