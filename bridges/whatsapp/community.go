package whatsapp

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/lru"
)

// A WhatsApp community is a Matrix space: its parent group (where nobody
// writes) is a portal of room type space, shared like a group, and each
// linked group's portal (the announcement group included) names it as its
// parent, so that bridgev2 adds the group to the space as a child. The
// space is made through the governance gate like any portal: a linked group
// is put in the space only once the space exists; when it does not yet,
// the connector asks for it once (a resync of the community through the
// gate) before the group's portal is made.

// ErrSpaceRoom is returned for a Matrix message in a community's space.
var ErrSpaceRoom = errors.New("this room is the space of a WhatsApp community: write in one of its groups")

// communityTriedCap bounds the communities a login remembers having asked
// for.
const communityTriedCap = 1000

// communityChatInfo describes a community's space: its name, description
// and picture, with the staff members whose account is in it.
func (cl *Client) communityChatInfo(ctx context.Context, chat types.JID, info *types.GroupInfo) *bridgev2.ChatInfo {
	self, selfMember := cl.selfMember()
	members := &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{self: selfMember}}
	var staff []*bridgev2.UserLogin
	for _, p := range info.Participants {
		jid := p.JID
		if p.PhoneNumber.Server == types.DefaultUserServer {
			jid = p.PhoneNumber
		}
		userID, err := waid.MakeUserID(jid)
		if err != nil || userID == self {
			continue
		}
		if other := cl.main.Bridge.GetCachedUserLoginByID(networkid.UserLoginID(userID)); other != nil {
			members.MemberMap[userID] = bridgev2.ChatMember{
				EventSender: bridgev2.EventSender{Sender: userID, SenderLogin: other.ID},
				Membership:  event.MembershipJoin,
			}
			staff = append(staff, other)
		}
	}
	roomType := database.RoomTypeSpace
	chatInfo := &bridgev2.ChatInfo{
		Name:    &info.Name,
		Type:    &roomType,
		Members: members,
		ExtraUpdates: func(ctx context.Context, p *bridgev2.Portal) bool {
			for _, login := range append(staff, cl.login) {
				if _, err := cl.main.Bridge.DB.UserPortal.GetOrCreate(ctx, login.UserLogin, p.PortalKey); err != nil {
					zerolog.Ctx(ctx).Err(err).Msg("Failed to mark a staff login in a community space")
				}
			}
			return false
		},
	}
	if info.Topic != "" {
		chatInfo.Topic = &info.Topic
	}
	chatInfo.Avatar = cl.avatarOf(ctx, chat)
	return chatInfo
}

// communityParent is the parent to give a linked group's portal: the
// community's space. When the space does not exist yet, it is asked for
// once (a resync of the community through the gate, bounded by
// groupInfoTimeout), before the group's portal is made: a portal given its
// parent at creation goes straight into the space (bridgev2 would otherwise
// add a new portal to the personal filtering spaces in the background,
// racing a parent set just after). The community's resync is not
// serialised with lockGroup: the caller may hold the lock of the group,
// which can be the same one.
func (cl *Client) communityParent(ctx context.Context, parent types.JID) *networkid.PortalID {
	key, err := waid.MakePortalKey(parent, cl.login.ID)
	if err != nil {
		return nil
	}
	exists := func() bool {
		// The database's copy: the cached portal's room ID is written by
		// its event loop while it creates the room.
		p, err := cl.main.Bridge.DB.Portal.GetByKey(ctx, key)
		return err == nil && p != nil && p.MXID != ""
	}
	if exists() {
		return &key.ID
	}
	if _, tried := cl.communitiesTried.Get(parent); tried {
		return nil
	}
	cl.communitiesTried.Put(parent, struct{}{})
	resyncCtx, cancel := context.WithTimeout(ctx, groupInfoTimeout)
	defer cancel()
	// In the creation turn of the group whose portal is being made.
	cl.deliverInTurn(resyncCtx, &simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type: bridgev2.RemoteEventChatResync, PortalKey: key, CreatePortal: true, Timestamp: time.Now(),
		},
		GetChatInfoFunc: cl.GetChatInfo,
	})
	if exists() {
		return &key.ID
	}
	return nil
}

// newCommunitiesTried makes the memory of communities asked for.
func newCommunitiesTried() *lru.Cache[types.JID, struct{}] {
	return lru.New[types.JID, struct{}](communityTriedCap)
}
