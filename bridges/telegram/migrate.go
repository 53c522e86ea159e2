package telegram

import (
	"context"
	"fmt"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// A basic group that becomes a supergroup (messages.migrateChat) keeps its
// portal: the portal is re-keyed from the group (telegram.c<id>) to the
// supergroup (telegram.ch<id>) with bridgev2's ReIDPortal, so the Matrix
// room, its members, its history and the message mappings stay; the
// supergroup's members and admins are then synced into it. Telegram tells
// the migration twice, and either may come first: messageActionChatMigrateTo
// in the group (in every member's own box) and
// messageActionChannelMigrateFrom, the supergroup's first message. The first
// login to see either re-keys; the others find nothing left to do. Events of
// the group handled after that (a login behind) go to the re-keyed portal.
// (Had the supergroup's portal been made first, bridgev2 would tombstone the
// group's room into it.)

// basicMigratedTo returns the supergroup a basic group became.
func (c *Client) basicMigratedTo(chatID int64) (int64, bool) {
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	return c.main.basicMigrated.Get(chatID)
}

func (c *Client) noteBasicMigrated(chatID, channelID int64) {
	c.main.basicMu.Lock()
	c.main.basicMigrated.Put(chatID, channelID)
	c.main.basicMu.Unlock()
}

// basicPortalKey is the key of a basic group's portal: the supergroup's
// once the group migrated.
func (c *Client) basicPortalKey(chatID int64) networkid.PortalKey {
	if ch, ok := c.basicMigratedTo(chatID); ok {
		return tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: ch}, c.login.ID)
	}
	return tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChat, ID: chatID}, c.login.ID)
}

// rememberMigrations notes the migrations the chats of an update name.
func (c *Client) rememberMigrations(chats map[int64]*tg.Chat) {
	for id, ch := range chats {
		if to, ok := ch.GetMigratedTo(); ok {
			if in, ok := to.(*tg.InputChannel); ok {
				c.noteBasicMigrated(id, in.ChannelID)
			}
		}
	}
}

// handleChatMigrated re-keys the portal of a basic group that became a
// supergroup and syncs the supergroup's members and admins into it. The
// re-key runs inside the portal's own event loop (a resync event of the
// group's portal): a Matrix event being sent there finishes, and its
// message row is saved, before the key changes under it.
func (c *Client) handleChatMigrated(ctx context.Context, chatID, channelID int64) {
	c.noteBasicMigrated(chatID, channelID)
	from := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChat, ID: chatID}, c.login.ID)
	to := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: channelID}, c.login.ID)
	if p, err := c.main.Bridge.GetExistingPortalByKey(ctx, from); err != nil || p == nil {
		// Moved already by another login, or never bridged.
		return
	}
	evt := &resyncEvent{
		ChatResync: &simplevent.ChatResync{
			EventMeta: simplevent.EventMeta{
				Type:      bridgev2.RemoteEventChatResync,
				PortalKey: from,
				Timestamp: time.Now(),
				LogContext: func(lc zerolog.Context) zerolog.Context {
					return lc.Int64("tg_chat_id", chatID).Int64("tg_channel_id", channelID)
				},
			},
			GetChatInfoFunc: func(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
				res, _, err := c.main.Bridge.ReIDPortal(ctx, from, to)
				if err != nil {
					return nil, fmt.Errorf("failed to move the portal of a basic group to its supergroup: %w", err)
				}
				zerolog.Ctx(ctx).Info().Stringer("result", res).Msg("Basic group became a supergroup")
				if res == bridgev2.ReIDResultNoOp || res == bridgev2.ReIDResultSourceDeleted {
					return nil, nil
				}
				return c.channelChatInfo(ctx, channelID)
			},
		},
		description: description{chat: c.basicChat(chatID)},
	}
	c.deliverSignal(ctx, evt, "chat_migrated")
}

// migratedPeer is where a Matrix event for a basic group goes: the
// supergroup once the group migrated.
func (c *Client) migratedPeer(peer tgid.Peer) tgid.Peer {
	if peer.Type == tgid.PeerChat {
		if ch, ok := c.basicMigratedTo(peer.ID); ok {
			return tgid.Peer{Type: tgid.PeerChannel, ID: ch}
		}
	}
	return peer
}

// checkMigrated asks Telegram whether a basic group became a supergroup
// (a send to it failed); the supergroup's access hash is kept.
func (c *Client) checkMigrated(ctx context.Context, chatID int64) (tgid.Peer, bool) {
	// Asked even when another login saw the migration: this account
	// needs the supergroup's access hash.
	res, err := callWhenConnected(ctx, c, "get basic group", func(ctx context.Context, api *tg.Client) (tg.MessagesChatsClass, error) {
		return api.MessagesGetChats(ctx, []int64{chatID})
	})
	if err != nil {
		return tgid.Peer{}, false
	}
	for _, cc := range res.GetChats() {
		ch, ok := cc.(*tg.Chat)
		if !ok || ch.ID != chatID {
			continue
		}
		to, ok := ch.GetMigratedTo()
		if !ok {
			continue
		}
		in, ok := to.(*tg.InputChannel)
		if !ok {
			continue
		}
		if err := c.main.Store.ChannelAccessHasher().SetChannelAccessHash(ctx, c.userID, in.ChannelID, in.AccessHash); err != nil {
			zerolog.Ctx(ctx).Err(err).Int64("tg_channel_id", in.ChannelID).Msg("Failed to store channel access hash")
		}
		c.noteBasicMigrated(chatID, in.ChannelID)
		return tgid.Peer{Type: tgid.PeerChannel, ID: in.ChannelID}, true
	}
	return tgid.Peer{}, false
}

// sendPeer is the chat a Matrix message of a portal goes to (peer: the
// portal's chat, or the supergroup its basic group became) and its
// InputPeer. An account that has not seen the supergroup yet asks
// Telegram for it.
func (c *Client) sendPeer(ctx context.Context, portalPeer, peer tgid.Peer) (tgid.Peer, tg.InputPeerClass, error) {
	in, err := c.inputPeer(ctx, peer)
	if err != nil && portalPeer.Type == tgid.PeerChat && peer.Type == tgid.PeerChannel {
		if to, ok := c.checkMigrated(ctx, portalPeer.ID); ok {
			peer = to
			in, err = c.inputPeer(ctx, peer)
		}
	}
	return peer, in, err
}
