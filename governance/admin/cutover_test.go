package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

const bobMatrix id.UserID = "@bob:matrix.partner.example"

var newRoomInReply = regexp.MustCompile(`\((![^ ,)]+), encrypted`)

// tombstoneOf returns the replacement room of the portal's tombstone, if
// it has one.
func tombstoneOf(mx *fakematrix.Matrix, roomID id.RoomID) id.RoomID {
	content := mx.State(roomID, event.StateTombstone, "")
	if content == nil {
		return ""
	}
	if ts, ok := content.Parsed.(*event.TombstoneEventContent); ok {
		return ts.ReplacementRoom
	}
	return ""
}

// checkNativeRoom checks what the people of a native room see: encrypted,
// the expected members invited (the bot gone), each of admins with power
// 100.
func checkNativeRoom(t *testing.T, mx *fakematrix.Matrix, roomID id.RoomID, invited []id.UserID, admins []id.UserID) {
	t.Helper()
	enc := mx.State(roomID, event.StateEncryption, "")
	if enc == nil {
		t.Fatalf("the native room %s is not encrypted", roomID)
	}
	if c, ok := enc.Parsed.(*event.EncryptionEventContent); !ok || c.Algorithm != id.AlgorithmMegolmV1 {
		t.Errorf("native room encryption: %+v", enc.Parsed)
	}
	members := mx.Members(roomID)
	for _, u := range invited {
		if m := members[u]; m != event.MembershipInvite && m != event.MembershipJoin {
			t.Errorf("%s in the native room: %q, want invited", u, m)
		}
	}
	for u, m := range members {
		if (m == event.MembershipInvite || m == event.MembershipJoin) && !slices.Contains(invited, u) {
			t.Errorf("%s is %s in the native room: only %v should be", u, m, invited)
		}
	}
	pl := mx.PowerLevels(roomID)
	for _, u := range admins {
		if pl == nil || pl.GetUserLevel(u) != 100 {
			t.Errorf("%s's power level in the native room is not 100", u)
		}
	}
}

// TestCutOverDMTelegram: with the real Telegram connector, a staff member
// cannot cut over a chat whose contact is not linked (told why), nor can
// someone else; once an admin links the contact, the staff member runs
// cut-over in the portal: the contact gets the final message on Telegram,
// the portal has a tombstone pointing at a new encrypted room where the
// staff member and the contact are invited admins, and the admin sees the
// chat cut over (gov-migration chat, staff, contact, API). A Matrix message
// in the old portal is refused with a notice naming the new room and never
// reaches Telegram. A late message from the contact is delivered in the
// portal and the contact gets one reminder; another within the interval
// gets none; after the interval, one more.
func TestCutOverDMTelegram(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		// Bob also talks with Dave, another staff member: Dave's chat is his
		// own and is not cut over with Alice's.
		dave, err := e.sim.CreateAccount(tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave", LastName: "Staff", Username: "dave_staff"})
		if err != nil {
			t.Fatal(err)
		}
		daveLogin := e.loginAs(r, daveMXID, dave)
		e.send(e.bob, "hello from bob")
		e.waitBodies(e.bob, "hello from bob")
		if _, err = e.sim.SendMessage(e.bob.ID, dave.ID, "hi dave", nil); err != nil {
			t.Fatal(err)
		}
		e.waitBodies(e.bob, "hello from bob", "hi dave")
		r.waitRegistered(t, e.bob)
		davePortal, err := r.br.GetExistingPortalByKey(ctx, networkid.PortalKey{ID: e.portalKey(e.bob).ID, Receiver: daveLogin.ID})
		if err != nil || davePortal == nil || davePortal.MXID == "" {
			t.Fatalf("Dave's portal with Bob: %v, %v", davePortal, err)
		}
		portal, err := r.br.GetExistingPortalByKey(ctx, e.portalKey(e.bob))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("Bob's portal: %v, %v", portal, err)
		}
		room := portal.MXID
		// The registry records the contact just after the message is bridged.
		if !poll(10*time.Second, func() bool { _, err := r.gv.Migration.Resolve(ctx, "@bob_outside"); return err == nil }) {
			t.Fatal("Bob never reached the contact registry")
		}

		out := r.command(t, e, staffMXID, room, "cut-over")
		if !strings.Contains(out, "Cut-over refused") || !strings.Contains(out, "not linked in the directory") {
			t.Fatalf("cut-over of an unlinked contact: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration cut-over @nobody_here")
		if !strings.Contains(out, "not in the contact registry") {
			t.Errorf("gov-migration cut-over of an unknown contact: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-directory add @bob_outside "+string(bobMatrix))
		if !strings.Contains(out, "is linked to") {
			t.Fatalf("gov-directory add: %q", out)
		}
		out = r.command(t, e, otherMXID, room, "cut-over")
		if !strings.Contains(out, "Only a staff member of this chat") {
			t.Errorf("cut-over by someone else: %q", out)
		}

		out = r.command(t, e, staffMXID, room, "cut-over")
		m := newRoomInReply.FindStringSubmatch(out)
		if !strings.Contains(out, "Cut over: this chat moved to") || m == nil {
			t.Fatalf("cut-over: %q", out)
		}
		newRoom := id.RoomID(m[1])
		final := "I've moved to Matrix: reach me at https://matrix.to/#/" + string(newRoom) + "?via=test"
		if !e.mx.Eventually(20*time.Second, func() bool { return slices.Contains(e.sentBy(e.alice, e.bob), final) }) {
			t.Fatalf("Bob never got the final message on Telegram; got %q", e.sentBy(e.alice, e.bob))
		}
		if got := tombstoneOf(e.mx, room); got != newRoom {
			t.Errorf("the portal's tombstone points at %q, want %q", got, newRoom)
		}
		checkNativeRoom(t, e.mx, newRoom, []id.UserID{staffMXID, bobMatrix}, []id.UserID{staffMXID, bobMatrix})
		out = r.command(t, e, staffMXID, room, "cut-over")
		if !strings.Contains(out, "already cut over") {
			t.Errorf("second cut-over: %q", out)
		}

		// What the admin sees.
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration contact @bob_outside")
		if !strings.Contains(out, "**cut_over**") {
			t.Errorf("gov-migration contact after cut-over: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration chat "+string(room))
		if !strings.Contains(out, "**cut over** to "+string(newRoom)) || !strings.Contains(out, "Bob Outside @bob_outside: **cut_over**") {
			t.Errorf("gov-migration chat: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration staff "+string(staffMXID))
		if !strings.Contains(out, "chat cut over to "+string(newRoom)) {
			t.Errorf("gov-migration staff: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration staff not-an-id")
		if !strings.Contains(out, "not a valid Matrix user ID") {
			t.Errorf("gov-migration staff with a bad ID: %q", out)
		}
		h := r.gv.APIHandler()
		rec := apiSend(h, http.MethodGet, "migration/cutovers", "")
		var list struct {
			CutOvers []migration.CutOver `json:"cutovers"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.CutOvers) != 1 ||
			list.CutOvers[0].NewRoom != newRoom || list.CutOvers[0].Kind != migration.KindDM || list.CutOvers[0].Staff != staffMXID {
			t.Errorf("GET migration/cutovers: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodGet, "migration/chat?portal="+string(room), "")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), string(newRoom)) {
			t.Errorf("GET migration/chat: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodGet, "migration/staff?matrix_id="+string(staffMXID), "")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"status":"cut_over"`) {
			t.Errorf("GET migration/staff: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodPost, "migration/cut-over", `{"identity":"@bob_outside","staff":"@alice:test"}`)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "already cut over") {
			t.Errorf("POST migration/cut-over again: %d %s", rec.Code, rec.Body)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionCutOver}})
		if err != nil || len(entries) != 1 || entries[0].Actor != string(staffMXID) || !strings.Contains(string(entries[0].Details), string(newRoom)) {
			t.Errorf("cut_over audit entries: %+v, %v", entries, err)
		}

		// The old portal refuses new messages, with a notice naming the new room.
		r.sendMatrix(room, "$after-cutover", "still there?")
		notice := e.waitNotice(room, "moved to a native Matrix room on")
		if !strings.Contains(notice.Content.Body, string(newRoom)) {
			t.Errorf("refusal notice: %q", notice.Content.Body)
		}
		if slices.Contains(e.sentBy(e.alice, e.bob), "still there?") {
			t.Error("a message in the cut-over portal reached Telegram")
		}

		// Dave's chat with Bob is not cut over: his message goes out.
		r.mx.Inject(ctx, &event.Event{
			Type: event.EventMessage, RoomID: davePortal.MXID, Sender: daveMXID, ID: "$dave-after", Timestamp: time.Now().UnixMilli(),
			Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "dave still here"}},
		})
		if !e.mx.Eventually(20*time.Second, func() bool { return slices.Contains(e.sentBy(dave, e.bob), "dave still here") }) {
			t.Error("Dave's message in his own chat with Bob never reached Telegram")
		}
		if tombstoneOf(e.mx, davePortal.MXID) != "" {
			t.Error("Dave's portal was tombstoned with Alice's")
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration staff "+string(daveMXID))
		if !strings.Contains(out, "Bob Outside @bob_outside: **cut_over**") || strings.Contains(out, "chat cut over") {
			t.Errorf("gov-migration staff for Dave: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration cut-over @bob_outside")
		if !strings.Contains(out, "talks with several staff members") {
			t.Errorf("gov-migration cut-over of a contact of two staff members: %q", out)
		}

		// Late messages: delivered, with one reminder per interval.
		reminders := func() int {
			n := 0
			for _, s := range e.sentBy(e.alice, e.bob) {
				if strings.HasPrefix(s, "This chat has moved to Matrix: reach me at https://matrix.to/#/"+string(newRoom)) {
					n++
				}
			}
			return n
		}
		e.send(e.bob, "are you there?")
		e.waitBodies(e.bob, "hello from bob", "hi dave", "are you there?")
		if !e.mx.Eventually(20*time.Second, func() bool { return reminders() == 1 }) {
			t.Fatalf("reminders after a late message: %d, want 1; sent %q", reminders(), e.sentBy(e.alice, e.bob))
		}
		// A restart forgets neither the cut-over nor the last reminder.
		r.stop()
		r = e.start()
		e.waitConnected()
		refusals := func() int {
			return len(e.mx.MessagesWhere(func(m fakematrix.Message) bool {
				return m.RoomID == room && strings.Contains(m.Content.Body, "Nothing was sent; write there")
			}))
		}
		before := refusals()
		r.sendMatrix(room, "$after-restart", "after the restart")
		if !e.mx.Eventually(20*time.Second, func() bool { return refusals() == before+1 }) {
			t.Fatal("no refusal notice after the restart")
		}
		if slices.Contains(e.sentBy(e.alice, e.bob), "after the restart") {
			t.Error("a message in the cut-over portal reached Telegram after a restart")
		}
		e.send(e.bob, "hello?")
		e.waitBodies(e.bob, "hello from bob", "hi dave", "are you there?", "hello?")
		// The gate decides on a reminder after the message is on Matrix;
		// updates of one account are handled in order, so once Carol's
		// later message is on Matrix, the decision for "hello?" was taken
		// (on the clock before it moves).
		e.send(e.carol, "a marker from carol")
		e.waitBodies(e.carol, "a marker from carol")
		e.clk.Advance(25 * time.Hour)
		e.send(e.bob, "a day later")
		got := e.waitBodies(e.bob, "hello from bob", "hi dave", "are you there?", "hello?", "a day later")
		// The staff member sees each reminder as a reply to the message that
		// caused it; reminders go out in order, so once the one answering
		// "a day later" is there, any for "hello?" would be too.
		reminderNotices := func() []fakematrix.Message {
			return e.mx.MessagesWhere(func(m fakematrix.Message) bool {
				return m.RoomID == room && strings.HasPrefix(m.Content.Body, "Reminder sent to the contact")
			})
		}
		if !e.mx.Eventually(20*time.Second, func() bool {
			n := reminderNotices()
			return len(n) > 0 && n[len(n)-1].Content.RelatesTo.GetReplyTo() == got[4].EventID
		}) {
			t.Fatalf("no reminder answering the message after the interval; reminders: %+v", reminderNotices())
		}
		notices := reminderNotices()
		if len(notices) != 2 || notices[0].Content.RelatesTo.GetReplyTo() != got[2].EventID {
			t.Errorf("reminders in the portal: %d, want 2 (for %q and %q, none within the interval)", len(notices), "are you there?", "a day later")
		}
		if !e.mx.Eventually(20*time.Second, func() bool { return reminders() == 2 }) {
			t.Errorf("reminders on Telegram: %d, want 2", reminders())
		}
	})
}

// TestCutOverDMWhatsApp: with the real WhatsApp connector, an admin cuts
// over a staff member's chat with a linked contact by the contact's number
// (gov-migration cut-over +number): the contact gets the final message on
// WhatsApp, the portal's tombstone points at an encrypted room where the
// staff member and the contact are invited; the staff member's next Matrix
// message is refused with a notice naming the room and never reaches
// WhatsApp; a late message from the contact is delivered with a reminder.
func TestCutOverDMWhatsApp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, nil)
		r := w.start()
		w.loginStaff(r)
		w.send(waBob, "hello")
		w.waitBodiesFrom(waBob, "hello")
		portal, err := r.br.GetExistingPortalByKey(ctx, w.portalKey(waBob))
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("Bob's portal: %v, %v", portal, err)
		}
		room := portal.MXID
		if !poll(10*time.Second, func() bool { _, err := r.gv.Migration.Resolve(ctx, "+"+waBob); return err == nil }) {
			t.Fatal("Bob never reached the contact registry")
		}
		out := r.command(t, w.env, adminMXID, w.adminRoom(), "gov-migration cut-over +"+waBob)
		if !strings.Contains(out, "not linked in the directory") {
			t.Fatalf("cut-over of an unlinked contact: %q", out)
		}
		out = r.command(t, w.env, adminMXID, w.adminRoom(), "gov-directory add +"+waBob+" "+string(bobMatrix))
		if !strings.Contains(out, "is linked to") {
			t.Fatalf("gov-directory add: %q", out)
		}
		h := r.gv.APIHandler()
		for body, want := range map[string]int{
			`{"identity":"+15550009999"}`: http.StatusNotFound,
			`{"portal":"!nowhere:test"}`:  http.StatusNotFound,
			`{}`:                          http.StatusBadRequest,
			`not json`:                    http.StatusBadRequest,
		} {
			if rec := apiSend(h, http.MethodPost, "migration/cut-over", body); rec.Code != want {
				t.Errorf("POST migration/cut-over %s: %d %s, want %d", body, rec.Code, rec.Body, want)
			}
		}
		out = r.command(t, w.env, adminMXID, w.adminRoom(), "gov-migration cut-over +"+waBob+" @nobody:test")
		if !strings.Contains(out, "has no direct chat with @nobody:test") {
			t.Errorf("cut-over with the wrong staff member: %q", out)
		}
		out = r.command(t, w.env, adminMXID, w.adminRoom(), "gov-migration cut-over +"+waBob+" "+string(staffMXID))
		m := newRoomInReply.FindStringSubmatch(out)
		if !strings.Contains(out, "Cut over: this chat moved to") || m == nil {
			t.Fatalf("gov-migration cut-over: %q", out)
		}
		newRoom := id.RoomID(m[1])
		final := "I've moved to Matrix: reach me at https://matrix.to/#/" + string(newRoom) + "?via=test"
		if !w.mx.Eventually(20*time.Second, func() bool { return slices.Contains(w.sentBy(waAlice, waBob), final) }) {
			t.Fatalf("Bob never got the final message on WhatsApp; got %q", w.sentBy(waAlice, waBob))
		}
		if got := tombstoneOf(w.mx, room); got != newRoom {
			t.Errorf("the portal's tombstone points at %q, want %q", got, newRoom)
		}
		checkNativeRoom(t, w.mx, newRoom, []id.UserID{staffMXID, bobMatrix}, []id.UserID{staffMXID, bobMatrix})
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionCutOver}})
		if err != nil || len(entries) != 1 || entries[0].Actor != string(adminMXID) {
			t.Errorf("cut_over audit entries: %+v, %v", entries, err)
		}

		r.sendMatrix(room, "$after-cutover", "still there?")
		notice := w.waitNotice(room, "moved to a native Matrix room on")
		if !strings.Contains(notice.Content.Body, string(newRoom)) {
			t.Errorf("refusal notice: %q", notice.Content.Body)
		}
		if slices.Contains(w.sentBy(waAlice, waBob), "still there?") {
			t.Error("a message in the cut-over portal reached WhatsApp")
		}
		w.send(waBob, "are you there?")
		w.waitBodiesFrom(waBob, "hello", "are you there?")
		reminder := "This chat has moved to Matrix: reach me at https://matrix.to/#/" + string(newRoom) + "?via=test. Messages sent here still arrive for now."
		if !w.mx.Eventually(20*time.Second, func() bool { return slices.Contains(w.sentBy(waAlice, waBob), reminder) }) {
			t.Fatalf("Bob never got the reminder on WhatsApp; got %q", w.sentBy(waAlice, waBob))
		}
	})
}

// TestCutOverGroupTelegram: in a Telegram supergroup with two outside
// members, one linked and one not, cut-over creates nothing: it names the
// missing member, in its reply and in a notice pinned in the portal; once
// the member is linked, cut-over creates an encrypted room with the staff
// member (admin) and both contacts invited, posts the final message in the
// group on Telegram, tombstones the portal, and refuses new Matrix messages
// there.
func TestCutOverGroupTelegram(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		e.loginStaff(r)
		group, err := e.sim.CreateChannel(tgsim.ChannelSpec{Title: "Suppliers", Creator: e.bob.ID, Members: []int64{e.alice.ID, e.carol.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = e.sim.ChannelPost(group.ID, e.bob.ID, "bob in the group", ""); err != nil {
			t.Fatal(err)
		}
		e.waitBodies(e.bob, "bob in the group")
		if _, err = e.sim.ChannelPost(group.ID, e.carol.ID, "carol in the group", ""); err != nil {
			t.Fatal(err)
		}
		e.waitBodies(e.carol, "carol in the group")
		msgs := e.mx.MessagesWithBody("carol in the group")
		room := msgs[0].RoomID
		if !poll(10*time.Second, func() bool {
			_, errB := r.gv.Migration.Resolve(ctx, "@bob_outside")
			_, errC := r.gv.Migration.Resolve(ctx, "@carol_press")
			return errB == nil && errC == nil
		}) {
			t.Fatal("the group's members never reached the contact registry")
		}
		out := r.command(t, e, adminMXID, e.adminRoom(), "gov-directory add @bob_outside "+string(bobMatrix))
		if !strings.Contains(out, "is linked to") {
			t.Fatalf("gov-directory add: %q", out)
		}

		out = r.command(t, e, staffMXID, room, "cut-over")
		if !strings.Contains(out, "Not yet: 1 member(s) still need a Matrix account: Carol Press @carol_press") {
			t.Fatalf("cut-over with a missing member: %q", out)
		}
		pinned := e.mx.State(room, event.StatePinnedEvents, "")
		var pins []id.EventID
		if pinned != nil {
			if c, ok := pinned.Parsed.(*event.PinnedEventsEventContent); ok {
				pins = c.Pinned
			}
		}
		notice, ok := e.mx.MessageContaining(room, "still need a Matrix account in the organisation's directory")
		if !ok || len(pins) != 1 || pins[0] != notice.EventID || !strings.Contains(notice.Content.Body, "Carol Press @carol_press") ||
			strings.Contains(notice.Content.Body, "Bob") {
			t.Fatalf("pinned missing notice: pins %v, notice %+v", pins, notice)
		}
		if tombstoneOf(e.mx, room) != "" {
			t.Fatal("a group with a missing member was tombstoned")
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration chat "+string(room))
		if !strings.Contains(out, "group") || !strings.Contains(out, "**bridged**") || !strings.Contains(out, "Carol Press @carol_press: **bridged**; not linked") {
			t.Errorf("gov-migration chat of the waiting group: %q", out)
		}

		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-directory add @carol_press @carol:example.org")
		if !strings.Contains(out, "is linked to") {
			t.Fatalf("gov-directory add: %q", out)
		}
		out = r.command(t, e, staffMXID, room, "cut-over")
		m := newRoomInReply.FindStringSubmatch(out)
		if !strings.Contains(out, "Cut over: this chat moved to") || m == nil {
			t.Fatalf("cut-over of the group: %q", out)
		}
		newRoom := id.RoomID(m[1])
		final := "I've moved to Matrix: reach me at https://matrix.to/#/" + string(newRoom) + "?via=test"
		if !e.mx.Eventually(20*time.Second, func() bool {
			for _, cm := range e.sim.ChannelMessages(group.ID) {
				if cm.From == e.alice.ID && cm.Text == final {
					return true
				}
			}
			return false
		}) {
			t.Fatalf("the final message never reached the Telegram group: %+v", e.sim.ChannelMessages(group.ID))
		}
		if got := tombstoneOf(e.mx, room); got != newRoom {
			t.Errorf("the group portal's tombstone points at %q, want %q", got, newRoom)
		}
		checkNativeRoom(t, e.mx, newRoom, []id.UserID{staffMXID, bobMatrix, "@carol:example.org"}, []id.UserID{staffMXID})
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration summary")
		if !strings.Contains(out, "cut_over 2") {
			t.Errorf("gov-migration summary after the group's cut-over: %q", out)
		}

		r.sendMatrix(room, "$group-after-cutover", "anyone?")
		e.waitNotice(room, "moved to a native Matrix room on")
		for _, cm := range e.sim.ChannelMessages(group.ID) {
			if cm.Text == "anyone?" {
				t.Error("a message in the cut-over group portal reached Telegram")
			}
		}
		// A late message in the group is delivered, and the group reminded.
		if _, err = e.sim.ChannelPost(group.ID, e.carol.ID, "late in the group", ""); err != nil {
			t.Fatal(err)
		}
		e.waitBodies(e.carol, "carol in the group", "late in the group")
		reminder := "This chat has moved to Matrix: reach me at https://matrix.to/#/" + string(newRoom) + "?via=test. Messages sent here still arrive for now."
		if !e.mx.Eventually(20*time.Second, func() bool {
			for _, cm := range e.sim.ChannelMessages(group.ID) {
				if cm.From == e.alice.ID && cm.Text == reminder {
					return true
				}
			}
			return false
		}) {
			t.Errorf("the group never got the reminder: %+v", e.sim.ChannelMessages(group.ID))
		}
	})
}

// TestCutOverDoublePuppet: with double puppeting on, the staff member
// creates the native room themselves (a direct, encrypted room inviting the
// contact, added to their m.direct); when their m.direct already has a room
// with just them and the contact, that room is reused.
func TestCutOverDoublePuppet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		e.mx.EnableDoublePuppet()
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		e.waitBodies(e.bob, "hello from bob")
		e.send(e.carol, "hello from carol")
		e.waitBodies(e.carol, "hello from carol")
		if !poll(10*time.Second, func() bool {
			_, errB := r.gv.Migration.Resolve(ctx, "@bob_outside")
			_, errC := r.gv.Migration.Resolve(ctx, "@carol_press")
			return errB == nil && errC == nil
		}) {
			t.Fatal("the contacts never reached the contact registry")
		}
		const carolMatrix id.UserID = "@carol:example.org"
		for _, cmd := range []string{"gov-directory add @bob_outside " + string(bobMatrix), "gov-directory add @carol_press " + string(carolMatrix)} {
			if out := r.command(t, e, adminMXID, e.adminRoom(), cmd); !strings.Contains(out, "is linked to") {
				t.Fatalf("%s: %q", cmd, out)
			}
		}
		// Alice already has a direct room with Carol (and an old one that
		// someone else joined since).
		crowded, err := e.mx.Intent(staffMXID).CreateRoom(ctx, &mautrix.ReqCreateRoom{BeeperInitialMembers: []id.UserID{carolMatrix, otherMXID}})
		if err != nil {
			t.Fatal(err)
		}
		existing, err := e.mx.Intent(staffMXID).CreateRoom(ctx, &mautrix.ReqCreateRoom{IsDirect: true, BeeperInitialMembers: []id.UserID{carolMatrix}})
		if err != nil {
			t.Fatal(err)
		}
		if err = e.mx.SetAccountData(staffMXID, event.AccountDataDirectChats.Type, map[id.UserID][]id.RoomID{carolMatrix: {crowded, existing}}); err != nil {
			t.Fatal(err)
		}

		bobRoom, carolRoom := portalRoom(t, r, e.portalKey(e.bob)), portalRoom(t, r, e.portalKey(e.carol))
		out := r.command(t, e, staffMXID, bobRoom, "cut-over")
		m := newRoomInReply.FindStringSubmatch(out)
		if !strings.Contains(out, "created as you (double puppeting)") || m == nil {
			t.Fatalf("cut-over with double puppeting: %q", out)
		}
		newRoom := id.RoomID(m[1])
		var created *fakematrix.Room
		for _, room := range e.mx.Rooms() {
			if room.ID == newRoom {
				created = &room
			}
		}
		if created == nil || created.Creator != staffMXID || !created.Request.IsDirect || !slices.Contains(created.Request.Invite, bobMatrix) {
			t.Fatalf("the native room was not created by Alice as a direct chat with Bob: %+v", created)
		}
		checkNativeRoom(t, e.mx, newRoom, []id.UserID{staffMXID, bobMatrix}, nil)
		var direct map[id.UserID][]id.RoomID
		if err = json.Unmarshal(e.mx.AccountData(staffMXID, event.AccountDataDirectChats.Type), &direct); err != nil || !slices.Contains(direct[bobMatrix], newRoom) {
			t.Errorf("Alice's m.direct after the cut-over: %v, %v", direct, err)
		}
		if got := tombstoneOf(e.mx, bobRoom); got != newRoom {
			t.Errorf("Bob's portal's tombstone points at %q, want %q", got, newRoom)
		}

		// An admin cuts over the rest of Alice's linked contacts at once:
		// Carol, whose direct room with Alice is reused.
		rooms := len(e.mx.Rooms())
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration cut-over --all-linked "+string(staffMXID))
		if !strings.Contains(out, "1 chat(s) of @alice:test") || !strings.Contains(out, "Carol Press @carol_press: Cut over: this chat moved to https://matrix.to/#/"+string(existing)) {
			t.Fatalf("cut-over --all-linked with an existing direct room: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration cut-over --all-linked "+string(staffMXID))
		if !strings.Contains(out, "no direct chat with a linked contact left to cut over") {
			t.Errorf("cut-over --all-linked when everything is cut over: %q", out)
		}
		if got := tombstoneOf(e.mx, carolRoom); got != existing {
			t.Errorf("Carol's portal's tombstone points at %q, want the existing room %q", got, existing)
		}
		if n := len(e.mx.Rooms()); n != rooms {
			t.Errorf("%d rooms were created although Alice had a direct room with Carol", n-rooms)
		}
		final := "I've moved to Matrix: reach me at https://matrix.to/#/" + string(existing) + "?via=test"
		if !e.mx.Eventually(20*time.Second, func() bool { return slices.Contains(e.sentBy(e.alice, e.carol), final) }) {
			t.Errorf("Carol never got the final message; got %q", e.sentBy(e.alice, e.carol))
		}
	})
}

func portalRoom(t *testing.T, r *running, key networkid.PortalKey) id.RoomID {
	t.Helper()
	portal, err := r.br.GetExistingPortalByKey(context.Background(), key)
	if err != nil || portal == nil || portal.MXID == "" {
		t.Fatalf("portal %v: %v, %v", key, portal, err)
	}
	return portal.MXID
}

// TestCutOverHashed: in hashed mode (contact_hash_key), an admin links a
// contact and cuts over the staff member's chat with them by username:
// the contact gets the final message, the portal is tombstoned and refuses
// new messages, and the staff member's view shows the chat cut over, under
// the pseudonyms the registry keeps.
func TestCutOverHashed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) { cfg.ContactHashKey = "a-hash-key-of-at-least-32-bytes-for-cutover" })
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		e.waitBodies(e.bob, "hello from bob")
		room := portalRoom(t, r, e.portalKey(e.bob))
		if !poll(10*time.Second, func() bool { _, err := r.gv.Migration.Resolve(ctx, "@bob_outside"); return err == nil }) {
			t.Fatal("Bob never reached the contact registry")
		}
		if out := r.command(t, e, adminMXID, e.adminRoom(), "gov-directory add @bob_outside "+string(bobMatrix)); !strings.Contains(out, "is linked to") {
			t.Fatalf("gov-directory add: %q", out)
		}
		out := r.command(t, e, adminMXID, e.adminRoom(), "gov-migration cut-over @bob_outside")
		m := newRoomInReply.FindStringSubmatch(out)
		if !strings.Contains(out, "Cut over: this chat moved to") || m == nil {
			t.Fatalf("gov-migration cut-over in hashed mode: %q", out)
		}
		newRoom := id.RoomID(m[1])
		final := "I've moved to Matrix: reach me at https://matrix.to/#/" + string(newRoom) + "?via=test"
		if !e.mx.Eventually(20*time.Second, func() bool { return slices.Contains(e.sentBy(e.alice, e.bob), final) }) {
			t.Fatalf("Bob never got the final message; got %q", e.sentBy(e.alice, e.bob))
		}
		if got := tombstoneOf(e.mx, room); got != newRoom {
			t.Errorf("tombstone points at %q, want %q", got, newRoom)
		}
		r.sendMatrix(room, "$hashed-after", "still there?")
		e.waitNotice(room, "moved to a native Matrix room on")
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration staff "+string(staffMXID))
		if !strings.Contains(out, "chat cut over to "+string(newRoom)) || strings.Contains(out, e.bob.Phone) || strings.Contains(out, "u"+strconv.FormatInt(e.bob.ID, 10)) {
			t.Errorf("gov-migration staff in hashed mode: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "gov-migration chat "+string(room))
		if !strings.Contains(out, "**cut over** to "+string(newRoom)) {
			t.Errorf("gov-migration chat in hashed mode: %q", out)
		}
	})
}
