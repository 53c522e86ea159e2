package telegram

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// chatsAtLogin gives the most recent chats of a newly linked account their
// portals (network.telegram.backfill.chats_at_login of them, from
// messages.getDialogs), once: each through the gate as a chat resync that
// may create its portal (a chat the organisation does not bridge, or one
// awaiting approval, gets none and makes no request), and a new portal gets
// its history (FetchMessages). The other chats get theirs when they next
// speak. Basic groups are left out: their portal is shared by the logins in
// them and made by the first message.
func (c *Client) chatsAtLogin(ctx context.Context) {
	defer c.recoverHandler(ctx, "chats_at_login")
	c.catchUpMu.Lock()
	md := meta.Get[tgid.UserLoginMetadata](c.login.Metadata)
	pending := md.ChatsAtLogin
	c.catchUpMu.Unlock()
	if !pending {
		return
	}
	log := zerolog.Ctx(ctx)
	n := c.main.Config.Backfill.ChatsAtLogin
	var chats []catchUpChat
	if n > 0 {
		err := c.forDialogs(ctx, func(chat catchUpChat, _ int) bool {
			if chat.peer.Type != tgid.PeerChat {
				chats = append(chats, chat)
			}
			return len(chats) < n
		})
		if err != nil {
			log.Err(err).Msg("Failed to list the chats to bridge at login; trying again at the next connection")
			return
		}
	}
	made := 0
	for _, chat := range chats {
		if ctx.Err() != nil {
			return
		}
		res := c.deliver(ctx, c.chatAtLoginEvent(chat.peer))
		if res.Success {
			made++
		}
	}
	c.catchUpMu.Lock()
	md.ChatsAtLogin = false
	err := c.login.Save(ctx)
	c.catchUpMu.Unlock()
	if err != nil {
		log.Err(err).Msg("Failed to save that the chats at login are done")
	}
	log.Info().Int("chats", len(chats)).Int("bridged", made).Msg("Bridged the most recent chats at login")
}

// chatAtLoginEvent is the resync that makes a chat's portal at login.
func (c *Client) chatAtLoginEvent(peer tgid.Peer) *resyncEvent {
	evt := c.chatResyncEvent(peer)
	evt.CreatePortal = true
	return evt
}

// chatResyncEvent is the resync of a chat's portal: a channel's info comes
// from Telegram, a private chat's contact from the cache.
func (c *Client) chatResyncEvent(peer tgid.Peer) *resyncEvent {
	evt := &resyncEvent{
		ChatResync: &simplevent.ChatResync{
			EventMeta: simplevent.EventMeta{
				Type:      bridgev2.RemoteEventChatResync,
				PortalKey: tgid.MakePortalKey(peer, c.login.ID),
				Timestamp: time.Now(),
				LogContext: func(lc zerolog.Context) zerolog.Context {
					return lc.Str("tg_peer", peer.String())
				},
			},
		},
		description: description{chat: chatOf(peer)},
	}
	switch peer.Type {
	case tgid.PeerUser:
		evt.description.sender = c.cachedIdentity(peer.ID)
	case tgid.PeerChannel:
		evt.description.chat = c.channelChat(peer.ID)
		evt.GetChatInfoFunc = func(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
			return c.channelChatInfo(ctx, peer.ID)
		}
	}
	return evt
}
