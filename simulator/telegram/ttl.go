package tgsim

import (
	"context"
	"fmt"
	"time"

	"github.com/gotd/td/tg"
)

// Self-destructing messages of private chats: either user sets the chat's
// timer (messages.setHistoryTTL, or SetHistoryTTL as a phone does), which
// stores a messageActionSetMessagesTTL service message; the chat's new
// messages carry ttl_period, and the server deletes them for both users
// once it has passed (by the simulator's clock: AdvanceClock), pushing
// updateDeleteMessages.

// userPair is the key of a private chat's settings.
func userPair(a, b int64) [2]int64 {
	if a > b {
		a, b = b, a
	}
	return [2]int64{a, b}
}

// Now is the simulator's clock: the real time moved by AdvanceClock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.st.clockOffset)
}

// nowLocked is the simulator's clock, in whole seconds (Telegram's dates).
func (s *Server) nowLocked() time.Time {
	return time.Now().Add(s.st.clockOffset).Truncate(time.Second)
}

// AdvanceClock moves the simulator's clock ahead by d and deletes the
// self-destructing messages whose time has come.
func (s *Server) AdvanceClock(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.clockOffset += max(d, 0)
	s.expireLocked()
}

// SetHistoryTTL sets the self-destruct timer of the private chat of by and
// peer (0: off), as by's phone does.
func (s *Server) SetHistoryTTL(by, peer int64, ttl time.Duration) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, p, err := s.userPairLocked(by, peer)
	if err != nil {
		return err
	}
	s.setTTLLocked(u, p, int(ttl/time.Second), 0)
	return nil
}

// HistoryTTL is the self-destruct timer of the private chat of a and b.
func (s *Server) HistoryTTL(a, b int64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.st.historyTTL[userPair(a, b)]) * time.Second
}

func (s *Server) messagesSetHistoryTTL(ctx context.Context, req *tg.MessagesSetHistoryTTLRequest) (tg.UpdatesClass, error) {
	return withPeer(s, ctx, req.Peer, func(r *request, self, peer *user) (tg.UpdatesClass, error) {
		if req.Period < 0 {
			return nil, fmt.Errorf("%w: negative period", errPeerIDInvalid)
		}
		m := s.setTTLLocked(self, peer, req.Period, r.sess.mt.ID)
		return s.newMessageUpdatesLocked(m, self.acc.ID), nil
	})
}

// setTTLLocked sets a private chat's timer and stores and pushes its
// service message (to by's sessions but exceptSession).
func (s *Server) setTTLLocked(by, peer *user, seconds int, exceptSession int64) *stored {
	key := userPair(by.acc.ID, peer.acc.ID)
	if seconds > 0 {
		s.st.historyTTL[key] = seconds
	} else {
		delete(s.st.historyTTL, key)
	}
	m := s.deliverLocked(by, peer, "", nil, false)
	m.ttl = 0
	m.action = func() tg.MessageActionClass { return &tg.MessageActionSetMessagesTTL{Period: seconds} }
	s.pushNewMessageLocked(m, exceptSession)
	return m
}

// expireLocked deletes the private messages whose self-destruct time is
// past, from each user's history that still has them.
func (s *Server) expireLocked() {
	now := time.Now().Add(s.st.clockOffset)
	for _, u := range s.st.users {
		var due []int
		for _, e := range u.box {
			m := e.msg
			if m.ttl > 0 && m.chat == 0 && !m.goneFor(u.acc.ID) &&
				!m.date.Add(time.Duration(m.ttl)*time.Second).After(now) {
				due = append(due, e.id)
			}
		}
		if len(due) > 0 {
			s.deleteLocked(u, due, false, 0)
		}
	}
}
