package fakematrix

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Event is a timeline event the bridge sent.
type Event struct {
	RoomID  id.RoomID
	Sender  id.UserID
	EventID id.EventID
	Type    event.Type
	Content *event.Content
	TS      time.Time // the timestamp the event was sent with
}

// Message is an m.room.message the bridge sent; an edit is a message too
// (see Replaces).
type Message struct {
	RoomID  id.RoomID
	Sender  id.UserID
	EventID id.EventID
	Content *event.MessageEventContent
	TS      time.Time
}

// Replaces is the event ID that the message edits, or "".
func (msg Message) Replaces() id.EventID { return msg.Content.RelatesTo.GetReplaceID() }

// Reaction is an m.reaction the bridge sent.
type Reaction struct {
	RoomID  id.RoomID
	Sender  id.UserID
	EventID id.EventID
	Target  id.EventID
	Key     string
	TS      time.Time
}

// Redaction is an m.room.redaction the bridge sent.
type Redaction struct {
	RoomID  id.RoomID
	Sender  id.UserID
	EventID id.EventID
	Redacts id.EventID
	Reason  string
	TS      time.Time
}

// StateEvent is a state event the bridge sent.
type StateEvent struct {
	RoomID   id.RoomID
	Sender   id.UserID
	EventID  id.EventID
	Type     event.Type
	StateKey string
	Content  *event.Content
	TS       time.Time
}

// Room is a room the bridge created.
type Room struct {
	ID      id.RoomID
	Creator id.UserID
	Name    string
	Request *mautrix.ReqCreateRoom
	Deleted bool
}

// Profile is what a user set as their global profile.
type Profile struct {
	DisplayName string
	AvatarURL   id.ContentURIString
}

type stateKey struct {
	typ string
	key string
}

// room is the current state of one room.
type room struct {
	info    Room
	state   map[stateKey]*event.Content
	members map[id.UserID]*event.MemberEventContent
}

func newRoom(roomID id.RoomID, creator id.UserID, req *mautrix.ReqCreateRoom) *room {
	return &room{
		info:    Room{ID: roomID, Creator: creator, Name: req.Name, Request: req},
		state:   make(map[stateKey]*event.Content),
		members: make(map[id.UserID]*event.MemberEventContent),
	}
}

func (r *room) membership(userID id.UserID) event.Membership {
	if member := r.members[userID]; member != nil {
		return member.Membership
	}
	return event.MembershipLeave
}

func (r *room) setMembership(userID id.UserID, membership event.Membership) {
	if member := r.members[userID]; member != nil {
		member.Membership = membership
		return
	}
	r.members[userID] = &event.MemberEventContent{Membership: membership}
}

// roomLocked returns the room, made up on first sight if the bridge did
// not create it (the admin room of a configuration, say); m.mu is held.
func (m *Matrix) roomLocked(roomID id.RoomID) *room {
	r := m.rooms[roomID]
	if r == nil {
		r = newRoom(roomID, "", &mautrix.ReqCreateRoom{})
		m.rooms[roomID] = r
	}
	return r
}

func (m *Matrix) recordStateLocked(st StateEvent) {
	m.states = append(m.states, st)
	m.applyStateLocked(st.RoomID, st.Type, st.StateKey, st.Content)
}

// applyStateLocked makes content the room's current state; m.mu is held.
func (m *Matrix) applyStateLocked(roomID id.RoomID, evtType event.Type, key string, content *event.Content) {
	r := m.roomLocked(roomID)
	if pl, ok := content.Parsed.(*event.PowerLevelsEventContent); ok {
		content = &event.Content{Parsed: pl.Clone()}
	}
	r.state[stateKey{evtType.Type, key}] = content
	if member, ok := content.Parsed.(*event.MemberEventContent); ok && evtType == event.StateMember {
		c := *member
		r.members[id.UserID(key)] = &c
	}
}

// roomUser is a user in a room.
type roomUser struct {
	room id.RoomID
	user id.UserID
}

// countEnsureInvited counts an intent being asked to make sure that userID
// is invited to roomID (an invitation already there included): bridgev2
// asks for a login's user whenever it does not know that the login is in
// the portal.
func (m *Matrix) countEnsureInvited(roomID id.RoomID, userID id.UserID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ensureInvited == nil {
		m.ensureInvited = make(map[roomUser]int)
	}
	m.ensureInvited[roomUser{roomID, userID}]++
}

func (m *Matrix) ensureInvitedCalls(roomID id.RoomID, userID id.UserID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ensureInvited[roomUser{roomID, userID}]
}

// MoreInviteChecks has send bridge a contact's first two messages into
// a portal (the first makes the room, after which bridgev2 checks the
// user's membership once more) and then n more, and returns how many times
// those n made bridgev2 check again that user is invited: 0 when the login
// remembers its portals. send returns the message as bridged.
func (m *Matrix) MoreInviteChecks(user id.UserID, n int, send func(text string) Message) int {
	room := send("first").RoomID
	send("second")
	before := m.ensureInvitedCalls(room, user)
	for i := range n {
		send(fmt.Sprintf("more %d", i+1))
	}
	return m.ensureInvitedCalls(room, user) - before
}

func (m *Matrix) setMembership(roomID id.RoomID, userID id.UserID, membership event.Membership, unlessJoined bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.roomLocked(roomID)
	if unlessJoined && r.membership(userID) == event.MembershipJoin {
		return
	}
	r.setMembership(userID, membership)
}

func (m *Matrix) updateProfile(userID id.UserID, update func(*Profile)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.profiles[userID]
	update(&p)
	m.profiles[userID] = p
}

func (m *Matrix) eventByID(roomID id.RoomID, eventID id.EventID) *event.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events {
		if e.RoomID == roomID && e.EventID == eventID {
			return &event.Event{RoomID: e.RoomID, Sender: e.Sender, ID: e.EventID, Type: e.Type, Content: *e.Content, Timestamp: e.TS.UnixMilli()}
		}
	}
	for _, st := range m.states {
		if st.RoomID == roomID && st.EventID == eventID {
			key := st.StateKey
			return &event.Event{RoomID: st.RoomID, Sender: st.Sender, ID: st.EventID, Type: st.Type, StateKey: &key, Content: *st.Content, Timestamp: st.TS.UnixMilli()}
		}
	}
	return nil
}

// Events returns every timeline event the bridge sent, in order.
func (m *Matrix) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// Messages returns the m.room.message events the bridge sent, in order.
func (m *Matrix) Messages() []Message {
	return m.MessagesWhere(func(Message) bool { return true })
}

// MessagesWhere returns the messages for which pred holds, in order.
func (m *Matrix) MessagesWhere(pred func(Message) bool) []Message {
	var out []Message
	for _, e := range m.Events() {
		content, ok := e.Content.Parsed.(*event.MessageEventContent)
		if !ok || e.Type != event.EventMessage {
			continue
		}
		if msg := (Message{RoomID: e.RoomID, Sender: e.Sender, EventID: e.EventID, Content: content, TS: e.TS}); pred(msg) {
			out = append(out, msg)
		}
	}
	return out
}

// FindMessage returns the first message for which pred holds.
func (m *Matrix) FindMessage(pred func(Message) bool) (Message, bool) {
	if msgs := m.MessagesWhere(pred); len(msgs) > 0 {
		return msgs[0], true
	}
	return Message{}, false
}

// MessagesFrom returns the messages sender sent, in order.
func (m *Matrix) MessagesFrom(sender id.UserID) []Message {
	return m.MessagesWhere(func(msg Message) bool { return msg.Sender == sender })
}

// MessagesWithBody returns the messages whose body is body, in order.
func (m *Matrix) MessagesWithBody(body string) []Message {
	return m.MessagesWhere(func(msg Message) bool { return msg.Content.Body == body })
}

// MessageContaining returns the first message in roomID ("" for any room)
// whose body contains text.
func (m *Matrix) MessageContaining(roomID id.RoomID, text string) (Message, bool) {
	return m.FindMessage(func(msg Message) bool {
		return (roomID == "" || msg.RoomID == roomID) && strings.Contains(msg.Content.Body, text)
	})
}

// Reactions returns the reactions the bridge sent, in order.
func (m *Matrix) Reactions() []Reaction {
	var out []Reaction
	for _, e := range m.Events() {
		if content, ok := e.Content.Parsed.(*event.ReactionEventContent); ok && e.Type == event.EventReaction {
			out = append(out, Reaction{RoomID: e.RoomID, Sender: e.Sender, EventID: e.EventID, Target: content.RelatesTo.EventID, Key: content.RelatesTo.Key, TS: e.TS})
		}
	}
	return out
}

// Redactions returns the redactions the bridge sent, in order.
// Redacted reports whether a redaction of evtID was sent.
func (m *Matrix) Redacted(evtID id.EventID) bool {
	for _, r := range m.Redactions() {
		if r.Redacts == evtID {
			return true
		}
	}
	return false
}

func (m *Matrix) Redactions() []Redaction {
	var out []Redaction
	for _, e := range m.Events() {
		if content, ok := e.Content.Parsed.(*event.RedactionEventContent); ok && e.Type == event.EventRedaction {
			out = append(out, Redaction{RoomID: e.RoomID, Sender: e.Sender, EventID: e.EventID, Redacts: content.Redacts, Reason: content.Reason, TS: e.TS})
		}
	}
	return out
}

// StateEvents returns the state events the bridge sent, in order.
func (m *Matrix) StateEvents() []StateEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.states)
}

// State returns the room's current state of a type and state key, or nil.
func (m *Matrix) State(roomID id.RoomID, evtType event.Type, key string) *event.Content {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rooms[roomID]; r != nil {
		return r.state[stateKey{evtType.Type, key}]
	}
	return nil
}

// PowerLevels returns a copy of the room's current power levels, or nil.
func (m *Matrix) PowerLevels(roomID id.RoomID) *event.PowerLevelsEventContent {
	content := m.State(roomID, event.StatePowerLevels, "")
	if content == nil {
		return nil
	}
	if pl, ok := content.Parsed.(*event.PowerLevelsEventContent); ok {
		return pl.Clone()
	}
	return nil
}

// Members returns the room's current membership by user.
func (m *Matrix) Members(roomID id.RoomID) map[id.UserID]event.Membership {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[id.UserID]event.Membership)
	if r := m.rooms[roomID]; r != nil {
		for userID, member := range r.members {
			out[userID] = member.Membership
		}
	}
	return out
}

// JoinedMembers returns the users joined to the room, sorted.
func (m *Matrix) JoinedMembers(roomID id.RoomID) []id.UserID {
	var out []id.UserID
	for userID, membership := range m.Members(roomID) {
		if membership == event.MembershipJoin {
			out = append(out, userID)
		}
	}
	slices.Sort(out)
	return out
}

// Rooms returns the rooms the bridge created, in order.
func (m *Matrix) Rooms() []Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Room, 0, len(m.roomOrder))
	for _, roomID := range m.roomOrder {
		out = append(out, m.rooms[roomID].info)
	}
	return out
}

// RoomNamed returns the first room the bridge created with this name.
func (m *Matrix) RoomNamed(name string) (Room, bool) {
	for _, r := range m.Rooms() {
		if r.Name == name {
			return r, true
		}
	}
	return Room{}, false
}

// BridgeStates returns the bridge states sent, in order.
func (m *Matrix) BridgeStates() []status.BridgeState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bridgeStates)
}

// CountBridgeStates counts the bridge states of evt with the error code
// ("" for any).
func (m *Matrix) CountBridgeStates(evt status.BridgeStateEvent, code status.BridgeStateErrorCode) int {
	n := 0
	for _, st := range m.BridgeStates() {
		if st.StateEvent == evt && (code == "" || st.Error == code) {
			n++
		}
	}
	return n
}

// HasBridgeState tells whether a bridge state of evt with the error code
// ("" for any) was sent.
func (m *Matrix) HasBridgeState(evt status.BridgeStateEvent, code status.BridgeStateErrorCode) bool {
	return m.CountBridgeStates(evt, code) > 0
}

// ResetBridgeStates forgets the bridge states sent so far, so that a
// restarted bridge's states can be told apart.
func (m *Matrix) ResetBridgeStates() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bridgeStates = nil
}

// MessageStatuses returns the message statuses sent, in order.
func (m *Matrix) MessageStatuses() []*bridgev2.MessageStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgStatuses)
}

// StatusesOf returns the message statuses sent for the Matrix event evtID.
func (m *Matrix) StatusesOf(evtID id.EventID) []*bridgev2.MessageStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.statusByEvent[evtID])
}

// Profile returns what userID set as their profile.
func (m *Matrix) Profile(userID id.UserID) Profile {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.profiles[userID]
}

// Media returns a copy of what was uploaded under uri.
func (m *Matrix) Media(uri id.ContentURIString) ([]byte, bool) {
	m.mu.Lock()
	data, ok := m.media[uri]
	path, onDisk := m.mediaFiles[uri]
	m.mu.Unlock()
	if onDisk {
		data, err := os.ReadFile(path)
		return data, err == nil
	}
	return slices.Clone(data), ok
}

// MediaURIs returns the URIs of all uploaded media, sorted.
func (m *Matrix) MediaURIs() []id.ContentURIString {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.media))
}
