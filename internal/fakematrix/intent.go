package fakematrix

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

var _ bridgev2.MatrixAPI = (*Intent)(nil)

// Intent is one Matrix user (the bot or a ghost) acting on the fake
// homeserver; everything it sends is recorded in its Matrix.
type Intent struct {
	m      *Matrix
	mxid   id.UserID
	puppet bool // a double puppet (see EnableDoublePuppet)
}

func (in *Intent) GetMXID() id.UserID   { return in.mxid }
func (in *Intent) IsDoublePuppet() bool { return in.puppet }

// SendMessage records a timeline event, with the timestamp of extra if it
// has one.
func (in *Intent) SendMessage(_ context.Context, roomID id.RoomID, evtType event.Type, content *event.Content, extra *bridgev2.MatrixSendExtra) (*mautrix.RespSendEvent, error) {
	if err := in.m.downErr(); err != nil {
		return nil, err
	}
	ts := time.Now()
	if extra != nil && !extra.Timestamp.IsZero() {
		ts = extra.Timestamp
	}
	m := in.m
	m.mu.Lock()
	defer m.mu.Unlock()
	evtID := id.EventID(fmt.Sprintf("$ev%d", m.nextLocked()))
	m.events = append(m.events, Event{RoomID: roomID, Sender: in.mxid, EventID: evtID, Type: evtType, Content: content, TS: ts})
	return &mautrix.RespSendEvent{EventID: evtID}, nil
}

// SendState records a state event and makes it the room's current state.
func (in *Intent) SendState(_ context.Context, roomID id.RoomID, evtType event.Type, stateKey string, content *event.Content, ts time.Time) (*mautrix.RespSendEvent, error) {
	if err := in.m.downErr(); err != nil {
		return nil, err
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	m := in.m
	m.mu.Lock()
	defer m.mu.Unlock()
	evtID := id.EventID(fmt.Sprintf("$state%d", m.nextLocked()))
	m.recordStateLocked(StateEvent{RoomID: roomID, Sender: in.mxid, EventID: evtID, Type: evtType, StateKey: stateKey, Content: content, TS: ts})
	return &mautrix.RespSendEvent{EventID: evtID}, nil
}

// CreateRoom records the room. Its current state starts with the creator
// joined, the initial members joined (invitees too, as the fake auto-joins
// invites), the initial state and the power level override; these are not
// listed in StateEvents.
func (in *Intent) CreateRoom(ctx context.Context, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	if err := in.m.awaitCreation(ctx); err != nil {
		return "", err
	}
	if err := in.m.downErr(); err != nil {
		return "", err
	}
	m := in.m
	m.mu.Lock()
	defer m.mu.Unlock()
	roomID := id.RoomID(fmt.Sprintf("!room%d:%s", m.nextLocked(), ServerName))
	r := newRoom(roomID, in.mxid, req)
	m.rooms[roomID] = r
	m.roomOrder = append(m.roomOrder, roomID)
	r.setMembership(in.mxid, event.MembershipJoin)
	for _, userID := range req.BeeperInitialMembers {
		r.setMembership(userID, event.MembershipJoin)
	}
	for _, userID := range req.Invite {
		if req.BeeperAutoJoinInvites {
			r.setMembership(userID, event.MembershipJoin)
		} else if r.membership(userID) != event.MembershipJoin {
			r.setMembership(userID, event.MembershipInvite)
		}
	}
	for _, evt := range req.InitialState {
		content := evt.Content
		m.applyStateLocked(roomID, evt.Type, evt.GetStateKey(), &content)
	}
	if req.PowerLevelOverride != nil {
		m.applyStateLocked(roomID, event.StatePowerLevels, "", &event.Content{Parsed: req.PowerLevelOverride})
	}
	return roomID, nil
}

// DeleteRoom marks the room deleted.
func (in *Intent) DeleteRoom(_ context.Context, roomID id.RoomID, _ bool) error {
	m := in.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rooms[roomID]; r != nil {
		r.info.Deleted = true
	}
	return nil
}

// EnsureJoined joins the intent's user to the room.
func (in *Intent) EnsureJoined(_ context.Context, roomID id.RoomID, _ ...bridgev2.EnsureJoinedParams) error {
	in.m.setMembership(roomID, in.mxid, event.MembershipJoin, false)
	return nil
}

// EnsureInvited invites userID unless it is already joined.
func (in *Intent) EnsureInvited(_ context.Context, roomID id.RoomID, userID id.UserID) error {
	in.m.countEnsureInvited(roomID, userID)
	in.m.setMembership(roomID, userID, event.MembershipInvite, true)
	return nil
}

func (in *Intent) SetDisplayName(_ context.Context, name string) error {
	in.m.updateProfile(in.mxid, func(p *Profile) { p.DisplayName = name })
	return nil
}

func (in *Intent) SetAvatarURL(_ context.Context, avatarURL id.ContentURIString) error {
	in.m.updateProfile(in.mxid, func(p *Profile) { p.AvatarURL = avatarURL })
	return nil
}

func (in *Intent) SetExtraProfileMeta(context.Context, any) error { return nil }
func (in *Intent) SetProfile(context.Context, any) error          { return nil }

func (in *Intent) MarkUnread(context.Context, id.RoomID, bool) error             { return nil }
func (in *Intent) TagRoom(context.Context, id.RoomID, event.RoomTag, bool) error { return nil }
func (in *Intent) MuteRoom(context.Context, id.RoomID, time.Time) error          { return nil }

// UploadMedia stores data under a new mxc:// URI (unencrypted).
func (in *Intent) UploadMedia(_ context.Context, roomID id.RoomID, data []byte, _, _ string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	m := in.m
	data = bytes.Clone(data)
	var file *event.EncryptedFileInfo
	if roomID != "" { // as mautrix: an upload outside a room is never encrypted
		file = m.encryptUpload(data)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	uri := id.ContentURIString(fmt.Sprintf("mxc://%s/media%d", ServerName, m.nextLocked()))
	m.media[uri] = data
	return uploaded(file, uri)
}

// UploadMediaStream lets cb write into a temporary file and stores what it
// wrote as UploadMedia does.
func (in *Intent) UploadMediaStream(ctx context.Context, roomID id.RoomID, _ int64, _ bool, cb bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	if dir := in.m.mediaDirOf(); dir != "" {
		return in.m.uploadStreamToDir(dir, roomID, cb)
	}
	f, err := os.CreateTemp("", "fakematrix-upload-*")
	if err != nil {
		return "", nil, fmt.Errorf("failed to create temp file: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer func() { _ = f.Close() }()
	res, err := cb(f)
	if err != nil {
		return "", nil, err
	}
	path := f.Name()
	if res != nil && res.ReplacementFile != "" {
		path = res.ReplacementFile
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("failed to read upload: %w", err)
	}
	return in.UploadMedia(ctx, roomID, data, "", "")
}

// DownloadMedia returns media uploaded to this Matrix side.
func (in *Intent) DownloadMedia(_ context.Context, uri id.ContentURIString, file *event.EncryptedFileInfo) ([]byte, error) {
	if file != nil && uri == "" {
		uri = file.URL
	}
	if data, ok := in.m.Media(uri); ok {
		return decryptDownload(data, file)
	}
	return nil, fmt.Errorf("media %s: %w", uri, mautrix.MNotFound)
}

// DownloadMediaToFile is DownloadMedia through a temporary file.
func (in *Intent) DownloadMediaToFile(ctx context.Context, uri id.ContentURIString, file *event.EncryptedFileInfo, _ bool, cb func(*os.File) error) error {
	if file != nil && uri == "" {
		uri = file.URL
	}
	if path, ok := in.m.MediaPath(uri); ok {
		return downloadFromDir(path, file, cb)
	}
	data, err := in.DownloadMedia(ctx, uri, file)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "fakematrix-download-*")
	if err != nil {
		return fmt.Errorf("failed to create temp file: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer func() { _ = f.Close() }()
	if _, err = io.Copy(f, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("failed to write temp file: %w", err)
	}
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("failed to rewind temp file: %w", err)
	}
	return cb(f)
}

// GetEvent returns a timeline or state event the bridge sent.
func (in *Intent) GetEvent(_ context.Context, roomID id.RoomID, eventID id.EventID) (*event.Event, error) {
	if evt := in.m.eventByID(roomID, eventID); evt != nil {
		return evt, nil
	}
	return nil, fmt.Errorf("event %s in %s: %w", eventID, roomID, mautrix.MNotFound)
}
