package telegram

import (
	"context"
	"fmt"
	stdhtml "html"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgfmt"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

var (
	_ bridgev2.RemoteMessage = (*simplevent.Message[*tg.Message])(nil)
	_ bridgev2.RemoteEdit    = (*simplevent.Message[*tg.Message])(nil)
)

func (c *Client) registerHandlers(d *tg.UpdateDispatcher, lanes *remote.Lanes) {
	d.OnNewMessage(func(ctx context.Context, e tg.Entities, u *tg.UpdateNewMessage) error {
		c.rememberEntitiesSafely(ctx, e, "new_message")
		c.inChat(ctx, lanes, messageLaneKey(u.Message), "new_message", func(ctx context.Context) bool {
			return c.handleMessage(ctx, u.Message, false)
		})
		return nil
	})
	d.OnNewChannelMessage(func(ctx context.Context, e tg.Entities, u *tg.UpdateNewChannelMessage) error {
		defer c.recoverHandler(ctx, "new_channel_message")
		c.rememberEntities(ctx, e)
		c.handleMessage(ctx, u.Message, false)
		return nil
	})
	d.OnEditChannelMessage(func(ctx context.Context, e tg.Entities, u *tg.UpdateEditChannelMessage) error {
		defer c.recoverHandler(ctx, "edit_channel_message")
		c.rememberEntities(ctx, e)
		c.handleMessage(ctx, u.Message, true)
		return nil
	})
	d.OnChannel(func(ctx context.Context, e tg.Entities, u *tg.UpdateChannel) error {
		defer c.recoverHandler(ctx, "channel")
		c.rememberEntities(ctx, e)
		if !c.afterChats(ctx, lanes) {
			return nil
		}
		c.handleChannelUpdate(ctx, u.ChannelID)
		return nil
	})
	d.OnEditMessage(func(ctx context.Context, e tg.Entities, u *tg.UpdateEditMessage) error {
		c.rememberEntitiesSafely(ctx, e, "edit_message")
		c.inChat(ctx, lanes, messageLaneKey(u.Message), "edit_message", func(ctx context.Context) bool {
			return c.handleMessage(ctx, u.Message, true)
		})
		return nil
	})
	d.OnMessagePoll(func(ctx context.Context, e tg.Entities, u *tg.UpdateMessagePoll) error {
		c.rememberEntitiesSafely(ctx, e, "message_poll")
		// In the poll's chat's lane, after the poll itself: a vote no
		// longer waits for every other chat (only a private chat's votes
		// are bridged; an update without its chat is ignored at once).
		c.inChat(ctx, lanes, chatLaneKey(u.Peer), "message_poll", func(ctx context.Context) bool {
			c.handlePollUpdate(ctx, u)
			return true
		})
		return nil
	})
	d.OnDeleteMessages(func(ctx context.Context, e tg.Entities, u *tg.UpdateDeleteMessages) error {
		defer c.recoverHandler(ctx, "delete_messages")
		box := tgid.Peer{Type: tgid.PeerUser, ID: c.userID}
		if byChat, ok := c.deletionLanes(ctx, lanes, u.Messages); ok {
			for _, part := range byChat {
				c.inChat(ctx, lanes, part.key, "delete_messages", func(ctx context.Context) bool {
					c.handleDeleteMessages(ctx, box, part.ids)
					return true
				})
			}
			return nil
		}
		if !c.afterChats(ctx, lanes) {
			return nil
		}
		c.handleDeleteMessages(ctx, box, u.Messages)
		return nil
	})
	d.OnDeleteChannelMessages(func(ctx context.Context, e tg.Entities, u *tg.UpdateDeleteChannelMessages) error {
		defer c.recoverHandler(ctx, "delete_channel_messages")
		c.handleDeleteMessages(ctx, tgid.Peer{Type: tgid.PeerChannel, ID: u.ChannelID}, u.Messages)
		return nil
	})
	d.OnMessageReactions(func(ctx context.Context, e tg.Entities, u *tg.UpdateMessageReactions) error {
		c.rememberEntitiesSafely(ctx, e, "message_reactions")
		c.inChat(ctx, lanes, chatLaneKey(u.Peer), "message_reactions", func(ctx context.Context) bool {
			c.handleMessageReactions(ctx, u)
			return true
		})
		return nil
	})
	d.OnReadHistoryOutbox(func(ctx context.Context, e tg.Entities, u *tg.UpdateReadHistoryOutbox) error {
		c.inChat(ctx, lanes, chatLaneKey(u.Peer), "read_history_outbox", func(ctx context.Context) bool {
			c.handleReadHistory(ctx, u.Peer, u.MaxID, true)
			return true
		})
		return nil
	})
	d.OnReadHistoryInbox(func(ctx context.Context, e tg.Entities, u *tg.UpdateReadHistoryInbox) error {
		c.inChat(ctx, lanes, chatLaneKey(u.Peer), "read_history_inbox", func(ctx context.Context) bool {
			c.handleReadHistory(ctx, u.Peer, u.MaxID, false)
			return true
		})
		return nil
	})
	d.OnUserTyping(func(ctx context.Context, e tg.Entities, u *tg.UpdateUserTyping) error {
		c.inChat(ctx, lanes, chatLaneKey(&tg.PeerUser{UserID: u.UserID}), "user_typing", func(ctx context.Context) bool {
			c.handleUserTyping(ctx, u)
			return true
		})
		return nil
	})
	d.OnChannelUserTyping(func(ctx context.Context, e tg.Entities, u *tg.UpdateChannelUserTyping) error {
		defer c.recoverHandler(ctx, "channel_user_typing")
		c.rememberEntities(ctx, e)
		c.handleChannelUserTyping(ctx, u)
		return nil
	})
	d.OnChatUserTyping(func(ctx context.Context, e tg.Entities, u *tg.UpdateChatUserTyping) error {
		c.rememberEntitiesSafely(ctx, e, "chat_user_typing")
		c.inChat(ctx, lanes, chatLaneKey(&tg.PeerChat{ChatID: u.ChatID}), "chat_user_typing", func(ctx context.Context) bool {
			c.handleChatUserTyping(ctx, u)
			return true
		})
		return nil
	})
	d.OnUserStatus(func(ctx context.Context, e tg.Entities, u *tg.UpdateUserStatus) error {
		defer c.recoverHandler(ctx, "user_status")
		c.handleUserStatus(ctx, u)
		return nil
	})
	d.OnUser(func(ctx context.Context, e tg.Entities, u *tg.UpdateUser) error {
		defer c.recoverHandler(ctx, "user")
		c.rememberEntities(ctx, e)
		c.handleUserUpdate(ctx, e, u.UserID)
		return nil
	})
	d.OnUserName(func(ctx context.Context, e tg.Entities, u *tg.UpdateUserName) error {
		defer c.recoverHandler(ctx, "user_name")
		c.rememberEntities(ctx, e)
		if user, ok := c.users.get(u.UserID); ok {
			updated := *user
			updated.FirstName, updated.LastName = u.FirstName, u.LastName
			c.users.put(&updated)
			c.updateGhost(ctx, &updated)
		}
		return nil
	})
}

// recoverHandler turns a panic in an update handler into a logged failure:
// the account keeps running.
func (c *Client) recoverHandler(ctx context.Context, update string) {
	if p := recover(); p != nil {
		zerolog.Ctx(ctx).Error().Any("panic", p).Str("stack", string(debug.Stack())).Str("update", update).
			Msg("Panic in Telegram update handler")
	}
}

// rememberEntitiesSafely is rememberEntities for a handler that hands the
// rest to a lane: a panic is logged, not passed to gotd.
func (c *Client) rememberEntitiesSafely(ctx context.Context, e tg.Entities, update string) {
	defer c.recoverHandler(ctx, update)
	c.rememberEntities(ctx, e)
}

// rememberEntities caches users and records their access hashes and
// usernames, so that replies, mentions and start-chat can reach them.
func (c *Client) rememberEntities(ctx context.Context, e tg.Entities) {
	c.rememberChannels(ctx, e.Channels)
	c.rememberBasicChats(e.Chats)
	for _, u := range e.Users {
		if u.Min {
			continue
		}
		prev, _ := c.users.get(u.ID)
		c.users.put(u)
		c.noticeUserPhoto(ctx, prev, u)
		if u.AccessHash != 0 {
			if err := c.main.Store.PutUser(ctx, c.userID, u.ID, u.AccessHash, u.Username); err != nil {
				zerolog.Ctx(ctx).Err(err).Int64("tg_user_id", u.ID).Msg("Failed to store user access hash")
			}
		}
	}
}

// updateGhost updates the profile of a ghost that exists (a ghost is made
// only when a message of its user passed the governance gate), later, when
// no message is being handled (updateGhostLater).
func (c *Client) updateGhost(ctx context.Context, u *tg.User) {
	c.updateGhostLater(ctx, u.ID, func(ctx context.Context, ghost *bridgev2.Ghost) {
		ghost.UpdateInfo(ctx, c.userInfo(u))
	})
}

// updateGhostLater runs update on the ghost of a Telegram user, if it
// exists, as a writer of the connector's profile gate, off the caller's
// goroutine (remote.ProfileUpdates): bridgev2 reads the ghost of a
// message's sender without a lock while it handles the message.
func (c *Client) updateGhostLater(ctx context.Context, userID int64, update func(ctx context.Context, ghost *bridgev2.Ghost)) {
	id := tgid.MakeUserID(userID)
	c.main.ghostUpdates.Queue(ctx, string(id), func(ctx context.Context) {
		ghost, err := c.main.Bridge.GetExistingGhostByID(ctx, id)
		if err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to get ghost to update")
			return
		} else if ghost == nil {
			return
		}
		update(ctx, ghost)
	})
}

// messagePeer returns the chat a message belongs to: a private chat, a
// basic group, a supergroup or a channel.
func (c *Client) messagePeer(msg *tg.Message) (tgid.Peer, bool) {
	return peerOfClass(msg.PeerID)
}

func (c *Client) senderOf(msg *tg.Message, peer tgid.Peer) bridgev2.EventSender {
	if peer.Type == tgid.PeerChannel {
		return c.channelSender(msg.FromID, peer.ID)
	}
	if msg.Out {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: tgid.MakeUserID(c.userID)}
	}
	from := peer.ID
	if p, ok := msg.FromID.(*tg.PeerUser); ok {
		from = p.UserID
	}
	if from == c.userID {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: tgid.MakeUserID(c.userID)}
	}
	return bridgev2.EventSender{Sender: tgid.MakeUserID(from)}
}

func (c *Client) messageID(peer tgid.Peer, id int) networkid.MessageID {
	return tgid.MakeMessageID(tgid.MessageKey{Box: tgid.MessageBox(peer, c.userID), ID: id})
}

// handleMessage bridges a new or edited message; false when the connection
// ended before it could be bridged (the stored state stays before it).
func (c *Client) handleMessage(ctx context.Context, raw tg.MessageClass, edit bool) (done bool) {
	done = true
	log := zerolog.Ctx(ctx)
	if svc, ok := raw.(*tg.MessageService); ok && !edit {
		c.handleServiceMessage(ctx, svc)
		return
	}
	msg, ok := raw.(*tg.Message)
	if !ok {
		log.Debug().Type("message_type", raw).Msg("Ignoring non-message update")
		return
	}
	if p, ok := msg.PeerID.(*tg.PeerChannel); ok {
		c.ensureMembers(ctx, p.ChannelID)
		if from, ok := msg.FromID.(*tg.PeerUser); ok {
			c.rememberMembers(p.ChannelID, []int64{from.UserID})
		}
	}
	evt, ok := c.messageEvent(msg, edit)
	if !ok {
		log.Debug().Int("tg_message_id", msg.ID).Msg("Ignoring message outside private chats and groups")
		return
	}
	if p, ok := msg.PeerID.(*tg.PeerChat); ok {
		if edit {
			id, _, known := c.basicCanonical(ctx, msg.ID)
			if !known || c.liveStaff(basicSenderOf(msg)) {
				log.Debug().Int("tg_message_id", msg.ID).Msg("Ignoring an edit of a basic-group message another login bridges")
				return
			}
			evt.ID, evt.TargetMessage = id, id
		} else if c.leftFromMatrixChat(tgid.Peer{Type: tgid.PeerChat, ID: p.ChatID}) {
			log.Debug().Int("tg_message_id", msg.ID).Msg("Ignoring a message of a basic group this account left from Matrix")
			return
		} else if !c.claimBasicMessage(ctx, p.ChatID, msg, evt.ID) {
			log.Debug().Int("tg_message_id", msg.ID).Msg("Ignoring a basic-group message another login already bridged")
			c.markInBasicPortal(ctx, p.ChatID)
			return
		}
		evt.PortalKey = c.basicPortalKey(ctx, p.ChatID)
	}
	if edit {
		if msg.EditDate == 0 {
			log.Debug().Int("tg_message_id", msg.ID).Msg("Ignoring an edit update that edits nothing")
			return
		}
		if date, ok := c.sentEdits.Get(evt.ID); ok && date == msg.EditDate {
			log.Debug().Int("tg_message_id", msg.ID).Msg("Ignoring the echo of an edit sent from Matrix")
			return
		}
		if !c.firstGroupEdit(msg, evt.ID) {
			log.Debug().Int("tg_message_id", msg.ID).Msg("Ignoring a group edit another login already bridged")
			return
		}
	}
	if !edit {
		c.ensureTopicRoot(ctx, msg)
	}
	res := c.deliver(ctx, evt)
	if res.Success || res.Ignored {
		if !edit {
			if peer, ok := c.messagePeer(msg); ok {
				if res.Success {
					c.pendingLock.Lock()
					c.delivered.Put(evt.ID, deliveredMessage{peer: peer, sender: evt.Sender})
					c.pendingLock.Unlock()
				}
				c.reactionsAfterMessage(ctx, peer, evt.ID)
				if res.Success && peer.Type == tgid.PeerChannel {
					c.relayIfBot(ctx, evt.PortalKey)
				}
			}
		}
		return
	}
	if ctx.Err() != nil {
		// The connection ended before the message could be bridged: the
		// stored state stays before it, and the next connection gets it
		// again from Telegram.
		c.freezeState()
		log.Warn().Err(res.Error).Int("tg_message_id", msg.ID).Msg("Message not bridged before the connection ended; it will be fetched again")
		return false
	}
	log.Error().Err(res.Error).Int("tg_message_id", msg.ID).Msg("Failed to bridge message")
	return true
}

// messageEvent builds the remote event of a new or edited message; false for
// a message outside private chats.
func (c *Client) messageEvent(msg *tg.Message, edit bool) (*messageEvent, bool) {
	peer, ok := c.messagePeer(msg)
	if !ok {
		return nil, false
	}
	id := c.messageID(peer, msg.ID)
	evt := &simplevent.Message[*tg.Message]{
		EventMeta:          messageMeta(bridgev2.RemoteEventMessage, tgid.MakePortalKey(peer, c.login.ID), peer, c.senderOf(msg, peer), msg.ID, msg.Date).WithCreatePortal(true),
		Data:               msg,
		ID:                 id,
		ConvertMessageFunc: c.convertMessage,
	}
	if edit {
		evt.Type = bridgev2.RemoteEventEdit
		evt.TargetMessage = id
		evt.CreatePortal = false
		evt.ConvertEditFunc = c.convertEdit
		if msg.EditDate != 0 {
			evt.Timestamp = time.Unix(int64(msg.EditDate), 0)
		}
	}
	me := &messageEvent{Message: evt, client: c, edit: edit, chat: chatOf(peer)}
	switch peer.Type {
	case tgid.PeerChannel:
		me.chat = c.channelChat(peer.ID)
	case tgid.PeerChat:
		me.chat = c.basicChat(peer.ID)
	}
	if !evt.Sender.IsFromMe {
		if from, err := tgid.ParseUserID(evt.Sender.Sender); err == nil {
			me.sender = c.cachedIdentity(from)
		}
	}
	return me, true
}

func (c *Client) fmtDeps() tgfmt.Deps {
	return tgfmt.Deps{
		UserMXID:       c.userMXID,
		UsernameMXID:   c.usernameMXID,
		TelegramUserID: c.telegramUserID,
	}
}

func (c *Client) convertText(ctx context.Context, msg *tg.Message) *event.MessageEventContent {
	return tgfmt.ToMatrix(ctx, c.fmtDeps(), msg.Message, msg.Entities)
}

// hasMedia reports whether a message carries media to bridge (a link
// preview is not: its text carries the link).
func hasMedia(msg *tg.Message) bool {
	switch msg.Media.(type) {
	case nil, *tg.MessageMediaEmpty, *tg.MessageMediaWebPage:
		return false
	}
	return true
}

func (c *Client) convertMessage(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *tg.Message) (*bridgev2.ConvertedMessage, error) {
	cm := &bridgev2.ConvertedMessage{}
	if hasMedia(msg) {
		var caption *event.MessageEventContent
		if msg.Message != "" {
			caption = c.convertText(ctx, msg)
		}
		cm.Parts = c.convertMediaMessage(ctx, portal, intent, msg, caption)
	} else {
		cm.Parts = []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: c.convertText(ctx, msg)}}
	}
	signPost(cm.Parts, msg)
	if reply, ok := msg.ReplyTo.(*tg.MessageReplyHeader); ok && reply.ReplyToMsgID != 0 {
		if peer, err := tgid.ParsePortalID(portal.ID); err == nil {
			target := c.messageID(peer, reply.ReplyToMsgID)
			if _, basic := msg.PeerID.(*tg.PeerChat); basic {
				if id, _, ok := c.basicCanonical(ctx, reply.ReplyToMsgID); ok {
					target = id
				}
			}
			cm.ReplyTo = &networkid.MessageOptionalPartID{MessageID: target}
			if quote := quoteText(reply); quote != "" && !hasMedia(msg) {
				if known, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.receiverOf(peer), target); err == nil && known == nil {
					// The answered message was never bridged: show what
					// Telegram quotes of it.
					prependQuote(cm.Parts[0].Content, quote)
					cm.ReplyTo = nil
				}
			}
		}
	}
	if peer, err := tgid.ParsePortalID(portal.ID); err == nil {
		c.applyTopic(cm, peer, msg)
	}
	c.applyTTL(cm, msg)
	return cm, nil
}

func (c *Client) convertEdit(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, msg *tg.Message) (*bridgev2.ConvertedEdit, error) {
	if !hasMedia(msg) {
		part := &bridgev2.ConvertedMessagePart{Type: event.EventMessage, Content: c.convertText(ctx, msg)}
		return &bridgev2.ConvertedEdit{ModifiedParts: []*bridgev2.ConvertedEditPart{part.ToEditPart(existing[0])}}, nil
	}
	// A caption edit: the media message is converted again (the caption
	// goes with the file) and each part replaces the part of the same ID.
	var caption *event.MessageEventContent
	if msg.Message != "" {
		caption = c.convertText(ctx, msg)
	}
	edit := &bridgev2.ConvertedEdit{}
	for _, part := range c.convertMediaMessage(ctx, portal, intent, msg, caption) {
		for _, old := range existing {
			if old.PartID == part.ID {
				edit.ModifiedParts = append(edit.ModifiedParts, part.ToEditPart(old))
				break
			}
		}
	}
	if len(edit.ModifiedParts) == 0 {
		return nil, fmt.Errorf("%w: the edited media message has no part in common with the bridged one", bridgev2.ErrIgnoringRemoteEvent)
	}
	return edit, nil
}

// prependQuote puts a quote before a message's text, as a block quote.
func prependQuote(content *event.MessageEventContent, quote string) {
	if content == nil {
		return
	}
	lines := strings.Split(quote, "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	body := content.Body
	html := content.FormattedBody
	if content.Format != event.FormatHTML {
		html = strings.ReplaceAll(stdhtml.EscapeString(body), "\n", "<br/>")
	}
	content.Body = strings.Join(lines, "\n") + "\n\n" + body
	content.Format = event.FormatHTML
	content.FormattedBody = "<blockquote>" + strings.ReplaceAll(stdhtml.EscapeString(quote), "\n", "<br/>") + "</blockquote>" + html
}

// messageMeta is the EventMeta of a remote event a Telegram message (or
// service message) makes in the portal of key: its sender, date and log
// context.
func messageMeta(typ bridgev2.RemoteEventType, key networkid.PortalKey, peer tgid.Peer, sender bridgev2.EventSender, id, date int) simplevent.EventMeta {
	return simplevent.EventMeta{
		Type:      typ,
		PortalKey: key,
		Sender:    sender,
		Timestamp: time.Unix(int64(date), 0),
		LogContext: func(lc zerolog.Context) zerolog.Context {
			return lc.Int("tg_message_id", id).Str("tg_peer", peer.String())
		},
	}
}
