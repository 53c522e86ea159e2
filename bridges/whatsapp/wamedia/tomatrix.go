// Package wamedia converts WhatsApp's media messages to Matrix content and
// back: pure functions, no I/O, table-tested. The connector downloads,
// uploads and asks the media check around them.
package wamedia

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
)

// File is the file of a WhatsApp media message, as the connector reads it.
type File struct {
	Kind    remote.MediaKind
	File    whatsmeow.DownloadableMessage
	MIME    string
	Size    int64 // -1 when the message does not say
	Name    string
	Caption string
	// Mentioned are the JIDs the caption mentions.
	Mentioned []string
	Width     int
	Height    int
	Seconds   int
	Waveform  []byte
	Thumbnail []byte // inline JPEG
	Animated  bool   // animated sticker
}

// Unwrap returns the message inside the wrappers that only change how
// it is shown (disappearing, view once, document with caption).
func Unwrap(msg *waE2E.Message) *waE2E.Message {
	for i := 0; msg != nil && i < 4; i++ {
		switch {
		case msg.GetEphemeralMessage().GetMessage() != nil:
			msg = msg.GetEphemeralMessage().GetMessage()
		case msg.GetViewOnceMessage().GetMessage() != nil:
			msg = msg.GetViewOnceMessage().GetMessage()
		case msg.GetViewOnceMessageV2().GetMessage() != nil:
			msg = msg.GetViewOnceMessageV2().GetMessage()
		case msg.GetDocumentWithCaptionMessage().GetMessage() != nil:
			msg = msg.GetDocumentWithCaptionMessage().GetMessage()
		default:
			return msg
		}
	}
	return msg
}

func sizeOf(n uint64, ok bool) int64 {
	if !ok {
		return -1
	}
	return int64(n)
}

// FileOf returns the file of a media message, or nil.
func FileOf(msg *waE2E.Message) *File {
	msg = Unwrap(msg)
	switch {
	case msg.GetImageMessage() != nil:
		m := msg.GetImageMessage()
		return &File{Kind: remote.MediaImage, File: m, MIME: m.GetMimetype(), Size: sizeOf(m.GetFileLength(), m.FileLength != nil),
			Caption: m.GetCaption(), Mentioned: m.GetContextInfo().GetMentionedJID(),
			Width: int(m.GetWidth()), Height: int(m.GetHeight()), Thumbnail: m.GetJPEGThumbnail()}
	case msg.GetVideoMessage() != nil:
		m := msg.GetVideoMessage()
		kind := remote.MediaVideo
		if m.GetGifPlayback() {
			kind = remote.MediaGIF
		}
		return &File{Kind: kind, File: m, MIME: m.GetMimetype(), Size: sizeOf(m.GetFileLength(), m.FileLength != nil),
			Caption: m.GetCaption(), Mentioned: m.GetContextInfo().GetMentionedJID(),
			Width: int(m.GetWidth()), Height: int(m.GetHeight()), Seconds: int(m.GetSeconds()), Thumbnail: m.GetJPEGThumbnail()}
	case msg.GetAudioMessage() != nil:
		m := msg.GetAudioMessage()
		kind := remote.MediaAudio
		if m.GetPTT() {
			kind = remote.MediaVoice
		}
		return &File{Kind: kind, File: m, MIME: m.GetMimetype(), Size: sizeOf(m.GetFileLength(), m.FileLength != nil),
			Seconds: int(m.GetSeconds()), Waveform: m.GetWaveform()}
	case msg.GetDocumentMessage() != nil:
		m := msg.GetDocumentMessage()
		name := m.GetFileName()
		if name == "" {
			name = m.GetTitle()
		}
		return &File{Kind: remote.MediaFile, File: m, MIME: m.GetMimetype(), Size: sizeOf(m.GetFileLength(), m.FileLength != nil),
			Name: name, Caption: m.GetCaption(), Mentioned: m.GetContextInfo().GetMentionedJID(), Thumbnail: m.GetJPEGThumbnail()}
	case msg.GetStickerMessage() != nil:
		m := msg.GetStickerMessage()
		return &File{Kind: remote.MediaSticker, File: m, MIME: m.GetMimetype(), Size: sizeOf(m.GetFileLength(), m.FileLength != nil),
			Width: int(m.GetWidth()), Height: int(m.GetHeight()), Animated: m.GetIsAnimated()}
	}
	return nil
}

// FallbackName is the file name of a kind whose messages carry none.
func FallbackName(kind remote.MediaKind) string { return fallbackNames[kind] }

// fallbackNames are the file names of kinds whose messages carry none.
var fallbackNames = map[remote.MediaKind]string{
	remote.MediaImage: "image", remote.MediaVideo: "video", remote.MediaGIF: "animation", remote.MediaAudio: "audio",
	remote.MediaVoice: "voice message", remote.MediaFile: "file", remote.MediaSticker: "sticker",
}

// FileName is the name the file gets on Matrix.
func (f *File) FileName() string {
	return media.SafeFileName(f.Name, fallbackNames[f.Kind], f.MIMEType())
}

// MIMEType is the declared type without parameters, or a guess from the
// name or the kind.
func (f *File) MIMEType() string {
	if m := media.BaseMIME(f.MIME); m != "" {
		return m
	}
	if m := media.MIMEForName(f.Name); m != "" {
		return m
	}
	switch f.Kind {
	case remote.MediaImage:
		return "image/jpeg"
	case remote.MediaSticker:
		return "image/webp"
	case remote.MediaVideo, remote.MediaGIF:
		return "video/mp4"
	case remote.MediaVoice:
		return "audio/ogg"
	}
	return media.MIMEOctetStream
}

// Content is the Matrix content of a file, without its URL:
// type, info, voice and GIF flags, file name (the caption is set by the
// caller with media.SetFileAndCaption).
func (f *File) Content(size int64) (event.Type, *event.MessageEventContent) {
	info := &event.FileInfo{MimeType: f.MIMEType(), Width: f.Width, Height: f.Height, Size: int(size)}
	content := &event.MessageEventContent{Info: info}
	evtType := event.EventMessage
	switch f.Kind {
	case remote.MediaImage:
		content.MsgType = event.MsgImage
	case remote.MediaSticker:
		evtType = event.EventSticker
		info.IsAnimated = f.Animated
	case remote.MediaVideo:
		content.MsgType = event.MsgVideo
		info.Duration = f.Seconds * 1000
	case remote.MediaGIF:
		// A looping, silent, autoplaying animation: the flags clients read
		// for GIFs bridged as videos.
		content.MsgType = event.MsgVideo
		info.Duration = f.Seconds * 1000
		info.MauGIF = true
		info.Extra = map[string]any{"fi.mau.autoplay": true, "fi.mau.loop": true, "fi.mau.hide_controls": true, "fi.mau.no_audio": true}
	case remote.MediaAudio, remote.MediaVoice:
		content.MsgType = event.MsgAudio
		info.Duration = f.Seconds * 1000
		content.MSC1767Audio = &event.MSC1767Audio{Duration: f.Seconds * 1000}
		if f.Kind == remote.MediaVoice {
			content.MSC3245Voice = &event.MSC3245Voice{}
			content.MSC1767Audio.Waveform = media.WaveformFromWhatsApp(f.Waveform)
		}
	default:
		content.MsgType = event.MsgFile
	}
	return evtType, content
}

// LocationContent converts a location or live location (its position when
// it was sent).
func LocationContent(msg *waE2E.Message) *event.MessageEventContent {
	msg = Unwrap(msg)
	var loc media.Location
	switch {
	case msg.GetLocationMessage() != nil:
		m := msg.GetLocationMessage()
		loc = media.Location{Latitude: m.GetDegreesLatitude(), Longitude: m.GetDegreesLongitude(), Title: m.GetName(), Address: m.GetAddress()}
	case msg.GetLiveLocationMessage() != nil:
		m := msg.GetLiveLocationMessage()
		loc = media.Location{Latitude: m.GetDegreesLatitude(), Longitude: m.GetDegreesLongitude(), Title: m.GetCaption(), Live: true}
	default:
		return nil
	}
	return &event.MessageEventContent{MsgType: event.MsgLocation, Body: loc.Body(), GeoURI: loc.GeoURI()}
}

// ContactCard is a contact card message: its vCard and what people read.
type ContactCard struct {
	VCard []byte
	Body  string
	Name  string
}

// ContactCards reads a contact or contacts-array message.
func ContactCards(msg *waE2E.Message) []ContactCard {
	msg = Unwrap(msg)
	var raw []*waE2E.ContactMessage
	if m := msg.GetContactMessage(); m != nil {
		raw = append(raw, m)
	}
	raw = append(raw, msg.GetContactsArrayMessage().GetContacts()...)
	const maxCards = 20
	if len(raw) > maxCards {
		raw = raw[:maxCards]
	}
	out := make([]ContactCard, 0, len(raw))
	for _, m := range raw {
		vcard := []byte(m.GetVcard())
		c, err := media.ParseVCard(vcard)
		if err != nil || c.Name == "" {
			c.Name = m.GetDisplayName()
		}
		if len(vcard) == 0 || err != nil {
			vcard = c.VCard()
		}
		out = append(out, ContactCard{VCard: vcard, Body: c.Body(), Name: c.FileName()})
	}
	return out
}

// PollStart converts a poll (any version) to an MSC3381 poll start: the
// content's extra fields and its plain-text fallback.
func PollStart(msg *waE2E.Message) (extra map[string]any, fallback string, ok bool) {
	msg = Unwrap(msg)
	poll := msg.GetPollCreationMessage()
	for _, p := range []*waE2E.PollCreationMessage{msg.GetPollCreationMessageV2(), msg.GetPollCreationMessageV3(), msg.GetPollCreationMessageV5()} {
		if poll == nil {
			poll = p
		}
	}
	if poll == nil {
		return nil, "", false
	}
	const maxOptions = 32
	opts := poll.GetOptions()
	if len(opts) > maxOptions {
		opts = opts[:maxOptions]
	}
	answers := make([]map[string]any, len(opts))
	var b strings.Builder
	fmt.Fprintf(&b, "Poll: %s", poll.GetName())
	for i, o := range opts {
		answers[i] = map[string]any{"id": PollOptionID(o.GetOptionName()), "org.matrix.msc1767.text": o.GetOptionName()}
		fmt.Fprintf(&b, "\n%d. %s", i+1, o.GetOptionName())
	}
	maxSel := int(poll.GetSelectableOptionsCount())
	if maxSel <= 0 || maxSel > len(opts) {
		maxSel = len(opts)
	}
	extra = map[string]any{
		"org.matrix.msc3381.poll.start": map[string]any{
			"kind":           "org.matrix.msc3381.poll.disclosed",
			"max_selections": maxSel,
			"question":       map[string]any{"org.matrix.msc1767.text": poll.GetName()},
			"answers":        answers,
		},
		"org.matrix.msc1767.text": b.String(),
	}
	return extra, b.String(), true
}

// PollOptionID is the Matrix answer ID of a WhatsApp poll option: WhatsApp
// identifies an option by the SHA-256 of its name, which votes carry.
func PollOptionID(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

// SetDirectPath points a media message at a new direct path.
func SetDirectPath(msg *waE2E.Message, path string) {
	inner := Unwrap(msg)
	switch {
	case inner.GetImageMessage() != nil:
		inner.ImageMessage.DirectPath, inner.ImageMessage.URL = &path, nil
	case inner.GetVideoMessage() != nil:
		inner.VideoMessage.DirectPath, inner.VideoMessage.URL = &path, nil
	case inner.GetAudioMessage() != nil:
		inner.AudioMessage.DirectPath, inner.AudioMessage.URL = &path, nil
	case inner.GetDocumentMessage() != nil:
		inner.DocumentMessage.DirectPath, inner.DocumentMessage.URL = &path, nil
	case inner.GetStickerMessage() != nil:
		inner.StickerMessage.DirectPath, inner.StickerMessage.URL = &path, nil
	}
}
