package wamedia

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
)

func TestFileOfMessage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		msg      *waE2E.Message
		kind     remote.MediaKind
		fileName string
		mime     string
		size     int64
	}{
		{"image in a disappearing message", &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
			ImageMessage: &waE2E.ImageMessage{Mimetype: proto.String("image/png"), FileLength: proto.Uint64(10)}}}},
			remote.MediaImage, "image.png", "image/png", 10},
		{"image without a type", &waE2E.Message{ImageMessage: &waE2E.ImageMessage{}}, remote.MediaImage, "image.jpg", "image/jpeg", -1},
		{"GIF", &waE2E.Message{VideoMessage: &waE2E.VideoMessage{GifPlayback: proto.Bool(true), Mimetype: proto.String("video/mp4")}},
			remote.MediaGIF, "animation.mp4", "video/mp4", -1},
		{"voice note", &waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true), Mimetype: proto.String("audio/ogg; codecs=opus")}},
			remote.MediaVoice, "voice message.ogg", "audio/ogg", -1},
		{"document with caption", &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
			DocumentMessage: &waE2E.DocumentMessage{FileName: proto.String("../../etc/passwd"), Mimetype: proto.String("text/plain"), Caption: proto.String("hi")}}}},
			remote.MediaFile, "passwd", "text/plain", -1},
		{"document named by its title", &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Title: proto.String("Budget.xlsx")}},
			remote.MediaFile, "Budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", -1},
		{"sticker", &waE2E.Message{StickerMessage: &waE2E.StickerMessage{}}, remote.MediaSticker, "sticker.webp", "image/webp", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := FileOf(tc.msg)
			if f == nil {
				t.Fatal("no file found")
			}
			if f.Kind != tc.kind || f.FileName() != tc.fileName || f.MIMEType() != tc.mime || f.Size != tc.size {
				t.Fatalf("got %s %q %q %d, want %s %q %q %d", f.Kind, f.FileName(), f.MIMEType(), f.Size, tc.kind, tc.fileName, tc.mime, tc.size)
			}
		})
	}
	if FileOf(&waE2E.Message{Conversation: proto.String("text")}) != nil {
		t.Fatal("a text has no file")
	}
}

func TestMatrixFileContent(t *testing.T) {
	wf := make([]byte, 64)
	wf[0], wf[63] = 100, 50
	voice := &File{Kind: remote.MediaVoice, MIME: "audio/ogg; codecs=opus", Seconds: 3, Waveform: wf}
	typ, c := voice.Content(1234)
	if typ != event.EventMessage || c.MsgType != event.MsgAudio || c.MSC3245Voice == nil || c.MSC1767Audio.Duration != 3000 ||
		c.Info.Size != 1234 || c.Info.MimeType != "audio/ogg" || len(c.MSC1767Audio.Waveform) == 0 || c.MSC1767Audio.Waveform[0] != 1024 {
		t.Fatalf("voice %+v %+v", c, c.MSC1767Audio)
	}
	_, c = (&File{Kind: remote.MediaGIF, Seconds: 2}).Content(1)
	if c.MsgType != event.MsgVideo || !c.Info.MauGIF || c.Info.Extra["fi.mau.loop"] != true || c.Info.Extra["fi.mau.no_audio"] != true {
		t.Fatalf("GIF %+v", c.Info)
	}
	typ, c = (&File{Kind: remote.MediaSticker, Animated: true, Width: 512}).Content(1)
	if typ != event.EventSticker || !c.Info.IsAnimated || c.Info.Width != 512 {
		t.Fatalf("sticker %s %+v", typ, c.Info)
	}
}

func TestLocationContactPollConversions(t *testing.T) {
	live := LocationContent(&waE2E.Message{LiveLocationMessage: &waE2E.LiveLocationMessage{
		DegreesLatitude: proto.Float64(1.5), DegreesLongitude: proto.Float64(-2.25), Caption: proto.String("on my way")}})
	if live.MsgType != event.MsgLocation || live.GeoURI != "geo:1.5,-2.25" || !strings.Contains(live.Body, "on my way") {
		t.Fatalf("live location %+v", live)
	}
	if LocationContent(&waE2E.Message{Conversation: proto.String("x")}) != nil {
		t.Fatal("a text is no location")
	}

	cards := ContactCards(&waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String("No Card")}})
	if len(cards) != 1 || !strings.Contains(string(cards[0].VCard), "FN:No Card") || !strings.Contains(cards[0].Body, "No Card") {
		t.Fatalf("card without vCard %+v", cards)
	}
	many := &waE2E.ContactsArrayMessage{}
	for range 50 {
		many.Contacts = append(many.Contacts, &waE2E.ContactMessage{DisplayName: proto.String("X")})
	}
	if n := len(ContactCards(&waE2E.Message{ContactsArrayMessage: many})); n != 20 {
		t.Fatalf("%d cards bridged, want the cap of 20", n)
	}

	extra, fallback, ok := PollStart(&waE2E.Message{PollCreationMessageV3: &waE2E.PollCreationMessage{
		Name: proto.String("Where?"), SelectableOptionsCount: proto.Uint32(0),
		Options: []*waE2E.PollCreationMessage_Option{{OptionName: proto.String("Here")}, {OptionName: proto.String("There")}},
	}})
	start, _ := extra["org.matrix.msc3381.poll.start"].(map[string]any)
	answers, _ := start["answers"].([]map[string]any)
	h := sha256.Sum256([]byte("There"))
	if !ok || start["max_selections"] != 2 || len(answers) != 2 || answers[1]["id"] != hex.EncodeToString(h[:]) ||
		fallback != "Poll: Where?\n1. Here\n2. There" {
		t.Fatalf("poll %#v %q", extra, fallback)
	}
}

func TestBuildFileMessage(t *testing.T) {
	up := whatsmeow.UploadResponse{URL: "u", DirectPath: "/d", FileLength: 3}
	voice := FileMessage(remote.MediaVoice, up, "audio/ogg", "v.ogg", "", nil, &event.FileInfo{Duration: 1500}, []byte{1, 2})
	if am := voice.GetAudioMessage(); !am.GetPTT() || am.GetMimetype() != "audio/ogg; codecs=opus" || am.GetSeconds() != 2 || len(am.GetWaveform()) != 2 {
		t.Fatalf("voice %+v", am)
	}
	png := FileMessage(remote.MediaSticker, up, "image/png", "s.png", "", nil, &event.FileInfo{}, nil)
	if png.GetImageMessage() == nil {
		t.Fatalf("a PNG sticker goes as an image: %+v", png)
	}
	doc := FileMessage(remote.MediaFile, up, "application/pdf", "a.pdf", "read me", nil, &event.FileInfo{}, nil)
	if dm := doc.GetDocumentMessage(); dm.GetFileName() != "a.pdf" || dm.GetCaption() != "read me" {
		t.Fatalf("document %+v", dm)
	}
	if _, err := LocationMessage(&event.MessageEventContent{MsgType: event.MsgLocation, GeoURI: "geo:999,0"}); !errors.Is(err, ErrInvalidLocation) {
		t.Fatalf("invalid geo URI: %v", err)
	}
}
