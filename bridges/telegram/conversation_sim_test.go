package telegram

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"go.mau.fi/util/variationselector"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media/mediatest"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// convSetup is a logged-in bridge with a DM portal made by bob's "hello";
// bob sent "old question" before the account was bridged.
type convSetup struct {
	s          *tgsim.Server
	tb         *testBridge
	alice, bob *tgsim.Account
	ul         *bridgev2.UserLogin
	portal     *bridgev2.Portal
	old, hello tgsim.Message
	helloEvt   id.EventID
	bobMXID    id.UserID

	mu        sync.Mutex
	presences []remote.Presence
}

func newConvSetup(t *testing.T, db *dbtest.Backend) *convSetup {
	t.Helper()
	s := newSim(t)
	cs := &convSetup{s: s}
	cs.alice = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	cs.bob = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob", Premium: true})
	var err error
	if cs.old, err = s.SendMessage(cs.bob.ID, cs.alice.ID, "old question", nil); err != nil {
		t.Fatal(err)
	}
	backend := dbtest.SQLite(t)
	if db != nil {
		backend = *db
	}
	cs.tb = startBridge(t, s, backend.Open(t))
	cs.tb.conn.SetPresenceSink(func(_ context.Context, _ *bridgev2.UserLogin, p remote.Presence) {
		cs.mu.Lock()
		cs.presences = append(cs.presences, p)
		cs.mu.Unlock()
	})
	cs.ul = loginByPhone(t, cs.tb, s, cs.alice, "")
	waitConnected(t, cs.tb)
	if cs.hello, err = s.SendMessage(cs.bob.ID, cs.alice.ID, "hello", nil); err != nil {
		t.Fatal(err)
	}
	m, ok := cs.tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" })
	if !ok {
		t.Fatal("first message never reached Matrix")
	}
	cs.helloEvt = m.EventID
	cs.bobMXID = cs.tb.mx.FormatGhostMXID(tgid.MakeUserID(cs.bob.ID))
	key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: cs.bob.ID}), Receiver: cs.ul.ID}
	portal, err := cs.tb.br.GetExistingPortalByKey(context.Background(), key)
	if err != nil || portal == nil {
		t.Fatalf("portal: %v", err)
	}
	cs.portal = portal
	return cs
}

func (cs *convSetup) waitMsg(t *testing.T, what string, pred func(fakematrix.Message) bool) fakematrix.Message {
	t.Helper()
	m, ok := cs.tb.mx.WaitMessage(20*time.Second, pred)
	if !ok {
		t.Fatalf("%s never reached Matrix", what)
	}
	return m
}

func (cs *convSetup) waitSim(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cs.s.WaitFor(ctx, cond); err != nil {
		t.Fatalf("%s never reached Telegram: %v", what, err)
	}
}

// simMessage is the message of alice's chat with bob that pred accepts, as
// alice sees it (deleted ones included).
func (cs *convSetup) simMessage(pred func(tgsim.Message) bool) (tgsim.Message, bool) {
	for _, m := range cs.s.History(cs.alice.ID, cs.bob.ID) {
		if pred(m) {
			return m, true
		}
	}
	return tgsim.Message{}, false
}

func (cs *convSetup) inject(evt *event.Event) {
	evt.RoomID = cs.portal.MXID
	if evt.Sender == "" {
		evt.Sender = testUser
	}
	if evt.Timestamp == 0 {
		evt.Timestamp = time.Now().UnixMilli()
	}
	cs.tb.mx.Inject(context.Background(), evt)
}

func reactionsOf(mx *fakematrix.Matrix, target id.EventID) map[string]fakematrix.Reaction {
	redacted := map[id.EventID]bool{}
	for _, r := range mx.Redactions() {
		redacted[r.Redacts] = true
	}
	out := map[string]fakematrix.Reaction{}
	for _, r := range mx.Reactions() {
		if r.Target == target && !redacted[r.EventID] {
			out[variationselector.Remove(r.Key)] = r
		}
	}
	return out
}

// TestConversationTelegramToMatrix: what a contact does on Telegram shows
// in the portal: replies (also to a message older than the portal, with
// Telegram's quote), edits, reactions added, changed and removed (custom
// emoji with their fallback), deletions, reads, typing and presence.
func TestConversationTelegramToMatrix(t *testing.T) {
	cs := newConvSetup(t, nil)
	s, mx := cs.s, cs.tb.mx

	// A reply to a bridged message is a Matrix reply.
	if _, err := s.SendReply(cs.bob.ID, cs.alice.ID, "answer to hello", cs.hello.SenderMsgID, ""); err != nil {
		t.Fatal(err)
	}
	reply := cs.waitMsg(t, "reply", func(m fakematrix.Message) bool { return m.Content.Body == "answer to hello" })
	if got := reply.Content.RelatesTo.GetReplyTo(); got != cs.helloEvt {
		t.Errorf("reply relates to %q, want %q", got, cs.helloEvt)
	}
	// A reply to a message the gateway never saw shows Telegram's quote.
	if _, err := s.SendReply(cs.bob.ID, cs.alice.ID, "still waiting", cs.old.SenderMsgID, "old question"); err != nil {
		t.Fatal(err)
	}
	quoted := cs.waitMsg(t, "reply to an old message", func(m fakematrix.Message) bool { return strings.HasSuffix(m.Content.Body, "still waiting") })
	if quoted.Content.Body != "> old question\n\nstill waiting" || !strings.Contains(quoted.Content.FormattedBody, "<blockquote>old question</blockquote>") {
		t.Errorf("reply to an unknown message bridged as %q / %q", quoted.Content.Body, quoted.Content.FormattedBody)
	}
	if quoted.Content.RelatesTo.GetReplyTo() != "" {
		t.Errorf("reply to an unknown message relates to %q", quoted.Content.RelatesTo.GetReplyTo())
	}
	// A reply to an old message without a quote is a plain message.
	if _, err := s.SendReply(cs.bob.ID, cs.alice.ID, "plain one", cs.old.SenderMsgID, ""); err != nil {
		t.Fatal(err)
	}
	plain := cs.waitMsg(t, "plain reply", func(m fakematrix.Message) bool { return m.Content.Body == "plain one" })
	if plain.Content.RelatesTo.GetReplyTo() != "" {
		t.Errorf("reply without quote relates to %q", plain.Content.RelatesTo.GetReplyTo())
	}

	// An edit is an m.replace of the bridged event.
	if _, err := s.EditMessage(cs.bob.ID, cs.alice.ID, cs.hello.SenderMsgID, "hello there"); err != nil {
		t.Fatal(err)
	}
	edit := cs.waitMsg(t, "edit", func(m fakematrix.Message) bool { return m.Replaces() == cs.helloEvt })
	if edit.Content.NewContent == nil || edit.Content.NewContent.Body != "hello there" || edit.Sender != cs.bobMXID {
		t.Errorf("edit bridged as %+v from %s", edit.Content.NewContent, edit.Sender)
	}

	// Reactions: added, changed, several (bob has Premium), custom emoji,
	// removed.
	s.AddCustomEmoji(777, "🎉")
	if err := s.React(cs.bob.ID, cs.alice.ID, cs.hello.SenderMsgID, tgsim.Reaction{Emoji: "👍"}); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { _, ok := reactionsOf(mx, cs.helloEvt)["👍"]; return ok }) {
		t.Fatal("reaction never reached Matrix")
	}
	if r := reactionsOf(mx, cs.helloEvt)["👍"]; r.Sender != cs.bobMXID {
		t.Errorf("reaction from %s", r.Sender)
	}
	if err := s.React(cs.bob.ID, cs.alice.ID, cs.hello.SenderMsgID, tgsim.Reaction{Emoji: "❤"}, tgsim.Reaction{CustomEmojiID: 777}); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		rs := reactionsOf(mx, cs.helloEvt)
		_, heart := rs["❤"]
		_, party := rs["🎉"]
		_, thumb := rs["👍"]
		return heart && party && !thumb && len(rs) == 2
	}) {
		t.Fatalf("changed reactions on Matrix: %v", reactionsOf(mx, cs.helloEvt))
	}
	party := reactionsOf(mx, cs.helloEvt)["🎉"]
	var extra any
	for _, e := range mx.Events() {
		if e.EventID == party.EventID && e.Content != nil {
			extra = e.Content.Raw[customEmojiExtraKey]
		}
	}
	if extra != "777" {
		t.Errorf("custom emoji reaction carries %v, want its ID", extra)
	}
	if err := s.React(cs.bob.ID, cs.alice.ID, cs.hello.SenderMsgID); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return len(reactionsOf(mx, cs.helloEvt)) == 0 }) {
		t.Fatalf("removed reactions still on Matrix: %v", reactionsOf(mx, cs.helloEvt))
	}

	// A reaction to a message the gateway never saw is dropped quietly.
	before := len(mx.Reactions())
	if err := s.React(cs.bob.ID, cs.alice.ID, cs.old.SenderMsgID, tgsim.Reaction{Emoji: "👍"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendMessage(cs.bob.ID, cs.alice.ID, "after the old reaction", nil); err != nil {
		t.Fatal(err)
	}
	cs.waitMsg(t, "message after a reaction to an old message", func(m fakematrix.Message) bool { return m.Content.Body == "after the old reaction" })
	if n := len(mx.Reactions()); n != before {
		t.Errorf("a reaction to an unknown message was bridged (%d reactions, %d before)", n, before)
	}

	// A deletion redacts the bridged event.
	if err := s.DeleteMessages(cs.bob.ID, []int{cs.hello.SenderMsgID + 1}, true); err != nil { // "answer to hello"
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Redacted(reply.EventID) }) {
		t.Fatal("deletion never reached Matrix")
	}

	// The contact reads the staff member's message: the ghost's receipt.
	cs.inject(&event.Event{Type: event.EventMessage, ID: "$staff1", Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "from staff"}}})
	cs.waitSim(t, "staff message", func() bool {
		_, ok := cs.simMessage(func(m tgsim.Message) bool { return m.Text == "from staff" })
		return ok
	})
	if err := s.ReadHistory(cs.bob.ID, cs.alice.ID, 0); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		for _, r := range mx.Receipts() {
			if r.User == cs.bobMXID && r.EventID == "$staff1" {
				return true
			}
		}
		return false
	}) {
		t.Errorf("contact's read never reached Matrix: %+v", mx.Receipts())
	}

	// Typing and presence.
	if err := s.SetTyping(cs.bob.ID, cs.alice.ID); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		for _, ty := range mx.Typings() {
			if ty.User == cs.bobMXID && ty.RoomID == cs.portal.MXID && ty.Timeout > 0 {
				return true
			}
		}
		return false
	}) {
		t.Errorf("typing never reached Matrix: %+v", mx.Typings())
	}
	// None of it made a notice in the room.
	if notices := mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.MsgType == event.MsgNotice }); len(notices) != 0 {
		t.Errorf("notices in the room: %+v", notices[0].Content.Body)
	}
	lastPresence := func() (remote.Presence, bool) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if len(cs.presences) == 0 {
			return remote.Presence{}, false
		}
		return cs.presences[len(cs.presences)-1], true
	}
	if err := s.SetOnline(cs.bob.ID, true); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		p, ok := lastPresence()
		return ok && p.Online && p.User == tgid.MakeUserID(cs.bob.ID)
	}) {
		t.Errorf("online presence: %+v", cs.presences)
	}
	if err := s.SetOnline(cs.bob.ID, false); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		p, ok := lastPresence()
		return ok && !p.Online && !p.LastSeen.IsZero() && p.User == tgid.MakeUserID(cs.bob.ID)
	}) {
		t.Errorf("offline presence: %+v", cs.presences)
	}
}

// TestConversationMatrixToTelegram: what the staff member does in the
// portal reaches the contact: a reply, an edit (and a clear failure past
// the edit window), reactions added, changed and removed, a reaction
// Telegram refuses, a deletion for both sides, a read marker and typing.
func TestConversationMatrixToTelegram(t *testing.T) {
	cs := newConvSetup(t, nil)
	s, mx := cs.s, cs.tb.mx

	// Reply.
	cs.inject(&event.Event{Type: event.EventMessage, ID: "$r1", Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "staff reply", RelatesTo: (&event.RelatesTo{}).SetReplyTo(cs.helloEvt)}}})
	var sent tgsim.Message
	cs.waitSim(t, "reply", func() bool {
		var ok bool
		sent, ok = cs.simMessage(func(m tgsim.Message) bool { return m.Text == "staff reply" })
		return ok
	})
	if sent.ReplyToSenderMsgID != cs.hello.ID || sent.ReplyToID != cs.hello.SenderMsgID {
		t.Errorf("reply on Telegram answers %d/%d, want %d/%d", sent.ReplyToSenderMsgID, sent.ReplyToID, cs.hello.ID, cs.hello.SenderMsgID)
	}

	// Edit.
	cs.inject(&event.Event{Type: event.EventMessage, ID: "$e1", Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "* staff reply, edited",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "staff reply, edited"},
		RelatesTo:  (&event.RelatesTo{}).SetReplace("$r1")}}})
	cs.waitSim(t, "edit", func() bool {
		m, ok := cs.simMessage(func(m tgsim.Message) bool { return m.SenderMsgID == sent.SenderMsgID })
		return ok && m.Text == "staff reply, edited" && !m.Edited.IsZero()
	})
	// Past the edit window: a clear failure.
	s.SetEditWindow(time.Nanosecond)
	cs.inject(&event.Event{Type: event.EventMessage, ID: "$e2", Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "* too late",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "too late"},
		RelatesTo:  (&event.RelatesTo{}).SetReplace("$r1")}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.StatusesOf("$e2") {
			if st.ErrorReason == event.MessageStatusTooOld && strings.Contains(st.Error(), "too old to be edited") && st.SendNotice {
				return true
			}
		}
		return false
	}) {
		t.Errorf("late edit statuses: %+v", mx.StatusesOf("$e2"))
	}
	s.SetEditWindow(tgsim.DefaultEditWindow)
	// The echo of the edit was not bridged back.
	if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == "$r1" })); n != 0 {
		t.Errorf("the echo of a Matrix edit was bridged back %d times", n)
	}

	// Reactions: bob's message gets 👍, then ❤️ (alice has no Premium: one
	// reaction, the new one replaces the old), then none.
	helloSim := func() tgsim.Message {
		m, _ := cs.simMessage(func(m tgsim.Message) bool { return m.ID == cs.hello.ID })
		return m
	}
	aliceReactions := func() []string {
		var out []string
		for _, r := range helloSim().Reactions {
			if r.User == cs.alice.ID {
				out = append(out, r.Emoji)
			}
		}
		return out
	}
	react := func(evtID id.EventID, key string) {
		cs.inject(&event.Event{Type: event.EventReaction, ID: evtID, Content: event.Content{Parsed: &event.ReactionEventContent{
			RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: cs.helloEvt, Key: key}}}})
	}
	react("$re1", "👍")
	cs.waitSim(t, "reaction", func() bool { return strings.Join(aliceReactions(), ",") == "👍" })
	react("$re2", "❤️")
	cs.waitSim(t, "changed reaction", func() bool { return strings.Join(aliceReactions(), ",") == "❤" })
	cs.inject(&event.Event{Type: event.EventRedaction, ID: "$rd1", Redacts: "$re2", Content: event.Content{Parsed: &event.RedactionEventContent{Redacts: "$re2"}}})
	cs.waitSim(t, "reaction removal", func() bool { return len(aliceReactions()) == 0 })
	// A reaction Telegram cannot carry fails with a notice.
	react("$re3", "not an emoji")
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.StatusesOf("$re3") {
			if st.ErrorReason == event.MessageStatusUnsupported && st.SendNotice && strings.Contains(st.Error(), "is not a reaction that Telegram accepts") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("refused reaction statuses: %+v", mx.StatusesOf("$re3"))
	}

	// Deletion for both sides.
	cs.inject(&event.Event{Type: event.EventRedaction, ID: "$rd2", Redacts: "$r1", Content: event.Content{Parsed: &event.RedactionEventContent{Redacts: "$r1"}}})
	cs.waitSim(t, "deletion", func() bool {
		for _, m := range s.Messages(cs.bob.ID, cs.alice.ID) {
			if m.SenderMsgID == sent.SenderMsgID {
				return false
			}
		}
		return true
	})

	// Read marker: the contact sees how far the staff member read.
	if _, err := s.SendMessage(cs.bob.ID, cs.alice.ID, "read me", nil); err != nil {
		t.Fatal(err)
	}
	readMe := cs.waitMsg(t, "message to read", func(m fakematrix.Message) bool { return m.Content.Body == "read me" })
	cs.inject(&event.Event{Type: event.EphemeralEventReceipt, Mautrix: event.MautrixInfo{EventSource: event.SourceEphemeral}, Content: event.Content{Parsed: &event.ReceiptEventContent{
		readMe.EventID: {event.ReceiptTypeRead: {testUser: {Timestamp: time.Now()}}}}}})
	bobSide, _ := func() (tgsim.Message, bool) {
		for _, m := range s.Messages(cs.bob.ID, cs.alice.ID) {
			if m.Text == "read me" {
				return m, true
			}
		}
		return tgsim.Message{}, false
	}()
	cs.waitSim(t, "read marker", func() bool { return s.ReadState(cs.bob.ID, cs.alice.ID).ReadOutbox >= bobSide.SenderMsgID })

	// Typing.
	cs.inject(&event.Event{Type: event.EphemeralEventTyping, Mautrix: event.MautrixInfo{EventSource: event.SourceEphemeral}, Content: event.Content{Parsed: &event.TypingEventContent{UserIDs: []id.UserID{testUser}}}})
	cs.waitSim(t, "typing", func() bool {
		for _, ty := range s.TypingSeen(cs.bob.ID) {
			if ty.From == cs.alice.ID && ty.Action == "sendMessageTypingAction" {
				return true
			}
		}
		return false
	})

	// The connected login shows the staff member online
	// (account.updateStatus).
	cs.waitSim(t, "staff presence", func() bool { return s.Presence(cs.alice.ID).Online })
}

// TestConversationSignalsRefused: when the outbound check refuses signals,
// read markers and typing are dropped quietly, and a refused edit fails.
func TestConversationSignalsRefused(t *testing.T) {
	cs := newConvSetup(t, nil)
	askedPresence := make(chan struct{}, 8)
	cs.tb.conn.SetOutboundCheck(func(_ context.Context, out remote.Outbound) error {
		if out.Kind == remote.OutboundMessage {
			return nil
		}
		if out.Kind == remote.OutboundPresence {
			askedPresence <- struct{}{}
		}
		return &remote.Refusal{Reason: "not allowed here"}
	})
	c := cs.ul.Client.(*Client)
	ctx := context.Background()
	// Reconnected, the login asks before it shows the staff member online,
	// and is refused.
	if err := cs.s.SetOnline(cs.alice.ID, false); err != nil {
		t.Fatal(err)
	}
	c.Disconnect()
	c.Connect(ctx)
	select {
	case <-askedPresence:
	case <-time.After(20 * time.Second):
		t.Fatal("the reconnected login never asked to show the staff member online")
	}
	if err := c.HandleMatrixTyping(ctx, &bridgev2.MatrixTyping{Portal: cs.portal, IsTyping: true}); err != nil {
		t.Errorf("refused typing: %v", err)
	}
	if err := c.SetStaffPresence(ctx, true); err != nil {
		t.Errorf("refused presence: %v", err)
	}
	if n := len(cs.s.TypingSeen(cs.bob.ID)); n != 0 || cs.s.Presence(cs.alice.ID).Online {
		t.Errorf("refused signals reached Telegram: %d typing, presence %+v", n, cs.s.Presence(cs.alice.ID))
	}
	target, err := cs.tb.br.DB.Message.GetFirstPartByID(ctx, cs.ul.ID, c.messageID(tgid.Peer{Type: tgid.PeerUser, ID: cs.bob.ID}, cs.hello.ID))
	if err != nil || target == nil {
		t.Fatalf("hello not in the database: %v", err)
	}
	err = c.HandleMatrixReadReceipt(ctx, &bridgev2.MatrixReadReceipt{Portal: cs.portal, ExactMessage: target})
	if err != nil || cs.s.ReadState(cs.alice.ID, cs.bob.ID).ReadInbox != 0 {
		t.Errorf("refused read receipt: %v, read state %+v", err, cs.s.ReadState(cs.alice.ID, cs.bob.ID))
	}
	err = c.HandleMatrixMessageRemove(ctx, &bridgev2.MatrixMessageRemove{
		MatrixEventBase: bridgev2.MatrixEventBase[*event.RedactionEventContent]{Portal: cs.portal, Event: &event.Event{ID: "$x"}},
		TargetMessage:   target,
	})
	var ms bridgev2.MessageStatus
	if !errors.As(err, &ms) || ms.Message != "not allowed here" {
		t.Errorf("refused deletion: %v", err)
	}
}

// TestEditsAndDeletesWhileDown: a contact edits and deletes messages while
// the gateway is stopped; after the restart the edit and the redaction
// reach Matrix exactly once.
func TestEditsAndDeletesWhileDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db dbtest.Backend) {
		cs := newConvSetup(t, &db)
		s := cs.s
		gone, err := s.SendMessage(cs.bob.ID, cs.alice.ID, "to be deleted", nil)
		if err != nil {
			t.Fatal(err)
		}
		goneEvt := cs.waitMsg(t, "message", func(m fakematrix.Message) bool { return m.Content.Body == "to be deleted" }).EventID
		cs.tb.stop()

		// A message first: the edit and the deletion follow it in the pts
		// sequence, which is where gotd's manager loses them.
		if _, err := s.SendMessage(cs.bob.ID, cs.alice.ID, "before the edit", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.EditMessage(cs.bob.ID, cs.alice.ID, cs.hello.SenderMsgID, "hello, edited while down"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMessages(cs.bob.ID, []int{gone.SenderMsgID}, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SendMessage(cs.bob.ID, cs.alice.ID, "after the edit", nil); err != nil {
			t.Fatal(err)
		}
		tb2 := startBridge(t, s, db.Open(t))
		mx := tb2.mx
		if !mx.Eventually(30*time.Second, func() bool {
			return len(mx.MessagesWithBody("after the edit")) == 1 && len(mx.MessagesWithBody("before the edit")) == 1 && len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == cs.helloEvt })) == 1 &&
				len(mx.Redactions()) == 1
		}) {
			t.Fatalf("after restart: %d edits, redactions %+v", len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == cs.helloEvt })), mx.Redactions())
		}
		if r := mx.Redactions()[0]; r.Redacts != goneEvt {
			t.Errorf("redaction of %s, want %s", r.Redacts, goneEvt)
		}
		edit, _ := mx.FindMessage(func(m fakematrix.Message) bool { return m.Replaces() == cs.helloEvt })
		if edit.Content.NewContent == nil || edit.Content.NewContent.Body != "hello, edited while down" {
			t.Errorf("edit after restart: %+v", edit.Content.NewContent)
		}
		// Order: the edit and the deletion come before the message sent
		// after them (the other updates of a difference go before its new
		// messages, as gotd's manager orders them).
		var order []string
		for _, e := range mx.Events() {
			switch {
			case e.Type == event.EventRedaction:
				order = append(order, "delete")
			case e.Type == event.EventMessage:
				if c := msgContent(e); c != nil && c.RelatesTo.GetReplaceID() == cs.helloEvt {
					order = append(order, "edit")
				} else if c != nil && c.Body == "after the edit" {
					order = append(order, "after")
				}
			}
		}
		if strings.Join(order, ",") != "edit,delete,after" {
			t.Errorf("order after restart: %v", order)
		}
		// Nothing more comes with the next update.
		if _, err := s.SendMessage(cs.bob.ID, cs.alice.ID, "marker", nil); err != nil {
			t.Fatal(err)
		}
		cs.tb = tb2
		cs.waitMsg(t, "marker", func(m fakematrix.Message) bool { return m.Content.Body == "marker" })
		if n, r := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == cs.helloEvt })), len(mx.Redactions()); n != 1 || r != 1 {
			t.Errorf("after reconnect: %d edits, %d redactions, want 1 and 1", n, r)
		}
	})
}

// TestConversationBurst: a contact reacts and edits in the middle of a
// burst the staff member answers; Matrix shows it all in Telegram's order.
func TestConversationBurst(t *testing.T) {
	cs := newConvSetup(t, nil)
	s := cs.s
	send := func(text string) tgsim.Message {
		m, err := s.SendMessage(cs.bob.ID, cs.alice.ID, text, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1 := send("one")
	cs.inject(&event.Event{Type: event.EventMessage, ID: "$ans", Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "answer"}}})
	m2 := send("two")
	if err := s.React(cs.bob.ID, cs.alice.ID, m1.SenderMsgID, tgsim.Reaction{Emoji: "👍"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EditMessage(cs.bob.ID, cs.alice.ID, m2.SenderMsgID, "two, edited"); err != nil {
		t.Fatal(err)
	}
	send("three")
	mx := cs.tb.mx
	if !mx.Eventually(30*time.Second, func() bool { return len(mx.MessagesWithBody("three")) == 1 }) {
		t.Fatal("burst never reached Matrix")
	}
	var order []string
	for _, e := range mx.Events() {
		switch e.Type {
		case event.EventReaction:
			order = append(order, "react")
		case event.EventMessage:
			c := msgContent(e)
			switch {
			case c == nil:
			case c.RelatesTo.GetReplaceID() != "":
				order = append(order, "edit:"+c.NewContent.Body)
			case e.Sender == cs.bobMXID:
				order = append(order, c.Body)
			}
		}
	}
	// Messages and edits keep Telegram's order (they are numbered by pts);
	// a reaction carries no pts on Telegram and comes after its message.
	pos := map[string]int{}
	for i, o := range order {
		pos[o] = i + 1
	}
	if !(pos["hello"] < pos["one"] && pos["one"] < pos["two"] && pos["two"] < pos["edit:two, edited"] &&
		pos["edit:two, edited"] < pos["three"] && pos["one"] < pos["react"]) || pos["react"] == 0 || len(order) != 6 {
		t.Errorf("Matrix order %q", strings.Join(order, "|"))
	}
	// A reaction right after its message is not lost, even when it
	// overtakes it.
	four := send("four")
	if err := s.React(cs.bob.ID, cs.alice.ID, four.SenderMsgID, tgsim.Reaction{Emoji: "🔥"}); err != nil {
		t.Fatal(err)
	}
	fourEvt := cs.waitMsg(t, "four", func(m fakematrix.Message) bool { return m.Content.Body == "four" }).EventID
	if !mx.Eventually(20*time.Second, func() bool { _, ok := reactionsOf(mx, fourEvt)["🔥"]; return ok }) {
		t.Error("reaction right after its message never reached Matrix")
	}
	if _, err := s.WaitMessage(context.Background(), cs.alice.ID, cs.bob.ID, func(m tgsim.Message) bool { return m.Text == "answer" }); err != nil {
		t.Error(err)
	}
}

// TestHeldConversationEvents: an edit, a deletion, a reaction and a
// reaction removal go
// through HoldPayload and DecodeHeldEvent into the same event.
func TestHeldConversationEvents(t *testing.T) {
	cs := newConvSetup(t, nil)
	c := cs.ul.Client.(*Client)
	ctx := context.Background()
	peer := tgid.Peer{Type: tgid.PeerUser, ID: cs.bob.ID}
	ts := time.Unix(1700000000, 0)

	msg := &tg.Message{ID: cs.hello.ID, PeerID: &tg.PeerUser{UserID: cs.bob.ID}, FromID: &tg.PeerUser{UserID: cs.bob.ID}, Date: int(ts.Unix()), EditDate: int(ts.Unix()) + 5, Message: "edited"}
	edit, _ := c.messageEvent(msg, true)
	remove := c.removeEvent(peer, c.messageID(peer, cs.hello.ID), c.userSender(cs.bob.ID), ts)
	target := c.messageID(peer, cs.hello.ID)
	react := c.reactionEvent(peer, target, heldReaction{User: string(tgid.MakeUserID(cs.bob.ID)), EmojiID: "custom:777", Emoji: "🎉", CustomEmoji: "777"}, false, ts)
	unreact := c.reactionEvent(peer, target, heldReaction{User: string(tgid.MakeUserID(cs.alice.ID)), FromMe: true, EmojiID: "👍", Emoji: "👍️"}, true, ts)
	for _, evt := range []interface {
		remote.Holdable
		remote.Described
	}{edit, remove, react, unreact} {
		payload, err := evt.HoldPayload()
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.DecodeHeldEvent(ctx, cs.ul, payload)
		if err != nil {
			t.Fatalf("%T: %v", evt, err)
		}
		if back.GetType() != evt.GetType() || back.GetPortalKey() != evt.GetPortalKey() || back.GetSender() != evt.GetSender() ||
			!getTS(back).Equal(getTS(evt)) {
			t.Errorf("%T came back as %v %v %+v", evt, back.GetType(), back.GetPortalKey(), back.GetSender())
		}
		if d, ok := back.(remote.Described); !ok || !reflect.DeepEqual(d.RemoteChat(), evt.RemoteChat()) || d.RemoteSender().ID != evt.RemoteSender().ID {
			t.Errorf("%T lost its description", evt)
		}
		if tm, ok := back.(bridgev2.RemoteEventWithTargetMessage); !ok || tm.GetTargetMessage() != evt.(bridgev2.RemoteEventWithTargetMessage).GetTargetMessage() {
			t.Errorf("%T lost its target", evt)
		}
	}
	payload, _ := react.HoldPayload()
	back, _ := c.DecodeHeldEvent(ctx, cs.ul, payload)
	emoji, emojiID := back.(bridgev2.RemoteReaction).GetReactionEmoji()
	if emoji != "🎉" || emojiID != "custom:777" || back.(bridgev2.RemoteReactionWithExtraContent).GetReactionExtraContent()[customEmojiExtraKey] != "777" {
		t.Errorf("reaction came back as %q %q", emoji, emojiID)
	}
	payload, _ = unreact.HoldPayload()
	back, _ = c.DecodeHeldEvent(ctx, cs.ul, payload)
	if rm, ok := back.(bridgev2.RemoteReactionRemove); !ok || rm.GetRemovedEmojiID() != "👍" || !back.GetSender().IsFromMe || back.GetType() != bridgev2.RemoteEventReactionRemove {
		t.Errorf("reaction removal came back as %+v", back)
	}
}

func getTS(evt bridgev2.RemoteEvent) time.Time {
	if e, ok := evt.(bridgev2.RemoteEventWithTimestamp); ok {
		return e.GetTimestamp()
	}
	return time.Time{}
}

// TestOwnMessageFromPhone: a message the staff member sends from their
// phone is built as their own (IsFromMe with their login), so that
// bridgev2 sends it from their double puppet.
func TestOwnMessageFromPhone(t *testing.T) {
	cs := newConvSetup(t, nil)
	c := cs.ul.Client.(*Client)
	msg := &tg.Message{ID: 99, Out: true, PeerID: &tg.PeerUser{UserID: cs.bob.ID}, FromID: &tg.PeerUser{UserID: cs.alice.ID}, Date: int(time.Now().Unix()), Message: "from my phone"}
	evt, ok := c.messageEvent(msg, false)
	if !ok {
		t.Fatal("no event")
	}
	if s := evt.GetSender(); !s.IsFromMe || s.SenderLogin != cs.ul.ID || s.Sender != tgid.MakeUserID(cs.alice.ID) {
		t.Errorf("own message sender %+v", s)
	}
	own, err := cs.s.SendMessage(cs.alice.ID, cs.bob.ID, "sent from the phone", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := cs.waitMsg(t, "own message", func(m fakematrix.Message) bool { return m.Content.Body == "sent from the phone" })

	// The staff member reads the chat on the phone: a read receipt of their
	// own, on the last message.
	var (
		mu       sync.Mutex
		receipts []bridgev2.RemoteEvent
	)
	br := cs.tb.br
	cs.tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		if evt.GetType() == bridgev2.RemoteEventReadReceipt {
			mu.Lock()
			receipts = append(receipts, evt)
			mu.Unlock()
		}
		return br.QueueRemoteEvent(login, evt)
	})
	if err := cs.s.ReadHistory(cs.alice.ID, cs.bob.ID, 0); err != nil {
		t.Fatal(err)
	}
	if !cs.tb.mx.Eventually(20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range receipts {
			rr := r.(bridgev2.RemoteReadReceipt)
			if r.GetSender().IsFromMe && r.GetSender().SenderLogin == cs.ul.ID && rr.GetLastReceiptTarget() == c.messageID(tgid.Peer{Type: tgid.PeerUser, ID: cs.bob.ID}, own.SenderMsgID) {
				return true
			}
		}
		return false
	}) {
		t.Errorf("own read on the phone: %d receipts", len(receipts))
	}
	// Without a double puppet (fakematrix has none) bridgev2 falls back to
	// the account's ghost.
	if m.Sender != cs.tb.mx.FormatGhostMXID(tgid.MakeUserID(cs.alice.ID)) || m.RoomID != cs.portal.MXID {
		t.Errorf("own message from %s in %s", m.Sender, m.RoomID)
	}
}

// TestCaptionEdits: the caption of a media message is edited both ways,
// and a media message deleted on Telegram is redacted on Matrix.
func TestCaptionEdits(t *testing.T) {
	ms := newMediaSetup(t, nil)
	s, mx := ms.s, ms.tb.mx
	ctx := context.Background()
	photo := testPNG(t, 30, 20)

	// Telegram → Matrix: the contact edits a photo's caption.
	sent, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "photo", Data: photo, Caption: "first caption"})
	if err != nil {
		t.Fatal(err)
	}
	orig, ok := mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool {
		return m.Content.MsgType == event.MsgImage && m.Content.Body == "first caption"
	})
	if !ok {
		t.Fatal("photo never reached Matrix")
	}
	if _, err := s.EditMessage(ms.bob.ID, ms.alice.ID, sent.SenderMsgID, "second caption"); err != nil {
		t.Fatal(err)
	}
	edit, ok := mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool { return m.Replaces() == orig.EventID })
	if !ok {
		t.Fatal("caption edit never reached Matrix")
	}
	if nc := edit.Content.NewContent; nc == nil || nc.MsgType != event.MsgImage || nc.Body != "second caption" || nc.File == nil {
		t.Errorf("caption edit bridged as %+v", edit.Content.NewContent)
	}

	// Matrix → Telegram: the staff member edits the caption of an image.
	content := upload(t, ms, photo, &event.MessageEventContent{MsgType: event.MsgImage, FileName: "pic.png", Body: "staff caption",
		Info: &event.FileInfo{MimeType: "image/png", Width: 30, Height: 20}})
	resp, err := ms.ul.Client.HandleMatrixMessage(ctx, matrixMessage(ms.portal, "$img1", content))
	if err != nil {
		t.Fatal(err)
	}
	resp.DB.MXID, resp.DB.Room = "$img1", ms.portal.PortalKey
	newContent := *content
	newContent.Body = "staff caption, edited"
	err = ms.ul.Client.(*Client).HandleMatrixEdit(ctx, &bridgev2.MatrixEdit{
		MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
			Event: &event.Event{ID: "$img1edit", Sender: testUser, RoomID: ms.portal.MXID}, Content: &newContent, Portal: ms.portal},
		EditTarget: resp.DB,
	})
	if err != nil {
		t.Fatalf("caption edit: %v", err)
	}
	key, _ := tgid.ParseMessageID(resp.DB.ID)
	var got tgsim.Message
	for _, m := range s.Messages(ms.alice.ID, ms.bob.ID) {
		if m.SenderMsgID == key.ID {
			got = m
		}
	}
	if got.Text != "staff caption, edited" || got.Media == nil || got.Edited.IsZero() {
		t.Errorf("caption edit on Telegram: %q, media %v, edited %v", got.Text, got.Media != nil, got.Edited)
	}

	// Telegram → Matrix: the contact deletes the photo; its event goes.
	if err := s.DeleteMessages(ms.bob.ID, []int{sent.SenderMsgID}, true); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Redacted(orig.EventID) }) {
		t.Error("deleted photo never redacted on Matrix")
	}
}

// TestDeleteEveryPart: a Telegram message bridged as two Matrix events (a
// file over the limit: a notice and its caption) is deleted as both.
func TestDeleteEveryPart(t *testing.T) {
	ms := newMediaSetup(t, func(conn *TelegramConnector) { conn.Config.MaxFileSize = 100_000 })
	ms.tb.conn.Limits.SetGateway(100_000)
	s, mx := ms.s, ms.tb.mx
	sent, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "document", Data: mediatest.PatternBytes(150_000, 1), Name: "big.pdf", MIME: "application/pdf", Caption: "see attached"})
	if err != nil {
		t.Fatal(err)
	}
	notice, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.MsgType == event.MsgNotice })
	caption, ok2 := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "see attached" })
	if !ok || !ok2 {
		t.Fatal("the two parts never reached Matrix")
	}
	if err := s.DeleteMessages(ms.bob.ID, []int{sent.SenderMsgID}, true); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		got := map[id.EventID]bool{}
		for _, r := range mx.Redactions() {
			got[r.Redacts] = true
		}
		return got[notice.EventID] && got[caption.EventID]
	}) {
		t.Errorf("redactions %+v, want %s and %s", mx.Redactions(), notice.EventID, caption.EventID)
	}
}
