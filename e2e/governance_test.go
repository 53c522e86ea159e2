package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// govAdmin is the governance admin of the tests: listed in
// network.governance.admins, and admin in bridge.permissions (the harness
// gives @admin:<server> that level).
const govAdmin = "admin"

const govAPIToken = "e2e-governance-token-0123456789abcdef" // api.token needs 32 bytes

// govWorld is the shared world of TestGovernance: one stack in approval
// mode, a staff member logged in to the simulated Telegram, an admin in the
// governance admin room, and outside contacts, one per case.
type govWorld struct {
	t      *testing.T
	s      *Stack
	sim    *tgsim.Server
	prefix string // the bot's command prefix

	staff     *tgsim.Account
	xavier    *tgsim.Account // writes to two staff members
	wa        *wasim.Server  // WhatsApp, for the two-staff steps
	pat       *Client        // a second staff member (from TwoStaffOneContact on)
	patMgmt   string
	contacts  map[string]*tgsim.Account // by first name
	sam       *Client                   // the staff member
	admin     *Client                   // the governance admin
	mgmt      string                    // sam's management room
	adminRoom string                    // the governance admin room
	portals   map[string]string         // portal room by contact first name
}

// TestGovernance runs the governance of issue 4 on the real stack (Dendrite,
// the gateway binary, the Telegram simulator, matrix-js-sdk clients): in
// approval mode an outside contact's first messages wait for an admin, who
// approves by command or by ✅ reaction (the held messages then arrive in
// order, with their original timestamps, encrypted), denies (nothing reaches
// Matrix, the staff member is told without the content), or lets a request
// expire; a restart while a request is pending loses nothing; outbound
// messages and new chats to refused identifiers are refused with a notice;
// staff cannot remove a portal's encryption, edit its bridge state or kick
// the bot; the HTTP admin API answers only with its token and lists contacts
// without any message content.
// It runs on SQLite, and on PostgreSQL when $PASSERELLE_TEST_POSTGRES is
// set (scripts/test and CI set it).
func TestGovernance(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { runGovernance(t, false) })
	t.Run("PostgreSQL", func(t *testing.T) { runGovernance(t, true) })
}

func runGovernance(t *testing.T, postgres bool) {
	start := time.Now()
	w := newGovWorld(t, postgres)
	t.Logf("stack, admin room and Telegram login ready in %s", time.Since(start).Round(time.Millisecond))

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ApprovalByCommand", w.approvalByCommand},
		{"ApprovalByReaction", w.approvalByReaction},
		{"Denied", w.denied},
		{"RestartWhilePendingAndExpiry", w.restartWhilePendingAndExpiry},
		{"PortalGuard", w.portalGuard},
		{"OutboundRefused", w.outboundRefused},
		{"AdminAPI", w.adminAPI},
		{"TwoStaffOneContact", w.twoStaffOneContact},
		{"TwoStaffOneContactWhatsApp", w.twoStaffOneContactWhatsApp},
	}
	for _, step := range steps {
		stepStart := time.Now()
		ok := t.Run(step.name, func(t *testing.T) {
			w.t = t
			step.run(t)
		})
		t.Logf("%s: %s", step.name, time.Since(stepStart).Round(time.Millisecond))
		if !ok {
			// Later steps build on the earlier ones.
			t.FailNow()
		}
	}
	t.Logf("whole governance run: %s", time.Since(start).Round(time.Millisecond))
}

func newGovWorld(t *testing.T, postgres bool) *govWorld {
	sim := NewTelegramSim(t, tgsim.Options{})
	w := &govWorld{t: t, sim: sim, contacts: map[string]*tgsim.Account{}, portals: map[string]string{}}
	var err error
	w.staff, err = sim.CreateAccount(tgsim.AccountSpec{Phone: "+15550100", FirstName: "Sam", LastName: "Staff"})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Ivan", "Xavier"} {
		phone := fmt.Sprintf("+1555020%d", i)
		if name == "Ivan" {
			phone = "+79160000001" // refused by the config's +7 rule
		}
		acc, err := sim.CreateAccount(tgsim.AccountSpec{Phone: phone, FirstName: name, LastName: "Outside", Username: strings.ToLower(name) + "_outside"})
		if err != nil {
			t.Fatal(err)
		}
		if name == "Xavier" {
			w.xavier = acc
		}
		for _, pair := range [][2]int64{{w.staff.ID, acc.ID}, {acc.ID, w.staff.ID}} {
			if err = sim.AddContact(pair[0], pair[1]); err != nil {
				t.Fatal(err)
			}
		}
		w.contacts[name] = acc
	}

	w.wa = NewWhatsAppSim(t)
	createWAAccounts(t, w.wa, map[string]string{govSamWA: "Sam Staff", govPatWA: "Pat Staff", govYaraWA: "Yara Outside"})
	w.s = NewStack(t, StackOptions{TelegramSim: sim, WhatsAppSim: w.wa, Postgres: postgres, Users: []string{govAdmin, "sam"}, GatewayPatch: func(doc *stack.YAMLDoc) error {
		for k, v := range map[string]any{
			"network.governance.default_mode": "approval",
			"network.governance.admins":       []string{"@" + govAdmin + ":localhost"},
			"network.governance.rules": []map[string]any{
				{"action": "deny", "phone_prefix": "+7", "comment": "no bridging to +7"},
			},
			"network.governance.approval_ttl": "72h",
			"network.governance.api.token":    govAPIToken,
		} {
			if err := doc.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	}})
	doc, err := w.s.Gateway.Config()
	if err != nil {
		t.Fatal(err)
	}
	w.prefix = doc.GetString("bridge.command_prefix")
	w.sam, w.admin = w.s.User("sam"), w.s.User(govAdmin)
	ctx := w.s.Ctx()

	// The bot made the admin room at start-up and invited the admin.
	room, err := w.admin.WaitRoom(ctx, RoomFilter{Name: "Passerelle governance", AutoJoin: true, Inviters: []string{regexp.QuoteMeta(w.s.BotID)}})
	if err != nil {
		t.Fatalf("the admin never got into the governance admin room: %v", err)
	}
	w.adminRoom = room.RoomID
	if !room.Encrypted {
		t.Errorf("the governance admin room is not encrypted")
	}

	// The staff member logs in to Telegram from the management room.
	w.mgmt, _ = w.s.BotRoom(w.sam)
	w.s.LoginTelegramPhone(w.sam, w.mgmt, sim, "+15550100")
	return w
}

// approvalByCommand: three messages of a new contact are held (no portal),
// the admin room names who, where and how many, and gov-approve delivers
// them in order with their Telegram timestamps, encrypted.
func (w *govWorld) approvalByCommand(t *testing.T) {
	since := time.Now().Add(-time.Second)
	var sent []tgsim.Message
	for i, text := range []string{"alice one", "alice two", "alice three"} {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // Telegram dates are whole seconds
		}
		sent = append(sent, w.send("Alice", text))
	}
	notice, reqID := w.waitRequest("Alice", since)
	for _, want := range []string{"@sam:localhost", "Telegram", "Alice Outside", "@alice_outside", "+15550200", "direct chat", "gov-approve " + reqID} {
		if !strings.Contains(notice.Body(), want) {
			t.Errorf("request notice lacks %q:\n%s", want, notice.Body())
		}
	}
	w.waitHeld(reqID, 3)
	w.requireNoPortal("Alice", "alice one", "alice two", "alice three")

	start := time.Now()
	w.adminCommand("gov-approve "+reqID, "Request #"+reqID+" approved: 3 held message(s) delivered")
	room := w.portal("Alice")
	w.requireDelivered(room, sent)
	t.Logf("held messages delivered in the new portal %s after gov-approve", time.Since(start).Round(time.Millisecond))
	if _, err := w.sam.WaitMessage(w.s.Ctx(), w.mgmt, MessageFilter{Sender: w.s.BotID, BodyContains: "An admin approved your Telegram chat with Alice Outside"}); err != nil {
		t.Errorf("the staff member was not told of the approval: %v", err)
	}
	// Later messages go straight through.
	w.barrier()
}

// approvalByReaction: the admin reacts ✅ on the request notice.
func (w *govWorld) approvalByReaction(t *testing.T) {
	since := time.Now().Add(-time.Second)
	sent := []tgsim.Message{w.send("Bob", "bob one")}
	notice, reqID := w.waitRequest("Bob", since)
	w.requireNoPortal("Bob", "bob one")
	ctx := w.s.Ctx()
	reaction := map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": notice.EventID, "key": "✅"}}
	reactionID, err := w.admin.SendEvent(ctx, w.adminRoom, "m.reaction", reaction, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = w.admin.WaitMessage(ctx, w.adminRoom, MessageFilter{Sender: w.s.BotID, After: reactionID,
		BodyContains: "Request #" + reqID + " approved by @" + govAdmin + ":localhost: 1 held message(s) delivered"}); err != nil {
		t.Fatalf("the ✅ reaction did not approve: %v", err)
	}
	w.requireDelivered(w.portal("Bob"), sent)
}

// denied: gov-deny discards the held messages, tells the staff member
// without the content, and drops what the contact sends afterwards.
func (w *govWorld) denied(t *testing.T) {
	since := time.Now().Add(-time.Second)
	w.send("Carol", "carol secret one")
	w.send("Carol", "carol secret two")
	_, reqID := w.waitRequest("Carol", since)
	w.waitHeld(reqID, 2)
	w.adminCommand("gov-deny "+reqID+" not a work contact", "Request #"+reqID+" denied: 2 held message(s) discarded")
	told, err := w.sam.WaitMessage(w.s.Ctx(), w.mgmt, MessageFilter{Sender: w.s.BotID, BodyContains: "An admin denied bridging your Telegram chat with Carol Outside"})
	if err != nil {
		t.Fatalf("the staff member was not told of the denial: %v", err)
	}
	if !strings.Contains(told.Body(), "2 held message(s) were discarded") || strings.Contains(told.Body(), "secret") {
		t.Errorf("denial notice to the staff member: %q", told.Body())
	}
	w.send("Carol", "carol secret three")
	w.barrier()
	w.requireNoPortal("Carol", "carol secret")
	events, err := w.admin.Messages(w.s.Ctx(), w.adminRoom, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countBodies(events, "carol secret"); n != 0 {
		t.Errorf("the content of Carol's messages is in the admin room %d times", n)
	}
	// No new request for the denied chat.
	if ans := w.adminCommand("gov-requests", ""); strings.Contains(ans.Body(), "Carol") {
		t.Errorf("a denied chat waits for approval again: %q", ans.Body())
	}
}

// restartWhilePendingAndExpiry: Dave's messages held before a restart, and
// one sent while the gateway was down, are all delivered in order once
// approved after the restart. The restart also shortens approval_ttl to 5s,
// and Erin's request, made after it, expires as denied.
func (w *govWorld) restartWhilePendingAndExpiry(t *testing.T) {
	ctx := w.s.Ctx()
	since := time.Now().Add(-time.Second)
	sent := []tgsim.Message{w.send("Dave", "dave one")}
	time.Sleep(1100 * time.Millisecond)
	sent = append(sent, w.send("Dave", "dave two"))
	_, reqID := w.waitRequest("Dave", since)
	w.waitHeld(reqID, 2)

	if err := w.s.Gateway.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	sent = append(sent, w.send("Dave", "dave three, while the gateway was down"))
	if err := w.s.Gateway.PatchConfig(func(doc *stack.YAMLDoc) error { return doc.Set("network.governance.approval_ttl", "5s") }); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	if err := w.s.Gateway.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("gateway restarted in %s", time.Since(restart).Round(time.Millisecond))

	erinSince := time.Now().Add(-time.Second)
	w.send("Erin", "erin hello")
	_, erinReq := w.waitRequest("Erin", erinSince)
	expiring := time.Now()

	w.waitHeld(reqID, 3)
	w.requireNoPortal("Dave", "dave one", "dave two", "dave three")
	w.adminCommand("gov-approve "+reqID, "Request #"+reqID+" approved: 3 held message(s) delivered")
	w.requireDelivered(w.portal("Dave"), sent)

	told, err := w.sam.WaitMessage(ctx, w.mgmt, MessageFilter{Sender: w.s.BotID, BodyContains: "Nobody approved in time bridging your Telegram chat with Erin Outside", Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("the staff member was not told of the expiry: %v", err)
	}
	t.Logf("request #%s (approval_ttl 5s) expired, staff told %s after the notice", erinReq, time.Since(expiring).Round(time.Millisecond))
	if !strings.Contains(told.Body(), "request #"+erinReq) || strings.Contains(told.Body(), "erin hello") {
		t.Errorf("expiry notice to the staff member: %q", told.Body())
	}
	if _, err = w.admin.WaitMessage(ctx, w.adminRoom, MessageFilter{Sender: w.s.BotID, BodyContains: "Request #" + erinReq + " expired unanswered"}); err != nil {
		t.Errorf("the admins were not told of the expiry: %v", err)
	}
	w.adminCommand("gov-approve "+erinReq, "already decided")
	w.send("Erin", "erin again")
	w.barrier()
	w.requireNoPortal("Erin", "erin hello", "erin again")
}

// portalGuard: the admins have power level 100 in the portal; the staff
// member's attempts to change or remove the encryption, to edit the bridge
// state event and to kick the bot are refused by the homeserver or undone by
// the gateway, and the next bridged message is still megolm ciphertext.
func (w *govWorld) portalGuard(t *testing.T) {
	ctx := w.s.Ctx()
	room := w.portals["Alice"]
	adminID := "@" + govAdmin + ":localhost"
	pl, err := w.sam.RoomState(ctx, room, "m.room.power_levels", "")
	if err != nil || pl == nil {
		t.Fatalf("portal power levels: %v, %v", pl, err)
	}
	users, _ := pl.Content["users"].(map[string]any)
	if lvl, _ := users[adminID].(float64); lvl != 100 {
		t.Errorf("the admin has power level %v in the portal, want 100 (power levels %v)", users[adminID], pl.Content)
	}
	bridgeStates, err := w.sam.RoomStateAll(ctx, room, "m.bridge")
	if err != nil || len(bridgeStates) == 0 {
		t.Fatalf("no m.bridge state in the portal: %v", err)
	}
	bridgeKey := bridgeStates[0].StateKey

	// attempt sends a forbidden state change as the staff member: the
	// homeserver refuses it, or the gateway undoes it and says so. Either
	// way the portal is as it was afterwards. It reports whether the
	// homeserver accepted the change.
	attempt := func(what, evType, stateKey string, content map[string]any, notice string, restored func() bool) (accepted bool) {
		t.Helper()
		before := w.countBotMessages(room, notice)
		start := time.Now()
		_, err := w.sam.SendEvent(ctx, room, evType, content, &stateKey)
		if err != nil {
			if !strings.Contains(err.Error(), "M_FORBIDDEN") && !strings.Contains(err.Error(), "403") {
				t.Errorf("%s: failed, but not as refused: %v", what, err)
			}
			t.Logf("%s: refused by the homeserver", what)
		} else if notice == "" {
			t.Errorf("%s: accepted by the homeserver", what)
		} else {
			for w.countBotMessages(room, notice) == before {
				if time.Since(start) > 15*time.Second {
					t.Fatalf("%s: accepted by the homeserver, and no notice %q from the gateway", what, notice)
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s: accepted by the homeserver, undone by the gateway with a notice in %s", what, time.Since(start).Round(time.Millisecond))
		}
		for !restored() {
			if time.Since(start) > 15*time.Second {
				t.Fatalf("%s: the portal was not put back", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return err == nil
	}
	megolm := func() bool {
		enc, err := w.sam.RoomState(ctx, room, "m.room.encryption", "")
		return err == nil && enc != nil && enc.Content["algorithm"] == "m.megolm.v1.aes-sha2"
	}
	bridgeIntact := func() bool {
		st, err := w.sam.RoomState(ctx, room, "m.bridge", bridgeKey)
		return err == nil && st != nil && st.Content["bridgebot"] == w.s.BotID
	}
	botJoined := func() bool {
		members, err := w.sam.RoomMembers(ctx, room)
		if err != nil {
			return false
		}
		for _, m := range members {
			if m.UserID == w.s.BotID {
				return m.Membership == "join"
			}
		}
		return false
	}
	attempts := func() (accepted []string) {
		const encNotice = "Changing or removing this room's encryption is not allowed in bridged rooms: the gateway undid it"
		for _, a := range []struct {
			what, evType, stateKey string
			content                map[string]any
			notice                 string
			restored               func() bool
		}{
			{"changing the encryption algorithm", "m.room.encryption", "", map[string]any{"algorithm": "m.olm.v1.curve25519-aes-sha2"}, encNotice, megolm},
			{"removing the encryption", "m.room.encryption", "", map[string]any{}, encNotice, megolm},
			{"editing m.bridge", "m.bridge", bridgeKey, map[string]any{"bridgebot": "@sam:localhost", "protocol": map[string]any{"id": "none"}},
				"Editing this room's bridge information is not allowed in bridged rooms: the gateway undid it", bridgeIntact},
			// Guard rejoins a kicked bot without a notice; the homeserver
			// refuses the kick anyway (the bot has 9001).
			{"kicking the bot", "m.room.member", w.s.BotID, map[string]any{"membership": "leave"}, "", botJoined},
		} {
			if attempt(a.what, a.evType, a.stateKey, a.content, a.notice, a.restored) {
				accepted = append(accepted, a.what)
			}
		}
		return accepted
	}

	// With the power level bridgev2 gives staff, the homeserver refuses.
	if accepted := attempts(); len(accepted) != 0 {
		t.Logf("accepted by the homeserver at the staff's default power level: %v", accepted)
	}

	// An admin joins and raises the staff member to power level 100: the
	// homeserver now lets encryption and m.bridge changes through, and the
	// gateway undoes them (the bot, at 9001, still cannot be kicked).
	if err := w.sam.Invite(ctx, room, adminID); err != nil {
		t.Fatalf("the staff member cannot invite the admin into the portal: %v", err)
	}
	if _, err := w.admin.WaitInvite(ctx, w.sam.UserID, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.admin.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	pl, err = w.admin.RoomState(ctx, room, "m.room.power_levels", "")
	if err != nil || pl == nil {
		t.Fatalf("portal power levels: %v", err)
	}
	pl.Content["users"].(map[string]any)["@sam:localhost"] = 100
	if _, err = w.admin.SendEvent(ctx, room, "m.room.power_levels", pl.Content, new(string)); err != nil {
		t.Fatalf("the admin could not change power levels in the portal: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		pl, err := w.sam.RoomState(ctx, room, "m.room.power_levels", "")
		if err == nil && pl != nil && pl.Content["users"].(map[string]any)["@sam:localhost"] == float64(100) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the admin's power level change did not stick: %v", pl)
		}
		time.Sleep(200 * time.Millisecond)
	}
	accepted := attempts()
	for _, what := range []string{"changing the encryption algorithm", "removing the encryption", "editing m.bridge"} {
		if !slices.Contains(accepted, what) {
			t.Errorf("at power level 100, %s was refused by the homeserver: the gateway's undo was not exercised", what)
		}
	}

	// A contact's message sent right after a removal that the homeserver
	// accepted, before the gateway's undo, still leaves encrypted.
	stateKey := ""
	if _, err := w.sam.SendEvent(ctx, room, "m.room.encryption", map[string]any{}, &stateKey); err != nil {
		t.Fatalf("at power level 100, removing the encryption was refused: %v", err)
	}
	inWindow := w.sendAndWait("Alice", "sent while the encryption was being removed")
	if err := w.sam.RequireEncryptedOnServer(ctx, room, inWindow.EventID); err != nil {
		t.Errorf("a message bridged while staff removed the encryption: %v", err)
	}
	for deadline := time.Now().Add(15 * time.Second); !megolm(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the encryption was not put back")
		}
	}

	// The next bridged message is still encrypted with megolm.
	ev := w.sendAndWait("Alice", "after the attempts")
	if err := w.sam.RequireEncryptedOnServer(ctx, room, ev.EventID); err != nil {
		t.Error(err)
	}
}

// outboundRefused: a deny rule added at runtime refuses the staff member's
// next message in an existing portal, with a notice, and nothing reaches
// Telegram; start-chat with an identifier the config's +7 rule refuses is
// refused too.
func (w *govWorld) outboundRefused(t *testing.T) {
	ctx := w.s.Ctx()
	room := w.portals["Alice"]
	alice := w.contacts["Alice"]
	// Allowed first: the portal works outbound.
	if _, err := w.sam.Send(ctx, room, "before the rule"); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := w.sim.WaitMessage(waitCtx, w.staff.ID, alice.ID, func(m tgsim.Message) bool { return m.Text == "before the rule" }); err != nil {
		t.Fatalf("an allowed message did not reach Telegram: %v", err)
	}

	added := w.adminCommand("gov-deny-rule telegram_username=alice_outside comment=left-the-project", "Added runtime policy rule #")
	ruleRef := regexp.MustCompile(`runtime policy rule #\d+`).FindString(added.Body())
	evtID, err := w.sam.Send(ctx, room, "this must not leave")
	if err != nil {
		t.Fatal(err)
	}
	notice, err := w.sam.WaitMessage(ctx, room, MessageFilter{Sender: w.s.BotID, After: evtID, MsgType: "m.notice"})
	if err != nil {
		t.Fatalf("no refusal notice in the portal: %v", err)
	}
	if !strings.Contains(notice.Body(), "does not allow this chat on Telegram") || !strings.Contains(notice.Body(), ruleRef) {
		t.Errorf("refusal notice %q, want the policy and %q named", notice.Body(), ruleRef)
	}
	for _, m := range w.sim.Messages(w.staff.ID, alice.ID) {
		if m.Text == "this must not leave" {
			t.Error("a refused message reached Telegram")
		}
	}

	// start-chat with a +7 number, and with that person's username.
	for _, ident := range []string{"+79160000001", "@ivan_outside"} {
		ans := w.s.Command(w.sam, w.mgmt, "start-chat "+ident)
		if !strings.Contains(ans.Body(), "does not allow this chat") || strings.Contains(ans.Body(), "Created chat") {
			t.Errorf("start-chat %s answered %q", ident, ans.Body())
		}
	}
	w.requireNoPortal("Ivan")
	if n := len(w.sim.Messages(w.staff.ID, w.contacts["Ivan"].ID)); n != 0 {
		t.Errorf("%d messages between the staff member and Ivan on Telegram", n)
	}
}

// adminAPI: the HTTP admin API of the running gateway refuses calls without
// the right token; with it, the contacts include the approved contacts
// (never any message content), the log has the decisions, and verifies.
func (w *govWorld) adminAPI(t *testing.T) {
	base := w.s.Gateway.URL + "/_passerelle/governance/v1/"
	get := func(path, auth string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(w.s.Ctx(), http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}
	for _, c := range []struct{ name, auth string }{
		{"no token", ""},
		{"wrong token", "Bearer not-the-token"},
		{"not a bearer token", "Basic " + govAPIToken},
	} {
		if code, _, body := get("contacts", c.auth); code != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d, want 401: %s", c.name, code, body)
		}
	}
	auth := "Bearer " + govAPIToken
	contents := []string{"alice one", "alice two", "bob one", "carol secret", "dave one", "dave three", "erin hello", "erin again",
		"this must not leave", "before the rule", "after the attempts"}

	code, _, body := get("contacts", auth)
	if code != http.StatusOK {
		t.Fatalf("contacts: HTTP %d: %s", code, body)
	}
	contacts, err := audit.ParseContacts(bytes.NewReader(body), audit.FormatJSON)
	if err != nil {
		t.Fatalf("contacts: %v\n%s", err, body)
	}
	byUsername := map[string]audit.Contact{}
	for _, c := range contacts {
		byUsername[c.Username] = c
	}
	for _, name := range []string{"Alice", "Bob", "Dave"} {
		c, ok := byUsername[strings.ToLower(name)+"_outside"]
		if !ok {
			t.Errorf("%s is not in the contacts: %s", name, body)
			continue
		}
		if c.Network != "telegram" || c.MessagesIn == 0 || len(c.Links) == 0 || c.Links[0].Staff != "@sam:localhost" {
			t.Errorf("%s in the contacts: %+v", name, c)
		}
	}
	if c := byUsername["alice_outside"]; c.Phone != "+15550200" || c.MessagesOut != 1 {
		t.Errorf("Alice in the contacts: phone %q, %d message(s) out, want +15550200 and 1", c.Phone, c.MessagesOut)
	}

	code, _, logBody := get("log?format=json&limit=1000", auth) // one page: the whole log of this run
	if code != http.StatusOK {
		t.Fatalf("log: HTTP %d: %s", code, logBody)
	}
	entries, err := audit.ParseEntries(bytes.NewReader(logBody), audit.FormatJSON)
	if err != nil {
		t.Fatalf("log: %v", err)
	}
	seen := map[audit.Action]int{}
	for _, e := range entries {
		seen[e.Action]++
	}
	for action, want := range map[audit.Action]int{
		audit.ActionLogin: 1, audit.ActionRequestCreated: 5, audit.ActionRequestApproved: 3, audit.ActionRequestDenied: 1,
		audit.ActionRequestExpired: 1, audit.ActionPortalCreated: 3, audit.ActionPolicyChanged: 1,
	} {
		if seen[action] != want {
			t.Errorf("the audit log has %d %s entries, want %d", seen[action], action, want)
		}
	}
	if seen[audit.ActionPolicyDenied] == 0 {
		t.Errorf("the audit log has no policy_denied entry (%v)", seen)
	}
	t.Logf("audit log: %d entries %v", len(entries), seen)

	code, header, csv := get("export/contacts?format=csv", auth)
	if code != http.StatusOK || !strings.Contains(header.Get("Content-Disposition"), "attachment") {
		t.Errorf("CSV export of contacts: HTTP %d, %v", code, header)
	}
	for _, text := range contents {
		for what, b := range map[string][]byte{"contacts": body, "log": logBody, "contacts CSV": csv} {
			if bytes.Contains(b, []byte(text)) {
				t.Errorf("message content %q is in the %s", text, what)
			}
		}
	}

	code, _, verify := get("verify", auth)
	if code != http.StatusOK || !bytes.Contains(verify, []byte(`"ok":true`)) {
		t.Errorf("verify: HTTP %d: %s", code, verify)
	}
	if ans := w.adminCommand("gov-verify", "audit log"); !strings.Contains(ans.Body(), "The audit log verifies") {
		t.Errorf("gov-verify: %q", ans.Body())
	}
}
