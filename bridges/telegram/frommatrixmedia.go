package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gotd/td/telegram/uploader"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgfmt"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/telegram/tgmedia"
)

// Matrix → Telegram media. bridgev2's Matrix side downloads (and decrypts)
// the attachment into a temporary file; gotd's uploader sends it in parts
// (saveBigFilePart above 10 MB) straight from that file.

// TelegramMaxFileSize is the largest file Telegram accepts (2 GB; 4 GB for
// premium accounts, not assumed).
const TelegramMaxFileSize = 2000 * 1024 * 1024

// CaptionLimits are Telegram's limits for a media caption; a longer
// caption goes on as text messages after the file.
var CaptionLimits = tgfmt.Limits{Units: 1024, Entities: 100, Parts: 16}

// errMediaNotSent is a send status for a file that did not go, naming it.
func errMediaNotSent(name, mimeType string, size int64, reason string, why event.MessageStatusReason) error {
	text := strings.Replace(media.NotBridgedNotice(name, mimeType, size, reason), "was not bridged", "was not sent to Telegram", 1)
	return bridgev2.WrapErrorInStatus(errors.New(text)).WithMessage(text).
		WithIsCertain(true).WithSendNotice(true).WithErrorReason(why).WithStatus(event.MessageStatusFail)
}

// sendMatrixFile sends an image, video, audio, file or sticker.
func (c *Client) sendMatrixFile(ctx context.Context, msg *bridgev2.MatrixMessage, peer tgid.Peer, inputPeer tg.InputPeerClass, out remote.Outbound) (*bridgev2.MatrixMessageResponse, error) {
	content := msg.Content
	f := tgmedia.DescribeOutbound(content)
	uri := content.URL
	if content.File != nil {
		uri = content.File.URL
	}
	if uri == "" {
		return nil, errMediaNotSent(f.Name, f.MIME, f.Size, "the message has no file", event.MessageStatusUnsupported)
	}
	limit := c.main.Limits.Outbound(TelegramMaxFileSize)
	if !media.Fits(f.Size, limit) {
		return nil, errMediaNotSent(f.Name, f.MIME, f.Size, media.TooLargeReason(limit), event.MessageStatusUnsupported)
	}
	check := remote.Media{Direction: remote.MediaOutbound, Kind: f.Kind, Login: c.login, PortalKey: msg.Portal.PortalKey,
		Remote: out.Remote, MIME: f.MIME, Size: f.Size, Name: f.Name}
	// Asked first with what the event declares (size -1 when it does not
	// say), again below with the real size and type if they differ.
	if err := c.checkOutboundMedia(ctx, check); err != nil {
		return nil, err
	}
	var (
		resp     tg.UpdatesClass
		randomID = matrixRandomID(msg.Event.ID, 0)
		sendErr  error
	)
	err := msg.Portal.Bridge.Bot.DownloadMediaToFile(ctx, uri, content.File, false, func(file *os.File) error {
		st, err := file.Stat()
		if err != nil {
			return fmt.Errorf("failed to stat downloaded file: %w", err)
		}
		f.Size = st.Size()
		if !media.Fits(f.Size, limit) {
			return &media.TooLargeError{Limit: limit, Size: f.Size}
		}
		head := make([]byte, media.SniffLen)
		n, _ := io.ReadFull(file, head)
		if _, err = file.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("failed to rewind downloaded file: %w", err)
		}
		f.MIME = media.Sniff(f.MIME, f.Name, head[:n])
		if f.MIME != check.MIME || f.Size != check.Size {
			check.MIME, check.Size = f.MIME, f.Size
			if sendErr = c.checkOutboundMedia(ctx, check); sendErr != nil {
				return nil
			}
		}
		api, err := c.waitAPI(ctx)
		if err != nil {
			return err
		}
		inFile, err := uploader.NewUploader(api).WithThreads(2).Upload(ctx, uploader.NewUpload(f.Name, file, f.Size))
		if err != nil {
			return fmt.Errorf("failed to upload file to Telegram: %w", err)
		}
		text, entities := c.captionFor(ctx, f.Caption)
		parts := tgfmt.Split(text, entities, CaptionLimits)
		req := &tg.MessagesSendMediaRequest{
			Peer:     inputPeer,
			Media:    tgmedia.InputMedia(content, f, inFile),
			Message:  parts[0].Text,
			RandomID: randomID,
		}
		if ents := c.toInputEntities(ctx, parts[0].Entities); len(ents) > 0 {
			req.SetEntities(ents)
		}
		c.setReply(ctx, req, msg.ReplyTo)
		resp, sendErr = c.sendMedia(ctx, req)
		if sendErr == nil && len(parts) > 1 {
			c.feedUpdates(resp)
			_, _, sendErr = c.sendTextPartsFrom(ctx, msg.Event.ID, 1, inputPeer, parts[1:], nil)
			if sendErr != nil {
				// The file went: the message stands for it.
				zerolog.Ctx(ctx).Warn().Err(sendErr).Msg("Failed to send the rest of a long caption")
				sendErr = nil
			}
		}
		return nil
	})
	var tooLarge *media.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errMediaNotSent(f.Name, f.MIME, f.Size, media.TooLargeReason(tooLarge.Limit), event.MessageStatusUnsupported)
	case err != nil:
		return nil, bridgev2.WrapErrorInStatus(fmt.Errorf("failed to send %s to Telegram: %w", f.Name, err)).WithErrorAsMessage().WithSendNotice(true)
	case sendErr != nil:
		var status bridgev2.MessageStatus
		if errors.As(sendErr, &status) {
			return nil, sendErr
		}
		return nil, bridgev2.WrapErrorInStatus(fmt.Errorf("failed to send %s to Telegram: %w", f.Name, sendErr)).WithErrorAsMessage().WithSendNotice(true)
	}
	return c.sentResponse(ctx, peer, resp, randomID, out)
}

// checkOutboundMedia asks the media check; a refusal is a send status
// naming the file and the reason.
func (c *Client) checkOutboundMedia(ctx context.Context, m remote.Media) error {
	err := c.main.CheckMedia(ctx, m)
	if err == nil {
		return nil
	}
	var refusal *remote.Refusal
	if errors.As(err, &refusal) {
		return errMediaNotSent(m.Name, m.MIME, m.Size, refusal.Reason, event.MessageStatusNoPermission)
	}
	return errCannotSend(fmt.Errorf("failed to check media: %w", err))
}

// captionFor converts a Matrix caption to Telegram text and entities.
func (c *Client) captionFor(ctx context.Context, capt media.Caption) (string, []tg.MessageEntityClass) {
	if capt.Text == "" {
		return "", nil
	}
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: capt.Text}
	if capt.HTML != "" {
		content.Format, content.FormattedBody = event.FormatHTML, capt.HTML
	}
	return tgfmt.FromMatrix(ctx, c.fmtDeps(), content)
}

func (c *Client) setReply(ctx context.Context, req *tg.MessagesSendMediaRequest, replyTo *database.Message) {
	if r, ok := c.ownInputReplyTo(ctx, replyTo); ok {
		req.SetReplyTo(r)
	}
}

// sendMatrixLocation sends an m.location as a geo point; its body is not
// sent (Telegram locations have no text).
func (c *Client) sendMatrixLocation(ctx context.Context, msg *bridgev2.MatrixMessage, peer tgid.Peer, inputPeer tg.InputPeerClass, out remote.Outbound) (*bridgev2.MatrixMessageResponse, error) {
	lat, long, err := media.ParseGeoURI(msg.Content.GeoURI)
	if err != nil {
		return nil, bridgev2.WrapErrorInStatus(fmt.Errorf("the location was not sent to Telegram: %w", err)).
			WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true).
			WithErrorReason(event.MessageStatusUnsupported).WithStatus(event.MessageStatusFail)
	}
	if err = c.checkOutboundMedia(ctx, remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaLocation, Login: c.login,
		PortalKey: msg.Portal.PortalKey, Remote: out.Remote, Size: -1}); err != nil {
		return nil, err
	}
	req := &tg.MessagesSendMediaRequest{
		Peer:     inputPeer,
		Media:    &tg.InputMediaGeoPoint{GeoPoint: &tg.InputGeoPoint{Lat: lat, Long: long}},
		RandomID: matrixRandomID(msg.Event.ID, 0),
	}
	c.setReply(ctx, req, msg.ReplyTo)
	resp, err := c.sendMedia(ctx, req)
	if err != nil {
		return nil, bridgev2.WrapErrorInStatus(fmt.Errorf("failed to send location to Telegram: %w", err)).WithErrorAsMessage().WithSendNotice(true)
	}
	return c.sentResponse(ctx, peer, resp, req.RandomID, out)
}

// sentResponse records a sent media message.
func (c *Client) sentResponse(ctx context.Context, peer tgid.Peer, resp tg.UpdatesClass, randomID int64, out remote.Outbound) (*bridgev2.MatrixMessageResponse, error) {
	msgID, date := sentMessageID(resp, randomID)
	if msgID == 0 {
		return nil, bridgev2.WrapErrorInStatus(errors.New("telegram did not return the sent message's ID")).WithSendNotice(true)
	}
	c.feedUpdates(resp)
	if peer.Type == tgid.PeerChat {
		c.recordBasicSentResponse(ctx, peer.ID, resp, msgID, date, "")
	}
	c.main.Sent(ctx, out)
	ts := time.Now()
	if date != 0 {
		ts = time.Unix(int64(date), 0)
	}
	return &bridgev2.MatrixMessageResponse{DB: &database.Message{
		ID:        c.messageID(peer, msgID),
		SenderID:  tgid.MakeUserID(c.userID),
		Timestamp: ts,
	}}, nil
}
