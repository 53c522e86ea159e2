package telegram

import (
	"context"
	"errors"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/clock"
)

// The conversation in basic groups, both ways. A bridged message has the ID
// of the login that bridged it (telegram.u<login>.<id>); every other member
// account has its own ID for it (basicstore.go). Matrix → Telegram goes
// through the sender's own login, with that login's own ID of the target;
// Telegram → Matrix maps the receiving login's ID to the bridged one.

// errNoOwnCopy: the staff member's account has no copy of the message
// (it joined the group after it, or the message is too old).
var errNoOwnCopy = errors.New("your Telegram account has no copy of this message in the group")

// errOldGroupHistory: the message is in the basic group that became the
// portal's supergroup.
var errOldGroupHistory = errors.New("this message is in the group's history from before it became a supergroup, which Telegram no longer changes")

// ownTarget is this account's own Telegram ID of a bridged message.
func (c *Client) ownTarget(ctx context.Context, msg *database.Message) (int, error) {
	return c.ownTargetWait(ctx, msg, true)
}

// ownTargetWait is ownTarget; with wait, a copy on its way is waited for
// (a read receipt does not wait: a later one will do).
func (c *Client) ownTargetWait(ctx context.Context, msg *database.Message, wait bool) (int, error) {
	id, err := targetOf(msg)
	if err != nil {
		return 0, err
	}
	key, _ := tgid.ParseMessageID(msg.ID)
	if room, err := tgid.ParsePortalID(msg.Room.ID); err == nil && room.Type == tgid.PeerChannel && key.Box.Type != tgid.PeerChannel {
		// A message of a basic group that became this supergroup: it
		// stays in the old group, which takes no changes any more.
		return 0, failStatus(errOldGroupHistory, event.MessageStatusUnsupported)
	}
	if key.Box.Type != tgid.PeerUser || key.Box.ID == c.userID {
		return id, nil
	}
	// A basic-group message bridged through another member's login. This
	// account's copy may still be on its way (a staff member answers a
	// message another staff member just sent from Matrix): it is waited
	// for, a while.
	deadline := clock.Or(c.main.Clock).After(basicCopyWait)
	for {
		changed := c.main.basicCopied()
		own, err := c.main.Store.BasicOwnID(ctx, msg.ID, c.userID)
		if err != nil {
			return 0, err
		} else if own != 0 {
			return own, nil
		} else if !wait {
			return 0, errNoOwnCopy
		}
		select {
		case <-changed:
		case <-deadline:
			return 0, errNoOwnCopy
		case <-ctx.Done():
			return 0, errNoOwnCopy
		}
	}
}

// basicCopyWait bounds how long a Matrix event about a basic-group message
// waits for the sender's account to receive its copy of that message.
const basicCopyWait = 5 * time.Second

// basicCopied returns a channel closed at the next copy recorded.
func (c *TelegramConnector) basicCopied() <-chan struct{} {
	c.basicMu.Lock()
	defer c.basicMu.Unlock()
	if c.basicCopyCh == nil {
		c.basicCopyCh = make(chan struct{})
	}
	return c.basicCopyCh
}

// notifyBasicCopied wakes the events waiting for a copy.
func (c *TelegramConnector) notifyBasicCopied() {
	c.basicMu.Lock()
	defer c.basicMu.Unlock()
	if c.basicCopyCh != nil {
		close(c.basicCopyCh)
		c.basicCopyCh = nil
	}
}

// ownInputReplyTo is the reply_to of a Matrix message answering replyTo,
// naming this account's own ID of it; false when there is none it can name.
func (c *Client) ownInputReplyTo(ctx context.Context, replyTo *database.Message) (*tg.InputReplyToMessage, bool) {
	if replyTo == nil {
		return nil, false
	}
	r, ok := inputReplyTo(replyTo)
	if !ok {
		return nil, false
	}
	id, err := c.ownTarget(ctx, replyTo)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Sending a reply without its target")
		return nil, false
	}
	r.ReplyToMsgID = id
	return r, true
}

// recordBasicSentResponse records a message sent to a basic group from the
// RPC answer that carries it.
func (c *Client) recordBasicSentResponse(ctx context.Context, chatID int64, resp tg.UpdatesClass, msgID, date int, text string) {
	if u, ok := resp.(*tg.Updates); ok {
		for _, upd := range u.Updates {
			if nm, ok := upd.(*tg.UpdateNewMessage); ok {
				if m, ok := nm.Message.(*tg.Message); ok && m.ID == msgID {
					date, text = m.Date, m.Message
				}
			}
		}
	}
	c.recordBasicSent(ctx, chatID, msgID, date, text)
}

// handleBasicDelete bridges the deletion of message id of this account's
// box when it is a basic-group message; false when it is not one.
func (c *Client) handleBasicDelete(ctx context.Context, id int) bool {
	canonical, chatID, ok := c.basicCanonical(ctx, id)
	if !ok {
		return false
	}
	c.main.basicMu.Lock()
	_, fromMatrix := c.main.basicDeleted.Get(canonical)
	c.main.basicMu.Unlock()
	if fromMatrix {
		zerolog.Ctx(ctx).Debug().Int("tg_message_id", id).Msg("Ignoring the echo of a deletion sent from Matrix")
		return true
	}
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, "", canonical)
	if err != nil || msg == nil {
		// Not bridged, or another login's copy of the deletion came first.
		return true
	}
	var sender bridgev2.EventSender
	if from, err := tgid.ParseUserID(msg.SenderID); err == nil {
		sender = c.memberSender(from)
	}
	peer := tgid.Peer{Type: tgid.PeerChat, ID: chatID}
	evt := c.removeEvent(peer, canonical, sender, time.Now())
	evt.PortalKey = c.basicPortalKey(ctx, chatID)
	evt.description.chat = c.basicChat(chatID)
	c.deliverSignal(ctx, evt, "delete_messages")
	return true
}

// markBasicDeleted notes a basic-group message deleted from Matrix: the
// other logins' copies of the deletion are not bridged back.
func (c *Client) markBasicDeleted(id networkid.MessageID) {
	c.main.basicMu.Lock()
	c.main.basicDeleted.Put(id, true)
	c.main.basicMu.Unlock()
}

// handleBasicReactions bridges the reactions of a basic-group message. A
// staff member logged in here has their reactions bridged by their own
// login; every login bridges the others' (bridgev2 drops a reaction it
// already has).
func (c *Client) handleBasicReactions(ctx context.Context, chatID int64, u *tg.UpdateMessageReactions) {
	log := zerolog.Ctx(ctx)
	target, _, ok := c.basicCanonical(ctx, u.MsgID)
	if !ok {
		log.Debug().Int("tg_message_id", u.MsgID).Msg("Reactions to a basic group message that is not bridged")
		return
	}
	peer := tgid.Peer{Type: tgid.PeerChat, ID: chatID}
	mine := func(user string) bool {
		id, err := tgid.ParseUserID(networkid.UserID(user))
		return err == nil && !c.liveStaff(id)
	}
	existing, err := c.main.Bridge.DB.Reaction.GetAllToMessage(ctx, "", target)
	if err != nil {
		log.Err(err).Msg("Failed to get bridged reactions")
		return
	}
	type key struct{ user, emoji string }
	had := map[key]bool{}
	for _, r := range existing {
		had[key{string(r.SenderID), string(r.EmojiID)}] = true
	}
	now := time.Now()
	want := map[key]bool{}
	chat := c.basicChat(chatID)
	for _, r := range c.reactionList(ctx, peer, u.Reactions) {
		if r.EmojiID == "" || !mine(r.User) {
			continue
		}
		k := key{r.User, r.EmojiID}
		want[k] = true
		if !had[k] {
			evt := c.reactionEvent(peer, target, r, false, now)
			evt.PortalKey = c.basicPortalKey(ctx, chatID)
			evt.description.chat = chat
			c.deliverSignal(ctx, evt, "message_reactions")
		}
	}
	for _, r := range existing {
		if want[key{string(r.SenderID), string(r.EmojiID)}] || !mine(string(r.SenderID)) {
			continue
		}
		hr := heldReaction{User: string(r.SenderID), FromMe: r.SenderID == tgid.MakeUserID(c.userID), EmojiID: string(r.EmojiID), Emoji: r.Emoji}
		evt := c.reactionEvent(peer, target, hr, true, now)
		evt.PortalKey = c.basicPortalKey(ctx, chatID)
		evt.description.chat = chat
		c.deliverSignal(ctx, evt, "message_reactions")
	}
}

// handleChatUserTyping: a member types in a basic group. Staff members
// logged in here type in Matrix: their typing is not bridged back.
func (c *Client) handleChatUserTyping(ctx context.Context, u *tg.UpdateChatUserTyping) {
	from, ok := u.FromID.(*tg.PeerUser)
	if !ok || from.UserID == c.userID || c.liveStaff(from.UserID) {
		return
	}
	c.handleTyping(ctx, tgid.Peer{Type: tgid.PeerChat, ID: u.ChatID}, from.UserID, u.Action)
}

// handleBasicReadInbox: the staff member read a basic group on another
// device, up to maxID of their box; their Matrix account reads it too.
// (Telegram does not say who read the account's own messages in a group.)
func (c *Client) handleBasicReadInbox(ctx context.Context, chatID int64, maxID int) {
	target, _, ok := c.basicCanonical(ctx, maxID)
	if !ok {
		return
	}
	sender := c.userSender(c.userID)
	evt := &receiptEvent{
		Receipt: &simplevent.Receipt{
			EventMeta: simplevent.EventMeta{
				Type:      bridgev2.RemoteEventReadReceipt,
				PortalKey: c.basicPortalKey(ctx, chatID),
				Sender:    sender,
				Timestamp: time.Now(),
			},
			LastTarget: target,
		},
		description: description{chat: c.basicChat(chatID)},
	}
	c.deliverSignal(ctx, evt, "read_history")
}
