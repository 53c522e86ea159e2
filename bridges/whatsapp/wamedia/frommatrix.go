package wamedia

import (
	"errors"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
)

// ErrInvalidLocation is returned for an m.location without a valid geo: URI.
var ErrInvalidLocation = errors.New("the location has no valid geo: URI")

// KindOf maps a Matrix media message to its kind and WhatsApp media
// type.
func KindOf(content *event.MessageEventContent) (remote.MediaKind, whatsmeow.MediaType, bool) {
	switch content.MsgType {
	case event.MsgImage:
		return remote.MediaImage, whatsmeow.MediaImage, true
	case event.CapMsgSticker:
		return remote.MediaSticker, whatsmeow.MediaImage, true
	case event.MsgVideo:
		if content.Info != nil && content.Info.MauGIF {
			return remote.MediaGIF, whatsmeow.MediaVideo, true
		}
		return remote.MediaVideo, whatsmeow.MediaVideo, true
	case event.MsgAudio:
		if content.MSC3245Voice != nil {
			return remote.MediaVoice, whatsmeow.MediaAudio, true
		}
		return remote.MediaAudio, whatsmeow.MediaAudio, true
	case event.MsgFile:
		return remote.MediaFile, whatsmeow.MediaDocument, true
	}
	return "", "", false
}

// FileMessage is the WhatsApp message of an uploaded file.
func FileMessage(kind remote.MediaKind, up whatsmeow.UploadResponse, mimeType, name, caption string, ctxInfo *waE2E.ContextInfo, info *event.FileInfo, waveform []byte) *waE2E.Message {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return proto.String(s)
	}
	u32 := func(n int) *uint32 {
		if n <= 0 {
			return nil
		}
		return proto.Uint32(uint32(n))
	}
	seconds := u32((info.Duration + 999) / 1000)
	switch kind {
	case remote.MediaSticker:
		if mimeType == "image/webp" {
			return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
				URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
				FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: &mimeType,
				Width: u32(info.Width), Height: u32(info.Height), IsAnimated: proto.Bool(info.IsAnimated),
			}}
		}
		// WhatsApp stickers are WebP; anything else goes as an image.
		fallthrough
	case remote.MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: &mimeType,
			Caption: str(caption), ContextInfo: ctxInfo, Width: u32(info.Width), Height: u32(info.Height),
		}}
	case remote.MediaVideo, remote.MediaGIF:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: &mimeType,
			Caption: str(caption), ContextInfo: ctxInfo, Width: u32(info.Width), Height: u32(info.Height), Seconds: seconds,
			GifPlayback: proto.Bool(kind == remote.MediaGIF),
		}}
	case remote.MediaAudio, remote.MediaVoice:
		am := &waE2E.AudioMessage{
			URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: &mimeType, Seconds: seconds,
		}
		if kind == remote.MediaVoice {
			am.PTT = proto.Bool(true)
			am.Waveform = waveform
			if strings.HasPrefix(mimeType, "audio/ogg") {
				am.Mimetype = proto.String("audio/ogg; codecs=opus")
			}
		}
		// Audio has no caption on WhatsApp: HandleMatrixMessage sends the
		// text as a message of its own.
		return &waE2E.Message{AudioMessage: am}
	default:
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256,
			FileSHA256: up.FileSHA256, FileLength: &up.FileLength, Mimetype: &mimeType,
			FileName: &name, Title: &name, Caption: str(caption), ContextInfo: ctxInfo,
		}}
	}
}

// LocationMessage converts an m.location.
func LocationMessage(content *event.MessageEventContent) (*waE2E.Message, error) {
	lat, long, err := media.ParseGeoURI(content.GeoURI)
	if err != nil {
		return nil, ErrInvalidLocation
	}
	loc := &waE2E.LocationMessage{DegreesLatitude: &lat, DegreesLongitude: &long}
	if body := strings.TrimSpace(content.Body); body != "" && !strings.HasPrefix(body, "geo:") {
		loc.Name = proto.String(body)
	}
	return &waE2E.Message{LocationMessage: loc}, nil
}
