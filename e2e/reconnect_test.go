package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestReplacedAndRevokedLogins: a staff member has a WhatsApp and a
// Telegram login. Another connection takes the WhatsApp session over
// (stream replaced): the staff member is told to send `reconnect`, the
// governance admin room gets a notice naming the command at once, and
// `reconnect` brings the login back with its keys (no new device on the
// phone): a contact's next message arrives in the portal. Then the staff
// member ends the Telegram session from their phone while the gateway is
// connected and idle: both the staff member and the admin room are told
// that a new log-in is needed, without a restart or a message to send.
func TestReplacedAndRevokedLogins(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const staffPhone, alicePhone = "+33600000061", "+33600000062"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", alicePhone: "Alice Outside"})
	tgStaff, _ := telegramWorld(t, tg, "+15550161", "")
	const admin = "gina"
	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{admin, "sam"}, GatewayPatch: func(doc *stack.YAMLDoc) error {
		return doc.Set("network.governance.admins", []string{"@" + admin + ":localhost"})
	}})
	sam, gina := s.User("sam"), s.User(admin)
	ctx := s.Ctx()
	adminRoom := s.AdminRoom(gina)
	mgmt, _ := s.BotRoom(sam)
	s.LinkWhatsAppQR(sam, mgmt, wa, staffPhone)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550161")
	staffAccount, _ := wa.Account(staffPhone)
	devices := staffAccount.Devices()

	if _, err := wa.SendText(ctx, alicePhone, staffPhone, "before the takeover"); err != nil {
		t.Fatal(err)
	}
	dm, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = sam.WaitMessage(ctx, dm.RoomID, MessageFilter{BodyContains: "before the takeover"}); err != nil {
		t.Fatal(err)
	}

	// WhatsApp: another connection takes the session.
	replaced := time.Now()
	if err = wa.ReplaceStream(staffPhone); err != nil {
		t.Fatal(err)
	}
	// The connector's own notice (bridgev2's state notice says it too, in
	// other words, when bridge_status_notices allows it).
	notice, err := sam.WaitMessage(ctx, mgmt, MessageFilter{Sender: s.BotID, BodyContains: "no new pairing is needed", Since: replaced})
	if err != nil {
		t.Fatalf("no notice to the staff member: %v", err)
	}
	if !strings.Contains(notice.Body(), "`reconnect`") || !strings.Contains(notice.Body(), "no new pairing") {
		t.Errorf("the staff member's notice does not name reconnect: %q", notice.Body())
	}
	adminNotice, err := gina.WaitMessage(ctx, adminRoom, MessageFilter{Sender: s.BotID, BodyContains: "WhatsApp login of @sam:localhost", Since: replaced, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatalf("no admin-room notice for the replaced session: %v", err)
	}
	t.Logf("admin-room notice %s after the takeover: %q", time.Since(replaced).Round(time.Millisecond), adminNotice.Body())
	if !strings.Contains(adminNotice.Body(), "`reconnect` command") || strings.Contains(adminNotice.Body(), "log in again") {
		t.Errorf("admin-room notice %q should name reconnect, not a new log-in", adminNotice.Body())
	}

	// One command, no pairing.
	start := time.Now()
	s.Step(sam, mgmt, "reconnect", "Reconnecting your WhatsApp login")
	if _, err = sam.WaitMessage(ctx, mgmt, MessageFilter{Sender: s.BotID, BodyContains: "Reconnected to WhatsApp", Since: start}); err != nil {
		t.Fatalf("the login did not come back: %v", err)
	}
	t.Logf("WhatsApp login back %s after `reconnect`", time.Since(start).Round(time.Millisecond))
	if _, err = wa.SendText(ctx, alicePhone, staffPhone, "after the takeover"); err != nil {
		t.Fatal(err)
	}
	if _, err = sam.WaitMessage(ctx, dm.RoomID, MessageFilter{BodyContains: "after the takeover"}); err != nil {
		t.Fatalf("no message after reconnect: %v", err)
	}
	if after := staffAccount.Devices(); len(after) != len(devices) || len(after) != 1 || after[0] != devices[0] {
		t.Errorf("linked devices %v before, %v after: reconnect must not pair a new device", devices, after)
	}

	// Telegram: the session is ended from the phone while connected.
	revoked := time.Now()
	if n := tg.RevokeAuthorizations(tgStaff.ID); n == 0 {
		t.Fatal("the simulator had no authorization to revoke")
	}
	if _, err = sam.WaitMessage(ctx, mgmt, MessageFilter{Sender: s.BotID, BodyContains: "terminated from another device", Since: revoked}); err != nil {
		t.Fatalf("no notice to the staff member for the revoked session: %v", err)
	}
	t.Logf("staff notice %s after the revocation", time.Since(revoked).Round(time.Millisecond))
	adminNotice, err = gina.WaitMessage(ctx, adminRoom, MessageFilter{Sender: s.BotID, BodyContains: "Telegram login of @sam:localhost", Since: revoked, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatalf("no admin-room notice for the revoked session: %v", err)
	}
	t.Logf("admin-room notice %s after the revocation: %q", time.Since(revoked).Round(time.Millisecond), adminNotice.Body())
	if !strings.Contains(adminNotice.Body(), "bad credentials") || !strings.Contains(adminNotice.Body(), "SESSION_REVOKED") ||
		!strings.Contains(adminNotice.Body(), "log in again") {
		t.Errorf("admin-room notice %q should say the session was revoked and needs a new log-in", adminNotice.Body())
	}
}
