package telegram

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func testJPEG(t testing.TB, w, h int, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: shade, G: uint8(x), B: uint8(y), A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// roomAvatar is the room's current avatar and its bytes.
func roomAvatar(mx *fakematrix.Matrix, roomID id.RoomID) (id.ContentURIString, []byte) {
	c := mx.State(roomID, event.StateRoomAvatar, "")
	if c == nil {
		return "", nil
	}
	_ = c.ParseRaw(event.StateRoomAvatar)
	av, ok := c.Parsed.(*event.RoomAvatarEventContent)
	if !ok || av.URL == "" {
		return "", nil
	}
	data, _ := mx.Media(av.URL)
	return av.URL, data
}

func refusalNotices(mx *fakematrix.Matrix, roomID id.RoomID) int {
	return len(mx.MessagesWhere(func(m fakematrix.Message) bool {
		return m.RoomID == roomID && m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, "refused")
	}))
}

// TestGroupPhotos: a supergroup's photo is the portal's avatar from its
// creation; a new photo or its removal on Telegram follows; an unchanged
// photo is not uploaded again on a resync; a room avatar set in Matrix by
// an admin becomes the group's photo (a square JPEG), without coming back
// as a second avatar; one set by a staff member without the right is
// refused, put back, and explained by a notice.
func TestGroupPhotos(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{
		Title: "Photos", Creator: gs.bob.ID,
		Members: []int64{gs.carol.ID, gs.dave.ID}, Admins: []int64{gs.alice.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	first := testJPEG(t, 64, 64, 10)
	if _, err = s.SetChannelPhoto(ch.ID, gs.bob.ID, first); err != nil {
		t.Fatal(err)
	}
	hello, err := s.ChannelPost(ch.ID, gs.bob.ID, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" }); !ok {
		t.Fatal("the group's message never reached Matrix")
	}
	portal := gs.portal(t, ch.ID)
	if !mx.Eventually(20*time.Second, func() bool {
		_, data := roomAvatar(mx, portal.MXID)
		return bytes.Equal(data, first)
	}) {
		t.Fatal("the group's photo never became the room avatar")
	}
	gs.waitHandled(t, ch.ID, hello.Pts)

	// A resync (the description changed) with the same photo uploads
	// nothing again.
	uploads := len(mx.MediaURIs())
	if err := s.SetChannelAbout(ch.ID, "With a photo"); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		c := mx.State(portal.MXID, event.StateTopic, "")
		return c != nil && c.AsTopic().Topic == "With a photo"
	}) {
		t.Fatal("the resync never happened")
	}
	if n := len(mx.MediaURIs()); n != uploads {
		t.Errorf("%d uploads after a resync with the same photo, want none", n-uploads)
	}

	// A new photo on Telegram, then its removal.
	second := testJPEG(t, 80, 80, 200)
	if _, err := s.SetChannelPhoto(ch.ID, gs.bob.ID, second); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		_, data := roomAvatar(mx, portal.MXID)
		return bytes.Equal(data, second)
	}) {
		t.Fatal("the new photo never reached the room avatar")
	}
	if _, err := s.SetChannelPhoto(ch.ID, gs.bob.ID, nil); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		uri, _ := roomAvatar(mx, portal.MXID)
		return uri == ""
	}) {
		t.Fatal("the photo's removal never reached the room avatar")
	}

	// Carol (no admin right) sets an avatar: refused, put back, notice.
	ctx := context.Background()
	pic := testPNG(t, 300, 200)
	uri, _, err := mx.Intent(staffCarol).UploadMedia(ctx, "", pic, "pic.png", "image/png")
	if err != nil {
		t.Fatal(err)
	}
	notices := refusalNotices(mx, portal.MXID)
	gs.inject(portal, &event.Event{Type: event.StateRoomAvatar, ID: "$av1", Sender: staffCarol, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.RoomAvatarEventContent{URL: uri}}})
	if !mx.Eventually(20*time.Second, func() bool {
		got, _ := roomAvatar(mx, portal.MXID)
		return got == "" && refusalNotices(mx, portal.MXID) > notices
	}) {
		got, _ := roomAvatar(mx, portal.MXID)
		t.Errorf("carol's refused avatar was not put back with a notice: avatar %q, statuses %+v", got, mx.StatusesOf("$av1"))
	}
	if _, _, ok := s.ChannelPhoto(ch.ID); ok {
		t.Error("carol's refused avatar reached Telegram")
	}

	// Alice (an admin) sets it: a square JPEG on Telegram, and the echo
	// does not replace her avatar.
	gs.inject(portal, &event.Event{Type: event.StateRoomAvatar, ID: "$av2", Sender: testUser, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.RoomAvatarEventContent{URL: uri}}})
	var photoID int64
	if !mx.Eventually(20*time.Second, func() bool {
		var ok bool
		photoID, _, ok = s.ChannelPhoto(ch.ID)
		return ok
	}) {
		t.Fatalf("alice's avatar never reached Telegram: %+v", mx.StatusesOf("$av2"))
	}
	_, data, _ := s.ChannelPhoto(ch.ID)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || format != "jpeg" || cfg.Width != 200 || cfg.Height != 200 {
		t.Errorf("the Telegram photo is %s %dx%d (%v), want a 200x200 JPEG", format, cfg.Width, cfg.Height, err)
	}
	if photoID == 0 {
		t.Error("no photo ID")
	}
	// Both logins handled the photo's service message: the room avatar is
	// still alice's.
	if last := s.ChannelMessages(ch.ID); len(last) > 0 {
		gs.waitHandled(t, ch.ID, last[len(last)-1].Pts)
	}
	if got, _ := roomAvatar(mx, portal.MXID); got != uri {
		t.Errorf("room avatar %q after alice's change, want hers %q", got, uri)
	}
	if refusalNotices(mx, portal.MXID) != notices+1 {
		t.Errorf("%d refusal notices, want 1", refusalNotices(mx, portal.MXID)-notices)
	}
}

// TestBasicGroupPhoto: a basic group's photo is its portal's avatar from
// the portal's creation, and a room avatar set in Matrix becomes its photo
// (every member of a basic group may change it).
func TestBasicGroupPhoto(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	first := testJPEG(t, 64, 64, 30)
	if _, err := s.SetChatPhoto(chat.ID, first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "hello team"); err != nil {
		t.Fatal(err)
	}
	msg, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello team" })
	if !ok {
		t.Fatal("the group's message never reached Matrix")
	}
	if !mx.Eventually(20*time.Second, func() bool {
		_, data := roomAvatar(mx, msg.RoomID)
		return bytes.Equal(data, first)
	}) {
		t.Fatal("the basic group's photo never became the room avatar")
	}
	pic := testJPEG(t, 100, 100, 90)
	uri, _, err := mx.Intent(testUser).UploadMedia(context.Background(), "", pic, "pic.jpg", "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	mx.Inject(context.Background(), &event.Event{Type: event.StateRoomAvatar, ID: "$bav1", RoomID: msg.RoomID, Sender: testUser,
		StateKey: ptr.Ptr(""), Content: event.Content{Parsed: &event.RoomAvatarEventContent{URL: uri}}})
	if !mx.Eventually(20*time.Second, func() bool {
		_, data, ok := s.ChatPhoto(chat.ID)
		return ok && bytes.Equal(data, pic) // a square JPEG goes as it is
	}) {
		t.Fatalf("the Matrix avatar never became the basic group's photo: %+v", mx.StatusesOf("$bav1"))
	}
}

// TestBasicGroupPhotoChanges: after its portal exists, a basic group's
// photo changed on Telegram (the service message each staff member's
// account gets) becomes the room avatar, downloaded once; a removed photo
// removes the avatar; a photo set from Matrix is not downloaded back when
// Telegram echoes it.
func TestBasicGroupPhotoChanges(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	chat, err := s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID, gs.dave.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPost(chat.ID, gs.bob.ID, "hello team"); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello team" }); !ok {
		t.Fatal("the group's message never reached Matrix")
	}
	portal := gs.basicPortal(t, chat.ID)
	if u, _ := roomAvatar(mx, portal.MXID); u != "" {
		t.Fatalf("the room has avatar %s without a group photo", u)
	}
	var downloads atomic.Int32
	s.SetBeforeAnswer(func(account int64, method string) {
		if method == "upload.getFile" {
			downloads.Add(1)
		}
	})
	t.Cleanup(func() { s.SetBeforeAnswer(nil) })

	first := testJPEG(t, 64, 64, 40)
	if _, err := s.EditChatPhoto(chat.ID, gs.bob.ID, first); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		_, data := roomAvatar(mx, portal.MXID)
		return bytes.Equal(data, first)
	}) {
		t.Fatal("the basic group's new photo never became the room avatar")
	}
	gs.settle(t) // both logins handled their copy of the service message
	if n := downloads.Load(); n != 1 {
		t.Fatalf("the new photo was downloaded %d times, want once", n)
	}

	if _, err := s.EditChatPhoto(chat.ID, gs.dave.ID, nil); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		u, _ := roomAvatar(mx, portal.MXID)
		return u == ""
	}) {
		t.Fatal("the basic group's removed photo is still the room avatar")
	}

	// Set from Matrix: Telegram's echo is not downloaded back.
	pic := testJPEG(t, 100, 100, 120)
	uri, _, err := mx.Intent(testUser).UploadMedia(context.Background(), "", pic, "pic.jpg", "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	gs.inject(portal, &event.Event{Type: event.StateRoomAvatar, ID: "$bav2", Sender: testUser,
		StateKey: ptr.Ptr(""), Content: event.Content{Parsed: &event.RoomAvatarEventContent{URL: uri}}})
	if !mx.Eventually(20*time.Second, func() bool {
		_, data, ok := s.ChatPhoto(chat.ID)
		return ok && bytes.Equal(data, pic)
	}) {
		t.Fatalf("the Matrix avatar never became the basic group's photo: %+v", mx.StatusesOf("$bav2"))
	}
	gs.settle(t)
	if n := downloads.Load(); n != 1 {
		t.Fatalf("the photo set from Matrix was downloaded back (%d downloads)", n-1)
	}
	if u, _ := roomAvatar(mx, portal.MXID); u != uri {
		t.Fatalf("room avatar %s after the echo, want %s", u, uri)
	}
}
