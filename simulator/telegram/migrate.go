package tgsim

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Migration of a basic group to a supergroup (messages.migrateChat, by the
// group's creator): a supergroup is created with the group's title,
// description and members (the creator its admin); the group gets
// migrated_to and is deactivated, with a messageActionChatMigrateTo service
// message in every member's history; the supergroup's first message is
// messageActionChannelMigrateFrom, and its full info names the group
// (migrated_from_chat_id, migrated_from_max_id). The group takes no new
// messages.

var errChatMigrated = tgerr.New(400, "CHAT_ID_INVALID")

// ErrChatMigrated is returned by the world API for a basic group that
// became a supergroup.
var ErrChatMigrated = errors.New("tgsim: the basic group became a supergroup")

func (s *Server) migrateChatLocked(c *basicChat, by int64, exceptSession int64) (*channel, *tg.Updates, error) {
	if c.migratedTo != 0 {
		return nil, nil, errChatMigrated
	}
	if by != c.creator {
		return nil, nil, errChatAdminRequired
	}
	ch := s.newChannelLocked(c.title, c.about, false, c.creator)
	for _, m := range c.members {
		ch.addMember(m)
	}
	c.migratedTo = ch.id
	chID := ch.id
	upd := s.chatServiceLocked(c, by, func() tg.MessageActionClass {
		return &tg.MessageActionChatMigrateTo{ChannelID: chID}
	}, exceptSession)
	title, chatID := c.title, c.id
	s.addChannelMsgLocked(ch, &channelMsg{
		ChannelMessage: ChannelMessage{From: by, Action: "migrate_from", Title: title},
		action:         &tg.MessageActionChannelMigrateFrom{Title: title, ChatID: chatID},
	}, 0)
	return ch, upd, nil
}

// tgChatsForLocked renders basic groups as viewer sees them, with the
// supergroups they became.
func (s *Server) tgChatsForLocked(viewer int64, ids ...int64) []tg.ChatClass {
	out := s.tgChatsLocked(ids...)
	for _, id := range ids {
		if c, ok := s.st.chats[id]; ok {
			if ch, ok := s.st.channels[c.migratedTo]; ok {
				out = append(out, s.tgChannelLocked(ch, viewer))
			}
		}
	}
	return out
}

// setMigratedFromLocked names, in a supergroup's full info, the basic group
// it was migrated from.
func (s *Server) setMigratedFromLocked(full *tg.ChannelFull, channelID int64) {
	for _, c := range s.st.chats {
		if c.migratedTo != channelID {
			continue
		}
		full.SetMigratedFromChatID(c.id)
		maxID := 0
		if u, ok := s.st.users[c.creator]; ok {
			for _, e := range u.box {
				if e.msg.chat == c.id {
					maxID = e.id
				}
			}
		}
		full.SetMigratedFromMaxID(maxID)
	}
}

func (s *Server) messagesMigrateChat(ctx context.Context, chatID int64) (tg.UpdatesClass, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	self, err := s.selfLocked(r)
	if err != nil {
		return nil, err
	}
	c, err := s.chatOfLocked(self, chatID)
	if err != nil {
		return nil, err
	}
	_, upd, err := s.migrateChatLocked(c, self.acc.ID, r.sess.mt.ID)
	if err != nil {
		return nil, err
	}
	return upd, nil
}

// MigrateChat makes the group's creator turn it into a supergroup, as the
// creator's phone would; it returns the supergroup.
func (s *Server) MigrateChat(chatID, by int64) (Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, err := s.chatMemberLocked(chatID, by)
	if err != nil {
		return Channel{}, err
	}
	if c.migratedTo != 0 {
		return Channel{}, fmt.Errorf("%w: %d", ErrChatMigrated, chatID)
	}
	ch, _, err := s.migrateChatLocked(c, by, 0)
	if err != nil {
		return Channel{}, err
	}
	return ch.snapshot(), nil
}
