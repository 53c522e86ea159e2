package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// Sizes of TestHistoryEndToEnd.
const (
	historyBefore  = 200 // messages in each chat before the staff member links
	historyInitial = 50  // network.*.backfill.initial_messages (the default)
	gapChats       = 10  // per network
	gapPerChat     = 50  // messages per chat while the gateway is down
	gapNewChats    = 2   // per network: chats with no portal before the gap
)

// visibleBodies is what a person reads in a room: the messages of sender
// that are not deleted, each in its latest edited form, in order.
func visibleBodies(msgs []ConversationMessage, sender string) []string {
	var out []string
	for _, m := range msgs {
		if m.Sender == sender && !m.Redacted && m.Type == "m.room.message" {
			out = append(out, m.LatestBody)
		}
	}
	return out
}

// TestHistoryEndToEnd is a staff member's move to Matrix, on one stack with
// both networks: they link WhatsApp and Telegram accounts whose chats
// already hold 200 messages each; the portals open with the latest 50, in
// order, decrypted, with their original times. Then the gateway stops
// while contacts write 1,000 messages across 20 chats (some chats new, some
// messages edited or deleted after sending): once it is back, every one is
// there exactly once, in order, with the edits and deletions applied.
// Last, a self-destructing Telegram message and a disappearing WhatsApp
// message vanish from Matrix when their timers run out.
func TestHistoryEndToEnd(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	const waStaff, waWanda = "+33600000041", "+33600000042"
	createWAAccounts(t, wa, map[string]string{waStaff: "Sam Staff", waWanda: "Wanda History"})
	// WhatsApp: 200 messages over the past 200 minutes, every other one the
	// staff member's.
	seededAt := time.Now().Add(-time.Duration(historyBefore) * time.Minute).Truncate(time.Second)
	var waEntries []wasim.HistoryEntry
	for i := range historyBefore {
		from := waWanda
		if i%2 == 1 {
			from = waStaff
		}
		waEntries = append(waEntries, wasim.HistoryEntry{From: from, Text: fmt.Sprintf("wa history %03d", i+1), Time: seededAt.Add(time.Duration(i) * time.Minute)})
	}
	if _, err := wa.SeedHistory(waStaff, waWanda, waEntries); err != nil {
		t.Fatal(err)
	}

	// Telegram: the same conversation, at the same times.
	tgStaff, err := tg.CreateAccount(tgsim.AccountSpec{Phone: "+15550041", FirstName: "Sam", LastName: "Staff"})
	if err != nil {
		t.Fatal(err)
	}
	hana, err := tg.CreateAccount(tgsim.AccountSpec{Phone: "+15550042", FirstName: "Hana", LastName: "History"})
	if err != nil {
		t.Fatal(err)
	}
	var tgEntries []tgsim.HistoryEntry
	for i := range historyBefore {
		from := hana.ID
		if i%2 == 1 {
			from = tgStaff.ID
		}
		tgEntries = append(tgEntries, tgsim.HistoryEntry{From: from, Text: fmt.Sprintf("tg history %03d", i+1), Time: seededAt.Add(time.Duration(i) * time.Minute)})
	}
	seeded, err := tg.SeedHistory(tgStaff.ID, hana.ID, tgEntries)
	if err != nil {
		t.Fatal(err)
	}
	tgDates := map[string]time.Time{}
	for _, m := range seeded {
		tgDates[m.Text] = m.Date
	}

	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam"}, AutoJoin: true})
	sam := s.User("sam")
	mgmt, _ := s.BotRoom(sam)
	s.LinkWhatsAppQR(sam, mgmt, wa, waStaff)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550041")

	// 1. History at linking: both chats get their portal at once (chats at
	// login), holding the latest 50 messages.
	checkHistory := func(name, prefix string, dateOf func(body string) time.Time) string {
		t.Helper()
		room, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: name, AutoJoin: true, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatalf("no portal for %s after linking: %v", name, err)
		}
		last := fmt.Sprintf("%s %03d", prefix, historyBefore)
		if _, err = sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: last, Timeout: 2 * time.Minute}); err != nil {
			t.Fatalf("%s: the latest message of the history never arrived: %v", name, err)
		}
		evs, err := sam.ServerHistory(ctx, room.RoomID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			if ev.DecryptionError != "" {
				t.Errorf("%s: event %s not decrypted: %s", name, ev.EventID, ev.DecryptionError)
			}
			if ev.ClearType != "m.room.message" || !strings.HasPrefix(ev.Body(), prefix) {
				continue
			}
			if !ev.Encrypted {
				t.Errorf("%s: history event %s is not encrypted", name, ev.EventID)
			}
			got = append(got, ev.Body())
			if want := dateOf(ev.Body()); !want.IsZero() && time.UnixMilli(ev.TS).Truncate(time.Second) != want {
				t.Errorf("%s: %q is dated %s on Matrix, want its original time %s", name, ev.Body(), time.UnixMilli(ev.TS).UTC(), want.UTC())
			}
		}
		want := numbered(prefix+" %03d", historyBefore)[historyBefore-historyInitial:]
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: the portal holds %d history messages %q…; want the latest %d in order (%q…%q)", name, len(got), got[:min(3, len(got))], historyInitial, want[0], want[len(want)-1])
		}
		return room.RoomID
	}
	waRoom := checkHistory("Wanda", "wa history", func(body string) time.Time {
		var n int
		if _, err := fmt.Sscanf(body, "wa history %d", &n); err != nil {
			return time.Time{}
		}
		return seededAt.Add(time.Duration(n-1) * time.Minute)
	})
	tgRoom := checkHistory("Hana", "tg history", func(body string) time.Time { return tgDates[body] })
	t.Logf("history at linking: the latest %d of %d messages in both portals", historyInitial, historyBefore)

	// 2. The gap: chats with portals and new chats, while the gateway is down.
	type chat struct {
		name   string
		room   string
		ghost  string
		send   func(i int) (id string, err error)
		edit   func(id, text string) error
		delete func(id string) error
		expect []string
	}
	var chats []*chat
	for i := range gapChats {
		acc, err := tg.CreateAccount(tgsim.AccountSpec{Phone: fmt.Sprintf("+1555006%02d", i), FirstName: fmt.Sprintf("Tgap%02d", i), LastName: "Contact"})
		if err != nil {
			t.Fatal(err)
		}
		c := &chat{name: acc.FirstName}
		c.send = func(n int) (string, error) {
			m, err := tg.SendMessage(acc.ID, tgStaff.ID, fmt.Sprintf("%s says %02d", c.name, n), nil)
			return fmt.Sprint(m.SenderMsgID), err
		}
		c.edit = func(id, text string) error {
			n, _ := strconv.Atoi(id)
			_, err := tg.EditMessage(acc.ID, tgStaff.ID, n, text)
			return err
		}
		c.delete = func(id string) error {
			n, _ := strconv.Atoi(id)
			return tg.DeleteMessages(acc.ID, []int{n}, true)
		}
		chats = append(chats, c)
	}
	for i := range gapChats {
		phone := fmt.Sprintf("+336000005%02d", i)
		name := fmt.Sprintf("Wgap%02d", i)
		if _, err := wa.CreateAccount(phone, name+" Contact"); err != nil {
			t.Fatal(err)
		}
		c := &chat{name: name}
		c.send = func(n int) (string, error) {
			return wa.SendText(ctx, phone, waStaff, fmt.Sprintf("%s says %02d", name, n))
		}
		c.edit = func(id, text string) error {
			_, err := wa.SendEdit(ctx, phone, waStaff, id, text)
			return err
		}
		c.delete = func(id string) error {
			_, err := wa.SendRevoke(ctx, phone, waStaff, phone, id)
			return err
		}
		chats = append(chats, c)
	}
	seen := []string{mgmt, waRoom, tgRoom}
	for i, c := range chats {
		if i%gapChats >= gapChats-gapNewChats {
			continue // no portal before the gap
		}
		if _, err := c.send(0); err != nil {
			t.Fatal(err)
		}
		room, err := sam.WaitRoom(ctx, RoomFilter{Exclude: seen, NameContains: c.name, AutoJoin: true})
		if err != nil {
			t.Fatal(err)
		}
		first, err := sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: c.name + " says 00"})
		if err != nil {
			t.Fatal(err)
		}
		c.room, c.ghost = room.RoomID, first.Sender
		c.expect = []string{c.name + " says 00"}
		seen = append(seen, room.RoomID)
	}

	if err = s.Gateway.Stop(); err != nil {
		t.Fatalf("stop gateway: %v", err)
	}
	total := 0
	for n := 1; n <= gapPerChat; n++ {
		for _, c := range chats {
			id, err := c.send(n)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			total++
			text := fmt.Sprintf("%s says %02d", c.name, n)
			switch {
			case n%10 == 0:
				text += " (edited)"
				if err = c.edit(id, text); err != nil {
					t.Fatalf("%s: edit: %v", c.name, err)
				}
			case n%25 == 3:
				if err = c.delete(id); err != nil {
					t.Fatalf("%s: delete: %v", c.name, err)
				}
				continue
			}
			c.expect = append(c.expect, text)
		}
	}
	start := time.Now()
	if err = s.Gateway.Start(ctx); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	for _, c := range chats {
		if c.room == "" {
			room, err := sam.WaitRoom(ctx, RoomFilter{Exclude: seen, NameContains: c.name, AutoJoin: true, Timeout: 5 * time.Minute})
			if err != nil {
				t.Fatalf("%s: no portal for a chat that began while the gateway was down: %v", c.name, err)
			}
			c.room = room.RoomID
			seen = append(seen, room.RoomID)
		}
		last := c.expect[len(c.expect)-1]
		m, err := sam.WaitMessage(ctx, c.room, MessageFilter{BodyContains: strings.TrimSuffix(last, " (edited)"), Timeout: 5 * time.Minute})
		if err != nil {
			t.Fatalf("%s: the gap's last message never arrived: %v", c.name, err)
		}
		if c.ghost == "" {
			c.ghost = m.Sender
		}
	}
	t.Logf("gap of %d messages across %d chats bridged %s after the start", total, len(chats), time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(2 * time.Minute)
	for _, c := range chats {
		for {
			msgs, err := sam.Conversation(ctx, c.room)
			if err != nil {
				t.Fatal(err)
			}
			got := withPrefix(visibleBodies(msgs, c.ghost), c.name+" says")
			if strings.Join(got, "\n") == strings.Join(c.expect, "\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s reads %d messages %q; want %d, each once, in order, edits and deletions applied", c.name, len(got), got, len(c.expect))
			}
			<-time.After(time.Second)
		}
	}

	// 3. Disappearing messages: Telegram's self-destructing chat and a
	// WhatsApp disappearing timer.
	const ttl = 20 * time.Second
	if err = tg.SetHistoryTTL(hana.ID, tgStaff.ID, ttl); err != nil {
		t.Fatal(err)
	}
	if _, err = tg.SendMessage(hana.ID, tgStaff.ID, "this one self-destructs", nil); err != nil {
		t.Fatal(err)
	}
	if _, err = wa.SetDisappearingTimer(ctx, waWanda, waStaff, ttl); err != nil {
		t.Fatal(err)
	}
	if _, err = wa.SendText(ctx, waWanda, waStaff, "this one disappears"); err != nil {
		t.Fatal(err)
	}
	type timed struct{ room, body, eventID string }
	sent := []*timed{{room: tgRoom, body: "this one self-destructs"}, {room: waRoom, body: "this one disappears"}}
	for _, d := range sent {
		m, err := sam.WaitMessage(ctx, d.room, MessageFilter{BodyContains: d.body})
		if err != nil {
			t.Fatal(err)
		}
		d.eventID = m.EventID
	}
	for _, d := range sent {
		gone := false
		for end := time.Now().Add(ttl + 90*time.Second); !gone && time.Now().Before(end); {
			msgs, err := sam.Conversation(ctx, d.room)
			if err != nil {
				t.Fatal(err)
			}
			for _, cm := range msgs {
				if cm.EventID == d.eventID {
					gone = cm.Redacted
				}
			}
			if !gone {
				<-time.After(time.Second)
			}
		}
		if !gone {
			t.Fatalf("%q is still in the room %s after its %s timer", d.body, d.room, ttl)
		}
	}
	t.Logf("a self-destructing Telegram message and a disappearing WhatsApp message left Matrix after their %s timers", ttl)
}
