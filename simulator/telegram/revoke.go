package tgsim

// RevokeAuthorizations ends every session of account, as a user who
// terminates them from another device (or Telegram after a password reset)
// does: the auth keys stay, but are no longer logged in, so a client's next
// call gets AUTH_KEY_UNREGISTERED. Its connections are closed, so that the
// client notices at once. It returns how many authorizations were revoked.
func (s *Server) RevokeAuthorizations(account int64) int {
	s.mu.Lock()
	conns := map[*conn]struct{}{}
	for _, sess := range s.st.sessions {
		if a, ok := s.st.keys[sess.keyID]; ok && a.userID == account && sess.conn != nil {
			conns[sess.conn] = struct{}{}
		}
	}
	n := 0
	for _, a := range s.st.keys {
		if a.userID == account {
			a.userID = 0
			n++
		}
	}
	s.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
	return n
}
