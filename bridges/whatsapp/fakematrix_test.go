package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// matrixSide stands in for the homeserver: it records what bridgev2 sends
// to Matrix. WhatsApp is real in these tests (whatsmeow against the
// simulator); the gateway's end-to-end tests cover a real homeserver.
type matrixSide struct {
	mu       sync.Mutex
	n        int
	sent     []sentMsg
	rooms    map[id.RoomID]*mautrix.ReqCreateRoom
	joined   map[id.RoomID][]id.UserID
	states   []status.BridgeState
	statuses []*bridgev2.MessageStatus
}

type sentMsg struct {
	Room    id.RoomID
	Sender  id.UserID
	Content *event.MessageEventContent
	TS      time.Time // the timestamp the event was sent with
}

var _ bridgev2.MatrixConnector = (*matrixSide)(nil)

func newMatrixSide() *matrixSide {
	return &matrixSide{rooms: map[id.RoomID]*mautrix.ReqCreateRoom{}, joined: map[id.RoomID][]id.UserID{}}
}

// eventually polls cond (called with the lock held) until it holds.
func (m *matrixSide) eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		m.mu.Lock()
		ok := cond()
		m.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *matrixSide) findMsg(pred func(sentMsg) bool) (sentMsg, bool) {
	for _, s := range m.sent {
		if pred(s) {
			return s, true
		}
	}
	return sentMsg{}, false
}

func (m *matrixSide) hasState(evt status.BridgeStateEvent, code status.BridgeStateErrorCode) bool {
	for _, st := range m.states {
		if st.StateEvent == evt && (code == "" || st.Error == code) {
			return true
		}
	}
	return false
}

func (m *matrixSide) Init(*bridgev2.Bridge)         {}
func (m *matrixSide) Start(context.Context) error   { return nil }
func (m *matrixSide) PreStop()                      {}
func (m *matrixSide) Stop()                         {}
func (m *matrixSide) ServerName() string            { return "test" }
func (m *matrixSide) BotIntent() bridgev2.MatrixAPI { return &intent{m: m, mxid: "@bot:test"} }
func (m *matrixSide) GetCapabilities() *bridgev2.MatrixCapabilities {
	return &bridgev2.MatrixCapabilities{AutoJoinInvites: true}
}
func (m *matrixSide) FormatGhostMXID(u networkid.UserID) id.UserID {
	return id.UserID("@gw_" + string(u) + ":test")
}
func (m *matrixSide) ParseGhostMXID(u id.UserID) (networkid.UserID, bool) {
	s, ok := strings.CutPrefix(string(u), "@gw_")
	if !ok || !strings.HasSuffix(s, ":test") {
		return "", false
	}
	return networkid.UserID(strings.TrimSuffix(s, ":test")), true
}
func (m *matrixSide) GhostIntent(u networkid.UserID) bridgev2.MatrixAPI {
	return &intent{m: m, mxid: m.FormatGhostMXID(u)}
}
func (m *matrixSide) NewUserIntent(context.Context, id.UserID, string) (bridgev2.MatrixAPI, string, error) {
	return nil, "", errors.New("no double puppeting in tests")
}
func (m *matrixSide) SendBridgeStatus(_ context.Context, st *status.BridgeState) error {
	m.mu.Lock()
	m.states = append(m.states, *st)
	m.mu.Unlock()
	return nil
}
func (m *matrixSide) SendMessageStatus(_ context.Context, st *bridgev2.MessageStatus, _ *bridgev2.MessageStatusEventInfo) {
	m.mu.Lock()
	m.statuses = append(m.statuses, st)
	m.mu.Unlock()
}
func (m *matrixSide) GenerateContentURI(context.Context, networkid.MediaID) (id.ContentURIString, error) {
	return "", errors.New("no media in tests")
}
func (m *matrixSide) ParseContentURI(context.Context, id.ContentURIString) (networkid.MediaID, error) {
	return nil, errors.New("no media in tests")
}
func (m *matrixSide) GetPowerLevels(context.Context, id.RoomID) (*event.PowerLevelsEventContent, error) {
	return &event.PowerLevelsEventContent{}, nil
}
func (m *matrixSide) GetMembers(context.Context, id.RoomID) (map[id.UserID]*event.MemberEventContent, error) {
	return map[id.UserID]*event.MemberEventContent{}, nil
}
func (m *matrixSide) GetMemberInfo(context.Context, id.RoomID, id.UserID) (*event.MemberEventContent, error) {
	return nil, nil
}
func (m *matrixSide) BatchSend(context.Context, id.RoomID, *mautrix.ReqBeeperBatchSend, []*bridgev2.MatrixSendExtra) (*mautrix.RespBeeperBatchSend, error) {
	return nil, errors.New("no batch send in tests")
}
func (m *matrixSide) GenerateDeterministicRoomID(networkid.PortalKey) id.RoomID { return "" }
func (m *matrixSide) GenerateDeterministicEventID(id.RoomID, networkid.PortalKey, networkid.MessageID, networkid.PartID) id.EventID {
	return ""
}
func (m *matrixSide) GenerateReactionEventID(id.RoomID, *database.Message, networkid.UserID, networkid.EmojiID) id.EventID {
	return ""
}

type intent struct {
	m    *matrixSide
	mxid id.UserID
}

var _ bridgev2.MatrixAPI = (*intent)(nil)

func (i *intent) GetMXID() id.UserID   { return i.mxid }
func (i *intent) IsDoublePuppet() bool { return false }
func (i *intent) SendMessage(_ context.Context, room id.RoomID, typ event.Type, content *event.Content, extra *bridgev2.MatrixSendExtra) (*mautrix.RespSendEvent, error) {
	i.m.mu.Lock()
	defer i.m.mu.Unlock()
	i.m.n++
	if msg, ok := content.Parsed.(*event.MessageEventContent); ok && typ == event.EventMessage {
		ts := time.Now()
		if extra != nil && !extra.Timestamp.IsZero() {
			ts = extra.Timestamp
		}
		i.m.sent = append(i.m.sent, sentMsg{Room: room, Sender: i.mxid, Content: msg, TS: ts})
	}
	return &mautrix.RespSendEvent{EventID: id.EventID(fmt.Sprintf("$e%d", i.m.n))}, nil
}
func (i *intent) SendState(context.Context, id.RoomID, event.Type, string, *event.Content, time.Time) (*mautrix.RespSendEvent, error) {
	i.m.mu.Lock()
	defer i.m.mu.Unlock()
	i.m.n++
	return &mautrix.RespSendEvent{EventID: id.EventID(fmt.Sprintf("$s%d", i.m.n))}, nil
}
func (i *intent) CreateRoom(_ context.Context, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	i.m.mu.Lock()
	defer i.m.mu.Unlock()
	i.m.n++
	room := id.RoomID(fmt.Sprintf("!r%d:test", i.m.n))
	i.m.rooms[room] = req
	i.m.joined[room] = append(i.m.joined[room], req.BeeperInitialMembers...)
	return room, nil
}
func (i *intent) EnsureJoined(_ context.Context, room id.RoomID, _ ...bridgev2.EnsureJoinedParams) error {
	i.m.mu.Lock()
	i.m.joined[room] = append(i.m.joined[room], i.mxid)
	i.m.mu.Unlock()
	return nil
}
func (i *intent) EnsureInvited(context.Context, id.RoomID, id.UserID) error        { return nil }
func (i *intent) SetDisplayName(context.Context, string) error                     { return nil }
func (i *intent) MarkRead(context.Context, id.RoomID, id.EventID, time.Time) error { return nil }
func (i *intent) MarkUnread(context.Context, id.RoomID, bool) error                { return nil }
func (i *intent) SetAvatarURL(context.Context, id.ContentURIString) error          { return nil }
func (i *intent) SetExtraProfileMeta(context.Context, any) error                   { return nil }
func (i *intent) SetProfile(context.Context, any) error                            { return nil }
func (i *intent) DeleteRoom(context.Context, id.RoomID, bool) error                { return nil }
func (i *intent) TagRoom(context.Context, id.RoomID, event.RoomTag, bool) error    { return nil }
func (i *intent) MuteRoom(context.Context, id.RoomID, time.Time) error             { return nil }
func (i *intent) MarkTyping(context.Context, id.RoomID, bridgev2.TypingType, time.Duration) error {
	return nil
}
func (i *intent) DownloadMedia(context.Context, id.ContentURIString, *event.EncryptedFileInfo) ([]byte, error) {
	return nil, errors.New("no media in tests")
}
func (i *intent) DownloadMediaToFile(context.Context, id.ContentURIString, *event.EncryptedFileInfo, bool, func(*os.File) error) error {
	return errors.New("no media in tests")
}
func (i *intent) UploadMedia(context.Context, id.RoomID, []byte, string, string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	return "", nil, errors.New("no media in tests")
}
func (i *intent) UploadMediaStream(context.Context, id.RoomID, int64, bool, bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	return "", nil, errors.New("no media in tests")
}
func (i *intent) GetEvent(context.Context, id.RoomID, id.EventID) (*event.Event, error) {
	return nil, errors.New("no events in tests")
}
