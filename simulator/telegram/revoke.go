package tgsim

import (
	"encoding/json"
	"net/http"
)

// RevokeAuthorizations ends every session of account, as a user who
// terminates them from another device (auth.resetAuthorizations,
// account.resetAuthorization) or Telegram after a password reset does: the
// auth keys stay, but are no longer logged in, so a client's next call that
// needs an authorization gets 401 SESSION_REVOKED. Its connections are
// closed, so that the client notices at once: gotd reconnects and asks for
// its own user (to subscribe to updates), which fails. It returns how many
// authorizations were revoked.
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
			a.userID, a.revoked = 0, true
			n++
		}
	}
	s.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
	return n
}

func (s *Server) httpRevokeSessions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Account json.RawMessage `json:"account"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.Account)
	if !ok {
		return
	}
	httpJSON(w, http.StatusOK, map[string]int{"revoked": s.RevokeAuthorizations(ids[0])})
}
