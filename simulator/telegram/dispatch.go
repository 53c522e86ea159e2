package tgsim

import (
	"context"
	"errors"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/mt"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"go.uber.org/zap"
)

var (
	mtTypes = mt.TypesMap()
	tgTypes = tg.TypesMap()

	errMethodInvalid  = tgerr.New(400, "INPUT_METHOD_INVALID")
	errInternal       = tgerr.New(500, "INTERNAL_SERVER_ERROR")
	errUnauthorized   = tgerr.New(401, "AUTH_KEY_UNREGISTERED")
	errSessionRevoked = tgerr.New(401, "SESSION_REVOKED")
	errRequestInvalid = tgerr.New(400, "INPUT_REQUEST_INVALID")
)

// request is what handlers know about the request they serve.
type request struct {
	sess  *session
	keyID [8]byte
	// after runs once the response has been written, so that pushes it
	// triggers reach the client after the response.
	after []func()
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	if r == nil {
		// Handlers are only reached through onMessage.
		panic("tgsim: request context missing")
	}
	return r
}

// onMessage is the tgtest handler: it strips the invokeWithLayer,
// initConnection and invokeWithoutUpdates wrappers, records the session and
// dispatches the query to a typed handler. It never returns an error for a
// failed query: the client always gets an RPC error.
func (s *Server) onMessage(srv *tgtest.Server, req *tgtest.Request) (rErr error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("Handler panicked", zap.Any("panic", r), zap.Stack("stack"))
			rErr = srv.SendErr(req, errInternal)
		}
	}()
	id, err := req.Buf.PeekID()
	if err != nil {
		return err
	}
	if _, ok := mtTypes[id]; ok {
		// Service messages tgtest does not answer itself (msgs_ack and the
		// like) need no answer.
		return nil
	}

	noUpdates := false
unwrap:
	for {
		inner := &peekID{}
		var wrapper bin.Decoder
		switch id {
		case tg.InvokeWithLayerRequestTypeID:
			wrapper = &tg.InvokeWithLayerRequest{Query: inner}
		case tg.InitConnectionRequestTypeID:
			wrapper = &tg.InitConnectionRequest{Query: inner}
		case tg.InvokeWithoutUpdatesRequestTypeID:
			noUpdates = true
			wrapper = &tg.InvokeWithoutUpdatesRequest{Query: inner}
		default:
			break unwrap
		}
		if err := wrapper.Decode(req.Buf); err != nil {
			return srv.SendErr(req, errRequestInvalid)
		}
		id = inner.id
	}

	sess := s.trackSession(req, noUpdates)
	r := &request{sess: sess, keyID: req.Session.AuthKey.ID}
	if hook := s.beforeAnswer.Load(); hook != nil {
		s.runBeforeAnswer(*hook, r, id)
	}
	ctx := context.WithValue(req.RequestCtx, requestKey{}, r)

	result, err := s.disp.Handle(ctx, req.Buf)
	if err != nil {
		return s.sendErr(srv, req, id, err)
	}
	if err := srv.SendResult(req, result); err != nil {
		return err
	}
	for _, f := range r.after {
		f()
	}
	return nil
}

func (s *Server) sendErr(srv *tgtest.Server, req *tgtest.Request, id uint32, err error) error {
	var rpcErr *tgerr.Error
	if !errors.As(err, &rpcErr) {
		s.log.Error("Request failed", zap.String("method", tgTypes[id]), zap.Error(err))
		rpcErr = errInternal
	} else {
		s.log.Debug("Request refused", zap.String("method", tgTypes[id]), zap.String("error", rpcErr.Type))
	}
	return srv.SendErr(req, rpcErr)
}

func (s *Server) unknownMethod(_ context.Context, b *bin.Buffer) (bin.Encoder, error) {
	id, err := b.PeekID()
	if err != nil {
		return nil, errRequestInvalid
	}
	name, ok := tgTypes[id]
	if !ok {
		name = "unknown"
	}
	s.log.Warn("Unimplemented method called", zap.String("method", name), zap.Uint32("type_id", id))
	return nil, errMethodInvalid
}

// peekID decodes nothing: it records the type ID of a wrapped query and
// leaves the buffer positioned on it.
type peekID struct{ id uint32 }

func (p *peekID) Decode(b *bin.Buffer) error {
	id, err := b.PeekID()
	if err != nil {
		return err
	}
	p.id = id
	return nil
}

func (p *peekID) Encode(*bin.Buffer) error {
	return errors.New("peekID cannot be encoded")
}

// self returns the user logged in on the request's auth key.
func (s *Server) self(ctx context.Context) (*user, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.selfLocked(r)
}

func (s *Server) selfLocked(r *request) (*user, error) {
	a, ok := s.st.keys[r.keyID]
	if ok && a.revoked {
		return nil, errSessionRevoked
	}
	if !ok || a.userID == 0 {
		return nil, errUnauthorized
	}
	u, ok := s.st.users[a.userID]
	if !ok {
		return nil, errUnauthorized
	}
	return u, nil
}
