package whatsapp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// TestDescribeUsersAndChats: the gateway learns a contact's number and name
// (also when it only has the contact's LID), the other user of a direct
// chat, and a group's name.
func TestDescribeUsersAndChats(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	d := ul.Client.(remote.Describer)

	if _, err := srv.SendText(ctx, bobPh, alicePh, "hello"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Bob's message", func(m fakematrix.Message) bool { return m.Content.Body == "hello" })
	bob, _ := srv.Account(bobPh)
	for _, userID := range []networkid.UserID{"whatsapp." + bobPh, networkid.UserID("whatsapp.lid-" + bob.LID.User)} {
		ident, err := d.DescribeRemoteUser(ctx, userID)
		if err != nil || ident.ID != "whatsapp."+bobPh || ident.Phone != "+"+bobPh || ident.DisplayName != "Bob" {
			t.Errorf("DescribeRemoteUser(%s) = %+v, %v", userID, ident, err)
		}
	}
	// A LID the store cannot map keeps its ID and has no number.
	if ident, err := d.DescribeRemoteUser(ctx, "whatsapp.lid-987654321"); err != nil || ident.ID != "whatsapp.lid-987654321" || ident.Phone != "" {
		t.Errorf("unknown LID: %+v, %v", ident, err)
	}
	if _, err := d.DescribeRemoteUser(ctx, "telegram.12345"); err == nil {
		t.Error("a Telegram ID was described as a WhatsApp user")
	}

	dm, err := d.DescribeChat(ctx, mustKey(t, "whatsapp."+bobPh, ul))
	if err != nil || dm.IsGroup || dm.OtherUser != "whatsapp."+bobPh {
		t.Errorf("DescribeChat(DM) = %+v, %v", dm, err)
	}
	gid, err := srv.CreateGroup(ctx, bobPh, "Project", "Weekly sync", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	groupKey := mustKey(t, "whatsapp.g-"+strings.TrimSuffix(gid, "@g.us"), ul)
	group, err := d.DescribeChat(ctx, groupKey)
	if err != nil || !group.IsGroup || group.Name != "Project" || group.OtherUser != "" {
		t.Errorf("DescribeChat(group) = %+v, %v", group, err)
	}
	time.Sleep(200 * time.Millisecond)
}

// TestHeldMessagesKeepOrderTimestampAndSender holds messages the way the
// governance gate does (their payload only), then delivers them much later
// from their payloads: they arrive in order, from the right ghosts and
// rooms, with their original IDs and timestamps.
func TestHeldMessagesKeepOrderTimestampAndSender(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	var mu sync.Mutex
	var held []remote.Holdable
	tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		if h, ok := evt.(remote.Holdable); ok {
			mu.Lock()
			held = append(held, h)
			mu.Unlock()
			return bridgev2.EventHandlingResultSuccess
		}
		return remote.Direct(login, evt)
	})
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	gid, err := srv.CreateGroup(ctx, bobPh, "Project", "", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	waitHeld := func(n int) {
		t.Helper()
		if !tb.mx.Eventually(waitLong, func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == n }) {
			t.Fatalf("%d messages held, want %d", len(held), n)
		}
	}
	if _, err = srv.SendText(ctx, bobPh, alicePh, "one"); err != nil {
		t.Fatal(err)
	}
	waitHeld(1)
	time.Sleep(1100 * time.Millisecond) // WhatsApp timestamps are whole seconds
	if _, err = srv.SendGroupText(ctx, carolPh, gid, "in the group", nil); err != nil {
		t.Fatal(err)
	}
	waitHeld(2)
	if _, err = srv.SendText(ctx, bobPh, alicePh, "two"); err != nil {
		t.Fatal(err)
	}
	waitHeld(3)
	if m, found := tb.mx.FindMessage(func(m fakematrix.Message) bool { return m.Sender == bobGhost || m.Sender == carolGhst }); found {
		t.Errorf("a held message reached Matrix: %+v", m.Content)
	}

	type original struct {
		payload []byte
		id      networkid.MessageID
		ts      time.Time
	}
	mu.Lock()
	var origs []original
	for _, h := range held {
		p, err := h.HoldPayload()
		if err != nil {
			t.Fatal(err)
		}
		origs = append(origs, original{p, h.(bridgev2.RemoteMessage).GetID(), h.(bridgev2.RemoteEventWithTimestamp).GetTimestamp()})
	}
	mu.Unlock()
	if !origs[0].ts.Before(origs[2].ts) {
		t.Fatalf("timestamps %s and %s are not distinct", origs[0].ts, origs[2].ts)
	}

	// Bad payloads are refused.
	dec := ul.Client.(remote.HeldEventDecoder)
	other := &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "whatsapp.15559999999"}}
	if _, err = dec.DecodeHeldEvent(ctx, other, origs[0].payload); !errors.Is(err, ErrBadHeldPayload) {
		t.Errorf("payload decoded for another login: %v", err)
	}
	if _, err = dec.DecodeHeldEvent(ctx, ul, []byte(`{"v":99}`)); !errors.Is(err, ErrBadHeldPayload) {
		t.Errorf("unknown payload version: %v", err)
	}

	time.Sleep(1100 * time.Millisecond) // delivery time differs from the original
	for i, o := range origs {
		evt, err := dec.DecodeHeldEvent(ctx, ul, o.payload)
		if err != nil {
			t.Fatalf("DecodeHeldEvent %d: %v", i, err)
		}
		if got := evt.(bridgev2.RemoteMessage).GetID(); got != o.id {
			t.Errorf("held message %d decoded with ID %s, want %s", i, got, o.id)
		}
		if res := ul.QueueRemoteEvent(evt); !res.Success {
			t.Fatalf("delivering held message %d: %+v", i, res)
		}
	}
	want := []struct {
		sender id.UserID
		body   string
	}{{bobGhost, "one"}, {carolGhst, "in the group"}, {bobGhost, "two"}}
	var got []fakematrix.Message
	if !tb.mx.Eventually(waitLong, func() bool {
		got = got[:0]
		for _, m := range tb.mx.Messages() {
			if m.Sender == bobGhost || m.Sender == carolGhst {
				got = append(got, m)
			}
		}
		return len(got) >= len(want)
	}) {
		t.Fatalf("delivered messages: %d, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Sender != w.sender || got[i].Content.Body != w.body || !got[i].TS.Equal(origs[i].ts) {
			t.Errorf("delivered message %d: %s %q at %s, want %s %q at %s", i, got[i].Sender, got[i].Content.Body, got[i].TS, w.sender, w.body, origs[i].ts)
		}
	}
	if got[0].RoomID != got[2].RoomID || got[0].RoomID == got[1].RoomID {
		t.Errorf("rooms of the delivered messages: %s, %s, %s", got[0].RoomID, got[1].RoomID, got[2].RoomID)
	}
	time.Sleep(200 * time.Millisecond)
}

// TestOutboundCheck: the connector asks the check before sending a Matrix
// message and before starting a chat; a refusal is explained in the room
// and nothing reaches WhatsApp.
func TestOutboundCheck(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	var mu sync.Mutex
	var asked []remote.Outbound
	tb.conn.SetOutboundCheck(func(_ context.Context, out remote.Outbound) error {
		mu.Lock()
		asked = append(asked, out)
		mu.Unlock()
		if out.Remote == "whatsapp."+carolPh {
			return &remote.Refusal{Reason: "Chats with Carol are not allowed."}
		}
		return nil
	})
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)

	if _, err := srv.SendText(ctx, bobPh, alicePh, "hi"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Bob's message", func(m fakematrix.Message) bool { return m.Content.Body == "hi" })
	bobPortal, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
	if err != nil || bobPortal == nil {
		t.Fatal(bobPortal, err)
	}
	tb.sendMatrix(t, ul, bobPortal, &event.MessageEventContent{MsgType: event.MsgText, Body: "allowed"})
	mu.Lock()
	last := asked[len(asked)-1]
	mu.Unlock()
	if last.Kind != remote.OutboundMessage || last.Remote != "whatsapp."+bobPh || last.Portal != bobPortal || last.Login != ul {
		t.Errorf("check asked %+v", last)
	}

	carolKey := mustKey(t, "whatsapp."+carolPh, ul)
	carolPortal, err := tb.br.GetPortalByKey(ctx, carolKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ul.Client.HandleMatrixMessage(ctx, &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
		Event:   &event.Event{ID: "$refused", Sender: testUser, Type: event.EventMessage},
		Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "must not leave"},
		Portal:  carolPortal,
	}})
	var st bridgev2.MessageStatus
	if !errors.As(err, &st) || !st.SendNotice || !st.IsCertain || st.Status != event.MessageStatusFail || st.Message != "Chats with Carol are not allowed." {
		t.Errorf("refused message: %v (%+v)", err, st)
	}

	api := ul.Client.(bridgev2.IdentifierResolvingNetworkAPI)
	var respErr bridgev2.RespError
	if _, err = api.ResolveIdentifier(ctx, "+"+carolPh, true); !errors.As(err, &respErr) || respErr.StatusCode != 403 || respErr.Err != "Chats with Carol are not allowed." {
		t.Errorf("start chat with a refused number: %v", err)
	}
	mu.Lock()
	last = asked[len(asked)-1]
	mu.Unlock()
	if last.Kind != remote.OutboundNewChat || last.PortalKey != carolKey || last.Remote != "whatsapp."+carolPh {
		t.Errorf("check asked %+v", last)
	}
	// Looking the number up without starting a chat is not checked.
	if res, err := api.ResolveIdentifier(ctx, "+"+carolPh, false); err != nil || res.UserID != "whatsapp."+carolPh {
		t.Errorf("resolve without a chat: %+v, %v", res, err)
	}

	if _, err = srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool { return m.Text() == "allowed" }); err != nil {
		t.Fatalf("the allowed message did not reach Bob: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, m := range srv.Messages() {
		if m.To == carolPh || m.Text() == "must not leave" {
			t.Errorf("a refused message reached WhatsApp: %+v", m)
		}
	}
}

// TestHeldConversationRoundTrip holds a chat's edits, reactions and revokes
// with its messages (as the gate does while the chat waits for approval),
// then rebuilds them from their payloads alone: they are described, keep
// their kind, target and time, and are bridged in order.
func TestHeldConversationRoundTrip(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	var mu sync.Mutex
	var held []remote.Holdable
	tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		if h, ok := evt.(remote.Holdable); ok {
			mu.Lock()
			held = append(held, h)
			mu.Unlock()
			return bridgev2.EventHandlingResultSuccess
		}
		return remote.Direct(login, evt)
	})
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	waitHeld := func(n int) {
		t.Helper()
		if !tb.mx.Eventually(waitLong, func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == n }) {
			t.Fatalf("%d events held, want %d", len(held), n)
		}
	}
	q, err := srv.SendText(ctx, bobPh, alicePh, "question")
	if err != nil {
		t.Fatal(err)
	}
	waitHeld(1)
	steps := []func() (string, error){
		func() (string, error) { return srv.SendEdit(ctx, bobPh, alicePh, q, "question?") },
		func() (string, error) { return srv.SendReaction(ctx, bobPh, alicePh, bobPh, q, "❓") },
		func() (string, error) { return srv.SendText(ctx, bobPh, alicePh, "second") },
	}
	for i, step := range steps {
		if _, err = step(); err != nil {
			t.Fatal(err)
		}
		waitHeld(i + 2)
	}
	mu.Lock()
	second := held[3].(bridgev2.RemoteMessage).GetID()
	mu.Unlock()
	secondKey, _ := waid.ParseMessageID(second)
	if _, err = srv.SendRevoke(ctx, bobPh, alicePh, bobPh, secondKey.ID); err != nil {
		t.Fatal(err)
	}
	waitHeld(5)
	if len(tb.mx.Messages()) != 0 || len(tb.mx.Reactions()) != 0 || len(tb.mx.Redactions()) != 0 {
		t.Fatal("a held event reached Matrix")
	}

	dec := ul.Client.(remote.HeldEventDecoder)
	wantTypes := []bridgev2.RemoteEventType{bridgev2.RemoteEventMessageUpsert, bridgev2.RemoteEventEdit,
		bridgev2.RemoteEventReaction, bridgev2.RemoteEventMessageUpsert, bridgev2.RemoteEventMessageRemove}
	mu.Lock()
	payloads := make([][]byte, len(held))
	for i, h := range held {
		if payloads[i], err = h.HoldPayload(); err != nil || len(payloads[i]) > 4096 {
			t.Fatalf("payload %d: %d bytes, %v", i, len(payloads[i]), err)
		}
	}
	mu.Unlock()
	for i, p := range payloads {
		evt, err := dec.DecodeHeldEvent(ctx, ul, p)
		if err != nil {
			t.Fatalf("DecodeHeldEvent %d: %v", i, err)
		}
		if evt.GetType() != wantTypes[i] {
			t.Errorf("held event %d decoded as %s, want %s", i, evt.GetType(), wantTypes[i])
		}
		d, ok := evt.(remote.Described)
		if !ok || d.RemoteChat().OtherUser != "whatsapp."+bobPh || d.RemoteSender().Phone != "+"+bobPh {
			t.Errorf("held event %d described as %+v / %+v", i, d.RemoteChat(), d.RemoteSender())
		}
		if _, ok = evt.(remote.Holdable); !ok {
			t.Errorf("held event %d is not holdable again", i)
		}
		if res := ul.QueueRemoteEvent(evt); !res.Success {
			t.Fatalf("delivering held event %d: %+v", i, res)
		}
	}
	var question fakematrix.Message
	if !tb.mx.Eventually(waitLong, func() bool {
		var ok bool
		question, ok = tb.mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "question" })
		return ok && len(tb.mx.Redactions()) == 1
	}) {
		t.Fatalf("delivered: %d messages, %d redactions", len(tb.mx.Messages()), len(tb.mx.Redactions()))
	}
	if _, ok := tb.mx.FindMessage(func(m fakematrix.Message) bool {
		return m.Replaces() == question.EventID && m.Content.NewContent.Body == "question?"
	}); !ok {
		t.Error("the held edit was not bridged")
	}
	if rs := tb.mx.Reactions(); len(rs) != 1 || rs[0].Target != question.EventID || rs[0].Sender != bobGhost {
		t.Errorf("the held reaction: %+v", rs)
	}
	secondMsg, _ := tb.mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "second" })
	if tb.mx.Redactions()[0].Redacts != secondMsg.EventID {
		t.Errorf("the held revoke redacted %s, want %s", tb.mx.Redactions()[0].Redacts, secondMsg.EventID)
	}
	_ = srv.AwaitReceipts(ctx, alicePh)
}

// TestOutboundCheckConversation: edits, reactions and redactions ask the
// outbound check with their kind and target; a refused reaction fails with
// the reason and never reaches WhatsApp.
func TestOutboundCheckConversation(t *testing.T) {
	c := startConv(t)
	var mu sync.Mutex
	var asked []remote.Outbound
	c.tb.conn.SetOutboundCheck(func(_ context.Context, out remote.Outbound) error {
		mu.Lock()
		asked = append(asked, out)
		mu.Unlock()
		if out.Kind == remote.OutboundReaction {
			return &remote.Refusal{Reason: "Reactions are switched off here."}
		}
		return nil
	})
	_, b := c.contactSays(t, bobPh, alicePh, "hello")
	evtID, waID := c.aliceSays(t, b.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "hi"})
	c.inject(b.RoomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "* hi!",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "hi!"}, RelatesTo: (&event.RelatesTo{}).SetReplace(evtID)})
	c.sees(t, bobPh, alicePh, "the edit", func(es []wasim.ChatEntry) bool { e, _ := find(es, waID); return e.Edited })
	refused := c.inject(b.RoomID, event.EventReaction, &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: b.EventID, Key: "👍"}})
	c.failedStatus(t, refused, "Reactions are switched off here.")
	c.inject(b.RoomID, event.EventRedaction, &event.RedactionEventContent{Redacts: evtID})
	c.sees(t, bobPh, alicePh, "the revoke", func(es []wasim.ChatEntry) bool { e, _ := find(es, waID); return e.Revoked })
	for _, e := range c.srv.Conversation(bobPh, alicePh) {
		if len(e.Reactions) != 0 {
			t.Errorf("a refused reaction reached Bob: %+v", e)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	kinds := map[remote.OutboundKind]networkid.MessageID{}
	for _, out := range asked {
		kinds[out.Kind] = out.TargetMessage
	}
	bobMsg, _ := c.tb.br.DB.Message.GetPartByMXID(c.ctx, b.EventID)
	if kinds[remote.OutboundReaction] != bobMsg.ID || kinds[remote.OutboundEdit] == "" || kinds[remote.OutboundEdit] != kinds[remote.OutboundRedaction] {
		t.Errorf("check asked %+v", kinds)
	}
}
