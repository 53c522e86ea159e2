package tgsim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Forum topics. A supergroup with forum=true splits its messages into
// topics. A topic is opened by a messageActionTopicCreate service message
// whose ID is the topic's ID; the General topic (ID 1) exists from the
// start and has no such message. A message in a topic other than General
// carries a reply header with forum_topic set: reply_to_msg_id is the topic
// ID, or, for a reply inside the topic, the answered message, with
// reply_to_top_id the topic ID. In this TL layer the topic methods are
// messages.createForumTopic, messages.editForumTopic,
// messages.getForumTopics and messages.getForumTopicsByID.

// GeneralTopicID is the ID of a forum's General topic.
const GeneralTopicID = 1

var (
	errTopicIDInvalid = tgerr.New(400, "TOPIC_ID_INVALID")
	errChannelForum   = tgerr.New(400, "CHANNEL_FORUM_MISSING")
)

// forum is the topics of a forum supergroup.
type forum struct {
	topics map[int]*forumTopic
	order  []int // creation order
}

type forumTopic struct {
	id      int
	title   string
	creator int64
	date    time.Time
	closed  bool
}

// Topic is a forum topic as the world API shows it.
type Topic struct {
	ID      int
	Title   string
	Creator int64
	Closed  bool
}

// CreateForum creates a forum supergroup (spec.Broadcast is ignored), with
// its creation message (ID 1, the General topic's).
func (s *Server) CreateForum(spec ChannelSpec) (Channel, error) {
	spec.Broadcast = false
	ch, err := s.CreateChannel(spec)
	if err != nil {
		return ch, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.forums == nil {
		s.st.forums = map[int64]*forum{}
	}
	s.st.forums[ch.ID] = &forum{topics: map[int]*forumTopic{}}
	// Message 1 opens the group and the General topic: topics created
	// later never have the General topic's ID.
	c := s.st.channels[ch.ID]
	s.addChannelMsgLocked(c, &channelMsg{
		ChannelMessage: ChannelMessage{From: spec.Creator, Action: "create", Title: spec.Title},
		action:         &tg.MessageActionChannelCreate{Title: spec.Title},
	}, 0)
	return c.snapshot(), nil
}

func (s *Server) forumLocked(channelID int64) *forum { return s.st.forums[channelID] }

// topicOfLocked is the topic a message of a forum is in (0: not a forum,
// or General).
func (s *Server) topicOfLocked(ch *channel, m *channelMsg) int {
	if s.forumLocked(ch.id) == nil || m.topic == GeneralTopicID {
		return 0
	}
	return m.topic
}

// topicReplyHeaderLocked is the reply header of a message in a topic (nil
// outside topics).
func (s *Server) topicReplyHeaderLocked(ch *channel, m *channelMsg) *tg.MessageReplyHeader {
	topic := s.topicOfLocked(ch, m)
	if topic == 0 || m.ID == topic {
		return nil
	}
	h := &tg.MessageReplyHeader{ForumTopic: true, ReplyToMsgID: topic}
	if m.replyTo != 0 && m.replyTo != topic {
		h.ReplyToMsgID = m.replyTo
		h.SetReplyToTopID(topic)
	}
	h.SetFlags()
	return h
}

// sendTopicLocked is the topic of a message a client sends, from its
// reply_to: top_msg_id, a topic's ID as the answered message, or the topic
// of the answered message. The General topic is 0.
func (s *Server) sendTopicLocked(ch *channel, reply tg.InputReplyToClass) (int, error) {
	f := s.forumLocked(ch.id)
	rt, ok := reply.(*tg.InputReplyToMessage)
	if f == nil || !ok {
		return 0, nil
	}
	if top, ok := rt.GetTopMsgID(); ok && top != GeneralTopicID {
		if f.topics[top] == nil {
			return 0, errTopicIDInvalid
		}
		return top, nil
	}
	if f.topics[rt.ReplyToMsgID] != nil {
		return rt.ReplyToMsgID, nil
	}
	if rt.ReplyToMsgID > 0 && rt.ReplyToMsgID <= len(ch.msgs) {
		return ch.msgs[rt.ReplyToMsgID-1].topic, nil
	}
	return 0, nil
}

func (t *forumTopic) snapshot() Topic {
	return Topic{ID: t.id, Title: t.title, Creator: t.creator, Closed: t.closed}
}

// Topics returns a forum's topics other than General, oldest first.
func (s *Server) Topics(channelID int64) []Topic {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.forumLocked(channelID)
	if f == nil {
		return nil
	}
	out := make([]Topic, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, f.topics[id].snapshot())
	}
	return out
}

// CreateTopic makes by open a topic in a forum; it returns the topic (its
// ID is its creation message's).
func (s *Server) CreateTopic(channelID, by int64, title string) (Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return Topic{}, fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	t, _, err := s.createTopicLocked(ch, by, title, 0)
	if err != nil {
		return Topic{}, err
	}
	return t.snapshot(), nil
}

func (s *Server) createTopicLocked(ch *channel, by int64, title string, exceptSession int64) (*forumTopic, *channelMsg, error) {
	f := s.forumLocked(ch.id)
	title = strings.TrimSpace(title)
	switch {
	case f == nil:
		return nil, nil, errChannelForum
	case !ch.member[by]:
		return nil, nil, errChannelPrivate
	case title == "":
		return nil, nil, tgerr.New(400, "TOPIC_TITLE_EMPTY")
	}
	m := &channelMsg{
		ChannelMessage: ChannelMessage{From: by, Action: "topic_create", Title: title},
		action:         &tg.MessageActionTopicCreate{Title: title, IconColor: 0x6FB9F0},
	}
	// The creation message opens the topic: it is in it.
	m.topic = len(ch.msgs) + 1
	t := &forumTopic{id: m.topic, title: title, creator: by, date: time.Now().Truncate(time.Second)}
	f.topics[t.id] = t
	f.order = append(f.order, t.id)
	s.addChannelMsgLocked(ch, m, exceptSession)
	return t, m, nil
}

// RenameTopic makes by (the topic's creator or an admin) rename a topic:
// a messageActionTopicEdit service message in the topic.
func (s *Server) RenameTopic(channelID, by int64, topicID int, title string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	_, err := s.editTopicLocked(ch, by, topicID, title, nil, 0)
	return err
}

func (s *Server) editTopicLocked(ch *channel, by int64, topicID int, title string, closed *bool, exceptSession int64) (*channelMsg, error) {
	f := s.forumLocked(ch.id)
	if f == nil {
		return nil, errChannelForum
	}
	t := f.topics[topicID]
	switch {
	case t == nil:
		return nil, errTopicIDInvalid
	case !ch.member[by]:
		return nil, errChannelPrivate
	case t.creator != by && !ch.isAdmin(by):
		return nil, errChatAdminRequired
	}
	act := &tg.MessageActionTopicEdit{}
	if title = strings.TrimSpace(title); title != "" && title != t.title {
		t.title = title
		act.SetTitle(title)
	}
	if closed != nil && *closed != t.closed {
		t.closed = *closed
		act.SetClosed(*closed)
	}
	act.SetFlags()
	if act.Flags.Zero() {
		return nil, tgerr.New(400, "TOPIC_NOT_MODIFIED")
	}
	m := &channelMsg{ChannelMessage: ChannelMessage{From: by, Action: "topic_edit", Title: t.title}, action: act}
	m.topic = topicID
	s.addChannelMsgLocked(ch, m, exceptSession)
	return m, nil
}

// PostInTopic posts text from a member in a forum topic (GeneralTopicID:
// the General topic), as an answer to replyTo if not 0.
func (s *Server) PostInTopic(channelID, from int64, topicID int, text string, replyTo int) (ChannelMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return ChannelMessage{}, fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	f := s.forumLocked(ch.id)
	if f == nil {
		return ChannelMessage{}, errChannelForum
	}
	if topicID != GeneralTopicID && f.topics[topicID] == nil {
		return ChannelMessage{}, errTopicIDInvalid
	}
	if !ch.canPost(from) {
		return ChannelMessage{}, fmt.Errorf("tgsim: %d cannot post in channel %d", from, channelID)
	}
	m := &channelMsg{ChannelMessage: ChannelMessage{From: from, Text: text}, replyTo: replyTo}
	m.topic = topicID
	s.addChannelMsgLocked(ch, m, 0)
	return m.ChannelMessage, nil
}

// MessageTopic is the topic a channel message is in (0: not in a forum
// topic, or in General).
func (s *Server) MessageTopic(channelID int64, id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok || id <= 0 || id > len(ch.msgs) {
		return 0
	}
	return s.topicOfLocked(ch, ch.msgs[id-1])
}

func (s *Server) tgForumTopicLocked(ch *channel, t *forumTopic, viewer int64) *tg.ForumTopic {
	out := &tg.ForumTopic{
		ID: t.id, Date: int(t.date.Unix()), Peer: &tg.PeerChannel{ChannelID: ch.id}, Title: t.title,
		IconColor: 0x6FB9F0, TopMessage: t.id, FromID: &tg.PeerUser{UserID: t.creator},
		Closed: t.closed, My: t.creator == viewer,
	}
	for i := len(ch.msgs) - 1; i >= 0; i-- {
		if m := ch.msgs[i]; m.topic == t.id && !m.Deleted {
			out.TopMessage = m.ID
			break
		}
	}
	return out
}

// forumChannelLocked resolves the channel of a topic request's peer.
func (s *Server) forumChannelLocked(self *user, peer tg.InputPeerClass) (*channel, *forum, error) {
	in, ok := peer.(*tg.InputPeerChannel)
	if !ok {
		return nil, nil, errPeerIDInvalid
	}
	ch, err := s.memberChannelLocked(self, &tg.InputChannel{ChannelID: in.ChannelID, AccessHash: in.AccessHash})
	if err != nil {
		return nil, nil, err
	}
	f := s.forumLocked(ch.id)
	if f == nil {
		return nil, nil, errChannelForum
	}
	return ch, f, nil
}

func (s *Server) forumTopicsLocked(ch *channel, ids []int, viewer int64) *tg.MessagesForumTopics {
	f := s.forumLocked(ch.id)
	out := &tg.MessagesForumTopics{Chats: []tg.ChatClass{s.tgChannelLocked(ch, viewer)}, Pts: ch.pts}
	var users []int64
	for _, id := range ids {
		t := f.topics[id]
		if t == nil {
			continue
		}
		out.Topics = append(out.Topics, s.tgForumTopicLocked(ch, t, viewer))
		out.Messages = append(out.Messages, s.tgChannelMsgLocked(ch, ch.msgs[t.id-1], viewer))
		if !slices.Contains(users, t.creator) {
			users = append(users, t.creator)
		}
	}
	out.Count = len(out.Topics)
	out.Users = s.tgUsersLocked(viewer, users...)
	return out
}

func (s *Server) withForum(ctx context.Context, peer tg.InputPeerClass, f func(r *request, self *user, ch *channel, fo *forum) (any, error)) (any, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	self, err := s.selfLocked(r)
	if err != nil {
		return nil, err
	}
	ch, fo, err := s.forumChannelLocked(self, peer)
	if err != nil {
		return nil, err
	}
	return f(r, self, ch, fo)
}

func (s *Server) messagesCreateForumTopic(ctx context.Context, req *tg.MessagesCreateForumTopicRequest) (tg.UpdatesClass, error) {
	res, err := s.withForum(ctx, req.Peer, func(r *request, self *user, ch *channel, _ *forum) (any, error) {
		_, m, err := s.createTopicLocked(ch, self.acc.ID, req.Title, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		upd := s.channelMsgUpdatesLocked(ch, m, self.acc.ID)
		upd.Updates = append([]tg.UpdateClass{&tg.UpdateMessageID{ID: m.ID, RandomID: req.RandomID}}, upd.Updates...)
		return upd, nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*tg.Updates), nil
}

func (s *Server) messagesEditForumTopic(ctx context.Context, req *tg.MessagesEditForumTopicRequest) (tg.UpdatesClass, error) {
	res, err := s.withForum(ctx, req.Peer, func(r *request, self *user, ch *channel, _ *forum) (any, error) {
		var closed *bool
		if v, ok := req.GetClosed(); ok {
			closed = &v
		}
		title, _ := req.GetTitle()
		m, err := s.editTopicLocked(ch, self.acc.ID, req.TopicID, title, closed, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return s.channelMsgUpdatesLocked(ch, m, self.acc.ID), nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*tg.Updates), nil
}

func (s *Server) messagesGetForumTopics(ctx context.Context, req *tg.MessagesGetForumTopicsRequest) (*tg.MessagesForumTopics, error) {
	res, err := s.withForum(ctx, req.Peer, func(_ *request, self *user, ch *channel, f *forum) (any, error) {
		// Newest first, from offset_topic (exclusive) on, at most limit.
		var ids []int
		for i := len(f.order) - 1; i >= 0 && len(ids) < min(max(req.Limit, 1), 100); i-- {
			if id := f.order[i]; req.OffsetTopic == 0 || id < req.OffsetTopic {
				ids = append(ids, id)
			}
		}
		out := s.forumTopicsLocked(ch, ids, self.acc.ID)
		out.Count = len(f.order)
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*tg.MessagesForumTopics), nil
}

func (s *Server) messagesGetForumTopicsByID(ctx context.Context, req *tg.MessagesGetForumTopicsByIDRequest) (*tg.MessagesForumTopics, error) {
	res, err := s.withForum(ctx, req.Peer, func(_ *request, self *user, ch *channel, _ *forum) (any, error) {
		return s.forumTopicsLocked(ch, req.Topics, self.acc.ID), nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*tg.MessagesForumTopics), nil
}

func (s *Server) registerTopics(d *tg.ServerDispatcher) {
	d.OnMessagesCreateForumTopic(s.messagesCreateForumTopic)
	d.OnMessagesEditForumTopic(s.messagesEditForumTopic)
	d.OnMessagesGetForumTopics(s.messagesGetForumTopics)
	d.OnMessagesGetForumTopicsByID(s.messagesGetForumTopicsByID)
}
