package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// remoteView is one message of the chat as the outside contact's phone
// shows it.
type remoteView struct {
	ID        string // the message's ID in the contact's app
	FromStaff bool
	Text      string // edits applied
	Edited    bool
	Deleted   bool
	ReplyTo   string            // the ID of the message it answers
	Reactions map[string]string // by "staff" or "contact"
	// ReadByStaff: the contact's message shows read by the staff member.
	ReadByStaff bool
}

// outsideContact is what the conversation test does with a contact on one
// network, and what it reads back from the contact's phone.
type outsideContact struct {
	network string
	send    func(t *testing.T, text string) string // returns the message's ID
	reply   func(t *testing.T, to remoteView, text string)
	edit    func(t *testing.T, own remoteView, text string)
	delete  func(t *testing.T, own remoteView)
	react   func(t *testing.T, to remoteView, key string)
	read    func(t *testing.T, upTo remoteView)
	typing  func(t *testing.T)
	online  func(t *testing.T)
	// fromPhone sends text from the staff member's own phone.
	fromPhone func(t *testing.T, text string)
	view      func() []remoteView
	// staffTyping tells whether the contact saw the staff member typing.
	staffTyping func() bool
}

// waitView waits until the contact's phone shows a message for which pred
// holds, and returns it.
func waitView(ctx context.Context, t *testing.T, c *outsideContact, what string, pred func(remoteView) bool) remoteView {
	t.Helper()
	var found remoteView
	eventually(ctx, t, c.network+": the contact's phone showing "+what, func() bool {
		for _, m := range c.view() {
			if pred(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// waitPortal waits until the client's view of the portal satisfies pred.
func waitPortal(ctx context.Context, t *testing.T, c *Client, roomID, what string, pred func([]ConversationMessage) bool) []ConversationMessage {
	t.Helper()
	var msgs []ConversationMessage
	eventually(ctx, t, "the portal showing "+what, func() bool {
		var err error
		if msgs, err = c.Conversation(ctx, roomID); err != nil {
			t.Fatal(err)
		}
		return pred(msgs)
	})
	return msgs
}

func findMessage(msgs []ConversationMessage, pred func(ConversationMessage) bool) (ConversationMessage, bool) {
	for _, m := range msgs {
		if pred(m) {
			return m, true
		}
	}
	return ConversationMessage{}, false
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("message ID %q: %v", s, err)
	}
	return n
}

func withEvent(eventID string) func(ConversationMessage) bool {
	return func(m ConversationMessage) bool { return m.EventID == eventID }
}

func withBody(body string) func(ConversationMessage) bool {
	return func(m ConversationMessage) bool { return m.Body == body }
}

func hasReaction(m ConversationMessage, sender, key string) bool {
	return slices.ContainsFunc(m.Reactions, func(r Reaction) bool { return r.Sender == sender && r.Key == key })
}

// TestConversationEndToEnd: on Dendrite, in encrypted portals, with
// matrix-js-sdk as the staff member's client, for Telegram and WhatsApp:
// what the contact does (a reply to the staff member's message, an edit,
// a reaction, a deletion, reading, typing, going online) shows in the
// client, decrypted, with its relations right; what the client does (a
// reply, an edit, a reaction, a redaction, a read receipt, typing) reaches
// the contact's phone; what the staff member sends from their own phone
// shows from their own Matrix account. On Telegram, an edit and a deletion
// made while the gateway is stopped arrive once it is back.
func TestConversationEndToEnd(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const staffPhone, alicePhone = "+33600000061", "+33600000062"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", alicePhone: "Alice Outside"})
	tgStaff, tgContact := telegramWorld(t, tg, "+15550061", "")

	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam"}})
	sam := s.User("sam")
	ctx := s.Ctx()
	mgmt, _ := s.BotRoom(sam)
	s.LinkWhatsAppQR(sam, mgmt, wa, staffPhone)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550061")

	telegram := &outsideContact{
		network: "telegram",
		send: func(t *testing.T, text string) string {
			m, err := tg.SendMessage(tgContact.ID, tgStaff.ID, text, nil)
			if err != nil {
				t.Fatal(err)
			}
			return itoa(m.SenderMsgID)
		},
		reply: func(t *testing.T, to remoteView, text string) {
			if _, err := tg.SendReply(tgContact.ID, tgStaff.ID, text, atoi(t, to.ID), ""); err != nil {
				t.Fatal(err)
			}
		},
		edit: func(t *testing.T, own remoteView, text string) {
			if _, err := tg.EditMessage(tgContact.ID, tgStaff.ID, atoi(t, own.ID), text); err != nil {
				t.Fatal(err)
			}
		},
		delete: func(t *testing.T, own remoteView) {
			if err := tg.DeleteMessages(tgContact.ID, []int{atoi(t, own.ID)}, true); err != nil {
				t.Fatal(err)
			}
		},
		react: func(t *testing.T, to remoteView, key string) {
			if err := tg.React(tgContact.ID, tgStaff.ID, atoi(t, to.ID), tgsim.Reaction{Emoji: key}); err != nil {
				t.Fatal(err)
			}
		},
		read: func(t *testing.T, upTo remoteView) {
			if err := tg.ReadHistory(tgContact.ID, tgStaff.ID, atoi(t, upTo.ID)); err != nil {
				t.Fatal(err)
			}
		},
		typing: func(t *testing.T) {
			if err := tg.SetTyping(tgContact.ID, tgStaff.ID); err != nil {
				t.Fatal(err)
			}
		},
		online: func(t *testing.T) {
			if err := tg.SetOnline(tgContact.ID, true); err != nil {
				t.Fatal(err)
			}
		},
		fromPhone: func(t *testing.T, text string) {
			if _, err := tg.SendMessage(tgStaff.ID, tgContact.ID, text, nil); err != nil {
				t.Fatal(err)
			}
		},
		view: func() []remoteView {
			read := tg.ReadState(tgContact.ID, tgStaff.ID).ReadOutbox
			var out []remoteView
			for _, m := range tg.History(tgContact.ID, tgStaff.ID) {
				id := m.IDFor(tgContact.ID)
				v := remoteView{ID: itoa(id), FromStaff: m.From == tgStaff.ID, Text: m.Text, Edited: !m.Edited.IsZero(),
					Deleted: m.Deleted, Reactions: map[string]string{}}
				if m.ReplyToID != 0 {
					if m.From == tgContact.ID {
						v.ReplyTo = itoa(m.ReplyToSenderMsgID)
					} else {
						v.ReplyTo = itoa(m.ReplyToID)
					}
				}
				for _, r := range m.Reactions {
					who := "contact"
					if r.User == tgStaff.ID {
						who = "staff"
					}
					v.Reactions[who] = r.Emoji
				}
				v.ReadByStaff = !v.FromStaff && id <= read
				out = append(out, v)
			}
			return out
		},
		staffTyping: func() bool {
			return slices.ContainsFunc(tg.TypingSeen(tgContact.ID), func(ty tgsim.Typing) bool { return ty.From == tgStaff.ID })
		},
	}

	whatsApp := &outsideContact{
		network: "whatsapp",
		send: func(t *testing.T, text string) string {
			id, err := wa.SendText(ctx, alicePhone, staffPhone, text)
			if err != nil {
				t.Fatal(err)
			}
			return id
		},
		reply: func(t *testing.T, to remoteView, text string) {
			if _, err := wa.SendReply(ctx, alicePhone, staffPhone, text, to.ID, staffPhone, nil); err != nil {
				t.Fatal(err)
			}
		},
		edit: func(t *testing.T, own remoteView, text string) {
			if _, err := wa.SendEdit(ctx, alicePhone, staffPhone, own.ID, text); err != nil {
				t.Fatal(err)
			}
		},
		delete: func(t *testing.T, own remoteView) {
			if _, err := wa.SendRevoke(ctx, alicePhone, staffPhone, alicePhone, own.ID); err != nil {
				t.Fatal(err)
			}
		},
		react: func(t *testing.T, to remoteView, key string) {
			if _, err := wa.SendReaction(ctx, alicePhone, staffPhone, staffPhone, to.ID, key); err != nil {
				t.Fatal(err)
			}
		},
		read: func(t *testing.T, upTo remoteView) {
			if err := wa.SendReceipt(ctx, alicePhone, staffPhone, types.ReceiptTypeRead, upTo.ID); err != nil {
				t.Fatal(err)
			}
		},
		typing: func(t *testing.T) {
			if err := wa.SendChatState(ctx, alicePhone, staffPhone, types.ChatPresenceComposing, types.ChatPresenceMediaText); err != nil {
				t.Fatal(err)
			}
		},
		online: func(t *testing.T) {
			if _, err := wa.SetPresence(alicePhone, true, false); err != nil {
				t.Fatal(err)
			}
		},
		fromPhone: func(t *testing.T, text string) {
			if _, err := wa.SendText(ctx, staffPhone, alicePhone, text); err != nil {
				t.Fatal(err)
			}
		},
		view: func() []remoteView {
			var out []remoteView
			for _, e := range wa.Conversation(alicePhone, staffPhone) {
				v := remoteView{ID: e.ID, FromStaff: e.From == strings.TrimPrefix(staffPhone, "+"), Text: e.Text, Edited: e.Edited,
					Deleted: e.Revoked, ReplyTo: e.ReplyTo, Reactions: map[string]string{}, ReadByStaff: e.ReadByClient}
				for who, key := range e.Reactions {
					if who == strings.TrimPrefix(staffPhone, "+") {
						v.Reactions["staff"] = key
					} else {
						v.Reactions["contact"] = key
					}
				}
				out = append(out, v)
			}
			return out
		},
		staffTyping: func() bool {
			return slices.ContainsFunc(wa.ChatStates(), func(cs wasim.ChatState) bool {
				return cs.From == strings.TrimPrefix(staffPhone, "+") && cs.State == types.ChatPresenceComposing
			})
		},
	}

	var portals []string
	for _, c := range []*outsideContact{telegram, whatsApp} {
		t.Run(c.network, func(t *testing.T) {
			question := c.network + ": can we meet on Tuesday?"
			c.send(t, question)
			room, err := sam.WaitRoom(ctx, RoomFilter{Exclude: append([]string{mgmt}, portals...), NameContains: "Alice", AutoJoin: true})
			if err != nil {
				t.Fatal(err)
			}
			portal := room.RoomID
			portals = append(portals, portal)
			first, err := sam.WaitMessage(ctx, portal, MessageFilter{BodyContains: question})
			if err != nil {
				t.Fatal(err)
			}
			ghost := first.Sender

			// The staff member reads, types, answers with a reply and
			// corrects it.
			if err = sam.ReadReceipt(ctx, portal, first.EventID); err != nil {
				t.Fatal(err)
			}
			waitView(ctx, t, c, "the question read by the staff member", func(v remoteView) bool { return v.Text == question && v.ReadByStaff })
			if err = sam.Typing(ctx, portal, true); err != nil {
				t.Fatal(err)
			}
			eventually(ctx, t, "the contact seeing the staff member typing", c.staffTyping)
			if err = sam.Typing(ctx, portal, false); err != nil {
				t.Fatal(err)
			}
			answerEvt, err := sam.Reply(ctx, portal, first.EventID, "Yes, at 10")
			if err != nil {
				t.Fatal(err)
			}
			questionView := waitView(ctx, t, c, "the question", func(v remoteView) bool { return v.Text == question })
			answer := waitView(ctx, t, c, "the staff member's reply", func(v remoteView) bool { return v.FromStaff && v.Text == "Yes, at 10" })
			if answer.ReplyTo != questionView.ID {
				t.Errorf("the staff member's reply answers message %q on the phone, want the question %q", answer.ReplyTo, questionView.ID)
			}
			if _, err = sam.Edit(ctx, portal, answerEvt, "Yes, at 11"); err != nil {
				t.Fatal(err)
			}
			waitView(ctx, t, c, "the edited reply", func(v remoteView) bool { return v.ID == answer.ID && v.Text == "Yes, at 11" && v.Edited })
			if _, err = sam.React(ctx, portal, first.EventID, "👍"); err != nil {
				t.Fatal(err)
			}
			waitView(ctx, t, c, "the staff member's reaction", func(v remoteView) bool { return v.ID == questionView.ID && v.Reactions["staff"] == "👍" })
			oops, err := sam.Send(ctx, portal, "oops, wrong chat")
			if err != nil {
				t.Fatal(err)
			}
			oopsView := waitView(ctx, t, c, "the staff member's mistake", func(v remoteView) bool { return v.FromStaff && v.Text == "oops, wrong chat" })
			if _, err = sam.Redact(ctx, portal, oops, ""); err != nil {
				t.Fatal(err)
			}
			waitView(ctx, t, c, "the mistake deleted", func(v remoteView) bool { return v.ID == oopsView.ID && v.Deleted })

			// The contact reads the answer, replies to it, corrects its
			// question, reacts, deletes a message, types and goes online.
			c.read(t, answer)
			eventually(ctx, t, "the contact's read on the staff member's answer", func() bool {
				receipts, err := sam.Receipts(ctx, portal)
				if err != nil {
					t.Fatal(err)
				}
				r, ok := receipts[ghost]
				return ok && r.EventID == answerEvt
			})
			c.reply(t, answer, "Perfect, see you then")
			c.edit(t, questionView, c.network+": can we meet on Tuesday morning?")
			c.react(t, answer, "🎉")
			sorryID := c.send(t, "sent by mistake")
			var sorryEvt string
			waitPortal(ctx, t, sam, portal, "the contact's mistake", func(msgs []ConversationMessage) bool {
				m, ok := findMessage(msgs, withBody("sent by mistake"))
				sorryEvt = m.EventID
				return ok
			})
			c.delete(t, remoteView{ID: sorryID})
			msgs := waitPortal(ctx, t, sam, portal, "the contact's reply, edit, reaction and deletion", func(msgs []ConversationMessage) bool {
				reply, ok1 := findMessage(msgs, withBody("Perfect, see you then"))
				q, ok2 := findMessage(msgs, withEvent(first.EventID))
				a, ok3 := findMessage(msgs, withEvent(answerEvt))
				gone, ok4 := findMessage(msgs, withEvent(sorryEvt))
				return ok1 && ok2 && ok3 && ok4 && reply.ReplyTo == answerEvt &&
					q.LatestBody == c.network+": can we meet on Tuesday morning?" && hasReaction(a, ghost, "🎉") && gone.Redacted
			})
			for _, m := range msgs {
				if m.DecryptionError != "" {
					t.Errorf("event %s could not be decrypted: %s", m.EventID, m.DecryptionError)
				}
			}
			c.typing(t)
			eventually(ctx, t, "the client seeing the contact typing", func() bool {
				users, err := sam.TypingUsers(ctx, portal)
				if err != nil {
					t.Fatal(err)
				}
				return slices.Contains(users, ghost)
			})
			c.online(t)
			eventually(ctx, t, "the contact's ghost online", func() bool {
				p, err := sam.Presence(ctx, ghost, true)
				if err != nil {
					t.Fatal(err)
				}
				return p.Presence == "online"
			})

			// What the staff member sends from their own phone shows from
			// their own Matrix account.
			c.fromPhone(t, "sent from my phone on "+c.network)
			own, err := sam.WaitMessage(ctx, portal, MessageFilter{BodyContains: "sent from my phone on " + c.network})
			if err != nil {
				t.Fatal(err)
			}
			if own.Sender != sam.UserID {
				t.Errorf("the staff member's phone message came from %s, want their own account %s", own.Sender, sam.UserID)
			}

			// The homeserver keeps no notification for the gateway's own
			// users: their push rules are muted, so the staff member's
			// messages cost it nothing for them.
			for _, user := range []string{ghost, s.BotID} {
				if n := portalNotifications(ctx, t, s, user, portal); n != 0 {
					t.Errorf("the homeserver keeps %d notifications for %s in the portal, want none", n, user)
				}
			}
		})
	}

	// Telegram: what the contact edits and deletes while the gateway is
	// stopped arrives when it is back, once.
	t.Run("telegramWhileDown", func(t *testing.T) {
		if len(portals) == 0 {
			t.Fatal("the telegram subtest made no portal")
		}
		portal := portals[0]
		keepID := telegram.send(t, "the meeting room is 4B")
		dropID := telegram.send(t, "ignore this one")
		var keepEvt, dropEvt string
		waitPortal(ctx, t, sam, portal, "the two messages", func(msgs []ConversationMessage) bool {
			keep, ok1 := findMessage(msgs, withBody("the meeting room is 4B"))
			drop, ok2 := findMessage(msgs, withBody("ignore this one"))
			keepEvt, dropEvt = keep.EventID, drop.EventID
			return ok1 && ok2
		})
		if err := s.Gateway.Stop(); err != nil {
			t.Fatal(err)
		}
		telegram.edit(t, remoteView{ID: keepID}, "the meeting room is 5C")
		telegram.delete(t, remoteView{ID: dropID})
		telegram.send(t, "see you there")
		if err := s.Gateway.Start(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := waitPortal(ctx, t, sam, portal, "the edit and the deletion made while the gateway was down", func(msgs []ConversationMessage) bool {
			keep, ok1 := findMessage(msgs, withEvent(keepEvt))
			drop, ok2 := findMessage(msgs, withEvent(dropEvt))
			_, ok3 := findMessage(msgs, withBody("see you there"))
			return ok1 && ok2 && ok3 && keep.LatestBody == "the meeting room is 5C" && drop.Redacted
		})
		keep, _ := findMessage(msgs, withEvent(keepEvt))
		if len(keep.Edits) != 1 {
			t.Errorf("the edit made while the gateway was down arrived %d times, want once", len(keep.Edits))
		}
	})
}
