package admin_test

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

// recMatrix is the Matrix side of the test bridge: it records what the
// bridge sends to Matrix (messages with their timestamps, state events,
// rooms) instead of talking to a homeserver. The network side is real: the
// Telegram connector against the simulator. It survives bridge restarts, so
// that a test sees everything one "homeserver" saw.
type recMatrix struct {
	mu      sync.Mutex
	counter int
	msgs    []recMessage
	states  []recState
	rooms   map[id.RoomID]*mautrix.ReqCreateRoom
	pls     map[id.RoomID]*event.PowerLevelsEventContent
	msgStat []*bridgev2.MessageStatus
	bstates []status.BridgeState
}

type recMessage struct {
	RoomID  id.RoomID
	Sender  id.UserID
	Content *event.MessageEventContent
	TS      time.Time
	EventID id.EventID
}

type recState struct {
	RoomID   id.RoomID
	Sender   id.UserID
	Type     event.Type
	StateKey string
	Content  *event.Content
}

func newRecMatrix() *recMatrix {
	return &recMatrix{rooms: map[id.RoomID]*mautrix.ReqCreateRoom{}, pls: map[id.RoomID]*event.PowerLevelsEventContent{}}
}

// matrixSide is one bridge's view of the recorder (it holds the bridge).
type matrixSide struct {
	*recMatrix
	br *bridgev2.Bridge
}

var _ bridgev2.MatrixConnector = (*matrixSide)(nil)

func (rm *recMatrix) next() int { rm.counter++; return rm.counter }

func (rm *recMatrix) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		rm.mu.Lock()
		ok := cond()
		rm.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bodies returns the bodies of messages in rooms other than roomsExcept, by
// sender, in order.
func (rm *recMatrix) messagesFrom(sender id.UserID) []recMessage {
	var out []recMessage
	for _, m := range rm.msgs {
		if m.Sender == sender {
			out = append(out, m)
		}
	}
	return out
}

func (rm *recMatrix) noticeContaining(roomID id.RoomID, text string) (recMessage, bool) {
	for _, m := range rm.msgs {
		if (roomID == "" || m.RoomID == roomID) && strings.Contains(m.Content.Body, text) {
			return m, true
		}
	}
	return recMessage{}, false
}

func (ms *matrixSide) Init(br *bridgev2.Bridge)    { ms.br = br }
func (ms *matrixSide) Start(context.Context) error { return nil }
func (ms *matrixSide) PreStop()                    {}
func (ms *matrixSide) Stop()                       {}
func (ms *matrixSide) ServerName() string          { return "test" }
func (ms *matrixSide) BotIntent() bridgev2.MatrixAPI {
	return &recIntent{rm: ms.recMatrix, mxid: "@bot:test"}
}
func (ms *matrixSide) GetCapabilities() *bridgev2.MatrixCapabilities {
	return &bridgev2.MatrixCapabilities{AutoJoinInvites: true}
}
func (ms *matrixSide) FormatGhostMXID(userID networkid.UserID) id.UserID {
	return id.UserID("@gw_" + string(userID) + ":test")
}
func (ms *matrixSide) ParseGhostMXID(userID id.UserID) (networkid.UserID, bool) {
	s := string(userID)
	if !strings.HasPrefix(s, "@gw_") || !strings.HasSuffix(s, ":test") {
		return "", false
	}
	return networkid.UserID(strings.TrimSuffix(strings.TrimPrefix(s, "@gw_"), ":test")), true
}
func (ms *matrixSide) GhostIntent(userID networkid.UserID) bridgev2.MatrixAPI {
	return &recIntent{rm: ms.recMatrix, mxid: ms.FormatGhostMXID(userID)}
}
func (ms *matrixSide) NewUserIntent(context.Context, id.UserID, string) (bridgev2.MatrixAPI, string, error) {
	return nil, "", errors.New("no double puppeting in tests")
}
func (ms *matrixSide) SendBridgeStatus(_ context.Context, st *status.BridgeState) error {
	ms.mu.Lock()
	ms.bstates = append(ms.bstates, *st)
	ms.mu.Unlock()
	return nil
}
func (ms *matrixSide) SendMessageStatus(_ context.Context, st *bridgev2.MessageStatus, info *bridgev2.MessageStatusEventInfo) {
	ms.mu.Lock()
	ms.msgStat = append(ms.msgStat, st)
	ms.mu.Unlock()
	if st.SendNotice && info != nil {
		notice := st.ToNoticeEvent(info)
		_, _ = ms.BotIntent().SendMessage(context.Background(), info.RoomID, event.EventMessage, &event.Content{Parsed: notice}, nil)
	}
}
func (ms *matrixSide) GenerateContentURI(context.Context, networkid.MediaID) (id.ContentURIString, error) {
	return "", errors.New("no media in tests")
}
func (ms *matrixSide) ParseContentURI(context.Context, id.ContentURIString) (networkid.MediaID, error) {
	return nil, errors.New("no media in tests")
}
func (ms *matrixSide) GetPowerLevels(_ context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if pl, ok := ms.pls[roomID]; ok {
		return copyPL(pl), nil
	}
	return &event.PowerLevelsEventContent{}, nil
}
func copyPL(pl *event.PowerLevelsEventContent) *event.PowerLevelsEventContent {
	return pl.Clone()
}
func (ms *matrixSide) GetMembers(context.Context, id.RoomID) (map[id.UserID]*event.MemberEventContent, error) {
	return map[id.UserID]*event.MemberEventContent{}, nil
}
func (ms *matrixSide) GetMemberInfo(context.Context, id.RoomID, id.UserID) (*event.MemberEventContent, error) {
	return nil, nil
}
func (ms *matrixSide) BatchSend(context.Context, id.RoomID, *mautrix.ReqBeeperBatchSend, []*bridgev2.MatrixSendExtra) (*mautrix.RespBeeperBatchSend, error) {
	return nil, errors.New("no batch sending in tests")
}
func (ms *matrixSide) GenerateDeterministicRoomID(networkid.PortalKey) id.RoomID { return "" }
func (ms *matrixSide) GenerateDeterministicEventID(id.RoomID, networkid.PortalKey, networkid.MessageID, networkid.PartID) id.EventID {
	return ""
}
func (ms *matrixSide) GenerateReactionEventID(id.RoomID, *database.Message, networkid.UserID, networkid.EmojiID) id.EventID {
	return ""
}

type recIntent struct {
	rm   *recMatrix
	mxid id.UserID
}

var _ bridgev2.MatrixAPI = (*recIntent)(nil)

func (ri *recIntent) GetMXID() id.UserID   { return ri.mxid }
func (ri *recIntent) IsDoublePuppet() bool { return false }
func (ri *recIntent) SendMessage(_ context.Context, roomID id.RoomID, evtType event.Type, content *event.Content, extra *bridgev2.MatrixSendExtra) (*mautrix.RespSendEvent, error) {
	ri.rm.mu.Lock()
	defer ri.rm.mu.Unlock()
	evtID := id.EventID(fmt.Sprintf("$ev%d", ri.rm.next()))
	if msg, ok := content.Parsed.(*event.MessageEventContent); ok && evtType == event.EventMessage {
		ts := time.Now()
		if extra != nil && !extra.Timestamp.IsZero() {
			ts = extra.Timestamp
		}
		ri.rm.msgs = append(ri.rm.msgs, recMessage{RoomID: roomID, Sender: ri.mxid, Content: msg, TS: ts, EventID: evtID})
	}
	return &mautrix.RespSendEvent{EventID: evtID}, nil
}
func (ri *recIntent) SendState(_ context.Context, roomID id.RoomID, evtType event.Type, stateKey string, content *event.Content, _ time.Time) (*mautrix.RespSendEvent, error) {
	ri.rm.mu.Lock()
	defer ri.rm.mu.Unlock()
	ri.rm.states = append(ri.rm.states, recState{RoomID: roomID, Sender: ri.mxid, Type: evtType, StateKey: stateKey, Content: content})
	if pl, ok := content.Parsed.(*event.PowerLevelsEventContent); ok && evtType == event.StatePowerLevels {
		ri.rm.pls[roomID] = copyPL(pl)
	}
	return &mautrix.RespSendEvent{EventID: id.EventID(fmt.Sprintf("$state%d", ri.rm.next()))}, nil
}
func (ri *recIntent) CreateRoom(_ context.Context, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	ri.rm.mu.Lock()
	defer ri.rm.mu.Unlock()
	roomID := id.RoomID(fmt.Sprintf("!room%d:test", ri.rm.next()))
	ri.rm.rooms[roomID] = req
	if req.PowerLevelOverride != nil {
		ri.rm.pls[roomID] = copyPL(req.PowerLevelOverride)
	}
	return roomID, nil
}
func (ri *recIntent) SetDisplayName(context.Context, string) error                     { return nil }
func (ri *recIntent) MarkRead(context.Context, id.RoomID, id.EventID, time.Time) error { return nil }
func (ri *recIntent) MarkUnread(context.Context, id.RoomID, bool) error                { return nil }
func (ri *recIntent) MarkTyping(context.Context, id.RoomID, bridgev2.TypingType, time.Duration) error {
	return nil
}
func (ri *recIntent) DownloadMedia(context.Context, id.ContentURIString, *event.EncryptedFileInfo) ([]byte, error) {
	return nil, errors.New("no media in tests")
}
func (ri *recIntent) DownloadMediaToFile(context.Context, id.ContentURIString, *event.EncryptedFileInfo, bool, func(*os.File) error) error {
	return errors.New("no media in tests")
}
func (ri *recIntent) UploadMedia(context.Context, id.RoomID, []byte, string, string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	return "", nil, errors.New("no media in tests")
}
func (ri *recIntent) UploadMediaStream(context.Context, id.RoomID, int64, bool, bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	return "", nil, errors.New("no media in tests")
}
func (ri *recIntent) SetAvatarURL(context.Context, id.ContentURIString) error { return nil }
func (ri *recIntent) SetExtraProfileMeta(context.Context, any) error          { return nil }
func (ri *recIntent) SetProfile(context.Context, any) error                   { return nil }
func (ri *recIntent) DeleteRoom(context.Context, id.RoomID, bool) error       { return nil }
func (ri *recIntent) EnsureJoined(context.Context, id.RoomID, ...bridgev2.EnsureJoinedParams) error {
	return nil
}
func (ri *recIntent) EnsureInvited(context.Context, id.RoomID, id.UserID) error     { return nil }
func (ri *recIntent) TagRoom(context.Context, id.RoomID, event.RoomTag, bool) error { return nil }
func (ri *recIntent) MuteRoom(context.Context, id.RoomID, time.Time) error          { return nil }
func (ri *recIntent) GetEvent(context.Context, id.RoomID, id.EventID) (*event.Event, error) {
	return nil, errors.New("no events in tests")
}
