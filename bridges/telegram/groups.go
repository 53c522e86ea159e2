package telegram

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Supergroups and broadcast channels share Telegram's channel model: one
// message box per channel (the same message IDs for every member), so one
// portal per channel, without receiver, shared by every staff member whose
// login is in it. A message that several logins receive has one message ID
// and is bridged once (bridgev2 drops the later copies as duplicates).

const (
	// DefaultMemberSyncLimit is how many members of a group are synced into
	// its portal when it is created; members who write are added as they
	// write.
	DefaultMemberSyncLimit = 200
	channelCacheSize       = 1024
	// channelMembersCacheSize caps the groups whose members are kept.
	channelMembersCacheSize = 256

	// Power levels of Telegram admins: below the organisation's admins (100).
	powerCreator = 75
	powerAdmin   = 50
)

var (
	_ bridgev2.MembershipHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.RoomNameHandlingNetworkAPI   = (*Client)(nil)
	_ bridgev2.RoomTopicHandlingNetworkAPI  = (*Client)(nil)
)

func (c *Client) memberSyncLimit() int {
	if n := c.main.Config.MemberSyncLimit; n > 0 {
		return n
	}
	return DefaultMemberSyncLimit
}

// rememberChannels caches the channels an update names and records their
// access hashes for this account.
func (c *Client) rememberChannels(ctx context.Context, chats map[int64]*tg.Channel) {
	for _, ch := range chats {
		c.rememberChannel(ctx, ch)
	}
}

func (c *Client) rememberChannel(ctx context.Context, ch *tg.Channel) {
	if ch == nil || ch.Min {
		return
	}
	c.channels.Put(ch.ID, ch)
	if ch.AccessHash != 0 {
		if err := c.main.Store.ChannelAccessHasher().SetChannelAccessHash(ctx, c.userID, ch.ID, ch.AccessHash); err != nil {
			zerolog.Ctx(ctx).Err(err).Int64("tg_channel_id", ch.ID).Msg("Failed to store channel access hash")
		}
	}
}

// channelFirstSightWindow is how many pts before its first update a channel
// the account has no state for is fetched from.
const channelFirstSightWindow = 20

// newChannelSeeder returns what gives a channel seen for the first time a
// stored pts a little before its first update. gotd handles each incoming
// message on its own goroutine, so the first updates of a new channel can
// reach the updates manager out of order; the manager starts a channel's
// sequence at the first update it gets and would drop an earlier one as
// outdated. From the seeded pts, its first getChannelDifference fetches
// them all, in order (bridgev2 drops what was already bridged).
func (c *Client) newChannelSeeder(storage updates.StateStorage) func(ctx context.Context, u tg.UpdatesClass) {
	var mu sync.Mutex
	seen := map[int64]bool{}
	return func(ctx context.Context, u tg.UpdatesClass) {
		var list []tg.UpdateClass
		switch v := u.(type) {
		case *tg.Updates:
			list = v.Updates
		case *tg.UpdatesCombined:
			list = v.Updates
		case *tg.UpdateShort:
			list = []tg.UpdateClass{v.Update}
		}
		for _, upd := range list {
			channelID, pts, count, ok, err := tg.IsChannelPtsUpdate(upd)
			if err != nil || !ok {
				continue
			}
			mu.Lock()
			if len(seen) >= channelCacheSize {
				clear(seen) // the stored pts tells seen channels anyway
			}
			if !seen[channelID] {
				seen[channelID] = true
				if _, found, err := storage.GetChannelPts(ctx, c.userID, channelID); err == nil && !found {
					start := max(pts-count-channelFirstSightWindow, 1)
					if err := storage.SetChannelPts(ctx, c.userID, channelID, start); err != nil {
						zerolog.Ctx(ctx).Err(err).Int64("tg_channel_id", channelID).Msg("Failed to seed channel pts")
					}
				}
			}
			mu.Unlock()
		}
	}
}

// signPost shows the signature of a channel post (post_author): the post
// comes from the channel's ghost, with the author as its per-message
// profile.
func signPost(parts []*bridgev2.ConvertedMessagePart, msg *tg.Message) {
	author, ok := msg.GetPostAuthor()
	if !ok || author == "" {
		return
	}
	for _, p := range parts {
		if p.Content != nil {
			p.Content.BeeperPerMessageProfile = &event.BeeperPerMessageProfile{ID: "telegram.post_author." + author, Displayname: author}
		}
	}
}

// sharedPortalStripes is how many locks serialize the deliveries of the
// logins to shared (group) portals.
const sharedPortalStripes = 64

// deliver hands evt to the gateway's queue. Events of a shared portal are
// handed over one login at a time: every login in a group receives its
// messages, and bridgev2 does not expect two logins to queue events to one
// portal while it creates the room (it marks the login in the portal
// unsynchronised with the creation).
func (c *Client) deliver(ctx context.Context, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
	if c.leftGroupEvent(evt) {
		zerolog.Ctx(ctx).Debug().Stringer("event_type", evt.GetType()).Msg("Ignoring an event of a group this account left from Matrix")
		return bridgev2.EventHandlingResult{Ignored: true}
	}
	key := evt.GetPortalKey()
	if key.Receiver == "" {
		// A group being created from Matrix: its updates wait until the
		// login is marked in its portal (createChannel) and its room
		// exists.
		c.creating.RLock()
		//lint:ignore SA2001 a barrier, not a critical section
		c.creating.RUnlock()
		c.awaitNewGroupRoom(ctx, key)
	}
	if remote.CreatesPortal(ctx, c.main.Bridge, evt) {
		// One portal created at a time: bridgev2 reads the members'
		// ghosts without their lock while it creates a room, and two
		// rooms made at once (a direct chat and a group with the same
		// contact, of one login or two) would write and read one ghost
		// together. Chats whose room exists do not wait.
		c.main.portalCreation.Lock()
		defer c.main.portalCreation.Unlock()
	}
	if key.Receiver == "" {
		h := fnv.New32a()
		h.Write([]byte(key.ID))
		mu := &c.main.sharedPortalLocks[h.Sum32()%sharedPortalStripes]
		mu.Lock()
		defer mu.Unlock()
	}
	if writesGhosts(evt) {
		c.main.profiles.Lock()
		defer c.main.profiles.Unlock()
	} else {
		c.main.profiles.RLock()
		defer c.main.profiles.RUnlock()
	}
	return c.main.Deliver(ctx, c.login, evt)
}

// writesGhosts tells whether bridgev2 may write ghosts other than the
// sender's while it handles evt: a chat's resync or info change updates its
// members' profiles (syncParticipants), while the other chats' messages
// read their senders' ghosts without the ghosts' lock (remote.Direct).
func writesGhosts(evt bridgev2.RemoteEvent) bool {
	switch evt.GetType() {
	case bridgev2.RemoteEventChatResync, bridgev2.RemoteEventChatInfoChange:
		return true
	}
	return false
}

// groupEditsCacheSize caps the remembered group edits.
const groupEditsCacheSize = 4096

// receiverOf is the receiver of the portal (and message rows) of a chat or
// message box: none for channels and basic groups, shared by every login in
// them.
func (c *Client) receiverOf(box tgid.Peer) networkid.UserLoginID {
	if box.Type == tgid.PeerChannel || box.Type == tgid.PeerChat {
		return ""
	}
	return c.login.ID
}

// firstGroupEdit tells whether this login is the first to hand this edit of
// a channel message to the bridge: every login in the group receives it.
func (c *Client) firstGroupEdit(msg *tg.Message, id networkid.MessageID) bool {
	switch msg.PeerID.(type) {
	case *tg.PeerChannel, *tg.PeerChat:
	default:
		return true
	}
	key := string(id) + "@" + strconv.Itoa(msg.EditDate)
	c.main.groupEditsMu.Lock()
	defer c.main.groupEditsMu.Unlock()
	if _, seen := c.main.groupEdits.Get(key); seen {
		return false
	}
	c.main.groupEdits.Put(key, true)
	return true
}

// channelChat describes a channel from the caches: its title and the
// members the connector knows (the staff member's own account left out).
func (c *Client) channelChat(id int64) remote.Chat {
	chat := remote.Chat{IsGroup: true}
	if ch, ok := c.channels.Get(id); ok {
		chat.Name = ch.Title
	}
	if members, ok := c.channelMembers.Get(id); ok {
		for _, m := range members {
			if m != c.userID {
				chat.Members = append(chat.Members, c.cachedIdentity(m))
			}
		}
	}
	return chat
}

// rememberMembers keeps the members of a channel seen in a participants
// page (at most remote.MaxChatMembers), for the gate's rules on members.
func (c *Client) rememberMembers(channelID int64, ids []int64) {
	old, _ := c.channelMembers.Get(channelID)
	seen := make(map[int64]bool, len(old))
	merged := append([]int64(nil), old...)
	for _, id := range old {
		seen[id] = true
	}
	for _, id := range ids {
		if !seen[id] && len(merged) < remote.MaxChatMembers {
			seen[id] = true
			merged = append(merged, id)
		}
	}
	c.channelMembers.Put(channelID, merged)
}

// ensureMembers fetches, once, the first members of a channel the
// connector has no members for, so that the gate sees them from the
// group's first event. A failure leaves the description without them.
func (c *Client) ensureMembers(ctx context.Context, channelID int64) {
	if _, ok := c.channelMembers.Get(channelID); ok {
		return
	}
	input, err := c.inputChannel(ctx, channelID)
	if err != nil {
		return
	}
	api := c.api.Load()
	if api == nil {
		return
	}
	res, err := api.ChannelsGetParticipants(ctx, &tg.ChannelsGetParticipantsRequest{
		Channel: input, Filter: &tg.ChannelParticipantsRecent{}, Limit: min(c.memberSyncLimit(), 200, remote.MaxChatMembers),
	})
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Int64("tg_channel_id", channelID).Msg("Failed to get the members of a group to describe it")
		c.channelMembers.Put(channelID, nil)
		return
	}
	if page, ok := res.(*tg.ChannelsChannelParticipants); ok {
		c.rememberParticipants(ctx, channelID, page)
	}
}

func (c *Client) rememberParticipants(ctx context.Context, channelID int64, page *tg.ChannelsChannelParticipants) {
	// Their access hashes too: a member can then be mentioned, removed or
	// invited back from Matrix.
	c.rememberEntities(ctx, tg.Entities{Users: usersOf(page.Users)})
	ids := make([]int64, 0, len(page.Participants))
	for _, p := range page.Participants {
		if id, _ := participantLevel(p); id != 0 {
			ids = append(ids, id)
		}
	}
	c.rememberMembers(channelID, ids)
}

// inputChannel returns the InputChannel of a channel this account is in.
func (c *Client) inputChannel(ctx context.Context, channelID int64) (*tg.InputChannel, error) {
	hash, found, err := c.main.Store.ChannelAccessHasher().GetChannelAccessHash(ctx, c.userID, channelID)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotInGroup
	}
	if ch, ok := c.channels.Get(channelID); ok && ch.Left {
		return nil, errNotInGroup
	}
	return &tg.InputChannel{ChannelID: channelID, AccessHash: hash}, nil
}

// errNotInGroup: the Matrix user's Telegram account is not in the group of
// the portal.
var errNotInGroup = errors.New("your Telegram account is not a member of this Telegram group")

// relayIfBot makes a bot login the relay of the group portals it bridges,
// when the bridge's relay mode is on and the portal has no relay yet: staff
// without a login in the group then write through the organisation's bot,
// their name in front (bridgev2's relay message format).
func (c *Client) relayIfBot(ctx context.Context, key networkid.PortalKey) {
	if !c.main.Bridge.Config.Relay.Enabled {
		return
	}
	if self, ok := c.users.get(c.userID); !ok || !self.Bot {
		return
	}
	portal, err := c.main.Bridge.GetExistingPortalByKey(ctx, key)
	if err != nil || portal == nil || portal.Relay != nil {
		return
	}
	if err := portal.SetRelay(ctx, c.login); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to make the bot the relay of a group portal")
		return
	}
	zerolog.Ctx(ctx).Info().Str("login_id", string(c.login.ID)).Msg("The bot login is now the relay of a group portal")
}

// canPost refuses a post in a broadcast channel where this account is not
// an admin allowed to post.
func (c *Client) canPost(peer tgid.Peer) error {
	if peer.Type != tgid.PeerChannel {
		return nil
	}
	ch, ok := c.channels.Get(peer.ID)
	if !ok || !ch.Broadcast || ch.Creator {
		return nil
	}
	if rights, ok := ch.GetAdminRights(); ok && rights.PostMessages {
		return nil
	}
	return errors.New("only the admins of this Telegram channel can post in it")
}

// channelSender is the sender of a channel message: its author, or the
// channel itself for a broadcast post or an anonymous admin.
func (c *Client) channelSender(fromID tg.PeerClass, channelID int64) bridgev2.EventSender {
	if p, ok := fromID.(*tg.PeerUser); ok {
		return c.memberSender(p.UserID)
	}
	return bridgev2.EventSender{Sender: tgid.MakeChannelGhostID(channelID)}
}

// memberSender is a group member as an event sender: staff members' logins
// are named, so that bridgev2 invites their Matrix accounts.
func (c *Client) memberSender(userID int64) bridgev2.EventSender {
	if userID == c.userID {
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: c.login.ID, Sender: tgid.MakeUserID(c.userID)}
	}
	sender := bridgev2.EventSender{Sender: tgid.MakeUserID(userID)}
	if login := c.main.Bridge.GetCachedUserLoginByID(tgid.MakeUserLoginID(userID)); login != nil {
		sender.SenderLogin = login.ID
	}
	return sender
}

// channelChatInfo fetches a channel and its first members.
func (c *Client) channelChatInfo(ctx context.Context, channelID int64) (*bridgev2.ChatInfo, error) {
	input, err := c.inputChannel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	full, err := callWhenConnected(ctx, c, "get channel", func(ctx context.Context, api *tg.Client) (*tg.MessagesChatFull, error) {
		return api.ChannelsGetFullChannel(ctx, input)
	})
	if err != nil {
		return nil, fmt.Errorf("failed to get telegram group: %w", err)
	}
	var ch *tg.Channel
	for _, chat := range full.Chats {
		if v, ok := chat.(*tg.Channel); ok && v.ID == channelID {
			ch = v
		}
	}
	if ch == nil {
		return nil, fmt.Errorf("telegram did not return group %d", channelID)
	}
	c.rememberChannel(ctx, ch)
	about := ""
	var photo tg.PhotoClass
	if cf, ok := full.FullChat.(*tg.ChannelFull); ok {
		about, photo = cf.About, cf.ChatPhoto
	}
	roomType := database.RoomTypeDefault
	info := &bridgev2.ChatInfo{Name: &ch.Title, Topic: &about, Type: &roomType, CanBackfill: c.canBackfill(tgid.Peer{Type: tgid.PeerChannel, ID: channelID}), Avatar: c.photoAvatar(photo)}
	members := &bridgev2.ChatMemberList{
		MemberMap:   bridgev2.ChatMemberMap{},
		PowerLevels: channelPowerLevels(ch),
	}
	if ch.Forum {
		info.ExtraUpdates = c.topicsUpdater(channelID)
	}
	if ch.Left {
		// This account is no longer in the group: it leaves the portal.
		self := c.memberSender(c.userID)
		members.MemberMap[self.Sender] = bridgev2.ChatMember{EventSender: self, Membership: event.MembershipLeave}
		info.Members = members
		return info, nil
	}
	limit := c.memberSyncLimit()
	for offset := 0; offset < limit; {
		page, err := callWhenConnected(ctx, c, "get participants", func(ctx context.Context, api *tg.Client) (tg.ChannelsChannelParticipantsClass, error) {
			return api.ChannelsGetParticipants(ctx, &tg.ChannelsGetParticipantsRequest{
				Channel: input, Filter: &tg.ChannelParticipantsRecent{}, Offset: offset, Limit: min(limit-offset, 200),
			})
		})
		if err != nil {
			return nil, fmt.Errorf("failed to get members of telegram group: %w", err)
		}
		list, ok := page.(*tg.ChannelsChannelParticipants)
		if !ok {
			break
		}
		c.rememberParticipants(ctx, channelID, list)
		for _, p := range list.Participants {
			userID, level := participantLevel(p)
			if userID == 0 {
				continue
			}
			sender := c.memberSender(userID)
			member := bridgev2.ChatMember{EventSender: sender, Membership: event.MembershipJoin}
			if level > 0 {
				member.PowerLevel = &level
			}
			if u, ok := c.users.get(userID); ok && !sender.IsFromMe {
				member.UserInfo = c.userInfo(u)
			}
			members.MemberMap[sender.Sender] = member
		}
		offset += len(list.Participants)
		if len(list.Participants) == 0 || offset >= list.Count {
			members.IsFull = offset >= list.Count
			break
		}
	}
	if ch.Broadcast {
		// Posts show the channel: its ghost is a member.
		ghost := tgid.MakeChannelGhostID(channelID)
		level := powerAdmin
		members.MemberMap[ghost] = bridgev2.ChatMember{
			EventSender: bridgev2.EventSender{Sender: ghost}, Membership: event.MembershipJoin, PowerLevel: &level,
			UserInfo: &bridgev2.UserInfo{Name: &ch.Title},
		}
	}
	info.Members = members
	return info, nil
}

// participantLevel is a participant's user and power level (0: none).
func participantLevel(p tg.ChannelParticipantClass) (int64, int) {
	switch v := p.(type) {
	case *tg.ChannelParticipantCreator:
		return v.UserID, powerCreator
	case *tg.ChannelParticipantAdmin:
		return v.UserID, powerAdmin
	case *tg.ChannelParticipant:
		return v.UserID, 0
	case *tg.ChannelParticipantSelf:
		return v.UserID, 0
	}
	return 0, 0
}

// channelPowerLevels: in a broadcast channel only admins post; in a
// supergroup, members post unless its default rights mute them (an
// announce-only group), and only admins change its name, topic and avatar
// unless its default rights let members do it.
func channelPowerLevels(ch *tg.Channel) *bridgev2.PowerLevelOverrides {
	admin := powerAdmin
	zero := 0
	send, info := zero, admin
	if rights, ok := ch.GetDefaultBannedRights(); ok && !ch.Broadcast {
		if rights.SendMessages {
			send = admin
		}
		if !rights.ChangeInfo {
			info = zero
		}
	}
	if ch.Broadcast {
		send = admin
	}
	return &bridgev2.PowerLevelOverrides{
		EventsDefault: &send,
		Events: map[event.Type]int{
			event.StateRoomName:   info,
			event.StateTopic:      info,
			event.StateRoomAvatar: info,
		},
	}
}

// handleServiceMessage bridges what a group's service messages say: a new
// title, members who join or leave.
func (c *Client) handleServiceMessage(ctx context.Context, msg *tg.MessageService) {
	if a, ok := msg.Action.(*tg.MessageActionSetMessagesTTL); ok {
		c.handleTimerChange(ctx, msg, a.Period)
		return
	}
	if chat, ok := msg.PeerID.(*tg.PeerChat); ok {
		c.handleBasicServiceMessage(ctx, chat.ChatID, msg)
		return
	}
	peer, ok := msg.PeerID.(*tg.PeerChannel)
	if !ok {
		return
	}
	if ch, ok := c.channels.Get(peer.ChannelID); ok && ch.Left && !c.addsSelf(msg) {
		// This account left the group: its staff member left the portal,
		// and a late service message through it would bring them back
		// (bridgev2 puts a login in the portal of each event it brings).
		// The logins still in the group bridge it.
		zerolog.Ctx(ctx).Debug().Int("tg_message_id", msg.ID).Msg("Ignoring a service message of a group this account left")
		return
	}
	chatPeer := tgid.Peer{Type: tgid.PeerChannel, ID: peer.ChannelID}
	if c.leftGroupEcho(chatPeer, c.addsSelf(msg)) {
		return
	}
	sender := c.channelSender(msg.FromID, peer.ChannelID)
	change := &bridgev2.ChatInfoChange{}
	switch a := msg.Action.(type) {
	case *tg.MessageActionChatEditTitle:
		title := a.Title
		change.ChatInfo = &bridgev2.ChatInfo{Name: &title}
		if ch, ok := c.channels.Get(peer.ChannelID); ok {
			updated := *ch
			updated.Title = title
			c.channels.Put(peer.ChannelID, &updated)
		}
	case *tg.MessageActionChatAddUser:
		change.MemberChanges = &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{}}
		for _, id := range a.Users {
			m := c.memberSender(id)
			change.MemberChanges.MemberMap[m.Sender] = bridgev2.ChatMember{EventSender: m, Membership: event.MembershipJoin}
		}
	case *tg.MessageActionChatJoinedByLink, *tg.MessageActionChatJoinedByRequest:
		if p, ok := msg.FromID.(*tg.PeerUser); ok {
			m := c.memberSender(p.UserID)
			change.MemberChanges = &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{
				m.Sender: {EventSender: m, Membership: event.MembershipJoin},
			}}
		}
	case *tg.MessageActionChannelMigrateFrom:
		c.handleChatMigrated(ctx, a.ChatID, peer.ChannelID)
		return
	case *tg.MessageActionTopicCreate, *tg.MessageActionTopicEdit:
		c.handleTopicService(ctx, msg, peer.ChannelID)
		return
	case *tg.MessageActionChatEditPhoto:
		change.ChatInfo = &bridgev2.ChatInfo{Avatar: c.photoAvatar(a.Photo)}
	case *tg.MessageActionChatDeletePhoto:
		change.ChatInfo = &bridgev2.ChatInfo{Avatar: &bridgev2.Avatar{Remove: true}}
	case *tg.MessageActionChatDeleteUser:
		m := c.memberSender(a.UserID)
		membership := event.MembershipLeave
		change.MemberChanges = &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{
			m.Sender: {EventSender: m, Membership: membership},
		}}
	default:
		zerolog.Ctx(ctx).Debug().Type("action", msg.Action).Msg("Ignoring Telegram service message")
		return
	}
	evt := &infoChangeEvent{
		ChatInfoChange: &simplevent.ChatInfoChange{
			EventMeta:      messageMeta(bridgev2.RemoteEventChatInfoChange, tgid.MakePortalKey(chatPeer, c.login.ID), chatPeer, sender, msg.ID, msg.Date),
			ChatInfoChange: change,
		},
		description: description{chat: c.channelChat(peer.ChannelID)},
	}
	if !sender.IsFromMe {
		if id, err := tgid.ParseUserID(sender.Sender); err == nil {
			evt.sender = c.cachedIdentity(id)
		}
	}
	c.deliverSignal(ctx, evt, "service_message")
}

// infoChangeEvent is a change of a group's name or members.
type infoChangeEvent struct {
	*simplevent.ChatInfoChange
	description
}

var _ remote.Described = (*infoChangeEvent)(nil)

// handleChannelUpdate: a channel changed (its description, admins, or this
// account left it): the portal is synced again.
func (c *Client) handleChannelUpdate(ctx context.Context, channelID int64) {
	peer := tgid.Peer{Type: tgid.PeerChannel, ID: channelID}
	ch, known := c.channels.Get(channelID)
	if c.leftGroupEcho(peer, known && !ch.Left) {
		return
	}
	if known && ch.Left {
		// This account left (or was removed from) the group: its staff
		// member leaves the portal. A resync would invite them again
		// (bridgev2 marks a login in the portal of every event it sends).
		self := c.memberSender(c.userID)
		c.deliverSignal(ctx, &infoChangeEvent{
			ChatInfoChange: &simplevent.ChatInfoChange{
				EventMeta: simplevent.EventMeta{
					Type:      bridgev2.RemoteEventChatInfoChange,
					PortalKey: tgid.MakePortalKey(peer, c.login.ID),
					Sender:    self,
					Timestamp: time.Now(),
				},
				ChatInfoChange: &bridgev2.ChatInfoChange{MemberChanges: &bridgev2.ChatMemberList{MemberMap: bridgev2.ChatMemberMap{
					self.Sender: {EventSender: self, Membership: event.MembershipLeave},
				}}},
			},
			description: description{chat: c.channelChat(channelID)},
		}, "channel_left")
		return
	}
	c.deliverSignal(ctx, c.chatResyncEvent(peer), "channel")
}

// resyncEvent is a group whose information is fetched again.
type resyncEvent struct {
	*simplevent.ChatResync
	description
	// movedTo is set on the resync that moves a migrated basic group's
	// portal to its supergroup's key.
	movedTo networkid.PortalKey
}

var (
	_ remote.Described  = (*resyncEvent)(nil)
	_ remote.PortalMove = (*resyncEvent)(nil)
)

// MovesPortal implements remote.PortalMove: empty keys for a plain resync.
func (e *resyncEvent) MovesPortal() (from, to networkid.PortalKey) {
	if e.movedTo.ID == "" {
		return networkid.PortalKey{}, networkid.PortalKey{}
	}
	return e.PortalKey, e.movedTo
}

// groupRightsError turns Telegram's refusal of a group change into a clear
// message.
func groupRightsError(err error, what string) error {
	switch {
	case tgerr.Is(err, "CHAT_ADMIN_REQUIRED", "CHAT_WRITE_FORBIDDEN", "RIGHT_FORBIDDEN"):
		return fmt.Errorf("you have no right to %s in this Telegram group", what)
	case tgerr.Is(err, "CHANNEL_PRIVATE"):
		return errNotInGroup
	case tgerr.Is(err, "CHAT_NOT_MODIFIED"):
		return nil
	}
	return fmt.Errorf("failed to %s on Telegram: %w", what, err)
}

// HandleMatrixRoomName renames the Telegram group.
func (c *Client) HandleMatrixRoomName(ctx context.Context, msg *bridgev2.MatrixRoomName) (_ bool, err error) {
	defer func() {
		if err != nil {
			c.revertState(ctx, msg.Portal, event.StateRoomName, &event.RoomNameEventContent{Name: msg.Portal.Name}, err)
		}
	}()
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err == nil && peer.Type == tgid.PeerChat {
		return c.handleBasicRoomName(ctx, msg, peer)
	}
	if err != nil || peer.Type != tgid.PeerChannel {
		return false, fmt.Errorf("only Telegram groups can be renamed")
	}
	if err := c.main.CheckOutbound(ctx, c.outbound(remote.OutboundGroupChange, msg.Portal, peer)); err != nil {
		return false, err
	}
	input, err := c.inputChannel(ctx, peer.ID)
	if err != nil {
		return false, err
	}
	resp, err := callWhenConnected(ctx, c, "rename group", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		return api.ChannelsEditTitle(ctx, &tg.ChannelsEditTitleRequest{Channel: input, Title: msg.Content.Name})
	})
	if err != nil {
		if err = groupRightsError(err, "rename the group"); err != nil {
			return false, err
		}
	} else {
		c.feedUpdates(resp)
	}
	msg.Portal.Name = msg.Content.Name
	msg.Portal.NameSet = true
	return true, nil
}

// HandleMatrixRoomTopic changes the Telegram group's description.
func (c *Client) HandleMatrixRoomTopic(ctx context.Context, msg *bridgev2.MatrixRoomTopic) (_ bool, err error) {
	defer func() {
		if err != nil {
			c.revertState(ctx, msg.Portal, event.StateTopic, &event.TopicEventContent{Topic: msg.Portal.Topic}, err)
		}
	}()
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err == nil && peer.Type == tgid.PeerChat {
		return c.handleBasicRoomTopic(ctx, msg, peer)
	}
	if err != nil || peer.Type != tgid.PeerChannel {
		return false, fmt.Errorf("only the description of Telegram groups can be changed")
	}
	if err := c.main.CheckOutbound(ctx, c.outbound(remote.OutboundGroupChange, msg.Portal, peer)); err != nil {
		return false, err
	}
	input, err := c.inputChannel(ctx, peer.ID)
	if err != nil {
		return false, err
	}
	_, err = callWhenConnected(ctx, c, "change group description", func(ctx context.Context, api *tg.Client) (bool, error) {
		return api.MessagesEditChatAbout(ctx, &tg.MessagesEditChatAboutRequest{
			Peer:  &tg.InputPeerChannel{ChannelID: input.ChannelID, AccessHash: input.AccessHash},
			About: msg.Content.Topic,
		})
	})
	if err != nil {
		if err = groupRightsError(err, "change the group's description"); err != nil {
			return false, err
		}
	}
	msg.Portal.Topic = msg.Content.Topic
	msg.Portal.TopicSet = true
	return true, nil
}

// channelGhostName is the display name of a channel's ghost.
func (c *Client) channelGhostInfo(channelID int64) *bridgev2.UserInfo {
	name := "Telegram channel " + strconv.FormatInt(channelID, 10)
	if ch, ok := c.channels.Get(channelID); ok && ch.Title != "" {
		name = ch.Title
	}
	isBot := false
	return &bridgev2.UserInfo{Name: &name, IsBot: &isBot}
}

// HandleMatrixMembership invites a contact (by their ghost) into the
// Telegram group, or removes them, where the staff member has the rights.
// Other membership changes (staff joining or leaving the room) stay on
// Matrix.
func (c *Client) HandleMatrixMembership(ctx context.Context, msg *bridgev2.MatrixMembershipChange) (_ *bridgev2.MatrixMembershipResult, err error) {
	if msg.Type == bridgev2.Leave {
		// Only with bridge_matrix_leave on; never undone in the room.
		return nil, c.leaveFromMatrix(ctx, msg)
	}
	defer func() {
		if err != nil && msg.Event != nil {
			c.revertMember(ctx, msg.Portal, msg.Event.GetStateKey(), msg.PrevContent, err)
		}
	}()
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err == nil && peer.Type == tgid.PeerChat {
		return c.handleBasicMembership(ctx, msg, peer)
	}
	if err != nil || peer.Type != tgid.PeerChannel {
		return nil, nil
	}
	ghost, ok := msg.Target.(*bridgev2.Ghost)
	if !ok {
		return nil, nil
	}
	userID, err := tgid.ParseUserID(ghost.ID)
	if err != nil {
		return nil, nil
	}
	var what string
	switch msg.Type {
	case bridgev2.Invite:
		what = "invite members"
	case bridgev2.Kick, bridgev2.BanJoined, bridgev2.RevokeInvite:
		what = "remove members"
	default:
		return nil, nil
	}
	kind := remote.OutboundMemberRemove
	if msg.Type == bridgev2.Invite {
		kind = remote.OutboundMemberAdd
	}
	out := c.outbound(kind, msg.Portal, peer)
	out.Remote, out.Identity = ghost.ID, c.cachedIdentity(userID)
	if err := c.main.CheckOutbound(ctx, out); err != nil {
		return nil, err
	}
	input, err := c.inputChannel(ctx, peer.ID)
	if err != nil {
		return nil, err
	}
	user, err := c.inputUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("cannot reach this Telegram user: %w", err)
	}
	_, err = callWhenConnected(ctx, c, what, func(ctx context.Context, api *tg.Client) (bool, error) {
		if msg.Type == bridgev2.Invite {
			res, err := api.ChannelsInviteToChannel(ctx, &tg.ChannelsInviteToChannelRequest{Channel: input, Users: []tg.InputUserClass{user}})
			if err == nil {
				c.feedUpdates(res.Updates)
			}
			return err == nil, err
		}
		u := user.(*tg.InputUser)
		res, err := api.ChannelsEditBanned(ctx, &tg.ChannelsEditBannedRequest{
			Channel:      input,
			Participant:  &tg.InputPeerUser{UserID: u.UserID, AccessHash: u.AccessHash},
			BannedRights: tg.ChatBannedRights{ViewMessages: true},
		})
		if err == nil {
			c.feedUpdates(res)
		}
		return err == nil, err
	})
	if err != nil {
		if rerr := groupRightsError(err, what); rerr != nil {
			return nil, rerr
		}
	}
	return nil, nil
}

// usersOf maps the users of a list by ID (non-users skipped).
func usersOf(list []tg.UserClass) map[int64]*tg.User {
	out := make(map[int64]*tg.User, len(list))
	for _, u := range list {
		if user, ok := u.(*tg.User); ok {
			out[user.ID] = user
		}
	}
	return out
}
