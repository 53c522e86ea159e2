package telegram

import (
	"context"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestForumTopics: a forum supergroup is one portal whose topics are
// threads. Topics created before the bridge saw the group get their roots
// when a message arrives in one (and the others with the portal); a topic
// created later gets its root at once; messages in a topic are in its
// thread (a reply inside it keeps its reply), the General topic is the
// main timeline; a renamed topic gets a notice in its thread. From Matrix,
// a message in a topic's thread goes to that topic, a reply inside it
// names the topic, and a message outside threads goes to General.
func TestForumTopics(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	dave := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave"})
	ch, err := s.CreateForum(tgsim.ChannelSpec{Title: "Helpdesk", Creator: bob.ID, Members: []int64{alice.ID, dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	billing, err := s.CreateTopic(ch.ID, bob.ID, "Billing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ch.ID, bob.ID, "Shipping"); err != nil {
		t.Fatal(err)
	}
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	mx := tb.mx
	ul := loginAs(t, tb, s, testUser, alice)
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.BridgeStates() {
			if st.StateEvent == status.StateConnected && st.RemoteID == ul.ID {
				return s.Sessions(alice.ID) > 0
			}
		}
		return false
	}) {
		t.Fatal("the login never connected")
	}

	byBody := func(body string) (fakematrix.Message, bool) {
		return mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == body })
	}
	threadOf := func(m fakematrix.Message) id.EventID { return m.Content.RelatesTo.GetThreadParent() }

	// A message in a topic the bridge never saw created: the topic's root
	// comes first, the message is in its thread.
	question, err := s.PostInTopic(ch.ID, dave.ID, billing.ID, "invoice question", 0)
	if err != nil {
		t.Fatal(err)
	}
	billingRoot, ok := byBody("Topic: Billing")
	if !ok {
		t.Fatal("the Billing topic never got its root")
	}
	q, ok := byBody("invoice question")
	if !ok {
		t.Fatal("the message in the Billing topic never reached Matrix")
	}
	if threadOf(q) != billingRoot.EventID || q.RoomID != billingRoot.RoomID {
		t.Errorf("the Billing message is in thread %q of room %s, want %q of %s", threadOf(q), q.RoomID, billingRoot.EventID, billingRoot.RoomID)
	}
	if reply := q.Content.RelatesTo.GetNonFallbackReplyTo(); reply != "" {
		t.Errorf("the Billing message answers %s: the topic is not a reply", reply)
	}
	// The other topic got its root with the portal.
	if _, ok := byBody("Topic: Shipping"); !ok {
		t.Error("the Shipping topic never got its root")
	}
	roomID := billingRoot.RoomID

	// The General topic is the main timeline.
	if _, err := s.PostInTopic(ch.ID, dave.ID, tgsim.GeneralTopicID, "general chat", 0); err != nil {
		t.Fatal(err)
	}
	if g, ok := byBody("general chat"); !ok || threadOf(g) != "" || g.RoomID != roomID {
		t.Errorf("the General message is %+v, want in the portal's main timeline", g)
	}

	// A topic created now: its root, a message in it, a reply inside it.
	returns, err := s.CreateTopic(ch.ID, bob.ID, "Returns")
	if err != nil {
		t.Fatal(err)
	}
	returnsRoot, ok := byBody("Topic: Returns")
	if !ok {
		t.Fatal("the new topic never got its root")
	}
	first, err := s.PostInTopic(ch.ID, bob.ID, returns.ID, "send it back", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PostInTopic(ch.ID, dave.ID, returns.ID, "how?", first.ID); err != nil {
		t.Fatal(err)
	}
	firstMX, ok := byBody("send it back")
	if !ok || threadOf(firstMX) != returnsRoot.EventID {
		t.Errorf("the Returns message is %+v, want in the Returns thread", firstMX)
	}
	reply, ok := byBody("how?")
	if !ok || threadOf(reply) != returnsRoot.EventID || reply.Content.RelatesTo.GetNonFallbackReplyTo() != firstMX.EventID {
		t.Errorf("the reply inside Returns is %+v, want in the thread and answering %s", reply.Content.RelatesTo, firstMX.EventID)
	}

	// A renamed topic: a notice in its thread.
	if err := s.RenameTopic(ch.ID, bob.ID, returns.ID, "Refunds"); err != nil {
		t.Fatal(err)
	}
	if n, ok := byBody("The topic was renamed to: Refunds"); !ok || threadOf(n) != returnsRoot.EventID || n.Content.MsgType != event.MsgNotice {
		t.Errorf("the rename is %+v, want a notice in the Returns thread", n)
	}

	// From Matrix: in the Billing thread, a reply inside it, and outside
	// any thread.
	portal, err := tb.br.GetPortalByMXID(context.Background(), roomID)
	if err != nil || portal == nil {
		t.Fatal("no portal", err)
	}
	send := func(evtID id.EventID, body string, rel *event.RelatesTo) {
		mx.Inject(context.Background(), &event.Event{Type: event.EventMessage, ID: evtID, RoomID: roomID, Sender: testUser,
			Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: body, RelatesTo: rel}}})
	}
	sent := func(text string) (tgsim.ChannelMessage, bool) {
		var out tgsim.ChannelMessage
		found := mx.Eventually(20*time.Second, func() bool {
			for _, m := range s.ChannelMessages(ch.ID) {
				if m.Text == text {
					out = m
					return true
				}
			}
			return false
		})
		return out, found
	}
	send("$t1", "in billing from matrix", (&event.RelatesTo{}).SetThread(billingRoot.EventID, q.EventID))
	if m, ok := sent("in billing from matrix"); !ok {
		t.Errorf("the thread message never reached Telegram: %+v", mx.StatusesOf("$t1"))
	} else if topic := s.MessageTopic(ch.ID, m.ID); topic != billing.ID {
		t.Errorf("the thread message went to topic %d, want Billing (%d)", topic, billing.ID)
	}
	send("$t2", "answer inside billing", (&event.RelatesTo{}).SetThread(billingRoot.EventID, q.EventID).SetReplyTo(q.EventID))
	if m, ok := sent("answer inside billing"); !ok {
		t.Errorf("the reply inside the thread never reached Telegram: %+v", mx.StatusesOf("$t2"))
	} else if topic := s.MessageTopic(ch.ID, m.ID); topic != billing.ID || m.ReplyToID != question.ID {
		t.Errorf("the reply went to topic %d answering %d, want Billing (%d) answering %d", topic, m.ReplyToID, billing.ID, question.ID)
	}
	send("$t3", "to everyone", nil)
	if m, ok := sent("to everyone"); !ok {
		t.Errorf("the main timeline message never reached Telegram: %+v", mx.StatusesOf("$t3"))
	} else if topic := s.MessageTopic(ch.ID, m.ID); topic != 0 {
		t.Errorf("the main timeline message went to topic %d, want General", topic)
	}
	// A Matrix thread on a message that is no topic's root goes to General.
	general, _ := byBody("general chat")
	send("$t4", "thread on general", (&event.RelatesTo{}).SetThread(general.EventID, general.EventID))
	if m, ok := sent("thread on general"); !ok {
		t.Errorf("the thread message on General never reached Telegram: %+v", mx.StatusesOf("$t4"))
	} else if topic := s.MessageTopic(ch.ID, m.ID); topic != 0 {
		t.Errorf("the thread message on General went to topic %d", topic)
	}

	// A topic's root held by the gate (a chat waiting for approval) comes
	// back the same from its payload.
	c := ul.Client.(*Client)
	held := c.topicEvent(&tg.MessageService{ID: 42, PeerID: &tg.PeerChannel{ChannelID: ch.ID}, Date: int(time.Now().Unix()),
		FromID: &tg.PeerUser{UserID: bob.ID}, Action: &tg.MessageActionTopicCreate{Title: "Held"}})
	payload, err := held.HoldPayload()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := c.DecodeHeldEvent(context.Background(), ul, payload)
	if err != nil {
		t.Fatal(err)
	}
	back, ok := decoded.(*topicEvent)
	if !ok || back.GetID() != held.GetID() || back.GetSender().Sender != held.GetSender().Sender || !back.RemoteChat().IsGroup {
		t.Errorf("the held topic came back as %T %+v", decoded, decoded)
	} else if cm, err := back.ConvertMessage(context.Background(), portal, nil); err != nil || cm.Parts[0].Content.Body != "Topic: Held" {
		t.Errorf("the held topic converts to %+v (%v)", cm, err)
	}

	// Each root once, although the topic roots are made from several
	// paths.
	for _, body := range []string{"Topic: Billing", "Topic: Shipping", "Topic: Returns"} {
		if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == body })); n != 1 {
			t.Errorf("%q sent %d times, want once", body, n)
		}
	}
}
