package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestTelegramPhoneLoginAndEncryptedDM: a staff member logs in to Telegram by
// phone from their management room, an outside contact writes to them on
// Telegram, the message arrives in a new encrypted portal room, and the
// staff member's answer reaches the contact on Telegram (whose auto-reply
// comes back to Matrix).
func TestTelegramPhoneLoginAndEncryptedDM(t *testing.T) {
	sim := NewTelegramSim(t, tgsim.Options{})
	staff, err := sim.CreateAccount(tgsim.AccountSpec{Phone: "+15550001", FirstName: "Sam", LastName: "Staff"})
	if err != nil {
		t.Fatal(err)
	}
	contact, err := sim.CreateAccount(tgsim.AccountSpec{Phone: "+15550002", FirstName: "Alice", LastName: "Outside", Username: "alice_outside"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]int64{{staff.ID, contact.ID}, {contact.ID, staff.ID}} {
		if err = sim.AddContact(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	sim.SetAutoReply(contact.ID, func(in tgsim.Message) (string, bool) { return "auto-reply to " + in.Text, true })

	s := NewStack(t, StackOptions{TelegramSim: sim, Users: []string{"sam"}})
	sam := s.User("sam")
	ctx := s.Ctx()
	mgmt, _ := s.BotRoom(sam)

	// Phone login, one prompt at a time.
	start := time.Now()
	prompt := s.Command(sam, mgmt, "login telegram-phone")
	if !strings.Contains(prompt.Body(), "phone number") {
		t.Fatalf("login prompt: %q", prompt.Body())
	}
	prompt = s.Command(sam, mgmt, "+15550001")
	if !strings.Contains(prompt.Body(), "code") {
		t.Fatalf("code prompt: %q", prompt.Body())
	}
	code, ok := sim.LastCode("+15550001")
	if !ok {
		t.Fatal("the simulator issued no login code")
	}
	done := s.Command(sam, mgmt, code)
	if !strings.Contains(done.Body(), "Logged in") {
		t.Fatalf("after the code: %q", done.Body())
	}
	t.Logf("Telegram login done in %s", time.Since(start).Round(time.Millisecond))

	// Inbound: a new portal, encrypted, with the contact's message.
	start = time.Now()
	if _, err = sim.SendMessage(contact.ID, staff.ID, "Bonjour from Telegram", nil); err != nil {
		t.Fatal(err)
	}
	portal, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sam.WaitMessage(ctx, portal.RoomID, MessageFilter{BodyContains: "Bonjour from Telegram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Telegram message decrypted in the portal %s after it was sent", time.Since(start).Round(time.Millisecond))
	if enc, err := sam.RoomState(ctx, portal.RoomID, "m.room.encryption", ""); err != nil || enc == nil {
		t.Errorf("the portal room has no m.room.encryption state: %v", err)
	}
	if err = sam.RequireEncryptedOnServer(ctx, portal.RoomID, msg.EventID); err != nil {
		t.Fatalf("homeserver copy of the bridged message: %v", err)
	}
	ghost := msg.Sender
	if name, err := sam.DisplayName(ctx, ghost); err != nil || !strings.Contains(name, "Alice") {
		t.Errorf("ghost %s display name %q, %v; want Alice's name", ghost, name, err)
	}

	// Outbound: the answer reaches Telegram, and the auto-reply comes back.
	start = time.Now()
	if _, err = sam.Send(ctx, portal.RoomID, "Salut Alice"); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err = sim.WaitMessage(waitCtx, staff.ID, contact.ID, func(m tgsim.Message) bool { return m.Text == "Salut Alice" }); err != nil {
		t.Fatalf("the Matrix message never reached Telegram: %v", err)
	}
	t.Logf("Matrix message on Telegram %s after the send", time.Since(start).Round(time.Millisecond))
	if _, err = sam.WaitMessage(ctx, portal.RoomID, MessageFilter{Sender: ghost, BodyContains: "auto-reply to Salut Alice"}); err != nil {
		t.Fatal(err)
	}
}
