package tgsim_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/gotd/td/telegram/downloader"
	"github.com/gotd/td/telegram/uploader"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func squareJPEG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			img.Set(x, y, color.RGBA{R: shade, G: uint8(x), B: uint8(y), A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestProfilePhotos: a profile photo set through the world API shows in
// the user objects (userProfilePhoto) and users.getFullUser, downloads by
// peer and photo ID (another photo ID is LOCATION_INVALID), and one the
// account uploads itself (photos.uploadProfilePhoto) replaces it.
func TestProfilePhotos(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := testContext(t)
	alice := createAccount(t, s, tgsim.AccountSpec{Phone: "15550201", FirstName: "Alice"})
	bob := createAccount(t, s, tgsim.AccountSpec{Phone: "15550202", FirstName: "Bob"})
	first := squareJPEG(t, 10)
	photoID, err := s.SetProfilePhoto(bob.ID, first)
	if err != nil || photoID == 0 {
		t.Fatalf("SetProfilePhoto = %d, %v", photoID, err)
	}
	ca := signedIn(t, s, alice)
	api := ca.api()
	inBob := &tg.InputUser{UserID: bob.ID, AccessHash: bob.AccessHash}
	users, err := api.UsersGetUsers(ctx, []tg.InputUserClass{inBob})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := users[0].(*tg.User).Photo.(*tg.UserProfilePhoto); !ok || p.PhotoID != photoID {
		t.Fatalf("bob's photo in his user object = %+v, want ID %d", users[0].(*tg.User).Photo, photoID)
	}
	full, err := api.UsersGetFullUser(ctx, inBob)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := full.FullUser.ProfilePhoto.(*tg.Photo); !ok || p.ID != photoID {
		t.Fatalf("getFullUser profile_photo = %+v", full.FullUser.ProfilePhoto)
	}
	download := func(id int64) ([]byte, error) {
		var b bytes.Buffer
		_, err := downloader.NewDownloader().Download(api, &tg.InputPeerPhotoFileLocation{
			Big: true, Peer: &tg.InputPeerUser{UserID: bob.ID, AccessHash: bob.AccessHash}, PhotoID: id,
		}).Stream(ctx, &b)
		return b.Bytes(), err
	}
	if data, err := download(photoID); err != nil || !bytes.Equal(data, first) {
		t.Fatalf("download of bob's photo = %d bytes, %v", len(data), err)
	}
	if _, err := download(photoID + 1); !tgerr.Is(err, "LOCATION_INVALID") {
		t.Fatalf("download of another photo ID: %v, want LOCATION_INVALID", err)
	}

	cb := signedIn(t, s, bob)
	second := squareJPEG(t, 200)
	file, err := uploader.NewUploader(cb.api()).FromBytes(ctx, "me.jpg", second)
	if err != nil {
		t.Fatal(err)
	}
	req := &tg.PhotosUploadProfilePhotoRequest{}
	req.SetFile(file)
	res, err := cb.api().PhotosUploadProfilePhoto(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	newID := res.Photo.GetID()
	if id, data, ok := s.ProfilePhoto(bob.ID); !ok || id != newID || id == photoID || !bytes.Equal(data, second) {
		t.Fatalf("bob's photo after his upload = %d (%d bytes), want %d", id, len(data), newID)
	}
	if data, err := download(newID); err != nil || !bytes.Equal(data, second) {
		t.Fatalf("download of bob's new photo = %d bytes, %v", len(data), err)
	}
	if _, err := s.SetProfilePhoto(bob.ID, nil); err != nil {
		t.Fatal(err)
	}
	users, err = api.UsersGetUsers(ctx, []tg.InputUserClass{inBob})
	if err != nil {
		t.Fatal(err)
	}
	if p := users[0].(*tg.User).Photo; p != nil {
		if _, empty := p.(*tg.UserProfilePhotoEmpty); !empty {
			t.Fatalf("bob's removed photo still shows: %+v", p)
		}
	}
}
