package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/emojirunes"
	"go.mau.fi/util/variationselector"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/wafmt"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// The conversation around messages, Matrix → WhatsApp: replies (in
// handlematrix.go), edits, deletions, reactions, read receipts, typing and
// the staff member's presence.

var (
	_ bridgev2.EditHandlingNetworkAPI        = (*Client)(nil)
	_ bridgev2.RedactionHandlingNetworkAPI   = (*Client)(nil)
	_ bridgev2.ReactionHandlingNetworkAPI    = (*Client)(nil)
	_ bridgev2.ReadReceiptHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.TypingHandlingNetworkAPI      = (*Client)(nil)
)

// EditWindow is how long after sending a message WhatsApp lets its sender
// edit it.
const EditWindow = 15 * time.Minute

// maxReadBatch bounds the messages one Matrix read receipt marks read on
// WhatsApp.
const maxReadBatch = 200

// Errors of edits, deletions and reactions that WhatsApp would not take.
var (
	ErrEditTooLate      = errors.New("WhatsApp only lets a message be edited for 15 minutes after it was sent")
	ErrEditNotOwn       = errors.New("only your own WhatsApp messages can be edited")
	ErrEditEmpty        = errors.New("the edit has no text")
	ErrEditCaption      = errors.New("editing a file's caption is not bridged to WhatsApp; send the new text as a message")
	ErrRevokeNotAllowed = errors.New("you can only delete your own WhatsApp messages for everyone (and, in a group where you are an admin, other members' messages)")
	ErrReactionNotEmoji = errors.New("WhatsApp reactions are a single emoji")
)

// certain wraps err as a failed send status explained in the room.
func certain(err error, reason event.MessageStatusReason) error {
	return bridgev2.WrapErrorInStatus(err).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true).
		WithErrorReason(reason).WithStatus(event.MessageStatusFail)
}

// targetOf is the chat and key of a bridged message.
func (cl *Client) targetOf(portal *bridgev2.Portal, msg *database.Message) (types.JID, waid.MessageKey, error) {
	chat, err := waid.ParsePortalID(portal.ID)
	if err != nil {
		return chat, waid.MessageKey{}, err
	}
	key, err := waid.ParseMessageID(msg.ID)
	return chat, key, err
}

// isMe tells the account's own JID (phone or LID form).
func (cl *Client) isMe(jid types.JID) bool {
	return jid.User == cl.jid.User || cl.IsThisUser(context.Background(), mustUserID(jid))
}

func mustUserID(jid types.JID) networkid.UserID {
	id, _ := waid.MakeUserID(jid.ToNonAD())
	return id
}

// checkContent asks the outbound check for an edit, reaction or deletion;
// a refusal is the failed send status.
func (cl *Client) checkContent(ctx context.Context, kind remote.OutboundKind, portal *bridgev2.Portal, chat types.JID, target networkid.MessageID) (remote.Outbound, error) {
	out, err := cl.outbound(ctx, kind, portal, chat)
	if err != nil {
		return out, err
	}
	out.TargetMessage = target
	if err = cl.main.CheckOutbound(ctx, out); err != nil {
		return out, remote.MessageStatus(err)
	}
	if cl.client() == nil {
		return out, bridgev2.WrapErrorInStatus(ErrNotConnected).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true)
	}
	return out, nil
}

// HandleMatrixEdit implements bridgev2.EditHandlingNetworkAPI: the staff
// member's own message is edited on WhatsApp, within WhatsApp's edit
// window (checked here first, on the connector's clock).
func (cl *Client) HandleMatrixEdit(ctx context.Context, msg *bridgev2.MatrixEdit) error {
	chat, key, err := cl.targetOf(msg.Portal, msg.EditTarget)
	if err != nil {
		return err
	}
	if !cl.isMe(key.Sender) {
		return certain(ErrEditNotOwn, event.MessageStatusUnsupported)
	}
	if msg.Content.MsgType.IsMedia() {
		return certain(ErrEditCaption, event.MessageStatusUnsupported)
	}
	if cl.main.Clock.Now().Sub(msg.EditTarget.Timestamp) > EditWindow {
		return certain(ErrEditTooLate, event.MessageStatusUnsupported)
	}
	out := wafmt.FromMatrix(ctx, cl.fmtDeps(msg.Portal), msg.Content)
	if out.Text == "" {
		return certain(ErrEditEmpty, event.MessageStatusUnsupported)
	}
	check, err := cl.checkContent(ctx, remote.OutboundEdit, msg.Portal, chat, msg.EditTarget.ID)
	if err != nil {
		return err
	}
	newContent := &waE2E.Message{Conversation: proto.String(out.Text)}
	if len(out.Mentioned) > 0 {
		newContent = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String(out.Text), ContextInfo: &waE2E.ContextInfo{MentionedJID: out.Mentioned},
		}}
	}
	wa := cl.client()
	if _, err = cl.sendMessage(ctx, chat, wa.BuildEdit(chat, key.ID, newContent), whatsmeow.SendRequestExtra{ID: matrixMessageID(msg.Event.ID)}); err != nil {
		return fmt.Errorf("failed to send edit to WhatsApp: %w", err)
	}
	cl.main.Sent(ctx, check)
	return nil
}

// HandleMatrixMessageRemove implements bridgev2.RedactionHandlingNetworkAPI:
// a redaction revokes the message for everyone on WhatsApp, when the staff
// member may: their own messages, and in a group where they are an admin
// other members' too.
func (cl *Client) HandleMatrixMessageRemove(ctx context.Context, msg *bridgev2.MatrixMessageRemove) error {
	chat, key, err := cl.targetOf(msg.Portal, msg.TargetMessage)
	if err != nil {
		return err
	}
	sender := types.EmptyJID
	if !cl.isMe(key.Sender) {
		if chat.Server != types.GroupServer || !cl.isGroupAdmin(ctx, chat) {
			return certain(ErrRevokeNotAllowed, event.MessageStatusNoPermission)
		}
		sender = key.Sender
	}
	check, err := cl.checkContent(ctx, remote.OutboundRedaction, msg.Portal, chat, msg.TargetMessage.ID)
	if err != nil {
		return err
	}
	wa := cl.client()
	if _, err = cl.sendMessage(ctx, chat, wa.BuildRevoke(chat, sender, key.ID), whatsmeow.SendRequestExtra{ID: matrixMessageID(msg.Event.ID)}); err != nil {
		return fmt.Errorf("failed to revoke the message on WhatsApp: %w", err)
	}
	if followUp := meta.Get[waid.MessageMetadata](msg.TargetMessage.Metadata).FollowUpID; followUp != "" && sender.IsEmpty() {
		if _, err = cl.sendMessage(ctx, chat, wa.BuildRevoke(chat, types.EmptyJID, followUp), whatsmeow.SendRequestExtra{ID: matrixMessageID(msg.Event.ID + "/caption")}); err != nil {
			return fmt.Errorf("failed to revoke the audio's caption on WhatsApp: %w", err)
		}
	}
	cl.main.Sent(ctx, check)
	return nil
}

// isGroupAdmin asks WhatsApp whether the account is an admin of group.
func (cl *Client) isGroupAdmin(ctx context.Context, group types.JID) bool {
	wa := cl.client()
	if wa == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, groupInfoTimeout)
	defer cancel()
	info, err := wa.GetGroupInfo(ctx, group)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to get group info to check admin rights")
		return false
	}
	return slices.ContainsFunc(info.Participants, func(p types.GroupParticipant) bool {
		return (p.IsAdmin || p.IsSuperAdmin) && (cl.isMe(p.JID) || cl.isMe(p.PhoneNumber))
	})
}

// PreHandleMatrixReaction implements bridgev2.ReactionHandlingNetworkAPI:
// WhatsApp keeps one reaction per user and message (a new one replaces the
// old), and a reaction is one emoji.
func (cl *Client) PreHandleMatrixReaction(_ context.Context, msg *bridgev2.MatrixReaction) (bridgev2.MatrixReactionPreResponse, error) {
	emoji := variationselector.FullyQualify(msg.Content.RelatesTo.Key)
	if !isSingleEmoji(emoji) {
		return bridgev2.MatrixReactionPreResponse{}, certain(ErrReactionNotEmoji, event.MessageStatusUnsupported)
	}
	self, err := waid.MakeUserID(cl.jid)
	if err != nil {
		return bridgev2.MatrixReactionPreResponse{}, err
	}
	return bridgev2.MatrixReactionPreResponse{SenderID: self, Emoji: emoji, MaxReactions: 1}, nil
}

// HandleMatrixReaction implements bridgev2.ReactionHandlingNetworkAPI.
func (cl *Client) HandleMatrixReaction(ctx context.Context, msg *bridgev2.MatrixReaction) (*database.Reaction, error) {
	if err := cl.sendReaction(ctx, msg.Portal, msg.TargetMessage, msg.PreHandleResp.Emoji, msg.Event.ID); err != nil {
		return nil, err
	}
	return &database.Reaction{}, nil
}

// HandleMatrixReactionRemove implements bridgev2.ReactionHandlingNetworkAPI:
// an empty reaction removes the account's reaction on WhatsApp.
func (cl *Client) HandleMatrixReactionRemove(ctx context.Context, msg *bridgev2.MatrixReactionRemove) error {
	target, err := cl.main.Bridge.DB.Message.GetFirstPartByID(ctx, msg.Portal.Receiver, msg.TargetReaction.MessageID)
	if err != nil {
		return err
	} else if target == nil {
		return fmt.Errorf("reaction target %s not found", msg.TargetReaction.MessageID)
	}
	return cl.sendReaction(ctx, msg.Portal, target, "", msg.Event.ID)
}

func (cl *Client) sendReaction(ctx context.Context, portal *bridgev2.Portal, target *database.Message, emoji string, evtID id.EventID) error {
	chat, key, err := cl.targetOf(portal, target)
	if err != nil {
		return err
	}
	check, err := cl.checkContent(ctx, remote.OutboundReaction, portal, chat, target.ID)
	if err != nil {
		return err
	}
	wa := cl.client()
	if _, err = cl.sendMessage(ctx, chat, wa.BuildReaction(chat, key.Sender, key.ID, emoji), whatsmeow.SendRequestExtra{ID: matrixMessageID(evtID)}); err != nil {
		return fmt.Errorf("failed to send reaction to WhatsApp: %w", err)
	}
	cl.main.Sent(ctx, check)
	return nil
}

// isSingleEmoji tells one emoji (with its modifiers, joiners and
// variation selectors) from text, several emoji, or nothing.
func isSingleEmoji(s string) bool {
	if s == "" || len(s) > 64 || !emojirunes.IsOnlyEmojis(s) {
		return false
	}
	clusters, prev, regional := 0, rune(0), 0
	for _, r := range s {
		joined := false
		switch {
		case r == 0x200D || r == 0xFE0F || r == 0xFE0E || r == 0x20E3:
			joined = true
		case r >= 0x1F3FB && r <= 0x1F3FF: // skin tones
			joined = true
		case r >= 0xE0020 && r <= 0xE007F: // tag sequences (subdivision flags)
			joined = true
		case prev == 0x200D:
			joined = true
		case r >= 0x1F1E6 && r <= 0x1F1FF: // regional indicators pair into flags
			regional++
			joined = regional%2 == 0
		}
		if !joined {
			clusters++
		}
		prev = r
	}
	return clusters == 1
}

// HandleMatrixReadReceipt implements bridgev2.ReadReceiptHandlingNetworkAPI:
// the contact's (and in groups the members') messages up to the one read
// are marked read on WhatsApp, one receipt per sender.
func (cl *Client) HandleMatrixReadReceipt(ctx context.Context, msg *bridgev2.MatrixReadReceipt) error {
	chat, err := waid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return err
	}
	out, err := cl.outbound(ctx, remote.OutboundReadReceipt, msg.Portal, chat)
	if err != nil {
		return nil
	}
	if msg.ExactMessage != nil {
		out.TargetMessage = msg.ExactMessage.ID
	}
	if !cl.main.AllowsSignal(ctx, out) {
		return nil
	}
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return nil
	}
	start := msg.LastRead
	if start.IsZero() || msg.ReadUpTo.Sub(start) > 7*24*time.Hour {
		start = msg.ReadUpTo.Add(-7 * 24 * time.Hour)
	}
	msgs, err := cl.main.Bridge.DB.Message.GetMessagesBetweenTimeQuery(ctx, msg.Portal.PortalKey, start, msg.ReadUpTo)
	if err != nil {
		return fmt.Errorf("failed to list the messages read: %w", err)
	}
	if msg.ExactMessage != nil && !slices.ContainsFunc(msgs, func(m *database.Message) bool { return m.ID == msg.ExactMessage.ID }) {
		msgs = append(msgs, msg.ExactMessage)
	}
	bySender := map[types.JID][]types.MessageID{}
	var order []types.JID
	for _, m := range msgs {
		key, err := waid.ParseMessageID(m.ID)
		if err != nil || cl.isMe(key.Sender) || slices.Contains(bySender[key.Sender], key.ID) {
			continue
		}
		if _, ok := bySender[key.Sender]; !ok {
			order = append(order, key.Sender)
		}
		bySender[key.Sender] = append(bySender[key.Sender], key.ID)
	}
	now := cl.main.Clock.Now()
	for _, sender := range order {
		ids := bySender[sender]
		if len(ids) > maxReadBatch {
			ids = ids[len(ids)-maxReadBatch:]
		}
		if err = wa.MarkRead(ctx, ids, now, chat, sender); err != nil {
			return fmt.Errorf("failed to send read receipt to WhatsApp: %w", err)
		}
	}
	if len(order) > 0 {
		cl.main.Sent(ctx, out)
	}
	return nil
}

// HandleMatrixTyping implements bridgev2.TypingHandlingNetworkAPI: the
// staff member typing shows as "typing…" (composing) on WhatsApp.
func (cl *Client) HandleMatrixTyping(ctx context.Context, msg *bridgev2.MatrixTyping) error {
	chat, err := waid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return err
	}
	out, err := cl.outbound(ctx, remote.OutboundTyping, msg.Portal, chat)
	if err != nil || !cl.main.AllowsSignal(ctx, out) {
		return nil
	}
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return nil
	}
	state, media := types.ChatPresencePaused, types.ChatPresenceMedia("")
	if msg.IsTyping {
		state = types.ChatPresenceComposing
		if msg.Type == bridgev2.TypingTypeRecordingMedia {
			media = types.ChatPresenceMediaAudio
		}
	}
	if err = wa.SendChatPresence(ctx, chat, state, media); err != nil {
		return fmt.Errorf("failed to send typing to WhatsApp: %w", err)
	}
	if chat.Server != types.GroupServer {
		cl.subscribePresence(ctx, chat)
	}
	cl.main.Sent(ctx, out)
	return nil
}

// announcePresence tells WhatsApp the staff member is available once
// connected (WhatsApp sends contacts' presence only to an available
// account), or unavailable when the organisation keeps presence off.
func (cl *Client) announcePresence(ctx context.Context) {
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return
	}
	out := remote.Outbound{Kind: remote.OutboundPresence, Login: cl.login}
	state := types.PresenceAvailable
	if !cl.main.AllowsSignal(ctx, out) {
		state = types.PresenceUnavailable
	}
	if wa.Store.PushName == "" {
		// WhatsApp wants the push name with presence; the phone sends it
		// through app state, which may not have arrived yet (it is
		// announced again when it does: events.PushNameSetting).
		name := meta.Get[waid.UserLoginMetadata](cl.login.Metadata).PushName
		if name == "" {
			name = cl.login.RemoteName
		}
		wa.Store.PushName = name
	}
	if err := wa.SendPresence(ctx, state); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to send presence to WhatsApp")
		return
	}
	if state == types.PresenceAvailable {
		cl.main.Sent(ctx, out)
	}
}
