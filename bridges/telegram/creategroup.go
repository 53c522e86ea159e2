package telegram

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Creating a Telegram group from Matrix (the create-group command and the
// provisioning endpoint). The group made is a supergroup, not a basic
// group: a supergroup has one message box shared by its members (one
// portal, no per-account copies to reconcile), takes up to 200 000 members,
// has a description (the room's topic) and admins, and Telegram turns every
// basic group into one as it grows anyway. Every contact is asked about
// through the gateway before anything is created; a contact Telegram will
// not let the staff member add (their privacy settings) is reported back
// as a failed participant, the group created without them.

var _ bridgev2.GroupCreatingNetworkAPI = (*Client)(nil)

// GroupTypeSupergroup is the group type the create-group command and the
// provisioning API create.
const GroupTypeSupergroup = "supergroup"

// Limits of a group created from Matrix.
const (
	maxGroupTitle       = 128
	maxGroupAbout       = 255
	maxCreateMembers    = 200 // one channels.inviteToChannel
	createInviteBatchSz = 50
)

// groupCreation is the create-group capability of the connector.
func groupCreation() map[string]bridgev2.GroupTypeCapabilities {
	return map[string]bridgev2.GroupTypeCapabilities{
		GroupTypeSupergroup: {
			TypeDescription: "a Telegram group (supergroup)",
			Name:            bridgev2.GroupFieldCapability{Allowed: true, Required: true, MaxLength: maxGroupTitle},
			Topic:           bridgev2.GroupFieldCapability{Allowed: true, MaxLength: maxGroupAbout},
			Participants:    bridgev2.GroupFieldCapability{Allowed: true, MaxLength: maxCreateMembers},
		},
	}
}

// CreateGroup implements bridgev2.GroupCreatingNetworkAPI.
func (c *Client) CreateGroup(ctx context.Context, params *bridgev2.GroupCreateParams) (*bridgev2.CreateChatResponse, error) {
	if params.Name == nil || params.Name.Name == "" {
		return nil, errors.New("a Telegram group needs a name")
	}
	if len(params.Participants) > maxCreateMembers {
		return nil, fmt.Errorf("at most %d members can be added when creating a Telegram group", maxCreateMembers)
	}
	// The gateway first, for every contact: nothing is created when one
	// is refused.
	members := make([]int64, 0, len(params.Participants))
	for _, p := range params.Participants {
		userID, err := tgid.ParseUserID(p)
		if err != nil {
			return nil, fmt.Errorf("not a Telegram user: %s", p)
		}
		if userID == c.userID {
			continue
		}
		ident, err := c.DescribeRemoteUser(ctx, p)
		if err != nil {
			return nil, err
		}
		out := remote.Outbound{Kind: remote.OutboundMemberAdd, Login: c.login, Chat: remote.Chat{IsGroup: true, Name: params.Name.Name}, Remote: p, Identity: ident}
		if err := c.main.CheckOutbound(ctx, out); err != nil {
			return nil, err
		}
		members = append(members, userID)
	}
	inputs := make([]tg.InputUserClass, 0, len(members))
	failed := map[networkid.UserID]*bridgev2.CreateChatFailedParticipant{}
	for _, userID := range members {
		in, err := c.inputUser(ctx, userID)
		if err != nil {
			failed[tgid.MakeUserID(userID)] = &bridgev2.CreateChatFailedParticipant{Reason: "this Telegram account has never seen the contact"}
			continue
		}
		inputs = append(inputs, in)
	}
	about := ""
	if params.Topic != nil {
		about = params.Topic.Topic
	}
	ch, portal, created, resp, err := c.createChannel(ctx, params.Name.Name, about)
	if err != nil {
		return nil, err
	}
	// The group's held updates go once this returns (having linked an
	// existing room, when asked) and its room exists.
	defer close(created)
	key := portal.PortalKey
	c.feedUpdates(resp)
	input := &tg.InputChannel{ChannelID: ch.ID, AccessHash: ch.AccessHash}
	log := zerolog.Ctx(ctx).With().Int64("tg_channel_id", ch.ID).Str("login_id", string(c.login.ID)).Logger()
	for start := 0; start < len(inputs); start += createInviteBatchSz {
		batch := inputs[start:min(start+createInviteBatchSz, len(inputs))]
		res, err := callWhenConnected(ctx, c, "invite members", func(ctx context.Context, api *tg.Client) (*tg.MessagesInvitedUsers, error) {
			return api.ChannelsInviteToChannel(ctx, &tg.ChannelsInviteToChannelRequest{Channel: input, Users: batch})
		})
		if err != nil {
			log.Warn().Err(err).Int("members", len(batch)).Msg("Telegram refused to add members to a new group")
			reason := groupRightsError(err, "add this contact").Error()
			for _, in := range batch {
				if u, ok := in.(*tg.InputUser); ok {
					failed[tgid.MakeUserID(u.UserID)] = &bridgev2.CreateChatFailedParticipant{Reason: reason}
				}
			}
			continue
		}
		for _, m := range res.MissingInvitees {
			failed[tgid.MakeUserID(m.UserID)] = &bridgev2.CreateChatFailedParticipant{Reason: "the contact's privacy settings do not let you add them"}
		}
		c.feedUpdates(res.Updates)
	}
	for _, in := range inputs {
		u, ok := in.(*tg.InputUser)
		if !ok {
			continue
		}
		if _, bad := failed[tgid.MakeUserID(u.UserID)]; bad {
			continue
		}
		c.main.Sent(ctx, remote.Outbound{Kind: remote.OutboundMemberAdd, Login: c.login, Chat: remote.Chat{IsGroup: true, Name: ch.Title},
			PortalKey: tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: ch.ID}, c.login.ID),
			Remote:    tgid.MakeUserID(u.UserID), Identity: c.cachedIdentity(u.UserID)})
	}
	log.Info().Int("members", len(inputs)-len(failed)).Msg("Created a Telegram group from Matrix")

	info, err := c.channelChatInfo(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	if params.RoomID != "" && !portal.RoomCreated.IsSet() {
		// The create-group command in an existing room: that room is the
		// portal.
		err = portal.UpdateMatrixRoomID(ctx, params.RoomID, bridgev2.UpdateMatrixRoomIDParams{
			FailIfMXIDSet: true, ChatInfo: info, ChatInfoSource: c.login,
		})
		if err != nil {
			return nil, fmt.Errorf("the Telegram group was created but not linked to this room: %w", err)
		}
	}
	out := &bridgev2.CreateChatResponse{PortalKey: key, Portal: portal, PortalInfo: info}
	if len(failed) > 0 {
		out.FailedParticipants = failed
	}
	return out, nil
}

// createChannel creates the supergroup, marks the login in its portal and
// remembers it as new before any of the group's updates is queued to it:
// Telegram pushes the group's first service messages as soon as it
// exists, and deliver holds them at the creating barrier, then until the
// room exists (awaitNewGroupRoom).
func (c *Client) createChannel(ctx context.Context, title, about string) (*tg.Channel, *bridgev2.Portal, chan struct{}, tg.UpdatesClass, error) {
	c.creating.Lock()
	defer c.creating.Unlock()
	resp, err := callWhenConnected(ctx, c, "create group", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		return api.ChannelsCreateChannel(ctx, &tg.ChannelsCreateChannelRequest{Megagroup: true, Title: title, About: about})
	})
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("telegram did not create the group: %w", err)
	}
	ch := createdChannel(resp)
	if ch == nil {
		return nil, nil, nil, nil, errors.New("telegram did not return the group it created")
	}
	c.rememberChannel(ctx, ch)
	key := tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: ch.ID}, c.login.ID)
	portal, err := c.main.Bridge.GetPortalByKey(ctx, key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c.login.MarkInPortal(ctx, portal)
	created := make(chan struct{})
	c.newGroups.Put(key.ID, &newGroup{portal: portal, created: created})
	return ch, portal, created, resp, nil
}

// newGroup is a group created from Matrix: its portal, and created, closed
// when CreateGroup has returned.
type newGroup struct {
	portal  *bridgev2.Portal
	created chan struct{}
}

// Limits of the wait for a new group's room.
const (
	newGroupsCacheSize = 64
	newGroupRoomWait   = 30 * time.Second
)

// awaitNewGroupRoom holds an update of a group created from Matrix until
// bridgev2 has created its room (or newGroupRoomWait passed): bridgev2
// marks a login in a portal from its queue, reading the portal's room ID
// unlocked, and the room creation that follows CreateGroup writes it (it
// also forgets which logins it marked when it makes the room).
func (c *Client) awaitNewGroupRoom(ctx context.Context, key networkid.PortalKey) {
	group, ok := c.newGroups.Get(key.ID)
	if !ok {
		return
	}
	timer := time.NewTimer(newGroupRoomWait)
	defer timer.Stop()
	select {
	case <-group.created:
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	if !group.portal.RoomCreated.WaitTimeout(newGroupRoomWait) {
		zerolog.Ctx(ctx).Warn().Msg("The room of a group created from Matrix was not made in time; bridging its updates anyway")
	}
	c.newGroups.Remove(key.ID)
}

// createdChannel finds the channel in the answer to channels.createChannel.
func createdChannel(resp tg.UpdatesClass) *tg.Channel {
	var chats []tg.ChatClass
	switch r := resp.(type) {
	case *tg.Updates:
		chats = r.Chats
	case *tg.UpdatesCombined:
		chats = r.Chats
	}
	for _, chat := range chats {
		if ch, ok := chat.(*tg.Channel); ok && !ch.Min {
			return ch
		}
	}
	return nil
}
