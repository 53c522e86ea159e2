package admin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// refusedWorld is one network's side of the outbound conformance test: a
// logged-in staff member with a portal to an outside contact.
type refusedWorld struct {
	e        *env
	r        *running
	login    *bridgev2.UserLogin
	roomID   id.RoomID
	ghost    id.UserID
	denyRule string // the gov-deny-rule arguments that refuse the contact
	startID  string // the identifier to start a chat with the contact
	// sentToContact lists what the contact received from the staff member.
	sentToContact func() []string
}

// outboundCases are everything a staff member can do in a portal. Each must
// be refused, with a failed message status, when the outbound check refuses
// the chat — also kinds a connector does not bridge yet, so that a new kind
// that forgets to ask the check is caught here.
var outboundCases = []struct {
	name string
	evt  func(room id.RoomID, own, theirs id.EventID) (event.Type, any)
}{
	{"text", func(id.RoomID, id.EventID, id.EventID) (event.Type, any) {
		return event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "refused text"}
	}},
	{"emote", func(id.RoomID, id.EventID, id.EventID) (event.Type, any) {
		return event.EventMessage, &event.MessageEventContent{MsgType: event.MsgEmote, Body: "refuses"}
	}},
	{"notice", func(id.RoomID, id.EventID, id.EventID) (event.Type, any) {
		return event.EventMessage, &event.MessageEventContent{MsgType: event.MsgNotice, Body: "refused notice"}
	}},
	{"file", func(id.RoomID, id.EventID, id.EventID) (event.Type, any) {
		return event.EventMessage, &event.MessageEventContent{MsgType: event.MsgFile, Body: "report.pdf", URL: "mxc://test/report",
			Info: &event.FileInfo{MimeType: "application/pdf", Size: 1234}}
	}},
	{"image", func(id.RoomID, id.EventID, id.EventID) (event.Type, any) {
		return event.EventMessage, &event.MessageEventContent{MsgType: event.MsgImage, Body: "photo.jpg", URL: "mxc://test/photo",
			Info: &event.FileInfo{MimeType: "image/jpeg", Size: 5678, Width: 10, Height: 10}}
	}},
	{"edit", func(_ id.RoomID, own, _ id.EventID) (event.Type, any) {
		return event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "* refused edit",
			NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "refused edit"},
			RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: own}}
	}},
	{"reaction", func(_ id.RoomID, _, theirs id.EventID) (event.Type, any) {
		return event.EventReaction, &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: theirs, Key: "👍"}}
	}},
	{"redaction", func(_ id.RoomID, own, _ id.EventID) (event.Type, any) {
		return event.EventRedaction, &event.RedactionEventContent{Redacts: own}
	}},
}

// runOutboundConformance sends one allowed message, has an admin refuse the
// contact, then tries every outbound case and starting a chat: each is
// refused with a failed status, the text kinds with a notice in the room,
// and nothing more reaches the contact.
func runOutboundConformance(t *testing.T, w *refusedWorld) {
	ctx := context.Background()
	theirs := w.e.mx.MessagesFrom(w.ghost)
	if len(theirs) == 0 {
		t.Fatal("the contact's message is not in the portal")
	}
	w.r.sendMatrix(w.roomID, "$allowed", "allowed before the rule")
	if !poll(20*time.Second, func() bool { return strings.Join(w.sentToContact(), "|") == "allowed before the rule" }) {
		t.Fatalf("the allowed message did not reach the contact: %q", w.sentToContact())
	}
	out := w.r.command(t, w.e, adminMXID, w.e.adminRoom(), "gov-deny-rule "+w.denyRule)
	if !strings.Contains(out, "Added runtime policy rule") {
		t.Fatalf("gov-deny-rule: %q", out)
	}
	for i, tc := range outboundCases {
		evtID := id.EventID(fmt.Sprintf("$refused-%d", i))
		typ, content := tc.evt(w.roomID, "$allowed", theirs[0].EventID)
		evt := &event.Event{Type: typ, RoomID: w.roomID, Sender: staffMXID, ID: evtID, Timestamp: time.Now().UnixMilli(),
			Content: event.Content{Parsed: content}}
		if red, ok := content.(*event.RedactionEventContent); ok {
			evt.Redacts = red.Redacts
		}
		w.r.mx.Inject(ctx, evt)
		if !poll(10*time.Second, func() bool { return len(w.e.mx.StatusesOf(evtID)) > 0 }) {
			t.Errorf("%s: no message status", tc.name)
			continue
		}
		st := w.e.mx.StatusesOf(evtID)[0]
		if st.Status == event.MessageStatusSuccess {
			t.Errorf("%s: status %s, want a failure", tc.name, st.Status)
		}
		switch {
		case refusedByBridge(st.InternalError):
			// bridgev2 refused it before the connector: the kind is not
			// bridged (yet). Once it is, the connector must refuse it.
			t.Logf("%s: refused by bridgev2 before the connector (%s: %s)", tc.name, st.ErrorReason, st.InternalError)
		case !st.SendNotice || !strings.Contains(st.Message, "does not allow this chat"):
			t.Errorf("%s: status %+v, want a notice that the policy refuses the chat", tc.name, st)
		}
	}
	_, err := w.login.Client.(bridgev2.IdentifierResolvingNetworkAPI).ResolveIdentifier(ctx, w.startID, true)
	var resp bridgev2.RespError
	if !errors.As(err, &resp) || resp.StatusCode != 403 {
		t.Errorf("start chat with the refused contact: %v", err)
	}
	if got := strings.Join(w.sentToContact(), "|"); got != "allowed before the rule" {
		t.Fatalf("the contact received %q after the rule", got)
	}
}

func TestOutboundConformanceTelegram(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), nil)
	r := e.start()
	login := e.loginStaff(r)
	e.send(e.bob, "hello")
	e.waitBodies(e.bob, "hello")
	portal, err := r.br.GetExistingPortalByKey(context.Background(), e.portalKey(e.bob))
	if err != nil || portal == nil {
		t.Fatal(err)
	}
	runOutboundConformance(t, &refusedWorld{
		e: e, r: r, login: login, roomID: portal.MXID, ghost: e.ghost(e.bob),
		denyRule: "telegram_username=bob_outside", startID: "@bob_outside",
		sentToContact: func() []string { return e.sentBy(e.alice, e.bob) },
	})
}

func TestOutboundConformanceWhatsApp(t *testing.T) {
	w := newWAEnv(t, dbtest.SQLite(t), nil)
	r := w.start()
	login := w.loginStaff(r)
	w.send(waBob, "hello")
	w.waitBodiesFrom(waBob, "hello")
	portal, err := r.br.GetExistingPortalByKey(context.Background(), w.portalKey(waBob))
	if err != nil || portal == nil {
		t.Fatal(err)
	}
	runOutboundConformance(t, &refusedWorld{
		e: w.env, r: r.running, login: login, roomID: portal.MXID, ghost: waGhost(waBob),
		denyRule: "phone=+" + waBob + " network=whatsapp", startID: "+" + waBob,
		sentToContact: func() []string { return w.sentBy(waAlice, waBob) },
	})
}

// refusedByBridge tells bridgev2's own refusals of what a connector does not
// bridge: those never reach the connector.
func refusedByBridge(err error) bool {
	for _, known := range []error{bridgev2.ErrUnsupportedMessageType, bridgev2.ErrIgnoringMNotice, bridgev2.ErrEditsNotSupported,
		bridgev2.ErrReactionsNotSupported, bridgev2.ErrRedactionsNotSupported} {
		if err != nil && (errors.Is(err, known) || err.Error() == known.Error()) {
			return true
		}
	}
	return false
}
