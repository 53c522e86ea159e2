package telegram

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

// fakeMatrix is a Matrix side for bridgev2 that records what the bridge
// sends to Matrix instead of talking to a homeserver. The Telegram side in
// these tests is real (gotd against the simulator); only the homeserver is
// left out, as the gateway's end-to-end tests cover it with Dendrite.
type fakeMatrix struct {
	br *bridgev2.Bridge

	mu       sync.Mutex
	counter  int
	events   []sentEvent
	statuses []status.BridgeState
	msgStat  []*bridgev2.MessageStatus
	names    map[id.UserID]string
	notify   chan struct{}
}

type sentEvent struct {
	RoomID  id.RoomID
	Sender  id.UserID
	Content *event.MessageEventContent
}

var _ bridgev2.MatrixConnector = (*fakeMatrix)(nil)

func newFakeMatrix() *fakeMatrix {
	return &fakeMatrix{names: make(map[id.UserID]string), notify: make(chan struct{}, 1)}
}

func (fm *fakeMatrix) changed() {
	select {
	case fm.notify <- struct{}{}:
	default:
	}
}

// waitFor polls cond until it holds or the timeout passes.
func (fm *fakeMatrix) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		fm.mu.Lock()
		ok := cond()
		fm.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-fm.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return false
		}
	}
}

func (fm *fakeMatrix) messagesWithBody(body string) []sentEvent {
	var out []sentEvent
	for _, e := range fm.events {
		if e.Content != nil && e.Content.Body == body {
			out = append(out, e)
		}
	}
	return out
}

func (fm *fakeMatrix) hasState(evt status.BridgeStateEvent) bool {
	for _, st := range fm.statuses {
		if st.StateEvent == evt {
			return true
		}
	}
	return false
}

func (fm *fakeMatrix) next() int {
	fm.counter++
	return fm.counter
}

func (fm *fakeMatrix) Init(br *bridgev2.Bridge)      { fm.br = br }
func (fm *fakeMatrix) Start(context.Context) error   { return nil }
func (fm *fakeMatrix) PreStop()                      {}
func (fm *fakeMatrix) Stop()                         {}
func (fm *fakeMatrix) ServerName() string            { return "test" }
func (fm *fakeMatrix) BotIntent() bridgev2.MatrixAPI { return &fakeIntent{fm: fm, mxid: "@bot:test"} }
func (fm *fakeMatrix) GetCapabilities() *bridgev2.MatrixCapabilities {
	return &bridgev2.MatrixCapabilities{AutoJoinInvites: true}
}

func (fm *fakeMatrix) FormatGhostMXID(userID networkid.UserID) id.UserID {
	return id.UserID("@gw_" + string(userID) + ":test")
}

func (fm *fakeMatrix) ParseGhostMXID(userID id.UserID) (networkid.UserID, bool) {
	s := string(userID)
	if !strings.HasPrefix(s, "@gw_") || !strings.HasSuffix(s, ":test") {
		return "", false
	}
	return networkid.UserID(strings.TrimSuffix(strings.TrimPrefix(s, "@gw_"), ":test")), true
}

func (fm *fakeMatrix) GhostIntent(userID networkid.UserID) bridgev2.MatrixAPI {
	return &fakeIntent{fm: fm, mxid: fm.FormatGhostMXID(userID)}
}

func (fm *fakeMatrix) NewUserIntent(context.Context, id.UserID, string) (bridgev2.MatrixAPI, string, error) {
	return nil, "", errors.New("double puppeting is not available in tests")
}

func (fm *fakeMatrix) SendBridgeStatus(_ context.Context, state *status.BridgeState) error {
	fm.mu.Lock()
	fm.statuses = append(fm.statuses, *state)
	fm.mu.Unlock()
	fm.changed()
	return nil
}

func (fm *fakeMatrix) SendMessageStatus(_ context.Context, st *bridgev2.MessageStatus, _ *bridgev2.MessageStatusEventInfo) {
	fm.mu.Lock()
	fm.msgStat = append(fm.msgStat, st)
	fm.mu.Unlock()
	fm.changed()
}

func (fm *fakeMatrix) GenerateContentURI(context.Context, networkid.MediaID) (id.ContentURIString, error) {
	return "", errors.New("no media in tests")
}

func (fm *fakeMatrix) ParseContentURI(context.Context, id.ContentURIString) (networkid.MediaID, error) {
	return nil, errors.New("no media in tests")
}

func (fm *fakeMatrix) GetPowerLevels(context.Context, id.RoomID) (*event.PowerLevelsEventContent, error) {
	return &event.PowerLevelsEventContent{}, nil
}

func (fm *fakeMatrix) GetMembers(context.Context, id.RoomID) (map[id.UserID]*event.MemberEventContent, error) {
	return map[id.UserID]*event.MemberEventContent{}, nil
}

func (fm *fakeMatrix) GetMemberInfo(context.Context, id.RoomID, id.UserID) (*event.MemberEventContent, error) {
	return nil, nil
}

func (fm *fakeMatrix) BatchSend(context.Context, id.RoomID, *mautrix.ReqBeeperBatchSend, []*bridgev2.MatrixSendExtra) (*mautrix.RespBeeperBatchSend, error) {
	return nil, errors.New("no batch sending in tests")
}

func (fm *fakeMatrix) GenerateDeterministicRoomID(networkid.PortalKey) id.RoomID { return "" }

func (fm *fakeMatrix) GenerateDeterministicEventID(id.RoomID, networkid.PortalKey, networkid.MessageID, networkid.PartID) id.EventID {
	return ""
}

func (fm *fakeMatrix) GenerateReactionEventID(id.RoomID, *database.Message, networkid.UserID, networkid.EmojiID) id.EventID {
	return ""
}

type fakeIntent struct {
	fm   *fakeMatrix
	mxid id.UserID
}

var _ bridgev2.MatrixAPI = (*fakeIntent)(nil)

func (fi *fakeIntent) GetMXID() id.UserID   { return fi.mxid }
func (fi *fakeIntent) IsDoublePuppet() bool { return false }

func (fi *fakeIntent) SendMessage(_ context.Context, roomID id.RoomID, evtType event.Type, content *event.Content, _ *bridgev2.MatrixSendExtra) (*mautrix.RespSendEvent, error) {
	fi.fm.mu.Lock()
	n := fi.fm.next()
	if msg, ok := content.Parsed.(*event.MessageEventContent); ok && evtType == event.EventMessage {
		fi.fm.events = append(fi.fm.events, sentEvent{RoomID: roomID, Sender: fi.mxid, Content: msg})
	}
	fi.fm.mu.Unlock()
	fi.fm.changed()
	return &mautrix.RespSendEvent{EventID: id.EventID(fmt.Sprintf("$ev%d", n))}, nil
}

func (fi *fakeIntent) SendState(context.Context, id.RoomID, event.Type, string, *event.Content, time.Time) (*mautrix.RespSendEvent, error) {
	fi.fm.mu.Lock()
	n := fi.fm.next()
	fi.fm.mu.Unlock()
	return &mautrix.RespSendEvent{EventID: id.EventID(fmt.Sprintf("$state%d", n))}, nil
}

func (fi *fakeIntent) CreateRoom(context.Context, *mautrix.ReqCreateRoom) (id.RoomID, error) {
	fi.fm.mu.Lock()
	defer fi.fm.mu.Unlock()
	return id.RoomID(fmt.Sprintf("!room%d:test", fi.fm.next())), nil
}

func (fi *fakeIntent) SetDisplayName(_ context.Context, name string) error {
	fi.fm.mu.Lock()
	fi.fm.names[fi.mxid] = name
	fi.fm.mu.Unlock()
	return nil
}

func (fi *fakeIntent) MarkRead(context.Context, id.RoomID, id.EventID, time.Time) error { return nil }
func (fi *fakeIntent) MarkUnread(context.Context, id.RoomID, bool) error                { return nil }
func (fi *fakeIntent) MarkTyping(context.Context, id.RoomID, bridgev2.TypingType, time.Duration) error {
	return nil
}
func (fi *fakeIntent) DownloadMedia(context.Context, id.ContentURIString, *event.EncryptedFileInfo) ([]byte, error) {
	return nil, errors.New("no media in tests")
}
func (fi *fakeIntent) DownloadMediaToFile(context.Context, id.ContentURIString, *event.EncryptedFileInfo, bool, func(*os.File) error) error {
	return errors.New("no media in tests")
}
func (fi *fakeIntent) UploadMedia(context.Context, id.RoomID, []byte, string, string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	return "", nil, errors.New("no media in tests")
}
func (fi *fakeIntent) UploadMediaStream(context.Context, id.RoomID, int64, bool, bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	return "", nil, errors.New("no media in tests")
}
func (fi *fakeIntent) SetAvatarURL(context.Context, id.ContentURIString) error { return nil }
func (fi *fakeIntent) SetExtraProfileMeta(context.Context, any) error          { return nil }
func (fi *fakeIntent) SetProfile(context.Context, any) error                   { return nil }
func (fi *fakeIntent) DeleteRoom(context.Context, id.RoomID, bool) error       { return nil }
func (fi *fakeIntent) EnsureJoined(context.Context, id.RoomID, ...bridgev2.EnsureJoinedParams) error {
	return nil
}
func (fi *fakeIntent) EnsureInvited(context.Context, id.RoomID, id.UserID) error { return nil }
func (fi *fakeIntent) TagRoom(context.Context, id.RoomID, event.RoomTag, bool) error {
	return nil
}
func (fi *fakeIntent) MuteRoom(context.Context, id.RoomID, time.Time) error { return nil }
func (fi *fakeIntent) GetEvent(context.Context, id.RoomID, id.EventID) (*event.Event, error) {
	return nil, errors.New("no events in tests")
}
