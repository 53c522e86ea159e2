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

// SetGroupDescription changes a group's description from actor's phone;
// members' linked devices get the notification (events.GroupInfo with
// Topic).
func (s *Server) SetGroupDescription(ctx context.Context, actor, group, topic string) error {
	g, err := s.groupByJID(group)
	if err != nil {
		return err
	}
	actor = normalizePhone(actor)
	if err = s.checkInfoRights(g, actor); err != nil {
		return err
	}
	s.mu.Lock()
	g.Topic, g.topicID = topic, NewMessageID()
	topicID := g.topicID
	s.mu.Unlock()
	s.notifyGroupChange(g, actor, waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{"id": topicID},
		Content: []waBinary.Node{{Tag: "body", Content: []byte(topic)}}})
	return ctx.Err()
}

func (s *Server) setSubject(g *Group, actor, name string) error {
	s.mu.Lock()
	if !slices.Contains(g.Members, actor) {
		s.mu.Unlock()
		return ErrNotInGroup
	} else if g.Locked && !isAdminLocked(g, actor) {
		s.mu.Unlock()
		return ErrNotGroupAdmin
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
		ok := g != nil && slices.Contains(g.Members, acc.Phone) && (!g.Locked || isAdminLocked(g, acc.Phone))
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
	case "ephemeral", "not_ephemeral":
		// SetDisappearingTimer of a group.
		g, err := s.groupByJID(to.String())
		var secs uint32
		if child.Tag == "ephemeral" {
			secs = uint32(child.AttrGetter().OptionalInt("expiration"))
		}
		if err == nil {
			err = s.setGroupTimer(g, acc.Phone, secs)
		}
		if err != nil {
			c.iqError(iq, 403, "forbidden")
		} else {
			c.iqResult(iq)
		}
		return true
	case "announcement", "not_announcement", "locked", "unlocked":
		err := s.setGroupFlag(to, acc.Phone, child.Tag)
		if err != nil {
			c.iqError(iq, 403, "forbidden")
		} else {
			c.iqResult(iq)
		}
		return true
	case "leave":
		// LeaveGroup: the asking account leaves each group named.
		for _, gn := range child.GetChildrenByTag("group") {
			jid, _ := gn.Attrs["id"].(types.JID)
			if err := s.RemoveFromGroup(context.Background(), acc.Phone, jid.String(), []string{acc.Phone}); err != nil {
				c.iqError(iq, 404, "item-not-found")
				return true
			}
		}
		c.iqResult(iq)
		return true
	case "add", "remove", "promote", "demote":
		var phones []string
		for _, p := range child.GetChildrenByTag("participant") {
			if jid, ok := p.Attrs["jid"].(types.JID); ok {
				if m := s.accountByJID(jid); m != nil {
					phones = append(phones, m.Phone)
				}
			}
		}
		done, err := s.changeParticipants(to, acc.Phone, child.Tag, phones)
		if err != nil {
			c.iqError(iq, 403, "forbidden")
			return true
		}
		c.iqResult(iq, waBinary.Node{Tag: child.Tag, Content: participantNodes(done)})
		return true
	}
	return false
}

// isAdminLocked tells whether phone is the owner or an admin of g (s.mu held).
func isAdminLocked(g *Group, phone string) bool {
	return g.Owner == phone || slices.Contains(g.Admins, phone)
}

// setGroupFlag turns announce ("announcement", "not_announcement") or
// locked ("locked", "unlocked") on or off, as an admin of group.
func (s *Server) setGroupFlag(group types.JID, actor, tag string) error {
	s.mu.Lock()
	g := s.groups[group.User]
	if g == nil {
		s.mu.Unlock()
		return ErrNoGroup
	} else if !isAdminLocked(g, actor) {
		s.mu.Unlock()
		return ErrNotGroupAdmin
	}
	switch tag {
	case "announcement", "not_announcement":
		g.Announce = tag == "announcement"
	default:
		g.Locked = tag == "locked"
	}
	s.mu.Unlock()
	child := waBinary.Node{Tag: tag}
	if tag == "announcement" || tag == "not_announcement" {
		child.Attrs = waBinary.Attrs{"v_id": NewMessageID()}
	}
	s.notifyGroupChange(g, actor, child)
	return nil
}

// SetGroupAnnounce makes a group announce-only (only admins send) or not,
// from the phone of actor, an admin.
func (s *Server) SetGroupAnnounce(ctx context.Context, actor, group string, on bool) error {
	g, err := s.groupByJID(group)
	if err != nil {
		return err
	}
	tag := "not_announcement"
	if on {
		tag = "announcement"
	}
	if err = s.setGroupFlag(g.JID, normalizePhone(actor), tag); err != nil {
		return err
	}
	return ctx.Err()
}

// SetGroupLocked makes a group's info editable by admins only, or not.
func (s *Server) SetGroupLocked(ctx context.Context, actor, group string, on bool) error {
	g, err := s.groupByJID(group)
	if err != nil {
		return err
	}
	tag := "unlocked"
	if on {
		tag = "locked"
	}
	if err = s.setGroupFlag(g.JID, normalizePhone(actor), tag); err != nil {
		return err
	}
	return ctx.Err()
}

// ChangeGroupParticipants adds, removes, promotes or demotes members
// (action "add", "remove", "promote", "demote") from the phone of actor,
// an admin of the group.
func (s *Server) ChangeGroupParticipants(ctx context.Context, actor, group, action string, members []string) error {
	g, err := s.groupByJID(group)
	if err != nil {
		return err
	}
	phones := make([]string, len(members))
	for i, m := range members {
		phones[i] = normalizePhone(m)
	}
	if _, err = s.changeParticipants(g.JID, normalizePhone(actor), action, phones); err != nil {
		return err
	}
	return ctx.Err()
}

func (s *Server) changeParticipants(group types.JID, actor, action string, phones []string) ([]string, error) {
	s.mu.Lock()
	g := s.groups[group.User]
	if g == nil {
		s.mu.Unlock()
		return nil, ErrNoGroup
	} else if !isAdminLocked(g, actor) {
		s.mu.Unlock()
		return nil, ErrNotGroupAdmin
	}
	var done []string
	for _, p := range phones {
		in := slices.Contains(g.Members, p)
		switch {
		case action == "add" && !in && s.accounts[p] != nil:
			g.Members = append(g.Members, p)
		case action == "remove" && in && p != g.Owner:
			g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == p })
			g.Admins = slices.DeleteFunc(g.Admins, func(m string) bool { return m == p })
		case action == "promote" && in && !isAdminLocked(g, p):
			g.Admins = append(g.Admins, p)
		case action == "demote" && in && slices.Contains(g.Admins, p):
			g.Admins = slices.DeleteFunc(g.Admins, func(m string) bool { return m == p })
		default:
			continue
		}
		done = append(done, p)
	}
	s.mu.Unlock()
	if len(done) == 0 {
		return nil, ErrNotInGroup
	}
	var also []string
	if action == "remove" {
		also = done
	}
	s.notifyGroupChange(g, actor, waBinary.Node{Tag: action, Content: participantNodes(done)}, also...)
	return done, nil
}

// groupMetaRoutes adds the control API's group changes: POST /groups/remove
// {"actor","group","members"}, /groups/subject {"actor","group","name"},
// /groups/announce and /groups/locked {"actor","group","on"}, and
// /groups/participants {"actor","group","action","members"} (action add,
// remove, promote or demote). GET /groups/{jid} reads a group back.
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
	mux.HandleFunc("POST /groups/announce", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Actor, Group string
			On           bool
		}
		if readJSON(w, r, &req) {
			writeResult(w, s.SetGroupAnnounce(r.Context(), req.Actor, req.Group, req.On))
		}
	})
	mux.HandleFunc("POST /groups/locked", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Actor, Group string
			On           bool
		}
		if readJSON(w, r, &req) {
			writeResult(w, s.SetGroupLocked(r.Context(), req.Actor, req.Group, req.On))
		}
	})
	mux.HandleFunc("POST /groups/participants", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Actor, Group, Action string
			Members              []string
		}
		if readJSON(w, r, &req) {
			writeResult(w, s.ChangeGroupParticipants(r.Context(), req.Actor, req.Group, req.Action, req.Members))
		}
	})
	mux.HandleFunc("GET /groups/{jid}", func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.GroupInfo(r.PathValue("jid"))
		if !ok {
			writeError(w, ErrNoGroup)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"jid": g.JID.String(), "name": g.Name, "topic": g.Topic, "owner": g.Owner,
			"members": g.Members, "admins": g.Admins, "announce": g.Announce, "locked": g.Locked,
		})
	})
	mux.HandleFunc("POST /groups/subject", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Actor, Group, Name string }
		if readJSON(w, r, &req) {
			writeResult(w, s.SetGroupSubject(r.Context(), req.Actor, req.Group, req.Name))
		}
	})
}
