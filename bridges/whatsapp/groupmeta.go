package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// ErrAnnounceOnly is returned for a message to an announce-only group from
// a staff member who is not one of its admins.
var ErrAnnounceOnly = errors.New("only admins can send messages to this WhatsApp group")

// groupRefusal explains a send to a group that WhatsApp refused: in an
// announce-only group, only admins send.
func (cl *Client) groupRefusal(ctx context.Context, chat types.JID, err error) error {
	if chat.Server != types.GroupServer || !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		return err
	}
	wa := cl.client()
	if wa == nil {
		return err
	}
	infoCtx, cancel := context.WithTimeout(ctx, groupInfoTimeout)
	defer cancel()
	info, ierr := wa.GetGroupInfo(infoCtx, chat)
	if ierr != nil || !info.IsAnnounce || cl.isGroupAdmin(ctx, chat) {
		return err
	}
	return certain(fmt.Errorf("%w (%w)", ErrAnnounceOnly, err), event.MessageStatusNoPermission)
}

var (
	_ bridgev2.RoomNameHandlingNetworkAPI   = (*Client)(nil)
	_ bridgev2.RoomTopicHandlingNetworkAPI  = (*Client)(nil)
	_ bridgev2.MembershipHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.PowerLevelHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.GroupCreatingNetworkAPI      = (*Client)(nil)
)

// groupOf is the group of a portal whose metadata a staff member changes in
// Matrix, when their login is in it.
func (cl *Client) groupOf(ctx context.Context, portal *bridgev2.Portal) (types.JID, error) {
	chat, err := waid.ParsePortalID(portal.ID)
	if err != nil {
		return chat, err
	}
	if chat.Server == types.NewsletterServer {
		return chat, certain(ErrReadOnlyNewsletter, event.MessageStatusNoPermission)
	}
	if chat.Server != types.GroupServer {
		return chat, certain(fmt.Errorf("a direct chat has no name or topic on WhatsApp"), event.MessageStatusUnsupported)
	}
	up, err := cl.main.Bridge.DB.UserPortal.Get(ctx, cl.login.UserLogin, portal.PortalKey)
	if err != nil {
		return chat, err
	} else if up == nil {
		return chat, certain(fmt.Errorf("%w (%s)", ErrNotInGroup, cl.accountName()), event.MessageStatusNoPermission)
	}
	if cl.client() == nil {
		return chat, certain(ErrNotConnected, event.MessageStatusNetworkError)
	}
	return chat, nil
}

// revertState puts back a room's state that WhatsApp refused, and tells
// the room why.
func (cl *Client) revertState(ctx context.Context, portal *bridgev2.Portal, typ event.Type, content any, why error) {
	bot := cl.main.Bridge.Bot
	// bridgev2 reverts names, topics, avatars and memberships itself when
	// revert_failed_state_changes is on.
	if !cl.main.Bridge.Config.RevertFailedStateChanges || typ == event.StatePowerLevels {
		if _, err := bot.SendState(ctx, portal.MXID, typ, "", &event.Content{Parsed: content}, time.Now()); err != nil {
			cl.log.Warn().Err(err).Str("event_type", typ.Type).Msg("Failed to revert a refused room change")
		}
	}
	_, _ = bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgNotice, Body: "WhatsApp refused the change, so it was undone: " + why.Error(),
	}}, nil)
}

// askGroupChange asks the gateway before a change to a group leaves for
// WhatsApp: the group must be bridged now, and a contact added must be
// allowed by the organisation's policy (who is that contact).
func (cl *Client) askGroupChange(ctx context.Context, kind remote.OutboundKind, portal *bridgev2.Portal, chat, who types.JID) error {
	out := remote.Outbound{Kind: kind, Login: cl.login}
	if portal != nil {
		out.Portal, out.PortalKey, out.Chat = portal, portal.PortalKey, cl.cachedChat(ctx, chat)
	}
	if !who.IsEmpty() {
		var err error
		if out.Remote, err = waid.MakeUserID(who); err != nil {
			return err
		}
		if out.Identity, err = cl.DescribeRemoteUser(ctx, out.Remote); err != nil {
			return err
		}
	}
	return cl.main.CheckOutbound(ctx, out)
}

// HandleMatrixRoomName implements bridgev2.RoomNameHandlingNetworkAPI: a
// staff member renames the group on WhatsApp through their own account;
// when WhatsApp refuses (not an admin of a locked group, not in it), the
// room's name is put back.
func (cl *Client) HandleMatrixRoomName(ctx context.Context, msg *bridgev2.MatrixRoomName) (bool, error) {
	chat, err := cl.groupOf(ctx, msg.Portal)
	if err == nil {
		err = cl.askGroupChange(ctx, remote.OutboundGroupChange, msg.Portal, chat, types.EmptyJID)
	}
	if err == nil {
		if wa := cl.client(); wa != nil {
			err = wa.SetGroupName(ctx, chat, msg.Content.Name)
		}
	}
	if err != nil {
		cl.revertState(ctx, msg.Portal, event.StateRoomName, &event.RoomNameEventContent{Name: msg.Portal.Name}, err)
		return false, err
	}
	cl.rememberGroupName(chat, msg.Content.Name)
	msg.Portal.Name, msg.Portal.NameSet = msg.Content.Name, true
	return true, nil
}

// HandleMatrixRoomTopic implements bridgev2.RoomTopicHandlingNetworkAPI:
// the group's description, as for the name.
func (cl *Client) HandleMatrixRoomTopic(ctx context.Context, msg *bridgev2.MatrixRoomTopic) (bool, error) {
	chat, err := cl.groupOf(ctx, msg.Portal)
	if err == nil {
		err = cl.askGroupChange(ctx, remote.OutboundGroupChange, msg.Portal, chat, types.EmptyJID)
	}
	if err == nil {
		if wa := cl.client(); wa != nil {
			err = wa.SetGroupTopic(ctx, chat, "", "", msg.Content.Topic)
		}
	}
	if err != nil {
		cl.revertState(ctx, msg.Portal, event.StateTopic, &event.TopicEventContent{Topic: msg.Portal.Topic}, err)
		return false, err
	}
	msg.Portal.Topic, msg.Portal.TopicSet = msg.Content.Topic, true
	return true, nil
}

// targetJID is the WhatsApp account of a Matrix membership or power level
// target: a contact's ghost or a staff member's login.
func targetJID(target bridgev2.GhostOrUserLogin) (types.JID, error) {
	switch t := target.(type) {
	case *bridgev2.Ghost:
		return waid.ParseUserID(t.ID)
	case *bridgev2.UserLogin:
		return waid.ParseUserLoginID(t.ID)
	}
	return types.EmptyJID, fmt.Errorf("%w: no WhatsApp account for this user", bridgev2.ErrIgnoringRemoteEvent)
}

// HandleMatrixMembership implements bridgev2.MembershipHandlingNetworkAPI:
// in a group portal, inviting a contact's ghost adds them to the group and
// kicking (or banning) one removes them, through the staff member's own
// account; WhatsApp checks the rights (only admins) and a refusal is the
// failed status, the change undone and a notice.
func (cl *Client) HandleMatrixMembership(ctx context.Context, msg *bridgev2.MatrixMembershipChange) (*bridgev2.MatrixMembershipResult, error) {
	var action whatsmeow.ParticipantChange
	switch msg.Type {
	case bridgev2.Leave:
		return nil, cl.leaveFromMatrix(ctx, msg)
	case bridgev2.Invite:
		action = whatsmeow.ParticipantChangeAdd
	case bridgev2.Kick, bridgev2.BanJoined, bridgev2.RevokeInvite, bridgev2.BanInvited:
		action = whatsmeow.ParticipantChangeRemove
	default:
		return nil, nil
	}
	chat, err := cl.groupOf(ctx, msg.Portal)
	var who types.JID
	if err == nil {
		who, err = targetJID(msg.Target)
	}
	if err == nil {
		kind := remote.OutboundMemberRemove
		if action == whatsmeow.ParticipantChangeAdd {
			kind = remote.OutboundMemberAdd
		}
		err = cl.askGroupChange(ctx, kind, msg.Portal, chat, who)
	}
	if err == nil {
		err = cl.changeParticipant(ctx, chat, who, action)
	}
	if err != nil {
		prev := msg.PrevContent
		if prev == nil {
			prev = &event.MemberEventContent{Membership: event.MembershipLeave}
		}
		cl.revertMember(ctx, msg.Portal, msg.Event.GetStateKey(), prev, err)
		return nil, err
	}
	return nil, nil
}

func (cl *Client) changeParticipant(ctx context.Context, chat, who types.JID, action whatsmeow.ParticipantChange) error {
	wa := cl.client()
	if wa == nil {
		return certain(ErrNotConnected, event.MessageStatusNetworkError)
	}
	res, err := wa.UpdateGroupParticipants(ctx, chat, []types.JID{who}, action)
	if err != nil {
		return certain(fmt.Errorf("WhatsApp refused to %s this member (only group admins can): %w", action, err), event.MessageStatusNoPermission)
	}
	for _, p := range res {
		if p.Error != 0 {
			return certain(fmt.Errorf("WhatsApp refused to %s this member (error %d)", action, p.Error), event.MessageStatusNoPermission)
		}
	}
	return nil
}

// revertMember puts a member's previous membership back.
func (cl *Client) revertMember(ctx context.Context, portal *bridgev2.Portal, userID string, prev *event.MemberEventContent, why error) {
	bot := cl.main.Bridge.Bot
	if !cl.main.Bridge.Config.RevertFailedStateChanges {
		if _, err := bot.SendState(ctx, portal.MXID, event.StateMember, userID, &event.Content{Parsed: prev}, time.Now()); err != nil {
			cl.log.Warn().Err(err).Msg("Failed to revert a refused membership change")
		}
	}
	_, _ = bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgNotice, Body: "WhatsApp refused the change, so it was undone: " + why.Error(),
	}}, nil)
}

// HandleMatrixPowerLevels implements bridgev2.PowerLevelHandlingNetworkAPI:
// raising a member to the admin level (50) or above promotes them on
// WhatsApp, lowering them below it demotes them; the level to send
// (events_default) turns announce-only on or off, the level to change the
// name turns locked on or off. A refusal puts the previous levels back.
func (cl *Client) HandleMatrixPowerLevels(ctx context.Context, msg *bridgev2.MatrixPowerLevelChange) (bool, error) {
	chat, err := cl.groupOf(ctx, msg.Portal)
	if err == nil {
		err = cl.askGroupChange(ctx, remote.OutboundGroupChange, msg.Portal, chat, types.EmptyJID)
	}
	wa := cl.client()
	if err == nil && wa == nil {
		err = certain(ErrNotConnected, event.MessageStatusNetworkError)
	}
	crosses := func(c *bridgev2.SinglePowerLevelChange) (up, changed bool) {
		if c == nil {
			return false, false
		}
		was, is := c.OrigLevel >= adminPowerLevel, c.NewLevel >= adminPowerLevel
		return is, was != is
	}
	changed := false
	if err == nil {
		for _, u := range msg.Users {
			up, ok := crosses(&u.SinglePowerLevelChange)
			if !ok || u.Target == nil {
				continue
			}
			var who types.JID
			if who, err = targetJID(u.Target); err != nil {
				break
			}
			action := whatsmeow.ParticipantChangeDemote
			if up {
				action = whatsmeow.ParticipantChangePromote
			}
			if err = cl.changeParticipant(ctx, chat, who, action); err != nil {
				break
			}
			changed = true
		}
	}
	if err == nil {
		if on, ok := crosses(msg.EventsDefault); ok {
			if err = wa.SetGroupAnnounce(ctx, chat, on); err == nil {
				changed = true
			}
		}
	}
	if err == nil {
		if on, ok := crosses(msg.Events[event.StateRoomName.Type]); ok {
			if err = wa.SetGroupLocked(ctx, chat, on); err == nil {
				changed = true
			}
		}
	}
	if err != nil {
		if msg.PrevContent != nil {
			cl.revertState(ctx, msg.Portal, event.StatePowerLevels, msg.PrevContent, err)
		}
		return false, err
	}
	return changed, nil
}

// CreateGroup implements bridgev2.GroupCreatingNetworkAPI (the create-group
// command and the provisioning endpoint): a WhatsApp group made by the
// staff member's account with the given contacts, named as asked.
func (cl *Client) CreateGroup(ctx context.Context, params *bridgev2.GroupCreateParams) (*bridgev2.CreateChatResponse, error) {
	wa := cl.client()
	if wa == nil {
		return nil, ErrNotConnected
	}
	if params.Name == nil || params.Name.Name == "" {
		return nil, fmt.Errorf("a WhatsApp group needs a name")
	}
	participants := make([]types.JID, 0, len(params.Participants))
	for _, p := range params.Participants {
		jid, err := waid.ParseUserID(p)
		if err != nil {
			return nil, fmt.Errorf("not a WhatsApp user: %s", p)
		}
		if err = cl.askGroupChange(ctx, remote.OutboundMemberAdd, nil, types.EmptyJID, jid); err != nil {
			return nil, err
		}
		participants = append(participants, jid)
	}
	info, err := wa.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: params.Name.Name, Participants: participants})
	if err != nil {
		return nil, fmt.Errorf("WhatsApp did not create the group: %w", err)
	}
	if params.Topic != nil && params.Topic.Topic != "" {
		if err = wa.SetGroupTopic(ctx, info.JID, "", "", params.Topic.Topic); err != nil {
			cl.log.Warn().Err(err).Msg("Failed to set the topic of a new group")
		}
	}
	cl.rememberGroupName(info.JID, info.Name)
	key, err := waid.MakePortalKey(info.JID, cl.login.ID)
	if err != nil {
		return nil, err
	}
	portal, err := cl.main.Bridge.GetPortalByKey(ctx, key)
	if err != nil {
		return nil, err
	}
	chatInfo, err := cl.GetChatInfo(ctx, portal)
	if err != nil {
		return nil, err
	}
	return &bridgev2.CreateChatResponse{PortalKey: key, Portal: portal, PortalInfo: chatInfo}, nil
}

// leaveFromMatrix: a staff member leaving a group portal in Matrix leaves
// the WhatsApp group with their own account. bridgev2 hands the leave over
// only when the bridge's bridge_matrix_leave switch is on (off by default:
// leaving the room then leaves the WhatsApp account in the group, and the
// staff member is invited again on the next resync). Leaving a channel's
// portal unfollows the channel. A leave handled through the relay's
// account, or by a login of someone else, is ignored.
func (cl *Client) leaveFromMatrix(ctx context.Context, msg *bridgev2.MatrixMembershipChange) error {
	if msg.OrigSender != nil || msg.Event == nil || msg.Event.Sender != cl.login.UserMXID {
		return nil
	}
	chat, err := waid.ParsePortalID(msg.Portal.ID)
	if err != nil || !waid.IsSharedChat(chat) {
		return nil
	}
	up, err := cl.main.Bridge.DB.UserPortal.Get(ctx, cl.login.UserLogin, msg.Portal.PortalKey)
	if err != nil {
		return err
	} else if up == nil {
		return nil
	}
	wa := cl.client()
	if wa == nil {
		return certain(ErrNotConnected, event.MessageStatusNetworkError)
	}
	if chat.Server == types.NewsletterServer {
		if err = wa.UnfollowNewsletter(ctx, chat); err != nil {
			return fmt.Errorf("failed to unfollow the WhatsApp channel: %w", err)
		}
		zerolog.Ctx(ctx).Info().Str("login_id", string(cl.login.ID)).Msg("Unfollowed a WhatsApp channel after leaving its portal in Matrix")
		return nil
	}
	if err = wa.LeaveGroup(ctx, chat); err != nil {
		return fmt.Errorf("failed to leave the WhatsApp group: %w", err)
	}
	zerolog.Ctx(ctx).Info().Str("login_id", string(cl.login.ID)).Msg("Left a WhatsApp group after leaving its portal in Matrix")
	return nil
}
