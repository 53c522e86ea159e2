package tgmedia

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
)

// InboundFile is a photo or document of a Telegram message.
type InboundFile struct {
	Kind     remote.MediaKind
	Loc      tg.InputFileLocationClass
	Size     int64
	MIME     string // as declared ("" for photos: sniffed)
	Name     string
	MsgType  event.MessageType
	EvtType  event.Type
	Info     event.FileInfo
	Voice    bool
	Waveform []int
	// Note is the body when there is no caption (a sticker's emoji, or
	// what a sticker sent as a file is).
	Note string
	// Thumb is a smaller image Telegram keeps of the file, if any.
	Thumb *Thumb
}

// Thumb is a thumbnail size of a photo or document.
type Thumb struct {
	Loc           tg.InputFileLocationClass
	Width, Height int
	Size          int
}

// MaxThumbSize bounds the thumbnails bridged (they are held in memory).
const MaxThumbSize = 1 << 20

// smallestThumb picks the smallest downloadable size other than skip;
// stripped and vector previews are not files.
func smallestThumb(sizes []tg.PhotoSizeClass, skip string) *tg.PhotoSize {
	var small *tg.PhotoSize
	for _, sz := range sizes {
		if v, ok := sz.(*tg.PhotoSize); ok && v.Type != skip && v.Size > 0 && v.Size <= MaxThumbSize && (small == nil || v.W*v.H < small.W*small.H) {
			small = v
		}
	}
	return small
}

// PhotoFile picks the largest size of a photo.
func PhotoFile(p *tg.Photo) (*InboundFile, bool) {
	var best *tg.PhotoSize
	for _, sz := range p.Sizes {
		switch v := sz.(type) {
		case *tg.PhotoSize:
			if best == nil || v.W*v.H > best.W*best.H {
				best = v
			}
		case *tg.PhotoSizeProgressive:
			if len(v.Sizes) > 0 && (best == nil || v.W*v.H > best.W*best.H) {
				best = &tg.PhotoSize{Type: v.Type, W: v.W, H: v.H, Size: v.Sizes[len(v.Sizes)-1]}
			}
		}
	}
	if best == nil {
		return nil, false
	}
	f := &InboundFile{
		Kind:    remote.MediaImage,
		Loc:     &tg.InputPhotoFileLocation{ID: p.ID, AccessHash: p.AccessHash, FileReference: p.FileReference, ThumbSize: best.Type},
		Size:    int64(best.Size),
		Name:    "photo" + strconv.FormatInt(p.ID, 36) + ".jpg",
		MsgType: event.MsgImage,
		EvtType: event.EventMessage,
	}
	f.Info.Width, f.Info.Height = best.W, best.H
	if th := smallestThumb(p.Sizes, best.Type); th != nil {
		f.Thumb = &Thumb{Loc: &tg.InputPhotoFileLocation{ID: p.ID, AccessHash: p.AccessHash, FileReference: p.FileReference, ThumbSize: th.Type},
			Width: th.W, Height: th.H, Size: th.Size}
	}
	return f, true
}

// DocumentFile maps a document's attributes to a Matrix message type.
func DocumentFile(d *tg.Document) *InboundFile {
	f := &InboundFile{
		Kind:    remote.MediaFile,
		Loc:     &tg.InputDocumentFileLocation{ID: d.ID, AccessHash: d.AccessHash, FileReference: d.FileReference},
		Size:    d.Size,
		MIME:    media.BaseMIME(d.MimeType),
		MsgType: event.MsgFile,
		EvtType: event.EventMessage,
	}
	var (
		audio    *tg.DocumentAttributeAudio
		video    *tg.DocumentAttributeVideo
		sticker  *tg.DocumentAttributeSticker
		animated bool
	)
	for _, a := range d.Attributes {
		switch v := a.(type) {
		case *tg.DocumentAttributeFilename:
			f.Name = v.FileName
		case *tg.DocumentAttributeAudio:
			audio = v
		case *tg.DocumentAttributeVideo:
			video = v
			f.Info.Width, f.Info.Height = v.W, v.H
			f.Info.Duration = int(v.Duration * 1000)
		case *tg.DocumentAttributeImageSize:
			f.Info.Width, f.Info.Height = v.W, v.H
		case *tg.DocumentAttributeSticker:
			sticker = v
		case *tg.DocumentAttributeAnimated:
			animated = true
		}
	}
	base := "file" + strconv.FormatInt(d.ID, 36)
	switch {
	case sticker != nil && f.MIME == "application/x-tgsticker":
		// Animated (Lottie) stickers have no Matrix form: the file goes as
		// it is, saying what it is.
		f.Kind = remote.MediaSticker
		f.Name = media.SafeFileName(f.Name, "sticker.tgs", f.MIME)
		f.Note = strings.TrimSpace("Animated sticker " + sticker.Alt)
	case sticker != nil && video != nil:
		// Video (WebM) stickers: a looping, silent video.
		f.Kind = remote.MediaSticker
		f.MsgType = event.MsgVideo
		f.Info.MauGIF, f.Info.IsAnimated = true, true
		f.Name = media.SafeFileName(f.Name, "sticker.webm", f.MIME)
		f.Note = strings.TrimSpace("Sticker " + sticker.Alt)
	case sticker != nil:
		f.Kind = remote.MediaSticker
		f.EvtType = event.EventSticker
		f.MsgType = ""
		f.Name = media.SafeFileName(f.Name, "sticker.webp", f.MIME)
		f.Note = sticker.Alt
	case animated && video != nil:
		f.Kind = remote.MediaGIF
		f.MsgType = event.MsgVideo
		f.Info.MauGIF, f.Info.IsAnimated = true, true
	case video != nil:
		f.Kind = remote.MediaVideo
		f.MsgType = event.MsgVideo
	case audio != nil && audio.Voice:
		f.Kind = remote.MediaVoice
		f.MsgType = event.MsgAudio
		f.Voice = true
		f.Info.Duration = audio.Duration * 1000
		f.Waveform = media.WaveformFromTelegram(audio.Waveform)
		if f.Name == "" {
			f.Name = "voice" + strconv.FormatInt(d.ID, 36) + media.ExtensionFor(f.MIME)
		}
	case audio != nil:
		f.Kind = remote.MediaAudio
		f.MsgType = event.MsgAudio
		f.Info.Duration = audio.Duration * 1000
		if f.Name == "" && (audio.Performer != "" || audio.Title != "") {
			f.Name = strings.Trim(audio.Performer+" - "+audio.Title, " -") + media.ExtensionFor(f.MIME)
		}
	}
	f.Name = media.SafeFileName(f.Name, base, f.MIME)
	if th := smallestThumb(d.Thumbs, ""); th != nil && f.EvtType != event.EventSticker {
		f.Thumb = &Thumb{Loc: &tg.InputDocumentFileLocation{ID: d.ID, AccessHash: d.AccessHash, FileReference: d.FileReference, ThumbSize: th.Type},
			Width: th.W, Height: th.H, Size: th.Size}
	}
	return f
}

// FileOf returns the file of a message's photo or document media.
func FileOf(m tg.MessageMediaClass) (*InboundFile, bool) {
	switch v := m.(type) {
	case *tg.MessageMediaPhoto:
		if p, ok := v.Photo.(*tg.Photo); ok {
			return PhotoFile(p)
		}
	case *tg.MessageMediaDocument:
		if d, ok := v.Document.(*tg.Document); ok {
			return DocumentFile(d), true
		}
	}
	return nil, false
}

// optionPrefix marks a poll option ID that is the base64url of binary
// Telegram option bytes.
const optionPrefix = "b64:"

// OptionID is the MSC3381 answer ID of a Telegram poll option: the bytes
// themselves when they are a short plain token (as Telegram apps make them,
// and as Matrix clients make IDs), else "b64:" and their base64url.
func OptionID(opt []byte) string {
	if plainToken(string(opt)) {
		return string(opt)
	}
	return optionPrefix + base64.RawURLEncoding.EncodeToString(opt)
}

// OptionBytes is the Telegram option of an answer ID (OptionID reversed); ok
// is false for an ID that cannot be an option.
func OptionBytes(id string) (opt []byte, ok bool) {
	if rest, isB64 := strings.CutPrefix(id, optionPrefix); isB64 {
		opt, err := base64.RawURLEncoding.DecodeString(rest)
		return opt, err == nil && len(opt) > 0 && len(opt) <= maxOptionBytes
	}
	return []byte(id), plainToken(id)
}

// maxOptionBytes is Telegram's limit for a poll option's bytes.
const maxOptionBytes = 100

func plainToken(s string) bool {
	if s == "" || len(s) > maxOptionBytes {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '~') {
			return false
		}
	}
	return true
}

// PollStart converts a Telegram poll to an MSC3381 poll start and its
// plain-text fallback; answer IDs are OptionID of the options.
func PollStart(m *tg.MessageMediaPoll) (event.PollStart, string) {
	poll := event.PollStart{
		Kind:          "org.matrix.msc3381.poll.disclosed",
		MaxSelections: 1,
		Question:      event.MSC1767Message{Text: m.Poll.Question.Text},
	}
	if m.Poll.Quiz || !m.Poll.PublicVoters {
		poll.Kind = "org.matrix.msc3381.poll.undisclosed"
	}
	if m.Poll.MultipleChoice {
		poll.MaxSelections = len(m.Poll.Answers)
	}
	fallback := []string{m.Poll.Question.Text}
	for i, a := range m.Poll.Answers {
		ans, ok := a.(*tg.PollAnswer)
		if !ok {
			continue
		}
		poll.Answers = append(poll.Answers, event.PollOption{ID: OptionID(ans.Option), MSC1767Message: event.MSC1767Message{Text: ans.Text.Text}})
		fallback = append(fallback, fmt.Sprintf("%d. %s", i+1, ans.Text.Text))
	}
	return poll, strings.Join(fallback, "\n")
}

// Contact converts a shared contact: the card's name and numbers from
// Telegram's fields (the vCard fills what they lack), and the vCard bytes
// (Telegram's own, or one written from the fields).
func Contact(m *tg.MessageMediaContact) (media.Contact, []byte) {
	contact := media.Contact{Name: strings.TrimSpace(m.FirstName + " " + m.LastName)}
	if m.PhoneNumber != "" {
		contact.Phones = []media.Phone{{Number: m.PhoneNumber}}
	}
	card := []byte(m.Vcard)
	if parsed, err := media.ParseVCard(card); err == nil && m.Vcard != "" {
		if contact.Name == "" {
			contact.Name = parsed.Name
		}
		if len(contact.Phones) == 0 {
			contact.Phones = parsed.Phones
		}
	} else {
		card = contact.VCard()
	}
	return contact, card
}

// ContactVote reads the other person's choice in a private chat's poll from
// results as the account sees them: the counts minus the account's own
// chosen options. ok is false when the results cannot tell (more than one
// other voter, or no counts); an empty choice means the contact has not
// voted or took the vote back. Answer IDs are OptionID of the options.
func ContactVote(res tg.PollResults) (answers []string, ok bool) {
	if _, has := res.GetResults(); !has {
		return nil, false
	}
	own := 0
	for _, r := range res.Results {
		if r.Chosen {
			own = 1
			break
		}
	}
	if res.TotalVoters-own > 1 {
		return nil, false
	}
	answers = []string{}
	for _, r := range res.Results {
		n := r.Voters
		if r.Chosen {
			n--
		}
		if n > 0 {
			answers = append(answers, OptionID(r.Option))
		}
	}
	return answers, true
}
