// Package fakematrix is the Matrix side of a real bridgev2.Bridge for tests:
// a bridgev2.MatrixConnector whose intents record what the bridge sends to
// Matrix instead of talking to a homeserver. A network connector is then
// tested inside a real bridge against its simulator; the gateway's
// end-to-end tests cover a real homeserver.
//
// # What it records
//
// A Matrix keeps, in the order the bridge sent them:
//
//   - timeline events (Events), with typed views for messages including
//     edits (Messages), reactions (Reactions) and redactions (Redactions),
//     each with its sender, event ID and timestamp (the one the bridge sent
//     it with, else the time it was sent);
//   - state events (StateEvents), and each room's current state, from
//     those and from the room's creation request: power levels
//     (PowerLevels), encryption and any other state (State), membership
//     (Members, JoinedMembers);
//   - rooms the bridge created (Rooms), bridge states (BridgeStates),
//     message statuses (MessageStatuses), profiles (Profile) and uploaded
//     media (Media).
//
// It answers the bridge as a homeserver would from that record:
// GetPowerLevels, GetMembers and GetMemberInfo return the room's current
// state. A message status that asks for a notice is posted by the bot into
// the room, as the real connector does. Ghosts are "@gw_<id>:test", the bot
// "@bot:test"; batch sending and direct media are not available, and
// double puppeting only after EnableDoublePuppet.
//
// One Matrix can serve several bridges in turn (a restart on the same
// database): Init keeps the newest bridge, and the record goes on.
//
// # Waiting
//
// The bridge works in the background, so tests wait for what they look
// for: Eventually polls a condition until it holds or a timeout passes;
// WaitMessage and WaitBridgeState are the common cases. Every accessor takes the lock itself and returns
// copies, so a condition can call accessors freely (and must not itself
// wait).
//
// Inject hands a Matrix event to the bridge as if a Matrix user had sent
// it; it is not recorded, since the record is what the bridge sent.
package fakematrix

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

const (
	// ServerName is the homeserver name of every Matrix ID here.
	ServerName = "test"
	// BotMXID is the bridge bot.
	BotMXID id.UserID = "@bot:" + ServerName

	ghostPrefix = "@gw_"
	ghostSuffix = ":" + ServerName
)

var (
	errNotAvailable = errors.New("not available with the fake Matrix side")

	_ bridgev2.MatrixConnector = (*Matrix)(nil)
)

// Matrix is a recording bridgev2.MatrixConnector. The zero value is not
// usable; make one with New.
type Matrix struct {
	mu      sync.Mutex
	br      *bridgev2.Bridge
	counter int

	rooms        map[id.RoomID]*room
	roomOrder    []id.RoomID
	events       []Event
	states       []StateEvent
	bridgeStates []status.BridgeState
	msgStatuses  []*bridgev2.MessageStatus
	profiles     map[id.UserID]Profile
	media        map[id.ContentURIString][]byte
	mediaDir     string                         // see SetMediaDir
	mediaFiles   map[id.ContentURIString]string // media kept on disk
	encryptMedia bool                           // see SetEncryptedMedia
	down         error                          // what every send answers while the homeserver is "down"
	creations    chan struct{}                  // see HoldRoomCreations
	waiting      int                            // room creations waiting for it
	receipts     []Receipt
	typings      []Typing
	presences    []Presence

	statusByEvent map[id.EventID][]*bridgev2.MessageStatus

	puppets puppetState // see EnableDoublePuppet

	ensureInvited map[roomUser]int // see MoreInviteChecks
}

// SetDown makes every message, state event and room creation fail with err
// (as a homeserver that stopped answering); nil brings it back.
func (m *Matrix) SetDown(err error) {
	m.mu.Lock()
	m.down = err
	m.mu.Unlock()
}

// downErr is the error of a send while the homeserver is down.
func (m *Matrix) downErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// HoldRoomCreations makes every room creation wait (as a homeserver slow
// to create rooms) until the returned function is called, or the
// creation's context ends.
func (m *Matrix) HoldRoomCreations() (release func()) {
	gate := make(chan struct{})
	m.mu.Lock()
	m.creations = gate
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			if m.creations == gate {
				m.creations = nil
			}
			m.mu.Unlock()
			close(gate)
		})
	}
}

// awaitCreation waits while room creations are held.
func (m *Matrix) awaitCreation(ctx context.Context) error {
	m.mu.Lock()
	gate := m.creations
	m.mu.Unlock()
	if gate == nil {
		return nil
	}
	m.mu.Lock()
	m.waiting++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.waiting--
		m.mu.Unlock()
	}()
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HeldRoomCreations counts the room creations waiting, now, for
// HoldRoomCreations' release.
func (m *Matrix) HeldRoomCreations() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waiting
}

// New returns an empty Matrix side.
func New() *Matrix {
	return &Matrix{
		rooms:    make(map[id.RoomID]*room),
		profiles: make(map[id.UserID]Profile),
		media:    make(map[id.ContentURIString][]byte),
	}
}

// Bridge is the bridge that was initialised with this Matrix side last.
func (m *Matrix) Bridge() *bridgev2.Bridge {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.br
}

// nextLocked is the next number for an ID; m.mu is held.
func (m *Matrix) nextLocked() int {
	m.counter++
	return m.counter
}

// Intent is the MatrixAPI of userID.
func (m *Matrix) Intent(userID id.UserID) *Intent { return &Intent{m: m, mxid: userID} }

func (m *Matrix) Init(br *bridgev2.Bridge) {
	m.mu.Lock()
	m.br = br
	m.mu.Unlock()
}

func (m *Matrix) Start(context.Context) error   { return nil }
func (m *Matrix) PreStop()                      {}
func (m *Matrix) Stop()                         {}
func (m *Matrix) ServerName() string            { return ServerName }
func (m *Matrix) BotIntent() bridgev2.MatrixAPI { return m.Intent(BotMXID) }

func (m *Matrix) GetCapabilities() *bridgev2.MatrixCapabilities {
	return &bridgev2.MatrixCapabilities{AutoJoinInvites: true}
}

// FormatGhostMXID makes "@gw_<userID>:test".
func (m *Matrix) FormatGhostMXID(userID networkid.UserID) id.UserID {
	return id.UserID(ghostPrefix + string(userID) + ghostSuffix)
}

// ParseGhostMXID is the inverse of FormatGhostMXID.
func (m *Matrix) ParseGhostMXID(userID id.UserID) (networkid.UserID, bool) {
	s, ok := strings.CutPrefix(string(userID), ghostPrefix)
	if !ok {
		return "", false
	}
	s, ok = strings.CutSuffix(s, ghostSuffix)
	if !ok || s == "" {
		return "", false
	}
	return networkid.UserID(s), true
}

func (m *Matrix) GhostIntent(userID networkid.UserID) bridgev2.MatrixAPI {
	return m.Intent(m.FormatGhostMXID(userID))
}

func (m *Matrix) NewUserIntent(_ context.Context, userID id.UserID, token string) (bridgev2.MatrixAPI, string, error) {
	if m.doublePuppetOn() {
		return &Intent{m: m, mxid: userID, puppet: true}, token, nil
	}
	return nil, "", fmt.Errorf("double puppeting: %w", errNotAvailable)
}

func (m *Matrix) SendBridgeStatus(_ context.Context, state *status.BridgeState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bridgeStates = append(m.bridgeStates, *state)
	return nil
}

// SendMessageStatus records the status and, when it asks for a notice,
// has the bot post the notice into the room.
func (m *Matrix) SendMessageStatus(ctx context.Context, st *bridgev2.MessageStatus, info *bridgev2.MessageStatusEventInfo) {
	m.mu.Lock()
	m.msgStatuses = append(m.msgStatuses, st)
	if info != nil {
		if m.statusByEvent == nil {
			m.statusByEvent = make(map[id.EventID][]*bridgev2.MessageStatus)
		}
		m.statusByEvent[info.SourceEventID] = append(m.statusByEvent[info.SourceEventID], st)
	}
	m.mu.Unlock()
	if st.SendNotice && info != nil {
		_, _ = m.BotIntent().SendMessage(ctx, info.RoomID, event.EventMessage, &event.Content{Parsed: st.ToNoticeEvent(info)}, nil)
	}
}

func (m *Matrix) GenerateContentURI(context.Context, networkid.MediaID) (id.ContentURIString, error) {
	return "", fmt.Errorf("direct media: %w", errNotAvailable)
}

func (m *Matrix) ParseContentURI(context.Context, id.ContentURIString) (networkid.MediaID, error) {
	return nil, fmt.Errorf("direct media: %w", errNotAvailable)
}

// GetPowerLevels returns the room's current power levels (empty ones if it
// has none).
func (m *Matrix) GetPowerLevels(_ context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, error) {
	if pl := m.PowerLevels(roomID); pl != nil {
		return pl, nil
	}
	return &event.PowerLevelsEventContent{}, nil
}

// GetMembers returns the room's current membership.
func (m *Matrix) GetMembers(_ context.Context, roomID id.RoomID) (map[id.UserID]*event.MemberEventContent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[id.UserID]*event.MemberEventContent)
	if r := m.rooms[roomID]; r != nil {
		for userID, member := range r.members {
			c := *member
			out[userID] = &c
		}
	}
	return out, nil
}

// GetMemberInfo returns userID's member event content in the room, or nil.
func (m *Matrix) GetMemberInfo(_ context.Context, roomID id.RoomID, userID id.UserID) (*event.MemberEventContent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rooms[roomID]; r != nil && r.members[userID] != nil {
		c := *r.members[userID]
		return &c, nil
	}
	return nil, nil
}

func (m *Matrix) BatchSend(context.Context, id.RoomID, *mautrix.ReqBeeperBatchSend, []*bridgev2.MatrixSendExtra) (*mautrix.RespBeeperBatchSend, error) {
	return nil, fmt.Errorf("batch sending: %w", errNotAvailable)
}

func (m *Matrix) GenerateDeterministicRoomID(networkid.PortalKey) id.RoomID { return "" }

func (m *Matrix) GenerateDeterministicEventID(id.RoomID, networkid.PortalKey, networkid.MessageID, networkid.PartID) id.EventID {
	return ""
}

func (m *Matrix) GenerateReactionEventID(id.RoomID, *database.Message, networkid.UserID, networkid.EmojiID) id.EventID {
	return ""
}

// Inject hands evt to the bridge as a Matrix event from a user, filling
// in an event ID and the current time when they are empty. A state event
// also becomes the room's current state, as a homeserver would have it.
// The event is not recorded as sent by the bridge.
func (m *Matrix) Inject(ctx context.Context, evt *event.Event) {
	m.mu.Lock()
	if evt.ID == "" {
		evt.ID = id.EventID(fmt.Sprintf("$in%d", m.nextLocked()))
	}
	if evt.Timestamp == 0 {
		evt.Timestamp = time.Now().UnixMilli()
	}
	if evt.StateKey != nil {
		m.applyStateLocked(evt.RoomID, evt.Type, *evt.StateKey, &evt.Content)
	}
	br := m.br
	m.mu.Unlock()
	br.QueueMatrixEvent(ctx, evt)
}
