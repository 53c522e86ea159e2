package telegram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/passerelle/passerelle/bridges/telegram/tgmedia"
)

// Telegram → Matrix media. Files stream from Telegram's upload.getFile
// into bridgev2's upload stream (a temporary file, encrypted in encrypted
// portals), so a big file never sits in memory.

// convertMediaMessage converts a message with media; text-only messages do
// not come here.
func (c *Client) convertMediaMessage(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *tg.Message, caption *event.MessageEventContent) []*bridgev2.ConvertedMessagePart {
	switch m := msg.Media.(type) {
	case *tg.MessageMediaPhoto, *tg.MessageMediaDocument:
		f, ok := tgmedia.FileOf(m)
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
func (c *Client) convertFile(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *tg.Message, f *tgmedia.InboundFile, caption *event.MessageEventContent) []*bridgev2.ConvertedMessagePart {
	log := zerolog.Ctx(ctx)
	shownMIME := f.MIME
	if shownMIME == "" {
		shownMIME = "image/jpeg"
	}
	if notice, ok := c.checkInbound(ctx, c.inboundMedia(portal, msg, f.Kind, shownMIME, f.Size, f.Name)); !ok {
		return c.mediaNotice(caption, notice)
	}
	limit := c.main.Limits.Inbound()
	if !media.Fits(f.Size, limit) {
		return c.mediaNotice(caption, media.NotBridgedNotice(f.Name, shownMIME, f.Size, media.TooLargeReason(limit)))
	}
	var sniffed string
	uri, file, err := intent.UploadMediaStream(ctx, portal.MXID, f.Size, false, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
		cw := &capWriter{w: w, limit: limit}
		if err := c.downloadFile(ctx, msg, f, cw); err != nil {
			return nil, err
		}
		sniffed = media.Sniff(f.MIME, f.Name, cw.head)
		return &bridgev2.FileStreamResult{FileName: f.Name, MimeType: sniffed}, nil
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
		log.Warn().Err(err).Int64("size", f.Size).Msg("Failed to bridge Telegram file")
		return c.mediaNotice(caption, media.NotBridgedNotice(f.Name, shownMIME, f.Size, reason))
	}
	info := f.Info
	info.MimeType = sniffed
	info.Size = int(f.Size)
	c.addThumbnail(ctx, portal, intent, f, &info)
	content := &event.MessageEventContent{MsgType: f.MsgType, Info: &info}
	if file != nil {
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
	if capt.Text == "" && f.Note != "" {
		capt.Text = f.Note
	}
	media.SetFileAndCaption(content, f.Name, capt)
	if f.Voice {
		content.MSC3245Voice = &event.MSC3245Voice{}
		content.MSC1767Audio = &event.MSC1767Audio{Duration: f.Info.Duration, Waveform: f.Waveform}
	} else if f.MsgType == event.MsgAudio {
		content.MSC1767Audio = &event.MSC1767Audio{Duration: f.Info.Duration}
	}
	return []*bridgev2.ConvertedMessagePart{{Type: f.EvtType, Content: content}}
}

// addThumbnail bridges a file's thumbnail, if Telegram has one, into info;
// a thumbnail that fails is left out.
func (c *Client) addThumbnail(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, f *tgmedia.InboundFile, info *event.FileInfo) {
	if f.Thumb == nil {
		return
	}
	api, err := c.waitAPI(ctx)
	if err != nil {
		return
	}
	var buf bytes.Buffer
	cw := &capWriter{w: &buf, limit: tgmedia.MaxThumbSize}
	if _, err = downloader.NewDownloader().Download(api, f.Thumb.Loc).Stream(ctx, cw); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to download thumbnail")
		return
	}
	mime := media.Sniff("", "", cw.head)
	uri, file, err := intent.UploadMedia(ctx, portal.MXID, buf.Bytes(), "thumbnail"+media.ExtensionFor(mime), mime)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to upload thumbnail")
		return
	}
	if file != nil {
		info.ThumbnailFile = file
	} else {
		info.ThumbnailURL = uri
	}
	info.ThumbnailInfo = &event.FileInfo{MimeType: mime, Width: f.Thumb.Width, Height: f.Thumb.Height, Size: buf.Len()}
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
func (c *Client) downloadFile(ctx context.Context, msg *tg.Message, f *tgmedia.InboundFile, w *capWriter) error {
	api, err := c.waitAPI(ctx)
	if err != nil {
		return err
	}
	_, err = downloader.NewDownloader().Download(api, f.Loc).Stream(ctx, w)
	if err == nil || !tgerr.Is(err, "FILE_REFERENCE_EXPIRED") || w.n > 0 {
		return err
	}
	zerolog.Ctx(ctx).Debug().Int("tg_message_id", msg.ID).Msg("File reference expired, fetching the message again")
	fresh, ferr := c.refetchMedia(ctx, api, msg)
	if ferr != nil {
		return fmt.Errorf("%w (refresh failed: %w)", err, ferr)
	}
	nf, ok := tgmedia.FileOf(fresh)
	if !ok {
		return err
	}
	f.Loc = nf.Loc
	_, err = downloader.NewDownloader().Download(api, f.Loc).Stream(ctx, w)
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
	contact, card := tgmedia.Contact(m)
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
	poll, text := tgmedia.PollStart(m)
	return []*bridgev2.ConvertedMessagePart{{
		Type:    event.EventUnstablePollStart,
		Content: &event.MessageEventContent{Body: text},
		Extra: map[string]any{
			"org.matrix.msc3381.poll.start": poll,
			"org.matrix.msc1767.text":       text,
		},
	}}
}
