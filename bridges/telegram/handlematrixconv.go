package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"go.mau.fi/util/variationselector"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgfmt"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/clock"
)

// Matrix → Telegram: edits, deletions, reactions, read markers, typing and
// the staff member's presence.

var (
	_ bridgev2.EditHandlingNetworkAPI        = (*Client)(nil)
	_ bridgev2.RedactionHandlingNetworkAPI   = (*Client)(nil)
	_ bridgev2.ReactionHandlingNetworkAPI    = (*Client)(nil)
	_ bridgev2.ReadReceiptHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.TypingHandlingNetworkAPI      = (*Client)(nil)
)

// Telegram's answers that the connector explains.
const (
	tgErrEditExpired    = "MESSAGE_EDIT_TIME_EXPIRED"
	tgErrNotModified    = "MESSAGE_NOT_MODIFIED"
	tgErrReactionBad    = "REACTION_INVALID"
	tgErrReactionsLimit = "REACTIONS_TOO_MANY"
)

// failStatus is a certain failure explained in the room.
func failStatus(err error, reason event.MessageStatusReason) error {
	return bridgev2.WrapErrorInStatus(err).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true).
		WithErrorReason(reason).WithStatus(event.MessageStatusFail)
}

// targetOf is the Telegram message ID of a bridged message.
func targetOf(msg *database.Message) (int, error) {
	if msg == nil {
		return 0, fmt.Errorf("the message is not bridged")
	}
	key, err := tgid.ParseMessageID(msg.ID)
	if err != nil {
		return 0, err
	}
	return key.ID, nil
}

// prepareOutbound resolves the chat and asks the outbound check for an
// event about target (nil for none).
func (c *Client) prepareOutbound(ctx context.Context, kind remote.OutboundKind, portal *bridgev2.Portal, target *database.Message) (tg.InputPeerClass, remote.Outbound, error) {
	peer, err := tgid.ParsePortalID(portal.ID)
	if err != nil {
		return nil, remote.Outbound{}, errCannotSend(err)
	}
	out := c.outbound(kind, portal, peer)
	if target != nil {
		out.TargetMessage = target.ID
	}
	if err := c.main.CheckOutbound(ctx, out); err != nil {
		return nil, out, err
	}
	inputPeer, err := c.inputPeer(ctx, peer)
	if err != nil {
		return nil, out, errCannotSend(err)
	}
	return inputPeer, out, nil
}

// HandleMatrixEdit sends a Matrix edit as messages.editMessage: the new text
// of a text message, the new caption of a media message. Past Telegram's
// edit window the edit fails with a reason.
func (c *Client) HandleMatrixEdit(ctx context.Context, msg *bridgev2.MatrixEdit) error {
	inputPeer, out, err := c.prepareOutbound(ctx, remote.OutboundEdit, msg.Portal, msg.EditTarget)
	if err != nil {
		var st bridgev2.MessageStatus
		if errors.As(err, &st) {
			return err
		}
		return remote.MessageStatus(err)
	}
	id, err := c.ownTarget(ctx, msg.EditTarget)
	if err != nil {
		return errCannotSend(err)
	}
	content := msg.Content
	if content.MsgType.IsMedia() {
		// Only the caption changes; a file name alone is no caption.
		caption := *content
		if caption.FileName == "" || caption.FileName == caption.Body {
			caption.Body, caption.FormattedBody, caption.Format = "", "", ""
		}
		content = &caption
	}
	text, entities := tgfmt.FromMatrix(ctx, c.fmtDeps(), content)
	if text == "" && !content.MsgType.IsMedia() {
		return errCannotSend(fmt.Errorf("an edit cannot empty a Telegram message"))
	}
	req := &tg.MessagesEditMessageRequest{Peer: inputPeer, ID: id, NoWebpage: true}
	req.SetMessage(text)
	if ents := c.toInputEntities(ctx, entities); len(ents) > 0 {
		req.SetEntities(ents)
	}
	resp, err := callWhenConnected(ctx, c, "Editing on Telegram", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		return api.MessagesEditMessage(ctx, req)
	})
	switch {
	case tgerr.Is(err, tgErrNotModified):
		return nil
	case tgerr.Is(err, tgErrEditExpired):
		return failStatus(errors.New("the message is too old to be edited on Telegram (48 hours at most)"), event.MessageStatusTooOld)
	case err != nil:
		return bridgev2.WrapErrorInStatus(fmt.Errorf("failed to edit the message on Telegram: %w", err)).WithErrorAsMessage().WithSendNotice(true)
	}
	c.rememberSentEdit(msg.EditTarget.ID, resp)
	c.feedUpdates(resp)
	c.main.Sent(ctx, out)
	return nil
}

// rememberSentEdit notes the edit date Telegram gave an edit sent from
// Matrix, so that its echo is not bridged back.
func (c *Client) rememberSentEdit(target networkid.MessageID, resp tg.UpdatesClass) {
	u, ok := resp.(*tg.Updates)
	if !ok {
		return
	}
	for _, upd := range u.Updates {
		if e, ok := upd.(*tg.UpdateEditMessage); ok {
			if m, ok := e.Message.(*tg.Message); ok && m.EditDate != 0 {
				c.sentEdits.Put(target, m.EditDate)
			}
		}
	}
}

// HandleMatrixMessageRemove deletes a message for both sides
// (messages.deleteMessages with revoke).
func (c *Client) HandleMatrixMessageRemove(ctx context.Context, msg *bridgev2.MatrixMessageRemove) error {
	inputPeer, out, err := c.prepareOutbound(ctx, remote.OutboundRedaction, msg.Portal, msg.TargetMessage)
	if err != nil {
		var st bridgev2.MessageStatus
		if errors.As(err, &st) {
			return err
		}
		return remote.MessageStatus(err)
	}
	id, err := c.ownTarget(ctx, msg.TargetMessage)
	if err != nil {
		return errCannotSend(err)
	}
	if _, ok := inputPeer.(*tg.InputPeerChat); ok {
		c.markBasicDeleted(msg.TargetMessage.ID)
	}
	resp, err := callWhenConnected(ctx, c, "Deleting on Telegram", func(ctx context.Context, api *tg.Client) (*tg.MessagesAffectedMessages, error) {
		if ch, ok := inputPeer.(*tg.InputPeerChannel); ok {
			// A group's messages are in its own box: channels.deleteMessages
			// (messages.deleteMessages would name the account's own box).
			return api.ChannelsDeleteMessages(ctx, &tg.ChannelsDeleteMessagesRequest{
				Channel: &tg.InputChannel{ChannelID: ch.ChannelID, AccessHash: ch.AccessHash}, ID: []int{id}})
		}
		return api.MessagesDeleteMessages(ctx, &tg.MessagesDeleteMessagesRequest{Revoke: true, ID: []int{id}})
	})
	if err == nil {
		if _, ok := inputPeer.(*tg.InputPeerChannel); ok {
			// The channel's pts is the channel's own: no account pts moved.
			c.main.Sent(ctx, out)
			return nil
		}
	}
	if err != nil {
		return bridgev2.WrapErrorInStatus(fmt.Errorf("failed to delete the message on Telegram: %w", err)).WithErrorAsMessage().WithSendNotice(true)
	}
	c.feedAffected(resp)
	c.main.Sent(ctx, out)
	return nil
}

// feedAffected moves the updates manager's pts past what a call changed.
func (c *Client) feedAffected(resp *tg.MessagesAffectedMessages) {
	rm := c.mgr.Load()
	if rm == nil || resp == nil || resp.PtsCount == 0 {
		return
	}
	go func() {
		defer c.recoverHandler(rm.ctx, "affected_messages")
		if err := rm.mgr.mgr.HandleAffected(rm.ctx, 0, resp.Pts, resp.PtsCount); err != nil && rm.ctx.Err() == nil {
			zerolog.Ctx(rm.ctx).Debug().Err(err).Msg("Failed to hand affected messages to the updates manager")
		}
	}()
}

// maxReactions is how many reactions the account may put on one message:
// 3 with Telegram Premium, else 1.
func (c *Client) maxReactions() int {
	if u, ok := c.users.get(c.userID); ok && u.Premium {
		return 3
	}
	return 1
}

// reactionKey is the Telegram form of a Matrix reaction key: emoji are
// sent without variation selectors, as Telegram writes them.
func reactionKey(key string) string {
	return variationselector.Remove(strings.TrimSpace(key))
}

// tgReaction is the Telegram reaction of an emoji ID.
func tgReaction(emojiID networkid.EmojiID) tg.ReactionClass {
	if id, ok := strings.CutPrefix(string(emojiID), customEmojiPrefix); ok {
		if doc, err := strconv.ParseInt(id, 10, 64); err == nil {
			return &tg.ReactionCustomEmoji{DocumentID: doc}
		}
	}
	return &tg.ReactionEmoji{Emoticon: string(emojiID)}
}

// PreHandleMatrixReaction implements bridgev2.ReactionHandlingNetworkAPI.
func (c *Client) PreHandleMatrixReaction(_ context.Context, msg *bridgev2.MatrixReaction) (bridgev2.MatrixReactionPreResponse, error) {
	key := reactionKey(msg.Content.RelatesTo.Key)
	if key == "" || len(key) > 64 {
		return bridgev2.MatrixReactionPreResponse{}, failStatus(errors.New("this reaction cannot be sent to Telegram"), event.MessageStatusUnsupported)
	}
	return bridgev2.MatrixReactionPreResponse{
		SenderID:     tgid.MakeUserID(c.userID),
		EmojiID:      networkid.EmojiID(key),
		Emoji:        variationselector.Add(key),
		MaxReactions: c.maxReactions(),
	}, nil
}

// HandleMatrixReaction sends the account's reactions to the message: the
// ones it keeps and the new one (messages.sendReaction sets them all).
func (c *Client) HandleMatrixReaction(ctx context.Context, msg *bridgev2.MatrixReaction) (*database.Reaction, error) {
	list := []tg.ReactionClass{}
	for _, r := range msg.ExistingReactionsToKeep {
		list = append(list, tgReaction(r.EmojiID))
	}
	list = append(list, tgReaction(msg.PreHandleResp.EmojiID))
	if err := c.sendReactions(ctx, msg.Portal, msg.TargetMessage, list, string(msg.PreHandleResp.EmojiID)); err != nil {
		return nil, err
	}
	return &database.Reaction{}, nil
}

// HandleMatrixReactionRemove sends the account's reactions without the
// removed one.
func (c *Client) HandleMatrixReactionRemove(ctx context.Context, msg *bridgev2.MatrixReactionRemove) error {
	target := msg.TargetReaction
	all, err := c.main.Bridge.DB.Reaction.GetAllToMessageBySender(ctx, msg.Portal.Receiver, target.MessageID, target.SenderID)
	if err != nil {
		return fmt.Errorf("failed to get reactions: %w", err)
	}
	list := []tg.ReactionClass{}
	for _, r := range all {
		if r.EmojiID != target.EmojiID {
			list = append(list, tgReaction(r.EmojiID))
		}
	}
	dbMsg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, msg.Portal.Receiver, target.MessageID)
	if err != nil {
		return fmt.Errorf("failed to get the reaction's message: %w", err)
	}
	return c.sendReactions(ctx, msg.Portal, dbMsg, list, "")
}

func (c *Client) sendReactions(ctx context.Context, portal *bridgev2.Portal, target *database.Message, list []tg.ReactionClass, key string) error {
	inputPeer, out, err := c.prepareOutbound(ctx, remote.OutboundReaction, portal, target)
	if err != nil {
		var st bridgev2.MessageStatus
		if errors.As(err, &st) {
			return err
		}
		return remote.MessageStatus(err)
	}
	id, err := c.ownTarget(ctx, target)
	if err != nil {
		return errCannotSend(err)
	}
	req := &tg.MessagesSendReactionRequest{Peer: inputPeer, MsgID: id}
	req.SetReaction(list)
	// The answer is not fed to the updates manager: reactions carry no
	// pts, and their echo would race the reaction being saved.
	_, err = callWhenConnected(ctx, c, "Reacting on Telegram", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		return api.MessagesSendReaction(ctx, req)
	})
	switch {
	case tgerr.Is(err, tgErrReactionBad):
		return failStatus(fmt.Errorf("%q is not a reaction that Telegram accepts", key), event.MessageStatusUnsupported)
	case tgerr.Is(err, tgErrReactionsLimit):
		return failStatus(errors.New("this account cannot put more reactions on this Telegram message"), event.MessageStatusUnsupported)
	case err != nil:
		return bridgev2.WrapErrorInStatus(fmt.Errorf("failed to react on Telegram: %w", err)).WithErrorAsMessage().WithSendNotice(true)
	}
	c.main.Sent(ctx, out)
	return nil
}

// HandleMatrixReadReceipt marks the chat read on Telegram up to the message
// the staff member read (messages.readHistory).
func (c *Client) HandleMatrixReadReceipt(ctx context.Context, msg *bridgev2.MatrixReadReceipt) error {
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return nil
	}
	target := msg.ExactMessage
	if target == nil && !msg.ReadUpTo.IsZero() {
		target, err = c.main.Bridge.DB.Message.GetLastPartAtOrBeforeTime(ctx, msg.Portal.PortalKey, msg.ReadUpTo)
		if err != nil {
			return fmt.Errorf("failed to find the message read: %w", err)
		}
	}
	maxID, err := c.ownTargetWait(ctx, target, false)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Read receipt for no Telegram message")
		return nil
	}
	out := c.outbound(remote.OutboundReadReceipt, msg.Portal, peer)
	out.TargetMessage = target.ID
	if !c.main.AllowsSignal(ctx, out) {
		return nil
	}
	inputPeer, err := c.inputPeer(ctx, peer)
	if err != nil {
		return err
	}
	api := c.api.Load()
	if api == nil {
		return ErrNotConnected
	}
	if ch, ok := inputPeer.(*tg.InputPeerChannel); ok {
		// Channels keep their own read state: channels.readHistory.
		_, err = api.ChannelsReadHistory(ctx, &tg.ChannelsReadHistoryRequest{
			Channel: &tg.InputChannel{ChannelID: ch.ChannelID, AccessHash: ch.AccessHash}, MaxID: maxID})
		if err != nil {
			return fmt.Errorf("failed to mark the group read on Telegram: %w", err)
		}
		c.main.Sent(ctx, out)
		return nil
	}
	resp, err := api.MessagesReadHistory(ctx, &tg.MessagesReadHistoryRequest{Peer: inputPeer, MaxID: maxID})
	if err != nil {
		return fmt.Errorf("failed to mark the chat read on Telegram: %w", err)
	}
	c.feedAffected(resp)
	c.main.Sent(ctx, out)
	return nil
}

// HandleMatrixTyping tells the contact that the staff member is typing, or
// stopped (messages.setTyping).
func (c *Client) HandleMatrixTyping(ctx context.Context, msg *bridgev2.MatrixTyping) error {
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return nil
	}
	out := c.outbound(remote.OutboundTyping, msg.Portal, peer)
	if !c.main.AllowsSignal(ctx, out) {
		return nil
	}
	inputPeer, err := c.inputPeer(ctx, peer)
	if err != nil {
		return err
	}
	var action tg.SendMessageActionClass = &tg.SendMessageCancelAction{}
	if msg.IsTyping {
		switch msg.Type {
		case bridgev2.TypingTypeRecordingMedia:
			action = &tg.SendMessageRecordAudioAction{}
		case bridgev2.TypingTypeUploadingMedia:
			action = &tg.SendMessageUploadDocumentAction{}
		default:
			action = &tg.SendMessageTypingAction{}
		}
	}
	api := c.api.Load()
	if api == nil {
		return ErrNotConnected
	}
	if _, err := api.MessagesSetTyping(ctx, &tg.MessagesSetTypingRequest{Peer: inputPeer, Action: action}); err != nil {
		return fmt.Errorf("failed to send typing to Telegram: %w", err)
	}
	c.main.Sent(ctx, out)
	return nil
}

// presenceRefresh is how often a connected login tells Telegram again that
// the staff member is online: Telegram shows an account offline a few
// minutes after its last account.updateStatus.
const presenceRefresh = 4 * time.Minute

// announcePresence shows the staff member online on Telegram while the
// connection lasts (when the organisation lets presence out); Telegram
// shows them offline a few minutes after it ends.
func (c *Client) announcePresence(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Any("panic", p).Msg("Panic while announcing presence")
		}
	}()
	clk := clock.Or(c.main.Clock)
	for {
		if err := c.SetStaffPresence(ctx, true); err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to show the staff member online on Telegram")
		}
		select {
		case <-ctx.Done():
			return
		case <-clk.After(presenceRefresh):
		}
	}
}

// SetStaffPresence tells Telegram that the staff member is online or not
// (account.updateStatus), when the outbound check lets presence out.
func (c *Client) SetStaffPresence(ctx context.Context, online bool) error {
	out := remote.Outbound{Kind: remote.OutboundPresence, Login: c.login}
	if !c.main.AllowsSignal(ctx, out) {
		return nil
	}
	api := c.api.Load()
	if api == nil {
		return ErrNotConnected
	}
	if _, err := api.AccountUpdateStatus(ctx, !online); err != nil {
		return fmt.Errorf("failed to update status on Telegram: %w", err)
	}
	c.main.Sent(ctx, out)
	return nil
}
