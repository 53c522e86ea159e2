package whatsapp

import (
	"slices"
	"testing"

	"go.mau.fi/whatsmeow/proto/waCommon"
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

// TestClassify: reactions, edits, revokes and plumbing are told apart, so
// that only content a user would want to see can produce a "not bridged
// yet" notice.
func TestClassify(t *testing.T) {
	key := &waCommon.MessageKey{ID: proto.String("3A1")}
	for _, tc := range []struct {
		name string
		msg  *waE2E.Message
		want messageKind
	}{
		{"nil", nil, kindNone},
		{"text", &waE2E.Message{Conversation: proto.String("hi")}, kindMessage},
		{"poll vote", &waE2E.Message{PollUpdateMessage: &waE2E.PollUpdateMessage{}}, kindMessage},
		{"unknown visible kind", &waE2E.Message{ButtonsMessage: &waE2E.ButtonsMessage{}}, kindMessage},
		{"reaction", &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String("👍")}}, kindReaction},
		{"reaction removed", &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String("")}}, kindReaction},
		{"encrypted reaction", &waE2E.Message{EncReactionMessage: &waE2E.EncReactionMessage{}}, kindNone},
		{"revoke", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key, Type: waE2E.ProtocolMessage_REVOKE.Enum()}}, kindRevoke},
		{"edit", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Key: key, Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: &waE2E.Message{Conversation: proto.String("x")}}}, kindEdit},
		{"other protocol message", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_APP_STATE_SYNC_KEY_SHARE.Enum()}}, kindNone},
		{"sender key distribution", &waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: proto.String("g")}}, kindNone},
	} {
		if got := classify(tc.msg); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestIsSingleEmoji(t *testing.T) {
	for s, want := range map[string]bool{
		"👍": true, "❤️": true, "👍🏽": true, "👨‍👩‍👧": true, "🇫🇷": true, "1️⃣": true,
		"": false, "ok": false, "👍👍": false, "🇫🇷🇩🇪": false, "👍 ": false, "sounds good": false, "a👍": false,
	} {
		if got := isSingleEmoji(s); got != want {
			t.Errorf("isSingleEmoji(%q) = %v, want %v", s, got, want)
		}
	}
}
