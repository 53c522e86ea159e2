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
	"github.com/passerelle/passerelle/internal/clock"
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
	c.main.basicMigratedFrom.Put(channelID, chatID)
	c.main.basicMu.Unlock()
}

// basicMigratedFrom returns the basic group a supergroup was.
func (c *Client) basicMigratedFrom(channelID int64) (int64, bool) {
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	return c.main.basicMigratedFrom.Get(channelID)
}

// basicPortalKey is the key of a basic group's portal: the supergroup's
// once the group's portal moved there. While a login moves it, the group's
// events wait (a while) for the move.
func (c *Client) basicPortalKey(ctx context.Context, chatID int64) networkid.PortalKey {
	old := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChat, ID: chatID}, c.login.ID)
	c.main.basicMu.Lock()
	moving := c.main.basicMoving[chatID]
	c.main.basicMu.Unlock()
	if moving != nil {
		select {
		case <-moving:
		case <-clock.Or(c.main.Clock).After(migrationWait):
		case <-ctx.Done():
		}
	}
	c.main.basicMu.Lock()
	moved, isMoved := c.main.basicMoved.Get(chatID)
	c.main.basicMu.Unlock()
	if isMoved {
		return tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: moved}, c.login.ID)
	}
	if ch, migrated := c.basicMigratedTo(chatID); migrated {
		// Known migrated (from Telegram's description of the group) and
		// its portal gone: moved before (a restart since).
		if p, err := c.main.Bridge.GetExistingPortalByKey(ctx, old); err == nil && p == nil {
			c.noteBasicMoved(chatID, ch)
			return tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: ch}, c.login.ID)
		}
	}
	return old
}

func (c *Client) noteBasicMoved(chatID, channelID int64) {
	c.main.basicMu.Lock()
	c.main.basicMoved.Put(chatID, channelID)
	c.main.basicMu.Unlock()
}

// startMoving marks a group's portal as being moved; false when another
// login moves it already (done is then closed when that move ends).
func (c *Client) startMoving(chatID int64) (done chan struct{}, first bool) {
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	if ch := c.main.basicMoving[chatID]; ch != nil {
		return ch, false
	}
	ch := make(chan struct{})
	c.main.basicMoving[chatID] = ch
	return ch, true
}

// endMoving ends a move started by startMoving.
func (c *Client) endMoving(chatID int64, done chan struct{}) {
	c.main.basicMu.Lock()
	defer c.main.basicMu.Unlock()
	if c.main.basicMoving[chatID] == done {
		delete(c.main.basicMoving, chatID)
		close(done)
	}
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
// message row is saved, before the key changes under it. Until the move
// is done, the group's and the supergroup's events of every login wait: they
// would otherwise make a second portal.
func (c *Client) handleChatMigrated(ctx context.Context, chatID, channelID int64) {
	c.noteBasicMigrated(chatID, channelID)
	from := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChat, ID: chatID}, c.login.ID)
	to := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: channelID}, c.login.ID)
	moving, first := c.startMoving(chatID)
	wait := func() {
		select {
		case <-moving:
		case <-clock.Or(c.main.Clock).After(migrationWait):
			zerolog.Ctx(ctx).Warn().Int64("tg_chat_id", chatID).Msg("The portal of a migrated basic group was not moved in time")
		case <-ctx.Done():
		}
	}
	if !first {
		wait()
		return
	}
	if p, err := c.main.Bridge.GetExistingPortalByKey(ctx, from); err != nil || p == nil {
		// Moved already, or never bridged.
		c.noteBasicMoved(chatID, channelID)
		c.endMoving(chatID, moving)
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
				if err == nil {
					c.noteBasicMoved(chatID, channelID)
				}
				c.endMoving(chatID, moving)
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
		movedTo:     to,
	}
	res := c.deliver(ctx, evt)
	if !res.Success {
		if res.Error != nil {
			zerolog.Ctx(ctx).Warn().Err(res.Error).Msg("Failed to move the portal of a basic group to its supergroup")
		}
		c.endMoving(chatID, moving)
		return
	}
	wait()
	c.endMoving(chatID, moving) // in case the move never ran
}

// migrationWait bounds how long a login's updates wait for the portal of a
// migrated basic group to be moved.
const migrationWait = 10 * time.Second

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
	if err == nil || peer.Type != tgid.PeerChannel {
		return peer, in, err
	}
	chatID := portalPeer.ID
	if portalPeer.Type != tgid.PeerChat {
		var ok bool
		if chatID, ok = c.basicMigratedFrom(peer.ID); !ok {
			return peer, in, err
		}
	}
	if to, ok := c.checkMigrated(ctx, chatID); ok {
		peer = to
		in, err = c.inputPeer(ctx, peer)
	}
	return peer, in, err
}
