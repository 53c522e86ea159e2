package telegram

import (
	"testing"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

func TestTopicOfHeader(t *testing.T) {
	withTop := &tg.MessageReplyHeader{ForumTopic: true, ReplyToMsgID: 9}
	withTop.SetReplyToTopID(5)
	for _, tc := range []struct {
		name           string
		header         tg.MessageReplyHeaderClass
		topic, replyTo int
	}{
		{"no header", nil, 0, 0},
		{"a reply outside topics", &tg.MessageReplyHeader{ReplyToMsgID: 3}, 0, 0},
		{"a message in a topic", &tg.MessageReplyHeader{ForumTopic: true, ReplyToMsgID: 5}, 5, 0},
		{"a reply inside a topic", withTop, 5, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if topic, replyTo := topicOfHeader(tc.header); topic != tc.topic || replyTo != tc.replyTo {
				t.Errorf("got topic %d reply %d, want %d %d", topic, replyTo, tc.topic, tc.replyTo)
			}
		})
	}
}

func TestInputReplyTo(t *testing.T) {
	id := func(n string) networkid.MessageID { return networkid.MessageID("telegram.ch77." + n) }
	for _, tc := range []struct {
		name     string
		msg      *database.Message
		replyTo  int
		topMsgID int
	}{
		{"a plain reply", &database.Message{ID: id("4")}, 4, 0},
		{"the topic's root: posts in the topic", &database.Message{ID: id("5")}, 5, 0},
		{"a message in a topic: names the topic", &database.Message{ID: id("9"), ThreadRoot: id("5")}, 9, 5},
		{"General is never named", &database.Message{ID: id("9"), ThreadRoot: id("1")}, 9, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := inputReplyTo(tc.msg)
			if !ok {
				t.Fatal("no reply_to")
			}
			top, _ := r.GetTopMsgID()
			if r.ReplyToMsgID != tc.replyTo || top != tc.topMsgID {
				t.Errorf("reply_to %d top %d, want %d %d", r.ReplyToMsgID, top, tc.replyTo, tc.topMsgID)
			}
		})
	}
	if _, ok := inputReplyTo(&database.Message{ID: "not telegram"}); ok {
		t.Error("a foreign ID made a reply_to")
	}
}

func TestTopicEditText(t *testing.T) {
	renamed := &tg.MessageActionTopicEdit{}
	renamed.SetTitle("Refunds")
	closed := &tg.MessageActionTopicEdit{}
	closed.SetClosed(true)
	reopened := &tg.MessageActionTopicEdit{}
	reopened.SetClosed(false)
	for a, want := range map[*tg.MessageActionTopicEdit]string{
		renamed: "The topic was renamed to: Refunds", closed: "The topic was closed", reopened: "The topic was reopened",
	} {
		if got := topicEditText(a); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
