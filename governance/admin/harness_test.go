package admin_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	"github.com/passerelle/passerelle/internal/testlog"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// apiToken is the admin API's token in the tests.
const apiToken = "s3cret-token-of-at-least-32-bytes"

const (
	staffMXID id.UserID = "@alice:test"
	adminMXID id.UserID = "@admin:test"
	otherMXID id.UserID = "@mallory:test"
)

var simKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// env is one test's world: the Telegram simulator with its accounts, one
// database and one recording Matrix side, across bridge restarts.
type env struct {
	t          testing.TB
	sim        *tgsim.Server
	backend    dbtest.Backend
	mx         *fakematrix.Matrix
	clk        *clocktest.Manual
	alice, bob *tgsim.Account
	carol      *tgsim.Account
	configure  func(*gate.Config)
	// anchorCheck is the gate's AnchorInterval: 0 (no publication of the
	// audit chain head in the background) unless a test sets it.
	anchorCheck time.Duration
	// countWindow, when set, is the gate's CountWindow (its default
	// otherwise).
	countWindow time.Duration
	login       networkid.UserLoginID
	// backfill, when set, turns on history at portal creation with these
	// limits (off by default, as the tests before history expect).
	backfill *remote.BackfillLimits
}

func newEnv(t testing.TB, b dbtest.Backend, configure func(*gate.Config)) *env {
	t.Helper()
	s, err := tgsim.New(tgsim.Options{Key: simKey(), Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatalf("failed to start simulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	e := &env{t: t, sim: s, backend: b, mx: fakematrix.New(), clk: clocktest.New(time.Now()), configure: configure}
	mk := func(spec tgsim.AccountSpec) *tgsim.Account {
		a, err := s.CreateAccount(spec)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	e.alice = mk(tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", LastName: "Staff", Username: "alice_staff"})
	e.bob = mk(tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob", LastName: "Outside", Username: "bob_outside"})
	e.carol = mk(tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol", LastName: "Press", Username: "carol_press"})
	return e
}

// running is one bridge process.
type running struct {
	br   *bridgev2.Bridge
	gv   *admin.Governance
	conn *telegram.TelegramConnector // nil when the gateway hosts another network
	mx   *fakematrix.Matrix
}

func (e *env) start() *running {
	t := e.t
	t.Helper()
	conn := telegram.NewConnector()
	conn.Config = telegram.Config{
		DeviceModel:         "Passerelle test",
		DisplaynameTemplate: "{{.FirstName}} {{.LastName}}",
		TestServer:          telegram.TestServerConfig{DC: e.sim.DC(), Address: e.sim.Addr(), PublicKey: e.sim.PublicKeyPEM()},
	}
	if e.backfill != nil {
		conn.Config.Backfill = *e.backfill
	}
	if err := conn.ValidateConfig(); err != nil {
		t.Fatal(err)
	}
	r := e.startNetwork(&gateway.Network{ID: "telegram", Connector: conn, EnabledByDefault: true})
	r.conn = conn
	return r
}

// startNetwork starts one bridge process: a gateway with the network and the
// governance component, on the env's database and Matrix side.
func (e *env) startNetwork(network *gateway.Network) *running {
	t := e.t
	t.Helper()
	gw, err := gateway.New(network)
	if err != nil {
		t.Fatal(err)
	}
	g := gate.New()
	g.Now = e.clk.Now
	g.ExpiryInterval, g.RetentionInterval, g.LoginInterval, g.AnchorInterval, g.DeadlineInterval = 0, 0, 0, e.anchorCheck, 0
	if e.countWindow != 0 {
		g.CountWindow = e.countWindow
	}
	cfg := g.Config()
	cfg.Admins = []id.UserID{adminMXID}
	cfg.API.Token = apiToken
	if e.configure != nil {
		e.configure(cfg)
	}
	if err = cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gv := admin.New(g)
	if err = gw.AddComponent(gv); err != nil {
		t.Fatal(err)
	}
	gw.SetRemoteQueue(gv.Queue)
	gw.SetOutboundCheck(gv.CheckOutbound)
	gw.SetSentRecorder(gv.RecordSent)
	gw.SetMediaCheck(gv.CheckMedia)
	gw.SetBackfillFilter(gv.FilterBackfill)
	gw.SetDisappearingPolicy(gv.KeepDisappearing)
	user := bridgeconfig.PermissionLevelUser
	bcfg := &bridgeconfig.BridgeConfig{CommandPrefix: "!gw", Permissions: bridgeconfig.PermissionConfig{"*": &user}}
	if e.backfill != nil {
		bcfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	}
	e.mx.ResetBridgeStates() // waitConnected looks at this run's states only
	log := zerolog.New(testlog.NewWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	br := bridgev2.NewBridge("passerelle-test", e.backend.Open(t), log, bcfg, e.mx, gw, commands.NewProcessor)
	if err = br.Start(context.Background()); err != nil {
		t.Fatalf("bridge start: %v", err)
	}
	r := &running{br: br, gv: gv, mx: e.mx}
	t.Cleanup(r.stop)
	// The admin room is set up in the background at start.
	for deadline := time.Now().Add(10 * time.Second); !gv.IsAdminRoom(e.adminRoom()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("admin room was never set up")
		}
	}
	return r
}

func (e *env) adminRoom() id.RoomID {
	r, _ := e.mx.RoomNamed("Passerelle governance")
	return r.ID
}

func (r *running) stop() {
	if r.br != nil {
		r.br.StopWithTimeout(5 * time.Second)
		r.br = nil
	}
}

func (r *running) user(t testing.TB, mxid id.UserID) *bridgev2.User {
	t.Helper()
	u, err := r.br.GetUserByMXID(context.Background(), mxid)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// loginStaff logs Alice in by phone and waits until the login is connected.
func (e *env) loginStaff(r *running) *bridgev2.UserLogin {
	login := e.loginAs(r, staffMXID, e.alice)
	e.login = login.ID
	return login
}

// loginAs logs the Telegram account acc in for the Matrix user mxid and
// waits until that login is connected.
func (e *env) loginAs(r *running, mxid id.UserID, acc *tgsim.Account) *bridgev2.UserLogin {
	t := e.t
	t.Helper()
	ctx := context.Background()
	e.mx.ResetBridgeStates()
	proc, err := r.conn.CreateLogin(ctx, r.user(t, mxid), telegram.FlowIDPhone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = proc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ui := proc.(bridgev2.LoginProcessUserInput)
	if _, err = ui.SubmitUserInput(ctx, map[string]string{"phone": "+" + acc.Phone}); err != nil {
		t.Fatal(err)
	}
	code, ok := e.sim.LastCode(acc.Phone)
	if !ok {
		t.Fatal("no login code")
	}
	step, err := ui.SubmitUserInput(ctx, map[string]string{"code": code})
	if err != nil || step.CompleteParams == nil {
		t.Fatalf("login did not complete: %+v, %v", step, err)
	}
	e.waitConnected()
	return step.CompleteParams.UserLogin
}

func (e *env) waitConnected() {
	e.t.Helper()
	if !e.mx.WaitBridgeState(20*time.Second, status.StateConnected, "") {
		e.t.Fatal("login never connected")
	}
}

func (e *env) ghost(acc *tgsim.Account) id.UserID {
	return id.UserID("@gw_" + string(tgid.MakeUserID(acc.ID)) + ":test")
}

func (e *env) portalKey(acc *tgsim.Account) networkid.PortalKey {
	return networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: acc.ID}), Receiver: e.login}
}

// send makes acc send text to Alice on Telegram.
func (e *env) send(acc *tgsim.Account, text string) tgsim.Message {
	e.t.Helper()
	m, err := e.sim.SendMessage(acc.ID, e.alice.ID, text, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// sentBy lists the texts from received from to on Telegram, in order.
func (e *env) sentBy(from, to *tgsim.Account) []string {
	var out []string
	for _, m := range e.sim.Messages(from.ID, to.ID) {
		if m.From == from.ID {
			out = append(out, m.Text)
		}
	}
	return out
}

// bodiesFrom returns the bodies a ghost sent to Matrix, in order.
func (e *env) bodiesFrom(acc *tgsim.Account) []string {
	var out []string
	for _, m := range e.mx.MessagesFrom(e.ghost(acc)) {
		out = append(out, m.Content.Body)
	}
	return out
}

// waitRegistered waits until acc is in the contact registry: the gate
// records a contact just after its message reached Matrix.
func (r *running) waitRegistered(t *testing.T, acc *tgsim.Account) {
	t.Helper()
	if !poll(10*time.Second, func() bool {
		c, err := r.gv.Contacts.Get(context.Background(), policy.NetworkTelegram, tgid.MakeUserID(acc.ID))
		return err == nil && c != nil
	}) {
		t.Fatalf("%s never got into the contact registry", acc.FirstName)
	}
}

func (e *env) waitBodies(acc *tgsim.Account, want ...string) []fakematrix.Message {
	e.t.Helper()
	return e.waitBodiesWithin(acc, 20*time.Second, want...)
}

func (e *env) waitBodiesWithin(acc *tgsim.Account, timeout time.Duration, want ...string) []fakematrix.Message {
	e.t.Helper()
	var got []fakematrix.Message
	ok := e.mx.Eventually(timeout, func() bool {
		got = e.mx.MessagesFrom(e.ghost(acc))
		return len(got) >= len(want)
	})
	bodies := e.bodiesFrom(acc)
	if !ok || len(bodies) != len(want) {
		e.t.Fatalf("messages from %s on Matrix: %q, want %q", acc.FirstName, bodies, want)
	}
	for i := range want {
		if bodies[i] != want[i] {
			e.t.Fatalf("messages from %s on Matrix: %q, want %q", acc.FirstName, bodies, want)
		}
	}
	return got
}

// waitNotice waits for a message containing text in roomID ("" = any room).
func (e *env) waitNotice(roomID id.RoomID, text string) fakematrix.Message {
	e.t.Helper()
	var m fakematrix.Message
	if !e.mx.Eventually(20*time.Second, func() bool {
		var ok bool
		m, ok = e.mx.MessageContaining(roomID, text)
		return ok
	}) {
		var bodies []string
		for _, m := range e.mx.Messages() {
			bodies = append(bodies, string(m.RoomID)+": "+m.Content.Body)
		}
		e.t.Fatalf("no message containing %q in %q; messages: %q", text, roomID, bodies)
	}
	return m
}

// command runs a bot command as user in roomID and returns the replies.
func (r *running) command(t *testing.T, e *env, sender id.UserID, roomID id.RoomID, cmd string) string {
	t.Helper()
	before := len(e.mx.Messages())
	r.br.Commands.Handle(context.Background(), roomID, id.EventID("$cmd"+cmd), r.user(t, sender), cmd, "")
	var out string
	for _, m := range e.mx.Messages()[before:] {
		if m.RoomID == roomID {
			out += m.Content.Body + "\n"
		}
	}
	return out
}

// react makes sender react with key on the notice evtID in the admin room.
func (r *running) react(e *env, sender id.UserID, evtID id.EventID, key string) {
	evt := &event.Event{
		Type: event.EventReaction, RoomID: e.adminRoom(), Sender: sender, ID: id.EventID("$react" + string(evtID) + key),
		Content: event.Content{Parsed: &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: evtID, Key: key}}},
	}
	r.gv.HandleReaction(context.Background(), evt)
}

// sendMatrix sends a Matrix text message as the staff member in a portal.
func (r *running) sendMatrix(roomID id.RoomID, evtID id.EventID, text string) {
	r.mx.Inject(context.Background(), &event.Event{
		Type: event.EventMessage, RoomID: roomID, Sender: staffMXID, ID: evtID, Timestamp: time.Now().UnixMilli(),
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: text}},
	})
}

// poll checks cond until it holds.
func poll(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
