package tgsim

import (
	"context"
	"sync"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tgtest"
	"go.uber.org/zap"
)

// trackSession records the session a request came on, and the connection
// it uses.
func (s *Server) trackSession(req *tgtest.Request, noUpdates bool) *session {
	c, _ := req.RequestCtx.Value(connKey{}).(*conn)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.st.sessions[req.Session.ID]
	if sess == nil || sess.conn != c {
		if sess != nil {
			sess.out.close()
		}
		sess = &session{
			mt:    req.Session,
			keyID: req.Session.AuthKey.ID,
			conn:  c,
			out:   newOutbox(),
		}
		s.st.sessions[req.Session.ID] = sess
		s.wg.Add(1)
		go s.runOutbox(sess)
	}
	if noUpdates {
		sess.noUpdates = true
	}
	return sess
}

// connClosed forgets the sessions of a closed connection.
func (s *Server) connClosed(c *conn) {
	var gone []tgtest.Session
	s.mu.Lock()
	delete(s.st.conns, c)
	for id, sess := range s.st.sessions {
		if sess.conn == c {
			delete(s.st.sessions, id)
			sess.out.close()
			gone = append(gone, sess.mt)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		// tgtest keeps a connection per session ID until told otherwise.
		s.mt.ForceDisconnect(k)
	}
}

// outbox is the queue of updates for one session. A goroutine per session
// writes them in order, so handlers never block on a slow client.
type outbox struct {
	mu     sync.Mutex
	queue  [][]byte
	busy   bool // runOutbox is writing what it took
	signal chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newOutbox() *outbox {
	return &outbox{signal: make(chan struct{}, 1), done: make(chan struct{})}
}

func (o *outbox) push(b []byte) {
	o.mu.Lock()
	o.queue = append(o.queue, b)
	o.mu.Unlock()
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

func (o *outbox) take() [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queue
	o.queue = nil
	o.busy = len(q) > 0
	return q
}

// written tells whether everything pushed so far has been written.
func (o *outbox) written() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue) == 0 && !o.busy
}

func (o *outbox) doneWriting() {
	o.mu.Lock()
	o.busy = false
	o.mu.Unlock()
}

func (o *outbox) close() { o.once.Do(func() { close(o.done) }) }

func (s *Server) runOutbox(sess *session) {
	defer s.wg.Done()
	for {
		select {
		case <-sess.out.done:
			return
		case <-s.ctx.Done():
			return
		case <-sess.out.signal:
		}
		for _, b := range sess.out.take() {
			ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
			err := s.mt.Send(ctx, sess.mt, tgtest.MessageFromServer, rawMessage(b))
			cancel()
			if err != nil {
				// The connection is going away; connClosed ends this loop.
				s.log.Debug("Failed to push update", zap.Int64("session_id", sess.mt.ID), zap.Error(err))
			}
		}
		sess.out.doneWriting()
	}
}

// rawMessage is an already encoded TL object.
type rawMessage []byte

func (r rawMessage) Encode(b *bin.Buffer) error {
	b.Put(r)
	return nil
}

// pushLocked encodes u once and queues it for every session that match
// selects, skipping connections that asked for no updates.
func (s *Server) pushLocked(u bin.Encoder, match func(*session) bool) {
	var b bin.Buffer
	if err := u.Encode(&b); err != nil {
		s.log.Error("Failed to encode update", zap.Error(err))
		return
	}
	data := b.Copy() // shared read-only by the outboxes
	for _, sess := range s.st.sessions {
		if sess.noUpdates || sess.conn == nil || sess.conn.closed.Load() || !match(sess) || s.pausedLocked(sess) {
			continue
		}
		sess.out.push(data)
	}
}

// pushToUserLocked pushes u to the online sessions logged in as userID,
// except the session exceptSession (0 for none).
func (s *Server) pushToUserLocked(userID int64, exceptSession int64, u bin.Encoder) {
	s.pushLocked(u, func(sess *session) bool {
		if sess.mt.ID == exceptSession {
			return false
		}
		a, ok := s.st.keys[sess.keyID]
		return ok && a.userID == userID
	})
}

// pushToKeyLocked pushes u to the online sessions of an auth key, logged in
// or not.
func (s *Server) pushToKeyLocked(keyID [8]byte, u bin.Encoder) {
	s.pushLocked(u, func(sess *session) bool { return sess.keyID == keyID })
}

// onlineSessionsLocked counts the update-receiving sessions logged in as
// userID.
func (s *Server) onlineSessionsLocked(userID int64) int {
	n := 0
	for _, sess := range s.st.sessions {
		if sess.noUpdates || sess.conn == nil || sess.conn.closed.Load() {
			continue
		}
		if a, ok := s.st.keys[sess.keyID]; ok && a.userID == userID {
			n++
		}
	}
	return n
}
