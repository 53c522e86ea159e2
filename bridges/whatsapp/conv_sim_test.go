package whatsapp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/random"
	"go.mau.fi/util/variationselector"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// conv is a linked account with the simulator and the bridge on one clock.
type conv struct {
	srv *wasim.Server
	tb  *testBridge
	ul  *bridgev2.UserLogin
	clk *manualClock
	ctx context.Context
}

func startConv(t *testing.T) *conv {
	t.Helper()
	clk := &manualClock{}
	srv := startSimClock(t, clk)
	tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), clk)
	ul := loginQR(t, tb, srv)
	c := &conv{srv: srv, tb: tb, ul: ul, clk: clk, ctx: ctxFor(t)}
	t.Cleanup(func() { _ = srv.AwaitReceipts(context.Background(), alicePh) })
	return c
}

// contactSays sends text from a contact (to Alice, or to a group) and
// waits for it on Matrix.
func (c *conv) contactSays(t *testing.T, from, to, text string) (string, fakematrix.Message) {
	t.Helper()
	var waID string
	var err error
	if strings.HasSuffix(to, "@g.us") {
		waID, err = c.srv.SendGroupText(c.ctx, from, to, text, nil)
	} else {
		waID, err = c.srv.SendText(c.ctx, from, to, text)
	}
	if err != nil {
		t.Fatal(err)
	}
	return waID, c.tb.waitMsg(t, text, func(m fakematrix.Message) bool { return m.Content.Body == text })
}

var injected atomic.Int64

// inject hands a Matrix event from Alice's Matrix account to the bridge.
func (c *conv) inject(roomID id.RoomID, typ event.Type, content any) id.EventID {
	evtID := id.EventID(fmt.Sprintf("$conv%d", injected.Add(1)))
	evt := &event.Event{Type: typ, RoomID: roomID, Sender: testUser, ID: evtID,
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: content}}
	if typ.Class == event.EphemeralEventType {
		evt.Type.Class = event.EphemeralEventType
		evt.Mautrix.EventSource = event.SourceEphemeral
	}
	c.tb.mx.Inject(c.ctx, evt)
	return evtID
}

// aliceSays sends text from Matrix and returns the event ID and the
// WhatsApp message ID it got.
func (c *conv) aliceSays(t *testing.T, roomID id.RoomID, content *event.MessageEventContent) (id.EventID, string) {
	t.Helper()
	evtID := c.inject(roomID, event.EventMessage, content)
	var waID string
	if !c.tb.mx.Eventually(waitLong, func() bool {
		msg, err := c.tb.br.DB.Message.GetPartByMXID(c.ctx, evtID)
		if err != nil || msg == nil {
			return false
		}
		key, err := waid.ParseMessageID(msg.ID)
		waID = key.ID
		return err == nil
	}) {
		t.Fatalf("Matrix message %q never sent (statuses %+v)", content.Body, c.tb.mx.StatusesOf(evtID))
	}
	return evtID, waID
}

// sees waits until the conversation of phone with chat satisfies cond.
func (c *conv) sees(t *testing.T, phone, chat, what string, cond func([]wasim.ChatEntry) bool) []wasim.ChatEntry {
	t.Helper()
	var last []wasim.ChatEntry
	ctx, cancel := context.WithTimeout(c.ctx, waitLong)
	defer cancel()
	if err := c.srv.WaitCondition(ctx, func() bool { last = c.srv.Conversation(phone, chat); return cond(last) }); err != nil {
		t.Fatalf("%s never saw %s: %+v", phone, what, last)
	}
	return last
}

func find(entries []wasim.ChatEntry, waID string) (wasim.ChatEntry, bool) {
	for _, e := range entries {
		if e.ID == waID {
			return e, true
		}
	}
	return wasim.ChatEntry{}, false
}

// failedStatus waits for a failed send status of evtID and the notice that
// explains it in the room, which contains want.
func (c *conv) failedStatus(t *testing.T, evtID id.EventID, want string) {
	t.Helper()
	if !c.tb.mx.Eventually(waitLong, func() bool {
		for _, st := range c.tb.mx.StatusesOf(evtID) {
			if st.Status == event.MessageStatusFail && st.SendNotice {
				_, noticed := c.tb.mx.FindMessage(func(m fakematrix.Message) bool {
					return m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, want)
				})
				return noticed
			}
		}
		return false
	}) {
		for _, st := range c.tb.mx.StatusesOf(evtID) {
			t.Logf("status %s %s %v", st.Status, st.ErrorReason, st.InternalError)
		}
		t.Fatalf("no failed status and notice with %q for %s", want, evtID)
	}
}

func noNotBridgedNotice(t *testing.T, mx *fakematrix.Matrix) {
	t.Helper()
	if m, ok := mx.FindMessage(func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "not bridged yet") }); ok {
		t.Errorf("a %q notice appeared: %+v", m.Content.Body, m)
	}
}

// TestReplies: a contact's reply shows as a Matrix reply; a reply to a
// message the portal never had shows the quoted text; a Matrix reply
// reaches WhatsApp with the quoted message.
func TestReplies(t *testing.T) {
	c := startConv(t)
	qID, q := c.contactSays(t, bobPh, alicePh, "Are you free on Monday?")
	if _, err := c.srv.SendReply(c.ctx, bobPh, alicePh, "(or Tuesday)", qID, bobPh, &waE2E.Message{Conversation: proto.String("Are you free on Monday?")}); err != nil {
		t.Fatal(err)
	}
	r := c.tb.waitMsg(t, "Bob's reply", func(m fakematrix.Message) bool { return m.Content.Body == "(or Tuesday)" })
	if r.Content.RelatesTo.GetReplyTo() != q.EventID {
		t.Errorf("reply relates to %+v, want in_reply_to %s", r.Content.RelatesTo, q.EventID)
	}
	// A reply to a message older than the portal: the quote is shown.
	if _, err := c.srv.SendReply(c.ctx, bobPh, alicePh, "as I said", "3A0000000000000000AA", alicePh, &waE2E.Message{Conversation: proto.String("see you at 9")}); err != nil {
		t.Fatal(err)
	}
	old := c.tb.waitMsg(t, "reply to an old message", func(m fakematrix.Message) bool { return strings.HasSuffix(m.Content.Body, "as I said") })
	if old.Content.Body != "> see you at 9\n\nas I said" || !strings.Contains(old.Content.FormattedBody, "<blockquote>see you at 9</blockquote>") || old.Content.RelatesTo.GetReplyTo() != "" {
		t.Errorf("reply to an unknown message: %q / %q / %+v", old.Content.Body, old.Content.FormattedBody, old.Content.RelatesTo)
	}

	// Matrix → WhatsApp.
	_, waID := c.aliceSays(t, q.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "Monday works",
		RelatesTo: (&event.RelatesTo{}).SetReplyTo(q.EventID)})
	entries := c.sees(t, bobPh, alicePh, "Alice's reply", func(es []wasim.ChatEntry) bool { _, ok := find(es, waID); return ok })
	e, _ := find(entries, waID)
	ci := e.Message.GetExtendedTextMessage().GetContextInfo()
	if e.ReplyTo != qID || ci.GetParticipant() != bobPh+"@s.whatsapp.net" || ci.GetQuotedMessage().GetConversation() != "Are you free on Monday?" {
		t.Errorf("Bob got the reply %q with context %+v", e.Text, ci)
	}
}

// TestEdits: a contact's edit replaces the Matrix message; a Matrix edit
// edits the WhatsApp message within the 15-minute window, and fails with a
// clear status past it.
func TestEdits(t *testing.T) {
	c := startConv(t)
	bID, b := c.contactSays(t, bobPh, alicePh, "see you tomorow")
	if _, err := c.srv.SendEdit(c.ctx, bobPh, alicePh, bID, "see you tomorrow"); err != nil {
		t.Fatal(err)
	}
	edit := c.tb.waitMsg(t, "Bob's edit", func(m fakematrix.Message) bool { return m.Replaces() == b.EventID })
	if edit.Content.NewContent == nil || edit.Content.NewContent.Body != "see you tomorrow" || edit.Sender != bobGhost {
		t.Errorf("edit %+v from %s", edit.Content, edit.Sender)
	}

	evtID, waID := c.aliceSays(t, b.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "at 10?"})
	c.inject(b.RoomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "* at 11?",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "at 11?"},
		RelatesTo:  (&event.RelatesTo{}).SetReplace(evtID)})
	c.sees(t, bobPh, alicePh, "Alice's edit", func(es []wasim.ChatEntry) bool { e, _ := find(es, waID); return e.Text == "at 11?" && e.Edited })

	// Past the window (on the one clock of connector and simulator).
	c.clk.advance(EditWindow + time.Minute)
	late := c.inject(b.RoomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "* at noon?",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "at noon?"},
		RelatesTo:  (&event.RelatesTo{}).SetReplace(evtID)})
	c.failedStatus(t, late, "15 minutes")
	if e, _ := find(c.srv.Conversation(bobPh, alicePh), waID); e.Text != "at 11?" {
		t.Errorf("a late edit reached Bob: %+v", e)
	}
	// The simulator refuses a late edit too (a contact's here).
	if _, err := c.srv.SendEdit(c.ctx, bobPh, alicePh, bID, "too late"); err == nil {
		t.Error("the simulator let a late edit through")
	}

	// A caption edit keeps the file and changes its caption.
	photo, _, err := c.srv.SendMedia(c.ctx, bobPh, alicePh, wasim.MediaSpec{Kind: wasim.KindImage, Data: random.Bytes(2000), MIME: "image/jpeg", Caption: "old caption"})
	if err != nil {
		t.Fatal(err)
	}
	img := c.tb.waitMsg(t, "Bob's photo", func(m fakematrix.Message) bool {
		return m.Content.MsgType == event.MsgImage && m.Content.Body == "old caption"
	})
	if _, err = c.srv.SendEditMessage(c.ctx, bobPh, alicePh, photo, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("new *caption*")}}); err != nil {
		t.Fatal(err)
	}
	capEdit := c.tb.waitMsg(t, "the caption edit", func(m fakematrix.Message) bool { return m.Replaces() == img.EventID })
	nc := capEdit.Content.NewContent
	if nc == nil || nc.MsgType != event.MsgImage || nc.URL != img.Content.URL || nc.Body != "new *caption*" ||
		nc.FormattedBody != "new <strong>caption</strong>" || nc.GetFileName() != img.Content.GetFileName() {
		t.Errorf("caption edit %+v (file %q, was %q)", nc, nc.GetFileName(), img.Content.GetFileName())
	}
	// From Matrix, a caption edit is refused with the reason.
	capRefused := c.inject(b.RoomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgImage, Body: "* new",
		NewContent: &event.MessageEventContent{MsgType: event.MsgImage, Body: "new", URL: img.Content.URL},
		RelatesTo:  (&event.RelatesTo{}).SetReplace(evtID)})
	c.failedStatus(t, capRefused, "caption")
}

// TestRevokes: a contact's revoke redacts every Matrix event of the
// message; a Matrix redaction revokes the staff member's own message, and
// fails for a contact's message in a direct chat. A delete-for-me from the
// staff member's phone redacts nothing.
func TestRevokes(t *testing.T) {
	c := startConv(t)
	bID, b := c.contactSays(t, bobPh, alicePh, "wrong chat, sorry")
	if _, err := c.srv.SendRevoke(c.ctx, bobPh, alicePh, bobPh, bID); err != nil {
		t.Fatal(err)
	}
	if !c.tb.mx.Eventually(waitLong, func() bool { return redacted(c.tb.mx, b.EventID) }) {
		t.Fatal("Bob's revoke did not redact the message")
	}

	// A message of two parts (two contact cards): both are redacted.
	cards, err := c.srv.SendMessage(c.ctx, bobPh, alicePh, &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{
		DisplayName: proto.String("2 contacts"),
		Contacts: []*waE2E.ContactMessage{
			{DisplayName: proto.String("Dan"), Vcard: proto.String("BEGIN:VCARD\nVERSION:3.0\nFN:Dan\nEND:VCARD")},
			{DisplayName: proto.String("Eve"), Vcard: proto.String("BEGIN:VCARD\nVERSION:3.0\nFN:Eve\nEND:VCARD")},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cardsID, _ := waid.MakeMessageID(waid.MessageKey{Chat: types.NewJID(bobPh, types.DefaultUserServer), Sender: types.NewJID(bobPh, types.DefaultUserServer), ID: cards})
	var parts []id.EventID
	if !c.tb.mx.Eventually(waitLong, func() bool {
		msgs, err := c.tb.br.DB.Message.GetAllPartsByID(c.ctx, c.ul.ID, cardsID)
		parts = parts[:0]
		for _, m := range msgs {
			parts = append(parts, m.MXID)
		}
		return err == nil && len(parts) == 2
	}) {
		t.Fatalf("the contact cards became %d events", len(parts))
	}
	if _, err = c.srv.SendRevoke(c.ctx, bobPh, alicePh, bobPh, cards); err != nil {
		t.Fatal(err)
	}
	if !c.tb.mx.Eventually(waitLong, func() bool { return redacted(c.tb.mx, parts[0]) && redacted(c.tb.mx, parts[1]) }) {
		t.Fatal("not every part of the revoked message was redacted")
	}

	// Matrix → WhatsApp: Alice's own message is revoked for everyone.
	evtID, waID := c.aliceSays(t, b.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "oops"})
	c.inject(b.RoomID, event.EventRedaction, &event.RedactionEventContent{Redacts: evtID})
	c.sees(t, bobPh, alicePh, "Alice's revoke", func(es []wasim.ChatEntry) bool { e, _ := find(es, waID); return e.Revoked })

	// An audio's caption went as a message of its own: both are revoked.
	audioEvt, audioID := c.aliceSays(t, b.RoomID, &event.MessageEventContent{MsgType: event.MsgAudio, Body: "hear this", FileName: "note.mp3",
		Info: &event.FileInfo{MimeType: "audio/mpeg"}, URL: uploadToMatrix(t, c.tb, random.Bytes(3000))})
	captionOf := func(es []wasim.ChatEntry) (wasim.ChatEntry, bool) {
		for _, e := range es {
			if e.From == alicePh && (e.Text == "hear this" || e.Revoked && e.ID != audioID && e.ID != waID) {
				return e, true
			}
		}
		return wasim.ChatEntry{}, false
	}
	c.sees(t, bobPh, alicePh, "the audio's caption", func(es []wasim.ChatEntry) bool { _, ok := captionOf(es); return ok })
	c.inject(b.RoomID, event.EventRedaction, &event.RedactionEventContent{Redacts: audioEvt})
	c.sees(t, bobPh, alicePh, "the audio and its caption revoked", func(es []wasim.ChatEntry) bool {
		audio, _ := find(es, audioID)
		caption, _ := captionOf(es)
		return audio.Revoked && caption.Revoked
	})

	// A contact's message in a direct chat cannot be revoked.
	keepID, keep := c.contactSays(t, bobPh, alicePh, "keep this")
	refused := c.inject(b.RoomID, event.EventRedaction, &event.RedactionEventContent{Redacts: keep.EventID})
	c.failedStatus(t, refused, "only delete your own")
	if e, _ := find(c.srv.Conversation(bobPh, alicePh), keepID); e.Revoked {
		t.Error("Bob's message was revoked from Matrix")
	}

	// Delete-for-me on Alice's phone is not a revoke.
	before := len(c.tb.mx.Redactions())
	cl := c.ul.Client.(*Client)
	cl.handleEvent(deleteForMe(keepID))
	c.contactSays(t, bobPh, alicePh, "after the delete-for-me")
	if n := len(c.tb.mx.Redactions()); n != before {
		t.Errorf("a delete-for-me redacted %d events", n-before)
	}
	noNotBridgedNotice(t, c.tb.mx)
}

func redacted(mx *fakematrix.Matrix, evtID id.EventID) bool {
	for _, r := range mx.Redactions() {
		if r.Redacts == evtID {
			return true
		}
	}
	return false
}

// TestReactions: one reaction per user and message both ways (a new one
// replaces the old, an empty one removes it); reactions WhatsApp cannot
// carry fail with a notice; reactions on messages the portal never had are
// dropped quietly.
func TestReactions(t *testing.T) {
	c := startConv(t)
	_, b := c.contactSays(t, bobPh, alicePh, "lunch?")
	evtID, waID := c.aliceSays(t, b.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "yes!"})
	alice := types.NewJID(alicePh, types.DefaultUserServer).String()

	// WhatsApp → Matrix.
	reactionOn := func(target id.EventID, sender id.UserID) []fakematrix.Reaction {
		var out []fakematrix.Reaction
		for _, r := range c.tb.mx.Reactions() {
			if r.Target == target && r.Sender == sender && !redacted(c.tb.mx, r.EventID) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, emoji := range []string{"👍", "❤️"} {
		if _, err := c.srv.SendReaction(c.ctx, bobPh, alicePh, alice, waID, emoji); err != nil {
			t.Fatal(err)
		}
		if !c.tb.mx.Eventually(waitLong, func() bool {
			rs := reactionOn(evtID, bobGhost)
			return len(rs) == 1 && variationselector.Remove(rs[0].Key) == variationselector.Remove(emoji)
		}) {
			t.Fatalf("Bob's reactions on Matrix: %+v", reactionOn(evtID, bobGhost))
		}
	}
	if _, err := c.srv.SendReaction(c.ctx, bobPh, alicePh, alice, waID, ""); err != nil {
		t.Fatal(err)
	}
	if !c.tb.mx.Eventually(waitLong, func() bool { return len(reactionOn(evtID, bobGhost)) == 0 }) {
		t.Fatal("Bob's removed reaction stayed on Matrix")
	}
	// On a message the portal never had: dropped, nothing shows.
	before := len(c.tb.mx.Reactions())
	if _, err := c.srv.SendReaction(c.ctx, bobPh, alicePh, bobPh, "3A00000000000000000B", "😂"); err != nil {
		t.Fatal(err)
	}
	c.contactSays(t, bobPh, alicePh, "after the stray reaction")
	if n := len(c.tb.mx.Reactions()); n != before {
		t.Errorf("a reaction to an unknown message made %d reactions", n-before)
	}

	// Matrix → WhatsApp.
	bobMsg, _ := c.tb.br.DB.Message.GetPartByMXID(c.ctx, b.EventID)
	bKey, _ := waid.ParseMessageID(bobMsg.ID)
	react := func(key string) id.EventID {
		return c.inject(b.RoomID, event.EventReaction, &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: b.EventID, Key: key}})
	}
	react("👍")
	c.sees(t, bobPh, alicePh, "Alice's 👍", func(es []wasim.ChatEntry) bool { e, _ := find(es, bKey.ID); return e.Reactions[alicePh] == "👍" })
	second := react("🎉")
	c.sees(t, bobPh, alicePh, "Alice's 🎉 replacing 👍", func(es []wasim.ChatEntry) bool {
		e, _ := find(es, bKey.ID)
		return e.Reactions[alicePh] == "🎉" && len(e.Reactions) == 1
	})
	c.inject(b.RoomID, event.EventRedaction, &event.RedactionEventContent{Redacts: second})
	c.sees(t, bobPh, alicePh, "Alice's reaction removed", func(es []wasim.ChatEntry) bool { e, _ := find(es, bKey.ID); return len(e.Reactions) == 0 })
	// Not one emoji: a failed status with a notice.
	bad := react("sounds good")
	c.failedStatus(t, bad, "single emoji")
	if !c.tb.mx.Eventually(waitLong, func() bool {
		_, ok := c.tb.mx.FindMessage(func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "single emoji") })
		return ok
	}) {
		t.Error("no notice for a reaction WhatsApp cannot carry")
	}
	noNotBridgedNotice(t, c.tb.mx)
}

// TestGroupReactionsAndAdminRevoke: several members react to one message,
// each with their own reaction; an admin's revoke of a member's message
// redacts it; the staff member, not an admin, cannot revoke a member's
// message, but can in a group they administer.
func TestGroupReactionsAndAdminRevoke(t *testing.T) {
	c := startConv(t)
	gid, err := c.srv.CreateGroup(c.ctx, bobPh, "Team", "", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	carolID, carolMsg := c.contactSays(t, carolPh, gid, "draft attached")
	evtID, waID := c.aliceSays(t, carolMsg.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "thanks Carol"})
	alice := types.NewJID(alicePh, types.DefaultUserServer).String()
	for _, r := range []struct{ from, emoji string }{{bobPh, "👍"}, {carolPh, "🙏"}} {
		if _, err = c.srv.SendReaction(c.ctx, r.from, gid, alice, waID, r.emoji); err != nil {
			t.Fatal(err)
		}
	}
	if !c.tb.mx.Eventually(waitLong, func() bool {
		got := map[id.UserID]string{}
		for _, r := range c.tb.mx.Reactions() {
			if r.Target == evtID {
				got[r.Sender] = r.Key
			}
		}
		return variationselector.Remove(got[bobGhost]) == "👍" && got[carolGhst] == "🙏"
	}) {
		t.Fatalf("group reactions on Matrix: %+v", c.tb.mx.Reactions())
	}

	// Alice is not an admin: she cannot revoke Carol's message.
	refused := c.inject(carolMsg.RoomID, event.EventRedaction, &event.RedactionEventContent{Redacts: carolMsg.EventID})
	c.failedStatus(t, refused, "admin")
	// Bob (the owner) revokes it: it is redacted on Matrix.
	if _, err = c.srv.SendRevoke(c.ctx, bobPh, gid, carolPh, carolID); err != nil {
		t.Fatal(err)
	}
	if !c.tb.mx.Eventually(waitLong, func() bool { return redacted(c.tb.mx, carolMsg.EventID) }) {
		t.Fatal("the admin's revoke did not redact Carol's message")
	}

	// In Alice's own group she is the admin and revokes Bob's message.
	own, err := c.srv.CreateGroup(c.ctx, alicePh, "Alice's", "", []string{bobPh})
	if err != nil {
		t.Fatal(err)
	}
	bobID, bobMsg := c.contactSays(t, bobPh, own, "in Alice's group")
	c.inject(bobMsg.RoomID, event.EventRedaction, &event.RedactionEventContent{Redacts: bobMsg.EventID})
	c.sees(t, bobPh, own, "the admin's revoke", func(es []wasim.ChatEntry) bool { e, _ := find(es, bobID); return e.Revoked })
}

// TestReceiptsTypingPresence: a contact's read receipt, typing and
// presence reach Matrix; the staff member's read marker and typing reach
// the contact, and their presence is announced at connection; the staff
// member's reads from their phone mark the portal read as theirs.
func TestReceiptsTypingPresence(t *testing.T) {
	clk := &manualClock{}
	srv := startSimClock(t, clk)
	tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), clk)
	var mu sync.Mutex
	var presences []remote.Presence
	tb.conn.SetPresenceSink(func(_ context.Context, _ *bridgev2.UserLogin, p remote.Presence) {
		mu.Lock()
		presences = append(presences, p)
		mu.Unlock()
	})
	ul := loginQR(t, tb, srv)
	c := &conv{srv: srv, tb: tb, ul: ul, clk: clk, ctx: ctxFor(t)}
	t.Cleanup(func() { _ = srv.AwaitReceipts(context.Background(), alicePh) })

	if !tb.mx.Eventually(waitLong, func() bool { return srv.ClientAvailable(alicePh) }) {
		t.Fatal("the staff member's presence was not announced")
	}
	b1, b := c.contactSays(t, bobPh, alicePh, "one")
	b2, b2m := c.contactSays(t, bobPh, alicePh, "two")

	// Contact → Matrix: read receipt on the right event.
	evtID, waID := c.aliceSays(t, b.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "did you read this?"})
	if err := srv.SendReceipt(c.ctx, bobPh, alicePh, types.ReceiptTypeRead, waID); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, r := range tb.mx.Receipts() {
			if r.User == bobGhost && r.EventID == evtID {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("Bob's read receipt: %+v", tb.mx.Receipts())
	}

	// Typing.
	if err := srv.SendChatState(c.ctx, bobPh, alicePh, types.ChatPresenceComposing, ""); err != nil {
		t.Fatal(err)
	}
	if err := srv.SendChatState(c.ctx, bobPh, alicePh, types.ChatPresencePaused, ""); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		var started, stopped bool
		for _, ty := range tb.mx.Typings() {
			if ty.User == bobGhost && ty.RoomID == b.RoomID {
				started = started || ty.Timeout > 0
				stopped = started && ty.Timeout == 0
			}
		}
		return stopped
	}) {
		t.Fatalf("Bob's typing: %+v", tb.mx.Typings())
	}

	// Presence: subscribed when Bob wrote; online, then offline with last seen.
	if !tb.mx.Eventually(waitLong, func() bool { return srv.Subscribed(alicePh, bobPh) }) {
		t.Fatal("the connector did not subscribe to Bob's presence")
	}
	if _, err := srv.SetPresence(bobPh, true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SetPresence(bobPh, false, false); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(presences)
		return n >= 2 && presences[n-2].Online && !presences[n-1].Online && !presences[n-1].LastSeen.IsZero() &&
			presences[n-1].User == networkid.UserID("whatsapp."+bobPh)
	}) {
		t.Fatalf("presences: %+v", presences)
	}

	// Matrix → WhatsApp: the read marker on "two" marks "one" and "two" read.
	c.inject(b.RoomID, event.EphemeralEventReceipt, &event.ReceiptEventContent{
		b2m.EventID: {event.ReceiptTypeRead: {testUser: {Timestamp: time.Now()}}},
	})
	c.sees(t, bobPh, alicePh, "Alice read his messages", func(es []wasim.ChatEntry) bool {
		e1, _ := find(es, b1)
		e2, _ := find(es, b2)
		return e1.ReadByClient && e2.ReadByClient
	})
	// Typing.
	c.inject(b.RoomID, event.EphemeralEventTyping, &event.TypingEventContent{UserIDs: []id.UserID{testUser}})
	if _, err := srv.WaitChatState(c.ctx, func(cs wasim.ChatState) bool {
		return cs.From == alicePh && cs.To == bobPh && cs.State == types.ChatPresenceComposing
	}); err != nil {
		t.Fatal("Bob never saw Alice typing")
	}

	// Signals the organisation refuses are dropped quietly.
	tb.conn.SetOutboundCheck(func(_ context.Context, out remote.Outbound) error {
		if out.Kind.IsSignal() {
			return &remote.Refusal{Reason: "off"}
		}
		return nil
	})
	statesBefore := len(srv.ChatStates())
	c.inject(b.RoomID, event.EphemeralEventTyping, &event.TypingEventContent{UserIDs: []id.UserID{}})
	b3, b3m := c.contactSays(t, bobPh, alicePh, "three")
	c.inject(b.RoomID, event.EphemeralEventReceipt, &event.ReceiptEventContent{
		b3m.EventID: {event.ReceiptTypeRead: {testUser: {Timestamp: time.Now()}}},
	})
	_, lastEvt := c.aliceSays(t, b.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "messages still go"})
	c.sees(t, bobPh, alicePh, "Alice's last message", func(es []wasim.ChatEntry) bool { _, ok := find(es, lastEvt); return ok })
	if e, _ := find(srv.Conversation(bobPh, alicePh), b3); e.ReadByClient {
		t.Error("a refused read receipt reached Bob")
	}
	if n := len(srv.ChatStates()); n != statesBefore {
		t.Errorf("a refused typing notification reached Bob (%d)", n-statesBefore)
	}
	tb.conn.SetOutboundCheck(nil)

	// Alice reads Bob's messages on her phone: the portal is read as hers.
	receiptsBefore := len(tb.mx.Receipts())
	if err := srv.SendOwnRead(c.ctx, alicePh, bobPh, b3); err != nil {
		t.Fatal(err)
	}
	aliceGhost := tb.mx.FormatGhostMXID("whatsapp." + alicePh)
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, r := range tb.mx.Receipts()[receiptsBefore:] {
			if r.EventID == b3m.EventID && (r.User == testUser || r.User == aliceGhost) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("Alice's own read: %+v", tb.mx.Receipts()[receiptsBefore:])
	}
}

// TestOwnMessagesFromPhone: a message the staff member sends from their
// phone is bridged as theirs (IsFromMe with their login), not as a
// contact's.
func TestOwnMessagesFromPhone(t *testing.T) {
	c := startConv(t)
	_, b := c.contactSays(t, bobPh, alicePh, "hi Alice")
	if _, err := c.srv.SendText(c.ctx, alicePh, bobPh, "typed on my phone"); err != nil {
		t.Fatal(err)
	}
	own := c.tb.waitMsg(t, "Alice's phone message", func(m fakematrix.Message) bool { return m.Content.Body == "typed on my phone" })
	aliceGhost := c.tb.mx.FormatGhostMXID("whatsapp." + alicePh)
	if own.RoomID != b.RoomID || (own.Sender != aliceGhost && own.Sender != testUser) {
		t.Fatalf("own message in %s from %s", own.RoomID, own.Sender)
	}
	msg, err := c.tb.br.DB.Message.GetPartByMXID(c.ctx, own.EventID)
	if err != nil || msg == nil || msg.SenderID != networkid.UserID("whatsapp."+alicePh) {
		t.Fatalf("own message stored as %+v, %v", msg, err)
	}
}

// TestConversationAsPeopleHaveIt: a contact reacts to and edits messages
// in the middle of an answered burst, in a direct chat and in a group;
// everything reaches each side in order.
func TestConversationAsPeopleHaveIt(t *testing.T) {
	c := startConv(t)
	alice := types.NewJID(alicePh, types.DefaultUserServer).String()
	ids := map[string]string{}
	var room id.RoomID
	for _, text := range []string{"b1 hi", "b2 are you there", "b3 I need the report"} {
		waID, m := c.contactSays(t, bobPh, alicePh, text)
		ids[text], room = waID, m.RoomID
	}
	b2, _ := c.tb.mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "b2 are you there" })
	_, a1 := c.aliceSays(t, room, &event.MessageEventContent{MsgType: event.MsgText, Body: "a1 yes, here", RelatesTo: (&event.RelatesTo{}).SetReplyTo(b2.EventID)})
	if _, err := c.srv.SendReaction(c.ctx, bobPh, alicePh, alice, a1, "🙏"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.srv.SendEdit(c.ctx, bobPh, alicePh, ids["b3 I need the report"], "b3 I need the Q3 report"); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"b4 by Friday", "b5 thanks"} {
		waID, _ := c.contactSays(t, bobPh, alicePh, text)
		ids[text] = waID
	}
	_, a2 := c.aliceSays(t, room, &event.MessageEventContent{MsgType: event.MsgText, Body: "a2 will do"})

	// Matrix: Bob's events in the order he made them.
	var order []string
	for _, e := range c.tb.mx.Events() {
		if e.RoomID != room || e.Sender != bobGhost {
			continue
		}
		switch e.Type {
		case event.EventReaction:
			order = append(order, "reaction")
		case event.EventMessage:
			mc := e.Content.AsMessage()
			if mc.RelatesTo.GetReplaceID() != "" {
				order = append(order, "edit:"+mc.NewContent.Body)
			} else {
				order = append(order, mc.Body)
			}
		}
	}
	want := []string{"b1 hi", "b2 are you there", "b3 I need the report", "reaction", "edit:b3 I need the Q3 report", "b4 by Friday", "b5 thanks"}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Errorf("Bob's events on Matrix:\n got %q\nwant %q", order, want)
	}
	// WhatsApp: Bob's view of the whole chat, in order.
	es := c.sees(t, bobPh, alicePh, "the whole conversation", func(es []wasim.ChatEntry) bool { _, ok := find(es, a2); return ok })
	var view []string
	for _, e := range es {
		s := e.Text
		if e.Edited {
			s += " (edited)"
		}
		if r := e.Reactions[bobPh]; r != "" {
			s += " " + r
		}
		if e.ReplyTo != "" {
			s += " ↩" + e.ReplyTo
		}
		view = append(view, s)
	}
	wantView := []string{"b1 hi", "b2 are you there", "b3 I need the Q3 report (edited)", "a1 yes, here 🙏 ↩" + ids["b2 are you there"], "b4 by Friday", "b5 thanks", "a2 will do"}
	if strings.Join(view, "|") != strings.Join(wantView, "|") {
		t.Errorf("Bob's view:\n got %q\nwant %q", view, wantView)
	}

	// A group: members react and edit around Alice's answer.
	gid, err := c.srv.CreateGroup(c.ctx, bobPh, "Ops", "", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	g1, gm := c.contactSays(t, carolPh, gid, "g1 server down?")
	_, ga := c.aliceSays(t, gm.RoomID, &event.MessageEventContent{MsgType: event.MsgText, Body: "ga looking"})
	if _, err = c.srv.SendReaction(c.ctx, bobPh, gid, alice, ga, "👀"); err != nil {
		t.Fatal(err)
	}
	if _, err = c.srv.SendEdit(c.ctx, carolPh, gid, g1, "g1 server down since 9?"); err != nil {
		t.Fatal(err)
	}
	if _, err = c.srv.SendReaction(c.ctx, carolPh, gid, alice, ga, "🙏"); err != nil {
		t.Fatal(err)
	}
	c.contactSays(t, bobPh, gid, "g2 fixed")
	var gorder []string
	for _, e := range c.tb.mx.Events() {
		if e.RoomID != gm.RoomID || (e.Type != event.EventMessage && e.Type != event.EventReaction) || e.Sender == c.tb.mx.BotIntent().GetMXID() {
			continue
		}
		who := map[id.UserID]string{bobGhost: "bob", carolGhst: "carol"}[e.Sender]
		if e.Type == event.EventReaction {
			gorder = append(gorder, who+":"+variationselector.Remove(e.Content.AsReaction().RelatesTo.Key))
		} else if mc := e.Content.AsMessage(); mc.NewContent != nil {
			gorder = append(gorder, who+":edit:"+mc.NewContent.Body)
		} else {
			gorder = append(gorder, who+":"+mc.Body)
		}
	}
	wantG := []string{"carol:g1 server down?", "bob:👀", "carol:edit:g1 server down since 9?", "carol:🙏", "bob:g2 fixed"}
	if strings.Join(gorder, "|") != strings.Join(wantG, "|") {
		t.Errorf("group events on Matrix:\n got %q\nwant %q", gorder, wantG)
	}
	noNotBridgedNotice(t, c.tb.mx)
}

func deleteForMe(msgID string) *events.DeleteForMe {
	return &events.DeleteForMe{ChatJID: types.NewJID(bobPh, types.DefaultUserServer), MessageID: msgID, Timestamp: time.Now()}
}

// TestPresenceFollowedAfterRestart: after a restart the connector follows
// the presence of its direct chats' contacts again (WhatsApp forgets
// subscriptions with the connection), before anyone writes.
func TestPresenceFollowedAfterRestart(t *testing.T) {
	srv := startSim(t)
	db := dbtest.SQLite(t)
	tb := startBridge(t, srv, db.Open(t))
	loginQR(t, tb, srv)
	ctx := ctxFor(t)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "hello"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Bob's message", func(m fakematrix.Message) bool { return m.Content.Body == "hello" })
	if !tb.mx.Eventually(waitLong, func() bool { return srv.Subscribed(alicePh, bobPh) }) {
		t.Fatal("not subscribed to Bob's presence")
	}
	if err := srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
	tb.stop()
	// The server notices the closed connection on its own goroutine.
	if !tb.mx.Eventually(waitLong, func() bool { return !srv.Subscribed(alicePh, bobPh) }) {
		t.Fatal("the subscription outlived the connection")
	}
	tb2 := startBridge(t, srv, db.Open(t))
	if !tb2.mx.Eventually(waitLong, func() bool { return srv.Subscribed(alicePh, bobPh) && srv.ClientAvailable(alicePh) }) {
		t.Fatal("Bob's presence is not followed after the restart")
	}
}

// TestEditsAndRevokesWhileDown: what a contact edits and revokes while the
// gateway is stopped waits in WhatsApp's offline queue and reaches Matrix
// once it is back: the edit as m.replace of the bridged message, the
// revoke as its redaction, each once.
func TestEditsAndRevokesWhileDown(t *testing.T) {
	srv := startSim(t)
	db := dbtest.SQLite(t)
	tb := startBridge(t, srv, db.Open(t))
	loginQR(t, tb, srv)
	ctx := ctxFor(t)
	keepID, err := srv.SendText(ctx, bobPh, alicePh, "the meeting room is 4B")
	if err != nil {
		t.Fatal(err)
	}
	dropID, err := srv.SendText(ctx, bobPh, alicePh, "ignore this one")
	if err != nil {
		t.Fatal(err)
	}
	keep := tb.waitMsg(t, "the first message", func(m fakematrix.Message) bool { return m.Content.Body == "the meeting room is 4B" })
	drop := tb.waitMsg(t, "the second message", func(m fakematrix.Message) bool { return m.Content.Body == "ignore this one" })
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
	tb.stop()

	if _, err = srv.SendEdit(ctx, bobPh, alicePh, keepID, "the meeting room is 5C"); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendRevoke(ctx, bobPh, alicePh, bobPh, dropID); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendText(ctx, bobPh, alicePh, "see you there"); err != nil {
		t.Fatal(err)
	}

	tb2 := startBridge(t, srv, db.Open(t))
	tb2.waitMsg(t, "the message sent while down", func(m fakematrix.Message) bool { return m.Content.Body == "see you there" })
	edit := tb2.waitMsg(t, "the edit made while down", func(m fakematrix.Message) bool { return m.Replaces() == keep.EventID })
	if edit.Content.NewContent == nil || edit.Content.NewContent.Body != "the meeting room is 5C" {
		t.Errorf("edit made while down: %+v", edit.Content)
	}
	if !tb2.mx.Eventually(waitLong, func() bool { return len(tb2.mx.Redactions()) > 0 }) {
		t.Fatal("the revoke made while down never reached Matrix")
	}
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
	edits := tb2.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == keep.EventID })
	redactions := tb2.mx.Redactions()
	if len(edits) != 1 || len(redactions) != 1 || redactions[0].Redacts != drop.EventID {
		t.Errorf("after the restart: %d edits, redactions %+v; want one edit and one redaction of %s", len(edits), redactions, drop.EventID)
	}
}
