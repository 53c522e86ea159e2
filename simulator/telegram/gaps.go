package tgsim

import "github.com/gotd/td/tg"

// Gaps in an account's updates, as a client meets them on the real server:
// a long getDifference comes in slices, one too far behind is told
// differenceTooLong, and pushes may stop for a while (a flaky network, the
// server dropping updates) before resuming.

// SetDifferenceSlice sets how many events (new messages and other pts
// updates) one updates.getDifference answer holds at most; a client further
// behind gets updates.differenceSlice answers and asks again. 0 restores the
// default (1000).
func (s *Server) SetDifferenceSlice(n int) {
	s.mu.Lock()
	s.st.differenceSlice = max(n, 0)
	s.mu.Unlock()
}

// SetDifferenceTooLong makes updates.getDifference answer
// updates.differenceTooLong (with the current pts) to a client more than n
// pts behind; 0 (the default) never does.
func (s *Server) SetDifferenceTooLong(n int) {
	s.mu.Lock()
	s.st.differenceTooLong = max(n, 0)
	s.mu.Unlock()
}

// PauseUpdates stops pushing updates to the sessions of an account: what
// happens meanwhile is in its updates.getDifference only (a gap).
func (s *Server) PauseUpdates(account int64) {
	s.mu.Lock()
	s.st.paused[account] = true
	s.mu.Unlock()
}

// ResumeUpdates pushes updates to the account's sessions again, starting
// with updatesTooLong, which tells a client to fetch its difference.
func (s *Server) ResumeUpdates(account int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.st.paused[account] {
		return
	}
	delete(s.st.paused, account)
	s.pushToUserLocked(account, 0, &tg.UpdatesTooLong{})
}

// pausedLocked tells whether sess belongs to an account whose pushes are
// paused.
func (s *Server) pausedLocked(sess *session) bool {
	if len(s.st.paused) == 0 {
		return false
	}
	a, ok := s.st.keys[sess.keyID]
	return ok && s.st.paused[a.userID]
}
