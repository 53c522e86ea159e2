package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// telegramWorld makes a staff account and an outside contact who know each
// other on the simulated Telegram.
func telegramWorld(t testing.TB, sim *tgsim.Server, staffPhone, password string) (staff, contact *tgsim.Account) {
	t.Helper()
	staff, err := sim.CreateAccount(tgsim.AccountSpec{Phone: staffPhone, FirstName: "Sam", LastName: "Staff", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	contact, err = sim.CreateAccount(tgsim.AccountSpec{Phone: "+1555" + staffPhone[len(staffPhone)-4:] + "9", FirstName: "Alice", LastName: "Outside", Username: "alice_" + staffPhone[len(staffPhone)-4:]})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]int64{{staff.ID, contact.ID}, {contact.ID, staff.ID}} {
		if err = sim.AddContact(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	return staff, contact
}

// TestTelegramPhoneLoginAndEncryptedDM: a staff member logs in to Telegram by
// phone from their management room (mistyping the code once), an outside
// contact writes to them with formatting, the message arrives decrypted in a
// new encrypted portal from a ghost named after the contact, the staff
// member's formatted answer reaches Telegram with the right entities, and
// after a restart of the gateway (no new login) a message sent while it was
// down arrives exactly once.
func TestTelegramPhoneLoginAndEncryptedDM(t *testing.T) {
	sim := NewTelegramSim(t, tgsim.Options{})
	staff, contact := telegramWorld(t, sim, "+15550001", "")
	sim.SetAutoReply(contact.ID, func(in tgsim.Message) (string, bool) { return "auto-reply to " + in.Text, true })

	s := NewStack(t, StackOptions{TelegramSim: sim, Users: []string{"sam"}})
	sam := s.User("sam")
	ctx := s.Ctx()
	mgmt, _ := s.BotRoom(sam)

	// `login` alone lists the flows of every enabled network.
	flows := s.Command(sam, mgmt, "login")
	for _, flow := range []string{"telegram-phone", "telegram-qr"} {
		if !strings.Contains(flows.Body(), flow) {
			t.Errorf("`login` answer does not list %s: %q", flow, flows.Body())
		}
	}

	// Phone login, one prompt at a time, with a wrong code first.
	start := time.Now()
	prompt := s.Command(sam, mgmt, "login telegram-phone")
	if !strings.Contains(prompt.Body(), "phone number") {
		t.Fatalf("login prompt: %q", prompt.Body())
	}
	prompt = s.Input(sam, mgmt, "+15550001")
	if !strings.Contains(prompt.Body(), "code") {
		t.Fatalf("code prompt: %q", prompt.Body())
	}
	code, ok := sim.LastCode("+15550001")
	if !ok {
		t.Fatal("the simulator issued no login code")
	}
	wrong := s.Input(sam, mgmt, wrongCode(code))
	if !strings.Contains(strings.ToLower(wrong.Body()), "code") || strings.Contains(wrong.Body(), "Logged in") {
		t.Fatalf("after a wrong code: %q", wrong.Body())
	}
	done := s.Input(sam, mgmt, code)
	if !strings.Contains(done.Body(), "Logged in") {
		t.Fatalf("after the right code: %q", done.Body())
	}
	t.Logf("Telegram login done in %s", time.Since(start).Round(time.Millisecond))
	authsAfterLogin := sim.Authorizations(staff.ID)

	// Inbound: a new portal, encrypted, with the contact's formatted message.
	start = time.Now()
	text := "Bonjour from Telegram"
	entities := []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 0, Length: 7}}
	if _, err := sim.SendMessage(contact.ID, staff.ID, text, entities); err != nil {
		t.Fatal(err)
	}
	portal, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sam.WaitMessage(ctx, portal.RoomID, MessageFilter{BodyContains: text})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Telegram message decrypted in the portal %s after it was sent", time.Since(start).Round(time.Millisecond))
	if html, _ := msg.Content["formatted_body"].(string); !strings.Contains(html, "<strong>Bonjour</strong>") && !strings.Contains(html, "<b>Bonjour</b>") {
		t.Errorf("formatted_body = %q, want Bonjour in bold", html)
	}
	if enc, err := sam.RoomState(ctx, portal.RoomID, "m.room.encryption", ""); err != nil || enc == nil {
		t.Errorf("the portal room has no m.room.encryption state: %v", err)
	}
	if err = sam.RequireEncryptedOnServer(ctx, portal.RoomID, msg.EventID); err != nil {
		t.Fatalf("homeserver copy of the bridged message: %v", err)
	}
	ghost := msg.Sender
	if !strings.Contains(ghost, "telegram") {
		t.Errorf("ghost %s does not show its network", ghost)
	}
	if name, err := sam.DisplayName(ctx, ghost); err != nil || !strings.Contains(name, "Alice") {
		t.Errorf("ghost %s display name %q, %v; want Alice's name", ghost, name, err)
	}

	// Entities that point outside the text: bridged as plain text, not dropped.
	broken := "entities out of range"
	if _, err = sim.SendMessage(contact.ID, staff.ID, broken, []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 100, Length: 5}}); err != nil {
		t.Fatal(err)
	}
	if _, err = sam.WaitMessage(ctx, portal.RoomID, MessageFilter{Sender: ghost, BodyContains: broken}); err != nil {
		t.Fatalf("a message with out-of-range entities was not bridged: %v", err)
	}

	// Outbound with formatting: the answer reaches Telegram with entities,
	// and the contact's auto-reply comes back from the ghost.
	start = time.Now()
	if _, err = sam.SendMessage(ctx, portal.RoomID, Message{
		Body:          "Salut Alice, bold and italic",
		FormattedBody: "Salut Alice, <b>bold</b> and <em>italic</em>",
	}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := sim.WaitMessage(waitCtx, staff.ID, contact.ID, func(m tgsim.Message) bool { return strings.HasPrefix(m.Text, "Salut Alice") })
	if err != nil {
		t.Fatalf("the Matrix message never reached Telegram: %v", err)
	}
	t.Logf("Matrix message on Telegram %s after the send", time.Since(start).Round(time.Millisecond))
	if got.Text != "Salut Alice, bold and italic" {
		t.Errorf("Telegram got text %q", got.Text)
	}
	if want := "bold[13,4] italic[22,6]"; describeEntities(got.Entities) != want {
		t.Errorf("Telegram got entities %s, want %s", describeEntities(got.Entities), want)
	}
	if _, err = sam.WaitMessage(ctx, portal.RoomID, MessageFilter{Sender: ghost, BodyContains: "auto-reply to Salut Alice"}); err != nil {
		t.Fatal(err)
	}

	// Restart: the contact writes while the gateway is down.
	if err = s.Gateway.Stop(); err != nil {
		t.Fatalf("stop gateway: %v", err)
	}
	away := "written while the gateway was down"
	if _, err = sim.SendMessage(contact.ID, staff.ID, away, nil); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err = s.Gateway.Start(ctx); err != nil {
		t.Fatalf("restart gateway: %v", err)
	}
	if _, err = sam.WaitMessage(ctx, portal.RoomID, MessageFilter{Sender: ghost, BodyContains: away}); err != nil {
		t.Fatalf("the message sent during the outage never arrived: %v", err)
	}
	t.Logf("message sent during the outage arrived %s after the restart", time.Since(start).Round(time.Millisecond))
	// After the restart the session still works both ways without a new login.
	if _, err = sam.Send(ctx, portal.RoomID, "after the restart"); err != nil {
		t.Fatal(err)
	}
	if _, err = sim.WaitMessage(waitCtx, staff.ID, contact.ID, func(m tgsim.Message) bool { return m.Text == "after the restart" }); err != nil {
		t.Fatalf("no outbound message after the restart: %v", err)
	}
	if _, err = sam.WaitMessage(ctx, portal.RoomID, MessageFilter{Sender: ghost, BodyContains: "auto-reply to after the restart"}); err != nil {
		t.Fatal(err)
	}
	if n := sim.Authorizations(staff.ID); n != authsAfterLogin {
		t.Errorf("Telegram authorizations went from %d to %d across the restart: a new login happened", authsAfterLogin, n)
	}
	// Exactly once: each inbound message is in the portal one time.
	events, err := sam.Messages(ctx, portal.RoomID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{text, away, "auto-reply to Salut Alice"} {
		if n := countBodies(events, body); n != 1 {
			t.Errorf("%q is in the portal %d times, want once", body, n)
		}
	}
	if n := countBodies(events, "Logged in"); n != 0 {
		t.Errorf("login notices in the portal: %d", n)
	}
	mgmtEvents, err := sam.Messages(ctx, mgmt, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countBodies(mgmtEvents, "Logged in"); n != 1 {
		t.Errorf("%d login confirmations in the management room, want 1 (no new login after the restart)", n)
	}
}

// TestTelegramPasswordAndQRLogin: a 2FA account logs in by phone (a wrong
// password is refused and the user tries again), another user logs in by QR
// code scanned on the simulated phone, and a QR code nobody scans expires
// with a clear message. An unknown command gets a clear answer.
func TestTelegramPasswordAndQRLogin(t *testing.T) {
	sim := NewTelegramSim(t, tgsim.Options{})
	sim.SetQRTokenTTL(2 * time.Second)
	tess, _ := telegramWorld(t, sim, "+15550003", "hunter2")
	quinn, quinnContact := telegramWorld(t, sim, "+15550005", "")

	s := NewStack(t, StackOptions{TelegramSim: sim, Users: []string{"tess", "quinn"}})
	ctx := s.Ctx()

	// 2FA by phone.
	tessClient := s.User("tess")
	mgmt, _ := s.BotRoom(tessClient)
	if ans := s.Command(tessClient, mgmt, "telegram-please"); !strings.Contains(ans.Body(), "Unknown command") {
		t.Errorf("unknown command answered %q", ans.Body())
	}
	s.Step(tessClient, mgmt, "login telegram-phone", "phone number")
	s.Step(tessClient, mgmt, "+15550003", "code")
	code, _ := sim.LastCode("+15550003")
	prompt := s.Input(tessClient, mgmt, code)
	if !strings.Contains(strings.ToLower(prompt.Body()), "password") {
		t.Fatalf("after the code of a 2FA account: %q", prompt.Body())
	}
	wrong := s.Input(tessClient, mgmt, "hunter3")
	if !strings.Contains(strings.ToLower(wrong.Body()), "password") || strings.Contains(wrong.Body(), "Logged in") {
		t.Fatalf("after a wrong password: %q", wrong.Body())
	}
	if done := s.Input(tessClient, mgmt, "hunter2"); !strings.Contains(done.Body(), "Logged in") {
		t.Fatalf("after the right password: %q", done.Body())
	}
	if sim.Authorizations(tess.ID) != 1 {
		t.Errorf("tess has %d Telegram authorizations, want 1", sim.Authorizations(tess.ID))
	}

	// QR: the first code is left to expire.
	quinnClient := s.User("quinn")
	qmgmt, _ := s.BotRoom(quinnClient)
	qrSent, err := quinnClient.Send(ctx, qmgmt, "login telegram-qr")
	if err != nil {
		t.Fatal(err)
	}
	qr, err := quinnClient.WaitMessage(ctx, qmgmt, MessageFilter{Sender: s.BotID, After: qrSent, MsgType: "m.image"})
	if err != nil {
		t.Fatalf("no QR code image: %v", err)
	}
	if !strings.HasPrefix(qr.Body(), "tg://login?token=") {
		t.Fatalf("QR image body %q", qr.Body())
	}
	expired, err := quinnClient.WaitMessage(ctx, qmgmt, MessageFilter{Sender: s.BotID, After: qrSent, BodyContains: "expired", Timeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("an unscanned QR code did not expire with a message: %v", err)
	}
	t.Logf("expired QR answer: %q", expired.Body())

	// QR: scanned by the simulated phone this time.
	qrSent, err = quinnClient.Send(ctx, qmgmt, "login telegram-qr")
	if err != nil {
		t.Fatal(err)
	}
	qr, err = quinnClient.WaitMessage(ctx, qmgmt, MessageFilter{Sender: s.BotID, After: qrSent, MsgType: "m.image"})
	if err != nil {
		t.Fatalf("no QR code image: %v", err)
	}
	token, err := tgsim.ParseQRToken(qr.Body())
	if err != nil {
		t.Fatal(err)
	}
	if err = sim.AcceptQR(ctx, quinn.ID, token); err != nil {
		t.Fatalf("the phone could not accept the QR code: %v", err)
	}
	if _, err = quinnClient.WaitMessage(ctx, qmgmt, MessageFilter{Sender: s.BotID, After: qrSent, BodyContains: "Logged in"}); err != nil {
		t.Fatalf("QR login did not finish: %v", err)
	}
	// The QR login works: a message from quinn's contact reaches quinn.
	if _, err = sim.SendMessage(quinnContact.ID, quinn.ID, "hello quinn", nil); err != nil {
		t.Fatal(err)
	}
	portal, err := quinnClient.WaitRoom(ctx, RoomFilter{Exclude: []string{qmgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = quinnClient.WaitMessage(ctx, portal.RoomID, MessageFilter{BodyContains: "hello quinn"}); err != nil {
		t.Fatal(err)
	}
}

func wrongCode(code string) string {
	if strings.HasSuffix(code, "0") {
		return code[:len(code)-1] + "1"
	}
	return code[:len(code)-1] + "0"
}

func countBodies(events []Event, body string) int {
	n := 0
	for i := range events {
		if strings.Contains(events[i].Body(), body) {
			n++
		}
	}
	return n
}

func describeEntities(entities []tg.MessageEntityClass) string {
	parts := make([]string, 0, len(entities))
	for _, e := range entities {
		var kind string
		switch e.(type) {
		case *tg.MessageEntityBold:
			kind = "bold"
		case *tg.MessageEntityItalic:
			kind = "italic"
		default:
			kind = e.TypeName()
		}
		parts = append(parts, fmt.Sprintf("%s[%d,%d]", kind, e.GetOffset(), e.GetLength()))
	}
	return strings.Join(parts, " ")
}
