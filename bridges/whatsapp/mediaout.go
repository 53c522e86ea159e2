package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/wafmt"
	"github.com/passerelle/passerelle/bridges/whatsapp/wamedia"
)

// Matrix → WhatsApp for files and locations.

// WhatsAppMaxFileSize is the largest file WhatsApp takes (as a document).
const WhatsAppMaxFileSize = 2 << 30

// ErrFileNotSent is returned (wrapped, with the reason people read) for a
// file that was not sent to WhatsApp.
var ErrFileNotSent = errors.New("file not sent to WhatsApp")

// fileNotSent is the send-status failure of a file, naming the reason.
func fileNotSent(name, mimeType string, size int64, reason string) error {
	err := fmt.Errorf("%w: %s", ErrFileNotSent, media.NotBridgedNotice(name, mimeType, size, reason))
	return bridgev2.WrapErrorInStatus(err).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true)
}

// fileMessage sends nothing: it downloads a Matrix file (decrypted by
// bridgev2 for encrypted rooms) into a temporary file, asks the media check,
// uploads it encrypted to WhatsApp's media server and returns the message
// that points at it.
func (cl *Client) fileMessage(ctx context.Context, msg *bridgev2.MatrixMessage, out remote.Outbound) (*waE2E.Message, *waE2E.Message, error) {
	content := msg.Content
	kind, mediaType, ok := wamedia.KindOf(content)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", bridgev2.ErrUnsupportedMessageType, content.MsgType)
	}
	name, caption := media.FileAndCaption(content)
	info := content.Info
	if info == nil {
		info = &event.FileInfo{}
	}
	name = media.SafeFileName(name, wamedia.FallbackName(kind), info.MimeType)
	size := int64(info.Size)
	if size <= 0 {
		size = -1
	}
	limit := cl.main.Limits.Outbound(WhatsAppMaxFileSize)
	if !media.Fits(size, limit) {
		return nil, nil, fileNotSent(name, media.BaseMIME(info.MimeType), size, media.TooLargeReason(limit))
	}
	wa := cl.client()
	if wa == nil {
		return nil, nil, bridgev2.WrapErrorInStatus(ErrNotConnected).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true)
	}
	var up whatsmeow.UploadResponse
	var mimeType string
	var sendErr error
	err := cl.main.Bridge.Bot.DownloadMediaToFile(ctx, content.URL, content.File, false, func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		size = st.Size()
		head := make([]byte, media.SniffLen)
		n, _ := io.ReadFull(f, head)
		if _, err = f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		mimeType = media.Sniff(info.MimeType, name, head[:n])
		if !media.Fits(size, limit) {
			sendErr = fileNotSent(name, mimeType, size, media.TooLargeReason(limit))
			return nil
		}
		check := remote.Media{Direction: remote.MediaOutbound, Kind: kind, Login: cl.login, PortalKey: msg.Portal.PortalKey,
			Remote: out.Remote, MIME: mimeType, Size: size, Name: name}
		if err = cl.main.CheckMedia(ctx, check); err != nil {
			var refusal *remote.Refusal
			if errors.As(err, &refusal) {
				sendErr = fileNotSent(name, mimeType, size, refusal.Reason)
				return nil
			}
			return fmt.Errorf("failed to check media: %w", err)
		}
		up, err = wa.UploadReader(ctx, f, nil, mediaType)
		if err != nil {
			return fmt.Errorf("failed to upload to WhatsApp: %w", err)
		}
		return nil
	})
	if sendErr != nil {
		return nil, nil, sendErr
	} else if err != nil {
		return nil, nil, fmt.Errorf("failed to bridge file: %w", err)
	}
	var text string
	var ctxInfo *waE2E.ContextInfo
	if caption.Text != "" {
		capt := &event.MessageEventContent{MsgType: event.MsgText, Body: caption.Text}
		if caption.HTML != "" {
			capt.Format, capt.FormattedBody = event.FormatHTML, caption.HTML
		}
		capt.Mentions = content.Mentions
		fm := wafmt.FromMatrix(ctx, cl.fmtDeps(msg.Portal), capt)
		text = fm.Text
		if len(fm.Mentioned) > 0 {
			ctxInfo = &waE2E.ContextInfo{MentionedJID: fm.Mentioned}
		}
	}
	var waveform []byte
	if audio := content.MSC1767Audio; audio != nil {
		if kind == remote.MediaVoice && len(audio.Waveform) > 0 {
			waveform = media.WaveformToWhatsApp(audio.Waveform)
		}
		if info.Duration <= 0 {
			withDuration := *info
			withDuration.Duration = audio.Duration
			info = &withDuration
		}
	}
	fileMsg := wamedia.FileMessage(kind, up, mimeType, name, text, ctxInfo, info, waveform)
	var followUp *waE2E.Message
	if fileMsg.AudioMessage != nil && text != "" {
		followUp = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: &text, ContextInfo: ctxInfo}}
	}
	return fileMsg, followUp, nil
}

// checkOutboundMedia asks the media check about something that is not a
// file (a location): a refusal fails the send with the reason.
func (cl *Client) checkOutboundMedia(ctx context.Context, msg *bridgev2.MatrixMessage, out remote.Outbound, kind remote.MediaKind, what string) error {
	err := cl.main.CheckMedia(ctx, remote.Media{Direction: remote.MediaOutbound, Kind: kind, Login: cl.login, PortalKey: msg.Portal.PortalKey,
		Remote: out.Remote, Size: -1})
	var refusal *remote.Refusal
	if errors.As(err, &refusal) {
		return fileNotSent(what, "", -1, refusal.Reason)
	} else if err != nil {
		return fmt.Errorf("failed to check media: %w", err)
	}
	return nil
}
