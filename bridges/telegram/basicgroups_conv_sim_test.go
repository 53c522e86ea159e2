package telegram

import (
	"context"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// basicPortal waits for the portal of a basic group.
func (gs *groupSetup) basicPortal(t *testing.T, chatID int64) *bridgev2.Portal {
	t.Helper()
	key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerChat, ID: chatID})}
	var portal *bridgev2.Portal
	if !gs.tb.mx.Eventually(20*time.Second, func() bool {
		p, err := gs.tb.br.GetExistingPortalByKey(context.Background(), key)
		portal = p
		return err == nil && p != nil && p.MXID != ""
	}) {
		t.Fatal("no portal for the basic group")
	}
	return portal
}

// settle waits until both logins stored the pts of every update their
// accounts had: each copy of each change was offered to the bridge.
func (gs *groupSetup) settle(t *testing.T) {
	t.Helper()
	st := gs.tb.conn.Store.UpdateState()
	if !gs.tb.mx.Eventually(20*time.Second, func() bool {
		for _, acc := range []*tgsim.Account{gs.alice, gs.carol} {
			got, ok, err := st.GetState(context.Background(), acc.ID)
			if err != nil || !ok || got.Pts < gs.s.Pts(acc.ID) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the logins never handled every update")
	}
}

// chatMessage finds a basic-group message as viewer sees it.
func chatMessage(s *tgsim.Server, chatID, viewer int64, text string) (tgsim.ChatMessage, bool) {
	for _, m := range s.ChatHistory(chatID, viewer) {
		if m.Text == text {
			return m, true
		}
	}
	return tgsim.ChatMessage{}, false
}

// TestBasicGroupConversation: in a basic group with two staff members
// logged in (alice, carol) and two contacts (bob, dave), each account has
// its own ID for every message. Telegram → Matrix: an edit, a reply, a
// reaction, a deletion and typing are each bridged once. Matrix →
// Telegram: alice's reply, carol's reply to alice's message, alice's edit,
// carol's reaction, alice's read receipt and typing, and alice's deletion
// reach the group through the sender's own account, naming that account's
// own ID of the target, and none is bridged back.
func TestBasicGroupConversation(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID, gs.dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	// The boxes diverge: carol has a private message first.
	if _, err := s.SendMessage(gs.dave.ID, gs.carol.ID, "private to carol", nil); err != nil {
		t.Fatal(err)
	}
	orig, err := s.ChatPost(chat.ID, gs.bob.ID, "original")
	if err != nil {
		t.Fatal(err)
	}
	if orig[gs.alice.ID] == orig[gs.carol.ID] {
		t.Fatal("the test needs different IDs per account")
	}
	origMX, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "original" })
	if !ok {
		t.Fatal("the message never reached Matrix")
	}
	portal := gs.basicPortal(t, chat.ID)
	bobMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))
	daveMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.dave.ID))

	// Telegram → Matrix: bob edits, dave reacts and answers.
	if err := s.ChatEdit(chat.ID, gs.bob.ID, orig[gs.bob.ID], "original, edited"); err != nil {
		t.Fatal(err)
	}
	if err := s.ChatReact(chat.ID, gs.dave.ID, orig[gs.dave.ID], "👍"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatReply(chat.ID, gs.dave.ID, "dave answers", orig[gs.dave.ID]); err != nil {
		t.Fatal(err)
	}
	answer, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "dave answers" })
	if !ok {
		t.Fatal("dave's answer never reached Matrix")
	}
	if got := answer.Content.RelatesTo.GetReplyTo(); got != origMX.EventID || answer.Sender != daveMXID {
		t.Errorf("dave's answer from %s replies to %q, want %q", answer.Sender, got, origMX.EventID)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		r, ok := reactionsOf(mx, origMX.EventID)["👍"]
		return ok && r.Sender == daveMXID
	}) {
		t.Error("dave's reaction never reached Matrix")
	}
	gs.settle(t)
	if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == origMX.EventID })); n != 1 {
		t.Errorf("bob's edit was bridged %d times, want once", n)
	}
	if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == "dave answers" })); n != 1 {
		t.Errorf("dave's answer was bridged %d times, want once", n)
	}
	n := 0
	for _, r := range mx.Reactions() {
		if r.Target == origMX.EventID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("dave's reaction was bridged %d times, want once", n)
	}

	// Matrix → Telegram: alice replies to bob's message.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$r1", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "alice replies", RelatesTo: (&event.RelatesTo{}).SetReplyTo(origMX.EventID)}}})
	if !mx.Eventually(20*time.Second, func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, "alice replies"); return ok }) {
		t.Fatalf("alice's reply never reached the group: %+v", mx.StatusesOf("$r1"))
	}
	if m, _ := chatMessage(s, chat.ID, gs.bob.ID, "alice replies"); m.From != gs.alice.ID || m.ReplyToID != orig[gs.bob.ID] {
		t.Errorf("alice's reply sent by %d answers %d (bob's IDs), want alice (%d) answering %d", m.From, m.ReplyToID, gs.alice.ID, orig[gs.bob.ID])
	}
	aliceMsg, _ := chatMessage(s, chat.ID, gs.carol.ID, "alice replies")

	// carol answers alice's message: through carol's account, naming
	// carol's own ID of it.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$c1", Sender: staffCarol, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "carol agrees", RelatesTo: (&event.RelatesTo{}).SetReplyTo("$r1")}}})
	if !mx.Eventually(20*time.Second, func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, "carol agrees"); return ok }) {
		t.Fatalf("carol's reply never reached the group: %+v", mx.StatusesOf("$c1"))
	}
	if m, _ := chatMessage(s, chat.ID, gs.carol.ID, "carol agrees"); m.From != gs.carol.ID || m.ReplyToID != aliceMsg.ID {
		t.Errorf("carol's reply sent by %d answers %d (carol's IDs), want carol (%d) answering %d", m.From, m.ReplyToID, gs.carol.ID, aliceMsg.ID)
	}

	// alice edits her reply; carol reacts to bob's message.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$e1", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "* alice replies, edited",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "alice replies, edited"},
		RelatesTo:  (&event.RelatesTo{}).SetReplace("$r1")}}})
	if !mx.Eventually(20*time.Second, func() bool {
		m, ok := chatMessage(s, chat.ID, gs.dave.ID, "alice replies, edited")
		return ok && !m.Edited.IsZero()
	}) {
		t.Errorf("alice's edit never reached the group: %+v", mx.StatusesOf("$e1"))
	}
	gs.inject(portal, &event.Event{Type: event.EventReaction, ID: "$x1", Sender: staffCarol, Content: event.Content{Parsed: &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: origMX.EventID, Key: "❤️"}}}})
	if !mx.Eventually(20*time.Second, func() bool {
		m, _ := chatMessage(s, chat.ID, gs.bob.ID, "original, edited")
		for _, r := range m.Reactions {
			if r.User == gs.carol.ID && (r.Emoji == "❤" || r.Emoji == "❤️") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("carol's reaction never reached the group: %+v", mx.StatusesOf("$x1"))
	}

	// Read receipts and typing, Matrix → Telegram.
	readMe, _ := s.ChatPost(chat.ID, gs.dave.ID, "read me")
	readMeMX, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "read me" })
	if !ok {
		t.Fatal("never bridged")
	}
	gs.settle(t) // both accounts have their copy
	gs.inject(portal, &event.Event{Type: event.EphemeralEventReceipt, Mautrix: event.MautrixInfo{EventSource: event.SourceEphemeral}, Content: event.Content{Parsed: &event.ReceiptEventContent{
		readMeMX.EventID: {event.ReceiptTypeRead: {testUser: {Timestamp: time.Now()}}}}}})
	if !mx.Eventually(20*time.Second, func() bool { return s.ChatReadInbox(chat.ID, gs.alice.ID) == readMe[gs.alice.ID] }) {
		t.Errorf("alice's read receipt: read up to %d on Telegram, want %d", s.ChatReadInbox(chat.ID, gs.alice.ID), readMe[gs.alice.ID])
	}
	gs.inject(portal, &event.Event{Type: event.EphemeralEventTyping, Mautrix: event.MautrixInfo{EventSource: event.SourceEphemeral},
		Content: event.Content{Parsed: &event.TypingEventContent{UserIDs: []id.UserID{testUser}}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, ty := range s.TypingSeen(gs.bob.ID) {
			if ty.From == gs.alice.ID && ty.Chat == chat.ID {
				return true
			}
		}
		return false
	}) {
		t.Errorf("alice's typing never reached the group: %+v", s.TypingSeen(gs.bob.ID))
	}

	// Typing, Telegram → Matrix; carol's login also sees alice typing,
	// which stays off Matrix.
	if err := s.ChatTyping(chat.ID, gs.bob.ID); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		for _, ty := range mx.Typings() {
			if ty.RoomID == portal.MXID && ty.User == bobMXID && ty.Timeout > 0 {
				return true
			}
		}
		return false
	}) {
		t.Errorf("bob's typing never reached the portal: %+v", mx.Typings())
	}
	for _, ty := range mx.Typings() {
		if ty.User == mx.FormatGhostMXID(tgid.MakeUserID(gs.alice.ID)) {
			t.Errorf("alice's own typing came back to Matrix: %+v", ty)
		}
	}

	// The staff member reads the group on the phone: a receipt of their
	// own on the message read (the bridged ID, not the account's own).
	var (
		mu       sync.Mutex
		receipts []bridgev2.RemoteEvent
	)
	br := gs.tb.br
	gs.tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		if evt.GetType() == bridgev2.RemoteEventReadReceipt {
			mu.Lock()
			receipts = append(receipts, evt)
			mu.Unlock()
		}
		return br.QueueRemoteEvent(login, evt)
	})
	readMeDB, err := br.DB.Message.GetPartByMXID(context.Background(), readMeMX.EventID)
	if err != nil || readMeDB == nil {
		t.Fatalf("read me: %v", err)
	}
	if err := s.ChatRead(chat.ID, gs.carol.ID, 0); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range receipts {
			rr := r.(bridgev2.RemoteReadReceipt)
			if r.GetSender().IsFromMe && r.GetSender().SenderLogin == gs.carolUL.ID && rr.GetLastReceiptTarget() == readMeDB.ID &&
				r.GetPortalKey() == portal.PortalKey {
				return true
			}
		}
		return false
	}) {
		t.Errorf("carol's read on the phone: %d receipts", len(receipts))
	}

	// Deletions: dave deletes his answer on Telegram (redacted once);
	// alice deletes her reply from Matrix (gone for everyone, nothing
	// bridged back).
	if err := s.ChatDelete(chat.ID, gs.dave.ID, []int{s.ChatHistory(chat.ID, gs.dave.ID)[1].ID}, true); err != nil {
		t.Fatal(err)
	}
	redactionsOf := func(target id.EventID) int {
		n := 0
		for _, r := range mx.Redactions() {
			if r.Redacts == target {
				n++
			}
		}
		return n
	}
	if !mx.Eventually(20*time.Second, func() bool { return redactionsOf(answer.EventID) > 0 }) {
		t.Error("dave's deletion never reached Matrix")
	}
	gs.inject(portal, &event.Event{Type: event.EventRedaction, ID: "$rd1", Sender: testUser, Redacts: "$r1",
		Content: event.Content{Parsed: &event.RedactionEventContent{Redacts: "$r1"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		m, ok := chatMessage(s, chat.ID, gs.bob.ID, "alice replies, edited")
		return ok && m.Deleted
	}) {
		t.Errorf("alice's deletion never reached the group: %+v", mx.StatusesOf("$rd1"))
	}
	last, _ := s.ChatPost(chat.ID, gs.bob.ID, "last")
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "last" }); !ok {
		t.Fatal("last never bridged")
	}
	_ = last
	gs.settle(t)
	if n := redactionsOf(answer.EventID); n != 1 {
		t.Errorf("dave's deletion was bridged %d times, want once", n)
	}
	if n := redactionsOf("$r1"); n != 0 {
		t.Errorf("alice's deletion came back to Matrix %d times", n)
	}
	// Nothing sent from Matrix came back as a message, an edit or a
	// reaction.
	for _, body := range []string{"alice replies", "carol agrees", "alice replies, edited"} {
		if got := mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == body || m.Content.Body == "* "+body }); len(got) != 0 {
			t.Errorf("%q came back to Matrix %d times", body, len(got))
		}
	}
	for _, r := range mx.Reactions() {
		if r.Target == origMX.EventID && r.Sender != daveMXID {
			t.Errorf("a reaction came back to Matrix: %+v", r)
		}
	}
	if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == portal.MXID && m.Replaces() == "" })); n != 4 {
		t.Errorf("%d messages bridged into the portal, want 4 (original, dave answers, read me, last)", n)
	}
}

// TestBasicGroupMediaFromMatrix: carol sends a picture with a caption to a
// basic group from Matrix (messages.sendMedia to the group, through her
// account); alice's login, which receives it too, does not bring it back;
// alice answers it from Matrix, naming her own ID of carol's picture.
func TestBasicGroupMediaFromMatrix(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	// The boxes diverge.
	if _, err := s.SendMessage(gs.bob.ID, gs.alice.ID, "private to alice", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" }); !ok {
		t.Fatal("never bridged")
	}
	portal := gs.basicPortal(t, chat.ID)
	data := testPNG(t, 30, 20)
	content := &event.MessageEventContent{MsgType: event.MsgImage, FileName: "pic.png", Body: "carol's picture",
		Info: &event.FileInfo{MimeType: "image/png", Width: 30, Height: 20, Size: len(data)}}
	uri, file, err := mx.Bridge().Bot.UploadMedia(context.Background(), portal.MXID, data, content.FileName, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	content.URL, content.File = uri, file
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$p1", Sender: staffCarol, Content: event.Content{Parsed: content}})
	if !mx.Eventually(20*time.Second, func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, "carol's picture"); return ok }) {
		t.Fatalf("carol's picture never reached the group: %s", statusText(mx.StatusesOf("$p1")))
	}
	if m, _ := chatMessage(s, chat.ID, gs.bob.ID, "carol's picture"); m.From != gs.carol.ID || m.Media == nil || m.Media.Kind != "photo" {
		t.Errorf("carol's picture on Telegram: from %d, media %+v", m.From, m.Media)
	}
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$r1", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "nice picture", RelatesTo: (&event.RelatesTo{}).SetReplyTo("$p1")}}})
	if !mx.Eventually(20*time.Second, func() bool { _, ok := chatMessage(s, chat.ID, gs.bob.ID, "nice picture"); return ok }) {
		t.Fatalf("alice's answer never reached the group: %s", statusText(mx.StatusesOf("$r1")))
	}
	pic, _ := chatMessage(s, chat.ID, gs.alice.ID, "carol's picture")
	if m, _ := chatMessage(s, chat.ID, gs.alice.ID, "nice picture"); m.ReplyToID != pic.ID {
		t.Errorf("alice's answer replies to %d (her IDs), want %d", m.ReplyToID, pic.ID)
	}
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "last"); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "last" }); !ok {
		t.Fatal("last never bridged")
	}
	gs.settle(t)
	for _, body := range []string{"carol's picture", "nice picture"} {
		if n := len(mx.MessagesWithBody(body)); n != 0 {
			t.Errorf("%q came back to Matrix %d times", body, n)
		}
	}
}
