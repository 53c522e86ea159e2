package telegram

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	"github.com/passerelle/passerelle/internal/testlog"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// One simulator key for the package: RSA key generation is slow.
var simKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const testUser id.UserID = "@alice:test"

func newSim(t testing.TB) *tgsim.Server {
	t.Helper()
	s, err := tgsim.New(tgsim.Options{Key: simKey(), Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatalf("failed to start simulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustAccount(t testing.TB, s *tgsim.Server, spec tgsim.AccountSpec) *tgsim.Account {
	t.Helper()
	a, err := s.CreateAccount(spec)
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

// testBridge is a real bridgev2 bridge with this connector, a fake Matrix
// side and a database that survives restarts.
type testBridge struct {
	br   *bridgev2.Bridge
	conn *TelegramConnector
	mx   *fakematrix.Matrix
}

func startBridge(t testing.TB, s *tgsim.Server, db *dbutil.Database) *testBridge {
	t.Helper()
	return startBridgeWith(t, s, db, nil)
}

// startBridgeWith is startBridge with the connector and the Matrix side
// configured by configure before the bridge starts.
func startBridgeWith(t testing.TB, s *tgsim.Server, db *dbutil.Database, configure func(*TelegramConnector, *fakematrix.Matrix)) *testBridge {
	t.Helper()
	return startBridgeOn(t, s, db, fakematrix.New(), configure, nil)
}

// startBridgeOn is startBridgeWith on a given Matrix side: a restart keeps
// the homeserver (its rooms and its event IDs).
func startBridgeOn(t testing.TB, s *tgsim.Server, db *dbutil.Database, mx *fakematrix.Matrix, configure func(*TelegramConnector, *fakematrix.Matrix), bridgeConfig func(*bridgeconfig.BridgeConfig)) *testBridge {
	t.Helper()
	conn := NewConnector()
	conn.Config = Config{
		DeviceModel:         "Passerelle test",
		DisplaynameTemplate: "{{.FirstName}} {{.LastName}}",
		TestServer:          TestServerConfig{DC: s.DC(), Address: s.Addr(), PublicKey: s.PublicKeyPEM()},
	}
	if err := conn.ValidateConfig(); err != nil {
		t.Fatalf("ValidateConfig: %v", err)
	}
	if configure != nil {
		configure(conn, mx)
	}
	admin := bridgeconfig.PermissionLevelAdmin
	cfg := &bridgeconfig.BridgeConfig{
		CommandPrefix: "!tg",
		Permissions:   bridgeconfig.PermissionConfig{"*": &admin},
	}
	if bridgeConfig != nil {
		bridgeConfig(cfg)
	}
	level := zerolog.DebugLevel
	if _, bench := t.(*testing.B); bench {
		level = zerolog.WarnLevel
	}
	log := zerolog.New(testlog.NewWriter(t)).Level(level).With().Timestamp().Logger()
	br := bridgev2.NewBridge("passerelle-test", db, log, cfg, mx, conn, commands.NewProcessor)
	ctx := context.Background()
	if err := br.Start(ctx); err != nil {
		t.Fatalf("bridge start: %v", err)
	}
	tb := &testBridge{br: br, conn: conn, mx: mx}
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBridge) stop() {
	if tb.br != nil {
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

func expectStep(t testing.TB, step *bridgev2.LoginStep, err error, stepID string) *bridgev2.LoginStep {
	t.Helper()
	if err != nil {
		t.Fatalf("login step %s: unexpected error %v", stepID, err)
	}
	if step.StepID != stepID {
		t.Fatalf("got step %s (%q), want %s", step.StepID, step.Instructions, stepID)
	}
	return step
}

// loginByPhone runs the phone flow, including one wrong code.
func loginByPhone(t testing.TB, tb *testBridge, s *tgsim.Server, acc *tgsim.Account, password string) *bridgev2.UserLogin {
	t.Helper()
	ctx := context.Background()
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDPhone)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	step, err := lp.Start(ctx)
	expectStep(t, step, err, StepIDPhone)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "not a phone"})
	step = expectStep(t, step, err, StepIDPhone)
	if !strings.Contains(step.Instructions, "not a valid phone number") {
		t.Errorf("bad phone instructions: %q", step.Instructions)
	}
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "+" + acc.Phone})
	expectStep(t, step, err, StepIDCode)
	code, ok := s.LastCode(acc.Phone)
	if !ok {
		t.Fatal("simulator sent no code")
	}
	step, err = lp.SubmitUserInput(ctx, map[string]string{"code": "000000" + code})
	step = expectStep(t, step, err, StepIDCode)
	if !strings.Contains(step.Instructions, "Wrong code") {
		t.Errorf("wrong-code instructions: %q", step.Instructions)
	}
	step, err = lp.SubmitUserInput(ctx, map[string]string{"code": code})
	if password != "" {
		expectStep(t, step, err, StepIDPassword)
		step, err = lp.SubmitUserInput(ctx, map[string]string{"password": password + "x"})
		step = expectStep(t, step, err, StepIDPassword)
		if !strings.Contains(step.Instructions, "Wrong password") {
			t.Errorf("wrong-password instructions: %q", step.Instructions)
		}
		step, err = lp.SubmitUserInput(ctx, map[string]string{"password": password})
	}
	step = expectStep(t, step, err, StepIDComplete)
	ul := step.CompleteParams.UserLogin
	if ul.ID != tgid.MakeUserLoginID(acc.ID) {
		t.Fatalf("login ID %q, want %q", ul.ID, tgid.MakeUserLoginID(acc.ID))
	}
	return ul
}

func waitConnected(t testing.TB, tb *testBridge) {
	t.Helper()
	if !tb.mx.WaitBridgeState(20*time.Second, status.StateConnected, "") {
		t.Fatalf("login never reached CONNECTED; states: %+v", tb.mx.BridgeStates())
	}
}

// TestPhoneLoginAndDirectMessages drives the connector inside a real bridgev2
// bridge against the simulator, on SQLite and PostgreSQL: phone login with a
// wrong code, a formatted message each way, a refused image, a restart with
// a message sent while down (bridged exactly once), start-chat and logout.
func TestPhoneLoginAndDirectMessages(t *testing.T) {
	dbtest.Each(t, testPhoneLoginAndDirectMessages)
}

func testPhoneLoginAndDirectMessages(t *testing.T, db dbtest.Backend) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", LastName: "Liddell", Username: "alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob", LastName: "Builder", Username: "bob_builder"})
	ctx := context.Background()

	tb := startBridge(t, s, db.Open(t))
	ul := loginByPhone(t, tb, s, alice, "")
	if ul.RemoteName != "Alice Liddell" {
		t.Errorf("remote name %q", ul.RemoteName)
	}
	waitConnected(t, tb)

	// Telegram → Matrix, with formatting: a new DM portal is created.
	if _, err := s.SendMessage(bob.ID, alice.ID, "hello bold world", []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 6, Length: 4}}); err != nil {
		t.Fatal(err)
	}
	bobMXID := tb.mx.FormatGhostMXID(tgid.MakeUserID(bob.ID))
	first, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello bold world" })
	if !ok {
		t.Fatal("Telegram message never reached Matrix")
	}
	if first.Sender != bobMXID || first.Content.FormattedBody != "hello <strong>bold</strong> world" {
		t.Errorf("bridged as %s: %q", first.Sender, first.Content.FormattedBody)
	}
	portalKey := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: bob.ID}), Receiver: ul.ID}
	portal, err := tb.br.GetExistingPortalByKey(ctx, portalKey)
	if err != nil || portal == nil || portal.MXID != first.RoomID {
		t.Fatalf("portal %+v for key %v: %v", portal, portalKey, err)
	}
	ghost, err := tb.br.GetGhostByID(ctx, tgid.MakeUserID(bob.ID))
	if err != nil || ghost.Name != "Bob Builder" {
		t.Errorf("ghost name %q, %v", ghost.Name, err)
	}

	// Matrix → Telegram through the bridge's own event queue, with a mention
	// of the ghost; the echo that Telegram sends back is not bridged again.
	content := &event.MessageEventContent{
		MsgType:       event.MsgText,
		Body:          "hi Bob, *bold*",
		Format:        event.FormatHTML,
		FormattedBody: fmt.Sprintf(`hi <a href="https://matrix.to/#/%s">Bob</a>, <b>bold</b>`, bobMXID),
	}
	tb.mx.Inject(ctx, &event.Event{
		Type: event.EventMessage, RoomID: portal.MXID, Sender: testUser, ID: "$out1",
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: content},
	})
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := s.WaitMessage(waitCtx, alice.ID, bob.ID, func(m tgsim.Message) bool { return m.Text == "hi Bob, bold" })
	if err != nil {
		t.Fatalf("Matrix message never reached Telegram: %v", err)
	}
	var kinds []string
	for _, e := range got.Entities {
		switch v := e.(type) {
		case *tg.MessageEntityMentionName:
			kinds = append(kinds, fmt.Sprintf("mention:%d@%d+%d", v.UserID, v.Offset, v.Length))
		case *tg.InputMessageEntityMentionName:
			kinds = append(kinds, fmt.Sprintf("inputmention@%d+%d", v.Offset, v.Length))
		case *tg.MessageEntityBold:
			kinds = append(kinds, fmt.Sprintf("bold@%d+%d", v.Offset, v.Length))
		}
	}
	if want := []string{fmt.Sprintf("mention:%d@3+3", bob.ID), "bold@8+4"}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		if alt := []string{"inputmention@3+3", "bold@8+4"}; fmt.Sprint(kinds) != fmt.Sprint(alt) {
			t.Errorf("entities on Telegram = %v, want %v", kinds, want)
		}
	}
	dbMsg, err := tb.br.DB.Message.GetFirstPartByID(ctx, ul.ID, tgid.MakeMessageID(tgid.MessageKey{Box: tgid.Peer{Type: tgid.PeerUser, ID: alice.ID}, ID: got.SenderMsgID}))
	if err != nil || dbMsg == nil || dbMsg.MXID != "$out1" {
		t.Fatalf("sent message not mapped to its Telegram ID: %+v, %v", dbMsg, err)
	}

	// A message the user sends from another Telegram app shows as their own.
	if _, err = s.SendMessage(alice.ID, bob.ID, "sent from my phone", nil); err != nil {
		t.Fatal(err)
	}
	aliceGhost := tb.mx.FormatGhostMXID(tgid.MakeUserID(alice.ID))
	if !tb.mx.Eventually(20*time.Second, func() bool {
		msgs := tb.mx.MessagesWithBody("sent from my phone")
		return len(msgs) == 1 && msgs[0].RoomID == portal.MXID && msgs[0].Sender == aliceGhost
	}) {
		t.Errorf("own message from another app not bridged as the user's own into the DM")
	}

	// An image without a file is refused with a reason: by bridgev2 from
	// the room capabilities, and by HandleMatrixMessage itself.
	tb.mx.Inject(ctx, &event.Event{
		Type: event.EventMessage, RoomID: portal.MXID, Sender: testUser, ID: "$img",
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgImage, Body: "cat.png"}},
	})
	if !tb.mx.Eventually(10*time.Second, func() bool {
		for _, st := range tb.mx.MessageStatuses() {
			if st.ErrorReason == event.MessageStatusUnsupported {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no unsupported status for an image (%d statuses)", len(tb.mx.MessageStatuses()))
	}
	_, err = ul.Client.HandleMatrixMessage(ctx, &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
		Event:   &event.Event{ID: "$img2", Sender: testUser, RoomID: portal.MXID},
		Content: &event.MessageEventContent{MsgType: event.MsgImage, Body: "cat.png"},
		Portal:  portal,
	}})
	var ms bridgev2.MessageStatus
	if !errors.As(err, &ms) || ms.ErrorReason != event.MessageStatusUnsupported || ms.Message != "cat.png was not sent to Telegram: the message has no file" || !ms.SendNotice {
		t.Errorf("HandleMatrixMessage(m.image) error = %v", err)
	}

	// Restart: a message sent while the gateway is down arrives once.
	tb.stop()
	if _, err = s.SendMessage(bob.ID, alice.ID, "sent while down", nil); err != nil {
		t.Fatal(err)
	}
	tb2 := startBridge(t, s, db.Open(t))
	if !tb2.mx.Eventually(20*time.Second, func() bool { return len(tb2.mx.MessagesWithBody("sent while down")) > 0 }) {
		t.Fatal("message sent while down never arrived")
	}
	time.Sleep(1500 * time.Millisecond) // room for duplicates to show up
	for _, body := range []string{"sent while down", "hello bold world", "hi Bob, bold", "hi Bob, *bold*"} {
		want := 0
		if body == "sent while down" {
			want = 1
		}
		if n := len(tb2.mx.MessagesWithBody(body)); n != want {
			t.Errorf("after restart %q was bridged %d times, want %d", body, n, want)
		}
	}
	if n := len(tb.mx.MessagesWithBody("hi Bob, bold")) + len(tb.mx.MessagesWithBody("hi Bob, *bold*")); n != 0 {
		t.Errorf("the echo of a Matrix message was bridged back %d times", n)
	}

	// Start a chat by @username and by phone number.
	ul2 := tb2.br.GetCachedUserLoginByID(ul.ID)
	client := ul2.Client.(*Client)
	for _, ident := range []string{"@bob_builder", "+" + bob.Phone, "telegram." + fmt.Sprint(bob.ID)} {
		resp, err := client.ResolveIdentifier(ctx, ident, true)
		if err != nil {
			t.Errorf("ResolveIdentifier(%q): %v", ident, err)
			continue
		}
		if resp.UserID != tgid.MakeUserID(bob.ID) || resp.Chat == nil || resp.Chat.PortalKey != portalKey {
			t.Errorf("ResolveIdentifier(%q) = %+v", ident, resp)
		}
	}
	if _, err = client.ResolveIdentifier(ctx, "@nobody_here", true); err == nil {
		t.Error("ResolveIdentifier of an unknown username succeeded")
	}

	// Logout ends the Telegram session and forgets it.
	before := s.Authorizations(alice.ID)
	ul2.Logout(ctx)
	if after := s.Authorizations(alice.ID); after != before-1 {
		t.Errorf("authorizations %d → %d after logout", before, after)
	}
	if ok, _ := tb2.conn.Store.HasSession(ctx, alice.ID); ok {
		t.Error("session still stored after logout")
	}
}

func TestQRLoginWithPassword(t *testing.T) {
	s := newSim(t)
	carol := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol", Password: "correct horse"})
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ctx := context.Background()

	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDQR)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	defer lp.Cancel()
	step, err := lp.Start(ctx)
	step = expectStep(t, step, err, StepIDQR)
	if step.Type != bridgev2.LoginStepTypeDisplayAndWait || step.DisplayAndWaitParams.Type != bridgev2.LoginDisplayTypeQR {
		t.Fatalf("unexpected QR step %+v", step)
	}
	token := qrToken(t, step.DisplayAndWaitParams.Data)
	go func() {
		time.Sleep(200 * time.Millisecond)
		if err := s.AcceptQR(ctx, carol.ID, token); err != nil {
			t.Errorf("AcceptQR: %v", err)
		}
	}()
	step, err = lp.Wait(ctx)
	expectStep(t, step, err, StepIDPassword)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"password": "wrong"})
	expectStep(t, step, err, StepIDPassword)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"password": "correct horse"})
	step = expectStep(t, step, err, StepIDComplete)
	if step.CompleteParams.UserLoginID != tgid.MakeUserLoginID(carol.ID) {
		t.Fatalf("login ID %q", step.CompleteParams.UserLoginID)
	}
	waitConnected(t, tb)
}

func qrToken(t *testing.T, data string) []byte {
	t.Helper()
	u, err := url.Parse(data)
	if err != nil || u.Scheme != "tg" || u.Host != "login" {
		t.Fatalf("QR data %q is not a tg://login URL", data)
	}
	token, err := base64.URLEncoding.DecodeString(u.Query().Get("token"))
	if err != nil || len(token) == 0 {
		t.Fatalf("QR data %q has no base64url token: %v", data, err)
	}
	return token
}

func TestQRLoginExpires(t *testing.T) {
	s := newSim(t)
	s.SetQRTokenTTL(time.Second)
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ctx := context.Background()
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDQR)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	defer lp.Cancel()
	step, err := lp.Start(ctx)
	step = expectStep(t, step, err, StepIDQR)
	seen := map[string]bool{step.DisplayAndWaitParams.Data: true}
	for i := 0; i < maxQRRefreshes; i++ {
		step, err = lp.Wait(ctx)
		step = expectStep(t, step, err, StepIDQR)
		if seen[step.DisplayAndWaitParams.Data] {
			t.Errorf("refresh %d repeated an old QR code", i+1)
		}
		seen[step.DisplayAndWaitParams.Data] = true
	}
	_, err = lp.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("after %d refreshes got %v, want a QR expiry error", maxQRRefreshes, err)
	}
}

// TestPhoneLoginExpiredCodeAndPassword: an expired code brings a new one,
// then two-step verification asks for the password (a wrong one first).
func TestPhoneLoginExpiredCodeAndPassword(t *testing.T) {
	s := newSim(t)
	dave := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave", Password: "s3cret"})
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ctx := context.Background()
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDPhone)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	defer lp.Cancel()
	step, err := lp.Start(ctx)
	expectStep(t, step, err, StepIDPhone)
	s.SetCodeTTL(100 * time.Millisecond)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "+" + dave.Phone})
	expectStep(t, step, err, StepIDCode)
	oldCode, _ := s.LastCode(dave.Phone)
	s.SetCodeTTL(5 * time.Minute)
	time.Sleep(300 * time.Millisecond)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"code": oldCode})
	step = expectStep(t, step, err, StepIDCode)
	if !strings.Contains(step.Instructions, "expired") {
		t.Errorf("expired-code instructions: %q", step.Instructions)
	}
	newCode, _ := s.LastCode(dave.Phone)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"code": newCode})
	expectStep(t, step, err, StepIDPassword)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"password": "wrong"})
	step = expectStep(t, step, err, StepIDPassword)
	if !strings.Contains(step.Instructions, "Wrong password") {
		t.Errorf("wrong-password instructions: %q", step.Instructions)
	}
	step, err = lp.SubmitUserInput(ctx, map[string]string{"password": "s3cret"})
	step = expectStep(t, step, err, StepIDComplete)
	if step.CompleteParams.UserLoginID != tgid.MakeUserLoginID(dave.ID) {
		t.Fatalf("login ID %q", step.CompleteParams.UserLoginID)
	}
	waitConnected(t, tb)
}

// TestLoginTooManyWrongCodes: the login ends after maxAttempts wrong codes.
func TestLoginTooManyWrongCodes(t *testing.T) {
	s := newSim(t)
	erin := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550005", FirstName: "Erin"})
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ctx := context.Background()
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDPhone)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	defer lp.Cancel()
	step, err := lp.Start(ctx)
	expectStep(t, step, err, StepIDPhone)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "+" + erin.Phone})
	expectStep(t, step, err, StepIDCode)
	for i := 1; i < maxAttempts; i++ {
		step, err = lp.SubmitUserInput(ctx, map[string]string{"code": "1"})
		expectStep(t, step, err, StepIDCode)
	}
	_, err = lp.SubmitUserInput(ctx, map[string]string{"code": "1"})
	var re bridgev2.RespError
	if !errors.As(err, &re) || !strings.Contains(re.Err, "Too many wrong attempts") {
		t.Fatalf("after %d wrong codes: %v", maxAttempts, err)
	}
}

// TestLinkedLoginRemembersItsPortals: a login made while the gateway runs
// is handed its contact's messages without bridgev2 checking, at each one,
// that the user is in the portal (remote.GivePortalCache).
func TestLinkedLoginRemembersItsPortals(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	send := func(text string) fakematrix.Message {
		t.Helper()
		if _, err := s.SendMessage(bob.ID, alice.ID, text, nil); err != nil {
			t.Fatal(err)
		}
		m, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == text })
		if !ok {
			t.Fatalf("%q never reached Matrix", text)
		}
		return m
	}
	if more := tb.mx.MoreInviteChecks(testUser, 3, send); more != 0 {
		t.Fatalf("three more messages asked %d more times whether the user is in the portal", more)
	}
}
