package whatsapp

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/jsontime"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

var (
	_ remote.TimerChange            = (*timerEvent)(nil)
	_ remote.Described              = (*timerEvent)(nil)
	_ bridgev2.RemoteChatInfoChange = (*timerEvent)(nil)
)

// Disappearing messages: a message that carries a timer (its context
// info's Expiration, in a chat whose timer is on) disappears from the
// portal when the timer ends, counted from when it was sent, unless the
// organisation keeps disappearing messages (remote.Hooks.KeepDisappearing:
// then it stays for good). A change of a chat's timer, from either side's
// phone, sets the portal's timer (bridgev2 shows a notice); the gate audits
// it (remote.TimerChange).

// disappearOf is the disappearing setting of a message: after sending, for
// its timer; none without a timer or when the organisation keeps them.
func (cl *Client) disappearOf(msg *waE2E.Message) database.DisappearingSetting {
	secs := contextInfoOf(msg).GetExpiration()
	if secs == 0 || cl.main.KeepDisappearing() {
		return database.DisappearingSetting{}
	}
	return database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: time.Duration(secs) * time.Second}
}

// timerEvent is a change of a chat's disappearing timer.
type timerEvent struct {
	*simplevent.ChatInfoChange
	heldBase
	timer   time.Duration
	byStaff bool
}

// DisappearingTimer implements remote.TimerChange.
func (e *timerEvent) DisappearingTimer() (time.Duration, bool) { return e.timer, e.byStaff }

// timerEvent builds the event of an EPHEMERAL_SETTING protocol message.
func (cl *Client) timerEvent(ctx context.Context, evt *events.Message, chat, senderJID types.JID) (*timerEvent, error) {
	info := &evt.Info
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return nil, err
	}
	timer := time.Duration(evt.Message.GetProtocolMessage().GetEphemeralExpiration()) * time.Second
	setting := database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: timer}.Normalize()
	sender := cl.eventSender(info, senderJID)
	te := &timerEvent{
		ChatInfoChange: &simplevent.ChatInfoChange{
			EventMeta: simplevent.EventMeta{
				Type: bridgev2.RemoteEventChatInfoChange, PortalKey: portalKey, Sender: sender, Timestamp: info.Timestamp,
				LogContext: func(c zerolog.Context) zerolog.Context {
					return c.Str("wa_message_id", info.ID).Dur("timer", timer)
				},
			},
			ChatInfoChange: &bridgev2.ChatInfoChange{ChatInfo: &bridgev2.ChatInfo{Disappear: &setting}},
		},
		heldBase: heldBase{client: cl, data: evt, chat: chat, sender: senderJID},
		timer:    timer,
		byStaff:  info.IsFromMe,
	}
	te.describe(ctx, sender)
	return te, nil
}

// groupTimerEvent is a change of a group's disappearing timer (a w:gp2
// notification).
type groupTimerEvent struct {
	*simplevent.ChatInfoChange
	chatDesc   remote.Chat
	senderDesc remote.Identity
	timer      time.Duration
	byStaff    bool
}

var (
	_ remote.TimerChange = (*groupTimerEvent)(nil)
	_ remote.Described   = (*groupTimerEvent)(nil)
)

// DisappearingTimer implements remote.TimerChange.
func (e *groupTimerEvent) DisappearingTimer() (time.Duration, bool) { return e.timer, e.byStaff }

// RemoteChat implements remote.Described.
func (e *groupTimerEvent) RemoteChat() remote.Chat { return e.chatDesc }

// RemoteSender implements remote.Described.
func (e *groupTimerEvent) RemoteSender() remote.Identity { return e.senderDesc }

// groupTimerChange bridges a group's new timer to its portal.
func (cl *Client) groupTimerChange(ctx context.Context, evt *events.GroupInfo) {
	portalKey, err := waid.MakePortalKey(evt.JID, cl.login.ID)
	if err != nil {
		return
	}
	var timer time.Duration
	if evt.Ephemeral.IsEphemeral {
		timer = time.Duration(evt.Ephemeral.DisappearingTimer) * time.Second
	}
	setting := database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: timer}.Normalize()
	var sender bridgev2.EventSender
	byStaff := false
	if evt.Sender != nil {
		jid := cl.preferPN(ctx, *evt.Sender, types.EmptyJID)
		byStaff = jid.ToNonAD() == cl.jid
		sender = cl.eventSender(&types.MessageInfo{MessageSource: types.MessageSource{IsFromMe: byStaff}}, jid)
	}
	te := &groupTimerEvent{
		ChatInfoChange: &simplevent.ChatInfoChange{
			EventMeta: simplevent.EventMeta{
				Type: bridgev2.RemoteEventChatInfoChange, PortalKey: portalKey, Sender: sender, Timestamp: evt.Timestamp,
			},
			ChatInfoChange: &bridgev2.ChatInfoChange{ChatInfo: &bridgev2.ChatInfo{Disappear: &setting}},
		},
		chatDesc: cl.cachedChat(ctx, evt.JID),
		timer:    timer,
		byStaff:  byStaff,
	}
	if !byStaff && sender.Sender != "" {
		te.senderDesc, _ = cl.DescribeRemoteUser(ctx, sender.Sender)
	}
	defer cl.main.lockGroup(evt.JID)()
	cl.deliver(ctx, te)
}

var _ bridgev2.DisappearTimerChangingNetworkAPI = (*Client)(nil)

// whatsAppTimers are the timers WhatsApp's apps offer.
var whatsAppTimers = []jsontime.Milliseconds{
	jsontime.MS(24 * time.Hour), jsontime.MS(7 * 24 * time.Hour), jsontime.MS(90 * 24 * time.Hour),
}

// disappearingCap is what a direct chat or group takes from Matrix.
var disappearingCap = &event.DisappearingTimerCapability{
	Types: []event.DisappearingType{event.DisappearingTypeAfterSend}, Timers: whatsAppTimers,
}

// HandleMatrixDisappearingTimer implements
// bridgev2.DisappearTimerChangingNetworkAPI: a staff member sets a chat's
// timer from Matrix, once the gateway allows it (a group change for
// groups, like a message for direct chats).
func (cl *Client) HandleMatrixDisappearingTimer(ctx context.Context, msg *bridgev2.MatrixDisappearingTimer) (bool, error) {
	chat, err := waid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return false, err
	}
	var timer time.Duration
	if msg.Content.Type != event.DisappearingTypeNone {
		timer = msg.Content.Timer.Duration
	}
	kind := remote.OutboundMessage
	if chat.Server == types.GroupServer {
		kind = remote.OutboundGroupChange
	}
	out, err := cl.outbound(ctx, kind, msg.Portal, chat)
	if err != nil {
		return false, err
	}
	if err = cl.main.CheckOutbound(ctx, out); err != nil {
		return false, err
	}
	wa := cl.client()
	if wa == nil {
		return false, ErrNotConnected
	}
	if err = wa.SetDisappearingTimer(ctx, chat, timer, time.Now()); err != nil {
		return false, fmt.Errorf("failed to set the disappearing timer on WhatsApp: %w", err)
	}
	msg.Portal.Disappear = database.DisappearingSetting{Type: event.DisappearingTypeAfterSend, Timer: timer}.Normalize()
	return true, nil
}

// withTimer is an outgoing message as WhatsApp's apps send it in a chat
// whose timer is on: an ephemeral message whose context info carries the
// timer, so that the other side's phones delete it when it ends.
func withTimer(msg *waE2E.Message, timer time.Duration) *waE2E.Message {
	secs := uint32(timer / time.Second)
	if msg == nil || secs == 0 {
		return msg
	}
	if text := msg.GetConversation(); text != "" {
		msg.Conversation = nil
		msg.ExtendedTextMessage = &waE2E.ExtendedTextMessage{Text: proto.String(text)}
	}
	ci := contextInfoOf(msg)
	if ci == nil {
		ci = &waE2E.ContextInfo{}
		switch {
		case msg.GetExtendedTextMessage() != nil:
			msg.ExtendedTextMessage.ContextInfo = ci
		case msg.GetImageMessage() != nil:
			msg.ImageMessage.ContextInfo = ci
		case msg.GetVideoMessage() != nil:
			msg.VideoMessage.ContextInfo = ci
		case msg.GetAudioMessage() != nil:
			msg.AudioMessage.ContextInfo = ci
		case msg.GetDocumentMessage() != nil:
			msg.DocumentMessage.ContextInfo = ci
		case msg.GetStickerMessage() != nil:
			msg.StickerMessage.ContextInfo = ci
		case msg.GetLocationMessage() != nil:
			msg.LocationMessage.ContextInfo = ci
		default:
			return msg
		}
	}
	ci.Expiration = proto.Uint32(secs)
	return &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: msg}}
}

// outgoingDisappear is the disappearing setting of a message sent from
// Matrix into portal: none when the organisation keeps disappearing
// messages (nil: bridgev2 uses the portal's timer).
func (cl *Client) outgoingDisappear() *database.DisappearingSetting {
	if cl.main.KeepDisappearing() {
		return &database.DisappearingSetting{}
	}
	return nil
}
