package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// fileLike returns n random bytes behind a file format's magic number, so
// that sniffing agrees with the declared type.
func fileLike(t *testing.T, magic string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	copy(b, magic)
	return b
}

// TestMediaEndToEnd: in encrypted portals on Dendrite, with matrix-js-sdk as
// the staff member's client. A photo from a WhatsApp contact and a PDF from a
// Telegram contact are downloaded and decrypted by the client and are
// byte-equal to what was sent, and the homeserver holds only ciphertext; an
// image sent from the client reaches the WhatsApp contact and a file reaches
// the Telegram contact, byte-equal, with their captions and names.
func TestMediaEndToEnd(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const staffPhone, alicePhone = "+33600000051", "+33600000052"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", alicePhone: "Alice Outside"})
	tgStaff, tgContact := telegramWorld(t, tg, "+15550051", "")

	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam"}})
	sam := s.User("sam")
	ctx := s.Ctx()
	mgmt, _ := s.BotRoom(sam)
	s.LinkWhatsAppQR(sam, mgmt, wa, staffPhone)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550051")

	// checkDownload downloads a message's file as the client does and
	// compares it with what the contact sent; the homeserver's copy must be
	// ciphertext.
	checkDownload := func(what string, evt *Event, want []byte) {
		t.Helper()
		if _, encrypted := evt.Content["file"]; !encrypted {
			t.Errorf("%s: content has no EncryptedFile (url %v): the homeserver holds plaintext", what, evt.Content["url"])
		}
		plain, onServer, err := sam.DownloadFile(ctx, evt.Content)
		if err != nil {
			t.Fatalf("%s: download: %v", what, err)
		}
		if !bytes.Equal(plain, want) {
			t.Errorf("%s: the client got %d bytes, not the %d the contact sent", what, len(plain), len(want))
		}
		if bytes.Equal(onServer, want) || bytes.Contains(onServer, want[:64]) {
			t.Errorf("%s: the homeserver holds the plaintext", what)
		}
		t.Logf("%s: %d bytes decrypted by the client, byte-equal; the homeserver holds %d bytes of ciphertext", what, len(plain), len(onServer))
	}

	// WhatsApp contact → Matrix: a photo with a caption.
	photo := fileLike(t, "\xff\xd8\xff\xe0\x00\x10JFIF\x00", 200_000)
	if _, _, err := wa.SendMedia(ctx, alicePhone, staffPhone, wasim.MediaSpec{Kind: wasim.KindImage, Data: photo, MIME: "image/jpeg", Width: 640, Height: 480, Caption: "the harbour at dawn"}); err != nil {
		t.Fatal(err)
	}
	waDM, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	img, err := sam.WaitMessage(ctx, waDM.RoomID, MessageFilter{MsgType: "m.image", Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !img.Encrypted || img.Body() != "the harbour at dawn" {
		t.Errorf("WhatsApp photo: encrypted %v, body %q, want the caption as the body", img.Encrypted, img.Body())
	}
	checkDownload("WhatsApp photo", img, photo)

	// Telegram contact → Matrix: a PDF document.
	pdf := fileLike(t, "%PDF-1.7\n", 300_000)
	if _, err = tg.SendMedia(tgContact.ID, tgStaff.ID, tgsim.MediaSpec{Kind: "document", Data: pdf, Name: "minutes.pdf", MIME: "application/pdf"}); err != nil {
		t.Fatal(err)
	}
	tgDM, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt, waDM.RoomID}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sam.WaitMessage(ctx, tgDM.RoomID, MessageFilter{MsgType: "m.file", Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if name := firstString(doc.Content, "filename", "body"); name != "minutes.pdf" {
		t.Errorf("Telegram PDF: file name %q, want minutes.pdf", name)
	}
	checkDownload("Telegram PDF", doc, pdf)

	// Matrix → WhatsApp: an image with a caption.
	png := fileLike(t, "\x89PNG\r\n\x1a\n", 150_000)
	if _, _, err = sam.SendFile(ctx, waDM.RoomID, File{MsgType: "m.image", Body: "site plan", Filename: "plan.png", MimeType: "image/png", Data: png,
		Info: map[string]any{"w": 800, "h": 600}}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	got, err := wa.WaitMessage(waitCtx, staffPhone, alicePhone, func(m wasim.Message) bool { return m.Message.GetImageMessage() != nil })
	if err != nil {
		t.Fatalf("the image never reached the WhatsApp contact: %v", err)
	}
	if c := got.Message.GetImageMessage().GetCaption(); c != "site plan" {
		t.Errorf("WhatsApp image caption %q, want %q", c, "site plan")
	}
	if data, err := wa.Download(got.Message); err != nil || !bytes.Equal(data, png) {
		t.Errorf("the WhatsApp contact got %d bytes (%v), not the %d sent", len(data), err, len(png))
	}

	// Matrix → Telegram: a file with its name.
	report := fileLike(t, "%PDF-1.4\n", 250_000)
	if _, _, err = sam.SendFile(ctx, tgDM.RoomID, File{MsgType: "m.file", Body: "report.pdf", MimeType: "application/pdf", Data: report}); err != nil {
		t.Fatal(err)
	}
	sent, err := tg.WaitMessage(waitCtx, tgStaff.ID, tgContact.ID, func(m tgsim.Message) bool { return m.Media != nil })
	if err != nil {
		t.Fatalf("the file never reached the Telegram contact: %v", err)
	}
	if data, err := tg.MediaBytes(sent); err != nil || !bytes.Equal(data, report) {
		t.Errorf("the Telegram contact got %d bytes (%v), not the %d sent", len(data), err, len(report))
	}
}

// firstString returns the first non-empty string among content's keys.
func firstString(content map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, _ := content[k].(string); s != "" {
			return s
		}
	}
	return ""
}
