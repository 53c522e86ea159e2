package tgsim

import (
	"context"
	"slices"

	"github.com/gotd/td/tg"
)

// Basic-group admins. Only a basic group's creator makes members admins
// (messages.editChatAdmin); its members see them as chatParticipantAdmin.

// isChatAdminLocked tells whether id is an admin (not the creator) of a
// basic group.
func (s *Server) isChatAdminLocked(chatID, id int64) bool {
	return s.st.chatAdmins[chatID][id]
}

// ChatAdmins returns the admins of a basic group other than its creator.
func (s *Server) ChatAdmins(chatID int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for id, ok := range s.st.chatAdmins[chatID] {
		if ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) messagesEditChatAdmin(ctx context.Context, req *tg.MessagesEditChatAdminRequest) (bool, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	self, err := s.selfLocked(r)
	if err != nil {
		return false, err
	}
	c, ok := s.st.chats[req.ChatID]
	if !ok || !c.isMember(self.acc.ID) {
		return false, errChatIDInvalid
	}
	if c.creator != self.acc.ID {
		return false, errChatAdminRequired
	}
	u, err := s.inputUserLocked(self, req.UserID)
	if err != nil {
		return false, err
	}
	if !c.isMember(u.acc.ID) {
		return false, errUserNotMember
	}
	if s.st.chatAdmins == nil {
		s.st.chatAdmins = map[int64]map[int64]bool{}
	}
	if s.st.chatAdmins[c.id] == nil {
		s.st.chatAdmins[c.id] = map[int64]bool{}
	}
	if req.IsAdmin {
		s.st.chatAdmins[c.id][u.acc.ID] = true
	} else {
		delete(s.st.chatAdmins[c.id], u.acc.ID)
	}
	s.pushChatUpdateLocked(c, r.sess.mt.ID)
	return true, nil
}
