package tgsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Basic groups ("chats"). Unlike a channel, a basic group has no message box
// of its own: each message is stored in every member's own history, with a
// different ID per member, and pushed as updateNewMessage with that member's
// pts.

var errChatIDInvalid = tgerr.New(400, "CHAT_ID_INVALID")

// ErrNoChat is returned by the world API for an unknown basic group.
var ErrNoChat = errors.New("tgsim: no such basic group")

// ErrNotChatMember is returned by the world API when a non-member posts.
var ErrNotChatMember = errors.New("tgsim: not a member of the basic group")

// ChatSpec describes a basic group to create.
type ChatSpec struct {
	Title   string
	About   string
	Creator int64   // account that owns it (must exist)
	Members []int64 // other members
}

// Chat is a basic group as the world API shows it.
type Chat struct {
	ID      int64
	Title   string
	About   string
	Creator int64
	Members []int64 // in join order
}

// basicChat is a basic group.
type basicChat struct {
	id      int64
	title   string
	about   string
	creator int64
	members []int64
	created time.Time
	// migratedTo is the supergroup the group became (0: none).
	migratedTo int64
}

func (c *basicChat) isMember(id int64) bool { return slices.Contains(c.members, id) }

func (c *basicChat) snapshot() Chat {
	return Chat{ID: c.id, Title: c.title, About: c.about, Creator: c.creator, Members: slices.Clone(c.members)}
}

// CreateChat creates a basic group (silently: members learn of it from its
// messages).
func (s *Server) CreateChat(spec ChatSpec) (Chat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	members := []int64{spec.Creator}
	for _, m := range append([]int64{spec.Creator}, spec.Members...) {
		if _, ok := s.st.users[m]; !ok {
			return Chat{}, fmt.Errorf("%w: %d", ErrNoAccount, m)
		}
		if !slices.Contains(members, m) {
			members = append(members, m)
		}
	}
	if s.st.chats == nil {
		s.st.chats = map[int64]*basicChat{}
	}
	// Basic group IDs live in their own space, far from users and channels.
	s.st.nextChatID++
	c := &basicChat{
		id:      900000000 + s.st.nextChatID,
		title:   spec.Title,
		about:   spec.About,
		creator: spec.Creator,
		members: members,
		created: time.Now().Truncate(time.Second),
	}
	s.st.chats[c.id] = c
	s.changedLocked()
	return c.snapshot(), nil
}

// ChatInfo returns a basic group.
func (s *Server) ChatInfo(id int64) (Chat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.chats[id]
	if !ok {
		return Chat{}, fmt.Errorf("%w: %d", ErrNoChat, id)
	}
	return c.snapshot(), nil
}

// ChatPost posts text from a member to a basic group: the message is stored
// in every member's history and pushed to each member's sessions. It returns
// the message's ID per member.
func (s *Server) ChatPost(chatID, from int64, text string) (map[int64]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.chats[chatID]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoChat, chatID)
	}
	if !c.isMember(from) {
		return nil, fmt.Errorf("%w: %d", ErrNotChatMember, from)
	}
	if c.migratedTo != 0 {
		return nil, fmt.Errorf("%w: %d", ErrChatMigrated, chatID)
	}
	m := s.deliverChatLocked(c, from, text)
	ids := make(map[int64]int, len(m.entries))
	for uid, e := range m.entries {
		ids[uid] = e.id
	}
	for _, uid := range c.members {
		s.pushToUserLocked(uid, 0, s.chatMessageUpdatesLocked(m, uid))
	}
	return ids, nil
}

// deliverChatLocked stores a basic-group message in every member's history.
func (s *Server) deliverChatLocked(c *basicChat, from int64, text string) *stored {
	m := &stored{
		from:    from,
		chat:    c.id,
		text:    text,
		date:    s.nowLocked(),
		entries: map[int64]*boxEntry{},
	}
	for _, uid := range c.members {
		u := s.st.users[uid]
		u.pts++
		e := &boxEntry{id: len(u.box) + 1, pts: u.pts, msg: m}
		u.box = append(u.box, e)
		m.entries[uid] = e
		if uid == from {
			m.fromID, m.senderEntry = e.id, e
		}
	}
	s.changedLocked()
	return m
}

func (s *Server) chatMessageUpdatesLocked(m *stored, viewer int64) *tg.Updates {
	return &tg.Updates{
		Updates: []tg.UpdateClass{&tg.UpdateNewMessage{
			Message:  s.tgMessageClassLocked(m, viewer),
			Pts:      m.entries[viewer].pts,
			PtsCount: 1,
		}},
		Users: s.tgUsersLocked(viewer, m.from),
		Chats: s.tgChatsForLocked(viewer, m.chat),
		Date:  int(time.Now().Unix()),
	}
}

// ChatMessages returns the basic group's messages as viewer sees them
// (IDs of viewer's history), oldest first.
func (s *Server) ChatMessages(chatID, viewer int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[viewer]
	if !ok {
		return nil
	}
	var out []Message
	for _, e := range u.box {
		if e.msg.chat != chatID {
			continue
		}
		out = append(out, Message{ID: e.id, From: e.msg.from, Text: e.msg.text, Date: e.msg.date})
	}
	return out
}

func (s *Server) tgChatsLocked(ids ...int64) []tg.ChatClass {
	var out []tg.ChatClass
	for _, id := range ids {
		if c, ok := s.st.chats[id]; ok {
			out = append(out, s.tgChatLocked(c))
		}
	}
	return out
}

func (s *Server) tgChatLocked(c *basicChat) *tg.Chat {
	out := &tg.Chat{
		ID:                c.id,
		Title:             c.title,
		Photo:             s.tgChatPhotoLocked(c.id),
		ParticipantsCount: len(c.members),
		Date:              int(c.created.Unix()),
		Version:           1,
	}
	if ch, ok := s.st.channels[c.migratedTo]; ok {
		out.SetDeactivated(true)
		out.SetMigratedTo(&tg.InputChannel{ChannelID: ch.id, AccessHash: ch.accessHash})
	}
	return out
}

func (s *Server) registerBasicGroups(d *tg.ServerDispatcher) {
	d.OnMessagesGetChats(s.messagesGetChats)
	d.OnMessagesGetFullChat(s.messagesGetFullChat)
	d.OnMessagesAddChatUser(s.messagesAddChatUser)
	d.OnMessagesDeleteChatUser(s.messagesDeleteChatUser)
	d.OnMessagesEditChatTitle(s.messagesEditChatTitle)
	d.OnMessagesEditChatAbout(s.messagesEditChatAboutAny)
	d.OnMessagesMigrateChat(s.messagesMigrateChat)
}

func (s *Server) messagesGetChats(ctx context.Context, ids []int64) (tg.MessagesChatsClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (tg.MessagesChatsClass, error) {
		out := &tg.MessagesChats{}
		for _, id := range ids {
			c, ok := s.st.chats[id]
			if !ok || !c.isMember(self.acc.ID) {
				return nil, errChatIDInvalid
			}
			out.Chats = append(out.Chats, s.tgChatLocked(c))
		}
		return out, nil
	})
}

func (s *Server) messagesGetFullChat(ctx context.Context, id int64) (*tg.MessagesChatFull, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (*tg.MessagesChatFull, error) {
		c, ok := s.st.chats[id]
		if !ok || !c.isMember(self.acc.ID) {
			return nil, errChatIDInvalid
		}
		parts := make([]tg.ChatParticipantClass, 0, len(c.members))
		for _, m := range c.members {
			if m == c.creator {
				parts = append(parts, &tg.ChatParticipantCreator{UserID: m})
				continue
			}
			if s.isChatAdminLocked(c.id, m) {
				parts = append(parts, &tg.ChatParticipantAdmin{UserID: m, InviterID: c.creator, Date: int(c.created.Unix())})
				continue
			}
			parts = append(parts, &tg.ChatParticipant{UserID: m, InviterID: c.creator, Date: int(c.created.Unix())})
		}
		return &tg.MessagesChatFull{
			FullChat: &tg.ChatFull{
				ID:             c.id,
				About:          c.about,
				Participants:   &tg.ChatParticipants{ChatID: c.id, Participants: parts, Version: 1},
				NotifySettings: tg.PeerNotifySettings{},
				ChatPhoto:      s.tgFullPhotoLocked(c.id),
			},
			Chats: []tg.ChatClass{s.tgChatLocked(c)},
			Users: s.tgUsersLocked(self.acc.ID, c.members...),
		}, nil
	})
}
