package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestDoublePuppet runs on one stack (Dendrite with the gateway's two
// registrations, the Telegram simulator, two Matrix users):
//   - fromPhone: what the staff member sends from their own phone's Telegram
//     appears in the portal from their own Matrix account, decrypted;
//   - switch: `double-puppet off` makes the next phone message come from
//     the staff member's own Telegram ghost instead, the switch survives a
//     gateway restart, and `double-puppet on` brings their Matrix account
//     back;
//   - conversation: the js client's conversation commands between two
//     plain Matrix users on Dendrite (reply, edit, reaction and its removal,
//     redaction, read receipt, typing, presence), read back decrypted.
func TestDoublePuppet(t *testing.T) {
	sim := NewTelegramSim(t, tgsim.Options{})
	staff, contact := telegramWorld(t, sim, "+15550077", "")
	s := NewStack(t, StackOptions{TelegramSim: sim, Users: []string{"sam", "pat"}})
	if s.Gateway.DoublePuppetRegistrationPath == "" {
		t.Fatal("the gateway wrote no double-puppet registration")
	}
	sam := s.User("sam")
	ctx := s.Ctx()
	mgmt, _ := s.BotRoom(sam)
	for _, step := range []struct{ send, answer string }{
		{"login telegram-phone", "Please enter your phone number"},
		{"+" + strings.TrimPrefix(staff.Phone, "+"), "Please enter your login code"},
		{"", "Logged in"},
	} {
		body := step.send
		if body == "" {
			body, _ = sim.LastCode(staff.Phone)
		}
		s.Step(sam, mgmt, body, step.answer)
	}
	if _, err := sim.SendMessage(contact.ID, staff.ID, "hello from Telegram", nil); err != nil {
		t.Fatal(err)
	}
	room, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: contact.FirstName, AutoJoin: true, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	first, err := sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: "hello from Telegram"})
	if err != nil {
		t.Fatal(err)
	}
	portal, contactGhost := room.RoomID, first.Sender

	// fromPhone sends text from the staff member's phone and returns the
	// portal's copy.
	fromPhone := func(t *testing.T, text string) *Event {
		t.Helper()
		start := time.Now()
		if _, err := sim.SendMessage(staff.ID, contact.ID, text, nil); err != nil {
			t.Fatal(err)
		}
		ev, err := sam.WaitMessage(ctx, portal, MessageFilter{BodyContains: text})
		if err != nil {
			t.Fatalf("the phone's message never reached the portal: %v", err)
		}
		if ev.DecryptionError != "" || !ev.Encrypted {
			t.Errorf("phone message: encrypted %v, decryption error %q", ev.Encrypted, ev.DecryptionError)
		}
		t.Logf("phone message in the portal from %s after %s", ev.Sender, time.Since(start).Round(time.Millisecond))
		return ev
	}

	t.Run("fromPhone", func(t *testing.T) {
		ev := fromPhone(t, "sent from my own phone")
		if ev.Sender != sam.UserID {
			t.Errorf("the staff member's own message came from %s, want their Matrix account %s", ev.Sender, sam.UserID)
		}
		if src, _ := ev.Content["fi.mau.double_puppet_source"].(string); src == "" {
			t.Errorf("the message carries no double-puppet source: %v", ev.Content)
		}
		// The homeserver hands the double-puppeted event to the appservice
		// too: it must not go back to Telegram. A Matrix message sent after
		// it is handled after it, so once that one is on Telegram an echo
		// would be there too.
		if _, err := sam.Send(ctx, portal, "after the phone message"); err != nil {
			t.Fatal(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := sim.WaitMessage(waitCtx, staff.ID, contact.ID, func(m tgsim.Message) bool { return m.Text == "after the phone message" }); err != nil {
			t.Fatalf("the Matrix message never reached Telegram: %v", err)
		}
		n := 0
		for _, m := range sim.Messages(staff.ID, contact.ID) {
			if m.Text == "sent from my own phone" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the phone's message is %d times in the Telegram chat, want once (no echo)", n)
		}
	})

	// receiptAndTyping: the staff member's read receipt and typing in the
	// portal reach bridgev2 through the gateway's receipt sync (Dendrite
	// pushes no ephemeral events to appservices). What the networks do with
	// them is the connectors' part; here the gateway's debug log says what
	// it handed to bridgev2.
	t.Run("receiptAndTyping", func(t *testing.T) {
		if _, err := sim.SendMessage(contact.ID, staff.ID, "please read me", nil); err != nil {
			t.Fatal(err)
		}
		ev, err := sam.WaitMessage(ctx, portal, MessageFilter{BodyContains: "please read me"})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err = sam.ReadMarkers(ctx, portal, ev.EventID); err != nil {
			t.Fatal(err)
		}
		if err = sam.Typing(ctx, portal, true); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the receipt and the typing handed to bridgev2", func() bool {
			var receipt, typing bool
			for _, line := range strings.Split(s.Gateway.JSONLog(), "\n") {
				var entry struct {
					Message  string   `json:"message"`
					RoomID   string   `json:"room_id"`
					UserID   string   `json:"user_id"`
					Type     string   `json:"event_type"`
					Receipts []string `json:"receipt_event_ids"`
					Typing   int      `json:"typing_users"`
				}
				if json.Unmarshal([]byte(line), &entry) != nil || entry.Message != "Handing a synced event to the bridge" ||
					entry.RoomID != portal || entry.UserID != sam.UserID {
					continue
				}
				receipt = receipt || slices.Contains(entry.Receipts, ev.EventID)
				typing = typing || (entry.Type == "m.typing" && entry.Typing == 1)
			}
			return receipt && typing
		})
		t.Logf("receipt and typing handed to bridgev2 %s after they were sent", time.Since(start).Round(time.Millisecond))
		if err = sam.Typing(ctx, portal, false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("switch", func(t *testing.T) {
		s.Step(sam, mgmt, "double-puppet off", "now **off**")
		ev := fromPhone(t, "phone, double puppeting off")
		if ev.Sender == sam.UserID || ev.Sender == contactGhost || !strings.Contains(ev.Sender, "telegram") {
			t.Fatalf("with double puppeting off the phone's message came from %s; want the staff member's own Telegram ghost", ev.Sender)
		}
		if name, err := sam.DisplayName(ctx, ev.Sender); err != nil || !strings.Contains(name, staff.FirstName) {
			t.Errorf("ghost %s is named %q (%v), want the staff member's Telegram name", ev.Sender, name, err)
		}
		ownGhost := ev.Sender

		if err := s.Gateway.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		s.Step(sam, mgmt, "double-puppet", "**off** for you")
		if ev = fromPhone(t, "phone, off after a restart"); ev.Sender != ownGhost {
			t.Errorf("after a restart the phone's message came from %s, want %s (still off)", ev.Sender, ownGhost)
		}

		s.Step(sam, mgmt, "double-puppet on", "now **on**")
		if ev = fromPhone(t, "phone, double puppeting on again"); ev.Sender != sam.UserID {
			t.Errorf("with double puppeting on again the phone's message came from %s, want %s", ev.Sender, sam.UserID)
		}
		if err := s.Gateway.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if ev = fromPhone(t, "phone, on after a restart"); ev.Sender != sam.UserID {
			t.Errorf("after a restart the phone's message came from %s, want %s (still on)", ev.Sender, sam.UserID)
		}
	})

	t.Run("conversation", func(t *testing.T) {
		pat := s.User("pat")
		if err := pat.SetAutoJoin(ctx, true); err != nil {
			t.Fatal(err)
		}
		dm, err := sam.CreateDM(ctx, pat.UserID, DMOptions{})
		if err != nil {
			t.Fatal(err)
		}
		question, err := sam.Send(ctx, dm, "lunch at noon?")
		if err != nil {
			t.Fatal(err)
		}
		if _, err = pat.WaitMessage(ctx, dm, MessageFilter{BodyContains: "lunch at noon?"}); err != nil {
			t.Fatal(err)
		}
		answer, err := pat.Reply(ctx, dm, question, "yes")
		if err != nil {
			t.Fatal(err)
		}
		if _, err = sam.Edit(ctx, dm, question, "lunch at one?"); err != nil {
			t.Fatal(err)
		}
		if _, err = pat.React(ctx, dm, question, "👍"); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.React(ctx, dm, answer, "🎉"); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.React(ctx, dm, answer, "👀"); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.Unreact(ctx, dm, answer, "👀"); err != nil {
			t.Fatal(err)
		}
		oops, err := pat.Send(ctx, dm, "oops, wrong room")
		if err != nil {
			t.Fatal(err)
		}
		if _, err = pat.Redact(ctx, dm, oops, "wrong room"); err != nil {
			t.Fatal(err)
		}
		last, err := pat.Send(ctx, dm, "see you")
		if err != nil {
			t.Fatal(err)
		}
		if err = sam.ReadMarkers(ctx, dm, last); err != nil {
			t.Fatal(err)
		}
		if err = pat.Typing(ctx, dm, true); err != nil {
			t.Fatal(err)
		}

		// Read back from sam's side, once everything has arrived.
		var msgs []ConversationMessage
		eventually(ctx, t, "the conversation as sam sees it", func() bool {
			msgs, err = sam.Conversation(ctx, dm)
			if err != nil {
				t.Fatal(err)
			}
			byID := map[string]ConversationMessage{}
			for _, m := range msgs {
				byID[m.EventID] = m
			}
			q, a, o := byID[question], byID[answer], byID[oops]
			return q.LatestBody == "lunch at one?" && len(q.Edits) == 1 && len(q.Reactions) == 1 &&
				a.ReplyTo == question && len(a.Reactions) == 1 && o.Redacted && byID[last].Body == "see you"
		})
		byID := map[string]ConversationMessage{}
		for _, m := range msgs {
			byID[m.EventID] = m
			if m.DecryptionError != "" {
				t.Errorf("%s not decrypted: %s", m.EventID, m.DecryptionError)
			}
		}
		if q := byID[question]; q.Body != "lunch at noon?" || q.Edits[0].Sender != sam.UserID || q.Reactions[0] != (Reaction{Key: "👍", Sender: pat.UserID, EventID: q.Reactions[0].EventID}) {
			t.Errorf("question as sam sees it: %+v", q)
		}
		if a := byID[answer]; a.Sender != pat.UserID || a.Body != "yes" || a.Reactions[0].Key != "🎉" || a.Reactions[0].Sender != sam.UserID {
			t.Errorf("answer as sam sees it: %+v", a)
		}

		// The other side: pat sees sam's read receipt and their own typing
		// is seen by sam; presence of a syncing user is online.
		eventually(ctx, t, "sam's read receipt as pat sees it", func() bool {
			r, err := pat.Receipts(ctx, dm)
			if err != nil {
				t.Fatal(err)
			}
			return r[sam.UserID].EventID == last
		})
		eventually(ctx, t, "pat typing as sam sees it", func() bool {
			users, err := sam.TypingUsers(ctx, dm)
			if err != nil {
				t.Fatal(err)
			}
			return slices.Equal(users, []string{pat.UserID})
		})
		if err = pat.Typing(ctx, dm, false); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "pat to stop typing as sam sees it", func() bool {
			users, err := sam.TypingUsers(ctx, dm)
			if err != nil {
				t.Fatal(err)
			}
			return len(users) == 0
		})
		p, err := sam.Presence(ctx, pat.UserID, true)
		if err != nil {
			t.Fatal(err)
		}
		if p.Presence != "online" {
			t.Errorf("pat's presence from the homeserver: %+v, want online", p)
		}
	})
}

// eventually polls cond until it holds or ctx ends (a condition a user
// would check, never a fixed sleep).
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
