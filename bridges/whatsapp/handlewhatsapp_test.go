package whatsapp

import (
	"slices"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

func TestMessageText(t *testing.T) {
	for _, tc := range []struct {
		name      string
		msg       *waE2E.Message
		text      string
		mentioned []string
		visible   bool
	}{
		{name: "nil", msg: nil},
		{name: "empty", msg: &waE2E.Message{}},
		{name: "conversation", msg: &waE2E.Message{Conversation: proto.String("hi")}, text: "hi", visible: true},
		{name: "extended with mentions", msg: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String("@1555 hi"), ContextInfo: &waE2E.ContextInfo{MentionedJID: []string{"1555@s.whatsapp.net"}},
		}}, text: "@1555 hi", mentioned: []string{"1555@s.whatsapp.net"}, visible: true},
		{name: "sender key distribution only", msg: &waE2E.Message{
			SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: proto.String("g")},
			MessageContextInfo:           &waE2E.MessageContextInfo{},
		}},
		{name: "protocol message only", msg: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{}}},
		{name: "sender key with text", msg: &waE2E.Message{
			SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: proto.String("g")},
			Conversation:                 proto.String("both"),
		}, text: "both", visible: true},
		{name: "ephemeral wrapper", msg: &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{
			Message: &waE2E.Message{Conversation: proto.String("inner")},
		}}, text: "inner", visible: true},
		{name: "image is visible without text", msg: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{}}, visible: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, mentioned, visible := messageText(tc.msg)
			if text != tc.text || visible != tc.visible || !slices.Equal(mentioned, tc.mentioned) {
				t.Fatalf("messageText = %q %v %v, want %q %v %v", text, mentioned, visible, tc.text, tc.mentioned, tc.visible)
			}
		})
	}
}
