package whatsapp

import (
	"context"

	"go.mau.fi/util/ptr"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// memberChanges shows the members who joined, left or were removed on
// WhatsApp as it happened, before the group is resynced: a member removed
// by an admin is kicked by the admin's ghost (WhatsApp has no ban: a
// removal is a kick), one who left leaves by themselves, one added or
// joining from a link joins. A change already in the room (made from
// Matrix, or brought by another staff member's login) is not repeated.
// Staff members' joining and leaving (the account's own and other logins')
// are left to the resync and to each login's leftGroup, which also marks
// the login in or out of the portal.
func (cl *Client) memberChanges(ctx context.Context, evt *events.GroupInfo) {
	if len(evt.Join) == 0 && len(evt.Leave) == 0 {
		return
	}
	portalKey, err := waid.MakePortalKey(evt.JID, cl.login.ID)
	if err != nil {
		return
	}
	// The database's copy: the cached portal's room ID is written by its
	// event loop while it creates the room.
	// A community's space holds staff members only (communityChatInfo).
	if portal, err := cl.main.Bridge.DB.Portal.GetByKey(ctx, portalKey); err != nil || portal == nil || portal.MXID == "" ||
		portal.RoomType == database.RoomTypeSpace {
		return
	}
	var sender bridgev2.EventSender
	if evt.Sender != nil {
		actor := cl.preferPN(ctx, *evt.Sender, ptr.Val(evt.SenderPN))
		if cl.isMe(actor) {
			_, self := cl.selfMember()
			sender = self.EventSender
		} else if id, err := waid.MakeUserID(actor); err == nil {
			sender.Sender = id
		}
	}
	members := bridgev2.ChatMemberMap{}
	add := func(jids []types.JID, membership, prev event.Membership) {
		for _, jid := range jids {
			jid = cl.preferPN(ctx, jid, types.EmptyJID)
			if cl.isMe(jid) {
				continue
			}
			id, err := waid.MakeUserID(jid)
			if err != nil {
				continue
			}
			if cl.main.Bridge.GetCachedUserLoginByID(networkid.UserLoginID(id)) != nil {
				// A staff member: their own login takes them out of the
				// portal (leftGroup), and the resync marks them in it.
				continue
			}
			members[id] = bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: id}, Membership: membership, PrevMembership: prev}
		}
	}
	add(evt.Join, event.MembershipJoin, "")
	add(evt.Leave, event.MembershipLeave, event.MembershipJoin)
	if len(members) == 0 {
		return
	}
	defer cl.main.lockGroup(evt.JID)()
	cl.deliver(ctx, &simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type: bridgev2.RemoteEventChatInfoChange, PortalKey: portalKey, Sender: sender, Timestamp: evt.Timestamp,
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{MemberChanges: &bridgev2.ChatMemberList{MemberMap: members}},
	})
}
