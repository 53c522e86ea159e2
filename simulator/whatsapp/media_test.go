package wasim_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// TestMediaFromContact: every kind of file a contact sends reaches a real
// whatsmeow client, which downloads it from the HTTPS media server and
// decrypts it (MAC, hashes, length checked by whatsmeow) to the exact bytes.
func TestMediaFromContact(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550003333", "Alice")
	bob := mustAccount(t, srv, "15550004444", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)
	waveform := make([]byte, 64)
	for i := range waveform {
		waveform[i] = byte(i * 100 / 63)
	}
	specs := []wasim.MediaSpec{
		{Kind: wasim.KindImage, Data: random.Bytes(70_001), MIME: "image/jpeg", Caption: "a cat", Width: 640, Height: 480},
		{Kind: wasim.KindVideo, Data: random.Bytes(150_000), MIME: "video/mp4", Seconds: 3, Width: 320, Height: 240},
		{Kind: wasim.KindGIF, Data: random.Bytes(20_000), MIME: "video/mp4"},
		{Kind: wasim.KindVoice, Data: random.Bytes(9_999), MIME: "audio/ogg; codecs=opus", Seconds: 2, Waveform: waveform},
		{Kind: wasim.KindAudio, Data: random.Bytes(30_000), MIME: "audio/mpeg", Seconds: 5},
		{Kind: wasim.KindDocument, Data: random.Bytes(65_536), MIME: "application/pdf", FileName: "report.pdf", Caption: "the report"},
		{Kind: wasim.KindSticker, Data: random.Bytes(5_000), MIME: "image/webp", Width: 512, Height: 512},
	}
	for _, spec := range specs {
		id, _, err := srv.SendMedia(ctx, bob.Phone, alice.Phone, spec)
		if err != nil {
			t.Fatalf("%s: %v", spec.Kind, err)
		}
		evt := waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == id })
		got, err := c.Download(ctx, fileOf(evt.Message))
		if err != nil {
			t.Fatalf("%s: download: %v", spec.Kind, err)
		}
		if !bytes.Equal(got, spec.Data) {
			t.Fatalf("%s: downloaded %d bytes that differ from the %d sent", spec.Kind, len(got), len(spec.Data))
		}
		switch spec.Kind {
		case wasim.KindVoice:
			if am := evt.Message.GetAudioMessage(); !am.GetPTT() || !bytes.Equal(am.GetWaveform(), waveform) || am.GetSeconds() != 2 {
				t.Fatalf("voice note metadata %+v", am)
			}
		case wasim.KindGIF:
			if !evt.Message.GetVideoMessage().GetGifPlayback() {
				t.Fatal("GIF not flagged for GIF playback")
			}
		case wasim.KindDocument:
			if dm := evt.Message.GetDocumentMessage(); dm.GetFileName() != "report.pdf" || dm.GetCaption() != "the report" {
				t.Fatalf("document metadata %+v", dm)
			}
		}
		waitDelivered(t, srv, id)
	}
}

// TestMediaToContact: a file a real client uploads (whatsmeow's encryption,
// through media_conn auth) is read back by the simulator, which checks the
// MAC and hashes itself; a tampered key is refused.
func TestMediaToContact(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550003333", "Alice")
	bob := mustAccount(t, srv, "15550004444", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)
	data := random.Bytes(300_007)
	up, err := c.UploadReader(ctx, bytes.NewReader(data), nil, whatsmeow.MediaDocument)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	doc := &waE2E.DocumentMessage{
		URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileSHA256: up.FileSHA256,
		FileEncSHA256: up.FileEncSHA256, FileLength: &up.FileLength, Mimetype: proto.String("application/pdf"),
		FileName: proto.String("minutes.pdf"),
	}
	resp, err := c.SendMessage(ctx, bob.JID, &waE2E.Message{DocumentMessage: doc})
	if err != nil {
		t.Fatal(err)
	}
	m, err := srv.WaitMessage(ctx, alice.Phone, bob.Phone, func(m wasim.Message) bool { return m.ID == resp.ID })
	if err != nil {
		t.Fatal(err)
	}
	got, err := srv.Download(m.Message)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("contact read %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	if m.Message.GetDocumentMessage().GetFileName() != "minutes.pdf" {
		t.Fatalf("file name %q", m.Message.GetDocumentMessage().GetFileName())
	}
	bad := proto.Clone(m.Message).(*waE2E.Message)
	bad.DocumentMessage.MediaKey = random.Bytes(32)
	if _, err = srv.Download(bad); !errors.Is(err, wasim.ErrMediaMAC) {
		t.Fatalf("wrong media key: %v, want a MAC error", err)
	}
}

// TestExpiredMediaRetry: expired media answers 410; the client's media
// retry receipt makes the sender's phone upload it again, and the new
// direct path in the mediaretry notification downloads the same bytes.
func TestExpiredMediaRetry(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550003333", "Alice")
	bob := mustAccount(t, srv, "15550004444", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)
	data := random.Bytes(12_345)
	msg, up, err := srv.MediaMessage(wasim.MediaSpec{Kind: wasim.KindImage, Data: data, MIME: "image/png"})
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.ExpireMedia(up.DirectPath); err != nil {
		t.Fatal(err)
	}
	id, err := srv.SendMessage(ctx, bob.Phone, alice.Phone, msg)
	if err != nil {
		t.Fatal(err)
	}
	evt := waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == id })
	img := evt.Message.GetImageMessage()
	if _, err = c.Download(ctx, img); !errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410) {
		t.Fatalf("expired download: %v, want 410", err)
	}
	if err = c.SendMediaRetryReceipt(ctx, &evt.Info, img.GetMediaKey()); err != nil {
		t.Fatal(err)
	}
	retry := waitEvent[*events.MediaRetry](t, c, func(e *events.MediaRetry) bool { return e.MessageID == id })
	notif, err := whatsmeow.DecryptMediaRetryNotification(retry, img.GetMediaKey())
	if err != nil || notif.GetDirectPath() == "" || notif.GetDirectPath() == up.DirectPath {
		t.Fatalf("notification %+v, %v", notif, err)
	}
	img.DirectPath, img.URL = proto.String(notif.GetDirectPath()), nil
	got, err := c.Download(ctx, img)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("re-uploaded media: %d bytes, %v", len(got), err)
	}
	if srv.MediaRetries() != 1 {
		t.Fatalf("%d media retries answered", srv.MediaRetries())
	}
	waitDelivered(t, srv, id)
}

// fileOf is the downloadable part of a media message.
func fileOf(msg *waE2E.Message) whatsmeow.DownloadableMessage {
	for _, dl := range []whatsmeow.DownloadableMessage{msg.GetImageMessage(), msg.GetVideoMessage(), msg.GetAudioMessage(),
		msg.GetDocumentMessage(), msg.GetStickerMessage()} {
		if !reflect.ValueOf(dl).IsNil() {
			return dl
		}
	}
	return nil
}

// TestPollVote: a contact's poll and vote reach a real whatsmeow client,
// which decrypts the vote with the poll's message secret.
func TestPollVote(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550003333", "Alice")
	bob := mustAccount(t, srv, "15550004444", "Bob")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)
	pollID, err := srv.SendPoll(ctx, bob.Phone, alice.Phone, "Lunch?", []string{"Pizza", "Sushi"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == pollID })
	voteID, err := srv.SendPollVote(ctx, bob.Phone, alice.Phone, pollID, []string{"Sushi"})
	if err != nil {
		t.Fatal(err)
	}
	vote := waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == voteID })
	dec, err := c.DecryptPollVote(ctx, vote)
	if err != nil {
		t.Fatalf("decrypt vote: %v", err)
	}
	if want := whatsmeow.HashPollOptions([]string{"Sushi"}); len(dec.GetSelectedOptions()) != 1 || !bytes.Equal(dec.GetSelectedOptions()[0], want[0]) {
		t.Fatalf("vote %x", dec.GetSelectedOptions())
	}
	waitDelivered(t, srv, voteID)
}

// TestMediaInClearOnMainAddress: a process that routes every host to the
// simulator's address (ClientHTTP, the connector's test_server config) gets
// media there too, without the test CA.
func TestMediaInClearOnMainAddress(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550003333", "Alice")
	bob := mustAccount(t, srv, "15550004444", "Bob")
	c := pair(t, srv, alice.Phone)
	c.SetMediaHTTPClient(wasim.ClientHTTP(srv.Addr()))
	ctx := ctxT(t)
	data := random.Bytes(50_000)
	id, _, err := srv.SendMedia(ctx, bob.Phone, alice.Phone, wasim.MediaSpec{Kind: wasim.KindDocument, Data: data, MIME: "application/pdf", FileName: "a.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	evt := waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == id })
	if got, err := c.Download(ctx, evt.Message.GetDocumentMessage()); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download in clear: %d bytes, %v", len(got), err)
	}
	up, err := c.Upload(ctx, data, whatsmeow.MediaImage)
	if err != nil || up.DirectPath == "" {
		t.Fatalf("upload in clear: %+v %v", up, err)
	}
	waitDelivered(t, srv, id)
}
