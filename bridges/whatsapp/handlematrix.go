package whatsapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/wafmt"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/bridges/whatsapp/wamedia"
)

// ErrNotInGroup is returned for a Matrix event in a group portal sent by
// a staff member whose WhatsApp account is not in the group.
var ErrNotInGroup = errors.New("your WhatsApp account is not in this group, so nothing was sent to it")

// ErrRelayInDirectChat is returned for a message relayed (bridgev2 relay
// mode) in a direct chat portal, which only its staff member writes in.
var ErrRelayInDirectChat = errors.New("this direct chat belongs to another staff member's WhatsApp account: messages are not relayed in it")

// ErrReadOnlyChat is returned for a Matrix event in the room of status
// updates, which is read-only.
var ErrReadOnlyChat = errors.New("status updates are read-only here: nothing was sent")

// ErrEmptyMessage is returned for a Matrix message with no text to send.
var ErrEmptyMessage = errors.New("the message has no text")

// outbound describes what is about to be sent to a chat, for the outbound
// check, from what the connector knows without network I/O.
func (cl *Client) outbound(ctx context.Context, kind remote.OutboundKind, portal *bridgev2.Portal, chat types.JID) (remote.Outbound, error) {
	out := remote.Outbound{Kind: kind, Login: cl.login, Portal: portal, PortalKey: portal.PortalKey, Chat: cl.cachedChat(ctx, chat)}
	if chat.Server == types.BroadcastServer {
		return out, certain(ErrReadOnlyChat, event.MessageStatusUnsupported)
	}
	if chat.Server == types.NewsletterServer {
		return out, certain(ErrReadOnlyNewsletter, event.MessageStatusNoPermission)
	}
	if portal.RoomType == database.RoomTypeSpace {
		return out, certain(ErrSpaceRoom, event.MessageStatusUnsupported)
	}
	if chat.Server == types.GroupServer {
		// A group portal is shared: bridgev2 picks the sender's login in
		// it, or else any login of theirs, which may not be in the group.
		up, err := cl.main.Bridge.DB.UserPortal.Get(ctx, cl.login.UserLogin, portal.PortalKey)
		if err != nil {
			return out, err
		} else if up == nil {
			return out, certain(fmt.Errorf("%w (%s)", ErrNotInGroup, cl.accountName()), event.MessageStatusNoPermission)
		}
		return out, nil
	}
	var err error
	if out.Remote, err = waid.MakeUserID(chat); err != nil {
		return out, err
	}
	if out.Identity, err = cl.DescribeRemoteUser(ctx, out.Remote); err != nil {
		return out, err
	}
	return out, nil
}

// HandleMatrixMessage implements bridgev2.NetworkAPI: text, notices and
// emotes, with formatting and mentions, files with their captions, and
// locations are sent to the portal's chat.
func (cl *Client) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	chat, err := waid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return nil, err
	}
	if chat.Server == types.NewsletterServer {
		return nil, certain(ErrReadOnlyNewsletter, event.MessageStatusNoPermission)
	}
	if msg.OrigSender != nil && chat.Server != types.GroupServer {
		// A direct chat is one staff member's own: nobody else writes in
		// it through a relay.
		return nil, certain(ErrRelayInDirectChat, event.MessageStatusNoPermission)
	}
	check, err := cl.outbound(ctx, remote.OutboundMessage, msg.Portal, chat)
	if err != nil {
		return nil, err
	}
	check.HasMedia = msg.Content.MsgType.IsMedia()
	if err = cl.main.CheckOutbound(ctx, check); err != nil {
		return nil, remote.MessageStatus(err)
	}
	// A client that is reconnecting is waited for by sendMessage.
	if cl.client() == nil {
		return nil, bridgev2.WrapErrorInStatus(ErrNotConnected).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true)
	}
	var waMsg, followUp *waE2E.Message
	switch msg.Content.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote:
		if waMsg, err = cl.textMessage(ctx, msg); err != nil {
			return nil, err
		}
	case event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile, event.CapMsgSticker:
		if waMsg, followUp, err = cl.fileMessage(ctx, msg, check); err != nil {
			return nil, err
		}
		if ci := cl.quoteOf(ctx, msg); ci != nil {
			setReplyContext(waMsg, ci)
		}
	case event.MsgLocation:
		if err = cl.checkOutboundMedia(ctx, msg, check, remote.MediaLocation, "A location"); err != nil {
			return nil, err
		}
		if waMsg, err = wamedia.LocationMessage(msg.Content); err != nil {
			return nil, bridgev2.WrapErrorInStatus(fmt.Errorf("%w: %w", ErrFileNotSent, err)).
				WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true)
		}
	default:
		return nil, fmt.Errorf("%w: %s", bridgev2.ErrUnsupportedMessageType, msg.Content.MsgType)
	}
	// In a chat whose timer is on, the message carries it (the other
	// side's phones delete it when it ends).
	waMsg = withTimer(waMsg, msg.Portal.Disappear.Timer)
	resp, err := cl.sendMessage(ctx, chat, waMsg, whatsmeow.SendRequestExtra{ID: matrixMessageID(msg.Event.ID)})
	if err != nil {
		return nil, cl.groupRefusal(ctx, chat, fmt.Errorf("failed to send message to WhatsApp: %w", err))
	}
	md := &waid.MessageMetadata{SenderJID: cl.jid.String()}
	if followUp != nil {
		md.FollowUpID = matrixMessageID(msg.Event.ID + "/caption")
		if _, err = cl.sendMessage(ctx, chat, followUp, whatsmeow.SendRequestExtra{ID: md.FollowUpID}); err != nil {
			return nil, fmt.Errorf("failed to send the audio's caption to WhatsApp: %w", err)
		}
	}
	cl.main.Sent(ctx, check)
	msgID, err := waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: cl.jid, ID: resp.ID})
	if err != nil {
		return nil, err
	}
	self, _ := waid.MakeUserID(cl.jid)
	return &bridgev2.MatrixMessageResponse{DB: &database.Message{
		ID:        msgID,
		SenderID:  self,
		Timestamp: resp.Timestamp,
		Metadata:  md,
	}, Disappear: cl.outgoingDisappear()}, nil
}

// textMessage converts a text, notice or emote.
func (cl *Client) textMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*waE2E.Message, error) {
	out := wafmt.FromMatrix(ctx, cl.fmtDeps(msg.Portal), msg.Content)
	if msg.Content.MsgType == event.MsgEmote {
		out.Text = "/me " + out.Text
	}
	if out.Text == "" {
		return nil, bridgev2.WrapErrorInStatus(ErrEmptyMessage).WithErrorAsMessage().WithIsCertain(true)
	}
	replyTo := cl.quoteOf(ctx, msg)
	if len(out.Mentioned) == 0 && replyTo == nil {
		return &waE2E.Message{Conversation: proto.String(out.Text)}, nil
	}
	ci := &waE2E.ContextInfo{MentionedJID: out.Mentioned}
	if replyTo != nil {
		ci.StanzaID, ci.Participant, ci.QuotedMessage = replyTo.StanzaID, replyTo.Participant, replyTo.QuotedMessage
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text:        proto.String(out.Text),
		ContextInfo: ci,
	}}, nil
}

// quoteOf is the reply context of a Matrix message that answers a bridged
// message: its ID and sender, and a quoted copy WhatsApp's apps show above
// the answer (its text when the connector can read it back).
func (cl *Client) quoteOf(ctx context.Context, msg *bridgev2.MatrixMessage) *waE2E.ContextInfo {
	if msg.ReplyTo == nil {
		return nil
	}
	key, err := waid.ParseMessageID(msg.ReplyTo.ID)
	if err != nil {
		return nil
	}
	quoted := &waE2E.Message{Conversation: proto.String("")}
	if msg.ReplyTo.MXID != "" && msg.Portal.MXID != "" {
		if evt, err := cl.main.Bridge.Bot.GetEvent(ctx, msg.Portal.MXID, msg.ReplyTo.MXID); err == nil && evt != nil {
			_ = evt.Content.ParseRaw(evt.Type)
			if c := evt.Content.AsMessage(); c != nil && c.Body != "" {
				quoted.Conversation = proto.String(c.Body)
			}
		}
	}
	return &waE2E.ContextInfo{
		StanzaID:      proto.String(key.ID),
		Participant:   proto.String(key.Sender.ToNonAD().String()),
		QuotedMessage: quoted,
	}
}

// setReplyContext makes a file message answer the quoted message of ci.
func setReplyContext(msg *waE2E.Message, ci *waE2E.ContextInfo) {
	set := func(cur **waE2E.ContextInfo) {
		if *cur == nil {
			*cur = &waE2E.ContextInfo{}
		}
		(*cur).StanzaID, (*cur).Participant, (*cur).QuotedMessage = ci.StanzaID, ci.Participant, ci.QuotedMessage
	}
	switch {
	case msg.GetImageMessage() != nil:
		set(&msg.ImageMessage.ContextInfo)
	case msg.GetVideoMessage() != nil:
		set(&msg.VideoMessage.ContextInfo)
	case msg.GetAudioMessage() != nil:
		set(&msg.AudioMessage.ContextInfo)
	case msg.GetDocumentMessage() != nil:
		set(&msg.DocumentMessage.ContextInfo)
	case msg.GetStickerMessage() != nil:
		set(&msg.StickerMessage.ContextInfo)
	}
}

// matrixMessageID is the WhatsApp message ID of the Matrix event evtID, in
// the form whatsmeow's GenerateMessageID gives ("3EB0" and 18 upper-case hex
// digits). Recipients keep one message per sender and ID: a Matrix event
// handled again after a crash (the homeserver retries its transaction) is
// then not delivered twice.
func matrixMessageID(evtID id.EventID) types.MessageID {
	h := sha256.Sum256([]byte("passerelle/whatsapp/message_id\x00" + string(evtID)))
	return types.MessageID(whatsmeow.WebMessageIDPrefix + strings.ToUpper(hex.EncodeToString(h[:9])))
}

// fmtDeps gives the formatter the ghosts and logins it maps mentions to.
func (cl *Client) fmtDeps(_ *bridgev2.Portal) wafmt.Deps {
	br := cl.main.Bridge
	return wafmt.Deps{
		UserMXID: func(ctx context.Context, jid types.JID) (id.UserID, string, bool) {
			jid = cl.preferPN(ctx, jid, types.EmptyJID)
			if jid == cl.jid {
				return cl.login.UserMXID, cl.login.RemoteName, true
			}
			userID, err := waid.MakeUserID(jid)
			if err != nil {
				return "", "", false
			}
			ghost, err := br.GetGhostByID(ctx, userID)
			if err != nil || ghost == nil || ghost.Intent == nil {
				return "", "", false
			}
			name := ghost.Name
			if name == "" {
				if info, err := cl.GetUserInfo(ctx, ghost); err == nil && info.Name != nil {
					name = *info.Name
				}
			}
			return ghost.Intent.GetMXID(), name, true
		},
		WhatsAppJID: func(ctx context.Context, mxid id.UserID) (types.JID, bool) {
			if mxid == cl.login.UserMXID {
				return cl.jid, true
			}
			userID, ok := br.Matrix.ParseGhostMXID(mxid)
			if !ok {
				return types.EmptyJID, false
			}
			jid, err := waid.ParseUserID(userID)
			return jid, err == nil
		},
	}
}
