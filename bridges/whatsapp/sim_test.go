package whatsapp

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	"github.com/passerelle/passerelle/internal/metrics"
	"github.com/passerelle/passerelle/internal/testlog"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

const (
	testUser  id.UserID = "@alice:test"
	alicePh             = "15550001111"
	bobPh               = "15550002222"
	carolPh             = "15550003333"
	bobGhost  id.UserID = "@gw_whatsapp.15550002222:test"
	carolGhst id.UserID = "@gw_whatsapp.15550003333:test"
	waitLong            = 20 * time.Second
)

func TestMain(m *testing.M) {
	wasim.UseRootPublicKey(wasim.RootPublicKeyFromSeed(""))
	os.Exit(m.Run())
}

func startSim(t testing.TB) *wasim.Server {
	t.Helper()
	return startSimClock(t, nil)
}

// startSimClock starts the simulator on clk (the system clock when nil);
// give the same clock to startBridgeClock to move both past a time limit.
func startSimClock(t testing.TB, clk *manualClock) *wasim.Server {
	t.Helper()
	cfg := wasim.Config{StreamErrorCloseDelay: 300 * time.Millisecond}
	if clk != nil {
		cfg.Clock = clk
	}
	srv, err := wasim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for phone, name := range map[string]string{alicePh: "Alice", bobPh: "Bob", carolPh: "Carol"} {
		if _, err = srv.CreateAccount(phone, name); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

type testBridge struct {
	br    *bridgev2.Bridge
	conn  *WhatsAppConnector
	mx    *fakematrix.Matrix
	clock *manualClock
}

func startBridge(t testing.TB, srv *wasim.Server, db *dbutil.Database) *testBridge {
	t.Helper()
	return startBridgeClock(t, srv, db, &manualClock{})
}

func startBridgeClock(t testing.TB, srv *wasim.Server, db *dbutil.Database, clock *manualClock, opts ...func(*WhatsAppConnector)) *testBridge {
	t.Helper()
	return startBridgeOn(t, srv, db, clock, fakematrix.New(), opts...)
}

// startBridgeOn starts a bridge on the Matrix side mx: the same one again
// for a gateway restarted on its database (its rooms and events stay).
func startBridgeOn(t testing.TB, srv *wasim.Server, db *dbutil.Database, clock *manualClock, mx *fakematrix.Matrix, opts ...func(*WhatsAppConnector)) *testBridge {
	t.Helper()
	conn := NewConnector()
	conn.Clock = clock
	for _, opt := range opts {
		opt(conn)
	}
	conn.TestServer = &TestServer{HTTPClient: wasim.ClientHTTP(srv.Addr()), MediaHTTPClient: srv.MediaHTTPClient(), RootPublicKey: wasim.RootPublicKeyFromSeed("")}
	if err := conn.ValidateConfig(); err != nil {
		t.Fatal(err)
	}
	admin := bridgeconfig.PermissionLevelAdmin
	cfg := &bridgeconfig.BridgeConfig{CommandPrefix: "!wa", Permissions: bridgeconfig.PermissionConfig{"*": &admin},
		// As the gateway sets it (config/defaults.go): forward only.
		Backfill: bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100, MaxCatchupMessages: 100}}
	log := zerolog.New(testlog.NewWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	br := bridgev2.NewBridge("passerelle-test", db, log, cfg, mx, conn, commands.NewProcessor)
	if err := br.Start(context.Background()); err != nil {
		t.Fatalf("bridge start: %v", err)
	}
	tb := &testBridge{br: br, conn: conn, mx: mx, clock: clock}
	t.Cleanup(tb.stop)
	return tb
}

// stop stops the bridge, holding back any reconnection attempt.
func (tb *testBridge) stop() {
	if tb.br != nil {
		tb.clock.armed.Store(true)
		tb.br.StopWithTimeout(5 * time.Second)
		tb.br = nil
	}
}

func (tb *testBridge) user(t testing.TB) *bridgev2.User {
	t.Helper()
	u, err := tb.br.GetUserByMXID(context.Background(), testUser)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// loginQR links Alice's account by QR: the simulated phone scans the code
// that the login step shows.
func loginQR(t testing.TB, tb *testBridge, srv *wasim.Server) *bridgev2.UserLogin {
	t.Helper()
	ctx := ctxFor(t)
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDQR)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	step, err := lp.Start(ctx)
	if err != nil || step.StepID != StepIDQR || step.DisplayAndWaitParams.Type != bridgev2.LoginDisplayTypeQR {
		t.Fatalf("Start = %+v, %v", step, err)
	}
	if err = srv.ScanQR(ctx, alicePh, step.DisplayAndWaitParams.Data); err != nil {
		t.Fatalf("ScanQR: %v", err)
	}
	for step.Type != bridgev2.LoginStepTypeComplete {
		if step, err = lp.Wait(ctx); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	return waitConnected(t, tb, step.CompleteParams.UserLogin)
}

func waitConnected(t testing.TB, tb *testBridge, ul *bridgev2.UserLogin) *bridgev2.UserLogin {
	t.Helper()
	if ul.ID != "whatsapp."+alicePh {
		t.Fatalf("login ID %q", ul.ID)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return tb.mx.HasBridgeState(status.StateConnected, "") }) {
		t.Fatal("login never reached CONNECTED")
	}
	if !ul.Client.IsLoggedIn() {
		t.Fatal("client not logged in")
	}
	return ul
}

func (tb *testBridge) waitMsg(t testing.TB, what string, pred func(fakematrix.Message) bool) fakematrix.Message {
	t.Helper()
	found, ok := tb.mx.WaitMessage(waitLong, pred)
	if !ok {
		t.Fatalf("timed out waiting for %s on Matrix", what)
	}
	return found
}

func (tb *testBridge) sendMatrix(t testing.TB, ul *bridgev2.UserLogin, portal *bridgev2.Portal, content *event.MessageEventContent) *bridgev2.MatrixMessageResponse {
	t.Helper()
	msg := &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
		Event:   &event.Event{ID: testEventID(), Sender: testUser, RoomID: portal.MXID, Type: event.EventMessage},
		Content: content,
		Portal:  portal,
	}}
	resp, err := ul.Client.HandleMatrixMessage(ctxFor(t), msg)
	if err != nil {
		t.Fatalf("HandleMatrixMessage: %v", err)
	}
	return resp
}

func TestQRLoginAndDirectChat(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)

	// WhatsApp → Matrix: the first message creates the portal.
	if _, err := srv.SendText(ctx, bobPh, alicePh, "hello *Alice*"); err != nil {
		t.Fatal(err)
	}
	got := tb.waitMsg(t, "Bob's message", func(m fakematrix.Message) bool { return m.Content.Body == "hello *Alice*" })
	if got.Sender != bobGhost || got.Content.FormattedBody != "hello <strong>Alice</strong>" {
		t.Fatalf("bridged as %s: %+v", got.Sender, got.Content)
	}
	portal, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
	if err != nil || portal == nil || portal.MXID != got.RoomID {
		t.Fatalf("portal %+v, %v", portal, err)
	}
	ghost, _ := tb.br.GetGhostByID(ctx, "whatsapp."+bobPh)
	if ghost.Name != "Bob" {
		t.Fatalf("ghost name %q, want the push name", ghost.Name)
	}

	// Matrix → WhatsApp, with formatting and a mention pill.
	resp := tb.sendMatrix(t, ul, portal, &event.MessageEventContent{
		MsgType: event.MsgText, Body: "Bob: hi", Format: event.FormatHTML,
		FormattedBody: `<a href="https://matrix.to/#/` + string(bobGhost) + `">Bob</a>: <b>hi</b>`,
	})
	key, err := waid.ParseMessageID(resp.DB.ID)
	if err != nil || key.Sender.User != alicePh || key.Chat.User != bobPh {
		t.Fatalf("message ID %q: %+v %v", resp.DB.ID, key, err)
	}
	m, err := srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool { return m.ID == key.ID })
	if err != nil {
		t.Fatalf("Bob never got the message: %v", err)
	}
	if m.Text() != "@15550002222: *hi*" || len(m.Message.GetExtendedTextMessage().GetContextInfo().GetMentionedJID()) != 1 {
		t.Fatalf("Bob got %q", m.Text())
	}

	// Emotes become "/me …"; what cannot be bridged is refused with a reason.
	resp = tb.sendMatrix(t, ul, portal, &event.MessageEventContent{MsgType: event.MsgEmote, Body: "waves"})
	key, _ = waid.ParseMessageID(resp.DB.ID)
	if m, err = srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool { return m.ID == key.ID }); err != nil || m.Text() != "/me waves" {
		t.Fatalf("emote: %q, %v", m.Text(), err)
	}
	_, err = ul.Client.HandleMatrixMessage(ctx, &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
		Event: &event.Event{ID: "$poll"}, Content: &event.MessageEventContent{MsgType: "org.example.custom", Body: "?"}, Portal: portal,
	}})
	if !errors.Is(err, bridgev2.ErrUnsupportedMessageType) {
		t.Fatalf("unknown message type: %v", err)
	}

	// start-chat: ResolveIdentifier by phone number.
	api := ul.Client.(bridgev2.IdentifierResolvingNetworkAPI)
	res, err := api.ResolveIdentifier(ctx, "+1 555 000 3333", true)
	if err != nil || res.UserID != "whatsapp."+carolPh || res.Chat == nil || res.Chat.PortalKey.ID != "whatsapp."+carolPh {
		t.Fatalf("ResolveIdentifier = %+v, %v", res, err)
	}
	var respErr bridgev2.RespError
	if _, err = api.ResolveIdentifier(ctx, "+1 555 999 0000", true); !errors.As(err, &respErr) || respErr.ErrCode != errNotOnWhatsApp.ErrCode {
		t.Fatalf("unknown number: %v", err)
	}
	if _, err = api.ResolveIdentifier(ctx, "not a number", false); !errors.As(err, &respErr) || respErr.ErrCode != errInvalidPhone.ErrCode {
		t.Fatalf("bad number: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // let receipts go out before the client disconnects
}

func mustKey(t testing.TB, portalID string, ul *bridgev2.UserLogin) networkid.PortalKey {
	t.Helper()
	return networkid.PortalKey{ID: networkid.PortalID(portalID), Receiver: ul.ID}
}

func TestGroupBothWays(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)

	gid, err := srv.CreateGroup(ctx, bobPh, "Project", "Weekly sync", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	// Carol writes, mentioning Alice: the sender is Carol's ghost, and the
	// mention a pill to Alice's Matrix account.
	msgID, err := srv.SendGroupText(ctx, carolPh, gid, "@15550001111 _welcome_", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	got := tb.waitMsg(t, "Carol's group message", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "welcome") })
	if got.Sender != carolGhst {
		t.Fatalf("group message sent by %s, want %s", got.Sender, carolGhst)
	}
	if !strings.Contains(got.Content.FormattedBody, `href="https://matrix.to/#/@alice:test"`) || !strings.Contains(got.Content.FormattedBody, "<em>welcome</em>") {
		t.Fatalf("group message html %q", got.Content.FormattedBody)
	}
	if got.Content.Mentions == nil || !got.Content.Mentions.Has(testUser) {
		t.Fatalf("mentions %+v", got.Content.Mentions)
	}
	groupJID := strings.TrimSuffix(gid, "@g.us")
	portal, err := tb.br.GetExistingPortalByKey(ctx, networkid.PortalKey{ID: networkid.PortalID("whatsapp.g-" + groupJID)})
	if err != nil || portal == nil || portal.MXID != got.RoomID {
		t.Fatalf("group portal %+v, %v", portal, err)
	}
	if portal.Name != "Project" || portal.Topic != "Weekly sync" {
		t.Fatalf("group portal name %q topic %q", portal.Name, portal.Topic)
	}
	members := tb.mx.JoinedMembers(portal.MXID)
	for _, want := range []id.UserID{bobGhost, carolGhst} {
		if !containsUser(members, want) {
			t.Errorf("group member %s is not in the room (%v)", want, members)
		}
	}
	// The mapping is saved once the Matrix event is sent.
	if !tb.mx.Eventually(waitLong, func() bool {
		dbMsg, err := tb.br.DB.Message.GetFirstPartByID(ctx, "", networkid.MessageID("whatsapp.g-"+groupJID+"."+carolPh+"."+msgID))
		return err == nil && dbMsg != nil
	}) {
		t.Fatal("group message ID not mapped")
	}

	// Matrix → group.
	resp := tb.sendMatrix(t, ul, portal, &event.MessageEventContent{MsgType: event.MsgText, Body: "thanks all"})
	key, _ := waid.ParseMessageID(resp.DB.ID)
	m, err := srv.WaitMessage(ctx, alicePh, gid, func(m wasim.Message) bool { return m.ID == key.ID })
	if err != nil || m.Text() != "thanks all" || !m.Group {
		t.Fatalf("group got %+v, %v", m, err)
	}
	time.Sleep(200 * time.Millisecond)
}

func containsUser(list []id.UserID, u id.UserID) bool {
	for _, x := range list {
		if x == u {
			return true
		}
	}
	return false
}

func TestPairingCodeLogin(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ctx := ctxFor(t)
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDPhone)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	step, err := lp.Start(ctx)
	if err != nil || step.StepID != StepIDPhone {
		t.Fatalf("Start = %+v, %v", step, err)
	}
	// A malformed number and a number without WhatsApp ask again.
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "hello"})
	if err != nil || step.StepID != StepIDPhone || !strings.Contains(step.Instructions, "not a valid phone number") {
		t.Fatalf("bad phone: %+v, %v", step, err)
	}
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "+1 555 999 0000"})
	if err != nil || step.StepID != StepIDPhone || !strings.Contains(step.Instructions, "no account") {
		t.Fatalf("unknown phone: %+v, %v", step, err)
	}
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "+" + alicePh})
	if err != nil || step.StepID != StepIDPairingCode || step.DisplayAndWaitParams.Type != bridgev2.LoginDisplayTypeCode {
		t.Fatalf("pairing code step: %+v, %v", step, err)
	}
	code := step.DisplayAndWaitParams.Data
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("pairing code %q is not XXXX-XXXX", code)
	}
	// A mistyped code is refused by the phone; the right one links.
	if err = srv.EnterPairingCode(ctx, alicePh, "AAAA-AAAA"); !errors.Is(err, wasim.ErrWrongCode) && err == nil {
		t.Fatalf("wrong code accepted")
	}
	if !srv.PendingPairingCode(alicePh) {
		t.Fatal("a wrong code ended the pairing")
	}
	if err = srv.EnterPairingCode(ctx, alicePh, code); err != nil {
		t.Fatalf("EnterPairingCode: %v", err)
	}
	step, err = lp.Wait(ctx)
	if err != nil || step.Type != bridgev2.LoginStepTypeComplete {
		t.Fatalf("Wait = %+v, %v", step, err)
	}
	ul := waitConnected(t, tb, step.CompleteParams.UserLogin)
	if _, err = srv.SendText(ctx, bobPh, alicePh, "paired by code"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "message after code pairing", func(m fakematrix.Message) bool { return m.Content.Body == "paired by code" })
	_ = ul
	time.Sleep(200 * time.Millisecond)
}

func TestPairingCodeExpires(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	tb.conn.PairTimeout = 300 * time.Millisecond
	ctx := ctxFor(t)
	proc, _ := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDPhone)
	lp := proc.(*loginProcess)
	_, _ = lp.Start(ctx)
	step, err := lp.SubmitUserInput(ctx, map[string]string{"phone": alicePh})
	if err != nil || step.StepID != StepIDPairingCode {
		t.Fatalf("%+v, %v", step, err)
	}
	step, err = lp.Wait(ctx)
	if err != nil || step.StepID != StepIDPhone || !strings.Contains(step.Instructions, "expired") {
		t.Fatalf("expired code: %+v, %v", step, err)
	}
	// The retry gives a fresh code.
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": alicePh})
	if err != nil || step.StepID != StepIDPairingCode {
		t.Fatalf("retry: %+v, %v", step, err)
	}
	lp.Cancel()
}

func TestQRLoginTimesOut(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	tb.conn.QRTimeout = 300 * time.Millisecond
	ctx := ctxFor(t)
	proc, _ := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDQR)
	lp := proc.(*loginProcess)
	if _, err := lp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := lp.Wait(ctx)
	var respErr bridgev2.RespError
	if !errors.As(err, &respErr) || respErr.ErrCode != ErrLoginQRTimeout.ErrCode {
		t.Fatalf("Wait after timeout = %v", err)
	}
	if logins := tb.user(t).GetUserLogins(); len(logins) != 0 {
		t.Fatalf("%d logins after a timed-out QR", len(logins))
	}
}

// TestRestartWithoutPairing stops the bridge and starts a new one on the same
// database: the login reconnects from the device store, and messages flow.
func TestRestartWithoutPairing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		srv := startSim(t)
		tb := startBridge(t, srv, b.Open(t))
		loginQR(t, tb, srv)
		ctx := ctxFor(t)
		if _, err := srv.SendText(ctx, bobPh, alicePh, "before restart"); err != nil {
			t.Fatal(err)
		}
		tb.waitMsg(t, "message before restart", func(m fakematrix.Message) bool { return m.Content.Body == "before restart" })
		time.Sleep(200 * time.Millisecond)
		tb.stop()

		tb2 := startBridge(t, srv, b.Open(t))
		if !tb2.mx.Eventually(waitLong, func() bool { return tb2.mx.HasBridgeState(status.StateConnected, "") }) {
			t.Fatal("restarted login never connected")
		}
		if _, err := srv.SendText(ctx, bobPh, alicePh, "after restart"); err != nil {
			t.Fatal(err)
		}
		got := tb2.waitMsg(t, "message after restart", func(m fakematrix.Message) bool { return m.Content.Body == "after restart" })
		if got.Sender != bobGhost {
			t.Fatalf("sender %s", got.Sender)
		}
		rooms := len(tb2.mx.Rooms())
		if rooms != 0 {
			t.Fatalf("restart made %d new rooms; the portal should be reused", rooms)
		}
		time.Sleep(200 * time.Millisecond)
	})
}

func TestUnpairFromPhone(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	time.Sleep(200 * time.Millisecond)
	if err := srv.Unpair(ctxFor(t), alicePh); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return tb.mx.HasBridgeState(status.StateBadCredentials, StateErrLoggedOut) }) {
		t.Fatal("no BAD_CREDENTIALS state after unpairing")
	}
	tb.waitMsg(t, "logout notice", func(m fakematrix.Message) bool {
		return m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, "unlinked this device")
	})
	if ul.Client.IsLoggedIn() {
		t.Fatal("client still logged in")
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		devs, err := tb.conn.Store.GetAllDevices(ctxFor(t))
		return err == nil && len(devs) == 0
	}) {
		t.Fatal("the unlinked device's keys stayed in the store")
	}
}

// TestStreamReplaced: another connection takes the WhatsApp session over
// (the simulator's stream:error conflict "replaced"). The login reports
// UNKNOWN_ERROR wa-stream-replaced with a restart action, the staff member
// is told to send `reconnect`, and that command brings the login back with
// its stored keys: no new pairing, the same device, and messages flow again.
func TestStreamReplaced(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "before the takeover"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "a message before the takeover", func(m fakematrix.Message) bool { return m.Content.Body == "before the takeover" })
	acc, _ := srv.Account(alicePh)
	devicesBefore := acc.Devices()

	if err := srv.ReplaceStream(alicePh); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return tb.mx.HasBridgeState(status.StateUnknownError, StateErrStreamReplaced) }) {
		t.Fatal("no state for the replaced stream")
	}
	st := ul.BridgeState.GetPrevUnsent()
	if st.UserAction != status.UserActionRestart || !strings.Contains(st.Message, "`reconnect`") {
		t.Fatalf("state %+v, want a restart action and a message naming reconnect", st)
	}
	tb.waitMsg(t, "stream replaced notice", func(m fakematrix.Message) bool {
		return m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, "stream replaced") &&
			strings.Contains(m.Content.Body, "Send `reconnect`") && strings.Contains(m.Content.Body, "no new pairing")
	})
	if ul.Client.IsLoggedIn() {
		t.Fatal("client still logged in after the takeover")
	}
	// The admin-room notice: the login notifier as the gateway runs it, on
	// this bridge's logins, at once (not after the disconnection delay).
	var notices []string
	notifier := &metrics.LoginNotifier{
		Logins: metrics.BridgeLogins(tb.br),
		Notify: func(_ context.Context, text string) error { notices = append(notices, text); return nil },
	}
	notifier.Check(ctx)
	if len(notices) != 1 || !strings.Contains(notices[0], "WhatsApp login of "+string(testUser)+" is not connected: unknown error") ||
		!strings.Contains(notices[0], "`reconnect` command (no new pairing)") {
		t.Fatalf("admin notices: %q", notices)
	}

	const mgmt id.RoomID = "!management:test"
	tb.mx.ResetBridgeStates()
	tb.br.Commands.Handle(ctx, mgmt, "$reconnect", tb.user(t), remote.ReconnectCommand, "")
	tb.waitMsg(t, "the command's answer", func(m fakematrix.Message) bool {
		return m.RoomID == mgmt && strings.Contains(m.Content.Body, "Reconnecting your WhatsApp login") && strings.Contains(m.Content.Body, "no new pairing")
	})
	if !tb.mx.Eventually(waitLong, func() bool { return tb.mx.HasBridgeState(status.StateConnected, "") }) {
		t.Fatal("the login did not reconnect")
	}
	tb.waitMsg(t, "the reconnected notice", func(m fakematrix.Message) bool {
		return m.Content.MsgType == event.MsgNotice && strings.HasPrefix(m.Content.Body, "Reconnected to WhatsApp")
	})
	if _, err := srv.SendText(ctx, bobPh, alicePh, "after the takeover"); err != nil {
		t.Fatal(err)
	}
	got := tb.waitMsg(t, "a message after reconnect", func(m fakematrix.Message) bool { return m.Content.Body == "after the takeover" })
	if got.Sender != bobGhost {
		t.Fatalf("sender %s", got.Sender)
	}
	if after := acc.Devices(); len(after) != 1 || len(devicesBefore) != 1 || after[0] != devicesBefore[0] {
		t.Fatalf("linked devices %v before, %v after: reconnect must not pair a new device", devicesBefore, after)
	}
	if logins := tb.user(t).GetUserLogins(); len(logins) != 1 || logins[0].ID != ul.ID {
		t.Fatalf("logins after reconnect: %d", len(logins))
	}

	// All connected: the command says so and touches nothing.
	tb.br.Commands.Handle(ctx, mgmt, "$reconnect2", tb.user(t), remote.ReconnectCommand, "")
	tb.waitMsg(t, "the all-connected answer", func(m fakematrix.Message) bool {
		return m.RoomID == mgmt && strings.HasPrefix(m.Content.Body, "All your logins are connected")
	})
	// A login named by argument is reconnected even when connected; an
	// unknown name is refused.
	tb.br.Commands.Handle(ctx, mgmt, "$reconnect3", tb.user(t), remote.ReconnectCommand+" nosuchlogin", "")
	tb.waitMsg(t, "the unknown-login answer", func(m fakematrix.Message) bool {
		return m.RoomID == mgmt && strings.HasPrefix(m.Content.Body, "You have no login named `nosuchlogin`")
	})
	tb.mx.ResetBridgeStates()
	tb.br.Commands.Handle(ctx, mgmt, "$reconnect4", tb.user(t), remote.ReconnectCommand+" "+string(ul.ID), "")
	if !tb.mx.Eventually(waitLong, func() bool {
		return tb.mx.HasBridgeState(status.StateConnecting, "") && tb.mx.HasBridgeState(status.StateConnected, "")
	}) {
		t.Fatalf("the named login was not reconnected: %+v", tb.mx.BridgeStates())
	}
	if _, err := srv.SendText(ctx, bobPh, alicePh, "after the second reconnect"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "a message after the second reconnect", func(m fakematrix.Message) bool { return m.Content.Body == "after the second reconnect" })
}

func TestUndecryptablePlaceholderIsReplaced(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	loginQR(t, tb, srv)
	ctx := ctxFor(t)
	if _, err := srv.SendUndecryptable(ctx, bobPh, alicePh, "the real text"); err != nil {
		t.Fatal(err)
	}
	ph := tb.waitMsg(t, "placeholder", func(m fakematrix.Message) bool { return m.Content.Body == PlaceholderText })
	if ph.Sender != bobGhost {
		t.Fatalf("placeholder sent by %s", ph.Sender)
	}
	edit := tb.waitMsg(t, "edit replacing the placeholder", func(m fakematrix.Message) bool {
		return m.Content.NewContent != nil && m.Content.NewContent.Body == "the real text"
	})
	if edit.RoomID != ph.RoomID || edit.Content.RelatesTo == nil || edit.Content.RelatesTo.Type != event.RelReplace {
		t.Fatalf("edit %+v", edit.Content)
	}
	time.Sleep(200 * time.Millisecond)
}

// TestLogout is the `logout` command: the device is removed from the
// account on the phone and its keys from the store.
func TestLogout(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	time.Sleep(200 * time.Millisecond)
	acc, _ := srv.Account(alicePh)
	if len(acc.Devices()) != 1 {
		t.Fatalf("account has %d linked devices before logout", len(acc.Devices()))
	}
	ul.Logout(ctxFor(t))
	if !tb.mx.Eventually(waitLong, func() bool { return len(acc.Devices()) == 0 }) {
		t.Fatal("the phone still lists the device after logout")
	}
	devs, err := tb.conn.Store.GetAllDevices(ctxFor(t))
	if err != nil || len(devs) != 0 {
		t.Fatalf("%d devices in the store after logout (%v)", len(devs), err)
	}
	if logins := tb.user(t).GetUserLogins(); len(logins) != 0 {
		t.Fatalf("%d logins after logout", len(logins))
	}
}

// TestQRCodeRotates waits for WhatsApp's first QR code to expire (whatsmeow
// rotates it after 60 s): the login shows the next code, the old one no longer
// links, and the phone scanning the new one completes the login.
func TestQRCodeRotates(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for WhatsApp's 60 s QR rotation")
	}
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDQR)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	first, err := lp.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	next, err := lp.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait for the next QR code: %v", err)
	}
	t.Logf("next QR code after %s", time.Since(start).Round(time.Second))
	if next.StepID != StepIDQR || next.DisplayAndWaitParams == nil || next.DisplayAndWaitParams.Data == first.DisplayAndWaitParams.Data {
		t.Fatalf("after the first code expired the login showed %+v", next)
	}
	if err = srv.ScanQR(ctx, alicePh, first.DisplayAndWaitParams.Data); err == nil {
		t.Fatal("the expired QR code still linked the phone")
	}
	if err = srv.ScanQR(ctx, alicePh, next.DisplayAndWaitParams.Data); err != nil {
		t.Fatalf("ScanQR of the new code: %v", err)
	}
	step := next
	for step.Type != bridgev2.LoginStepTypeComplete {
		if step, err = lp.Wait(ctx); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	waitConnected(t, tb, step.CompleteParams.UserLogin)
}

// TestLinkedLoginRemembersItsPortals: a login linked while the gateway
// runs is handed its contact's messages without bridgev2 checking, at each
// one, that the user is in the portal (bridgev2 gives such a login no
// portal cache: remote.GivePortalCache).
func TestLinkedLoginRemembersItsPortals(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	loginQR(t, tb, srv)
	ctx := ctxFor(t)
	send := func(text string) fakematrix.Message {
		t.Helper()
		if _, err := srv.SendText(ctx, bobPh, alicePh, text); err != nil {
			t.Fatal(err)
		}
		return tb.waitMsg(t, text, func(m fakematrix.Message) bool { return m.Content.Body == text })
	}
	if more := tb.mx.MoreInviteChecks(testUser, 3, send); more != 0 {
		t.Fatalf("three more messages asked %d more times whether the user is in the portal", more)
	}
}
