package telegram

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// GetChatInfo implements bridgev2.NetworkAPI: private chats, supergroups and
// channels.
func (c *Client) GetChatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	info, err := c.chatInfo(ctx, portal)
	if err == nil && info != nil {
		remote.PrimeMembers(ctx, c.login, info.Members)
	}
	return info, err
}

// chatInfo is GetChatInfo before the members' ghosts are primed.
func (c *Client) chatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	peer, err := tgid.ParsePortalID(portal.ID)
	if err != nil {
		return nil, err
	}
	switch peer.Type {
	case tgid.PeerChannel:
		return c.channelChatInfo(ctx, peer.ID)
	case tgid.PeerChat:
		return c.basicChatInfo(ctx, peer.ID)
	case tgid.PeerUser:
	default:
		return nil, fmt.Errorf("telegram chat %s: unknown chat type", peer)
	}
	return c.dmChatInfo(peer.ID), nil
}

// dmChatInfo describes the private chat with a Telegram user: the logged-in
// user and the other user's ghost.
func (c *Client) dmChatInfo(otherID int64) *bridgev2.ChatInfo {
	self := tgid.MakeUserID(c.userID)
	other := tgid.MakeUserID(otherID)
	members := &bridgev2.ChatMemberList{
		IsFull:      true,
		OtherUserID: other,
		MemberMap: bridgev2.ChatMemberMap{
			self: {
				EventSender: bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: self},
				Membership:  event.MembershipJoin,
			},
		},
	}
	if other != self {
		members.MemberMap[other] = bridgev2.ChatMember{
			EventSender: bridgev2.EventSender{Sender: other},
			Membership:  event.MembershipJoin,
		}
	}
	roomType := database.RoomTypeDM
	info := &bridgev2.ChatInfo{Members: members, Type: &roomType, CanBackfill: c.main.Config.Backfill.InitialMessages > 0}
	if other == self {
		name := "Saved Messages"
		info.Name = &name
	}
	return info
}

// portalKeyForUser is the key of the private chat with a Telegram user.
func (c *Client) portalKeyForUser(userID int64) networkid.PortalKey {
	return tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerUser, ID: userID}, c.login.ID)
}
