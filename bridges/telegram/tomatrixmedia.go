package telegram

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gotd/td/telegram/downloader"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Telegram → Matrix media. Files stream from Telegram's upload.getFile
// into bridgev2's upload stream (a temporary file, encrypted in encrypted
// portals), so a big file never sits in memory.

// inboundFile is a photo or document of a Telegram message.
type inboundFile struct {
	kind     remote.MediaKind
	loc      tg.InputFileLocationClass
	size     int64
	mime     string // as declared ("" for photos: sniffed)
	name     string
	msgType  event.MessageType
	evtType  event.Type
	info     event.FileInfo
	voice    bool
	waveform []int
	// note is added to the body (a sticker sent as a file says so).
	note string
}

// photoFile picks the largest size of a photo.
func photoFile(p *tg.Photo) (*inboundFile, bool) {
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
	f := &inboundFile{
		kind:    remote.MediaImage,
		loc:     &tg.InputPhotoFileLocation{ID: p.ID, AccessHash: p.AccessHash, FileReference: p.FileReference, ThumbSize: best.Type},
		size:    int64(best.Size),
		name:    "photo" + strconv.FormatInt(p.ID, 36) + ".jpg",
		msgType: event.MsgImage,
		evtType: event.EventMessage,
	}
	f.info.Width, f.info.Height = best.W, best.H
	return f, true
}

// documentFile maps a document's attributes to a Matrix message type.
func documentFile(d *tg.Document) *inboundFile {
	f := &inboundFile{
		kind:    remote.MediaFile,
		loc:     &tg.InputDocumentFileLocation{ID: d.ID, AccessHash: d.AccessHash, FileReference: d.FileReference},
		size:    d.Size,
		mime:    media.BaseMIME(d.MimeType),
		msgType: event.MsgFile,
		evtType: event.EventMessage,
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
			f.name = v.FileName
		case *tg.DocumentAttributeAudio:
			audio = v
		case *tg.DocumentAttributeVideo:
			video = v
			f.info.Width, f.info.Height = v.W, v.H
			f.info.Duration = int(v.Duration * 1000)
		case *tg.DocumentAttributeImageSize:
			f.info.Width, f.info.Height = v.W, v.H
		case *tg.DocumentAttributeSticker:
			sticker = v
		case *tg.DocumentAttributeAnimated:
			animated = true
		}
	}
	base := "file" + strconv.FormatInt(d.ID, 36)
	switch {
	case sticker != nil && f.mime == "application/x-tgsticker":
		// Animated (Lottie) stickers have no Matrix form: the file goes as
		// it is, saying what it is.
		f.kind = remote.MediaSticker
		f.name = media.SafeFileName(f.name, "sticker.tgs", f.mime)
		f.note = strings.TrimSpace("Animated sticker " + sticker.Alt)
	case sticker != nil && video != nil:
		// Video (WebM) stickers: a looping, silent video.
		f.kind = remote.MediaSticker
		f.msgType = event.MsgVideo
		f.info.MauGIF, f.info.IsAnimated = true, true
		f.name = media.SafeFileName(f.name, "sticker.webm", f.mime)
		f.note = strings.TrimSpace("Sticker " + sticker.Alt)
	case sticker != nil:
		f.kind = remote.MediaSticker
		f.evtType = event.EventSticker
		f.msgType = ""
		f.name = media.SafeFileName(f.name, "sticker.webp", f.mime)
		f.note = sticker.Alt
	case animated && video != nil:
		f.kind = remote.MediaGIF
		f.msgType = event.MsgVideo
		f.info.MauGIF, f.info.IsAnimated = true, true
	case video != nil:
		f.kind = remote.MediaVideo
		f.msgType = event.MsgVideo
	case audio != nil && audio.Voice:
		f.kind = remote.MediaVoice
		f.msgType = event.MsgAudio
		f.voice = true
		f.info.Duration = audio.Duration * 1000
		f.waveform = media.WaveformFromTelegram(audio.Waveform)
		if f.name == "" {
			f.name = "voice" + strconv.FormatInt(d.ID, 36) + media.ExtensionFor(f.mime)
		}
	case audio != nil:
		f.kind = remote.MediaAudio
		f.msgType = event.MsgAudio
		f.info.Duration = audio.Duration * 1000
		if f.name == "" && (audio.Performer != "" || audio.Title != "") {
			f.name = strings.Trim(audio.Performer+" - "+audio.Title, " -") + media.ExtensionFor(f.mime)
		}
	}
	f.name = media.SafeFileName(f.name, base, f.mime)
	return f
}

// fileOf returns the file of a message's photo or document media.
func fileOf(m tg.MessageMediaClass) (*inboundFile, bool) {
	switch v := m.(type) {
	case *tg.MessageMediaPhoto:
		if p, ok := v.Photo.(*tg.Photo); ok {
			return photoFile(p)
		}
	case *tg.MessageMediaDocument:
		if d, ok := v.Document.(*tg.Document); ok {
			return documentFile(d), true
		}
	}
	return nil, false
}

// convertMediaMessage converts a message with media; text-only messages do
// not come here.
func (c *Client) convertMediaMessage(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *tg.Message, caption *event.MessageEventContent) []*bridgev2.ConvertedMessagePart {
	switch m := msg.Media.(type) {
	case *tg.MessageMediaPhoto, *tg.MessageMediaDocument:
		f, ok := fileOf(m)
		if !ok {
			return c.mediaNotice(caption, "A photo or file that is no longer available was not bridged")
		}
		return c.convertFile(ctx, portal, intent, msg, f, caption)
	case *tg.MessageMediaGeo:
		return c.locationParts(ctx, portal, msg, m.Geo, media.Location{}, caption)
	case *tg.MessageMediaVenue:
		return c.locationParts(ctx, portal, msg, m.Geo, media.Location{Title: m.Title, Address: m.Address}, caption)
	case *tg.MessageMediaGeoLive:
		return c.locationParts(ctx, portal, msg, m.Geo, media.Location{Live: true}, caption)
	case *tg.MessageMediaContact:
		return c.contactParts(ctx, portal, intent, msg, m, caption)
	case *tg.MessageMediaPoll:
		return c.pollParts(ctx, portal, msg, m, caption)
	default:
		name := strings.TrimPrefix(fmt.Sprintf("%T", m), "*tg.MessageMedia")
		return c.mediaNotice(caption, fmt.Sprintf("A %s message was not bridged: this kind of Telegram message is not supported", strings.ToLower(name)))
	}
}

// mediaNotice is a notice in place of media, followed by the message's text.
func (c *Client) mediaNotice(caption *event.MessageEventContent, notice string) []*bridgev2.ConvertedMessagePart {
	parts := []*bridgev2.ConvertedMessagePart{{
		ID:      "notice",
		Type:    event.EventMessage,
		Content: &event.MessageEventContent{MsgType: event.MsgNotice, Body: notice},
	}}
	if caption != nil && caption.Body != "" {
		parts = append(parts, &bridgev2.ConvertedMessagePart{ID: "text", Type: event.EventMessage, Content: caption})
	}
	return parts
}

func (c *Client) inboundMedia(portal *bridgev2.Portal, msg *tg.Message, kind remote.MediaKind, mime string, size int64, name string) remote.Media {
	m := remote.Media{Direction: remote.MediaInbound, Kind: kind, Login: c.login, PortalKey: portal.PortalKey, MIME: mime, Size: size, Name: name}
	if peer, ok := c.messagePeer(msg); ok {
		if sender := c.senderOf(msg, peer); !sender.IsFromMe {
			m.Remote = sender.Sender
		}
	}
	return m
}

// checkInbound asks the media check; a refusal becomes the notice text.
func (c *Client) checkInbound(ctx context.Context, m remote.Media) (notice string, ok bool) {
	err := c.main.CheckMedia(ctx, m)
	if err == nil {
		return "", true
	}
	var refusal *remote.Refusal
	if errors.As(err, &refusal) {
		return media.NotBridgedNotice(m.Name, m.MIME, m.Size, refusal.Reason), false
	}
	zerolog.Ctx(ctx).Err(err).Msg("Media check failed")
	return media.NotBridgedNotice(m.Name, m.MIME, m.Size, "the gateway could not check it"), false
}

// convertFile bridges a photo or document: media check, size limit, then a
// streamed download into the Matrix upload.
func (c *Client) convertFile(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *tg.Message, f *inboundFile, caption *event.MessageEventContent) []*bridgev2.ConvertedMessagePart {
	log := zerolog.Ctx(ctx)
	shownMIME := f.mime
	if shownMIME == "" {
		shownMIME = "image/jpeg"
	}
	if notice, ok := c.checkInbound(ctx, c.inboundMedia(portal, msg, f.kind, shownMIME, f.size, f.name)); !ok {
		return c.mediaNotice(caption, notice)
	}
	limit := c.main.Limits.Inbound()
	if !media.Fits(f.size, limit) {
		return c.mediaNotice(caption, media.NotBridgedNotice(f.name, shownMIME, f.size, media.TooLargeReason(limit)))
	}
	var sniffed string
	uri, file, err := intent.UploadMediaStream(ctx, portal.MXID, f.size, false, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
		cw := &capWriter{w: w, limit: limit}
		if err := c.downloadFile(ctx, msg, f, cw); err != nil {
			return nil, err
		}
		sniffed = media.Sniff(f.mime, f.name, cw.head)
		return &bridgev2.FileStreamResult{FileName: f.name, MimeType: sniffed}, nil
	})
	if err != nil {
		var tooLarge *media.TooLargeError
		reason := "it could not be downloaded from Telegram"
		switch {
		case errors.As(err, &tooLarge):
			reason = media.TooLargeReason(tooLarge.Limit)
		case errors.Is(err, bridgev2.ErrMediaTooLarge):
			reason = "larger than the homeserver's upload limit"
		case tgerr.Is(err, "FILE_REFERENCE_EXPIRED"):
			reason = "Telegram no longer has it (the file reference expired)"
		}
		log.Warn().Err(err).Int64("size", f.size).Msg("Failed to bridge Telegram file")
		return c.mediaNotice(caption, media.NotBridgedNotice(f.name, shownMIME, f.size, reason))
	}
	info := f.info
	info.MimeType = sniffed
	info.Size = int(f.size)
	content := &event.MessageEventContent{MsgType: f.msgType, Info: &info}
	if file != nil {
		file.URL = uri
		content.File = file
	} else {
		content.URL = uri
	}
	var capt media.Caption
	if caption != nil {
		capt = media.Caption{Text: caption.Body}
		if caption.Format == event.FormatHTML {
			capt.HTML = caption.FormattedBody
		}
		content.Mentions = caption.Mentions
	}
	if capt.Text == "" && f.note != "" {
		capt.Text = f.note
	}
	media.SetFileAndCaption(content, f.name, capt)
	if f.voice {
		content.MSC3245Voice = &event.MSC3245Voice{}
		content.MSC1767Audio = &event.MSC1767Audio{Duration: f.info.Duration, Waveform: f.waveform}
	} else if f.msgType == event.MsgAudio {
		content.MSC1767Audio = &event.MSC1767Audio{Duration: f.info.Duration}
	}
	return []*bridgev2.ConvertedMessagePart{{Type: f.evtType, Content: content}}
}

// capWriter counts what goes through, keeps the first bytes for sniffing
// and refuses more than limit (0: no limit).
type capWriter struct {
	w     io.Writer
	limit int64
	n     int64
	head  []byte
}

func (cw *capWriter) Write(p []byte) (int, error) {
	if cw.limit > 0 && cw.n+int64(len(p)) > cw.limit {
		return 0, &media.TooLargeError{Limit: cw.limit, Size: cw.n + int64(len(p))}
	}
	if room := media.SniffLen - len(cw.head); room > 0 {
		cw.head = append(cw.head, p[:min(room, len(p))]...)
	}
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}

// downloadFile streams a file into w. An expired file reference is
// refreshed once by fetching the message again; a download that failed
// part-way is not retried into the same writer.
func (c *Client) downloadFile(ctx context.Context, msg *tg.Message, f *inboundFile, w *capWriter) error {
	api, err := c.waitAPI(ctx)
	if err != nil {
		return err
	}
	_, err = downloader.NewDownloader().Download(api, f.loc).Stream(ctx, w)
	if err == nil || !tgerr.Is(err, "FILE_REFERENCE_EXPIRED") || w.n > 0 {
		return err
	}
	zerolog.Ctx(ctx).Debug().Int("tg_message_id", msg.ID).Msg("File reference expired, fetching the message again")
	fresh, ferr := c.refetchMedia(ctx, api, msg)
	if ferr != nil {
		return fmt.Errorf("%w (refresh failed: %w)", err, ferr)
	}
	nf, ok := fileOf(fresh)
	if !ok {
		return err
	}
	f.loc = nf.loc
	_, err = downloader.NewDownloader().Download(api, f.loc).Stream(ctx, w)
	return err
}

// refetchMedia fetches a private-chat message again, for a fresh file
// reference.
func (c *Client) refetchMedia(ctx context.Context, api *tg.Client, msg *tg.Message) (tg.MessageMediaClass, error) {
	res, err := api.MessagesGetMessages(ctx, []tg.InputMessageClass{&tg.InputMessageID{ID: msg.ID}})
	if err != nil {
		return nil, fmt.Errorf("failed to get message: %w", err)
	}
	modified, ok := res.AsModified()
	if !ok {
		return nil, errors.New("no messages returned")
	}
	for _, m := range modified.GetMessages() {
		if fresh, ok := m.(*tg.Message); ok && fresh.ID == msg.ID && fresh.Media != nil {
			msg.Media = fresh.Media
			return fresh.Media, nil
		}
	}
	return nil, errors.New("message not found")
}

// locationParts bridges a point, venue or live location (its first
// position) as m.location.
func (c *Client) locationParts(ctx context.Context, portal *bridgev2.Portal, msg *tg.Message, geo tg.GeoPointClass, loc media.Location, caption *event.MessageEventContent) []*bridgev2.ConvertedMessagePart {
	p, ok := geo.(*tg.GeoPoint)
	if !ok {
		return c.mediaNotice(caption, "A location without coordinates was not bridged")
	}
	if notice, ok := c.checkInbound(ctx, c.inboundMedia(portal, msg, remote.MediaLocation, "", -1, "")); !ok {
		return c.mediaNotice(caption, notice)
	}
	loc.Latitude, loc.Longitude = p.Lat, p.Long
	content := &event.MessageEventContent{MsgType: event.MsgLocation, Body: loc.Body(), GeoURI: loc.GeoURI()}
	return []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: content}}
}

// contactParts bridges a shared contact as its vCard file with a readable
// body.
func (c *Client) contactParts(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *tg.Message, m *tg.MessageMediaContact, caption *event.MessageEventContent) []*bridgev2.ConvertedMessagePart {
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
	name := contact.FileName()
	if notice, ok := c.checkInbound(ctx, c.inboundMedia(portal, msg, remote.MediaContact, "text/vcard", int64(len(card)), name)); !ok {
		return c.mediaNotice(caption, notice)
	}
	body := contact.Body()
	if m.UserID != 0 {
		body += "\nTelegram: " + string(c.main.Bridge.Matrix.GhostIntent(tgid.MakeUserID(m.UserID)).GetMXID())
	}
	uri, file, err := intent.UploadMedia(ctx, portal.MXID, card, name, "text/vcard")
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to upload contact card")
		return []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: &event.MessageEventContent{MsgType: event.MsgText, Body: body}}}
	}
	content := &event.MessageEventContent{MsgType: event.MsgFile, Info: &event.FileInfo{MimeType: "text/vcard", Size: len(card)}}
	if file != nil {
		file.URL = uri
		content.File = file
	} else {
		content.URL = uri
	}
	media.SetFileAndCaption(content, name, media.Caption{Text: body})
	return []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: content}}
}

// pollParts bridges a poll as an MSC3381 poll start, with a text fallback.
func (c *Client) pollParts(ctx context.Context, portal *bridgev2.Portal, msg *tg.Message, m *tg.MessageMediaPoll, caption *event.MessageEventContent) []*bridgev2.ConvertedMessagePart {
	if notice, ok := c.checkInbound(ctx, c.inboundMedia(portal, msg, remote.MediaPoll, "", -1, "")); !ok {
		return c.mediaNotice(caption, notice)
	}
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
		poll.Answers = append(poll.Answers, event.PollOption{ID: base64.RawURLEncoding.EncodeToString(ans.Option), MSC1767Message: event.MSC1767Message{Text: ans.Text.Text}})
		fallback = append(fallback, fmt.Sprintf("%d. %s", i+1, ans.Text.Text))
	}
	text := strings.Join(fallback, "\n")
	return []*bridgev2.ConvertedMessagePart{{
		Type:    event.EventUnstablePollStart,
		Content: &event.MessageEventContent{Body: text},
		Extra: map[string]any{
			"org.matrix.msc3381.poll.start": poll,
			"org.matrix.msc1767.text":       text,
		},
	}}
}
