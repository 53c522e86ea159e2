package whatsapp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/wafmt"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/bridges/whatsapp/wamedia"
)

// WhatsApp → Matrix for files, locations, contact cards and polls.

// DefaultMediaRetryWait bounds the wait for a phone to upload expired media
// again.
const DefaultMediaRetryWait = 2 * time.Minute

// maxPendingRetries caps the media retries waited for at once per login.
const maxPendingRetries = 64

// mediaState is where a message's file stands in the expired-media retry.
type mediaState struct {
	retried bool   // the phone uploaded it again: no second retry
	failed  string // the retry failed: the reason, for the notice
}

// convertMedia converts a message that carries a file, a location, contact
// cards or a poll; ok is false for anything else.
func (cl *Client) convertMedia(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, evt *events.Message, sender bridgev2.EventSender, st mediaState) (parts []*bridgev2.ConvertedMessagePart, ok bool) {
	msg := evt.Message
	meta := &waid.MessageMetadata{SenderJID: evt.Info.Sender.ToNonAD().String()}
	check := remote.Media{Direction: remote.MediaInbound, Login: cl.login, PortalKey: portal.PortalKey, Size: -1}
	if !sender.IsFromMe {
		check.Remote = sender.Sender
	}
	if wamedia.Unwrap(msg).GetPollUpdateMessage() != nil {
		return []*bridgev2.ConvertedMessagePart{cl.convertPollVote(ctx, evt, meta)}, true
	}
	if f := wamedia.FileOf(msg); f != nil {
		content, placeholder := cl.convertFile(ctx, portal, intent, evt, f, check, st)
		meta.Placeholder = placeholder
		evtType := event.EventMessage
		if content.MsgType == "" {
			evtType = event.EventSticker
		}
		return []*bridgev2.ConvertedMessagePart{{Type: evtType, Content: content, DBMetadata: meta}}, true
	}
	if content := wamedia.LocationContent(msg); content != nil {
		check.Kind = remote.MediaLocation
		if refused := cl.refusedNotice(ctx, check, "A location", nil); refused != nil {
			content = refused
		}
		return []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: content, DBMetadata: meta}}, true
	}
	if cards := wamedia.ContactCards(msg); len(cards) > 0 {
		for i, card := range cards {
			check.Kind, check.MIME, check.Size, check.Name = remote.MediaContact, "text/vcard", int64(len(card.VCard)), card.Name
			content := cl.refusedNotice(ctx, check, card.Name, nil)
			if content == nil {
				content = cl.uploadBytes(ctx, portal, intent, card.VCard, card.Name, "text/vcard")
				content.Body = card.Body
			}
			parts = append(parts, &bridgev2.ConvertedMessagePart{ID: partID(i), Type: event.EventMessage, Content: content, DBMetadata: meta})
		}
		return parts, true
	}
	if extra, fallback, isPoll := wamedia.PollStart(msg); isPoll {
		check.Kind = remote.MediaPoll
		if refused := cl.refusedNotice(ctx, check, "A poll", nil); refused != nil {
			return []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: refused, DBMetadata: meta}}, true
		}
		return []*bridgev2.ConvertedMessagePart{{
			Type: event.EventUnstablePollStart, Content: &event.MessageEventContent{Body: fallback}, Extra: extra, DBMetadata: meta,
		}}, true
	}
	return nil, false
}

// convertPollVote converts a vote on a poll to an MSC3381 poll response
// to the poll's Matrix event; a vote that cannot be read, or on a poll that
// was not bridged, is kept out of the room.
func (cl *Client) convertPollVote(ctx context.Context, evt *events.Message, meta *waid.MessageMetadata) *bridgev2.ConvertedMessagePart {
	part := &bridgev2.ConvertedMessagePart{Type: event.EventUnstablePollResponse, Content: &event.MessageEventContent{}, DBMetadata: meta}
	log := zerolog.Ctx(ctx)
	wa := cl.client()
	if wa == nil {
		part.DontBridge = true
		return part
	}
	vote, err := wa.DecryptPollVote(ctx, &events.Message{Info: evt.Info, Message: wamedia.Unwrap(evt.Message)})
	if err != nil {
		log.Warn().Err(err).Msg("Failed to decrypt poll vote")
		part.DontBridge = true
		return part
	}
	key := wamedia.Unwrap(evt.Message).GetPollUpdateMessage().GetPollCreationMessageKey()
	pollSender := evt.Info.Sender
	if !key.GetFromMe() {
		raw := key.GetRemoteJID()
		if evt.Info.IsGroup {
			raw = key.GetParticipant()
		}
		if pollSender, err = types.ParseJID(raw); err != nil {
			part.DontBridge = true
			return part
		}
	}
	pollMsgID, err := waid.MakeMessageID(waid.MessageKey{Chat: cl.chatOf(ctx, &evt.Info), Sender: cl.preferPN(ctx, pollSender, types.EmptyJID), ID: key.GetID()})
	if err != nil {
		part.DontBridge = true
		return part
	}
	poll, err := cl.main.Bridge.DB.Message.GetFirstPartByID(ctx, cl.login.ID, pollMsgID)
	if err != nil || poll == nil {
		log.Debug().Err(err).Str("poll_id", string(pollMsgID)).Msg("Vote on a poll that was not bridged")
		part.DontBridge = true
		return part
	}
	answers := make([]string, 0, len(vote.GetSelectedOptions()))
	for _, h := range vote.GetSelectedOptions() {
		if len(answers) < 64 {
			answers = append(answers, hex.EncodeToString(h))
		}
	}
	part.Extra = map[string]any{
		"org.matrix.msc3381.poll.response": map[string]any{"answers": answers},
		"m.relates_to":                     map[string]any{"rel_type": "m.reference", "event_id": poll.MXID},
	}
	return part
}

func partID(i int) networkid.PartID {
	if i == 0 {
		return ""
	}
	return networkid.PartID(fmt.Sprintf("card%d", i))
}

// refusedNotice asks the media check; a refusal (or a failed check) gives
// the notice to bridge instead, with the caption kept.
func (cl *Client) refusedNotice(ctx context.Context, check remote.Media, name string, caption *event.MessageEventContent) *event.MessageEventContent {
	err := cl.main.CheckMedia(ctx, check)
	if err == nil {
		return nil
	}
	var refusal *remote.Refusal
	reason := "the gateway could not check it"
	if errors.As(err, &refusal) {
		reason = refusal.Reason
	} else {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Media check failed")
	}
	return noticeWithCaption(media.NotBridgedNotice(name, check.MIME, check.Size, reason), caption)
}

// noticeWithCaption is a notice about a file, after the message's own text
// when it has one.
func noticeWithCaption(notice string, caption *event.MessageEventContent) *event.MessageEventContent {
	if caption == nil || caption.Body == "" {
		return &event.MessageEventContent{MsgType: event.MsgNotice, Body: notice}
	}
	out := *caption
	out.MsgType = event.MsgText
	if out.FormattedBody == "" {
		out.Format, out.FormattedBody = event.FormatHTML, html.EscapeString(out.Body)
	}
	out.Body += "\n\n" + notice
	out.FormattedBody += "<p><em>" + html.EscapeString(notice) + "</em></p>"
	return &out
}

// convertFile converts a media message. placeholder is true for the notice
// that stands in while expired media is asked for again.
func (cl *Client) convertFile(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, evt *events.Message, f *wamedia.File, check remote.Media, st mediaState) (content *event.MessageEventContent, placeholder bool) {
	var caption *event.MessageEventContent
	if f.Caption != "" {
		caption = wafmt.ToMatrix(ctx, cl.fmtDeps(portal), f.Caption, f.Mentioned)
	}
	name, mimeType := f.FileName(), f.MIMEType()
	check.Kind, check.MIME, check.Size, check.Name = f.Kind, mimeType, f.Size, name
	if refused := cl.refusedNotice(ctx, check, name, caption); refused != nil {
		return refused, false
	}
	if limit := cl.main.Limits.Inbound(); !media.Fits(f.Size, limit) {
		return noticeWithCaption(media.NotBridgedNotice(name, mimeType, f.Size, media.TooLargeReason(limit)), caption), false
	}
	if st.failed != "" {
		return noticeWithCaption(media.NotBridgedNotice(name, mimeType, f.Size, st.failed), caption), false
	}
	uri, encFile, size, err := cl.downloadToMatrix(ctx, portal, intent, f.File, name, mimeType)
	switch {
	case err == nil:
	case isExpired(err) && !st.retried:
		if rerr := cl.requestMediaRetry(ctx, evt, f); rerr != nil {
			zerolog.Ctx(ctx).Warn().Err(rerr).Msg("Failed to ask the phone for expired media")
			return noticeWithCaption(media.NotBridgedNotice(name, mimeType, f.Size, "it expired on WhatsApp's server"), caption), false
		}
		return noticeWithCaption("⏳ "+name+" expired on WhatsApp's server; asking the sender's phone to send it again.", caption), true
	case errors.Is(err, bridgev2.ErrMediaTooLarge) || errors.Is(err, media.ErrTooLarge):
		reason := "larger than the homeserver accepts"
		if limit := cl.main.Limits.Inbound(); limit > 0 {
			reason = media.TooLargeReason(limit)
		}
		return noticeWithCaption(media.NotBridgedNotice(name, mimeType, f.Size, reason), caption), false
	default:
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to bridge WhatsApp media")
		reason := "it could not be downloaded from WhatsApp"
		if isExpired(err) {
			reason = "it expired on WhatsApp's server and the phone did not send it again"
		}
		return noticeWithCaption(media.NotBridgedNotice(name, mimeType, f.Size, reason), caption), false
	}
	_, content = f.Content(size)
	content.URL, content.File = uri, encFile
	if encFile != nil {
		content.URL = ""
	}
	capt := media.Caption{}
	if caption != nil {
		capt.Text = caption.Body
		if caption.Format == event.FormatHTML {
			capt.HTML = caption.FormattedBody
		}
		content.Mentions = caption.Mentions
	}
	media.SetFileAndCaption(content, name, capt)
	if len(f.Thumbnail) > 0 && len(f.Thumbnail) <= maxInlineThumbnail && f.Kind != remote.MediaSticker {
		thumbURI, thumbFile, terr := intent.UploadMedia(ctx, portal.MXID, f.Thumbnail, "thumbnail.jpg", "image/jpeg")
		if terr == nil {
			content.Info.ThumbnailURL, content.Info.ThumbnailFile = thumbURI, thumbFile
			if thumbFile != nil {
				content.Info.ThumbnailURL = ""
			}
			content.Info.ThumbnailInfo = &event.FileInfo{MimeType: "image/jpeg", Size: len(f.Thumbnail)}
		}
	}
	if f.Kind == remote.MediaSticker {
		content.MsgType = ""
		content.Body = name
	}
	return content, false
}

// maxInlineThumbnail bounds the inline thumbnails bridged (WhatsApp's are a
// few KB).
const maxInlineThumbnail = 256 * 1024

func isExpired(err error) bool {
	return errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404) || errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410)
}

// downloadToMatrix streams a WhatsApp file into a Matrix upload: whatsmeow
// downloads and decrypts into the upload's temporary file, which bridgev2
// encrypts for encrypted rooms. Memory stays bounded whatever the size.
func (cl *Client) downloadToMatrix(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, dl whatsmeow.DownloadableMessage, name, mimeType string) (uri id.ContentURIString, file *event.EncryptedFileInfo, size int64, err error) {
	wa := cl.client()
	if wa == nil {
		return "", nil, 0, ErrNotConnected
	}
	declared := int64(-1)
	if sized, ok := dl.(interface{ GetFileLength() uint64 }); ok {
		declared = int64(sized.GetFileLength())
	}
	limit := cl.main.Limits.Inbound()
	mxc, encFile, err := intent.UploadMediaStream(ctx, portal.MXID, max(declared, 0), true, func(w io.Writer) (*bridgev2.FileStreamResult, error) {
		f, ok := w.(*os.File)
		if !ok {
			return nil, errors.New("upload stream is not a file")
		}
		if err := wa.DownloadToFile(ctx, dl, f); err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if size = st.Size(); !media.Fits(size, limit) {
			return nil, &media.TooLargeError{Limit: limit}
		}
		if _, err = f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return &bridgev2.FileStreamResult{FileName: name, MimeType: mimeType}, nil
	})
	return mxc, encFile, size, err
}

// uploadBytes uploads a small generated file (a vCard) and returns its
// m.file content.
func (cl *Client) uploadBytes(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, data []byte, name, mimeType string) *event.MessageEventContent {
	uri, file, err := intent.UploadMedia(ctx, portal.MXID, data, name, mimeType)
	if err != nil {
		return &event.MessageEventContent{MsgType: event.MsgNotice, Body: media.NotBridgedNotice(name, mimeType, int64(len(data)), "the upload to Matrix failed")}
	}
	content := &event.MessageEventContent{MsgType: event.MsgFile, URL: uri, File: file, FileName: name,
		Info: &event.FileInfo{MimeType: mimeType, Size: len(data)}}
	if file != nil {
		content.URL = ""
	}
	return content
}

// pendingRetry is an expired file waiting for its sender's phone.
type pendingRetry struct {
	evt      *events.Message
	chat     types.JID
	sender   types.JID
	mediaKey []byte
	done     chan struct{}
}

// requestMediaRetry sends a media retry receipt for evt's file and waits,
// in the background and for MediaRetryWait at most, for the phone's answer.
func (cl *Client) requestMediaRetry(ctx context.Context, evt *events.Message, f *wamedia.File) error {
	wa := cl.client()
	if wa == nil {
		return ErrNotConnected
	}
	_, senderJID := cl.sender(ctx, &evt.Info)
	p := &pendingRetry{evt: evt, chat: cl.chatOf(ctx, &evt.Info), sender: senderJID, mediaKey: f.File.GetMediaKey(), done: make(chan struct{})}
	cl.mu.Lock()
	if cl.retries == nil {
		cl.retries = map[types.MessageID]*pendingRetry{}
	}
	if _, dup := cl.retries[evt.Info.ID]; !dup && len(cl.retries) >= maxPendingRetries {
		cl.mu.Unlock()
		return errors.New("too many media retries pending")
	}
	cl.retries[evt.Info.ID] = p
	cl.mu.Unlock()
	if err := wa.SendMediaRetryReceipt(ctx, &evt.Info, p.mediaKey); err != nil {
		cl.takeRetry(evt.Info.ID, p)
		return fmt.Errorf("failed to send media retry receipt: %w", err)
	}
	wait := cl.main.MediaRetryWait
	evCtx := cl.eventContext()
	go func() {
		defer func() {
			if r := recover(); r != nil {
				cl.log.Error().Any("panic", r).Str("stack", string(debug.Stack())).Msg("Panic while waiting for a media retry")
			}
		}()
		select {
		case <-p.done:
		case <-evCtx.Done():
			cl.takeRetry(evt.Info.ID, p)
		case <-cl.main.Clock.After(wait):
			if cl.takeRetry(evt.Info.ID, p) {
				cl.redeliverFile(evCtx, p, evt.Message, mediaState{failed: "it expired on WhatsApp's server and the phone did not send it again in time"})
			}
		}
	}()
	return nil
}

// takeRetry removes p from the pending retries; false when it was not
// there any more (answered or timed out already).
func (cl *Client) takeRetry(id types.MessageID, p *pendingRetry) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.retries[id] != p {
		return false
	}
	delete(cl.retries, id)
	return true
}

// onMediaRetry handles a phone's answer to a media retry receipt: the file
// is bridged from its new direct path (an edit of the placeholder), or the
// placeholder becomes a notice.
func (cl *Client) onMediaRetry(ctx context.Context, evt *events.MediaRetry) {
	cl.mu.Lock()
	p := cl.retries[evt.MessageID]
	cl.mu.Unlock()
	if p == nil || !cl.takeRetry(evt.MessageID, p) {
		return
	}
	close(p.done)
	notif, err := whatsmeow.DecryptMediaRetryNotification(evt, p.mediaKey)
	switch {
	case errors.Is(err, whatsmeow.ErrMediaNotAvailableOnPhone):
		cl.redeliverFile(ctx, p, p.evt.Message, mediaState{failed: "it expired on WhatsApp's server and the phone no longer has it"})
	case err != nil:
		zerolog.Ctx(ctx).Warn().Err(err).Str("wa_message_id", evt.MessageID).Msg("Media retry failed")
		cl.redeliverFile(ctx, p, p.evt.Message, mediaState{failed: "it expired on WhatsApp's server and the phone's answer could not be read"})
	case notif.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS || notif.GetDirectPath() == "":
		cl.redeliverFile(ctx, p, p.evt.Message, mediaState{failed: "it expired on WhatsApp's server and the phone could not send it again"})
	default:
		msg := proto.Clone(p.evt.Message).(*waE2E.Message)
		wamedia.SetDirectPath(msg, notif.GetDirectPath())
		cl.redeliverFile(ctx, p, msg, mediaState{retried: true})
	}
}

// redeliverFile bridges the message again: the placeholder it left is
// edited into the file or the final notice. Its callers hold no lock; like
// a message, it is handled while no group change writes the ghosts
// (remote.ProfileGate: the sender's ghost is primed on the way).
func (cl *Client) redeliverFile(ctx context.Context, p *pendingRetry, msg *waE2E.Message, st mediaState) {
	ctx, done := cl.reading(ctx)
	defer done()
	evt := *p.evt
	evt.Message = msg
	me, err := cl.messageEventWith(ctx, &evt, p.chat, p.sender, st)
	if err != nil {
		return
	}
	cl.deliver(ctx, me)
}
