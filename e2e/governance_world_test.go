package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// Helpers of TestGovernance (governance_test.go): what the admin and the
// staff member do and check.

var requestIDRe = regexp.MustCompile(`request #(\d+)`)

// adminCommand sends `<prefix> cmd` in the admin room and waits for the
// bot's answer that contains want.
func (w *govWorld) adminCommand(cmd, want string) *Event {
	w.t.Helper()
	ctx := w.s.Ctx()
	evtID, err := w.admin.Send(ctx, w.adminRoom, w.prefix+" "+cmd)
	if err != nil {
		w.t.Fatalf("send %q: %v", cmd, err)
	}
	ev, err := w.admin.WaitMessage(ctx, w.adminRoom, MessageFilter{Sender: w.s.BotID, After: evtID, BodyContains: want, Timeout: 30 * time.Second})
	if err != nil {
		w.t.Fatalf("answer to %q containing %q: %v", cmd, want, err)
	}
	return ev
}

// send makes a contact write to the staff member on Telegram.
func (w *govWorld) send(name, text string) tgsim.Message {
	w.t.Helper()
	m, err := w.sim.SendMessage(w.contacts[name].ID, w.staff.ID, text, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// waitRequest waits for the request notice about a contact in the admin
// room and returns it with its request ID.
func (w *govWorld) waitRequest(name string, since time.Time) (*Event, string) {
	w.t.Helper()
	ev, err := w.admin.WaitMessage(w.s.Ctx(), w.adminRoom, MessageFilter{Sender: w.s.BotID, BodyContains: name + " Outside (@" + strings.ToLower(name), Since: since})
	if err != nil {
		w.t.Fatalf("no request notice for %s in the admin room: %v", name, err)
	}
	m := requestIDRe.FindStringSubmatch(ev.Body())
	if m == nil {
		w.t.Fatalf("request notice without a request number: %q", ev.Body())
	}
	return ev, m[1]
}

// waitHeld polls gov-requests until request reqID holds n messages.
func (w *govWorld) waitHeld(reqID string, n int) {
	w.t.Helper()
	re := regexp.MustCompile(`request #` + reqID + `\*\*[^#]*Held messages: (\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ans := w.adminCommand("gov-requests", "")
		if m := re.FindStringSubmatch(ans.Body()); m != nil && m[1] == strconv.Itoa(n) {
			return
		} else if time.Now().After(deadline) {
			w.t.Fatalf("request #%s does not hold %d messages: %q", reqID, n, ans.Body())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// requireNoPortal checks that the staff member has no room with the
// contact and that no text of texts is in any of their rooms.
func (w *govWorld) requireNoPortal(name string, texts ...string) {
	w.t.Helper()
	ctx := w.s.Ctx()
	rooms, err := w.sam.Rooms(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range rooms {
		if strings.Contains(r.Name, name) {
			w.t.Errorf("the staff member has a room %q (%s, %s) with %s", r.Name, r.RoomID, r.Membership, name)
		}
		if r.Membership != "join" {
			continue
		}
		events, err := w.sam.Messages(ctx, r.RoomID, 0)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, ev := range events {
			for _, text := range texts {
				if strings.Contains(ev.Body(), text) {
					w.t.Errorf("%q reached the staff member's room %s: %q", text, r.RoomID, ev.Body())
				}
			}
		}
	}
}

// barrier makes Alice (whose chat is bridged) write and waits for it in her
// portal: the updates of one account are handled in order, so everything
// sent before it has been decided.
func (w *govWorld) barrier() {
	w.t.Helper()
	text := "barrier " + randomString(4)
	w.send("Alice", text)
	if _, err := w.sam.WaitMessage(w.s.Ctx(), w.portals["Alice"], MessageFilter{BodyContains: text}); err != nil {
		w.t.Fatalf("barrier message: %v", err)
	}
}

// portal waits for the staff member's portal with a contact.
func (w *govWorld) portal(name string) string {
	w.t.Helper()
	exclude := []string{w.mgmt}
	for _, room := range w.portals {
		exclude = append(exclude, room)
	}
	r, err := w.sam.WaitRoom(w.s.Ctx(), RoomFilter{NameContains: name, Exclude: exclude, AutoJoin: true, Inviters: []string{"^@.*:localhost$"}})
	if err != nil {
		w.t.Fatalf("no portal with %s: %v", name, err)
	}
	if !r.Encrypted {
		w.t.Errorf("the portal with %s is not encrypted", name)
	}
	w.portals[name] = r.RoomID
	return r.RoomID
}

// requireDelivered waits for sent in the portal and checks their order,
// their timestamps (the simulator's, to the second) and that the
// homeserver only has ciphertext.
func (w *govWorld) requireDelivered(room string, sent []tgsim.Message) {
	w.t.Helper()
	ctx := w.s.Ctx()
	for _, m := range sent {
		if _, err := w.sam.WaitMessage(ctx, room, MessageFilter{BodyContains: m.Text}); err != nil {
			w.t.Fatalf("held message %q never arrived: %v", m.Text, err)
		}
	}
	events, err := w.sam.Messages(ctx, room, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	var got []Event
	for _, ev := range events {
		for _, m := range sent {
			if ev.Body() == m.Text {
				got = append(got, ev)
			}
		}
	}
	if len(got) != len(sent) {
		w.t.Fatalf("%d of the %d held messages in the portal", len(got), len(sent))
	}
	for i, ev := range got {
		if ev.Body() != sent[i].Text {
			w.t.Errorf("message %d in the portal is %q, want %q (held messages out of order)", i+1, ev.Body(), sent[i].Text)
		}
		if want := sent[i].Date.UnixMilli(); ev.TS != want {
			w.t.Errorf("%q has origin_server_ts %d, want the Telegram date %d", ev.Body(), ev.TS, want)
		}
		if i > 0 && ev.TS < got[i-1].TS {
			w.t.Errorf("%q is older than the message before it", ev.Body())
		}
		if err := w.sam.RequireEncryptedOnServer(ctx, room, ev.EventID); err != nil {
			w.t.Errorf("%q: %v", ev.Body(), err)
		}
	}
}

// countBotMessages counts the bot's messages in a room that contain text.
func (w *govWorld) countBotMessages(room, text string) int {
	w.t.Helper()
	events, err := w.sam.Messages(w.s.Ctx(), room, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, ev := range events {
		if ev.Sender == w.s.BotID && strings.Contains(ev.Body(), text) {
			n++
		}
	}
	return n
}

// sendAndWait makes a contact write and waits for the message in its portal.
func (w *govWorld) sendAndWait(name, text string) *Event {
	w.t.Helper()
	w.send(name, text)
	ev, err := w.sam.WaitMessage(w.s.Ctx(), w.portals[name], MessageFilter{BodyContains: text})
	if err != nil {
		w.t.Fatalf("%q never arrived: %v", text, err)
	}
	return ev
}
