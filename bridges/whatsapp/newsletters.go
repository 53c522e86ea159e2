package whatsapp

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/ptr"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// Newsletters (WhatsApp channels) are read-only here: a channel a staff
// member follows is one portal shared by every login that follows it (no
// receiver), its posts come from the channel's own ghost and are bridged
// once, and Matrix users cannot write in it (events_default above their
// level, and a Matrix message is refused with a notice). Its name,
// description and picture come from the channel's metadata.

// ErrReadOnlyNewsletter is returned for a Matrix event in the portal of a
// WhatsApp channel.
var ErrReadOnlyNewsletter = errors.New("WhatsApp channels are read-only here: only the channel's admins post, on WhatsApp; nothing was sent")

// maxNewsletters caps the channels one connection syncs at connect.
const maxNewsletters = 500

// newsletterName is what the connector knows of a channel's name: from the
// metadata it saw, else from its portal, else from one metadata query
// (bounded by groupInfoTimeout).
func (cl *Client) newsletterName(ctx context.Context, jid types.JID) string {
	if name, ok := cl.rememberedGroupName(jid); ok {
		return name
	}
	if key, err := waid.MakePortalKey(jid, ""); err == nil {
		if portal, err := cl.main.Bridge.DB.Portal.GetByKey(ctx, key); err == nil && portal != nil && portal.Name != "" {
			return portal.Name
		}
	}
	if md := cl.newsletterInfo(ctx, jid); md != nil {
		return md.ThreadMeta.Name.Text
	}
	return ""
}

// newsletterInfo asks WhatsApp for a channel's metadata and remembers its
// name; nil when it did not answer.
func (cl *Client) newsletterInfo(ctx context.Context, jid types.JID) *types.NewsletterMetadata {
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, groupInfoTimeout)
	defer cancel()
	md, err := wa.GetNewsletterInfo(ctx, jid)
	if err != nil || md == nil {
		cl.log.Debug().Err(err).Msg("Failed to get a newsletter's metadata")
		return nil
	}
	cl.rememberGroupName(jid, md.ThreadMeta.Name.Text)
	return md
}

// newsletterAvatar is the picture of a channel's metadata.
func (cl *Client) newsletterAvatar(md *types.NewsletterMetadata) *bridgev2.Avatar {
	pic := md.ThreadMeta.Picture
	if pic == nil || pic.URL == "" {
		return &bridgev2.Avatar{Remove: true}
	}
	url := pic.URL
	return &bridgev2.Avatar{ID: networkid.AvatarID(pic.ID), Get: func(ctx context.Context) ([]byte, error) {
		return cl.main.downloadPicture(ctx, url)
	}}
}

// newsletterChatInfo describes a channel's portal from its metadata.
func (cl *Client) newsletterChatInfo(ctx context.Context, portal *bridgev2.Portal, jid types.JID) (*bridgev2.ChatInfo, error) {
	md := cl.newsletterInfo(ctx, jid)
	if md == nil {
		if portal.MXID != "" {
			return nil, errors.New("failed to get the newsletter's metadata")
		}
		md = &types.NewsletterMetadata{ID: jid}
		md.ThreadMeta.Name.Text = "WhatsApp channel"
	}
	return cl.newsletterChatInfoFrom(md), nil
}

// newsletterChatInfoFrom describes a channel's portal: the staff member and
// the channel's ghost (who posts) in it, everyone else below the level to
// send or to change the room's name, topic and picture. The bot keeps 100.
func (cl *Client) newsletterChatInfoFrom(md *types.NewsletterMetadata) *bridgev2.ChatInfo {
	self, selfMember := cl.selfMember()
	ghostID, _ := waid.MakeUserID(md.ID)
	level := adminPowerLevel
	members := &bridgev2.ChatMemberList{
		MemberMap: bridgev2.ChatMemberMap{
			self: selfMember,
			ghostID: {
				EventSender: bridgev2.EventSender{Sender: ghostID},
				Membership:  event.MembershipJoin,
				PowerLevel:  ptr.Ptr(ownerPowerLevel),
			},
		},
		PowerLevels: &bridgev2.PowerLevelOverrides{
			EventsDefault: &level,
			Events: map[event.Type]int{
				event.StateRoomName: level, event.StateTopic: level, event.StateRoomAvatar: level,
			},
		},
	}
	name := md.ThreadMeta.Name.Text
	roomType := database.RoomTypeDefault
	info := &bridgev2.ChatInfo{
		Name:    &name,
		Topic:   ptr.Ptr(md.ThreadMeta.Description.Text),
		Type:    &roomType,
		Members: members,
		ExtraUpdates: func(ctx context.Context, p *bridgev2.Portal) bool {
			meta.Get[waid.PortalMetadata](p.Metadata).LastSync = time.Now().Unix()
			if _, err := cl.main.Bridge.DB.UserPortal.GetOrCreate(ctx, cl.login.UserLogin, p.PortalKey); err != nil {
				zerolog.Ctx(ctx).Err(err).Msg("Failed to mark a login in a newsletter portal")
			}
			return true
		},
	}
	if md.ThreadMeta.Name.Text != "" {
		cl.rememberGroupName(md.ID, name)
		info.Avatar = cl.newsletterAvatar(md)
	}
	return info
}

// newsletterUserInfo is the ghost of a channel: its name and picture.
func (cl *Client) newsletterUserInfo(ctx context.Context, jid types.JID) *bridgev2.UserInfo {
	info := &bridgev2.UserInfo{}
	if md := cl.newsletterInfo(ctx, jid); md != nil {
		info.Name = ptr.Ptr(md.ThreadMeta.Name.Text)
		info.Avatar = cl.newsletterAvatar(md)
	} else if name := cl.newsletterName(ctx, jid); name != "" {
		info.Name = &name
	}
	info.IsBot = ptr.Ptr(true)
	return info
}

// newsletterChat is what the gate sees of a channel: governed like a group,
// with its name.
func (cl *Client) newsletterChat(ctx context.Context, jid types.JID) remote.Chat {
	return remote.Chat{IsGroup: true, Name: cl.newsletterName(ctx, jid)}
}

// resyncNewsletter brings a channel's portal up to date from metadata the
// connector already has (a join event, the list of followed channels), and
// creates it when create is set.
func (cl *Client) resyncNewsletter(ctx context.Context, md *types.NewsletterMetadata, create bool) {
	portalKey, err := waid.MakePortalKey(md.ID, cl.login.ID)
	if err != nil {
		return
	}
	cl.rememberGroupName(md.ID, md.ThreadMeta.Name.Text)
	info := cl.newsletterChatInfoFrom(md)
	defer cl.main.lockGroup(md.ID)()
	cl.deliver(ctx, &chatResync{
		portalKey: portalKey, create: create, info: info,
		chat: remote.Chat{IsGroup: true, Name: md.ThreadMeta.Name.Text},
	})
}

// syncNewsletters makes or updates the portals of the channels the account
// follows, on a new connection (channel metadata changes are not pushed to
// followers).
func (cl *Client) syncNewsletters(ctx context.Context) {
	wa := cl.client()
	if wa == nil {
		return
	}
	list, err := wa.GetSubscribedNewsletters(ctx)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to list the followed WhatsApp channels")
		return
	}
	followed := make(map[networkid.PortalID]bool, len(list))
	for i, md := range list {
		if i >= maxNewsletters || ctx.Err() != nil {
			return
		}
		if md != nil && md.ID.Server == types.NewsletterServer {
			cl.resyncNewsletter(ctx, md, true)
			if id, err := waid.MakePortalID(md.ID); err == nil {
				followed[id] = true
			}
		}
	}
	// Channels unfollowed while the connection was away (their leave
	// notification may have expired): the staff member leaves their portals.
	ups, err := cl.main.Bridge.DB.UserPortal.GetAllForLogin(ctx, cl.login.UserLogin)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to list the login's portals to find unfollowed channels")
		return
	}
	for _, up := range ups {
		if !waid.IsNewsletterPortal(up.Portal.ID) || followed[up.Portal.ID] {
			continue
		}
		if jid, err := waid.ParsePortalID(up.Portal.ID); err == nil {
			cl.leftGroup(ctx, jid, time.Now())
		}
	}
}

// handleNewsletterEvent handles following and unfollowing a channel from
// the staff member's phone.
func (cl *Client) handleNewsletterEvent(ctx context.Context, evt any) {
	switch evt := evt.(type) {
	case *events.NewsletterJoin:
		cl.resyncNewsletter(ctx, &evt.NewsletterMetadata, true)
	case *events.NewsletterLeave:
		cl.leftGroup(ctx, evt.ID, time.Now())
	}
}

// chatResync is a chat resync whose info the connector already has, and
// which the gate sees described.
type chatResync struct {
	portalKey networkid.PortalKey
	create    bool
	info      *bridgev2.ChatInfo
	chat      remote.Chat
}

var (
	_ bridgev2.RemoteChatResyncWithInfo = (*chatResync)(nil)
	_ remote.Described                  = (*chatResync)(nil)
)

func (r *chatResync) GetType() bridgev2.RemoteEventType { return bridgev2.RemoteEventChatResync }
func (r *chatResync) GetPortalKey() networkid.PortalKey { return r.portalKey }
func (r *chatResync) AddLogContext(c zerolog.Context) zerolog.Context {
	return c
}
func (r *chatResync) GetSender() bridgev2.EventSender { return bridgev2.EventSender{} }
func (r *chatResync) ShouldCreatePortal() bool        { return r.create }
func (r *chatResync) GetChatInfo(context.Context, *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	return r.info, nil
}
func (r *chatResync) RemoteChat() remote.Chat       { return r.chat }
func (r *chatResync) RemoteSender() remote.Identity { return remote.Identity{} }
