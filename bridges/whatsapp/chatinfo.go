package whatsapp

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/ptr"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// Matrix power levels of WhatsApp group roles: below the organisation's
// admins, who keep 100. An announce-only group needs adminPowerLevel to
// send; a locked group needs it to change the name, topic and avatar.
const (
	adminPowerLevel = 50
	ownerPowerLevel = 75
)

// groupPowerLevels are the room's levels for a group's settings.
func groupPowerLevels(info *types.GroupInfo) *bridgev2.PowerLevelOverrides {
	send, edit := 0, 0
	if info.IsAnnounce {
		send = adminPowerLevel
	}
	if info.IsLocked {
		edit = adminPowerLevel
	}
	return &bridgev2.PowerLevelOverrides{
		EventsDefault: &send,
		Events: map[event.Type]int{
			event.StateRoomName: edit, event.StateTopic: edit, event.StateRoomAvatar: edit,
		},
	}
}

// GetChatInfo implements bridgev2.NetworkAPI: direct chats from their IDs,
// groups from WhatsApp's group info.
func (cl *Client) GetChatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	info, err := cl.chatInfo(ctx, portal)
	if err == nil && info != nil {
		remote.PrimeMembers(ctx, cl.login, info.Members)
	}
	return info, err
}

// chatInfo is GetChatInfo before the members' ghosts are primed.
func (cl *Client) chatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	chat, err := waid.ParsePortalID(portal.ID)
	if err != nil {
		return nil, err
	}
	if chat == types.StatusBroadcastJID {
		return cl.statusChatInfo(), nil
	}
	if chat.Server == types.NewsletterServer {
		return cl.newsletterChatInfo(ctx, portal, chat)
	}
	if chat.Server != types.GroupServer {
		info := cl.dmChatInfo(chat)
		info.CanBackfill = cl.canBackfill()
		return info, nil
	}
	info, err := cl.groupChatInfo(ctx, portal, chat)
	if info != nil {
		info.CanBackfill = cl.canBackfill()
	}
	return info, err
}

func (cl *Client) selfMember() (networkid.UserID, bridgev2.ChatMember) {
	self, _ := waid.MakeUserID(cl.jid)
	return self, bridgev2.ChatMember{
		EventSender: bridgev2.EventSender{IsFromMe: true, SenderLogin: cl.login.ID, Sender: self},
		Membership:  event.MembershipJoin,
	}
}

// dmChatInfo describes the direct chat with a WhatsApp user.
func (cl *Client) dmChatInfo(other types.JID) *bridgev2.ChatInfo {
	self, selfMember := cl.selfMember()
	otherID, _ := waid.MakeUserID(other)
	members := &bridgev2.ChatMemberList{
		IsFull:      true,
		OtherUserID: otherID,
		MemberMap:   bridgev2.ChatMemberMap{self: selfMember},
	}
	if otherID != self {
		members.MemberMap[otherID] = bridgev2.ChatMember{
			EventSender: bridgev2.EventSender{Sender: otherID},
			Membership:  event.MembershipJoin,
		}
	}
	roomType := database.RoomTypeDM
	return &bridgev2.ChatInfo{Members: members, Type: &roomType}
}

// groupChatInfo fetches a group's name, topic and members. When WhatsApp
// does not answer, the portal is still made, named after the group ID, and
// the user is told.
func (cl *Client) groupChatInfo(ctx context.Context, portal *bridgev2.Portal, chat types.JID) (*bridgev2.ChatInfo, error) {
	wa := cl.client()
	if wa == nil {
		return nil, ErrNotConnected
	}
	info, err := wa.GetGroupInfo(ctx, chat)
	if err != nil {
		cl.log.Warn().Err(err).Msg("Failed to get group info")
		if portal.MXID != "" {
			return nil, fmt.Errorf("failed to get group info: %w", err)
		}
		cl.sendNotice(ctx, "A message arrived from a WhatsApp group whose details WhatsApp did not give ("+err.Error()+"); the room was created without its name and members.")
		name := "WhatsApp group"
		self, selfMember := cl.selfMember()
		roomType := database.RoomTypeDefault
		return &bridgev2.ChatInfo{Name: &name, Type: &roomType, Members: &bridgev2.ChatMemberList{
			MemberMap: bridgev2.ChatMemberMap{self: selfMember},
		}}, nil
	}
	cl.rememberGroupName(chat, info.Name)
	if info.IsParent {
		return cl.communityChatInfo(ctx, chat, info), nil
	}
	cl.rememberGroupMembers(chat, info.Participants) // the gate's view follows membership changes
	self, selfMember := cl.selfMember()
	members := &bridgev2.ChatMemberList{
		IsFull:           true,
		CheckAllLogins:   true,
		TotalMemberCount: len(info.Participants),
		MemberMap:        bridgev2.ChatMemberMap{},
		PowerLevels:      groupPowerLevels(info),
	}
	// Staff members whose linked account is in the group: invited to the
	// shared portal, and their login marked in it (Matrix → WhatsApp goes
	// out through the sender's own login).
	var staff []*bridgev2.UserLogin
	for _, p := range info.Participants {
		jid := p.JID
		if jid.Server == types.HiddenUserServer && p.PhoneNumber.Server == types.DefaultUserServer {
			jid = p.PhoneNumber
		} else if jid.Server == types.HiddenUserServer {
			jid = cl.preferPN(ctx, jid, types.EmptyJID)
		}
		userID, err := waid.MakeUserID(jid)
		if err != nil {
			continue
		}
		var member bridgev2.ChatMember
		if jid.ToNonAD() == cl.jid || userID == self {
			member = selfMember
		} else {
			member = bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: userID}, Membership: event.MembershipJoin}
			if other := cl.main.Bridge.GetCachedUserLoginByID(networkid.UserLoginID(userID)); other != nil {
				member.SenderLogin = other.ID
				staff = append(staff, other)
			}
		}
		switch {
		case p.IsSuperAdmin:
			member.PowerLevel = ptr.Ptr(ownerPowerLevel)
		case p.IsAdmin:
			member.PowerLevel = ptr.Ptr(adminPowerLevel)
		case member.SenderLogin == "":
			// A contact's level follows a demotion; a staff member's
			// Matrix level (which may be the organisation's) is left.
			member.PowerLevel = ptr.Ptr(0)
		}
		members.MemberMap[userID] = member
	}
	if _, ok := members.MemberMap[self]; !ok {
		members.MemberMap[self] = selfMember
	}
	roomType := database.RoomTypeDefault
	chatInfo := &bridgev2.ChatInfo{
		Name:    &info.Name,
		Type:    &roomType,
		Members: members,
		ExtraUpdates: func(ctx context.Context, p *bridgev2.Portal) bool {
			meta.Get[waid.PortalMetadata](p.Metadata).LastSync = time.Now().Unix()
			for _, login := range append(staff, cl.login) {
				if _, err := cl.main.Bridge.DB.UserPortal.GetOrCreate(ctx, login.UserLogin, p.PortalKey); err != nil {
					zerolog.Ctx(ctx).Err(err).Msg("Failed to mark a staff login in a group portal")
				}
			}
			return true
		},
	}
	if info.Topic != "" {
		chatInfo.Topic = &info.Topic
	}
	if !info.LinkedParentJID.IsEmpty() {
		chatInfo.ParentID = cl.communityParent(ctx, info.LinkedParentJID)
	}
	chatInfo.Avatar = cl.avatarOf(ctx, chat)
	return chatInfo, nil
}

// StatusRoomName names the room of contacts' status updates.
const StatusRoomName = "WhatsApp status updates"

// statusChatInfo describes the read-only room of contacts' status updates:
// only the bridge posts (the posters' ghosts join as they post).
func (cl *Client) statusChatInfo() *bridgev2.ChatInfo {
	self, selfMember := cl.selfMember()
	name, topic := StatusRoomName, "Status updates of your WhatsApp contacts (read-only)"
	roomType := database.RoomTypeDefault
	return &bridgev2.ChatInfo{Name: &name, Topic: &topic, Type: &roomType, Members: &bridgev2.ChatMemberList{
		MemberMap:   bridgev2.ChatMemberMap{self: selfMember},
		PowerLevels: &bridgev2.PowerLevelOverrides{EventsDefault: ptr.Ptr(adminPowerLevel)},
	}}
}
