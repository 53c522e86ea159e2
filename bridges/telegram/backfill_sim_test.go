package telegram

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/variationselector"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestBackfillIntoNewPortal: when a chat's portal is made, its latest
// messages (initial_messages of them) come first, in order, with their
// senders (the staff member's own message included) and original times,
// pinging nobody; the message that made the portal comes once, after them;
// older history stays out.
func TestBackfillIntoNewPortal(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	var sentAt []time.Time
	for _, m := range []struct {
		from, to *tgsim.Account
		text     string
	}{{bob, alice, "history 1"}, {bob, alice, "history 2"}, {bob, alice, "history 3 for @Alice"}, {alice, bob, "my answer"}, {bob, alice, "history 4"}} {
		msg, err := s.SendMessage(m.from.ID, m.to.ID, m.text, nil)
		if err != nil {
			t.Fatal(err)
		}
		sentAt = append(sentAt, msg.Date)
	}
	tb := startBridgeOn(t, s, dbtest.SQLite(t).Open(t), fakematrix.New(), func(c *TelegramConnector, _ *fakematrix.Matrix) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: 4, MaxAgeDays: 30}
	}, func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	})
	ul := loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	if _, err := s.SendMessage(bob.ID, alice.ID, "live now", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "live now" }); !ok {
		t.Fatal("the live message never reached Matrix")
	}
	key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: bob.ID}), Receiver: ul.ID}
	portal, err := tb.br.GetExistingPortalByKey(context.Background(), key)
	if err != nil || portal == nil || portal.MXID == "" {
		t.Fatalf("no portal: %v", err)
	}
	var bodies []string
	var msgs []fakematrix.Message
	for _, m := range tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == portal.MXID }) {
		bodies = append(bodies, m.Content.Body)
		msgs = append(msgs, m)
	}
	// The latest 4 of the chat when the portal was made: the live message
	// was one of them.
	want := []string{"history 3 for @Alice", "my answer", "history 4", "live now"}
	if strings.Join(bodies, " | ") != strings.Join(want, " | ") {
		t.Fatalf("portal messages %q, want %q", bodies, want)
	}
	bobGhost := tb.mx.FormatGhostMXID(tgid.MakeUserID(bob.ID))
	if msgs[0].Sender != bobGhost || msgs[2].Sender != bobGhost || msgs[1].Sender == bobGhost {
		t.Errorf("senders %s, %s, %s: want bob's ghost, not bob's ghost, bob's ghost", msgs[0].Sender, msgs[1].Sender, msgs[2].Sender)
	}
	for i, at := range sentAt[2:] {
		if !msgs[i].TS.Equal(at.Truncate(time.Second)) {
			t.Errorf("%q has time %s, want its original %s", bodies[i], msgs[i].TS, at.Truncate(time.Second))
		}
	}
	for _, m := range msgs[:3] {
		if m.Content.Mentions == nil || len(m.Content.Mentions.UserIDs) != 0 || m.Content.Mentions.Room {
			t.Errorf("backfilled %q may ping: mentions %+v", m.Content.Body, m.Content.Mentions)
		}
	}
}

// TestBackfillMediaRepliesAndReactions: the history put into a new portal
// is converted as live messages are: a photo, a file, a reply pointing at
// the message it answers, and the reactions each message had, with who
// reacted (the staff member's own included).
func TestBackfillMediaRepliesAndReactions(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	photo, err := s.SendMedia(bob.ID, alice.ID, tgsim.MediaSpec{Kind: "photo", Data: testPNG(t, 32, 24), Caption: "the view"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendMedia(bob.ID, alice.ID, tgsim.MediaSpec{Kind: "document", Data: []byte("%PDF-1.4 report"), Name: "report.pdf", MIME: "application/pdf"}); err != nil {
		t.Fatal(err)
	}
	question, err := s.SendMessage(bob.ID, alice.ID, "a question", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendReply(bob.ID, alice.ID, "the answer", question.SenderMsgID, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.React(alice.ID, bob.ID, question.ID, tgsim.Reaction{Emoji: "👍"}); err != nil {
		t.Fatal(err)
	}
	if err := s.React(bob.ID, alice.ID, photo.SenderMsgID, tgsim.Reaction{Emoji: "🔥"}); err != nil {
		t.Fatal(err)
	}
	tb := startBridgeOn(t, s, dbtest.SQLite(t).Open(t), fakematrix.New(), func(c *TelegramConnector, _ *fakematrix.Matrix) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: 10}
	}, func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	})
	loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	if _, err := s.SendMessage(bob.ID, alice.ID, "live now", nil); err != nil {
		t.Fatal(err)
	}
	live, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "live now" })
	if !ok {
		t.Fatal("the live message never reached Matrix")
	}
	msgs := tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == live.RoomID })
	if len(msgs) != 5 {
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, string(m.Content.MsgType)+" "+m.Content.Body)
		}
		t.Fatalf("portal messages %q, want a photo, a file, a question, its answer and the live one", bodies)
	}
	if m := msgs[0]; m.Content.MsgType != event.MsgImage || m.Content.URL == "" && m.Content.File == nil {
		t.Errorf("first message %s %q, want the photo with its file", m.Content.MsgType, m.Content.Body)
	}
	if m := msgs[1]; m.Content.MsgType != event.MsgFile || m.Content.GetFileName() != "report.pdf" {
		t.Errorf("second message %s %q, want the file report.pdf", m.Content.MsgType, m.Content.GetFileName())
	}
	if msgs[2].Content.Body != "a question" || msgs[3].Content.Body != "the answer" {
		t.Fatalf("messages 3 and 4: %q, %q", msgs[2].Content.Body, msgs[3].Content.Body)
	}
	if got := msgs[3].Content.RelatesTo.GetReplyTo(); got != msgs[2].EventID {
		t.Errorf("the answer replies to %q, want the question %q", got, msgs[2].EventID)
	}
	bobGhost := tb.mx.FormatGhostMXID(tgid.MakeUserID(bob.ID))
	var onQuestion, onPhoto []fakematrix.Reaction
	for _, r := range tb.mx.Reactions() {
		switch r.Target {
		case msgs[2].EventID:
			onQuestion = append(onQuestion, r)
		case msgs[0].EventID:
			onPhoto = append(onPhoto, r)
		}
	}
	if len(onPhoto) != 1 || variationselector.Remove(onPhoto[0].Key) != "🔥" || onPhoto[0].Sender != bobGhost {
		t.Errorf("reactions to the photo %+v, want bob's 🔥", onPhoto)
	}
	if len(onQuestion) != 1 || variationselector.Remove(onQuestion[0].Key) != "👍" || onQuestion[0].Sender == bobGhost {
		t.Errorf("reactions to the question %+v, want alice's 👍", onQuestion)
	}
}

// TestBackfillBasicGroup: a basic group's history goes into its new portal
// too, from the box of the login that makes it, with two staff members in
// the group: each message once, in order, before the one that made the
// portal; the other login's copies map to them (its edit of a message of
// the history edits the bridged one).
func TestBackfillBasicGroup(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	carol := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	dave := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave"})
	// carol's box diverges from alice's: the group's messages have other
	// IDs in it.
	if _, err := s.SendMessage(dave.ID, carol.ID, "private to carol", nil); err != nil {
		t.Fatal(err)
	}
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: bob.ID, Members: []int64{alice.ID, carol.ID, dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		from *tgsim.Account
		text string
	}{{bob, "one"}, {dave, "two"}, {bob, "three"}} {
		if _, err := s.ChatPost(chat.ID, p.from.ID, p.text); err != nil {
			t.Fatal(err)
		}
	}
	tb := startBridgeOn(t, s, dbtest.SQLite(t).Open(t), fakematrix.New(), func(c *TelegramConnector, _ *fakematrix.Matrix) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: 10}
	}, func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	})
	loginAs(t, tb, s, testUser, alice)
	loginAs(t, tb, s, staffCarol, carol)
	if !tb.mx.Eventually(20*time.Second, func() bool { return s.Sessions(alice.ID) > 0 && s.Sessions(carol.ID) > 0 }) {
		t.Fatal("the logins never connected")
	}
	if _, err := s.ChatPost(chat.ID, bob.ID, "live"); err != nil {
		t.Fatal(err)
	}
	live, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "live" })
	if !ok {
		t.Fatal("the live message never reached Matrix")
	}
	// dave edits "two": both logins get the edit, under their own IDs.
	var twoID int
	for _, m := range s.ChatMessages(chat.ID, dave.ID) {
		if m.Text == "two" {
			twoID = m.ID
		}
	}
	if err := s.ChatEdit(chat.ID, dave.ID, twoID, "two, edited"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool {
		return m.Content.NewContent != nil && m.Content.NewContent.Body == "two, edited"
	}); !ok {
		t.Fatal("the edit of a message of the history never reached Matrix")
	}
	if _, err := s.ChatPost(chat.ID, bob.ID, "after"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "after" }); !ok {
		t.Fatal("the message after never reached Matrix")
	}
	var bodies []string
	var two id.EventID
	for _, m := range tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == live.RoomID }) {
		if m.Replaces() != "" {
			if m.Replaces() != two {
				t.Errorf("an edit of %s, want of %q (%s)", m.Replaces(), "two", two)
			}
			bodies = append(bodies, "edit")
			continue
		}
		if m.Content.Body == "two" {
			two = m.EventID
		}
		bodies = append(bodies, m.Content.Body)
	}
	if want := []string{"one", "two", "three", "live", "edit", "after"}; !slices.Equal(bodies, want) {
		t.Errorf("the group's portal has %q, want %q", bodies, want)
	}
}

// TestBackfillReadState: the history put into a new portal moves the staff
// member's Matrix read marker only as far as they read the chat on
// Telegram. A new contact's first message, unread on the phone, stays
// unread in Matrix (no receipt: the client shows it as new); a chat read on
// the phone and answered from it is marked read up to its last message.
func TestBackfillReadState(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	carol := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})
	mx := fakematrix.New()
	mx.EnableDoublePuppet()
	tb := startBridgeOn(t, s, dbtest.SQLite(t).Open(t), mx, func(c *TelegramConnector, _ *fakematrix.Matrix) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: 10, MaxAgeDays: 30}
	}, func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	})
	ul := loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	portalOf := func(contact *tgsim.Account) *bridgev2.Portal {
		t.Helper()
		key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: contact.ID}), Receiver: ul.ID}
		portal, err := tb.br.GetExistingPortalByKey(context.Background(), key)
		if err != nil || portal == nil || portal.MXID == "" {
			t.Fatalf("no portal for %s: %v", contact.FirstName, err)
		}
		return portal
	}
	receiptsIn := func(room id.RoomID) []fakematrix.Receipt {
		var out []fakematrix.Receipt
		for _, r := range mx.Receipts() {
			if r.RoomID == room && r.User == ul.UserMXID {
				out = append(out, r)
			}
		}
		return out
	}

	// Carol writes; Alice reads it on her phone and answers from it: the
	// answer makes the portal, with Carol's message before it, read.
	if _, err := s.SendMessage(carol.ID, alice.ID, "are you in tomorrow?", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ReadHistory(alice.ID, carol.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendMessage(alice.ID, carol.ID, "yes, all day", nil); err != nil {
		t.Fatal(err)
	}
	answer, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "yes, all day" })
	if !ok {
		t.Fatal("the answer never reached Matrix")
	}
	if !mx.Eventually(20*time.Second, func() bool {
		return slices.ContainsFunc(receiptsIn(portalOf(carol).MXID), func(r fakematrix.Receipt) bool { return r.EventID == answer.EventID })
	}) {
		t.Fatalf("the chat read on the phone was not marked read in Matrix: receipts %+v", mx.Receipts())
	}

	// Bob, a new contact, writes twice; Alice has not read it.
	if _, err := s.SendMessage(bob.ID, alice.ID, "hello, I am Bob", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendMessage(bob.ID, alice.ID, "are you there?", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "are you there?" }); !ok {
		t.Fatal("Bob's messages never reached Matrix")
	}
	bobRoom := portalOf(bob).MXID
	// A marker after Bob's portal was filled: Carol writes again, and once
	// her message is in Matrix the backfill of Bob's portal (earlier in the
	// same event stream) is over.
	if _, err := s.SendMessage(carol.ID, alice.ID, "see you", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "see you" }); !ok {
		t.Fatal("Carol's second message never reached Matrix")
	}
	if got := receiptsIn(bobRoom); len(got) != 0 {
		t.Errorf("the new contact's unread messages were marked read in Matrix for the staff member: %+v", got)
	}
}
