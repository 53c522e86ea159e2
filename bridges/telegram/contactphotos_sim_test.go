package telegram

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// ghostAvatar is a ghost's Matrix avatar and its bytes.
func ghostAvatar(mx *fakematrix.Matrix, ghost id.UserID) (id.ContentURIString, []byte) {
	uri := mx.Profile(ghost).AvatarURL
	if uri == "" {
		return "", nil
	}
	data, _ := mx.Media(uri)
	return uri, data
}

// TestContactPictures: a contact's Telegram profile photo is their ghost's
// avatar from the ghost's creation; the same photo seen again (in a
// group's member list) is not downloaded again; a new photo replaces the
// avatar, and a removed photo removes it.
func TestContactPictures(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	var downloads atomic.Int32
	s.SetBeforeAnswer(func(account int64, method string) {
		if method == "upload.getFile" {
			downloads.Add(1)
		}
	})
	t.Cleanup(func() { s.SetBeforeAnswer(nil) })

	first := testJPEG(t, 64, 64, 10)
	if _, err := s.SetProfilePhoto(gs.bob.ID, first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendMessage(gs.bob.ID, gs.alice.ID, "hello, it's bob", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello, it's bob" }); !ok {
		t.Fatal("never bridged")
	}
	bobMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))
	var uri id.ContentURIString
	if !mx.Eventually(20*time.Second, func() bool {
		var data []byte
		uri, data = ghostAvatar(mx, bobMXID)
		return bytes.Equal(data, first)
	}) {
		t.Fatal("bob's ghost never got his Telegram photo as avatar")
	}
	// Dave has no photo: his ghost has no avatar.
	if _, err := s.SendMessage(gs.dave.ID, gs.alice.ID, "hello, it's dave", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello, it's dave" }); !ok {
		t.Fatal("never bridged")
	}
	if u, _ := ghostAvatar(mx, mx.FormatGhostMXID(tgid.MakeUserID(gs.dave.ID))); u != "" {
		t.Fatalf("dave's ghost has avatar %s without a Telegram photo", u)
	}

	// The same photo in a group's member list: not downloaded again.
	before := downloads.Load()
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Club", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "club news", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "club news" }); !ok {
		t.Fatal("never bridged")
	}
	gs.portal(t, ch.ID)
	if n := downloads.Load(); n != before {
		t.Fatalf("an unchanged photo was downloaded again (%d downloads)", n-before)
	}
	if u, _ := ghostAvatar(mx, bobMXID); u != uri {
		t.Fatalf("bob's avatar changed to %s without a new photo", u)
	}

	// A new photo replaces the avatar.
	second := testJPEG(t, 64, 64, 200)
	if _, err := s.SetProfilePhoto(gs.bob.ID, second); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		_, data := ghostAvatar(mx, bobMXID)
		return bytes.Equal(data, second)
	}) {
		t.Fatal("bob's new Telegram photo never became his ghost's avatar")
	}

	// A removed photo removes it.
	if _, err := s.SetProfilePhoto(gs.bob.ID, nil); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		u, _ := ghostAvatar(mx, bobMXID)
		return u == ""
	}) {
		t.Fatal("bob's removed Telegram photo is still his ghost's avatar")
	}
}

// TestPhotoChangesDuringABurst: Bob changes his profile photo four times
// while his messages are being bridged (bridgev2 reads his ghost for each
// of them): every message arrives, in order, and his ghost ends with his
// last photo. The ghost is only written as the profile gate's writer, so
// the race detector finds nothing (a change applied from the update loop
// while a message is handled was a data race on the ghost: 2 runs of 3
// failed so). His last photo wins although the messages' older copies of
// him reach the connector after the change (it asks Telegram for him as he
// is now; with the update's copy, his ghost kept an older photo).
func TestPhotoChangesDuringABurst(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	if _, err := s.SendMessage(gs.bob.ID, gs.alice.ID, "first", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "first" }); !ok {
		t.Fatal("never bridged")
	}
	const n = 40
	var last []byte
	var want []string
	for i := range n {
		if i%10 == 5 {
			last = testJPEG(t, 64, 64, uint8(50+i))
			if _, err := s.SetProfilePhoto(gs.bob.ID, last); err != nil {
				t.Fatal(err)
			}
		}
		body := fmt.Sprintf("burst %d", i)
		want = append(want, body)
		if _, err := s.SendMessage(gs.bob.ID, gs.alice.ID, body, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if !mx.Eventually(30*time.Second, func() bool {
		got = got[:0]
		for _, m := range mx.Messages() {
			if strings.HasPrefix(m.Content.Body, "burst ") {
				got = append(got, m.Content.Body)
			}
		}
		return len(got) >= n
	}) || !slices.Equal(got, want) {
		t.Fatalf("bridged %q, want %q", got, want)
	}
	bobMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))
	if !mx.Eventually(20*time.Second, func() bool {
		_, data := ghostAvatar(mx, bobMXID)
		return bytes.Equal(data, last)
	}) {
		pid, _, _ := s.ProfilePhoto(gs.bob.ID)
		cl := gs.aliceUL.Client.(*Client)
		u, _ := cl.users.get(gs.bob.ID)
		g, _ := gs.tb.br.GetExistingGhostByID(context.Background(), tgid.MakeUserID(gs.bob.ID))
		t.Fatalf("bob's ghost does not have his last photo (%d): the login's cache has %d, the ghost %s (set %v)", pid, userPhotoID(u), g.AvatarID, g.AvatarSet)
	}
}
