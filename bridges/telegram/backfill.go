package telegram

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/clock"
)

var _ bridgev2.BackfillingNetworkAPI = (*Client)(nil)

// maxHistoryPage is the most messages Telegram gives in one getHistory.
const maxHistoryPage = 100

// canBackfill tells whether chats get history in their new portal. Basic
// groups too: each account numbers their messages in its own box, so the
// history comes from the box of the login that makes the portal, each
// message claimed under that login's ID (basicstore.go), which the other
// logins' copies then map to.
func (c *Client) canBackfill(peer tgid.Peer) bool {
	return c.main.Config.Backfill.InitialMessages > 0
}

// FetchMessages implements bridgev2.BackfillingNetworkAPI, forward only
// (there is no batch sending on the homeservers Passerelle targets): when a
// portal is made, the chat's latest messages (network.telegram.backfill:
// initial_messages, max_age_days); after an anchor, the messages after it.
// They are converted as live messages are, ping nobody, go through the
// gateway's backfill filter (governance), and are marked read as far as
// the chat was read on Telegram (historyRead).
func (c *Client) FetchMessages(ctx context.Context, params bridgev2.FetchMessagesParams) (*bridgev2.FetchMessagesResponse, error) {
	if !params.Forward {
		return &bridgev2.FetchMessagesResponse{HasMore: false}, nil
	}
	peer, err := tgid.ParsePortalID(params.Portal.ID)
	if err != nil {
		return nil, err
	}
	if !c.canBackfill(peer) {
		return &bridgev2.FetchMessagesResponse{Forward: true}, nil
	}
	limits := c.main.Config.Backfill
	limit := min(params.Count, limits.InitialMessages, maxHistoryPage)
	minID := 0
	if params.AnchorMessage != nil {
		if key, err := tgid.ParseMessageID(params.AnchorMessage.ID); err == nil {
			minID = key.ID
		}
		if peer.Type == tgid.PeerChat {
			// The anchor may be another login's copy: this account's
			// own ID of it, if it has one.
			own, err := c.main.Store.BasicOwnID(ctx, params.AnchorMessage.ID, c.userID)
			if err != nil || own == 0 {
				return &bridgev2.FetchMessagesResponse{Forward: true}, nil
			}
			minID = own
		}
		limit = min(params.Count, maxHistoryPage)
	}
	if limit <= 0 {
		return &bridgev2.FetchMessagesResponse{Forward: true}, nil
	}
	input, err := c.inputPeer(ctx, peer)
	if err != nil {
		return nil, fmt.Errorf("cannot reach this Telegram chat: %w", err)
	}
	res, err := callWhenConnected(ctx, c, "get history", func(ctx context.Context, api *tg.Client) (tg.MessagesMessagesClass, error) {
		return api.MessagesGetHistory(ctx, &tg.MessagesGetHistoryRequest{Peer: input, Limit: limit, MinID: minID})
	})
	if err != nil {
		return nil, fmt.Errorf("failed to get the chat's history from Telegram: %w", err)
	}
	page, ok := res.AsModified()
	if !ok {
		return &bridgev2.FetchMessagesResponse{Forward: true}, nil
	}
	chats := map[int64]*tg.Channel{}
	for _, ch := range page.GetChats() {
		if channel, ok := ch.(*tg.Channel); ok {
			chats[channel.ID] = channel
		}
	}
	c.rememberEntities(ctx, tg.Entities{Users: usersOf(page.GetUsers()), Channels: chats})
	cutoff := limits.Cutoff(clock.Or(c.main.Clock).Now())
	var msgs []*tg.Message
	for _, raw := range page.GetMessages() {
		msg, ok := raw.(*tg.Message)
		if !ok || msg.ID <= minID || (!cutoff.IsZero() && time.Unix(int64(msg.Date), 0).Before(cutoff)) {
			continue
		}
		msgs = append(msgs, msg)
	}
	// Telegram gives the newest first.
	slices.SortFunc(msgs, func(a, b *tg.Message) int { return a.ID - b.ID })
	hist := remote.History{Login: c.login, Portal: params.Portal, Chat: chatOf(peer)}
	switch peer.Type {
	case tgid.PeerUser:
		hist.Remote, hist.Identity = tgid.MakeUserID(peer.ID), c.cachedIdentity(peer.ID)
	case tgid.PeerChannel:
		hist.Chat = c.channelChat(peer.ID)
	case tgid.PeerChat:
		hist.Chat = c.basicChat(peer.ID)
	}
	for _, msg := range msgs {
		if peer.Type == tgid.PeerChat && !c.claimBasicHistory(ctx, peer.ID, msg) {
			continue
		}
		sender := c.senderOf(msg, peer)
		intent, ok := params.Portal.GetIntentFor(ctx, sender, c.login, bridgev2.RemoteEventBackfill)
		if !ok {
			continue
		}
		conv, err := c.convertMessage(ctx, params.Portal, intent, msg)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Int("tg_message_id", msg.ID).Msg("Failed to convert a message of the history; left out")
			continue
		}
		for _, part := range conv.Parts {
			if part.Content != nil {
				// History pings nobody: its mentions stay links.
				part.Content.Mentions = &event.Mentions{}
			}
		}
		hm := remote.HistoryMessage{
			Message: &bridgev2.BackfillMessage{
				ConvertedMessage: conv, Sender: sender, ID: c.messageID(peer, msg.ID),
				Timestamp: time.Unix(int64(msg.Date), 0), StreamOrder: int64(msg.ID),
				Reactions: c.historyReactions(ctx, peer, msg),
			},
			FromMe: sender.IsFromMe, HasMedia: hasMedia(msg),
		}
		if !sender.IsFromMe {
			if id, err := tgid.ParseUserID(sender.Sender); err == nil {
				hm.Sender = c.cachedIdentity(id)
			}
		}
		hist.Messages = append(hist.Messages, hm)
	}
	out := c.main.FilterBackfill(ctx, hist)
	markRead := c.historyRead(ctx, input, msgs)
	zerolog.Ctx(ctx).Info().Int("fetched", len(msgs)).Int("bridged", len(out)).Bool("read", markRead).Msg("Fetched a Telegram chat's history")
	return &bridgev2.FetchMessagesResponse{Messages: out, Forward: true, MarkRead: markRead}, nil
}

// historyRead tells whether the account has read msgs on Telegram: then
// the staff member's Matrix read marker moves past them too. A message
// that waits unread on the phone (the one that made a new chat's portal,
// say) stays unread in Matrix; so does the history when Telegram does not
// say.
func (c *Client) historyRead(ctx context.Context, input tg.InputPeerClass, msgs []*tg.Message) bool {
	lastIn := 0
	for _, msg := range msgs {
		if !msg.Out {
			lastIn = max(lastIn, msg.ID)
		}
	}
	if lastIn == 0 {
		return true
	}
	res, err := callWhenConnected(ctx, c, "get the chat's read state", func(ctx context.Context, api *tg.Client) (*tg.MessagesPeerDialogs, error) {
		return api.MessagesGetPeerDialogs(ctx, []tg.InputDialogPeerClass{&tg.InputDialogPeer{Peer: input}})
	})
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to get a Telegram chat's read state; its history stays unread")
		return false
	}
	for _, d := range res.Dialogs {
		if dialog, ok := d.(*tg.Dialog); ok {
			return dialog.ReadInboxMaxID >= lastIn
		}
	}
	return false
}

// historyReactions are the reactions of a message of the history, with who
// reacted when Telegram lists them (a private chat's counts are the
// account's own and the contact's; a group's counts without the list name
// nobody, and are left out).
func (c *Client) historyReactions(ctx context.Context, peer tgid.Peer, msg *tg.Message) []*bridgev2.BackfillReaction {
	mr, ok := msg.GetReactions()
	if !ok || (peer.Type != tgid.PeerUser && len(mr.RecentReactions) == 0) {
		return nil
	}
	var out []*bridgev2.BackfillReaction
	for _, r := range c.reactionList(ctx, peer, mr) {
		if r.EmojiID == "" {
			continue
		}
		sender := bridgev2.EventSender{Sender: networkid.UserID(r.User)}
		if r.FromMe {
			sender = c.userSender(c.userID)
		}
		br := &bridgev2.BackfillReaction{Sender: sender, EmojiID: networkid.EmojiID(r.EmojiID), Emoji: r.Emoji}
		if r.CustomEmoji != "" {
			br.ExtraContent = map[string]any{customEmojiExtraKey: r.CustomEmoji}
		}
		out = append(out, br)
	}
	return out
}

// claimBasicHistory records this account's copy of a basic-group message of
// the history and tells whether it goes into the portal under this login's
// ID: not when another login already bridged it, or it was sent from
// Matrix.
func (c *Client) claimBasicHistory(ctx context.Context, chatID int64, msg *tg.Message) bool {
	now := clock.Or(c.main.Clock).Now()
	id := c.messageID(tgid.Peer{Type: tgid.PeerChat, ID: chatID}, msg.ID)
	fp, err := c.main.Store.RecordBasicCopy(ctx, c.userID, msg.ID, chatID, basicFingerprint(chatID, msg), now)
	if err == nil {
		c.main.notifyBasicCopied()
		var canonical networkid.MessageID
		var fromMatrix bool
		canonical, fromMatrix, err = c.main.Store.ClaimBasicMessage(ctx, chatID, fp, id, false, now)
		if err == nil {
			return canonical == id && !fromMatrix
		}
	}
	zerolog.Ctx(ctx).Err(err).Int("tg_message_id", msg.ID).Msg("Failed to claim a basic group message of the history; left out")
	return false
}
