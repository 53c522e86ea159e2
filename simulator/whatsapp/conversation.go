package wasim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// The conversation around messages: replies, edits (within EditWindow),
// revokes (by the sender, or a group admin), reactions (one per user and
// message), read receipts, chat state (typing) and presence, both from
// simulated contacts and from linked clients, and the view of a chat as a
// contact has it.

// EditWindow is how long after sending a message its sender may edit it.
const EditWindow = 15 * time.Minute

// refusedCode is the error code of the ack of a message the server refuses
// (an edit past the window, a revoke the sender may not make).
const refusedCode = 479

// Errors of edits and revokes the server refuses.
var (
	ErrEditWindow    = errors.New("the message is too old to be edited")
	ErrNotAllowed    = errors.New("only the sender, or a group admin, may revoke a message")
	ErrNotOwnMessage = errors.New("only the sender may edit a message")
)

// Bounds of what is kept per server: chat states seen.
const maxChatStates = 1000

// unwrapContent is the message inside the wrappers an edit or ephemeral
// message comes in.
func unwrapContent(msg *waE2E.Message) *waE2E.Message {
	for i := 0; i < 4 && msg != nil; i++ {
		switch {
		case msg.GetEditedMessage().GetMessage() != nil:
			msg = msg.GetEditedMessage().GetMessage()
		case msg.GetEphemeralMessage().GetMessage() != nil:
			msg = msg.GetEphemeralMessage().GetMessage()
		case msg.GetDeviceSentMessage().GetMessage() != nil:
			msg = msg.GetDeviceSentMessage().GetMessage()
		default:
			return msg
		}
	}
	return msg
}

// messageByID is a message with the ID, sent by a simulated phone or
// received by one.
func (s *Server) messageByID(id string) (Message, bool) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	for _, list := range [][]Message{s.rec.sent, s.rec.messages} {
		for i := len(list) - 1; i >= 0; i-- {
			if list[i].ID == id {
				return list[i], true
			}
		}
	}
	return Message{}, false
}

// checkContent is what the server checks of an edit or revoke that from
// sends to chat (a phone number or a group JID) at now.
func (s *Server) checkContent(from, chat string, msg *waE2E.Message, now time.Time) error {
	if strings.HasSuffix(chat, "@"+types.GroupServer) {
		if g, ok := s.GroupInfo(chat); ok && g.Announce && !s.isGroupAdmin(chat, from) {
			return ErrAnnounceOnly
		}
	}
	pm := unwrapContent(msg).GetProtocolMessage()
	if pm == nil {
		return nil
	}
	switch pm.GetType() {
	case waE2E.ProtocolMessage_MESSAGE_EDIT:
		orig, ok := s.messageByID(pm.GetKey().GetID())
		if !ok {
			return fmt.Errorf("%w: %s", ErrNoSuchMessage, pm.GetKey().GetID())
		} else if orig.From != from {
			return ErrNotOwnMessage
		} else if now.Sub(orig.Timestamp) > EditWindow {
			return ErrEditWindow
		}
	case waE2E.ProtocolMessage_REVOKE:
		orig, ok := s.messageByID(pm.GetKey().GetID())
		if !ok || orig.From == from {
			return nil
		}
		if !strings.HasSuffix(chat, "@"+types.GroupServer) || !s.isGroupAdmin(chat, from) {
			return ErrNotAllowed
		}
	}
	return nil
}

// isGroupAdmin tells whether phone is an admin (or the owner) of group.
func (s *Server) isGroupAdmin(group, phone string) bool {
	g, ok := s.GroupInfo(group)
	phone = normalizePhone(phone)
	return ok && (g.Owner == phone || slices.Contains(g.Admins, phone))
}

// keyFor is the message key that from writes to point at message id of
// targetSender in chat (a phone number or a group JID).
func (s *Server) keyFor(from, chat, targetSender, id string) *waCommon.MessageKey {
	fromMe := normalizePhone(targetSender) == normalizePhone(from)
	key := &waCommon.MessageKey{ID: proto.String(id), FromMe: proto.Bool(fromMe)}
	if strings.HasSuffix(chat, "@"+types.GroupServer) {
		key.RemoteJID = proto.String(chat)
		if !fromMe {
			key.Participant = proto.String(types.NewJID(normalizePhone(targetSender), types.DefaultUserServer).String())
		}
	} else {
		key.RemoteJID = proto.String(types.NewJID(normalizePhone(chat), types.DefaultUserServer).String())
	}
	return key
}

// SendReply sends, from the phone of account from to to (a phone number or
// a group JID), text answering message quotedID of quotedSender, with the
// quoted message as the apps attach it (quoted may be nil).
func (s *Server) SendReply(ctx context.Context, from, to, text, quotedID, quotedSender string, quoted *waE2E.Message) (string, error) {
	ci := &waE2E.ContextInfo{
		StanzaID:      proto.String(quotedID),
		Participant:   proto.String(types.NewJID(normalizePhone(quotedSender), types.DefaultUserServer).String()),
		QuotedMessage: quoted,
	}
	if strings.HasSuffix(to, "@"+types.GroupServer) {
		ci.RemoteJID = proto.String(to)
	}
	return s.send(ctx, from, to, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text), ContextInfo: ci}})
}

// SendReaction sends, from the phone of account from in chat to, a
// reaction to message id of targetSender; an empty emoji removes from's
// reaction. A user has one reaction per message: a new one replaces it.
func (s *Server) SendReaction(ctx context.Context, from, to, targetSender, id, emoji string) (string, error) {
	return s.send(ctx, from, to, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
		Key: s.keyFor(from, to, targetSender, id), Text: proto.String(emoji), SenderTimestampMS: proto.Int64(s.now().UnixMilli()),
	}})
}

// SendEdit edits, from the phone of account from in chat to, from's own
// message id to text. Past EditWindow (on the simulator's clock) it fails
// with ErrEditWindow.
func (s *Server) SendEdit(ctx context.Context, from, to, id, text string) (string, error) {
	return s.SendEditMessage(ctx, from, to, id, &waE2E.Message{Conversation: proto.String(text)})
}

// SendEditMessage is SendEdit with any new content (a caption edit sends
// the media message with its new caption).
func (s *Server) SendEditMessage(ctx context.Context, from, to, id string, content *waE2E.Message) (string, error) {
	return s.send(ctx, from, to, &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
		ProtocolMessage: &waE2E.ProtocolMessage{
			Key:           s.keyFor(from, to, from, id),
			Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
			EditedMessage: content,
			TimestampMS:   proto.Int64(s.now().UnixMilli()),
		},
	}}})
}

// SendRevoke revokes ("delete for everyone"), from the phone of account
// from in chat to, message id of targetSender: from's own, or in a group
// where from is an admin anyone's (else ErrNotAllowed).
func (s *Server) SendRevoke(ctx context.Context, from, to, targetSender, id string) (string, error) {
	return s.send(ctx, from, to, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Key: s.keyFor(from, to, targetSender, id), Type: waE2E.ProtocolMessage_REVOKE.Enum(),
	}})
}

// SendOwnRead tells the linked devices of account phone that its phone read
// messages ids of chat (a contact's phone number), as the apps do with a
// read-self receipt.
func (s *Server) SendOwnRead(ctx context.Context, phone, chat string, ids ...string) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	cacc, err := s.account(chat)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("no message IDs given")
	}
	node := waBinary.Node{Tag: "receipt", Attrs: waBinary.Attrs{
		"id": ids[0], "t": s.now().Unix(), "type": string(types.ReceiptTypeReadSelf), "from": acc.JID, "recipient": cacc.JID,
	}}
	if len(ids) > 1 {
		items := make([]waBinary.Node, 0, len(ids)-1)
		for _, id := range ids[1:] {
			items = append(items, waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"id": id}})
		}
		node.Content = []waBinary.Node{{Tag: "list", Content: items}}
	}
	s.mu.Lock()
	devs := acc.linkedDevicesLocked()
	s.mu.Unlock()
	if len(devs) == 0 {
		return ErrNoDevice
	}
	for _, d := range devs {
		s.pushToDevice(d, node)
	}
	return ctx.Err()
}

// pushLive sends a node that only matters now (presence, chat state) to
// the connected devices among devs; offline devices do not get it later.
func (s *Server) pushLive(devs []*companion, node waBinary.Node, want func(*conn) bool) int {
	n := 0
	for _, d := range devs {
		s.mu.Lock()
		c := d.conn
		ok := c != nil && c.ready && (want == nil || want(c))
		s.mu.Unlock()
		if ok && c.send(node) == nil {
			n++
		}
	}
	return n
}

// ChatState is a typing notification: a linked client's (From is its
// account) or a simulated contact's.
type ChatState struct {
	From      string // phone number of the one typing
	To        string // the contact's phone number, or the group JID
	State     types.ChatPresence
	Media     types.ChatPresenceMedia
	Timestamp time.Time
}

// SendChatState shows, from the phone of account from, typing (composing)
// or its end (paused) to to (a phone number or a group JID): the linked
// devices of the recipient (the members) that are connected get it.
func (s *Server) SendChatState(ctx context.Context, from, to string, state types.ChatPresence, media types.ChatPresenceMedia) error {
	facc, err := s.account(from)
	if err != nil {
		return err
	}
	child := waBinary.Node{Tag: string(state)}
	if media != "" && state == types.ChatPresenceComposing {
		child.Attrs = waBinary.Attrs{"media": string(media)}
	}
	node := waBinary.Node{Tag: "chatstate", Content: []waBinary.Node{child}}
	var targets []*Account
	if strings.HasSuffix(to, "@"+types.GroupServer) {
		gjid, err := types.ParseJID(to)
		if err != nil {
			return err
		}
		s.mu.Lock()
		g := s.groups[gjid.User]
		s.mu.Unlock()
		if g == nil {
			return ErrNoGroup
		}
		node.Attrs = waBinary.Attrs{"from": gjid, "participant": facc.JID}
		for _, m := range s.groupMembers(g) {
			if m != facc {
				targets = append(targets, m)
			}
		}
	} else {
		tacc, err := s.account(to)
		if err != nil {
			return err
		}
		node.Attrs = waBinary.Attrs{"from": facc.JID}
		targets = append(targets, tacc)
	}
	for _, t := range targets {
		s.mu.Lock()
		devs := t.linkedDevicesLocked()
		s.mu.Unlock()
		s.pushLive(devs, node, nil)
	}
	return ctx.Err()
}

// handleClientChatState records a linked client typing in a chat; a
// simulated phone has nothing else to do with it.
func (s *Server) handleClientChatState(c *conn, node *waBinary.Node) {
	acc, _ := s.loggedIn(c)
	if acc == nil || len(node.GetChildren()) != 1 {
		return
	}
	to, _ := node.Attrs["to"].(types.JID)
	child := node.GetChildren()[0]
	cs := ChatState{From: acc.Phone, State: types.ChatPresence(child.Tag),
		Media: types.ChatPresenceMedia(child.AttrGetter().OptionalString("media")), Timestamp: s.now()}
	if to.Server == types.GroupServer {
		cs.To = to.String()
	} else if tacc := s.accountByJID(to); tacc != nil {
		cs.To = tacc.Phone
	} else {
		cs.To = to.User
	}
	s.rec.addChatState(cs)
}

// handleClientPresence records a linked client's presence (available or
// unavailable) and presence subscriptions; a subscription is answered with
// the contact's current presence when the client is available.
func (s *Server) handleClientPresence(c *conn, node *waBinary.Node) {
	acc, _ := s.loggedIn(c)
	if acc == nil {
		return
	}
	ag := node.AttrGetter()
	switch typ := ag.OptionalString("type"); typ {
	case "available", "unavailable":
		s.mu.Lock()
		c.available = typ == "available"
		s.mu.Unlock()
		s.rec.notify()
	case "subscribe":
		to, _ := node.Attrs["to"].(types.JID)
		contact := s.accountByJID(to)
		if contact == nil {
			return
		}
		s.mu.Lock()
		if c.subscribed == nil {
			c.subscribed = map[string]bool{}
		}
		if len(c.subscribed) < maxSubscriptions {
			c.subscribed[contact.Phone] = true
		}
		available := c.available
		s.mu.Unlock()
		s.rec.notify()
		if available {
			_ = c.send(s.presenceNode(contact))
		}
	}
}

// maxSubscriptions caps the contacts one connection follows.
const maxSubscriptions = 5000

func (s *Server) presenceNode(contact *Account) waBinary.Node {
	s.mu.Lock()
	online, last := contact.online, contact.lastSeen
	s.mu.Unlock()
	attrs := waBinary.Attrs{"from": contact.JID}
	if !online {
		attrs["type"] = "unavailable"
		if !last.IsZero() {
			attrs["last"] = last.Unix()
		} else {
			attrs["last"] = "deny"
		}
	}
	return waBinary.Node{Tag: "presence", Attrs: attrs}
}

// SetPresence makes account phone go online, or offline (last seen now on
// the simulator's clock, unless hideLastSeen). Connected clients that
// subscribed to its presence and are available themselves are told; it
// returns how many were.
func (s *Server) SetPresence(phone string, online, hideLastSeen bool) (int, error) {
	acc, err := s.account(phone)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	acc.online = online
	switch {
	case online:
	case hideLastSeen:
		acc.lastSeen = time.Time{}
	default:
		acc.lastSeen = s.now()
	}
	var devs []*companion
	for _, other := range s.accounts {
		devs = append(devs, other.linkedDevicesLocked()...)
	}
	s.mu.Unlock()
	return s.pushLive(devs, s.presenceNode(acc), func(c *conn) bool { return c.available && c.subscribed[acc.Phone] }), nil
}

// ClientAvailable reports whether a connected client of account phone told
// WhatsApp it is available.
func (s *Server) ClientAvailable(phone string) bool {
	acc, ok := s.Account(phone)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range acc.devices {
		if d.conn != nil && d.conn.ready && d.conn.available {
			return true
		}
	}
	return false
}

// Subscribed reports whether a connected client of account phone follows
// contact's presence.
func (s *Server) Subscribed(phone, contact string) bool {
	acc, ok := s.Account(phone)
	if !ok {
		return false
	}
	contact = normalizePhone(contact)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range acc.devices {
		if d.conn != nil && d.conn.subscribed[contact] {
			return true
		}
	}
	return false
}

// ChatEntry is a message as a contact sees it in a chat: with its edits
// applied, revoked or not, the reactions on it, and for the contact's own
// messages whether the linked client read it.
type ChatEntry struct {
	ID        string
	From      string // the sender's phone number
	Timestamp time.Time
	Text      string // the text (or caption), edits applied; "" once revoked
	Edited    bool
	Revoked   bool
	// ReplyTo is the ID of the message this one answers, if any.
	ReplyTo string
	// Reactions are the reactions on the message by phone number.
	Reactions map[string]string
	// ReadByClient tells, for a message of the contact, that a linked
	// client of the other side sent a read receipt for it.
	ReadByClient bool
	Message      *waE2E.Message
}

// Conversation is the chat between account phone and chat (a phone number
// or a group JID) as phone sees it, oldest first.
func (s *Server) Conversation(phone, chat string) []ChatEntry {
	phone = normalizePhone(phone)
	group := strings.HasSuffix(chat, "@"+types.GroupServer)
	if !group {
		chat = normalizePhone(chat)
	}
	in := func(m Message) bool {
		if group {
			return m.To == chat
		}
		return (m.From == phone && m.To == chat) || (m.From == chat && m.To == phone)
	}
	s.rec.mu.Lock()
	var msgs []Message
	for _, list := range [][]Message{s.rec.sent, s.rec.messages} {
		for _, m := range list {
			if in(m) {
				msgs = append(msgs, m)
			}
		}
	}
	read := map[string]bool{}
	for _, rc := range s.rec.receipts {
		if rc.Type == types.ReceiptTypeRead && rc.From != phone && (rc.Chat == chat || rc.Chat == phone) {
			for _, id := range rc.IDs {
				read[id] = true
			}
		}
	}
	s.rec.mu.Unlock()
	slices.SortStableFunc(msgs, func(a, b Message) int { return cmp.Compare(a.seq, b.seq) })
	var out []ChatEntry
	index := map[string]int{}
	for _, m := range msgs {
		msg := unwrapContent(m.Message)
		if msg.GetSenderKeyDistributionMessage() != nil && isEmptyMessage(msg) {
			continue
		}
		if rm := msg.GetReactionMessage(); rm != nil {
			if i, ok := index[rm.GetKey().GetID()]; ok {
				if rm.GetText() == "" {
					delete(out[i].Reactions, m.From)
				} else {
					out[i].Reactions[m.From] = rm.GetText()
				}
			}
			continue
		}
		if pm := msg.GetProtocolMessage(); pm != nil {
			i, ok := index[pm.GetKey().GetID()]
			switch {
			case !ok:
			case pm.GetType() == waE2E.ProtocolMessage_MESSAGE_EDIT:
				out[i].Text, out[i].Edited = textOf(pm.GetEditedMessage()), true
			case pm.GetType() == waE2E.ProtocolMessage_REVOKE:
				out[i].Text, out[i].Revoked = "", true
			}
			continue
		}
		if _, dup := index[m.ID]; dup {
			continue
		}
		index[m.ID] = len(out)
		out = append(out, ChatEntry{
			ID: m.ID, From: m.From, Timestamp: m.Timestamp, Text: textOf(msg),
			ReplyTo: contextOf(msg).GetStanzaID(), Reactions: map[string]string{},
			ReadByClient: m.From == phone && read[m.ID], Message: m.Message,
		})
	}
	return out
}

// contextOf is the context info of a text or media message.
func contextOf(msg *waE2E.Message) *waE2E.ContextInfo {
	switch {
	case msg.GetExtendedTextMessage() != nil:
		return msg.GetExtendedTextMessage().GetContextInfo()
	case msg.GetImageMessage() != nil:
		return msg.GetImageMessage().GetContextInfo()
	case msg.GetVideoMessage() != nil:
		return msg.GetVideoMessage().GetContextInfo()
	case msg.GetDocumentMessage() != nil:
		return msg.GetDocumentMessage().GetContextInfo()
	case msg.GetAudioMessage() != nil:
		return msg.GetAudioMessage().GetContextInfo()
	}
	return nil
}

// ChatStates returns the typing notifications linked clients sent (the
// latest maxChatStates), oldest first.
func (s *Server) ChatStates() []ChatState {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return slices.Clone(s.rec.chatStates)
}

// WaitChatState waits for a typing notification from a linked client for
// which pred returns true.
func (s *Server) WaitChatState(ctx context.Context, pred func(ChatState) bool) (ChatState, error) {
	var found ChatState
	err := s.rec.wait(ctx, func() bool {
		for _, cs := range s.rec.chatStates {
			if pred == nil || pred(cs) {
				found = cs
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitCondition waits until cond (called without the simulator's locks)
// holds, re-checking whenever the simulator records something: messages,
// receipts, chat states, presence.
func (s *Server) WaitCondition(ctx context.Context, cond func() bool) error {
	for {
		s.rec.mu.Lock()
		ch := s.rec.changed
		s.rec.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// textOf is the text of a message, or the caption of a file.
func textOf(msg *waE2E.Message) string {
	if t := (Message{Message: msg}).Text(); t != "" {
		return t
	}
	switch {
	case msg.GetImageMessage() != nil:
		return msg.GetImageMessage().GetCaption()
	case msg.GetVideoMessage() != nil:
		return msg.GetVideoMessage().GetCaption()
	case msg.GetDocumentMessage() != nil:
		return msg.GetDocumentMessage().GetCaption()
	}
	return ""
}
