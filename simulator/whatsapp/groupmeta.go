package wasim

import (
	"context"
	"net/http"
	"slices"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// groupByJID returns the group of a JID string ("…@g.us").
func (s *Server) groupByJID(group string) (*Group, error) {
	jid, err := types.ParseJID(group)
	if err != nil {
		return nil, ErrNoGroup
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[jid.User]
	if g == nil {
		return nil, ErrNoGroup
	}
	return g, nil
}

// notifyGroupChange sends a w:gp2 notification made by actor (a phone
// number) with one change child to the linked devices of the group's
// members and of also (members who just left).
func (s *Server) notifyGroupChange(g *Group, actor string, child waBinary.Node, also ...string) {
	node := waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": g.JID, "type": "w:gp2", "id": NewMessageID(), "t": s.now().Unix(),
		"participant": types.NewJID(actor, types.DefaultUserServer),
	}, Content: []waBinary.Node{child}}
	s.mu.Lock()
	phones := append(slices.Clone(g.Members), also...)
	var devs []*companion
	for _, p := range phones {
		if acc := s.accounts[p]; acc != nil {
			devs = append(devs, acc.linkedDevicesLocked()...)
		}
	}
	s.mu.Unlock()
	for _, d := range devs {
		s.pushToDevice(d, node)
	}
}

func participantNodes(phones []string) []waBinary.Node {
	out := make([]waBinary.Node, len(phones))
	for i, p := range phones {
		out[i] = waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": types.NewJID(p, types.DefaultUserServer)}}
	}
	return out
}

// RemoveFromGroup takes members (phone numbers) out of a group on actor's
// behalf; a member removing themselves leaves the group. Every member's
// linked devices, the removed ones' included, get the notification
// (whatsmeow emits events.GroupInfo with Leave).
func (s *Server) RemoveFromGroup(ctx context.Context, actor, group string, members []string) error {
	g, err := s.groupByJID(group)
	if err != nil {
		return err
	}
	actor = normalizePhone(actor)
	var removed []string
	s.mu.Lock()
	if !slices.Contains(g.Members, actor) {
		s.mu.Unlock()
		return ErrNotInGroup
	}
	for _, m := range members {
		m = normalizePhone(m)
		if i := slices.Index(g.Members, m); i >= 0 {
			g.Members = slices.Delete(g.Members, i, i+1)
			removed = append(removed, m)
		}
	}
	s.mu.Unlock()
	if len(removed) == 0 {
		return ErrNotInGroup
	}
	s.notifyGroupChange(g, actor, waBinary.Node{Tag: "remove", Content: participantNodes(removed)}, removed...)
	return ctx.Err()
}

// SetGroupSubject renames a group from actor's phone; members' linked
// devices get the notification (events.GroupInfo with Name).
func (s *Server) SetGroupSubject(ctx context.Context, actor, group, name string) error {
	g, err := s.groupByJID(group)
	if err != nil {
		return err
	}
	actor = normalizePhone(actor)
	if err = s.setSubject(g, actor, name); err != nil {
		return err
	}
	return ctx.Err()
}

func (s *Server) setSubject(g *Group, actor, name string) error {
	s.mu.Lock()
	if !slices.Contains(g.Members, actor) {
		s.mu.Unlock()
		return ErrNotInGroup
	}
	g.Name = name
	s.mu.Unlock()
	now := s.now().Unix()
	s.notifyGroupChange(g, actor, waBinary.Node{Tag: "subject", Attrs: waBinary.Attrs{
		"subject": name, "s_t": now, "s_o": types.NewJID(actor, types.DefaultUserServer),
	}})
	return nil
}

// handleGroupSetIQ answers the group changes a linked device asks for
// (SetGroupName, SetGroupTopic); it reports whether it handled the IQ.
func (s *Server) handleGroupSetIQ(c *conn, iq *waBinary.Node, acc *Account, child waBinary.Node) bool {
	to, _ := iq.Attrs["to"].(types.JID)
	switch child.Tag {
	case "subject":
		s.mu.Lock()
		g := s.groups[to.User]
		s.mu.Unlock()
		if g == nil {
			c.iqError(iq, 404, "item-not-found")
			return true
		}
		name, _ := child.Content.([]byte)
		if err := s.setSubject(g, acc.Phone, string(name)); err != nil {
			c.iqError(iq, 403, "forbidden")
			return true
		}
		c.iqResult(iq)
		return true
	case "description":
		s.mu.Lock()
		g := s.groups[to.User]
		ok := g != nil && slices.Contains(g.Members, acc.Phone)
		var topic, topicID string
		if ok {
			body, _ := child.GetChildByTag("body").Content.([]byte)
			topic = string(body)
			g.Topic, g.topicID = topic, NewMessageID()
			topicID = g.topicID
		}
		s.mu.Unlock()
		if !ok {
			c.iqError(iq, 403, "forbidden")
			return true
		}
		c.iqResult(iq)
		s.notifyGroupChange(g, acc.Phone, waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{"id": topicID},
			Content: []waBinary.Node{{Tag: "body", Content: []byte(topic)}}})
		return true
	}
	return false
}

// groupMetaRoutes adds the control API's group changes: POST /groups/remove
// {"actor","group","members"} and POST /groups/subject {"actor","group","name"}.
func (s *Server) groupMetaRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /groups/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Actor, Group string
			Members      []string
		}
		if readJSON(w, r, &req) {
			writeResult(w, s.RemoveFromGroup(r.Context(), req.Actor, req.Group, req.Members))
		}
	})
	mux.HandleFunc("POST /groups/subject", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Actor, Group, Name string }
		if readJSON(w, r, &req) {
			writeResult(w, s.SetGroupSubject(r.Context(), req.Actor, req.Group, req.Name))
		}
	})
}
