package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// Sizes of TestConversationsAndOutage.
const (
	telegramQuestions = 200 // from Matrix, each answered by the contact
	whatsAppQuestions = 50
	outageMessages    = 50 // per network, while the homeserver is down
)

// outageDuration is how long the homeserver stays down: 2 minutes, or
// PASSERELLE_E2E_OUTAGE (a Go duration).
func outageDuration(t *testing.T) time.Duration {
	if v := os.Getenv("PASSERELLE_E2E_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PASSERELLE_E2E_OUTAGE: %v", err)
		}
		return d
	}
	return 2 * time.Minute
}

// bodiesOf returns the bodies of the messages sender sent, in order.
func bodiesOf(evs []Event, sender string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Sender == sender && ev.ClearType == "m.room.message" {
			out = append(out, ev.Body())
		}
	}
	return out
}

// waitBodies waits until the last message sender sent in roomID is the last
// of want, then reads the room's whole history and checks that sender's
// messages end with want, each once and in order. It returns them all.
func waitBodies(ctx context.Context, t *testing.T, c *Client, roomID, sender string, timeout time.Duration, want []string) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := want[len(want)-1]
	for {
		evs, err := c.Messages(ctx, roomID, 50)
		if err != nil {
			t.Fatal(err)
		}
		if recent := bodiesOf(evs, sender); len(recent) > 0 && recent[len(recent)-1] == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q from %s never arrived; recent: %q", last, sender, bodiesOf(evs, sender))
		}
		<-tick.C
	}
	// The homeserver's own order, from one sync: /messages pages
	// skip or repeat events of equal depth on Dendrite (see ServerHistory).
	evs, err := c.ServerHistory(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.DecryptionError != "" {
			t.Errorf("event %s could not be decrypted: %s", ev.EventID, ev.DecryptionError)
		}
	}
	got := bodiesOf(evs, sender)
	if len(got) < len(want) || strings.Join(got[len(got)-len(want):], "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s said %d messages in the portal; want the last %d to be %q…%q; got …%q", sender, len(got), len(want),
			want[0], last, got[max(0, len(got)-len(want)):min(len(got), max(0, len(got)-len(want))+5)])
	}
	return got
}

// exactlyOnce fails if a body of want appears other than once in got.
func exactlyOnce(t *testing.T, what string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, b := range got {
		count[b]++
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Errorf("%s: %q arrived %d times", what, w, count[w])
		}
	}
}

func numbered(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i+1)
	}
	return out
}

// TestConversationsAndOutage is a working day on one stack: a staff member
// linked to both networks writes 200 messages from Matrix to a Telegram
// contact who answers each one (the conversation that once wedged the
// gateway after 8), and 50 to a WhatsApp contact who does the same; every
// message and every answer arrives exactly once, in order. Then the
// homeserver stops for two minutes while both contacts write 50 messages
// each: when it is back, every one of them arrives exactly once, in order,
// with no new message needed to trigger it.
func TestConversationsAndOutage(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const staffPhone, omarPhone = "+33600000021", "+33600000022"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", omarPhone: "Omar Outside"})
	tgStaff, tgContact := telegramWorld(t, tg, "+15550021", "")
	tg.SetAutoReply(tgContact.ID, func(in tgsim.Message) (string, bool) { return "re: " + in.Text, true })

	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam"}})
	sam := s.User("sam")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	mgmt, _ := s.BotRoom(sam)

	// Both networks linked for the same staff member.
	s.LinkWhatsAppQR(sam, mgmt, wa, staffPhone)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550021")

	// The two portals, opened by the contacts.
	if _, err := tg.SendMessage(tgContact.ID, tgStaff.ID, "hello from Telegram", nil); err != nil {
		t.Fatal(err)
	}
	tgRoom, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err := sam.WaitMessage(ctx, tgRoom.RoomID, MessageFilter{BodyContains: "hello from Telegram"})
	if err != nil {
		t.Fatal(err)
	}
	tgGhost := first.Sender
	if _, err = wa.SendText(ctx, omarPhone, staffPhone, "hello from WhatsApp"); err != nil {
		t.Fatal(err)
	}
	waRoom, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt, tgRoom.RoomID}, NameContains: "Omar", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err = sam.WaitMessage(ctx, waRoom.RoomID, MessageFilter{BodyContains: "hello from WhatsApp"})
	if err != nil {
		t.Fatal(err)
	}
	waGhost := first.Sender

	// WhatsApp's contact answers each message it gets, as a person would.
	answerCtx, stopAnswering := context.WithCancel(ctx)
	defer stopAnswering()
	go func() {
		for answerCtx.Err() == nil {
			m, err := wa.WaitMessage(answerCtx, staffPhone, omarPhone, nil)
			if err != nil {
				return
			}
			if _, err = wa.SendText(answerCtx, omarPhone, staffPhone, "re: "+m.Text()); err != nil && answerCtx.Err() == nil {
				t.Errorf("WhatsApp answer: %v", err)
				return
			}
		}
	}()

	// The conversations: questions from Matrix, one after the other as fast
	// as the client sends them, each answered on the other side.
	start := time.Now()
	tgQuestions := numbered("telegram question %03d", telegramQuestions)
	waQuestions := numbered("whatsapp question %03d", whatsAppQuestions)
	for i, q := range tgQuestions {
		if _, err = sam.Send(ctx, tgRoom.RoomID, q); err != nil {
			t.Fatal(err)
		}
		if i < len(waQuestions) {
			if _, err = sam.Send(ctx, waRoom.RoomID, waQuestions[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d + %d messages sent from Matrix in %s", len(tgQuestions), len(waQuestions), time.Since(start).Round(time.Millisecond))
	// The contact's answers, in the order Telegram stored them (the
	// simulator answers each on its own goroutine, so two answers can swap):
	// that is the order Matrix must show.
	var tgAnswers []string
	answered := func() []string {
		var out []string
		for _, m := range tg.Messages(tgStaff.ID, tgContact.ID) {
			if m.From == tgContact.ID && strings.HasPrefix(m.Text, "re: ") {
				out = append(out, m.Text)
			}
		}
		return out
	}
	answerDeadline := time.Now().Add(2 * time.Minute)
	for tgAnswers = answered(); len(tgAnswers) < len(tgQuestions) && time.Now().Before(answerDeadline); tgAnswers = answered() {
		<-time.After(200 * time.Millisecond)
	}
	want := make([]string, len(tgQuestions))
	for i, q := range tgQuestions {
		want[i] = "re: " + q
	}
	exactlyOnce(t, "Telegram answers stored by Telegram", tgAnswers, want)
	waAnswers := make([]string, len(waQuestions))
	for i, q := range waQuestions {
		waAnswers[i] = "re: " + q
	}
	got := waitBodies(ctx, t, sam, tgRoom.RoomID, tgGhost, 5*time.Minute, tgAnswers)
	exactlyOnce(t, "Telegram answers in the portal", got, tgAnswers)
	t.Logf("all %d Telegram answers in the portal %s after the first question", len(tgAnswers), time.Since(start).Round(time.Millisecond))
	got = waitBodies(ctx, t, sam, waRoom.RoomID, waGhost, 2*time.Minute, waAnswers)
	exactlyOnce(t, "WhatsApp answers in the portal", got, waAnswers)
	t.Logf("all %d WhatsApp answers in the portal %s after the first question", len(waAnswers), time.Since(start).Round(time.Millisecond))

	var toTelegram []string
	for _, m := range tg.Messages(tgStaff.ID, tgContact.ID) {
		if m.From == tgStaff.ID {
			toTelegram = append(toTelegram, m.Text)
		}
	}
	if strings.Join(toTelegram, "\n") != strings.Join(tgQuestions, "\n") {
		t.Fatalf("Telegram contact received %d messages, want the %d questions once each in order; first %q", len(toTelegram), len(tgQuestions), toTelegram[:min(5, len(toTelegram))])
	}
	var toWhatsApp []string
	for _, m := range wa.Messages() {
		if m.From == strings.TrimPrefix(staffPhone, "+") && m.To == strings.TrimPrefix(omarPhone, "+") {
			toWhatsApp = append(toWhatsApp, m.Text())
		}
	}
	if strings.Join(toWhatsApp, "\n") != strings.Join(waQuestions, "\n") {
		t.Fatalf("WhatsApp contact received %d messages, want the %d questions once each in order; first %q", len(toWhatsApp), len(waQuestions), toWhatsApp[:min(5, len(toWhatsApp))])
	}
	stopAnswering()

	// The homeserver goes away while both contacts keep writing.
	outage := outageDuration(t)
	if err = s.Dendrite.Pause(); err != nil {
		t.Fatalf("stopping Dendrite: %v", err)
	}
	down := time.Now()
	tgOutage := numbered("telegram during the outage %02d", outageMessages)
	waOutage := numbered("whatsapp during the outage %02d", outageMessages)
	for i := range outageMessages {
		if _, err = tg.SendMessage(tgContact.ID, tgStaff.ID, tgOutage[i], nil); err != nil {
			t.Fatal(err)
		}
		if _, err = wa.SendText(ctx, omarPhone, staffPhone, waOutage[i]); err != nil {
			t.Fatal(err)
		}
	}
	<-time.After(time.Until(down.Add(outage)))
	if err = s.Dendrite.Resume(ctx); err != nil {
		t.Fatalf("restarting Dendrite: %v", err)
	}
	t.Logf("Dendrite back after %s", time.Since(down).Round(time.Second))
	back := time.Now()
	got = waitBodies(ctx, t, sam, tgRoom.RoomID, tgGhost, 3*time.Minute, tgOutage)
	exactlyOnce(t, "Telegram messages of the outage", got, tgOutage)
	t.Logf("all %d Telegram messages of the outage in the portal %s after the homeserver came back", len(tgOutage), time.Since(back).Round(time.Millisecond))
	got = waitBodies(ctx, t, sam, waRoom.RoomID, waGhost, 3*time.Minute, waOutage)
	exactlyOnce(t, "WhatsApp messages of the outage", got, waOutage)
	t.Logf("all %d WhatsApp messages of the outage in the portal %s after the homeserver came back", len(waOutage), time.Since(back).Round(time.Millisecond))
}
