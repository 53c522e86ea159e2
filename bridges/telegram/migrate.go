package telegram

import (
	"context"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

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
// supergroup and syncs the supergroup's members and admins into it.
func (c *Client) handleChatMigrated(ctx context.Context, chatID, channelID int64) {
	log := zerolog.Ctx(ctx).With().Int64("tg_chat_id", chatID).Int64("tg_channel_id", channelID).Logger()
	c.noteBasicMigrated(chatID, channelID)
	from := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChat, ID: chatID}, c.login.ID)
	to := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: channelID}, c.login.ID)
	res, _, err := c.main.Bridge.ReIDPortal(log.WithContext(ctx), from, to)
	if err != nil {
		log.Err(err).Msg("Failed to move the portal of a basic group to its supergroup")
		return
	}
	log.Info().Stringer("result", res).Msg("Basic group became a supergroup")
	if res == bridgev2.ReIDResultNoOp || res == bridgev2.ReIDResultSourceDeleted {
		return
	}
	c.handleChannelUpdate(ctx, channelID)
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
