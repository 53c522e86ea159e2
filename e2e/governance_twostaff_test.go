package e2e

import (
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// The WhatsApp accounts of the two-staff steps.
const govSamWA, govPatWA, govYaraWA = "+33600000031", "+33600000032", "+33600000033"

// requestOf waits for the request notice of staff (e.g. "@sam") made after
// since and returns its number.
func (w *govWorld) requestOf(t *testing.T, staff, contact string, since time.Time) string {
	t.Helper()
	ev, err := w.admin.WaitMessage(w.s.Ctx(), w.adminRoom, MessageFilter{Sender: w.s.BotID, BodyContains: staff + ":localhost", Since: since})
	if err != nil {
		t.Fatalf("no request of %s in the admin room: %v", staff, err)
	}
	if !strings.Contains(ev.Body(), contact) {
		t.Fatalf("%s's request is not about %s: %q", staff, contact, ev.Body())
	}
	m := requestIDRe.FindStringSubmatch(ev.Body())
	if m == nil {
		t.Fatalf("request notice without a number: %q", ev.Body())
	}
	return m[1]
}

// twoStaffOneContact: Xavier writes to Sam and to Pat, two staff members.
// Their direct chats share a portal ID and differ by receiver: each gets a
// request of its own; approving Sam's delivers only Sam's held message, in
// Sam's portal, and Pat's chat keeps waiting for Pat's own request.
func (w *govWorld) twoStaffOneContact(t *testing.T) {
	patAcc, err := w.sim.CreateAccount(tgsim.AccountSpec{Phone: "+15550101", FirstName: "Pat", LastName: "Staff"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]int64{{patAcc.ID, w.xavier.ID}, {w.xavier.ID, patAcc.ID}} {
		if err = w.sim.AddContact(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	pat := w.s.AddUser("pat")
	patMgmt, _ := w.s.BotRoom(pat)
	w.pat, w.patMgmt = pat, patMgmt
	w.s.LoginTelegramPhone(pat, patMgmt, w.sim, "+15550101")

	since := time.Now().Add(-time.Second)
	toSam := w.send("Xavier", "hello Sam")
	if _, err = w.sim.SendMessage(w.xavier.ID, patAcc.ID, "SECRET for Pat only", nil); err != nil {
		t.Fatal(err)
	}
	samReq, patReq := w.twoRequests(t, "Xavier", since)

	w.adminCommand("gov-approve "+samReq, "Request #"+samReq+" approved: 1 held message(s) delivered")
	room := w.portal("Xavier")
	w.requireDelivered(room, []tgsim.Message{toSam})
	w.requireNoPortal("SECRET", "SECRET for Pat only")
	// Pat's chat still waits: no portal for Pat, the request still pending.
	w.requireNoRoomWith(t, w.pat, "Xavier")
	w.adminCommand("gov-requests", "#"+patReq)
	w.approveForPat(t, patReq, "Xavier", "SECRET for Pat only", room)
}

// twoStaffOneContactWhatsApp: the same on WhatsApp. Yara writes to Sam and
// to Pat; each gets a request; approving Sam's delivers only Sam's message.
func (w *govWorld) twoStaffOneContactWhatsApp(t *testing.T) {
	ctx := w.s.Ctx()
	if w.pat == nil {
		t.Fatal("TwoStaffOneContact did not set up Pat")
	}
	w.s.LinkWhatsAppQR(w.sam, w.mgmt, w.wa, govSamWA)
	w.s.LinkWhatsAppQR(w.pat, w.patMgmt, w.wa, govPatWA)

	since := time.Now().Add(-time.Second)
	if _, err := w.wa.SendText(ctx, govYaraWA, govSamWA, "hello Sam on WhatsApp"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.wa.SendText(ctx, govYaraWA, govPatWA, "WHATSAPP SECRET for Pat only"); err != nil {
		t.Fatal(err)
	}
	samReq, patReq := w.twoRequests(t, "Yara", since)

	w.adminCommand("gov-approve "+samReq, "Request #"+samReq+" approved: 1 held message(s) delivered")
	room := w.portal("Yara")
	if _, err := w.sam.WaitMessage(ctx, room, MessageFilter{BodyContains: "hello Sam on WhatsApp"}); err != nil {
		t.Fatalf("Sam's held WhatsApp message: %v", err)
	}
	w.requireNoPortal("WHATSAPP SECRET", "WHATSAPP SECRET for Pat only")
	w.requireNoRoomWith(t, w.pat, "Yara")
	w.approveForPat(t, patReq, "Yara", "WHATSAPP SECRET for Pat only", room)
}

// twoRequests waits for the requests of Sam and of Pat about contact, made
// after since, each holding one message, and returns their numbers.
func (w *govWorld) twoRequests(t *testing.T, contact string, since time.Time) (samReq, patReq string) {
	t.Helper()
	samReq, patReq = w.requestOf(t, "@sam", contact, since), w.requestOf(t, "@pat", contact, since)
	if samReq == patReq {
		t.Fatalf("Sam and Pat share request #%s", samReq)
	}
	w.waitHeld(samReq, 1)
	w.waitHeld(patReq, 1)
	return samReq, patReq
}

// requireNoRoomWith fails if c has a room named after contact.
func (w *govWorld) requireNoRoomWith(t *testing.T, c *Client, contact string) {
	t.Helper()
	rooms, err := c.Rooms(w.s.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rooms {
		if strings.Contains(r.Name, contact) {
			t.Fatalf("a portal with %s before the request was decided: %+v", contact, r)
		}
	}
}

// approveForPat approves Pat's request and waits for its held message in
// Pat's own portal with contact, which must not be Sam's room samRoom.
func (w *govWorld) approveForPat(t *testing.T, patReq, contact, text, samRoom string) {
	t.Helper()
	ctx := w.s.Ctx()
	w.adminCommand("gov-approve "+patReq, "Request #"+patReq+" approved: 1 held message(s) delivered")
	patRoom, err := w.pat.WaitRoom(ctx, RoomFilter{NameContains: contact, Exclude: []string{w.patMgmt}, AutoJoin: true, Inviters: []string{"^@.*:localhost$"}})
	if err != nil {
		t.Fatalf("Pat's portal with %s: %v", contact, err)
	}
	if _, err = w.pat.WaitMessage(ctx, patRoom.RoomID, MessageFilter{BodyContains: text}); err != nil {
		t.Fatalf("Pat's held message: %v", err)
	}
	if patRoom.RoomID == samRoom {
		t.Fatalf("Sam and Pat share the portal room with %s", contact)
	}
}
