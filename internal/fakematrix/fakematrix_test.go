package fakematrix

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestGhostMXID(t *testing.T) {
	m := New()
	if got := m.FormatGhostMXID("telegram.42"); got != "@gw_telegram.42:test" {
		t.Errorf("FormatGhostMXID = %s", got)
	}
	for _, tc := range []struct {
		mxid id.UserID
		want networkid.UserID
		ok   bool
	}{
		{"@gw_telegram.42:test", "telegram.42", true},
		{"@gw_:test", "", false},
		{"@gw_telegram.42:other", "", false},
		{"@alice:test", "", false},
		{BotMXID, "", false},
	} {
		if got, ok := m.ParseGhostMXID(tc.mxid); got != tc.want || ok != tc.ok {
			t.Errorf("ParseGhostMXID(%s) = %q, %v; want %q, %v", tc.mxid, got, ok, tc.want, tc.ok)
		}
	}
}

// TestRoomState: the state a bridge reads back is what it set, at creation
// and later, and a copy.
func TestRoomState(t *testing.T) {
	ctx := context.Background()
	m := New()
	bot, ghost := m.BotIntent(), m.GhostIntent("42")
	roomID, err := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Name:                  "Room",
		BeeperInitialMembers:  []id.UserID{"@alice:test"},
		Invite:                []id.UserID{"@alice:test"},
		BeeperAutoJoinInvites: true,
		PowerLevelOverride:    &event.PowerLevelsEventContent{Users: map[id.UserID]int{BotMXID: 9001}},
		InitialState: []*event.Event{{Type: event.StateEncryption, StateKey: new(string),
			Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := m.RoomNamed("Room"); !ok || r.ID != roomID || r.Creator != BotMXID {
		t.Errorf("RoomNamed = %+v, %v", r, ok)
	}
	if enc := m.State(roomID, event.StateEncryption, ""); enc == nil || enc.Parsed.(*event.EncryptionEventContent).Algorithm != id.AlgorithmMegolmV1 {
		t.Errorf("encryption state %+v", enc)
	}
	if len(m.StateEvents()) != 0 {
		t.Errorf("creation state listed as sent: %+v", m.StateEvents())
	}

	pl, _ := m.GetPowerLevels(ctx, roomID)
	pl.SetUserLevel("@admin:test", 100)
	if m.PowerLevels(roomID).GetUserLevel("@admin:test") != 0 {
		t.Error("changing the power levels read back changed the room's")
	}
	if _, err = bot.SendState(ctx, roomID, event.StatePowerLevels, "", &event.Content{Parsed: pl}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := m.PowerLevels(roomID); got.GetUserLevel("@admin:test") != 100 || got.GetUserLevel(BotMXID) != 9001 {
		t.Errorf("power levels after sending %+v", got.Users)
	}

	// Membership: creator and initial members join; the ghost is invited,
	// then joins; a member event makes someone leave.
	_ = bot.EnsureInvited(ctx, roomID, ghost.GetMXID())
	if got := m.Members(roomID)[ghost.GetMXID()]; got != event.MembershipInvite {
		t.Errorf("ghost membership after invite: %s", got)
	}
	_ = ghost.EnsureJoined(ctx, roomID)
	_ = bot.EnsureInvited(ctx, roomID, ghost.GetMXID())
	leave := &event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipLeave}}
	if _, err = bot.SendState(ctx, roomID, event.StateMember, "@alice:test", leave, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, want := m.JoinedMembers(roomID), []id.UserID{BotMXID, ghost.GetMXID()}; !slices.Equal(got, want) {
		t.Errorf("joined members %v, want %v", got, want)
	}
	members, _ := m.GetMembers(ctx, roomID)
	if members["@alice:test"].Membership != event.MembershipLeave || members[ghost.GetMXID()].Membership != event.MembershipJoin {
		t.Errorf("GetMembers = %+v", members)
	}
}

// TestTimeline: messages keep the timestamp they were sent with; edits,
// reactions and redactions are told apart; a status asking for a notice
// makes the bot post one.
func TestTimeline(t *testing.T) {
	ctx := context.Background()
	m := New()
	ghost := m.GhostIntent("42")
	const roomID id.RoomID = "!room:test"
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	orig, _ := ghost.SendMessage(ctx, roomID, event.EventMessage, &event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "hi"}}, &bridgev2.MatrixSendExtra{Timestamp: ts})
	edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* hi!", NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "hi!"}}
	edit.SetEdit(orig.EventID)
	_, _ = ghost.SendMessage(ctx, roomID, event.EventMessage, &event.Content{Parsed: edit}, nil)
	_, _ = ghost.SendMessage(ctx, roomID, event.EventReaction, &event.Content{Parsed: &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: orig.EventID, Key: "👍"}}}, nil)
	_, _ = ghost.SendMessage(ctx, roomID, event.EventRedaction, &event.Content{Parsed: &event.RedactionEventContent{Redacts: orig.EventID}}, nil)

	msgs := m.MessagesFrom(ghost.GetMXID())
	if len(msgs) != 2 || !msgs[0].TS.Equal(ts) || msgs[0].Replaces() != "" || msgs[1].Replaces() != orig.EventID {
		t.Fatalf("messages %+v", msgs)
	}
	if r := m.Reactions(); len(r) != 1 || r[0].Target != orig.EventID || r[0].Key != "👍" {
		t.Errorf("reactions %+v", r)
	}
	if r := m.Redactions(); len(r) != 1 || r[0].Redacts != orig.EventID {
		t.Errorf("redactions %+v", r)
	}
	if evt, err := ghost.GetEvent(ctx, roomID, orig.EventID); err != nil || evt.Content.AsMessage().Body != "hi" {
		t.Errorf("GetEvent = %+v, %v", evt, err)
	}

	m.SendMessageStatus(ctx, &bridgev2.MessageStatus{Status: event.MessageStatusFail, ErrorReason: event.MessageStatusUnsupported, SendNotice: true, Message: "nope"},
		&bridgev2.MessageStatusEventInfo{RoomID: roomID, SourceEventID: "$src", EventType: event.EventMessage, MessageType: event.MsgText})
	if n, ok := m.MessageContaining(roomID, "nope"); !ok || n.Sender != BotMXID || n.Content.MsgType != event.MsgNotice {
		t.Errorf("status notice %+v, %v", n, ok)
	}
}

// TestWaitBridgeState: a waiter sees a state recorded while it waits, gives
// up at the timeout, and a reset forgets earlier states.
func TestWaitBridgeState(t *testing.T) {
	m := New()
	go func() {
		time.Sleep(10 * time.Millisecond)
		_ = m.SendBridgeStatus(context.Background(), &status.BridgeState{StateEvent: status.StateConnected})
	}()
	if !m.WaitBridgeState(5*time.Second, status.StateConnected, "") {
		t.Fatal("the bridge state was not seen")
	}
	start := time.Now()
	if m.WaitBridgeState(50*time.Millisecond, status.StateBadCredentials, "") {
		t.Fatal("a bridge state that was never sent was seen")
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("gave up before the timeout")
	}
	m.ResetBridgeStates()
	if m.HasBridgeState(status.StateConnected, "") {
		t.Error("bridge states survived a reset")
	}
}

// TestMediaOnDisk: with a media directory, uploads streamed by the bridge
// and files put by a client are kept as files and read back byte for byte.
func TestMediaOnDisk(t *testing.T) {
	m := New()
	m.SetMediaDir(t.TempDir())
	ctx := context.Background()
	data := bytes.Repeat([]byte("passerelle "), 10_000)
	uri, _, err := m.Intent("@ghost:test").UploadMediaStream(ctx, "!room:test", int64(len(data)), true, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
		_, err := w.Write(data)
		return &bridgev2.FileStreamResult{FileName: "f.txt", MimeType: "text/plain"}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m.Media(uri); !ok || !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(data))
	}
	if _, ok := m.MediaPath(uri); !ok {
		t.Fatal("upload not kept on disk")
	}
	put, err := m.PutMediaFile(bytes.NewReader(data[:777]))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Intent(BotMXID).DownloadMediaToFile(ctx, put, nil, false, func(f *os.File) error {
		got, err := io.ReadAll(f)
		if err == nil && !bytes.Equal(got, data[:777]) {
			err = fmt.Errorf("downloaded %d bytes that differ", len(got))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEncryptedMedia: with encrypted media on, the homeserver holds only
// ciphertext; a download with the event's file info gives the plaintext back,
// in memory and on disk, and a wrong key is refused.
func TestEncryptedMedia(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		m := New()
		m.SetEncryptedMedia(true)
		if onDisk {
			m.SetMediaDir(t.TempDir())
		}
		ctx := context.Background()
		data := bytes.Repeat([]byte("secret "), 5_000)
		uri, file, err := m.Intent("@ghost:test").UploadMediaStream(ctx, "!room:test", int64(len(data)), true, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
			_, err := w.Write(data)
			return &bridgev2.FileStreamResult{}, err
		})
		// As mautrix's intents: an encrypted upload's URI is in the file only.
		if err != nil || file == nil || file.URL == "" || uri != "" {
			t.Fatalf("on disk %v: upload %q %+v %v", onDisk, uri, file, err)
		}
		if stored, _ := m.Media(file.URL); bytes.Equal(stored, data) || len(stored) != len(data) {
			t.Fatalf("on disk %v: the homeserver holds the plaintext", onDisk)
		}
		got, err := m.Intent(BotMXID).DownloadMedia(ctx, "", file)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("on disk %v: decrypted %d bytes, %v", onDisk, len(got), err)
		}
		err = m.Intent(BotMXID).DownloadMediaToFile(ctx, "", file, false, func(f *os.File) error {
			b, err := io.ReadAll(f)
			if err == nil && !bytes.Equal(b, data) {
				err = fmt.Errorf("decrypted file differs")
			}
			return err
		})
		if err != nil {
			t.Fatalf("on disk %v: %v", onDisk, err)
		}
		if !onDisk {
			bad := event.EncryptedFileInfo{URL: file.URL, EncryptedFile: attachment.EncryptedFile{
				Key: file.Key, InitVector: file.InitVector, Version: file.Version,
				Hashes: attachment.EncryptedFileHashes{SHA256: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			}}
			if _, err = m.Intent(BotMXID).DownloadMedia(ctx, "", &bad); err == nil {
				t.Fatal("a wrong hash was accepted")
			}
		}
	}
}
