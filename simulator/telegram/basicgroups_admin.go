package tgsim

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Members and settings of basic groups: messages.addChatUser,
// messages.deleteChatUser, messages.editChatTitle and messages.editChatAbout.
// Each change is a service message in every member's history. Any member
// may add members and change the title and the description (Telegram's
// default rights of a basic group); only the creator removes others.

var (
	errUserAlreadyParticipant = tgerr.New(400, "USER_ALREADY_PARTICIPANT")
	errUserNotParticipant     = tgerr.New(400, "USER_NOT_PARTICIPANT")
)

// tgMessageClassLocked renders a stored message or group service message
// as viewer sees it.
func (s *Server) tgMessageClassLocked(m *stored, viewer int64) tg.MessageClass {
	if m.action == nil {
		return s.tgMessageLocked(m, viewer)
	}
	msg := &tg.MessageService{Date: int(m.date.Unix()), Action: m.action()}
	if m.chat != 0 {
		msg.ID, msg.PeerID = m.entries[viewer].id, &tg.PeerChat{ChatID: m.chat}
	} else {
		msg.ID, msg.PeerID = m.IDForUser(viewer), &tg.PeerUser{UserID: peerOf(m, viewer)}
	}
	msg.SetFromID(&tg.PeerUser{UserID: m.from})
	msg.SetOut(viewer == m.from)
	return msg
}

// chatServiceLocked stores a service message of from in every member's
// history, pushes it to them (but exceptSession) and returns the updates
// the caller gets.
func (s *Server) chatServiceLocked(c *basicChat, from int64, action func() tg.MessageActionClass, exceptSession int64) *tg.Updates {
	m := s.deliverChatLocked(c, from, "")
	m.action = action
	for _, uid := range c.members {
		except := int64(0)
		if uid == from {
			except = exceptSession
		}
		s.pushToUserLocked(uid, except, s.chatMessageUpdatesLocked(m, uid))
	}
	if m.entries[from] == nil {
		return &tg.Updates{Date: int(time.Now().Unix())}
	}
	return s.chatMessageUpdatesLocked(m, from)
}

// withChatID runs f under the simulator's lock for a request on the basic
// group chatID, which the caller is a member of and which has not migrated.
func withChatID[R any](s *Server, ctx context.Context, chatID int64, f func(r *request, self *user, c *basicChat) (R, error)) (R, error) {
	return withResolved(s, ctx, func(self *user) (*basicChat, error) { return s.chatOfLocked(self, chatID) }, f)
}

// chatOfLocked is basic group id, which self is a member of.
func (s *Server) chatOfLocked(self *user, id int64) (*basicChat, error) {
	c, ok := s.st.chats[id]
	if !ok {
		return nil, errChatIDInvalid
	}
	if !c.isMember(self.acc.ID) {
		return nil, errChatWriteForbidden
	}
	if c.migratedTo != 0 {
		return nil, errChatMigrated
	}
	return c, nil
}

func (s *Server) addChatUserLocked(c *basicChat, by, uid int64, exceptSession int64) (*tg.Updates, error) {
	if c.isMember(uid) {
		return nil, errUserAlreadyParticipant
	}
	c.members = append(c.members, uid)
	return s.chatServiceLocked(c, by, func() tg.MessageActionClass {
		return &tg.MessageActionChatAddUser{Users: []int64{uid}}
	}, exceptSession), nil
}

func (s *Server) deleteChatUserLocked(c *basicChat, by, uid int64, exceptSession int64) (*tg.Updates, error) {
	if !c.isMember(uid) {
		return nil, errUserNotParticipant
	}
	if by != uid && by != c.creator {
		return nil, errChatAdminRequired
	}
	u := s.chatServiceLocked(c, by, func() tg.MessageActionClass {
		return &tg.MessageActionChatDeleteUser{UserID: uid}
	}, exceptSession)
	c.members = slices.DeleteFunc(c.members, func(m int64) bool { return m == uid })
	s.changedLocked()
	return u, nil
}

func (s *Server) editChatTitleLocked(c *basicChat, by int64, title string, exceptSession int64) (*tg.Updates, error) {
	switch {
	case title == "":
		return nil, errChatTitleEmpty
	case title == c.title:
		return nil, errChatNotModified
	}
	c.title = title
	return s.chatServiceLocked(c, by, func() tg.MessageActionClass {
		return &tg.MessageActionChatEditTitle{Title: title}
	}, exceptSession), nil
}

func (s *Server) messagesAddChatUser(ctx context.Context, req *tg.MessagesAddChatUserRequest) (*tg.MessagesInvitedUsers, error) {
	return withChatID(s, ctx, req.ChatID, func(r *request, self *user, c *basicChat) (*tg.MessagesInvitedUsers, error) {
		u, err := s.inputUserLocked(self, req.UserID)
		if err != nil {
			return nil, err
		}
		upd, err := s.addChatUserLocked(c, self.acc.ID, u.acc.ID, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return &tg.MessagesInvitedUsers{Updates: upd}, nil
	})
}

func (s *Server) messagesDeleteChatUser(ctx context.Context, req *tg.MessagesDeleteChatUserRequest) (tg.UpdatesClass, error) {
	return withChatID(s, ctx, req.ChatID, func(r *request, self *user, c *basicChat) (tg.UpdatesClass, error) {
		u, err := s.inputUserLocked(self, req.UserID)
		if err != nil {
			return nil, err
		}
		return s.deleteChatUserLocked(c, self.acc.ID, u.acc.ID, r.sess.mt.ID)
	})
}

func (s *Server) messagesEditChatTitle(ctx context.Context, req *tg.MessagesEditChatTitleRequest) (tg.UpdatesClass, error) {
	return withChatID(s, ctx, req.ChatID, func(r *request, self *user, c *basicChat) (tg.UpdatesClass, error) {
		return s.editChatTitleLocked(c, self.acc.ID, req.Title, r.sess.mt.ID)
	})
}

// messagesEditChatAboutAny changes a basic group's description, or hands a
// channel's to messagesEditChatAbout.
func (s *Server) messagesEditChatAboutAny(ctx context.Context, req *tg.MessagesEditChatAboutRequest) (bool, error) {
	in, ok := req.Peer.(*tg.InputPeerChat)
	if !ok {
		return s.messagesEditChatAbout(ctx, req)
	}
	return withChatID(s, ctx, in.ChatID, func(_ *request, self *user, c *basicChat) (bool, error) {
		if c.about == req.About {
			return false, errChatNotModified
		}
		c.about = req.About
		s.changedLocked()
		return true, nil
	})
}

// --- the world API ---

// ChatAddUser makes member by add uid to the group, as by's phone would.
func (s *Server) ChatAddUser(chatID, by, uid int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, err := s.chatMemberLocked(chatID, by)
	if err != nil {
		return err
	}
	if _, ok := s.st.users[uid]; !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, uid)
	}
	_, err = s.addChatUserLocked(c, by, uid, 0)
	return err
}

// ChatDeleteUser makes member by remove uid from the group (uid == by:
// leave it).
func (s *Server) ChatDeleteUser(chatID, by, uid int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, err := s.chatMemberLocked(chatID, by)
	if err != nil {
		return err
	}
	_, err = s.deleteChatUserLocked(c, by, uid, 0)
	return err
}

// ChatEditTitle makes member by rename the group.
func (s *Server) ChatEditTitle(chatID, by int64, title string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, err := s.chatMemberLocked(chatID, by)
	if err != nil {
		return err
	}
	_, err = s.editChatTitleLocked(c, by, title, 0)
	return err
}
