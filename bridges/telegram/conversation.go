package telegram

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"go.mau.fi/util/variationselector"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Telegram → Matrix: deletions, reactions, read history, typing and
// presence of private chats.

var (
	_ bridgev2.RemoteMessageRemove  = (*removeEvent)(nil)
	_ remote.Holdable               = (*removeEvent)(nil)
	_ remote.Described              = (*removeEvent)(nil)
	_ bridgev2.RemoteReaction       = (*reactionEvent)(nil)
	_ bridgev2.RemoteReactionRemove = (*reactionEvent)(nil)
	_ remote.Holdable               = (*reactionEvent)(nil)
	_ remote.Described              = (*reactionEvent)(nil)
	_ bridgev2.RemoteReadReceipt    = (*receiptEvent)(nil)
	_ remote.Described              = (*receiptEvent)(nil)
	_ bridgev2.RemoteTyping         = (*typingEvent)(nil)
	_ remote.Described              = (*typingEvent)(nil)
)

// description is what the connector knew of an event's chat and sender.
type description struct {
	chat   remote.Chat
	sender remote.Identity
}

// RemoteChat implements remote.Described.
func (d description) RemoteChat() remote.Chat { return d.chat }

// RemoteSender implements remote.Described.
func (d description) RemoteSender() remote.Identity { return d.sender }

// describe is the description of an event of peer by sender.
func (c *Client) describe(peer tgid.Peer, sender bridgev2.EventSender) description {
	d := description{chat: chatOf(peer)}
	if !sender.IsFromMe {
		if id, err := tgid.ParseUserID(sender.Sender); err == nil {
			d.sender = c.cachedIdentity(id)
		}
	}
	return d
}

func (c *Client) userSender(userID int64) bridgev2.EventSender {
	if userID == c.userID {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: tgid.MakeUserID(c.userID)}
	}
	return bridgev2.EventSender{Sender: tgid.MakeUserID(userID)}
}

// deliverSignal hands an event to the gate and logs a failure; signals and
// deletions are not fetched again.
func (c *Client) deliverSignal(ctx context.Context, evt bridgev2.RemoteEvent, what string) {
	res := c.deliver(ctx, evt)
	if !res.Success && !res.Ignored && res.Error != nil {
		zerolog.Ctx(ctx).Warn().Err(res.Error).Str("event", what).Msg("Failed to bridge Telegram event")
	}
}

// deliveredMessage is what a deletion or a reaction needs of a message the
// gate took: its chat and its sender.
type deliveredMessage struct {
	peer   tgid.Peer
	sender bridgev2.EventSender
}

func (c *Client) deliveredMessage(id networkid.MessageID) (deliveredMessage, bool) {
	c.pendingLock.Lock()
	defer c.pendingLock.Unlock()
	return c.delivered.Get(id)
}

// removeEvent is a message deleted on Telegram.
type removeEvent struct {
	*simplevent.MessageRemove
	description
}

// HoldPayload implements remote.Holdable.
func (e *removeEvent) HoldPayload() ([]byte, error) {
	return heldEventPayload(heldPayload{
		Kind: heldKindRemove, Portal: string(e.PortalKey.ID), Target: string(e.TargetMessage),
		Sender: string(e.Sender.Sender), FromMe: e.Sender.IsFromMe, TS: e.Timestamp.UnixMilli(),
	})
}

// handleDeleteMessages redacts, on Matrix, every message of the list that
// was bridged. box is the message box the IDs are in: the account's own
// for private chats and basic groups (Telegram names only the IDs), the
// channel's for channel deletes; the chat comes from the bridged message.
func (c *Client) handleDeleteMessages(ctx context.Context, box tgid.Peer, ids []int) {
	log := zerolog.Ctx(ctx)
	for _, id := range ids {
		if box.Type == tgid.PeerUser && c.handleBasicDelete(ctx, id) {
			continue
		}
		msgID := tgid.MakeMessageID(tgid.MessageKey{Box: box, ID: id})
		msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.receiverOf(box), msgID)
		if err != nil {
			log.Err(err).Int("tg_message_id", id).Msg("Failed to look up deleted message")
			continue
		}
		var peer tgid.Peer
		var sender bridgev2.EventSender
		if msg != nil && c.expiryKept(msg) {
			log.Debug().Int("tg_message_id", id).Msg("Keeping a self-destructed message: the organisation keeps disappearing messages")
			continue
		}
		if msg != nil {
			if peer, err = tgid.ParsePortalID(msg.Room.ID); err != nil {
				continue
			}
			if from, err := tgid.ParseUserID(msg.SenderID); err == nil {
				sender = c.userSender(from)
			}
		} else if d, ok := c.deliveredMessage(msgID); ok {
			// Held while its chat waits for approval: the deletion is
			// held after it.
			peer, sender = d.peer, d.sender
		} else {
			log.Debug().Int("tg_message_id", id).Msg("Ignoring deletion of a message that was not bridged")
			continue
		}
		c.deliverSignal(ctx, c.removeEvent(peer, msgID, sender, time.Now()), "delete_messages")
	}
}

func (c *Client) removeEvent(peer tgid.Peer, target networkid.MessageID, sender bridgev2.EventSender, ts time.Time) *removeEvent {
	return &removeEvent{
		MessageRemove: &simplevent.MessageRemove{
			EventMeta: simplevent.EventMeta{
				Type:      bridgev2.RemoteEventMessageRemove,
				PortalKey: tgid.MakePortalKey(peer, c.login.ID),
				Sender:    sender,
				Timestamp: ts,
				LogContext: func(lc zerolog.Context) zerolog.Context {
					return lc.Str("target_message", string(target))
				},
			},
			TargetMessage: target,
		},
		description: c.describe(peer, sender),
	}
}

// customEmojiExtraKey is the key of a reaction's extra content that carries
// the Telegram custom emoji it stands for.
const customEmojiExtraKey = "net.passerelle.telegram.custom_emoji_id"

// customEmojiPrefix starts the emoji ID of a custom emoji reaction.
const customEmojiPrefix = "custom:"

// reactionEvent is one reaction added or removed on Telegram.
type reactionEvent struct {
	*simplevent.Reaction
	description
}

// HoldPayload implements remote.Holdable: the reaction as converted, so
// that a held one needs no lookup again.
func (e *reactionEvent) HoldPayload() ([]byte, error) {
	kind := heldKindReaction
	if e.Type == bridgev2.RemoteEventReactionRemove {
		kind = heldKindReactionRemove
	}
	hr := heldReaction{User: string(e.Sender.Sender), FromMe: e.Sender.IsFromMe, EmojiID: string(e.EmojiID), Emoji: e.Emoji}
	if id, ok := e.ExtraContent[customEmojiExtraKey].(string); ok {
		hr.CustomEmoji = id
	}
	return heldEventPayload(heldPayload{
		Kind: kind, Portal: string(e.PortalKey.ID), Target: string(e.TargetMessage),
		Sender: string(e.Sender.Sender), FromMe: e.Sender.IsFromMe, TS: e.Timestamp.UnixMilli(),
		Reactions: []heldReaction{hr},
	})
}

// reactionEvent builds the event of a reaction added (remove false) or
// removed by r.User.
func (c *Client) reactionEvent(peer tgid.Peer, target networkid.MessageID, r heldReaction, remove bool, ts time.Time) *reactionEvent {
	sender := bridgev2.EventSender{Sender: networkid.UserID(r.User)}
	if r.FromMe {
		sender = c.userSender(c.userID)
	}
	evt := &simplevent.Reaction{
		EventMeta: simplevent.EventMeta{
			Type:      bridgev2.RemoteEventReaction,
			PortalKey: tgid.MakePortalKey(peer, c.login.ID),
			Sender:    sender,
			Timestamp: ts,
			LogContext: func(lc zerolog.Context) zerolog.Context {
				return lc.Str("target_message", string(target))
			},
		},
		TargetMessage: target,
		EmojiID:       networkid.EmojiID(r.EmojiID),
		Emoji:         r.Emoji,
	}
	if remove {
		evt.Type = bridgev2.RemoteEventReactionRemove
	}
	if r.CustomEmoji != "" {
		evt.ExtraContent = map[string]any{customEmojiExtraKey: r.CustomEmoji}
	}
	return &reactionEvent{Reaction: evt, description: c.describe(peer, sender)}
}

// handleMessageReactions bridges the reactions of a private message:
// Telegram tells the full list (who reacted with what, in a private chat);
// what changed since the bridged ones goes as reactions added and removed,
// which the gateway's gate holds and counts like the other activity.
func (c *Client) handleMessageReactions(ctx context.Context, u *tg.UpdateMessageReactions) {
	log := zerolog.Ctx(ctx)
	var peer tgid.Peer
	switch p := u.Peer.(type) {
	case *tg.PeerUser:
		peer = tgid.Peer{Type: tgid.PeerUser, ID: p.UserID}
	case *tg.PeerChannel:
		peer = tgid.Peer{Type: tgid.PeerChannel, ID: p.ChannelID}
	case *tg.PeerChat:
		c.handleBasicReactions(ctx, p.ChatID, u)
		return
	default:
		return
	}
	target := c.messageID(peer, u.MsgID)
	c.pendingLock.Lock()
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.receiverOf(peer), target)
	if err == nil && msg == nil {
		if _, held := c.delivered.Get(target); held {
			// The gate holds the message (its chat waits for approval):
			// the reactions are held after it.
			c.pendingLock.Unlock()
			c.bridgeReactions(ctx, peer, target, u)
			return
		}
		// Reactions carry no pts: they can overtake the message they are
		// on. They wait (a while, bounded) for it to be bridged.
		c.pendingReactions.Put(target, u)
	}
	c.pendingLock.Unlock()
	if err != nil {
		log.Err(err).Msg("Failed to look up the target of reactions")
		return
	} else if msg == nil {
		log.Debug().Int("tg_message_id", u.MsgID).Msg("Reactions to a message that is not bridged (yet)")
		return
	}
	c.bridgeReactions(ctx, peer, target, u)
}

// reactionsAfterMessage bridges the reactions that arrived before their
// message, once it is bridged.
func (c *Client) reactionsAfterMessage(ctx context.Context, peer tgid.Peer, id networkid.MessageID) {
	c.pendingLock.Lock()
	u, ok := c.pendingReactions.Get(id)
	if ok {
		c.pendingReactions.Remove(id)
	}
	c.pendingLock.Unlock()
	if ok {
		c.bridgeReactions(ctx, peer, id, u)
	}
}

// bridgeReactions compares the reactions Telegram lists with the bridged
// ones and bridges each one added or removed, as its reactor's.
func (c *Client) bridgeReactions(ctx context.Context, peer tgid.Peer, target networkid.MessageID, u *tg.UpdateMessageReactions) {
	existing, err := c.main.Bridge.DB.Reaction.GetAllToMessage(ctx, c.receiverOf(peer), target)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to get bridged reactions")
		return
	}
	type key struct{ user, emoji string }
	had := map[key]bool{}
	for _, r := range existing {
		had[key{string(r.SenderID), string(r.EmojiID)}] = true
	}
	now := time.Now()
	want := map[key]bool{}
	for _, r := range c.reactionList(ctx, peer, u.Reactions) {
		if r.EmojiID == "" {
			continue
		}
		k := key{r.User, r.EmojiID}
		want[k] = true
		if !had[k] {
			c.deliverSignal(ctx, c.reactionEvent(peer, target, r, false, now), "message_reactions")
		}
	}
	for _, r := range existing {
		if want[key{string(r.SenderID), string(r.EmojiID)}] {
			continue
		}
		hr := heldReaction{User: string(r.SenderID), FromMe: r.SenderID == tgid.MakeUserID(c.userID), EmojiID: string(r.EmojiID), Emoji: r.Emoji}
		c.deliverSignal(ctx, c.reactionEvent(peer, target, hr, true, now), "message_reactions")
	}
}

// reactionList converts Telegram's reactions of a private message: the
// list of who reacted when Telegram gives it, else the counts, the
// account's own (chosen) ones being its and the rest the contact's.
func (c *Client) reactionList(ctx context.Context, peer tgid.Peer, mr tg.MessageReactions) []heldReaction {
	var list []heldReaction
	add := func(userID int64, r tg.ReactionClass) {
		emojiID, emoji, custom, ok := c.convertReaction(ctx, r)
		if !ok {
			return
		}
		list = append(list, heldReaction{User: string(tgid.MakeUserID(userID)), FromMe: userID == c.userID,
			EmojiID: emojiID, Emoji: emoji, CustomEmoji: custom})
	}
	if len(mr.RecentReactions) > 0 {
		for _, r := range mr.RecentReactions {
			from := peer.ID
			if pu, ok := r.PeerID.(*tg.PeerUser); ok {
				from = pu.UserID
			}
			if r.My {
				from = c.userID
			}
			add(from, r.Reaction)
		}
		return list
	}
	for _, rc := range mr.Results {
		n := rc.Count
		if _, chosen := rc.GetChosenOrder(); chosen {
			add(c.userID, rc.Reaction)
			n--
		}
		if n > 0 {
			add(peer.ID, rc.Reaction)
		}
	}
	return list
}

// convertReaction is a Telegram reaction as a Matrix one: the emoji with
// its variation selector, or a custom emoji's fallback emoji (its ID in
// the extra content).
func (c *Client) convertReaction(ctx context.Context, r tg.ReactionClass) (emojiID, emoji, custom string, ok bool) {
	switch v := r.(type) {
	case *tg.ReactionEmoji:
		return v.Emoticon, variationselector.Add(v.Emoticon), "", true
	case *tg.ReactionCustomEmoji:
		id := strconv.FormatInt(v.DocumentID, 10)
		return customEmojiPrefix + id, c.customEmojiFallback(ctx, v.DocumentID), id, true
	}
	return "", "", "", false
}

// unknownCustomEmoji stands for a custom emoji whose fallback is unknown.
const unknownCustomEmoji = "❓"

// customEmojiFallback is the emoji a custom emoji stands for, from
// messages.getCustomEmojiDocuments (cached).
func (c *Client) customEmojiFallback(ctx context.Context, docID int64) string {
	if alt, ok := c.customEmoji.Get(docID); ok {
		return alt
	}
	api := c.api.Load()
	if api == nil {
		return unknownCustomEmoji
	}
	docs, err := api.MessagesGetCustomEmojiDocuments(ctx, []int64{docID})
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int64("document_id", docID).Msg("Failed to get custom emoji")
		return unknownCustomEmoji
	}
	for _, d := range docs {
		doc, ok := d.(*tg.Document)
		if !ok || doc.ID != docID {
			continue
		}
		for _, a := range doc.Attributes {
			if ce, ok := a.(*tg.DocumentAttributeCustomEmoji); ok && ce.Alt != "" {
				alt := variationselector.Add(ce.Alt)
				c.customEmoji.Put(docID, alt)
				return alt
			}
		}
	}
	return unknownCustomEmoji
}

// receiptEvent is a read receipt of a private chat.
type receiptEvent struct {
	*simplevent.Receipt
	description
}

// handleReadHistory bridges how far a private chat was read: by the
// contact (outbox) or by the account on another device (inbox).
func (c *Client) handleReadHistory(ctx context.Context, peerClass tg.PeerClass, maxID int, outbox bool) {
	if chat, ok := peerClass.(*tg.PeerChat); ok {
		if !outbox {
			c.handleBasicReadInbox(ctx, chat.ChatID, maxID)
		}
		return
	}
	p, ok := peerClass.(*tg.PeerUser)
	if !ok {
		return
	}
	peer := tgid.Peer{Type: tgid.PeerUser, ID: p.UserID}
	sender := c.userSender(c.userID)
	if outbox {
		sender = c.userSender(peer.ID)
	}
	evt := &receiptEvent{
		Receipt: &simplevent.Receipt{
			EventMeta: simplevent.EventMeta{
				Type:      bridgev2.RemoteEventReadReceipt,
				PortalKey: tgid.MakePortalKey(peer, c.login.ID),
				Sender:    sender,
				Timestamp: time.Now(),
			},
			LastTarget: c.messageID(peer, maxID),
		},
		description: c.describe(peer, sender),
	}
	c.deliverSignal(ctx, evt, "read_history")
}

// typingEvent is a contact typing in a private chat.
type typingEvent struct {
	*simplevent.Typing
	description
}

// typingTimeout is how long a typing notification lasts (Telegram's
// clients repeat it every 5 seconds while typing).
const typingTimeout = 6 * time.Second

func (c *Client) handleUserTyping(ctx context.Context, u *tg.UpdateUserTyping) {
	c.handleTyping(ctx, tgid.Peer{Type: tgid.PeerUser, ID: u.UserID}, u.UserID, u.Action)
}

// handleChannelUserTyping: a member types in a supergroup.
func (c *Client) handleChannelUserTyping(ctx context.Context, u *tg.UpdateChannelUserTyping) {
	from, ok := u.FromID.(*tg.PeerUser)
	if !ok || from.UserID == c.userID {
		return
	}
	c.handleTyping(ctx, tgid.Peer{Type: tgid.PeerChannel, ID: u.ChannelID}, from.UserID, u.Action)
}

func (c *Client) handleTyping(ctx context.Context, peer tgid.Peer, userID int64, action tg.SendMessageActionClass) {
	timeout := typingTimeout
	typ := bridgev2.TypingTypeText
	switch action.(type) {
	case *tg.SendMessageCancelAction:
		timeout = 0
	case *tg.SendMessageRecordAudioAction, *tg.SendMessageRecordRoundAction:
		typ = bridgev2.TypingTypeRecordingMedia
	case *tg.SendMessageUploadPhotoAction, *tg.SendMessageUploadVideoAction, *tg.SendMessageUploadAudioAction,
		*tg.SendMessageUploadDocumentAction, *tg.SendMessageUploadRoundAction:
		typ = bridgev2.TypingTypeUploadingMedia
	case *tg.SendMessageTypingAction:
	default:
		return // game, location, emoji interactions...: nothing to show
	}
	sender := c.userSender(userID)
	desc := c.describe(peer, sender)
	switch peer.Type {
	case tgid.PeerChannel:
		sender = c.memberSender(userID)
		desc.chat = c.channelChat(peer.ID)
	case tgid.PeerChat:
		sender = c.memberSender(userID)
		desc.chat = c.basicChat(peer.ID)
	}
	evt := &typingEvent{
		Typing: &simplevent.Typing{
			EventMeta: simplevent.EventMeta{
				Type:      bridgev2.RemoteEventTyping,
				PortalKey: tgid.MakePortalKey(peer, c.login.ID),
				Sender:    sender,
				Timestamp: time.Now(),
			},
			Timeout: timeout,
			Type:    typ,
		},
		description: desc,
	}
	c.deliverSignal(ctx, evt, "user_typing")
}

// handleUserStatus reports a contact's presence to its ghost.
func (c *Client) handleUserStatus(ctx context.Context, u *tg.UpdateUserStatus) {
	if u.UserID == c.userID {
		return
	}
	p := remote.Presence{User: tgid.MakeUserID(u.UserID)}
	switch st := u.Status.(type) {
	case *tg.UserStatusOnline:
		p.Online = true
	case *tg.UserStatusOffline:
		p.LastSeen = time.Unix(int64(st.WasOnline), 0)
	case *tg.UserStatusRecently, *tg.UserStatusLastWeek, *tg.UserStatusLastMonth, *tg.UserStatusEmpty:
	default:
		return
	}
	c.main.Presence(ctx, c.login, p)
}

// quoteText is the text a reply shows of the message it answers when that
// message was never bridged: Telegram's quote of it, if any.
func quoteText(reply *tg.MessageReplyHeader) string {
	if q, ok := reply.GetQuoteText(); ok {
		return strings.TrimSpace(q)
	}
	return ""
}
