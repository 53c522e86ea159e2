package tgsim

import "fmt"

// SetSupergroupDefaultRights changes what the members of a supergroup who
// are not admins may do, as its owner's phone would: muted, they may not
// send messages (an announce-only group); infoOpen, they may change its
// title, description and photo. Members are told with updateChannel.
func (s *Server) SetSupergroupDefaultRights(channelID int64, muted, infoOpen bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	if ch.broadcast {
		return fmt.Errorf("channel %d is a broadcast channel, not a supergroup", channelID)
	}
	ch.membersMuted, ch.infoOpen = muted, infoOpen
	s.pushChannelUpdateLocked(ch, 0)
	return nil
}
