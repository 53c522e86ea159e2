package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

var pairingCodeRe = regexp.MustCompile(`\b([A-Z0-9]{4}-[A-Z0-9]{4})\b`)

// waitBody waits for a message of the bot after the event `after` whose body
// matches re, and returns the first submatch.
func waitBody(ctx context.Context, t *testing.T, c *Client, roomID, bot, after string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		events, err := c.Messages(ctx, roomID, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		for i := range events {
			if events[i].EventID == after {
				seen = true
				continue
			}
			if seen && events[i].Sender == bot {
				if m := re.FindStringSubmatch(events[i].Body()); m != nil {
					return m[1]
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no bot message matching %s after %s", re, after)
	return ""
}

// TestWhatsAppEndToEnd: a staff member links WhatsApp by QR code scanned on
// the simulated phone, talks with a contact one to one and in a group (both
// ways, from encrypted portals, with the right ghosts), keeps a Telegram login
// working beside it, survives a gateway restart without a new login and
// without losing or doubling a message, and is told in the management room
// when the phone unlinks the device. A second user links by pairing code.
func TestWhatsAppEndToEnd(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const staffPhone, alicePhone, bobPhone, patPhone = "+33600000001", "+33600000002", "+33600000003", "+33600000004"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", alicePhone: "Alice Outside", bobPhone: "Bob Outside", patPhone: "Pat Staff"})
	tgStaff, tgContact := telegramWorld(t, tg, "+15550011", "")

	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam", "pat"}})
	sam := s.User("sam")
	ctx := s.Ctx()
	mgmt, _ := s.BotRoom(sam)

	flows := s.Command(sam, mgmt, "login")
	for _, flow := range []string{"whatsapp-qr", "whatsapp-phone", "telegram-phone", "telegram-qr"} {
		if !strings.Contains(flows.Body(), flow) {
			t.Errorf("`login` answer does not list %s: %q", flow, flows.Body())
		}
	}

	// QR login: the simulated phone scans the code the bot posted.
	start := time.Now()
	s.LinkWhatsAppQR(sam, mgmt, wa, staffPhone)
	t.Logf("WhatsApp QR login done in %s", time.Since(start).Round(time.Millisecond))
	staffAccount, _ := wa.Account(staffPhone)
	devicesAfterLogin := len(staffAccount.Devices())

	// Telegram beside it, for the same Matrix user.
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550011")

	// A WhatsApp DM, inbound then outbound.
	start = time.Now()
	if _, err := wa.SendText(ctx, alicePhone, staffPhone, "hello from WhatsApp"); err != nil {
		t.Fatal(err)
	}
	dm, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sam.WaitMessage(ctx, dm.RoomID, MessageFilter{BodyContains: "hello from WhatsApp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WhatsApp DM decrypted in its portal %s after it was sent", time.Since(start).Round(time.Millisecond))
	if err = sam.RequireEncryptedOnServer(ctx, dm.RoomID, msg.EventID); err != nil {
		t.Fatal(err)
	}
	alice := msg.Sender
	if !strings.Contains(alice, "whatsapp") {
		t.Errorf("ghost %s does not show its network", alice)
	}
	if name, err := sam.DisplayName(ctx, alice); err != nil || !strings.Contains(name, "Alice") {
		t.Errorf("ghost %s display name %q, %v", alice, name, err)
	}
	if _, err = sam.SendMessage(ctx, dm.RoomID, Message{Body: "hi Alice", FormattedBody: "<b>hi</b> Alice"}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := wa.WaitMessage(waitCtx, staffPhone, alicePhone, func(m wasim.Message) bool { return strings.Contains(m.Text(), "Alice") })
	if err != nil {
		t.Fatalf("the Matrix message never reached WhatsApp: %v", err)
	}
	if got.Text() != "*hi* Alice" {
		t.Errorf("WhatsApp got %q, want *hi* Alice", got.Text())
	}

	// A group: Bob writes, the right ghost speaks; the staff member answers.
	group, err := wa.CreateGroup(ctx, alicePhone, "Project Lighthouse", "Planning", []string{staffPhone, bobPhone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = wa.SendGroupText(ctx, bobPhone, group, "hello group", nil); err != nil {
		t.Fatal(err)
	}
	groupRoom, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt, dm.RoomID}, NameContains: "Project Lighthouse", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	gmsg, err := sam.WaitMessage(ctx, groupRoom.RoomID, MessageFilter{BodyContains: "hello group"})
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := sam.DisplayName(ctx, gmsg.Sender); !strings.Contains(name, "Bob") {
		t.Errorf("group message sent by %s (%q), want Bob's ghost", gmsg.Sender, name)
	}
	if gmsg.Sender == alice {
		t.Error("group message attributed to Alice")
	}
	if err = sam.RequireEncryptedOnServer(ctx, groupRoom.RoomID, gmsg.EventID); err != nil {
		t.Fatal(err)
	}
	if _, err = sam.Send(ctx, groupRoom.RoomID, "hello everyone"); err != nil {
		t.Fatal(err)
	}
	if _, err = wa.WaitMessage(waitCtx, staffPhone, group, func(m wasim.Message) bool { return m.Text() == "hello everyone" }); err != nil {
		t.Fatalf("the Matrix message never reached the WhatsApp group: %v", err)
	}

	// Telegram still works for the same user.
	if _, err = tg.SendMessage(tgContact.ID, tgStaff.ID, "hello from Telegram too", nil); err != nil {
		t.Fatal(err)
	}
	tgPortal, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt, dm.RoomID, groupRoom.RoomID}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = sam.WaitMessage(ctx, tgPortal.RoomID, MessageFilter{BodyContains: "hello from Telegram too"}); err != nil {
		t.Fatal(err)
	}

	// Restart: a DM and a group message written while the gateway is down.
	if err = s.Gateway.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err = wa.SendText(ctx, alicePhone, staffPhone, "written while you were away"); err != nil {
		t.Fatal(err)
	}
	if _, err = wa.SendGroupText(ctx, bobPhone, group, "group news while away", nil); err != nil {
		t.Fatal(err)
	}
	// A group the gateway has never seen, whose first message comes in the
	// same outage.
	newGroup, err := wa.CreateGroup(ctx, bobPhone, "Harbour committee", "", []string{staffPhone, alicePhone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = wa.SendGroupText(ctx, bobPhone, newGroup, "first words in a new group", nil); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err = s.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err = sam.WaitMessage(ctx, dm.RoomID, MessageFilter{Sender: alice, BodyContains: "written while you were away"}); err != nil {
		t.Fatalf("DM sent during the outage never arrived: %v", err)
	}
	if _, err = sam.WaitMessage(ctx, groupRoom.RoomID, MessageFilter{BodyContains: "group news while away"}); err != nil {
		t.Fatalf("group message sent during the outage never arrived: %v", err)
	}
	newRoom, err := sam.WaitRoom(ctx, RoomFilter{NameContains: "Harbour committee", AutoJoin: true})
	if err != nil {
		t.Fatalf("no portal for a group made during the outage: %v", err)
	}
	if _, err = sam.WaitMessage(ctx, newRoom.RoomID, MessageFilter{BodyContains: "first words in a new group"}); err != nil {
		t.Fatalf("first message of a group made during the outage: %v", err)
	}
	t.Logf("messages sent during the outage arrived %s after the restart", time.Since(start).Round(time.Millisecond))
	if _, err = sam.Send(ctx, dm.RoomID, "back again"); err != nil {
		t.Fatal(err)
	}
	if _, err = wa.WaitMessage(waitCtx, staffPhone, alicePhone, func(m wasim.Message) bool { return m.Text() == "back again" }); err != nil {
		t.Fatalf("no outbound WhatsApp message after the restart: %v", err)
	}
	if n := len(staffAccount.Devices()); n != devicesAfterLogin {
		t.Errorf("linked devices went from %d to %d across the restart: a new pairing happened", devicesAfterLogin, n)
	}
	for room, bodies := range map[string][]string{
		dm.RoomID:        {"hello from WhatsApp", "written while you were away"},
		groupRoom.RoomID: {"hello group", "group news while away"},
	} {
		events, err := sam.Messages(ctx, room, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range bodies {
			if n := countBodies(events, body); n != 1 {
				t.Errorf("%q is in its portal %d times, want once", body, n)
			}
		}
	}

	// A second staff member links by pairing code.
	pat := s.User("pat")
	pmgmt, _ := s.BotRoom(pat)
	s.Command(pat, pmgmt, "login whatsapp-phone")
	var sent string
	for attempt := 1; ; attempt++ {
		sent, err = pat.Send(ctx, pmgmt, patPhone)
		if err != nil {
			t.Fatal(err)
		}
		// Read as an unknown command when sent the instant the prompt
		// shows (see Stack.Input): send it again.
		ans, err := pat.WaitMessage(ctx, pmgmt, MessageFilter{Sender: s.BotID, After: sent, MsgType: "m.notice"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ans.Body(), "Unknown command") || attempt == 3 {
			break
		}
	}
	pairing := waitBody(ctx, t, pat, pmgmt, s.BotID, sent, pairingCodeRe)
	if err = wa.EnterPairingCode(ctx, patPhone, pairing); err != nil {
		t.Fatalf("the phone refused the pairing code the bot showed: %v", err)
	}
	if _, err = pat.WaitMessage(ctx, pmgmt, MessageFilter{Sender: s.BotID, After: sent, BodyContains: "Linked to WhatsApp"}); err != nil {
		t.Fatalf("pairing-code login did not finish: %v", err)
	}

	// The phone unlinks the gateway: the user is told in the management room.
	unpaired := time.Now()
	if err = wa.Unpair(ctx, staffPhone); err != nil {
		t.Fatal(err)
	}
	notice, err := sam.WaitMessage(ctx, mgmt, MessageFilter{Sender: s.BotID, Since: unpaired.Add(-time.Second), BodyContains: "unlinked"})
	if err != nil {
		t.Fatalf("no notice after the phone unlinked the device: %v", err)
	}
	t.Logf("unlink notice: %q", notice.Body())

	// No contact's phone number in the gateway's logs.
	for _, path := range []string{s.Gateway.LogPath, s.Gateway.StdoutPath} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, phone := range []string{alicePhone, bobPhone, staffPhone} {
			if digits := strings.TrimPrefix(phone, "+"); strings.Contains(string(data), digits) {
				t.Errorf("%s holds the phone number %s", path, phone)
			}
		}
	}
}
