package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// Accounts of TestMigrationEndToEnd.
const (
	migSamWA  = "+33600000061" // the staff member on WhatsApp
	migWaltWA = "+33600000062" // an outside contact on WhatsApp, Walt on Matrix
	migAdmin  = "mia"
)

var claimCodeRe = regexp.MustCompile(`MX-[A-Z0-9]{5}-[A-Z0-9]{5}`)

// migWorld is the one stack of TestMigrationEndToEnd: Dendrite, the gateway
// with both networks, an admin, a staff member linked on both networks, and
// two outside contacts who also have Matrix accounts.
type migWorld struct {
	t       *testing.T
	s       *Stack
	tg      *tgsim.Server
	waSim   *wasim.Server
	tgStaff *tgsim.Account
	tina    *tgsim.Account // Telegram contact; @tina on Matrix
	prefix  string
	sam     *Client
	samMgmt string
	// adminMgmt is the admin's management room (adminCommand).
	adminMgmt string
	// tinaMgmt is Tina's DM with the bot (where she claimed).
	tinaMgmt string
	portals  map[string]string // contact name → portal room
	excluded []string
}

// TestMigrationEndToEnd is an organisation's migration, on one stack: an
// outside contact on Telegram and one on WhatsApp each claim their Matrix
// account with a code they send to a staff member from their phone; the
// Telegram contact's chat is cut over to a native encrypted room (see
// cutOverDM), then a Telegram group once its last member is linked
// (cutOverGroup).
func TestMigrationEndToEnd(t *testing.T) {
	start := time.Now()
	w := newMigWorld(t)
	t.Logf("stack and both logins ready in %s", time.Since(start).Round(time.Millisecond))
	for _, step := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ClaimFromTelegram", w.claimFromTelegram},
		{"ClaimFromWhatsApp", w.claimFromWhatsApp},
		{"CutOverDM", w.cutOverDM},
		{"CutOverGroup", w.cutOverGroup},
	} {
		stepStart := time.Now()
		ok := t.Run(step.name, func(t *testing.T) {
			w.t = t
			step.run(t)
		})
		t.Logf("%s: %s", step.name, time.Since(stepStart).Round(time.Millisecond))
		if !ok {
			t.FailNow() // later steps build on earlier ones
		}
	}
}

func newMigWorld(t *testing.T) *migWorld {
	tg := NewTelegramSim(t, tgsim.Options{})
	wa := NewWhatsAppSim(t)
	w := &migWorld{t: t, tg: tg, portals: map[string]string{}}
	var err error
	if w.tgStaff, err = tg.CreateAccount(tgsim.AccountSpec{Phone: "+15550600", FirstName: "Sam", LastName: "Staff"}); err != nil {
		t.Fatal(err)
	}
	if w.tina, err = tg.CreateAccount(tgsim.AccountSpec{Phone: "+15550601", FirstName: "Tina", LastName: "Outside", Username: "tina_outside"}); err != nil {
		t.Fatal(err)
	}
	createWAAccounts(t, wa, map[string]string{migSamWA: "Sam Staff", migWaltWA: "Walt Outside"})
	w.s = NewStack(t, StackOptions{TelegramSim: tg, WhatsAppSim: wa, Users: []string{migAdmin, "sam", "tina", "walt"}, AutoJoin: true,
		GatewayPatch: func(doc *stack.YAMLDoc) error {
			return doc.Set("network.governance.admins", []string{"@" + migAdmin + ":localhost"})
		}})
	w.waSim = wa
	doc, err := w.s.Gateway.Config()
	if err != nil {
		t.Fatal(err)
	}
	w.prefix = doc.GetString("bridge.command_prefix")
	w.sam = w.s.User("sam")
	w.samMgmt, _ = w.s.BotRoom(w.sam)
	w.s.LinkWhatsAppQR(w.sam, w.samMgmt, wa, migSamWA)
	w.s.LoginTelegramPhone(w.sam, w.samMgmt, tg, "+15550600")
	w.excluded = []string{w.samMgmt}

	// Both contacts write first: their chats are portals.
	if _, err = tg.SendMessage(w.tina.ID, w.tgStaff.ID, "hello from Tina", nil); err != nil {
		t.Fatal(err)
	}
	w.portals["Tina"] = w.waitPortal("Tina", "hello from Tina")
	if _, err = wa.SendText(w.s.Ctx(), migWaltWA, migSamWA, "hello from Walt"); err != nil {
		t.Fatal(err)
	}
	w.portals["Walt"] = w.waitPortal("Walt", "hello from Walt")
	return w
}

// waitPortal waits for the staff member's portal with a contact and a
// message in it.
func (w *migWorld) waitPortal(name, body string) string {
	w.t.Helper()
	ctx := w.s.Ctx()
	room, err := w.sam.WaitRoom(ctx, RoomFilter{Exclude: w.excluded, NameContains: name, AutoJoin: true})
	if err != nil {
		w.t.Fatalf("no portal for %s: %v", name, err)
	}
	if _, err = w.sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: body}); err != nil {
		w.t.Fatalf("%q never reached %s's portal: %v", body, name, err)
	}
	w.excluded = append(w.excluded, room.RoomID)
	return room.RoomID
}

// adminCommand runs a command in the admin's management room and returns
// the bot's answer containing want.
func (w *migWorld) adminCommand(cmd, want string) *Event {
	w.t.Helper()
	if w.adminMgmt == "" {
		w.adminMgmt, _ = w.s.BotRoom(w.s.User(migAdmin))
	}
	return w.s.Step(w.s.User(migAdmin), w.adminMgmt, cmd, want)
}

// claim: the contact's Matrix account asks the bot for a code, the contact
// sends it from the network (send), the Matrix account is told it is
// linked, the staff member never sees the code (a later message arrives,
// the code did not), and the admin's gov-migration shows the link.
func (w *migWorld) claim(contact *Client, portal, network string, send func(text string) error, identity string) {
	t := w.t
	ctx := w.s.Ctx()
	mgmt, _ := w.s.BotRoom(contact)
	if contact.UserID == w.s.User("tina").UserID {
		w.tinaMgmt = mgmt
	}
	ans := w.s.Step(contact, mgmt, "claim-code", "Your claim code is")
	code := claimCodeRe.FindString(ans.Body())
	if code == "" {
		t.Fatalf("no claim code in %q", ans.Body())
	}
	if err := send(code); err != nil {
		t.Fatal(err)
	}
	if _, err := contact.WaitMessage(ctx, mgmt, MessageFilter{Sender: w.s.BotID, BodyContains: "Linked: the " + network + " account that sent your code is now linked to " + contact.UserID}); err != nil {
		t.Fatalf("the claimant was not told of the link: %v", err)
	}
	if err := send("after the code"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sam.WaitMessage(ctx, portal, MessageFilter{BodyContains: "after the code"}); err != nil {
		t.Fatal(err)
	}
	msgs, err := w.sam.Conversation(ctx, portal)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if strings.Contains(m.LatestBody, code) {
			t.Errorf("the staff member saw the claim code in the portal (event %s)", m.EventID)
		}
	}
	out := w.adminCommand("gov-migration contact "+identity, "linked")
	if !strings.Contains(out.Body(), contact.UserID+" (confirmed, claim") {
		t.Errorf("gov-migration contact %s: %q", identity, out.Body())
	}
}

func (w *migWorld) claimFromTelegram(t *testing.T) {
	w.claim(w.s.User("tina"), w.portals["Tina"], "Telegram", func(text string) error {
		_, err := w.tg.SendMessage(w.tina.ID, w.tgStaff.ID, text, nil)
		return err
	}, "@tina_outside")
}

func (w *migWorld) claimFromWhatsApp(t *testing.T) {
	w.claim(w.s.User("walt"), w.portals["Walt"], "WhatsApp", func(text string) error {
		_, err := w.waSim.SendText(w.s.Ctx(), migWaltWA, migSamWA, text)
		return err
	}, migWaltWA)
}
