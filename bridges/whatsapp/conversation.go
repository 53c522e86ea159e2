package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/wafmt"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// The conversation around messages, WhatsApp → Matrix: replies, edits,
// revokes, reactions, read receipts, typing and presence.

var (
	_ bridgev2.RemoteReaction       = (*reactionEvent)(nil)
	_ bridgev2.RemoteReactionRemove = (*reactionEvent)(nil)
	_ bridgev2.RemoteMessageRemove  = (*removeEvent)(nil)
	_ bridgev2.RemoteEdit           = (*messageEvent)(nil)
	_ bridgev2.RemoteReadReceipt    = (*receiptEvent)(nil)
	_ bridgev2.RemoteTyping         = (*typingEvent)(nil)
	_ remote.Described              = (*receiptEvent)(nil)
	_ remote.Described              = (*typingEvent)(nil)
)

// typingTimeout is how long a contact shows as typing after WhatsApp said
// "composing", unless "paused" comes first (the apps repeat "composing"
// while the user types).
const typingTimeout = 15 * time.Second

// maxQuoteRunes bounds the quoted text shown for a reply to a message the
// portal does not have.
const maxQuoteRunes = 500

// messageKind is what a decrypted WhatsApp message does.
type messageKind int

const (
	kindNone     messageKind = iota // plumbing: nothing a user sees
	kindMessage                     // a message (text, media, poll, vote, or a kind not bridged yet)
	kindEdit                        // a protocol message editing an earlier one
	kindRevoke                      // a protocol message revoking an earlier one for everyone
	kindReaction                    // a reaction, or the removal of one (empty text)
	kindTimer                       // a change of the chat's disappearing timer
)

// classify tells what msg does.
func classify(msg *waE2E.Message) messageKind {
	if msg == nil {
		return kindNone
	}
	if pm := msg.GetProtocolMessage(); pm != nil {
		switch pm.GetType() {
		case waE2E.ProtocolMessage_REVOKE:
			return kindRevoke
		case waE2E.ProtocolMessage_MESSAGE_EDIT:
			return kindEdit
		case waE2E.ProtocolMessage_EPHEMERAL_SETTING:
			return kindTimer
		}
	}
	if msg.GetReactionMessage() != nil {
		return kindReaction
	}
	if msg.GetEncReactionMessage() != nil {
		// Reactions to community announcements: not bridged.
		return kindNone
	}
	if _, _, visible := messageText(msg); visible {
		return kindMessage
	}
	return kindNone
}

// remoteEvent builds the remote event of a decrypted message in chat (the
// portal's chat) from senderJID (both in the form the portal sees): a
// message, an edit, a revoke or a reaction, or nil for plumbing (sender key
// distribution, other protocol messages) and for edits, revokes and
// reactions on messages the portal never had.
func (cl *Client) remoteEvent(ctx context.Context, evt *events.Message, chat, senderJID types.JID) (bridgev2.RemoteEvent, error) {
	switch classify(evt.Message) {
	case kindMessage:
		return cl.messageEvent(ctx, evt, chat, senderJID)
	case kindEdit:
		return nilIfNone(cl.editEvent(ctx, evt, chat, senderJID))
	case kindRevoke:
		return nilIfNone(cl.revokeEvent(ctx, evt, chat, senderJID))
	case kindReaction:
		return nilIfNone(cl.reactionEvent(ctx, evt, chat, senderJID))
	case kindTimer:
		return cl.timerEvent(ctx, evt, chat, senderJID)
	}
	zerolog.Ctx(ctx).Debug().Str("wa_message_id", evt.Info.ID).Msg("Ignoring a WhatsApp message with nothing to show")
	return nil, nil
}

// nilIfNone turns a nil event pointer into a nil interface.
func nilIfNone[T interface {
	comparable
	bridgev2.RemoteEvent
}](evt T, err error) (bridgev2.RemoteEvent, error) {
	var zero T
	if err != nil || evt == zero {
		return nil, err
	}
	return evt, nil
}

// targetID is the ID of the message that key (of a reaction, revoke or
// edit sent by senderJID in chat) points at. The key is written from the
// point of view of its sender: FromMe is the sender's own message.
func (cl *Client) targetID(ctx context.Context, key *waCommon.MessageKey, info *types.MessageInfo, chat, senderJID types.JID) (networkid.MessageID, error) {
	var target types.JID
	switch {
	case key.GetParticipant() != "":
		jid, err := types.ParseJID(key.GetParticipant())
		if err != nil {
			return "", err
		}
		target = cl.preferPN(ctx, jid, types.EmptyJID)
	case key.GetFromMe():
		target = senderJID
	case info.IsFromMe && chat.Server != types.GroupServer:
		target = chat
	default:
		target = cl.jid
	}
	return waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: target, ID: key.GetID()})
}

// unknownTarget reports (and logs at debug level) that target is not a
// message of a bridged portal: a reaction, edit or revoke of a message
// older than the portal, dropped quietly. A portal that does not exist yet
// (a chat waiting for approval) lets the event through to the gate, which
// holds it with the messages it refers to.
func (cl *Client) unknownTarget(ctx context.Context, portalKey networkid.PortalKey, target networkid.MessageID, what string) bool {
	br := cl.main.Bridge
	portal, err := br.GetExistingPortalByKey(ctx, portalKey)
	// RoomCreated, not the room ID, which the portal's loop may be writing.
	if err != nil || portal == nil || !portal.RoomCreated.IsSet() {
		return false
	}
	msg, err := br.DB.Message.GetFirstPartByID(ctx, cl.login.ID, target)
	if err != nil || msg != nil {
		return false
	}
	zerolog.Ctx(ctx).Debug().Str("target_message_id", string(target)).Str("kind", what).
		Msg("Dropping an event about a message the portal does not have")
	return true
}

func eventTime(ms int64, fallback time.Time) time.Time {
	if ms > 0 {
		return time.UnixMilli(ms)
	}
	return fallback
}

// editEvent is a WhatsApp edit as an m.replace of the edited message.
func (cl *Client) editEvent(ctx context.Context, evt *events.Message, chat, senderJID types.JID) (*messageEvent, error) {
	info := &evt.Info
	pm := evt.Message.GetProtocolMessage()
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return nil, err
	}
	// Only a message's sender edits it: the key is theirs.
	target, err := waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: senderJID, ID: pm.GetKey().GetID()})
	if err != nil {
		return nil, err
	}
	if cl.unknownTarget(ctx, portalKey, target, "edit") {
		return nil, nil
	}
	sender := cl.eventSender(info, senderJID)
	newContent := pm.GetEditedMessage()
	msg := &simplevent.Message[*events.Message]{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventEdit,
			PortalKey: portalKey,
			Sender:    sender,
			Timestamp: eventTime(pm.GetTimestampMS(), info.Timestamp),
			LogContext: func(c zerolog.Context) zerolog.Context {
				return c.Str("wa_message_id", info.ID).Str("wa_edit_target", pm.GetKey().GetID())
			},
		},
		Data:          evt,
		ID:            target,
		TargetMessage: target,
		ConvertEditFunc: func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, _ *events.Message) (*bridgev2.ConvertedEdit, error) {
			if len(existing) == 0 {
				return nil, fmt.Errorf("%w: the edited message has no part", bridgev2.ErrIgnoringRemoteEvent)
			}
			part := existing[len(existing)-1]
			if text, mentioned, _ := messageText(newContent); text != "" {
				return &bridgev2.ConvertedEdit{ModifiedParts: []*bridgev2.ConvertedEditPart{{
					Part: part, Type: event.EventMessage, Content: wafmt.ToMatrix(ctx, cl.fmtDeps(portal), text, mentioned),
				}}}, nil
			}
			caption := captionOf(newContent)
			if caption == "" {
				return nil, fmt.Errorf("%w: an edit with neither text nor caption", bridgev2.ErrIgnoringRemoteEvent)
			}
			content, err := cl.captionEdit(ctx, portal, intent, part, caption)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", bridgev2.ErrIgnoringRemoteEvent, err)
			}
			return &bridgev2.ConvertedEdit{ModifiedParts: []*bridgev2.ConvertedEditPart{{
				Part: part, Type: event.EventMessage, Content: content,
			}}}, nil
		},
	}
	me := &messageEvent{Message: msg, heldBase: heldBase{client: cl, data: evt, chat: chat, sender: senderJID}}
	me.describe(ctx, sender)
	return me, nil
}

// captionEdit is the Matrix file event part with its caption replaced by
// caption: the file itself is read back from the room (the edit carries
// only the new caption).
func (cl *Client) captionEdit(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, part *database.Message, caption string) (*event.MessageEventContent, error) {
	if intent == nil || portal.MXID == "" || part.MXID == "" {
		return nil, errors.New("the file's event is not known")
	}
	evt, err := intent.GetEvent(ctx, portal.MXID, part.MXID)
	if err != nil {
		return nil, fmt.Errorf("failed to read the captioned file: %w", err)
	}
	_ = evt.Content.ParseRaw(evt.Type)
	orig := evt.Content.AsMessage()
	if orig == nil || !orig.MsgType.IsMedia() {
		return nil, errors.New("the edited message is not a file")
	}
	content := *orig
	content.RelatesTo, content.NewContent = nil, nil
	if content.FileName == "" {
		content.FileName = orig.Body
	}
	captioned := wafmt.ToMatrix(ctx, cl.fmtDeps(portal), caption, nil)
	content.Body, content.Format, content.FormattedBody = captioned.Body, captioned.Format, captioned.FormattedBody
	content.Mentions = captioned.Mentions
	return &content, nil
}

// reactionEvent is a WhatsApp reaction: one per user and message, so a new
// one replaces the user's previous one, and an empty one removes it.
type reactionEvent struct {
	*simplevent.Reaction
	heldBase
}

func (cl *Client) reactionEvent(ctx context.Context, evt *events.Message, chat, senderJID types.JID) (*reactionEvent, error) {
	info := &evt.Info
	rm := evt.Message.GetReactionMessage()
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return nil, err
	}
	target, err := cl.targetID(ctx, rm.GetKey(), info, chat, senderJID)
	if err != nil {
		return nil, err
	}
	if cl.unknownTarget(ctx, portalKey, target, "reaction") {
		return nil, nil
	}
	typ := bridgev2.RemoteEventReaction
	if rm.GetText() == "" {
		typ = bridgev2.RemoteEventReactionRemove
	}
	sender := cl.eventSender(info, senderJID)
	re := &reactionEvent{
		Reaction: &simplevent.Reaction{
			EventMeta: simplevent.EventMeta{
				Type: typ, PortalKey: portalKey, Sender: sender,
				Timestamp: eventTime(rm.GetSenderTimestampMS(), info.Timestamp),
				LogContext: func(c zerolog.Context) zerolog.Context {
					return c.Str("wa_message_id", info.ID).Str("target_message_id", string(target))
				},
			},
			TargetMessage: target,
			Emoji:         rm.GetText(),
		},
		heldBase: heldBase{client: cl, data: evt, chat: chat, sender: senderJID},
	}
	re.describe(ctx, sender)
	return re, nil
}

// removeEvent is a WhatsApp revoke ("delete for everyone"), by the
// message's sender or by a group admin: every Matrix event of the message
// is redacted.
type removeEvent struct {
	*simplevent.MessageRemove
	heldBase
}

func (cl *Client) revokeEvent(ctx context.Context, evt *events.Message, chat, senderJID types.JID) (*removeEvent, error) {
	info := &evt.Info
	pm := evt.Message.GetProtocolMessage()
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return nil, err
	}
	target, err := cl.targetID(ctx, pm.GetKey(), info, chat, senderJID)
	if err != nil {
		return nil, err
	}
	if cl.unknownTarget(ctx, portalKey, target, "revoke") {
		return nil, nil
	}
	sender := cl.eventSender(info, senderJID)
	re := &removeEvent{
		MessageRemove: &simplevent.MessageRemove{
			EventMeta: simplevent.EventMeta{
				Type: bridgev2.RemoteEventMessageRemove, PortalKey: portalKey, Sender: sender, Timestamp: info.Timestamp,
				LogContext: func(c zerolog.Context) zerolog.Context {
					return c.Str("wa_message_id", info.ID).Str("target_message_id", string(target))
				},
			},
			TargetMessage: target,
		},
		heldBase: heldBase{client: cl, data: evt, chat: chat, sender: senderJID},
	}
	re.describe(ctx, sender)
	return re, nil
}

// contextInfoOf is the context info of a message (replies and mentions).
func contextInfoOf(msg *waE2E.Message) *waE2E.ContextInfo {
	switch {
	case msg.GetExtendedTextMessage() != nil:
		return msg.GetExtendedTextMessage().GetContextInfo()
	case msg.GetImageMessage() != nil:
		return msg.GetImageMessage().GetContextInfo()
	case msg.GetVideoMessage() != nil:
		return msg.GetVideoMessage().GetContextInfo()
	case msg.GetAudioMessage() != nil:
		return msg.GetAudioMessage().GetContextInfo()
	case msg.GetDocumentMessage() != nil:
		return msg.GetDocumentMessage().GetContextInfo()
	case msg.GetStickerMessage() != nil:
		return msg.GetStickerMessage().GetContextInfo()
	case msg.GetLocationMessage() != nil:
		return msg.GetLocationMessage().GetContextInfo()
	case msg.GetContactMessage() != nil:
		return msg.GetContactMessage().GetContextInfo()
	}
	return nil
}

// captionOf is the caption of a media message.
func captionOf(msg *waE2E.Message) string {
	switch {
	case msg.GetImageMessage() != nil:
		return msg.GetImageMessage().GetCaption()
	case msg.GetVideoMessage() != nil:
		return msg.GetVideoMessage().GetCaption()
	case msg.GetDocumentMessage() != nil:
		return msg.GetDocumentMessage().GetCaption()
	}
	return ""
}

// reply is what a message says it answers: the bridged message, or, for a
// message the portal does not have, the quoted text.
type reply struct {
	target *networkid.MessageOptionalPartID
	quote  string
}

// replyOf reads the quoted message of data, in chat.
func (cl *Client) replyOf(ctx context.Context, portal *bridgev2.Portal, chat types.JID, data *events.Message) reply {
	ci := contextInfoOf(data.Message)
	if ci.GetStanzaID() == "" {
		return reply{}
	}
	var candidates []types.JID
	if p := ci.GetParticipant(); p != "" {
		if jid, err := types.ParseJID(p); err == nil {
			candidates = append(candidates, cl.preferPN(ctx, jid, types.EmptyJID))
		}
	}
	if len(candidates) == 0 {
		if chat.Server != types.GroupServer {
			candidates = append(candidates, chat)
		}
		candidates = append(candidates, cl.jid)
	}
	for _, sender := range candidates {
		msgID, err := waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: sender, ID: ci.GetStanzaID()})
		if err != nil {
			continue
		}
		if msg, err := cl.main.Bridge.DB.Message.GetFirstPartByID(ctx, portal.Receiver, msgID); err == nil && msg != nil {
			return reply{target: &networkid.MessageOptionalPartID{MessageID: msgID}}
		}
	}
	quoted := ci.GetQuotedMessage()
	text, _, _ := messageText(quoted)
	if text == "" {
		text = captionOf(quoted)
	}
	if text == "" && quoted != nil {
		text = "a message"
	}
	return reply{quote: text}
}

// addQuoteFallback shows quote above the message, as a quote block, for a
// reply to a message the portal does not have.
func addQuoteFallback(content *event.MessageEventContent, quote string) {
	if r := []rune(quote); len(r) > maxQuoteRunes {
		quote = string(r[:maxQuoteRunes]) + "…"
	}
	lines := strings.Split(quote, "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	formatted := content.FormattedBody
	if content.Format != event.FormatHTML || formatted == "" {
		formatted = strings.ReplaceAll(html.EscapeString(content.Body), "\n", "<br/>")
	}
	content.Body = strings.Join(lines, "\n") + "\n\n" + content.Body
	content.Format = event.FormatHTML
	content.FormattedBody = "<blockquote>" + strings.ReplaceAll(html.EscapeString(quote), "\n", "<br/>") + "</blockquote>" + formatted
}

// receiptEvent is a read receipt: a contact read the staff member's
// messages, or the staff member read the chat on their phone.
type receiptEvent struct {
	*simplevent.Receipt
	chatDesc   remote.Chat
	senderDesc remote.Identity
}

// RemoteChat implements remote.Described.
func (e *receiptEvent) RemoteChat() remote.Chat { return e.chatDesc }

// RemoteSender implements remote.Described.
func (e *receiptEvent) RemoteSender() remote.Identity { return e.senderDesc }

// typingEvent is a contact typing (or stopping) in a chat.
type typingEvent struct {
	*simplevent.Typing
	chatDesc   remote.Chat
	senderDesc remote.Identity
}

// RemoteChat implements remote.Described.
func (e *typingEvent) RemoteChat() remote.Chat { return e.chatDesc }

// RemoteSender implements remote.Described.
func (e *typingEvent) RemoteSender() remote.Identity { return e.senderDesc }

// describeSignal is what the gate reads of a receipt or typing event.
func (cl *Client) describeSignal(ctx context.Context, chat types.JID, sender bridgev2.EventSender) (remote.Chat, remote.Identity) {
	chatDesc := cl.cachedChat(ctx, chat)
	var ident remote.Identity
	if !sender.IsFromMe {
		ident, _ = cl.DescribeRemoteUser(ctx, sender.Sender)
	}
	return chatDesc, ident
}

// handleReceipt bridges read receipts: a contact's (type read) as their
// ghost's m.read, the staff member's own from another device (read-self,
// or read from their own JID) as theirs. Delivery and other receipts are
// not shown.
func (cl *Client) handleReceipt(ctx context.Context, evt *events.Receipt) {
	if evt.Type != types.ReceiptTypeRead && evt.Type != types.ReceiptTypeReadSelf {
		return
	}
	if evt.Chat.Server == types.BroadcastServer || evt.Chat.Server == types.NewsletterServer {
		return
	}
	byMe := evt.IsFromMe || evt.Type == types.ReceiptTypeReadSelf
	var chat, msgSender, reader types.JID
	switch {
	case evt.IsGroup && byMe:
		chat, msgSender, reader = evt.Chat, cl.preferPN(ctx, evt.Sender, evt.SenderAlt), cl.jid
	case evt.IsGroup:
		chat, msgSender, reader = evt.Chat, cl.jid, cl.preferPN(ctx, evt.Sender, evt.SenderAlt)
	case byMe:
		chat = cl.preferPN(ctx, evt.Chat, evt.RecipientAlt)
		msgSender, reader = chat, cl.jid
	default:
		chat = cl.preferPN(ctx, evt.Chat, evt.SenderAlt)
		msgSender, reader = cl.jid, chat
	}
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return
	}
	var last *database.Message
	targets := make([]networkid.MessageID, 0, len(evt.MessageIDs))
	for _, id := range evt.MessageIDs {
		msgID, err := waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: msgSender, ID: id})
		if err != nil {
			continue
		}
		msg, err := cl.main.Bridge.DB.Message.GetFirstPartByID(ctx, cl.login.ID, msgID)
		if err != nil || msg == nil {
			continue
		}
		targets = append(targets, msgID)
		if last == nil || msg.Timestamp.After(last.Timestamp) {
			last = msg
		}
	}
	if last == nil {
		zerolog.Ctx(ctx).Debug().Int("messages", len(evt.MessageIDs)).Msg("Dropping a read receipt for messages the portal does not have")
		return
	}
	info := &types.MessageInfo{MessageSource: types.MessageSource{IsFromMe: byMe}}
	sender := cl.eventSender(info, reader)
	re := &receiptEvent{Receipt: &simplevent.Receipt{
		EventMeta:  simplevent.EventMeta{Type: bridgev2.RemoteEventReadReceipt, PortalKey: portalKey, Sender: sender, Timestamp: evt.Timestamp},
		LastTarget: last.ID,
		Targets:    targets,
	}}
	if chat.Server == types.GroupServer && !cl.main.seen.claim("r|"+chat.User+"|"+reader.User+"|"+string(last.ID), cl.login.ID, 0) {
		return // another login in the group bridged this receipt
	}
	re.chatDesc, re.senderDesc = cl.describeSignal(ctx, chat, sender)
	defer cl.main.lockGroup(chat)()
	cl.main.Queue(cl.login, re)
}

// handleChatPresence bridges a contact typing or recording in a chat.
func (cl *Client) handleChatPresence(ctx context.Context, evt *events.ChatPresence) {
	if evt.IsFromMe || evt.Chat.Server == types.BroadcastServer || evt.Chat.Server == types.NewsletterServer {
		return
	}
	who := cl.preferPN(ctx, evt.Sender, evt.SenderAlt)
	chat := evt.Chat
	if !evt.IsGroup {
		chat = cl.preferPN(ctx, evt.Chat, evt.SenderAlt)
	}
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return
	}
	typing := &simplevent.Typing{
		EventMeta: simplevent.EventMeta{Type: bridgev2.RemoteEventTyping, PortalKey: portalKey, Timestamp: cl.main.Clock.Now()},
		Type:      bridgev2.TypingTypeText,
	}
	if evt.State == types.ChatPresenceComposing {
		typing.Timeout = typingTimeout
		if evt.Media == types.ChatPresenceMediaAudio {
			typing.Type = bridgev2.TypingTypeRecordingMedia
		}
	}
	typing.Sender = cl.eventSender(&types.MessageInfo{}, who)
	if evt.IsGroup && !cl.main.seen.claim("t|"+chat.User+"|"+who.User+"|"+string(evt.State), cl.login.ID, typingWindow) {
		return // another login in the group bridged this typing notification
	}
	te := &typingEvent{Typing: typing}
	te.chatDesc, te.senderDesc = cl.describeSignal(ctx, chat, typing.Sender)
	defer cl.main.lockGroup(chat)()
	cl.main.Queue(cl.login, te)
}

// handlePresence hands a contact's presence (online, or offline with the
// time last seen when they share it) to the gateway.
func (cl *Client) handlePresence(ctx context.Context, evt *events.Presence) {
	jid := cl.preferPN(ctx, evt.From, types.EmptyJID)
	if jid.User == cl.jid.User || jid.Server != types.DefaultUserServer && jid.Server != types.HiddenUserServer {
		return
	}
	userID, err := waid.MakeUserID(jid)
	if err != nil {
		return
	}
	cl.main.Presence(ctx, cl.login, remote.Presence{User: userID, Online: !evt.Unavailable, LastSeen: evt.LastSeen})
}

// subscribePresence asks WhatsApp for a contact's presence, once per
// connection (WhatsApp forgets subscriptions when the connection ends).
func (cl *Client) subscribePresence(ctx context.Context, jid types.JID) {
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return
	}
	cl.mu.Lock()
	if cl.subscribed == nil {
		cl.subscribed = map[types.JID]bool{}
	}
	done := cl.subscribed[jid] || len(cl.subscribed) >= maxPresenceSubscriptions
	if !done {
		cl.subscribed[jid] = true
	}
	cl.mu.Unlock()
	if done {
		return
	}
	if err := wa.SubscribePresence(ctx, jid); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to subscribe to a contact's presence")
	}
}

// subscribeDirectChats follows the presence of the contacts of the login's
// direct chats on a new connection.
func (cl *Client) subscribeDirectChats(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Any("panic", p).Msg("Panic while subscribing to presence")
		}
	}()
	portals, err := cl.main.Bridge.DB.UserPortal.GetAllForLogin(ctx, cl.login.UserLogin)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to list direct chats to follow presence")
		return
	}
	for i, up := range portals {
		if i >= maxPresenceSubscriptions || ctx.Err() != nil {
			return
		}
		if chat, err := waid.ParsePortalID(up.Portal.ID); err == nil && chat.Server == types.DefaultUserServer {
			cl.subscribePresence(ctx, chat)
		}
	}
}

// resetPresenceSubscriptions forgets the subscriptions of the last
// connection.
func (cl *Client) resetPresenceSubscriptions() {
	cl.mu.Lock()
	cl.subscribed = nil
	cl.mu.Unlock()
}

// maxPresenceSubscriptions caps the contacts whose presence one connection
// follows.
const maxPresenceSubscriptions = 5000
