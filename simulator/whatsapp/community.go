package wasim

import (
	"context"
	"slices"
)

// CreateCommunity creates a community owned by owner with the given
// members: its parent group (where nobody writes) and its announcement
// group (named after the community, announce-only, linked to the parent),
// as WhatsApp makes them. Members' linked devices get both create
// notifications. It returns the two group JIDs.
func (s *Server) CreateCommunity(ctx context.Context, owner, name string, participants []string) (community, announcements string, err error) {
	oacc, err := s.account(owner)
	if err != nil {
		return "", "", err
	}
	members := []*Account{oacc}
	for _, p := range participants {
		acc, err := s.account(p)
		if err != nil {
			return "", "", err
		}
		if !slices.Contains(members, acc) {
			members = append(members, acc)
		}
	}
	parent := s.newGroup(oacc, name, "", members)
	sub := s.newGroup(oacc, name, "", members)
	s.mu.Lock()
	parent.Community = true
	sub.Announce, sub.DefaultSub, sub.Parent = true, true, parent.JID
	s.mu.Unlock()
	s.notifyGroupCreate(parent, nil)
	s.notifyGroupCreate(sub, nil)
	return parent.JID.String(), sub.JID.String(), ctx.Err()
}
