package tgsim

import (
	"context"

	"github.com/gotd/td/tg"
)

// withSelf runs f under the simulator's lock with the request and the user
// logged in on its auth key.
func withSelf[R any](s *Server, ctx context.Context, f func(r *request, self *user) (R, error)) (R, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	self, err := s.selfLocked(r)
	if err != nil {
		var zero R
		return zero, err
	}
	return f(r, self)
}

// withResolved runs f under the simulator's lock with the request, its
// user and what resolve finds for that user (a user, a group, a channel).
func withResolved[T, R any](s *Server, ctx context.Context, resolve func(self *user) (T, error), f func(r *request, self *user, t T) (R, error)) (R, error) {
	return withSelf(s, ctx, func(r *request, self *user) (R, error) {
		t, err := resolve(self)
		if err != nil {
			var zero R
			return zero, err
		}
		return f(r, self, t)
	})
}

// withPeer runs f under the simulator's lock with the request's user and
// the user its InputPeer names (self for InputPeerSelf).
func withPeer[R any](s *Server, ctx context.Context, in tg.InputPeerClass, f func(r *request, self, peer *user) (R, error)) (R, error) {
	return withResolved(s, ctx, func(self *user) (*user, error) { return s.inputPeerLocked(self, in) }, f)
}
