package fakematrix

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

// TestMediaEncryptedAtTheEdge: an upload into an encrypted room is held as
// ciphertext and comes back only with its key; one into a plain room is
// held as sent. Both ways (bytes and streams), and with files on disk.
func TestMediaEncryptedAtTheEdge(t *testing.T) {
	ctx := context.Background()
	for _, onDisk := range []bool{false, true} {
		m := New()
		if onDisk {
			m.SetMediaDir(t.TempDir())
		}
		bot := m.BotIntent()
		plainRoom, _ := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "plain"})
		m.SetEncryptByDefault(true)
		encRoom, _ := bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "enc"})
		if m.State(encRoom, event.StateEncryption, "") == nil || m.State(plainRoom, event.StateEncryption, "") != nil {
			t.Fatal("encryption by default not applied to new rooms only")
		}
		data := bytes.Repeat([]byte("secret payload "), 1000)

		uri, file, err := bot.UploadMedia(ctx, encRoom, data, "a.txt", "text/plain")
		if err != nil || file == nil || file.URL != uri {
			t.Fatalf("encrypted upload: %v %+v", err, file)
		}
		stored, _ := m.Media(uri)
		if !m.MediaEncrypted(uri) || bytes.Equal(stored, data) || len(stored) != len(data) {
			t.Error("the homeserver holds plaintext")
		}
		if got, err := bot.DownloadMedia(ctx, uri, file); err != nil || !bytes.Equal(got, data) {
			t.Errorf("decrypting download: %v", err)
		}
		if _, err := bot.DownloadMedia(ctx, uri, nil); err == nil {
			t.Error("an encrypted upload downloaded without its key")
		}

		suri, sfile, err := bot.UploadMediaStream(ctx, encRoom, int64(len(data)), true, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
			_, err := w.Write(data)
			return &bridgev2.FileStreamResult{}, err
		})
		if err != nil || sfile == nil {
			t.Fatalf("encrypted stream upload: %v", err)
		}
		var streamed []byte
		err = bot.DownloadMediaToFile(ctx, suri, sfile, false, func(f *os.File) error {
			streamed, err = io.ReadAll(f)
			return err
		})
		if err != nil || !bytes.Equal(streamed, data) {
			t.Errorf("streamed round trip: %v", err)
		}
		tampered := publicFileInfo(sfile, suri) // as a client reads it from the event
		tampered.Hashes.SHA256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		if err := bot.DownloadMediaToFile(ctx, suri, tampered, false, func(*os.File) error { return nil }); err == nil {
			t.Error("a download with a wrong hash succeeded")
		}

		puri, pfile, err := bot.UploadMedia(ctx, plainRoom, data, "a.txt", "text/plain")
		if err != nil || pfile != nil || m.MediaEncrypted(puri) {
			t.Fatalf("plain upload: %v %+v", err, pfile)
		}
		if got, _ := m.Media(puri); !bytes.Equal(got, data) {
			t.Error("plain upload changed")
		}
	}
}
