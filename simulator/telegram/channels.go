package tgsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Supergroups and broadcast channels. Telegram keeps one message box per
// channel: every member sees the same message IDs, and the channel has its
// own pts sequence, fetched with updates.getChannelDifference.

var (
	errChannelInvalid    = tgerr.New(400, "CHANNEL_INVALID")
	errChannelPrivate    = tgerr.New(400, "CHANNEL_PRIVATE")
	errChatWriteForbid   = tgerr.New(403, "CHAT_WRITE_FORBIDDEN")
	errChatAdminRequired = tgerr.New(400, "CHAT_ADMIN_REQUIRED")
	errChatNotModified   = tgerr.New(400, "CHAT_NOT_MODIFIED")
	errChatTitleEmpty    = tgerr.New(400, "CHAT_TITLE_EMPTY")
	errUserNotMember     = tgerr.New(400, "USER_NOT_PARTICIPANT")
)

// ErrNoChannel is returned by the world API for an unknown channel.
var ErrNoChannel = errors.New("tgsim: no such channel")

const (
	// channelTooLong: a getChannelDifference asked from further back than
	// this many pts gets channelDifferenceTooLong.
	defaultChannelTooLong = 1000
	participantsPageMax   = 200
)

// ChannelSpec describes a supergroup or broadcast channel to create.
type ChannelSpec struct {
	Title     string
	About     string
	Broadcast bool    // a broadcast channel: only admins post; else a supergroup
	Creator   int64   // account that owns it (must exist)
	Members   []int64 // other members
	Admins    []int64 // members (or not yet) made admins
	Signed    bool    // broadcast posts carry their author's name
}

// Channel is a supergroup or broadcast channel as the world API shows it.
type Channel struct {
	ID         int64
	AccessHash int64
	Title      string
	About      string
	Broadcast  bool
	Creator    int64
	Members    []int64 // in join order
	Admins     []int64
	Pts        int
}

// ChannelMessage is a message of a channel's box (the same for every member).
type ChannelMessage struct {
	ID         int
	From       int64  // 0: posted as the channel
	PostAuthor string // the signature of a broadcast post
	Text       string
	Date       time.Time
	// Action is the service action ("title", "join", "leave", "kick",
	// "create", "photo") of a service message; empty for a message.
	Action  string
	Title   string  // the new title of a "title" action
	Users   []int64 // the users of join/leave/kick actions
	Pts     int
	Deleted bool
	Edited  time.Time // zero if never edited
	// ReplyToID is the message this one answers (0: none).
	ReplyToID int
	// Reactions are the reactions on the message, in the order made.
	Reactions []Reaction
}

type channel struct {
	id, accessHash int64
	title, about   string
	broadcast      bool
	signed         bool
	creator        int64
	members        []int64
	member         map[int64]bool
	admins         map[int64]bool
	created        time.Time
	pts            int
	msgs           []*channelMsg // msgs[i] has ID i+1
	sent           map[[2]int64]*channelMsg
	deletes        []channelDelete // the pts log's deletions
	readInbox      map[int64]int
	// membersMuted: members who are not admins may not send (the group's
	// default banned rights forbid send_messages); infoOpen: they may
	// change its title, description and photo (change_info not banned).
	membersMuted, infoOpen bool
}

type channelDelete struct {
	pts int
	ids []int
}

type channelMsg struct {
	ChannelMessage
	action    tg.MessageActionClass
	entities  []tg.MessageEntityClass
	replyTo   int
	topic     int // the forum topic (0 or GeneralTopicID: General)
	editDate  time.Time
	editPts   int // pts of the last edit (0: never edited)
	reactions []reaction
}

// channelTooLong is how far back getChannelDifference goes before it answers
// channelDifferenceTooLong.
func (s *Server) channelTooLongLocked() int {
	if s.st.channelTooLong > 0 {
		return s.st.channelTooLong
	}
	return defaultChannelTooLong
}

// SetChannelTooLong sets how many pts a getChannelDifference may be behind
// before it gets channelDifferenceTooLong (1000 by default).
func (s *Server) SetChannelTooLong(n int) {
	s.mu.Lock()
	s.st.channelTooLong = n
	s.mu.Unlock()
}

// CreateChannel creates a supergroup or a broadcast channel with its
// members. Nothing is pushed: members learn of it from its messages.
func (s *Server) CreateChannel(spec ChannelSpec) (Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.users[spec.Creator]; !ok {
		return Channel{}, fmt.Errorf("%w: %d", ErrNoAccount, spec.Creator)
	}
	ch := s.newChannelLocked(spec.Title, spec.About, spec.Broadcast, spec.Creator)
	ch.signed = spec.Signed
	for _, m := range append(append([]int64{}, spec.Members...), spec.Admins...) {
		if _, ok := s.st.users[m]; !ok {
			return Channel{}, fmt.Errorf("%w: %d", ErrNoAccount, m)
		}
		ch.addMember(m)
	}
	for _, a := range spec.Admins {
		ch.admins[a] = true
	}
	s.changedLocked()
	return ch.snapshot(), nil
}

func (s *Server) newChannelLocked(title, about string, broadcast bool, creator int64) *channel {
	s.st.nextChannelID++
	ch := &channel{
		id:         s.st.nextChannelID,
		accessHash: randInt64(),
		title:      title,
		about:      about,
		broadcast:  broadcast,
		creator:    creator,
		member:     map[int64]bool{},
		admins:     map[int64]bool{creator: true},
		created:    time.Now().Truncate(time.Second),
		pts:        1,
		sent:       map[[2]int64]*channelMsg{},
		readInbox:  map[int64]int{},
	}
	ch.addMember(creator)
	s.st.channels[ch.id] = ch
	return ch
}

func (ch *channel) addMember(id int64) bool {
	if ch.member[id] {
		return false
	}
	ch.member[id] = true
	ch.members = append(ch.members, id)
	return true
}

func (ch *channel) removeMember(id int64) bool {
	if !ch.member[id] {
		return false
	}
	delete(ch.member, id)
	delete(ch.admins, id)
	ch.members = slices.DeleteFunc(ch.members, func(m int64) bool { return m == id })
	return true
}

func (ch *channel) canPost(id int64) bool {
	if !ch.member[id] {
		return false
	}
	return (!ch.broadcast && !ch.membersMuted) || ch.admins[id] || ch.creator == id
}

func (ch *channel) isAdmin(id int64) bool {
	return ch.member[id] && (ch.admins[id] || ch.creator == id)
}

func (ch *channel) snapshot() Channel {
	out := Channel{
		ID: ch.id, AccessHash: ch.accessHash, Title: ch.title, About: ch.about, Broadcast: ch.broadcast,
		Creator: ch.creator, Members: slices.Clone(ch.members), Pts: ch.pts,
	}
	for _, m := range ch.members {
		if ch.isAdmin(m) {
			out.Admins = append(out.Admins, m)
		}
	}
	return out
}

// ChannelInfo returns a channel by ID.
func (s *Server) ChannelInfo(id int64) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[id]
	if !ok {
		return Channel{}, false
	}
	return ch.snapshot(), true
}

// ChannelMessages returns a channel's messages, service messages included,
// oldest first.
func (s *Server) ChannelMessages(id int64) []ChannelMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[id]
	if !ok {
		return nil
	}
	out := make([]ChannelMessage, 0, len(ch.msgs))
	for _, m := range ch.msgs {
		c := m.ChannelMessage
		c.Users = slices.Clone(c.Users)
		c.Edited = m.editDate
		c.ReplyToID = m.replyTo
		for _, r := range m.reactions {
			c.Reactions = append(c.Reactions, Reaction{User: r.user, Emoji: r.emoticon})
		}
		out = append(out, c)
	}
	return out
}

// ChannelPost makes from post text in a channel (from 0: posted as the
// channel, by an anonymous admin; author is then its signature, if any).
func (s *Server) ChannelPost(channelID, from int64, text, author string) (ChannelMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return ChannelMessage{}, fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	if from != 0 && !ch.canPost(from) {
		return ChannelMessage{}, fmt.Errorf("tgsim: %d cannot post in channel %d", from, channelID)
	}
	m := &channelMsg{ChannelMessage: ChannelMessage{From: from, Text: text, PostAuthor: author}}
	if ch.broadcast && from != 0 && ch.signed && author == "" {
		if u, ok := s.st.users[from]; ok {
			m.PostAuthor = strings.TrimSpace(u.acc.FirstName + " " + u.acc.LastName)
		}
	}
	if ch.broadcast {
		// A broadcast post shows the channel (and its signature), not the
		// admin who wrote it.
		m.From = 0
	}
	s.addChannelMsgLocked(ch, m, 0)
	return m.ChannelMessage, nil
}

// RenameChannel makes by (an admin) rename a channel.
func (s *Server) RenameChannel(channelID, by int64, title string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	_, err := s.editTitleLocked(ch, by, title, 0)
	return err
}

// SetChannelAbout changes a channel's description (an UpdateChannel is
// pushed to its members, who fetch the channel again).
func (s *Server) SetChannelAbout(channelID int64, about string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	ch.about = about
	s.pushChannelUpdateLocked(ch, 0)
	return nil
}

// JoinChannel adds user to a channel (a "join" service message).
func (s *Server) JoinChannel(channelID, user int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	if _, ok := s.st.users[user]; !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, user)
	}
	if !ch.addMember(user) {
		return nil
	}
	s.addChannelMsgLocked(ch, &channelMsg{
		ChannelMessage: ChannelMessage{From: user, Action: "join", Users: []int64{user}},
		action:         &tg.MessageActionChatAddUser{Users: []int64{user}},
	}, 0)
	return nil
}

// LeaveChannel makes user leave a channel (by 0 or user itself) or be
// kicked by an admin.
func (s *Server) LeaveChannel(channelID, user, by int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	if by == 0 {
		by = user
	}
	_, err := s.leaveLocked(ch, user, by, 0)
	return err
}

// PromoteChannelAdmin makes a member an admin (or no longer one).
func (s *Server) PromoteChannelAdmin(channelID, user int64, admin bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	if !ch.member[user] {
		return errUserNotMember
	}
	if admin {
		ch.admins[user] = true
	} else {
		delete(ch.admins, user)
	}
	s.pushChannelUpdateLocked(ch, 0)
	return nil
}

func (s *Server) leaveLocked(ch *channel, user, by int64, exceptSession int64) (*channelMsg, error) {
	if by != user && !ch.isAdmin(by) {
		return nil, errChatAdminRequired
	}
	if !ch.member[user] {
		return nil, errUserNotMember
	}
	action := "leave"
	var act tg.MessageActionClass = &tg.MessageActionChatDeleteUser{UserID: user}
	if by != user {
		action = "kick"
	}
	m := &channelMsg{ChannelMessage: ChannelMessage{From: by, Action: action, Users: []int64{user}}, action: act}
	// The members see the service message; the one who left gets only
	// updateChannel, showing the channel left.
	ch.removeMember(user)
	s.addChannelMsgLocked(ch, m, exceptSession)
	s.pushToUserLocked(user, 0, &tg.Updates{
		Updates: []tg.UpdateClass{&tg.UpdateChannel{ChannelID: ch.id}},
		Chats:   []tg.ChatClass{s.tgChannelLocked(ch, user)},
		Date:    int(time.Now().Unix()),
	})
	return m, nil
}

func (s *Server) editTitleLocked(ch *channel, by int64, title string, exceptSession int64) (*channelMsg, error) {
	title = strings.TrimSpace(title)
	switch {
	case !ch.member[by]:
		return nil, errChannelPrivate
	case !ch.isAdmin(by):
		return nil, errChatAdminRequired
	case title == "":
		return nil, errChatTitleEmpty
	case title == ch.title:
		return nil, errChatNotModified
	}
	ch.title = title
	from := by
	if ch.broadcast {
		from = 0
	}
	m := &channelMsg{
		ChannelMessage: ChannelMessage{From: from, Action: "title", Title: title},
		action:         &tg.MessageActionChatEditTitle{Title: title},
	}
	s.addChannelMsgLocked(ch, m, exceptSession)
	return m, nil
}

// addChannelMsgLocked numbers m in the channel's box and pts and pushes it
// to every member's sessions but exceptSession.
func (s *Server) addChannelMsgLocked(ch *channel, m *channelMsg, exceptSession int64) {
	m.ID = len(ch.msgs) + 1
	if m.Date.IsZero() {
		m.Date = s.nowLocked()
	}
	ch.pts++
	m.Pts = ch.pts
	ch.msgs = append(ch.msgs, m)
	for _, member := range ch.members {
		s.pushToUserLocked(member, exceptSession, s.channelMsgUpdatesLocked(ch, m, member))
	}
	s.changedLocked()
}

func (s *Server) channelMsgUpdatesLocked(ch *channel, m *channelMsg, viewer int64) *tg.Updates {
	return &tg.Updates{
		Updates: []tg.UpdateClass{&tg.UpdateNewChannelMessage{Message: s.tgChannelMsgLocked(ch, m, viewer), Pts: m.Pts, PtsCount: 1}},
		Users:   s.tgUsersLocked(viewer, m.usersOf()...),
		Chats:   []tg.ChatClass{s.tgChannelLocked(ch, viewer)},
		Date:    int(time.Now().Unix()),
	}
}

func (m *channelMsg) usersOf() []int64 {
	ids := slices.Clone(m.Users)
	if m.From != 0 {
		ids = append(ids, m.From)
	}
	return ids
}

func (s *Server) pushChannelUpdateLocked(ch *channel, exceptSession int64) {
	for _, member := range ch.members {
		s.pushToUserLocked(member, exceptSession, &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateChannel{ChannelID: ch.id}},
			Chats:   []tg.ChatClass{s.tgChannelLocked(ch, member)},
			Date:    int(time.Now().Unix()),
		})
	}
	s.changedLocked()
}

func (s *Server) tgChannelMsgLocked(ch *channel, m *channelMsg, viewer int64) tg.MessageClass {
	peer := &tg.PeerChannel{ChannelID: ch.id}
	if m.Deleted {
		return &tg.MessageEmpty{ID: m.ID}
	}
	if m.action != nil {
		svc := &tg.MessageService{ID: m.ID, PeerID: peer, Date: int(m.Date.Unix()), Action: m.action}
		if m.From != 0 {
			svc.SetFromID(&tg.PeerUser{UserID: m.From})
		}
		svc.Out = m.From == viewer && m.From != 0
		svc.Post = ch.broadcast
		if h := s.topicReplyHeaderLocked(ch, m); h != nil {
			svc.SetReplyTo(h)
		}
		return svc
	}
	msg := &tg.Message{ID: m.ID, PeerID: peer, Date: int(m.Date.Unix()), Message: m.Text}
	if m.From != 0 {
		msg.SetFromID(&tg.PeerUser{UserID: m.From})
	}
	msg.Out = m.From == viewer && m.From != 0
	msg.Post = ch.broadcast
	if m.PostAuthor != "" {
		msg.SetPostAuthor(m.PostAuthor)
	}
	if h := s.topicReplyHeaderLocked(ch, m); h != nil {
		msg.SetReplyTo(h)
	} else if m.replyTo != 0 {
		h := &tg.MessageReplyHeader{ReplyToMsgID: m.replyTo}
		h.SetFlags()
		msg.SetReplyTo(h)
	}
	if ents, err := cloneEntities(m.entities); err == nil && len(ents) > 0 {
		msg.SetEntities(ents)
	}
	if !m.editDate.IsZero() {
		msg.SetEditDate(int(m.editDate.Unix()))
	}
	if len(m.reactions) > 0 {
		msg.SetReactions(channelReactions(m, viewer))
	}
	return msg
}

func channelReactions(m *channelMsg, viewer int64) tg.MessageReactions {
	out := tg.MessageReactions{CanSeeList: true}
	index := map[string]int{}
	chosen := 0
	for _, r := range m.reactions {
		i, ok := index[r.key()]
		if !ok {
			i = len(out.Results)
			index[r.key()] = i
			out.Results = append(out.Results, tg.ReactionCount{Reaction: r.tg()})
		}
		out.Results[i].Count++
		if r.user == viewer {
			out.Results[i].SetChosenOrder(chosen)
			chosen++
		}
		out.RecentReactions = append(out.RecentReactions, tg.MessagePeerReaction{
			PeerID: &tg.PeerUser{UserID: r.user}, Reaction: r.tg(), Date: int(r.date.Unix()), My: r.user == viewer})
	}
	out.SetFlags()
	return out
}

// EditChannelMessage makes by (the author, or an admin for a broadcast
// post) edit a channel message.
func (s *Server) EditChannelMessage(channelID, by int64, id int, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	_, err := s.editChannelMsgLocked(ch, by, id, text, nil, 0)
	return err
}

func (s *Server) editChannelMsgLocked(ch *channel, by int64, id int, text string, ents []tg.MessageEntityClass, exceptSession int64) (*channelMsg, error) {
	if id <= 0 || id > len(ch.msgs) || ch.msgs[id-1].Deleted || ch.msgs[id-1].action != nil {
		return nil, tgerr.New(400, "MESSAGE_ID_INVALID")
	}
	m := ch.msgs[id-1]
	if m.From != by && !(m.From == 0 && ch.isAdmin(by)) {
		return nil, tgerr.New(403, "MESSAGE_AUTHOR_REQUIRED")
	}
	if strings.TrimSpace(text) == "" {
		return nil, errMessageEmpty
	}
	if text == m.Text {
		return nil, tgerr.New(400, "MESSAGE_NOT_MODIFIED")
	}
	m.Text, m.entities = text, ents
	m.editDate = time.Now().Truncate(time.Second)
	if !m.editDate.After(m.Date) {
		m.editDate = m.Date.Add(time.Second)
	}
	ch.pts++
	m.editPts = ch.pts
	for _, member := range ch.members {
		s.pushToUserLocked(member, exceptSession, s.channelEditUpdatesLocked(ch, m, member))
	}
	s.changedLocked()
	return m, nil
}

func (s *Server) channelEditUpdatesLocked(ch *channel, m *channelMsg, viewer int64) *tg.Updates {
	return &tg.Updates{
		Updates: []tg.UpdateClass{&tg.UpdateEditChannelMessage{Message: s.tgChannelMsgLocked(ch, m, viewer), Pts: m.editPts, PtsCount: 1}},
		Users:   s.tgUsersLocked(viewer, m.usersOf()...),
		Chats:   []tg.ChatClass{s.tgChannelLocked(ch, viewer)},
		Date:    int(time.Now().Unix()),
	}
}

// ReactInChannel sets by's reaction (emoji; "" removes it) on a channel
// message; members get updateMessageReactions (no pts).
func (s *Server) ReactInChannel(channelID, by int64, id int, emoji string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	var list []tg.ReactionClass
	if emoji != "" {
		list = []tg.ReactionClass{&tg.ReactionEmoji{Emoticon: emoji}}
	}
	return s.reactChannelLocked(ch, by, id, list, 0)
}

func (s *Server) reactChannelLocked(ch *channel, by int64, id int, list []tg.ReactionClass, exceptSession int64) error {
	if !ch.member[by] {
		return errChannelPrivate
	}
	if id <= 0 || id > len(ch.msgs) || ch.msgs[id-1].Deleted {
		return tgerr.New(400, "MESSAGE_ID_INVALID")
	}
	m := ch.msgs[id-1]
	m.reactions = slices.DeleteFunc(m.reactions, func(r reaction) bool { return r.user == by })
	for _, r := range list {
		if e, ok := r.(*tg.ReactionEmoji); ok {
			m.reactions = append(m.reactions, reaction{user: by, emoticon: e.Emoticon, date: time.Now()})
			break
		}
	}
	for _, member := range ch.members {
		s.pushToUserLocked(member, exceptSession, &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateMessageReactions{Peer: &tg.PeerChannel{ChannelID: ch.id}, MsgID: m.ID, Reactions: channelReactions(m, member)}},
			Users:   s.tgUsersLocked(member, by),
			Chats:   []tg.ChatClass{s.tgChannelLocked(ch, member)},
			Date:    int(time.Now().Unix()),
		})
	}
	s.changedLocked()
	return nil
}

func (s *Server) messagesEditMessageAny(ctx context.Context, req *tg.MessagesEditMessageRequest) (tg.UpdatesClass, error) {
	in, ok := req.Peer.(*tg.InputPeerChannel)
	if !ok {
		return s.messagesEditMessage(ctx, req)
	}
	return withChannel(s, ctx, &tg.InputChannel{ChannelID: in.ChannelID, AccessHash: in.AccessHash}, true,
		func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
			if req.Media != nil {
				return nil, tgerr.New(400, "MEDIA_INVALID")
			}
			m, err := s.editChannelMsgLocked(ch, self.acc.ID, req.ID, req.Message, req.Entities, r.sess.mt.ID)
			if err != nil {
				return nil, err
			}
			return s.channelEditUpdatesLocked(ch, m, self.acc.ID), nil
		})
}

func (s *Server) messagesSendReactionAny(ctx context.Context, req *tg.MessagesSendReactionRequest) (tg.UpdatesClass, error) {
	in, ok := req.Peer.(*tg.InputPeerChannel)
	if !ok {
		return s.messagesSendReaction(ctx, req)
	}
	return withChannel(s, ctx, &tg.InputChannel{ChannelID: in.ChannelID, AccessHash: in.AccessHash}, true,
		func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
			if err := s.reactChannelLocked(ch, self.acc.ID, req.MsgID, req.Reaction, r.sess.mt.ID); err != nil {
				return nil, err
			}
			m := ch.msgs[req.MsgID-1]
			return &tg.Updates{
				Updates: []tg.UpdateClass{&tg.UpdateMessageReactions{Peer: &tg.PeerChannel{ChannelID: ch.id}, MsgID: m.ID, Reactions: channelReactions(m, self.acc.ID)}},
				Chats:   []tg.ChatClass{s.tgChannelLocked(ch, self.acc.ID)},
				Date:    int(time.Now().Unix()),
			}, nil
		})
}

// tgChannelLocked renders a channel as viewer sees it.
func (s *Server) tgChannelLocked(ch *channel, viewer int64) *tg.Channel {
	out := &tg.Channel{
		ID:         ch.id,
		AccessHash: ch.accessHash,
		Title:      ch.title,
		Photo:      s.tgChatPhotoLocked(ch.id),
		Date:       int(ch.created.Unix()),
		Broadcast:  ch.broadcast,
		Megagroup:  !ch.broadcast,
		Signatures: ch.signed,
		Creator:    ch.creator == viewer,
		Left:       !ch.member[viewer],
		Forum:      s.forumLocked(ch.id) != nil,
	}
	out.SetParticipantsCount(len(ch.members))
	if !ch.broadcast {
		out.SetDefaultBannedRights(tg.ChatBannedRights{SendMessages: ch.membersMuted, ChangeInfo: !ch.infoOpen})
	}
	if ch.isAdmin(viewer) {
		out.SetAdminRights(adminRights(ch, viewer))
	}
	return out
}

func adminRights(ch *channel, id int64) tg.ChatAdminRights {
	return tg.ChatAdminRights{
		ChangeInfo: true, PostMessages: ch.broadcast, EditMessages: ch.broadcast, DeleteMessages: true,
		BanUsers: true, InviteUsers: true, PinMessages: true, AddAdmins: ch.creator == id,
	}
}

// inputChannelLocked resolves an InputChannel for self, checking the access
// hash.
func (s *Server) inputChannelLocked(in tg.InputChannelClass) (*channel, error) {
	switch v := in.(type) {
	case *tg.InputChannel:
		if ch, ok := s.st.channels[v.ChannelID]; ok && ch.accessHash == v.AccessHash {
			return ch, nil
		}
	case *tg.InputChannelFromMessage:
		if ch, ok := s.st.channels[v.ChannelID]; ok {
			return ch, nil
		}
	}
	return nil, errChannelInvalid
}

func (s *Server) memberChannelLocked(self *user, in tg.InputChannelClass) (*channel, error) {
	ch, err := s.inputChannelLocked(in)
	if err != nil {
		return nil, err
	}
	if !ch.member[self.acc.ID] {
		return nil, errChannelPrivate
	}
	return ch, nil
}

// withChannel runs f with the request's user and the channel it names.
func withChannel[R any](s *Server, ctx context.Context, in tg.InputChannelClass, member bool, f func(r *request, self *user, ch *channel) (R, error)) (R, error) {
	return withResolved(s, ctx, func(self *user) (*channel, error) {
		if member {
			return s.memberChannelLocked(self, in)
		}
		return s.inputChannelLocked(in)
	}, f)
}

func (s *Server) registerChannels(d *tg.ServerDispatcher) {
	d.OnMessagesSendMessage(s.messagesSendMessageAny)
	d.OnMessagesEditChatAbout(s.messagesEditChatAbout)
	d.OnMessagesEditMessage(s.messagesEditMessageAny)
	d.OnMessagesSendReaction(s.messagesSendReactionAny)
	d.OnChannelsGetChannels(s.channelsGetChannels)
	d.OnChannelsGetFullChannel(s.channelsGetFullChannel)
	d.OnChannelsGetParticipants(s.channelsGetParticipants)
	d.OnChannelsEditTitle(s.channelsEditTitle)
	d.OnChannelsLeaveChannel(s.channelsLeaveChannel)
	d.OnChannelsInviteToChannel(s.channelsInviteToChannel)
	d.OnChannelsCreateChannel(s.channelsCreateChannel)
	d.OnChannelsEditAdmin(s.channelsEditAdmin)
	d.OnChannelsReadHistory(s.channelsReadHistory)
	d.OnChannelsDeleteMessages(s.channelsDeleteMessages)
	d.OnChannelsEditBanned(s.channelsEditBanned)
	d.OnMessagesSetTyping(s.messagesSetTypingAny)
	d.OnUpdatesGetChannelDifference(s.updatesGetChannelDifference)
	d.OnAuthImportBotAuthorization(s.authImportBotAuthorization)
}

func (s *Server) messagesSendMessageAny(ctx context.Context, req *tg.MessagesSendMessageRequest) (tg.UpdatesClass, error) {
	in, ok := req.Peer.(*tg.InputPeerChannel)
	if !ok {
		return s.messagesSendMessage(ctx, req)
	}
	return withChannel(s, ctx, &tg.InputChannel{ChannelID: in.ChannelID, AccessHash: in.AccessHash}, true,
		func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
			switch {
			case !ch.canPost(self.acc.ID):
				return nil, errChatWriteForbid
			case strings.TrimSpace(req.Message) == "":
				return nil, errMessageEmpty
			case utf8.RuneCountInString(req.Message) > maxMessageLength:
				return nil, errMessageTooLong
			}
			key := [2]int64{self.acc.ID, req.RandomID}
			m, dup := ch.sent[key]
			if dup && req.RandomID != 0 {
				s.st.duplicateSends++
			} else {
				m = &channelMsg{ChannelMessage: ChannelMessage{From: self.acc.ID, Text: req.Message}, entities: req.Entities}
				if ch.broadcast {
					m.From = 0
					if ch.signed {
						m.PostAuthor = strings.TrimSpace(self.acc.FirstName + " " + self.acc.LastName)
					}
				}
				if rt, ok := req.ReplyTo.(*tg.InputReplyToMessage); ok && rt.ReplyToMsgID > 0 && rt.ReplyToMsgID <= len(ch.msgs) {
					m.replyTo = rt.ReplyToMsgID
				}
				topic, err := s.sendTopicLocked(ch, req.ReplyTo)
				if err != nil {
					return nil, err
				}
				m.topic = topic
				m.Text = req.Message
				s.addChannelMsgLocked(ch, m, r.sess.mt.ID)
				if req.RandomID != 0 {
					ch.sent[key] = m
				}
			}
			upd := s.channelMsgUpdatesLocked(ch, m, self.acc.ID)
			upd.Updates = append([]tg.UpdateClass{&tg.UpdateMessageID{ID: m.ID, RandomID: req.RandomID}}, upd.Updates...)
			return upd, nil
		})
}

func (s *Server) channelsGetChannels(ctx context.Context, ids []tg.InputChannelClass) (tg.MessagesChatsClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (tg.MessagesChatsClass, error) {
		out := &tg.MessagesChats{}
		for _, in := range ids {
			if ch, err := s.inputChannelLocked(in); err == nil {
				out.Chats = append(out.Chats, s.tgChannelLocked(ch, self.acc.ID))
			}
		}
		return out, nil
	})
}

func (s *Server) channelsGetFullChannel(ctx context.Context, in tg.InputChannelClass) (*tg.MessagesChatFull, error) {
	return withChannel(s, ctx, in, false, func(_ *request, self *user, ch *channel) (*tg.MessagesChatFull, error) {
		if ch.broadcast && !ch.member[self.acc.ID] {
			return nil, errChannelPrivate
		}
		full := &tg.ChannelFull{
			ID:             ch.id,
			About:          ch.about,
			ChatPhoto:      s.tgFullPhotoLocked(ch.id),
			NotifySettings: tg.PeerNotifySettings{},
			Pts:            ch.pts,
			ReadInboxMaxID: ch.readInbox[self.acc.ID],
		}
		full.SetParticipantsCount(len(ch.members))
		full.SetAdminsCount(len(ch.snapshot().Admins))
		s.setMigratedFromLocked(full, ch.id)
		return &tg.MessagesChatFull{
			FullChat: full,
			Chats:    []tg.ChatClass{s.tgChannelLocked(ch, self.acc.ID)},
		}, nil
	})
}

func (s *Server) channelsGetParticipants(ctx context.Context, req *tg.ChannelsGetParticipantsRequest) (tg.ChannelsChannelParticipantsClass, error) {
	return withChannel(s, ctx, req.Channel, true, func(_ *request, self *user, ch *channel) (tg.ChannelsChannelParticipantsClass, error) {
		var list []int64
		switch req.Filter.(type) {
		case *tg.ChannelParticipantsAdmins:
			list = ch.snapshot().Admins
		default:
			list = ch.members
		}
		limit := min(max(req.Limit, 0), participantsPageMax)
		offset := min(max(req.Offset, 0), len(list))
		page := list[offset:min(offset+limit, len(list))]
		out := &tg.ChannelsChannelParticipants{Count: len(list)}
		for _, id := range page {
			out.Participants = append(out.Participants, s.tgParticipantLocked(ch, id))
		}
		out.Users = s.tgUsersLocked(self.acc.ID, page...)
		return out, nil
	})
}

func (s *Server) tgParticipantLocked(ch *channel, id int64) tg.ChannelParticipantClass {
	date := int(ch.created.Unix())
	switch {
	case ch.creator == id:
		return &tg.ChannelParticipantCreator{UserID: id, AdminRights: adminRights(ch, id)}
	case ch.admins[id]:
		return &tg.ChannelParticipantAdmin{UserID: id, PromotedBy: ch.creator, Date: date, AdminRights: adminRights(ch, id)}
	default:
		return &tg.ChannelParticipant{UserID: id, Date: date}
	}
}

func (s *Server) channelsEditTitle(ctx context.Context, req *tg.ChannelsEditTitleRequest) (tg.UpdatesClass, error) {
	return withChannel(s, ctx, req.Channel, true, func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
		m, err := s.editTitleLocked(ch, self.acc.ID, req.Title, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return s.channelMsgUpdatesLocked(ch, m, self.acc.ID), nil
	})
}

func (s *Server) messagesEditChatAbout(ctx context.Context, req *tg.MessagesEditChatAboutRequest) (bool, error) {
	in, ok := req.Peer.(*tg.InputPeerChannel)
	if !ok {
		return false, errPeerIDInvalid
	}
	return withChannel(s, ctx, &tg.InputChannel{ChannelID: in.ChannelID, AccessHash: in.AccessHash}, true,
		func(r *request, self *user, ch *channel) (bool, error) {
			if !ch.isAdmin(self.acc.ID) {
				return false, errChatAdminRequired
			}
			if ch.about == req.About {
				return false, errChatNotModified
			}
			ch.about = req.About
			s.pushChannelUpdateLocked(ch, r.sess.mt.ID)
			return true, nil
		})
}

func (s *Server) channelsLeaveChannel(ctx context.Context, in tg.InputChannelClass) (tg.UpdatesClass, error) {
	return withChannel(s, ctx, in, true, func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
		m, err := s.leaveLocked(ch, self.acc.ID, self.acc.ID, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return s.channelMsgUpdatesLocked(ch, m, self.acc.ID), nil
	})
}

func (s *Server) channelsInviteToChannel(ctx context.Context, req *tg.ChannelsInviteToChannelRequest) (*tg.MessagesInvitedUsers, error) {
	return withChannel(s, ctx, req.Channel, true, func(r *request, self *user, ch *channel) (*tg.MessagesInvitedUsers, error) {
		if ch.broadcast && !ch.isAdmin(self.acc.ID) {
			return nil, errChatAdminRequired
		}
		var added []int64
		for _, in := range req.Users {
			u, err := s.inputUserLocked(self, in)
			if err != nil {
				return nil, err
			}
			if ch.addMember(u.acc.ID) {
				added = append(added, u.acc.ID)
			}
		}
		upd := &tg.Updates{Date: int(time.Now().Unix())}
		if len(added) > 0 {
			m := &channelMsg{
				ChannelMessage: ChannelMessage{From: self.acc.ID, Action: "join", Users: added},
				action:         &tg.MessageActionChatAddUser{Users: added},
			}
			s.addChannelMsgLocked(ch, m, r.sess.mt.ID)
			upd = s.channelMsgUpdatesLocked(ch, m, self.acc.ID)
		}
		return &tg.MessagesInvitedUsers{Updates: upd}, nil
	})
}

func (s *Server) channelsCreateChannel(ctx context.Context, req *tg.ChannelsCreateChannelRequest) (tg.UpdatesClass, error) {
	return withSelf(s, ctx, func(r *request, self *user) (tg.UpdatesClass, error) {
		if strings.TrimSpace(req.Title) == "" {
			return nil, errChatTitleEmpty
		}
		ch := s.newChannelLocked(req.Title, req.About, req.Broadcast || !req.Megagroup, self.acc.ID)
		m := &channelMsg{
			ChannelMessage: ChannelMessage{From: self.acc.ID, Action: "create", Title: req.Title},
			action:         &tg.MessageActionChannelCreate{Title: req.Title},
		}
		if ch.broadcast {
			m.From = 0
		}
		s.addChannelMsgLocked(ch, m, r.sess.mt.ID)
		return s.channelMsgUpdatesLocked(ch, m, self.acc.ID), nil
	})
}

func (s *Server) channelsEditAdmin(ctx context.Context, req *tg.ChannelsEditAdminRequest) (tg.UpdatesClass, error) {
	return withChannel(s, ctx, req.Channel, true, func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
		if ch.creator != self.acc.ID {
			return nil, errChatAdminRequired
		}
		u, err := s.inputUserLocked(self, req.UserID)
		if err != nil {
			return nil, err
		}
		if !ch.member[u.acc.ID] {
			return nil, errUserNotMember
		}
		if req.AdminRights.ChangeInfo || req.AdminRights.PostMessages || req.AdminRights.BanUsers || req.AdminRights.DeleteMessages {
			ch.admins[u.acc.ID] = true
		} else {
			delete(ch.admins, u.acc.ID)
		}
		s.pushChannelUpdateLocked(ch, r.sess.mt.ID)
		return &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateChannel{ChannelID: ch.id}},
			Chats:   []tg.ChatClass{s.tgChannelLocked(ch, self.acc.ID)},
			Date:    int(time.Now().Unix()),
		}, nil
	})
}

func (s *Server) channelsReadHistory(ctx context.Context, req *tg.ChannelsReadHistoryRequest) (bool, error) {
	return withChannel(s, ctx, req.Channel, true, func(_ *request, self *user, ch *channel) (bool, error) {
		if req.MaxID > ch.readInbox[self.acc.ID] {
			ch.readInbox[self.acc.ID] = min(req.MaxID, len(ch.msgs))
			s.changedLocked()
		}
		return true, nil
	})
}

// ChannelReadInbox is the highest message ID of a channel that account read.
func (s *Server) ChannelReadInbox(channelID, account int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.st.channels[channelID]; ok {
		return ch.readInbox[account]
	}
	return 0
}

func (s *Server) updatesGetChannelDifference(ctx context.Context, req *tg.UpdatesGetChannelDifferenceRequest) (tg.UpdatesChannelDifferenceClass, error) {
	return withChannel(s, ctx, req.Channel, true, func(_ *request, self *user, ch *channel) (tg.UpdatesChannelDifferenceClass, error) {
		viewer := self.acc.ID
		if req.Pts >= ch.pts {
			return &tg.UpdatesChannelDifferenceEmpty{Final: true, Pts: ch.pts}, nil
		}
		limit := req.Limit
		if limit <= 0 || limit > differenceLimit {
			limit = differenceLimit
		}
		chats := []tg.ChatClass{s.tgChannelLocked(ch, viewer)}
		if ch.pts-req.Pts > s.channelTooLongLocked() {
			// Too far behind: the latest messages and the dialog; the
			// client fetches the history itself.
			start := max(0, len(ch.msgs)-limit)
			var msgs []tg.MessageClass
			var ids []int64
			for _, m := range ch.msgs[start:] {
				msgs = append(msgs, s.tgChannelMsgLocked(ch, m, viewer))
				ids = append(ids, m.usersOf()...)
			}
			dialog := &tg.Dialog{Peer: &tg.PeerChannel{ChannelID: ch.id}, TopMessage: len(ch.msgs), ReadInboxMaxID: ch.readInbox[viewer]}
			dialog.SetPts(ch.pts)
			return &tg.UpdatesChannelDifferenceTooLong{Final: true, Dialog: dialog, Messages: msgs, Chats: chats, Users: s.tgUsersLocked(viewer, ids...)}, nil
		}
		out := &tg.UpdatesChannelDifference{Final: true, Pts: ch.pts, Chats: chats}
		// The channel's pts log: new messages and edits, in pts order.
		type logEntry struct {
			pts     int
			m       *channelMsg
			edit    bool
			deleted []int
		}
		var entries []logEntry
		for _, m := range ch.msgs {
			if m.Pts > req.Pts {
				entries = append(entries, logEntry{pts: m.Pts, m: m})
			}
			if m.editPts > req.Pts {
				entries = append(entries, logEntry{pts: m.editPts, m: m, edit: true})
			}
		}
		for _, d := range ch.deletes {
			if d.pts > req.Pts {
				entries = append(entries, logEntry{pts: d.pts, deleted: d.ids})
			}
		}
		slices.SortFunc(entries, func(a, b logEntry) int { return a.pts - b.pts })
		var ids []int64
		for i, e := range entries {
			if i == limit {
				out.Final = false
				out.Pts = entries[i-1].pts
				break
			}
			if e.m == nil {
				out.OtherUpdates = append(out.OtherUpdates, &tg.UpdateDeleteChannelMessages{ChannelID: ch.id, Messages: e.deleted, Pts: e.pts, PtsCount: 1})
				continue
			}
			rendered := s.tgChannelMsgLocked(ch, e.m, viewer)
			if e.edit {
				out.OtherUpdates = append(out.OtherUpdates, &tg.UpdateEditChannelMessage{Message: rendered, Pts: e.pts, PtsCount: 1})
			} else {
				out.NewMessages = append(out.NewMessages, rendered)
			}
			ids = append(ids, e.m.usersOf()...)
		}
		out.Users = s.tgUsersLocked(viewer, ids...)
		return out, nil
	})
}

// DeleteChannelMessages makes by (the author, or an admin) delete channel
// messages for everyone; members get updateDeleteChannelMessages.
func (s *Server) DeleteChannelMessages(channelID, by int64, ids ...int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	_, err := s.deleteChannelMsgsLocked(ch, by, ids, 0)
	return err
}

func (s *Server) deleteChannelMsgsLocked(ch *channel, by int64, ids []int, exceptSession int64) (*tg.MessagesAffectedMessages, error) {
	var gone []int
	for _, id := range ids {
		if id <= 0 || id > len(ch.msgs) || ch.msgs[id-1].Deleted {
			continue
		}
		m := ch.msgs[id-1]
		if m.From != by && !ch.isAdmin(by) {
			return nil, tgerr.New(403, "MESSAGE_DELETE_FORBIDDEN")
		}
		gone = append(gone, id)
	}
	if len(gone) == 0 {
		return &tg.MessagesAffectedMessages{Pts: ch.pts}, nil
	}
	for _, id := range gone {
		ch.msgs[id-1].Deleted = true
	}
	ch.pts++
	ch.deletes = append(ch.deletes, channelDelete{pts: ch.pts, ids: gone})
	for _, member := range ch.members {
		s.pushToUserLocked(member, exceptSession, &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateDeleteChannelMessages{ChannelID: ch.id, Messages: gone, Pts: ch.pts, PtsCount: 1}},
			Chats:   []tg.ChatClass{s.tgChannelLocked(ch, member)},
			Date:    int(time.Now().Unix()),
		})
	}
	s.changedLocked()
	return &tg.MessagesAffectedMessages{Pts: ch.pts, PtsCount: 1}, nil
}

func (s *Server) channelsDeleteMessages(ctx context.Context, req *tg.ChannelsDeleteMessagesRequest) (*tg.MessagesAffectedMessages, error) {
	return withChannel(s, ctx, req.Channel, true, func(r *request, self *user, ch *channel) (*tg.MessagesAffectedMessages, error) {
		return s.deleteChannelMsgsLocked(ch, self.acc.ID, req.ID, r.sess.mt.ID)
	})
}

// SetChannelTyping makes from type in a channel: its other members get
// updateChannelUserTyping.
func (s *Server) SetChannelTyping(channelID, from int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	if !ch.member[from] {
		return errChannelPrivate
	}
	s.channelTypingLocked(ch, from, &tg.SendMessageTypingAction{})
	return nil
}

func (s *Server) channelTypingLocked(ch *channel, from int64, action tg.SendMessageActionClass) {
	for _, member := range ch.members {
		if member == from {
			continue
		}
		if u, ok := s.st.users[member]; ok {
			u.typingSeen = append(u.typingSeen, Typing{From: from, Channel: ch.id, Action: action.TypeName(), At: time.Now()})
			if len(u.typingSeen) > maxTypingSeen {
				u.typingSeen = slices.Delete(u.typingSeen, 0, len(u.typingSeen)-maxTypingSeen)
			}
		}
		s.pushToUserLocked(member, 0, &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateChannelUserTyping{ChannelID: ch.id, FromID: &tg.PeerUser{UserID: from}, Action: action}},
			Users:   s.tgUsersLocked(member, from),
			Chats:   []tg.ChatClass{s.tgChannelLocked(ch, member)},
			Date:    int(time.Now().Unix()),
		})
	}
	s.changedLocked()
}

func (s *Server) messagesSetTypingAny(ctx context.Context, req *tg.MessagesSetTypingRequest) (bool, error) {
	in, ok := req.Peer.(*tg.InputPeerChannel)
	if !ok {
		return s.messagesSetTyping(ctx, req)
	}
	return withChannel(s, ctx, &tg.InputChannel{ChannelID: in.ChannelID, AccessHash: in.AccessHash}, true,
		func(_ *request, self *user, ch *channel) (bool, error) {
			if req.Action != nil {
				s.channelTypingLocked(ch, self.acc.ID, req.Action)
			}
			return true, nil
		})
}

// channelsEditBanned: banning view_messages removes the member (a kick);
// other restrictions are not simulated.
func (s *Server) channelsEditBanned(ctx context.Context, req *tg.ChannelsEditBannedRequest) (tg.UpdatesClass, error) {
	return withChannel(s, ctx, req.Channel, true, func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
		in, ok := req.Participant.(*tg.InputPeerUser)
		if !ok {
			return nil, errPeerIDInvalid
		}
		target, err := s.inputUserLocked(self, &tg.InputUser{UserID: in.UserID, AccessHash: in.AccessHash})
		if err != nil {
			return nil, err
		}
		if !req.BannedRights.ViewMessages {
			return &tg.Updates{Date: int(time.Now().Unix())}, nil
		}
		m, err := s.leaveLocked(ch, target.acc.ID, self.acc.ID, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return s.channelMsgUpdatesLocked(ch, m, self.acc.ID), nil
	})
}
