// Package tgmedia maps Telegram media to Matrix events and Matrix
// attachments to Telegram media, without I/O: which message type, file name,
// MIME type, attributes and caption. The connector does the transfers.
package tgmedia

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
)

// KindOf is what a Matrix media message is to its sender.
func KindOf(content *event.MessageEventContent) remote.MediaKind {
	switch content.MsgType {
	case event.MsgImage:
		return remote.MediaImage
	case event.MsgVideo:
		if content.Info != nil && content.Info.MauGIF {
			return remote.MediaGIF
		}
		return remote.MediaVideo
	case event.MsgAudio:
		if content.MSC3245Voice != nil {
			return remote.MediaVoice
		}
		return remote.MediaAudio
	case event.CapMsgSticker:
		return remote.MediaSticker
	case event.MsgLocation:
		return remote.MediaLocation
	}
	return remote.MediaFile
}

// OutboundFile is what is known of a Matrix attachment before download.
type OutboundFile struct {
	Kind    remote.MediaKind
	Name    string
	MIME    string
	Size    int64 // -1: unknown
	Caption media.Caption
}

// DescribeOutbound reads the name, type, size and caption of a Matrix
// attachment from its event.
func DescribeOutbound(content *event.MessageEventContent) OutboundFile {
	name, capt := media.FileAndCaption(content)
	f := OutboundFile{Kind: KindOf(content), Size: -1, Caption: capt}
	if content.Info != nil {
		f.MIME = media.BaseMIME(content.Info.MimeType)
		if content.Info.Size > 0 {
			f.Size = int64(content.Info.Size)
		}
	}
	if content.MsgType == event.CapMsgSticker && capt.Text == "" {
		// A sticker's body is its description, not a file name.
		f.Caption = media.Caption{}
	}
	f.Name = media.SafeFileName(name, string(f.Kind), f.MIME)
	return f
}

// MaxPhotoSize is the largest image Telegram takes as a photo; bigger ones
// go as documents.
const MaxPhotoSize = 10 << 20

// InputMedia builds the Telegram media of an uploaded Matrix file. JPEG
// and PNG images up to MaxPhotoSize go as photos; other images (GIF, WebP, HEIC…) as documents
// with their size, which Telegram shows inline and keeps as sent.
func InputMedia(content *event.MessageEventContent, f OutboundFile, file tg.InputFileClass) tg.InputMediaClass {
	info := content.Info
	if info == nil {
		info = &event.FileInfo{}
	}
	attrs := []tg.DocumentAttributeClass{&tg.DocumentAttributeFilename{FileName: f.Name}}
	switch f.Kind {
	case remote.MediaImage:
		if (f.MIME == "image/jpeg" || f.MIME == "image/png") && f.Size <= MaxPhotoSize {
			return &tg.InputMediaUploadedPhoto{File: file}
		}
		if info.Width > 0 && info.Height > 0 {
			attrs = append(attrs, &tg.DocumentAttributeImageSize{W: info.Width, H: info.Height})
		}
	case remote.MediaVideo, remote.MediaGIF:
		v := &tg.DocumentAttributeVideo{Duration: float64(info.Duration) / 1000, W: info.Width, H: info.Height}
		v.SetSupportsStreaming(true)
		attrs = append(attrs, v)
		if f.Kind == remote.MediaGIF {
			attrs = append(attrs, &tg.DocumentAttributeAnimated{})
		}
	case remote.MediaAudio, remote.MediaVoice:
		durationMS := info.Duration
		var waveform []int
		if content.MSC1767Audio != nil {
			durationMS = max(durationMS, content.MSC1767Audio.Duration)
			waveform = content.MSC1767Audio.Waveform
		}
		a := &tg.DocumentAttributeAudio{Duration: (durationMS + 500) / 1000}
		if f.Kind == remote.MediaVoice {
			a.SetVoice(true)
			if wf := media.WaveformToTelegram(waveform); len(wf) > 0 {
				a.SetWaveform(wf)
			}
		}
		attrs = append(attrs, a)
	case remote.MediaSticker:
		attrs = append(attrs, &tg.DocumentAttributeSticker{Alt: content.Body, Stickerset: &tg.InputStickerSetEmpty{}})
		if info.Width > 0 && info.Height > 0 {
			attrs = append(attrs, &tg.DocumentAttributeImageSize{W: info.Width, H: info.Height})
		}
	}
	doc := &tg.InputMediaUploadedDocument{File: file, MimeType: f.MIME, Attributes: attrs}
	if f.Kind == remote.MediaFile {
		doc.SetForceFile(true)
	}
	return doc
}

// Telegram's limits for a poll.
const (
	MaxPollAnswers     = 10
	MaxPollQuestionLen = 255
	MaxPollAnswerLen   = 100
)

// ErrPollInvalid is returned (wrapped) for a Matrix poll Telegram cannot
// carry.
var ErrPollInvalid = errors.New("poll cannot be sent to Telegram")

// InputPoll converts an MSC3381 poll start to a Telegram poll. Answer IDs
// become the options' bytes (OptionBytes), so votes map both ways; an ID
// that cannot be an option gets its position instead.
func InputPoll(content *event.PollStartEventContent) (*tg.InputMediaPoll, error) {
	ps := content.PollStart
	question := strings.TrimSpace(ps.Question.GetText())
	switch {
	case question == "":
		return nil, fmt.Errorf("%w: the question is empty", ErrPollInvalid)
	case len([]rune(question)) > MaxPollQuestionLen:
		return nil, fmt.Errorf("%w: the question is longer than %d characters", ErrPollInvalid, MaxPollQuestionLen)
	case len(ps.Answers) < 2 || len(ps.Answers) > MaxPollAnswers:
		return nil, fmt.Errorf("%w: Telegram polls have 2 to %d answers, this one has %d", ErrPollInvalid, MaxPollAnswers, len(ps.Answers))
	}
	poll := tg.Poll{Question: tg.TextWithEntities{Text: question}}
	seen := map[string]bool{}
	for i, a := range ps.Answers {
		text := strings.TrimSpace(a.GetText())
		if text == "" || len([]rune(text)) > MaxPollAnswerLen {
			return nil, fmt.Errorf("%w: answer %d is empty or longer than %d characters", ErrPollInvalid, i+1, MaxPollAnswerLen)
		}
		opt, ok := OptionBytes(a.ID)
		if !ok || seen[string(opt)] {
			opt = []byte(strconv.Itoa(i))
		}
		seen[string(opt)] = true
		poll.Answers = append(poll.Answers, &tg.PollAnswer{Text: tg.TextWithEntities{Text: text}, Option: opt})
	}
	if ps.MaxSelections > 1 {
		poll.SetMultipleChoice(true)
	}
	return &tg.InputMediaPoll{Poll: poll}, nil
}
