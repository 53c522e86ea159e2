package wasim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/util/optional"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// Group is a simulated group chat (phone-number addressing mode).
type Group struct {
	JID     types.JID
	Name    string
	Topic   string
	Owner   string   // phone number of the creator
	Members []string // phone numbers, the owner first
	Admins  []string // phone numbers of the admins other than the owner
	// Announce: only admins send; Locked: only admins change the info.
	Announce, Locked bool
	// Community: a community's parent group; Parent, the community of a
	// linked group; DefaultSub, the community's announcement group.
	Community, DefaultSub bool
	Parent                types.JID
	Created               time.Time
	topicID               string
	inviteCode            string
}

// CreateGroup creates a group owned by account owner with the given members
// (phone numbers; the owner is added). Linked devices of every member get a
// group-create notification (whatsmeow emits events.JoinedGroup). It returns
// the group JID ("…@g.us").
func (s *Server) CreateGroup(ctx context.Context, owner, name, topic string, participants []string) (string, error) {
	oacc, err := s.account(owner)
	if err != nil {
		return "", err
	}
	members := []*Account{oacc}
	for _, p := range participants {
		acc, err := s.account(p)
		if err != nil {
			return "", err
		}
		if !slices.Contains(members, acc) {
			members = append(members, acc)
		}
	}
	g := s.newGroup(oacc, name, topic, members)
	s.notifyGroupCreate(g, nil)
	return g.JID.String(), ctx.Err()
}

func (s *Server) newGroup(owner *Account, name, topic string, members []*Account) *Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &Group{
		JID:     types.NewJID(strconv.FormatUint(s.nextGroup, 10), types.GroupServer),
		Name:    name,
		Topic:   topic,
		Owner:   owner.Phone,
		Created: time.Now(),
		topicID: NewMessageID(),
	}
	s.nextGroup++
	for _, m := range members {
		g.Members = append(g.Members, m.Phone)
	}
	s.groups[g.JID.User] = g
	return g
}

// GroupInfo returns a copy of a group.
func (s *Server) GroupInfo(jid string) (Group, bool) {
	parsed, err := types.ParseJID(jid)
	if err != nil {
		return Group{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[parsed.User]
	if !ok {
		return Group{}, false
	}
	out := *g
	out.Members = slices.Clone(g.Members)
	out.Admins = slices.Clone(g.Admins)
	return out, true
}

func (s *Server) groupMembers(g *Group) []*Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Account, 0, len(g.Members))
	for _, p := range g.Members {
		if acc := s.accounts[p]; acc != nil {
			out = append(out, acc)
		}
	}
	return out
}

func (s *Server) groupNode(g *Group) waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := types.NewJID(g.Owner, types.DefaultUserServer)
	content := make([]waBinary.Node, 0, len(g.Members)+1)
	for _, p := range g.Members {
		attrs := waBinary.Attrs{"jid": types.NewJID(p, types.DefaultUserServer)}
		if acc := s.accounts[p]; acc != nil {
			attrs["lid"] = acc.LID
		}
		if p == g.Owner {
			attrs["type"] = "superadmin"
		} else if slices.Contains(g.Admins, p) {
			attrs["type"] = "admin"
		}
		content = append(content, waBinary.Node{Tag: "participant", Attrs: attrs})
	}
	if g.Announce {
		content = append(content, waBinary.Node{Tag: "announcement"})
	}
	if g.Locked {
		content = append(content, waBinary.Node{Tag: "locked"})
	}
	if g.Community {
		content = append(content, waBinary.Node{Tag: "parent"})
	}
	if !g.Parent.IsEmpty() {
		content = append(content, waBinary.Node{Tag: "linked_parent", Attrs: waBinary.Attrs{"jid": g.Parent}})
	}
	if g.DefaultSub {
		content = append(content, waBinary.Node{Tag: "default_sub_group"})
	}
	if g.Topic != "" {
		content = append(content, waBinary.Node{Tag: "description", Attrs: waBinary.Attrs{
			"id": g.topicID, "participant": owner, "t": g.Created.Unix(),
		}, Content: []waBinary.Node{{Tag: "body", Content: []byte(g.Topic)}}})
	}
	return waBinary.Node{Tag: "group", Attrs: waBinary.Attrs{
		"id":       g.JID.User,
		"creator":  owner,
		"subject":  g.Name,
		"s_t":      g.Created.Unix(),
		"s_o":      owner,
		"creation": g.Created.Unix(),
		"size":     len(g.Members),
	}, Content: content}
}

// notifyGroupCreate tells the members' linked devices (but skip) about a new group.
func (s *Server) notifyGroupCreate(g *Group, skip *companion) {
	node := waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": g.JID, "type": "w:gp2", "id": NewMessageID(), "t": time.Now().Unix(),
		"participant": types.NewJID(g.Owner, types.DefaultUserServer),
	}, Content: []waBinary.Node{{Tag: "create", Attrs: waBinary.Attrs{"reason": "create"}, Content: []waBinary.Node{s.groupNode(g)}}}}
	for _, m := range s.groupMembers(g) {
		s.mu.Lock()
		devs := m.linkedDevicesLocked()
		s.mu.Unlock()
		for _, d := range devs {
			if d != skip {
				s.pushToDevice(d, node)
			}
		}
	}
}

func (s *Server) handleGroupIQ(c *conn, iq *waBinary.Node, acc *Account, dev *companion, typ string, child waBinary.Node) {
	to, _ := iq.Attrs["to"].(types.JID)
	switch {
	case typ == "get" && child.Tag == "query":
		s.mu.Lock()
		g := s.groups[to.User]
		s.mu.Unlock()
		if g == nil {
			c.iqError(iq, 404, "item-not-found")
		} else if !slices.Contains(g.Members, acc.Phone) {
			c.iqError(iq, 403, "forbidden")
		} else {
			c.iqResult(iq, s.groupNode(g))
		}
	case typ == "get" && child.Tag == "participating":
		s.mu.Lock()
		var mine []*Group
		for _, g := range s.groups {
			if slices.Contains(g.Members, acc.Phone) {
				mine = append(mine, g)
			}
		}
		s.mu.Unlock()
		nodes := make([]waBinary.Node, 0, len(mine))
		for _, g := range mine {
			nodes = append(nodes, s.groupNode(g))
		}
		c.iqResult(iq, waBinary.Node{Tag: "groups", Content: nodes})
	case typ == "set" && child.Tag == "create":
		members := []*Account{acc}
		for _, p := range child.GetChildrenByTag("participant") {
			if jid, ok := p.Attrs["jid"].(types.JID); ok {
				if m := s.accountByJID(jid); m != nil && !slices.Contains(members, m) {
					members = append(members, m)
				}
			}
		}
		g := s.newGroup(acc, child.AttrGetter().OptionalString("subject"), "", members)
		c.iqResult(iq, s.groupNode(g))
		s.notifyGroupCreate(g, dev)
	case child.Tag == "invite":
		s.handleInviteIQ(c, iq, acc, typ, to, child)
	case typ == "set" && s.handleGroupSetIQ(c, iq, acc, child):
	default:
		c.iqError(iq, 501, "feature-not-implemented")
	}
}

// SendGroupText sends a text message from the phone of account from to a
// group; mentions (phone numbers) make it an extended text message whose
// context info lists the mentioned JIDs. See SendGroupMessage.
func (s *Server) SendGroupText(ctx context.Context, from, group, text string, mentions []string) (string, error) {
	msg := &waE2E.Message{Conversation: proto.String(text)}
	if len(mentions) > 0 {
		jids := make([]string, len(mentions))
		for i, m := range mentions {
			jids[i] = types.NewJID(normalizePhone(m), types.DefaultUserServer).String()
		}
		msg = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text:        proto.String(text),
			ContextInfo: &waE2E.ContextInfo{MentionedJID: jids},
		}}
	}
	return s.SendGroupMessage(ctx, from, group, msg)
}

// SendGroupMessage sends msg from the phone of account from to a group, as
// WhatsApp does: the message is encrypted once with the sender's sender key
// (skmsg) and the sender key is distributed to every linked device of the
// members through their pairwise Signal sessions (pkmsg/msg). It returns the
// message ID.
func (s *Server) SendGroupMessage(ctx context.Context, from, group string, msg *waE2E.Message) (string, error) {
	facc, err := s.account(from)
	if err != nil {
		return "", err
	}
	gjid, err := types.ParseJID(group)
	if err != nil {
		return "", fmt.Errorf("invalid group JID %q: %w", group, err)
	}
	s.mu.Lock()
	g := s.groups[gjid.User]
	s.mu.Unlock()
	if g == nil {
		return "", ErrNoGroup
	} else if !slices.Contains(g.Members, facc.Phone) {
		return "", ErrNotInGroup
	}
	return s.sendToGroup(ctx, facc, g, s.withTimer(facc.Phone, group, msg))
}

// SendStatus posts a text status update from the phone of account from:
// every other account's linked devices get it from status@broadcast (a
// sender-key message, as for groups).
func (s *Server) SendStatus(ctx context.Context, from, text string) (string, error) {
	facc, err := s.account(from)
	if err != nil {
		return "", err
	}
	g := &Group{JID: types.StatusBroadcastJID, Owner: facc.Phone}
	for _, acc := range s.Accounts() {
		g.Members = append(g.Members, acc.Phone)
	}
	return s.sendToGroup(ctx, facc, g, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text)}})
}

func (s *Server) sendToGroup(ctx context.Context, facc *Account, g *Group, msg *waE2E.Message) (string, error) {
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	ct, skdm, err := facc.encryptGroup(ctx, g.JID, plaintext)
	if err != nil {
		return "", err
	}
	skdmPlain, err := proto.Marshal(&waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{
		GroupID:                             proto.String(g.JID.String()),
		AxolotlSenderKeyDistributionMessage: skdm,
	}})
	if err != nil {
		return "", err
	}
	id, now, typ := NewMessageID(), s.now(), messageType(msg)
	if err = s.checkContent(facc.Phone, g.JID.String(), msg, now); err != nil {
		return "", err
	}
	s.rec.addSent(Message{ID: id, From: facc.Phone, To: g.JID.String(), Group: true, Timestamp: now, Message: msg})
	s.mu.Lock()
	facc.sent[id] = &sentMessage{plaintext: plaintext, group: g.JID, msgType: typ}
	s.mu.Unlock()
	skmsg := waBinary.Node{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "skmsg"}, Content: ct}
	for _, m := range s.groupMembers(g) {
		s.mu.Lock()
		devs := m.linkedDevicesLocked()
		s.mu.Unlock()
		for _, d := range devs {
			encType, pct, err := facc.encryptTo(ctx, m, d, skdmPlain)
			if err != nil {
				return "", err
			}
			s.pushToDevice(d, facc.messageNode(id, typ, now, encType, pct, waBinary.Attrs{
				"from": g.JID, "participant": facc.JID, "participant_lid": facc.LID,
			}, skmsg))
		}
	}
	return id, nil
}

// bundleFromRetry reads the prekey bundle a client attaches to a retry
// receipt (<registration> and <keys>).
func bundleFromRetry(receipt *waBinary.Node, keysNode waBinary.Node, devID uint16) *prekey.Bundle {
	reg := bytesChild(*receipt, "registration")
	ident := bytesChild(keysNode, "identity")
	signed := parsePreKeyNode(keysNode.GetChildByTag("skey"))
	if len(reg) != 4 || len(ident) != 32 || signed == nil || signed.Signature == nil {
		return nil
	}
	regID := uint32(reg[0])<<24 | uint32(reg[1])<<16 | uint32(reg[2])<<8 | uint32(reg[3])
	ik := identity.NewKey(ecc.NewDjbECPublicKey([32]byte(ident)))
	if pre := parsePreKeyNode(keysNode.GetChildByTag("key")); pre != nil {
		return prekey.NewBundle(regID, uint32(devID), optional.NewOptionalUint32(pre.KeyID), signed.KeyID,
			ecc.NewDjbECPublicKey(*pre.Pub), ecc.NewDjbECPublicKey(*signed.Pub), *signed.Signature, ik)
	}
	return prekey.NewBundle(regID, uint32(devID), optional.NewEmptyUint32(), signed.KeyID,
		nil, ecc.NewDjbECPublicKey(*signed.Pub), *signed.Signature, ik)
}
