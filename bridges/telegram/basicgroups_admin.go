package telegram

import (
	"context"
	"fmt"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Members and settings of basic groups from Matrix, through the staff
// member's own account: invite (messages.addChatUser), kick
// (messages.deleteChatUser), rename (messages.editChatTitle) and topic
// (messages.editChatAbout). Each asks the gateway first; a refusal, by the
// gateway or by Telegram, is told in the room and the Matrix change is
// undone (revert.go, by the Matrix handlers of groups.go). Telegram → Matrix, the group's service messages say what changed.

// basicOutbound describes a change to a basic group for the outbound check.
func (c *Client) basicOutbound(kind remote.OutboundKind, portal *bridgev2.Portal, peer tgid.Peer) remote.Outbound {
	out := c.outbound(kind, portal, peer)
	out.Chat = c.basicChat(peer.ID)
	return out
}

// basicChangeError turns Telegram's refusal of a basic-group change into a
// clear message (nil when nothing needed changing).
func basicChangeError(err error, what string) error {
	switch {
	case tgerr.Is(err, "CHAT_NOT_MODIFIED"):
		return nil
	case tgerr.Is(err, "CHAT_WRITE_FORBIDDEN"):
		return errNotInGroup
	case tgerr.Is(err, "USER_ALREADY_PARTICIPANT", "USER_NOT_PARTICIPANT"):
		return nil
	}
	return groupRightsError(err, what)
}

func (c *Client) handleBasicRoomName(ctx context.Context, msg *bridgev2.MatrixRoomName, peer tgid.Peer) (bool, error) {
	err := c.main.CheckOutbound(ctx, c.basicOutbound(remote.OutboundGroupChange, msg.Portal, peer))
	if err == nil {
		var resp tg.UpdatesClass
		resp, err = callWhenConnected(ctx, c, "rename group", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
			return api.MessagesEditChatTitle(ctx, &tg.MessagesEditChatTitleRequest{ChatID: peer.ID, Title: msg.Content.Name})
		})
		if err == nil {
			c.feedUpdates(resp)
		} else {
			err = basicChangeError(err, "rename the group")
		}
	}
	if err != nil {
		// HandleMatrixRoomName undoes the change and tells the room.
		return false, err
	}
	c.main.basicMu.Lock()
	c.main.basicTitles.Put(peer.ID, msg.Content.Name)
	c.main.basicMu.Unlock()
	msg.Portal.Name = msg.Content.Name
	msg.Portal.NameSet = true
	return true, nil
}

func (c *Client) handleBasicRoomTopic(ctx context.Context, msg *bridgev2.MatrixRoomTopic, peer tgid.Peer) (bool, error) {
	err := c.main.CheckOutbound(ctx, c.basicOutbound(remote.OutboundGroupChange, msg.Portal, peer))
	if err == nil {
		_, err = callWhenConnected(ctx, c, "change group description", func(ctx context.Context, api *tg.Client) (bool, error) {
			return api.MessagesEditChatAbout(ctx, &tg.MessagesEditChatAboutRequest{Peer: &tg.InputPeerChat{ChatID: peer.ID}, About: msg.Content.Topic})
		})
		if err != nil {
			err = basicChangeError(err, "change the group's description")
		}
	}
	if err != nil {
		// HandleMatrixRoomTopic undoes the change and tells the room.
		return false, err
	}
	msg.Portal.Topic = msg.Content.Topic
	msg.Portal.TopicSet = true
	return true, nil
}

// handleBasicMembership adds a contact (invited by their ghost) to the
// basic group or removes them. Staff members' own memberships stay on
// Matrix.
func (c *Client) handleBasicMembership(ctx context.Context, msg *bridgev2.MatrixMembershipChange, peer tgid.Peer) (*bridgev2.MatrixMembershipResult, error) {
	ghost, ok := msg.Target.(*bridgev2.Ghost)
	if !ok {
		return nil, nil
	}
	userID, err := tgid.ParseUserID(ghost.ID)
	if err != nil {
		return nil, nil
	}
	var kind remote.OutboundKind
	switch msg.Type {
	case bridgev2.Invite:
		kind = remote.OutboundMemberAdd
	case bridgev2.Kick, bridgev2.BanJoined, bridgev2.RevokeInvite:
		kind = remote.OutboundMemberRemove
	default:
		return nil, nil
	}
	out := c.basicOutbound(kind, msg.Portal, peer)
	out.Remote, out.Identity = ghost.ID, c.cachedIdentity(userID)
	err = c.main.CheckOutbound(ctx, out)
	if err == nil {
		err = c.changeBasicMember(ctx, peer.ID, userID, kind == remote.OutboundMemberAdd)
	}
	if err != nil {
		// HandleMatrixMembership puts the membership back and tells the
		// room.
		return nil, err
	}
	return nil, nil
}

func (c *Client) changeBasicMember(ctx context.Context, chatID, userID int64, add bool) error {
	user, err := c.inputUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("cannot reach this Telegram user: %w", err)
	}
	what := "remove members"
	if add {
		what = "add members"
	}
	_, err = callWhenConnected(ctx, c, what, func(ctx context.Context, api *tg.Client) (bool, error) {
		if add {
			res, err := api.MessagesAddChatUser(ctx, &tg.MessagesAddChatUserRequest{ChatID: chatID, UserID: user, FwdLimit: 100})
			if err == nil {
				c.feedUpdates(res.Updates)
			}
			return err == nil, err
		}
		res, err := api.MessagesDeleteChatUser(ctx, &tg.MessagesDeleteChatUserRequest{ChatID: chatID, UserID: user})
		if err == nil {
			c.feedUpdates(res)
		}
		return err == nil, err
	})
	if err != nil {
		return basicChangeError(err, what)
	}
	return nil
}

// handleBasicServiceMessage bridges what a basic group's service messages
// say: a new title or photo, members added or gone. Every login in the group gets
// them; bridgev2 changes nothing the second time.
func (c *Client) handleBasicServiceMessage(ctx context.Context, chatID int64, msg *tg.MessageService) {
	peer := tgid.Peer{Type: tgid.PeerChat, ID: chatID}
	if c.leftGroupEcho(peer, c.addsSelf(msg)) {
		return
	}
	from := int64(0)
	if p, ok := msg.FromID.(*tg.PeerUser); ok {
		from = p.UserID
	}
	sender := c.memberSender(from)
	change := &bridgev2.ChatInfoChange{}
	switch a := msg.Action.(type) {
	case *tg.MessageActionChatEditTitle:
		title := a.Title
		change.ChatInfo = &bridgev2.ChatInfo{Name: &title}
		c.main.basicMu.Lock()
		c.main.basicTitles.Put(chatID, title)
		c.main.basicMu.Unlock()
	case *tg.MessageActionChatAddUser:
		change.MemberChanges = &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{}}
		for _, id := range a.Users {
			m := c.memberSender(id)
			change.MemberChanges.MemberMap[m.Sender] = bridgev2.ChatMember{EventSender: m, Membership: event.MembershipJoin}
		}
	case *tg.MessageActionChatDeleteUser:
		m := c.memberSender(a.UserID)
		change.MemberChanges = &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{
			m.Sender: {EventSender: m, Membership: event.MembershipLeave},
		}}
	case *tg.MessageActionChatEditPhoto:
		// The room avatar, by photo ID: the copy every other login gets
		// changes nothing, nor does the echo of a photo set from Matrix.
		change.ChatInfo = &bridgev2.ChatInfo{Avatar: c.photoAvatar(a.Photo)}
	case *tg.MessageActionChatDeletePhoto:
		change.ChatInfo = &bridgev2.ChatInfo{Avatar: &bridgev2.Avatar{Remove: true}}
	case *tg.MessageActionChatMigrateTo:
		c.handleChatMigrated(ctx, chatID, a.ChannelID)
		return
	default:
		zerolog.Ctx(ctx).Debug().Type("action", msg.Action).Msg("Ignoring Telegram service message")
		return
	}
	evt := &infoChangeEvent{
		ChatInfoChange: &simplevent.ChatInfoChange{
			EventMeta:      messageMeta(bridgev2.RemoteEventChatInfoChange, c.basicPortalKey(ctx, chatID), peer, sender, msg.ID, msg.Date),
			ChatInfoChange: change,
		},
		description: description{chat: c.basicChat(chatID)},
	}
	if !sender.IsFromMe && from != 0 {
		evt.sender = c.cachedIdentity(from)
	}
	c.deliverSignal(ctx, evt, "service_message")
}
