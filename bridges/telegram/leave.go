package telegram

import (
	"context"
	"fmt"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Leaving a group from Matrix. bridgev2 hands a staff member's own leave
// of a portal over only when the bridge's bridge_matrix_leave switch is on
// (off by default: leaving the room then keeps the Telegram account in the
// group, and nothing happens on Telegram). On, the staff member's account
// leaves the supergroup (or the channel) or the basic group; it is their
// own act, so the gateway is not asked, but it is logged. The login is
// then taken out of the portal: Telegram's echo of the leave (the service
// message, the channel shown left) is not bridged through it, as bridgev2
// would mark the login in the portal again and invite the staff member
// back before the leave.

// leftFromMatrixCacheSize caps the chats remembered as left from Matrix.
const leftFromMatrixCacheSize = 256

// leaveFromMatrix makes the staff member's Telegram account leave the
// group of the portal they left in Matrix.
func (c *Client) leaveFromMatrix(ctx context.Context, msg *bridgev2.MatrixMembershipChange) error {
	if msg.OrigSender != nil || msg.Event == nil || msg.Event.Sender != c.login.UserMXID {
		// Through the relay, or another user's login: not this account's
		// leave.
		return nil
	}
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil || (peer.Type != tgid.PeerChannel && peer.Type != tgid.PeerChat) {
		return nil
	}
	up, err := c.main.Bridge.DB.UserPortal.Get(ctx, c.login.UserLogin, msg.Portal.PortalKey)
	if err != nil {
		return err
	} else if up == nil {
		return nil
	}
	c.leftFromMatrix.Put(peer, true)
	switch peer.Type {
	case tgid.PeerChannel:
		input, err := c.inputChannel(ctx, peer.ID)
		if err != nil {
			c.leftFromMatrix.Remove(peer)
			return err
		}
		_, err = callWhenConnected(ctx, c, "leave group", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
			return api.ChannelsLeaveChannel(ctx, input)
		})
		if err != nil && !tgerr.Is(err, "USER_NOT_PARTICIPANT", "CHANNEL_PRIVATE") {
			c.leftFromMatrix.Remove(peer)
			return fmt.Errorf("failed to leave the Telegram group: %w", err)
		}
		// The channel's updates are not fed: the account no longer
		// reads its box.
		if ch, ok := c.channels.Get(peer.ID); ok {
			left := *ch
			left.Left = true
			c.channels.Put(peer.ID, &left)
		}
	case tgid.PeerChat:
		resp, err := callWhenConnected(ctx, c, "leave group", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
			return api.MessagesDeleteChatUser(ctx, &tg.MessagesDeleteChatUserRequest{ChatID: peer.ID, UserID: &tg.InputUserSelf{}})
		})
		if err != nil && !tgerr.Is(err, "USER_NOT_PARTICIPANT") {
			c.leftFromMatrix.Remove(peer)
			return fmt.Errorf("failed to leave the Telegram group: %w", err)
		}
		if err == nil {
			// The account's own box: its pts moves on.
			c.feedUpdates(resp)
		}
	}
	if err = c.main.Bridge.DB.UserPortal.Delete(ctx, up); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to take the login out of the portal it left")
	}
	zerolog.Ctx(ctx).Info().Str("login_id", string(c.login.ID)).Str("tg_peer", peer.String()).
		Msg("Left a Telegram group after leaving its portal in Matrix")
	return nil
}

// leftGroupEcho tells whether an event of a group through this login is
// the echo of its leave from Matrix (dropped). The account added again to
// the group (selfAdded) is in it again.
func (c *Client) leftGroupEcho(peer tgid.Peer, selfAdded bool) bool {
	if _, left := c.leftFromMatrix.Get(peer); !left {
		return false
	}
	if selfAdded {
		c.leftFromMatrix.Remove(peer)
		return false
	}
	return true
}

// addsSelf tells whether a service message adds this account to its group.
func (c *Client) addsSelf(msg *tg.MessageService) bool {
	switch a := msg.Action.(type) {
	case *tg.MessageActionChatAddUser:
		for _, id := range a.Users {
			if id == c.userID {
				return true
			}
		}
	case *tg.MessageActionChatJoinedByLink, *tg.MessageActionChatJoinedByRequest:
		p, ok := msg.FromID.(*tg.PeerUser)
		return ok && p.UserID == c.userID
	}
	return false
}

// markInBasicPortal records this login in a basic group's portal when
// another login bridged the group's message: bridgev2 knows a login is in
// a portal only from the events it queues there, and each message of a
// basic group is queued by one login only. The staff member's own login
// then sends their messages and handles their leave.
func (c *Client) markInBasicPortal(ctx context.Context, chatID int64) {
	if _, left := c.leftFromMatrix.Get(tgid.Peer{Type: tgid.PeerChat, ID: chatID}); left {
		return
	}
	portal, err := c.main.Bridge.GetExistingPortalByKey(ctx, c.basicPortalKey(ctx, chatID))
	// RoomCreated, not MXID: the portal's loop writes MXID while it makes
	// the room, and sets RoomCreated after.
	if err != nil || portal == nil || !portal.RoomCreated.IsSet() {
		return
	}
	c.login.MarkInPortal(ctx, portal)
}

// leftFromMatrixChat tells whether this account left a group from Matrix.
func (c *Client) leftFromMatrixChat(peer tgid.Peer) bool {
	_, left := c.leftFromMatrix.Get(peer)
	return left
}

// leftGroupEvent tells whether an event is one of a group this account
// left from Matrix, received before it left and handled after: queued
// through this login, it would put the login back in the portal and
// invite the staff member again. A message is still bridged (a basic
// group's message may have been claimed by this login only).
func (c *Client) leftGroupEvent(evt bridgev2.RemoteEvent) bool {
	key := evt.GetPortalKey()
	if key.Receiver != "" || c.leftFromMatrix.Len() == 0 || evt.GetType() == bridgev2.RemoteEventMessage {
		return false
	}
	peer, err := tgid.ParsePortalID(key.ID)
	return err == nil && c.leftFromMatrixChat(peer)
}
