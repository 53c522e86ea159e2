package tgsim

import (
	"strings"
	"time"
)

// SetBeforeAnswer makes the server call f before it answers each request,
// with the account logged in on the request's auth key (0 before login) and
// the method's TL name ("users.getUsers"). Updates f pushes to the caller's
// session (a message sent to the account, say) are written to the
// connection before the answer, so a test can put an update exactly where
// a client is between two steps: connected, but not yet answered. nil
// removes the hook. f runs on the connection's goroutine, without the
// server's lock; it must not wait for the client.
func (s *Server) SetBeforeAnswer(f func(account int64, method string)) {
	if f == nil {
		s.beforeAnswer.Store(nil)
		return
	}
	s.beforeAnswer.Store(&f)
}

// pushWriteWait bounds how long a request waits for the updates its hook
// pushed to be written.
const pushWriteWait = 2 * time.Second

func (s *Server) runBeforeAnswer(f func(int64, string), r *request, typeID uint32) {
	s.mu.Lock()
	var account int64
	if a, ok := s.st.keys[r.keyID]; ok {
		account = a.userID
	}
	s.mu.Unlock()
	method, _, _ := strings.Cut(tgTypes[typeID], "#")
	f(account, method)
	deadline := time.NewTimer(pushWriteWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !r.sess.out.written() {
		select {
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}
