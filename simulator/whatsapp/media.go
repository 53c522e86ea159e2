package wasim

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.mau.fi/util/random"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
)

// Upload is a file a simulated phone encrypted and uploaded to the media
// server, with what a message needs to point at it.
type Upload struct {
	URL, DirectPath string
	MediaKey        []byte
	FileSHA256      []byte
	FileEncSHA256   []byte
	FileLength      uint64
	MediaKeyTime    int64
}

// UploadMedia encrypts plaintext as a phone does for media type typ (fresh
// media key) and stores it on the media server.
func (s *Server) UploadMedia(plaintext io.Reader, typ whatsmeow.MediaType) (Upload, error) {
	mmsType, ok := mmsTypes[typ]
	if !ok {
		return Upload{}, fmt.Errorf("unknown media type %q", typ)
	}
	up := Upload{MediaKey: random.Bytes(32), MediaKeyTime: time.Now().Unix()}
	f, err := os.CreateTemp(s.media.dir, "upload-*")
	if err != nil {
		return Upload{}, err
	}
	defer func() { _ = os.Remove(f.Name()); _ = f.Close() }()
	if up.FileLength, up.FileSHA256, up.FileEncSHA256, err = encryptMedia(up.MediaKey, typ, plaintext, f); err != nil {
		return Upload{}, err
	}
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return Upload{}, err
	}
	if up.DirectPath, err = s.media.store(f, mmsType, up.FileEncSHA256); err != nil {
		return Upload{}, err
	}
	up.URL = "https://" + MediaHost + up.DirectPath + "&mms3=true"
	return up, nil
}

var mmsTypes = map[whatsmeow.MediaType]string{
	whatsmeow.MediaImage: "image", whatsmeow.MediaVideo: "video", whatsmeow.MediaAudio: "audio", whatsmeow.MediaDocument: "document",
	whatsmeow.MediaHistory: "md-msg-hist",
}

// Media kinds a simulated phone can send (MediaSpec.Kind).
const (
	KindImage    = "image"
	KindVideo    = "video"
	KindGIF      = "gif"
	KindVoice    = "voice"
	KindAudio    = "audio"
	KindDocument = "document"
	KindSticker  = "sticker"
)

// MediaSpec describes a file a simulated phone sends.
type MediaSpec struct {
	Kind string // KindImage, …
	Data []byte
	// Reader, when set, is read instead of Data (a big file, streamed).
	Reader   io.Reader
	MIME     string
	FileName string // documents
	Caption  string // images, videos, GIFs, documents
	Width    uint32
	Height   uint32
	Seconds  uint32 // audio, voice, video
	Waveform []byte // voice notes: 64 samples, 0..100
	// Thumbnail is an inline JPEG thumbnail (images, videos, documents).
	Thumbnail []byte
	Animated  bool // stickers
}

// MediaMessage uploads spec's bytes and returns the message a phone sends
// for them, and the upload.
func (s *Server) MediaMessage(spec MediaSpec) (*waE2E.Message, Upload, error) {
	typ := map[string]whatsmeow.MediaType{
		KindImage: whatsmeow.MediaImage, KindSticker: whatsmeow.MediaImage, KindVideo: whatsmeow.MediaVideo, KindGIF: whatsmeow.MediaVideo,
		KindVoice: whatsmeow.MediaAudio, KindAudio: whatsmeow.MediaAudio, KindDocument: whatsmeow.MediaDocument,
	}[spec.Kind]
	if typ == "" {
		return nil, Upload{}, fmt.Errorf("unknown media kind %q", spec.Kind)
	}
	src := io.Reader(bytes.NewReader(spec.Data))
	if spec.Reader != nil {
		src = spec.Reader
	}
	up, err := s.UploadMedia(src, typ)
	if err != nil {
		return nil, Upload{}, err
	}
	str := func(v string) *string {
		if v == "" {
			return nil
		}
		return proto.String(v)
	}
	u32 := func(v uint32) *uint32 {
		if v == 0 {
			return nil
		}
		return proto.Uint32(v)
	}
	msg := &waE2E.Message{}
	switch spec.Kind {
	case KindImage:
		msg.ImageMessage = &waE2E.ImageMessage{URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, MediaKeyTimestamp: &up.MediaKeyTime,
			FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: &up.FileLength, Mimetype: str(spec.MIME),
			Caption: str(spec.Caption), Width: u32(spec.Width), Height: u32(spec.Height), JPEGThumbnail: spec.Thumbnail}
	case KindVideo, KindGIF:
		msg.VideoMessage = &waE2E.VideoMessage{URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, MediaKeyTimestamp: &up.MediaKeyTime,
			FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: &up.FileLength, Mimetype: str(spec.MIME),
			Caption: str(spec.Caption), Width: u32(spec.Width), Height: u32(spec.Height), Seconds: u32(spec.Seconds), JPEGThumbnail: spec.Thumbnail}
		if spec.Kind == KindGIF {
			msg.VideoMessage.GifPlayback = proto.Bool(true)
		}
	case KindVoice, KindAudio:
		msg.AudioMessage = &waE2E.AudioMessage{URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, MediaKeyTimestamp: &up.MediaKeyTime,
			FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: &up.FileLength, Mimetype: str(spec.MIME),
			Seconds: u32(spec.Seconds)}
		if spec.Kind == KindVoice {
			msg.AudioMessage.PTT = proto.Bool(true)
			msg.AudioMessage.Waveform = spec.Waveform
		}
	case KindDocument:
		msg.DocumentMessage = &waE2E.DocumentMessage{URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, MediaKeyTimestamp: &up.MediaKeyTime,
			FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: &up.FileLength, Mimetype: str(spec.MIME),
			FileName: str(spec.FileName), Title: str(spec.FileName), Caption: str(spec.Caption), JPEGThumbnail: spec.Thumbnail}
	case KindSticker:
		msg.StickerMessage = &waE2E.StickerMessage{URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, MediaKeyTimestamp: &up.MediaKeyTime,
			FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256, FileLength: &up.FileLength, Mimetype: str(spec.MIME),
			Width: u32(spec.Width), Height: u32(spec.Height), IsAnimated: proto.Bool(spec.Animated)}
	}
	return msg, up, nil
}

// SendMedia uploads spec's bytes and sends them from the phone of account
// from to to (a phone number or a group JID). It returns the message ID and
// the upload (its DirectPath can be given to ExpireMedia).
func (s *Server) SendMedia(ctx context.Context, from, to string, spec MediaSpec) (string, Upload, error) {
	msg, up, err := s.MediaMessage(spec)
	if err != nil {
		return "", Upload{}, err
	}
	id, err := s.send(ctx, from, to, msg)
	return id, up, err
}

// send sends msg to a phone number or a group JID.
func (s *Server) send(ctx context.Context, from, to string, msg *waE2E.Message) (string, error) {
	if strings.HasSuffix(to, "@"+types.GroupServer) {
		return s.SendGroupMessage(ctx, from, to, msg)
	}
	return s.SendMessage(ctx, from, to, msg)
}

// downloadable returns the downloadable part of a message, if any.
func downloadable(msg *waE2E.Message) whatsmeow.DownloadableMessage {
	switch {
	case msg.GetImageMessage() != nil:
		return msg.GetImageMessage()
	case msg.GetVideoMessage() != nil:
		return msg.GetVideoMessage()
	case msg.GetAudioMessage() != nil:
		return msg.GetAudioMessage()
	case msg.GetDocumentMessage() != nil:
		return msg.GetDocumentMessage()
	case msg.GetStickerMessage() != nil:
		return msg.GetStickerMessage()
	case msg.GetDocumentWithCaptionMessage().GetMessage() != nil:
		return downloadable(msg.GetDocumentWithCaptionMessage().GetMessage())
	case msg.GetEphemeralMessage().GetMessage() != nil:
		return downloadable(msg.GetEphemeralMessage().GetMessage())
	}
	return nil
}

// DownloadTo downloads and decrypts the file of a message a simulated phone
// received (or any message with media) into w, checking the MAC, the
// encrypted and plain SHA-256 and the declared length, as a phone does. It
// returns the number of plaintext bytes written.
func (s *Server) DownloadTo(msg *waE2E.Message, w io.Writer) (int64, error) {
	dl := downloadable(msg)
	if dl == nil {
		return 0, fmt.Errorf("%w: the message has no file", ErrNoMedia)
	}
	b, err := s.media.lookup(dl.GetDirectPath())
	if err != nil {
		return 0, err
	}
	open := func() (io.ReadCloser, error) { return os.Open(b.file) }
	n, err := decryptMedia(dl.GetMediaKey(), whatsmeow.GetMediaType(dl), dl.GetFileEncSHA256(), dl.GetFileSHA256(), b.size, open, w)
	if err != nil {
		return n, err
	}
	if sized, ok := dl.(interface{ GetFileLength() uint64 }); ok && sized.GetFileLength() != uint64(n) {
		return n, fmt.Errorf("file length %d, the message says %d", n, sized.GetFileLength())
	}
	return n, nil
}

// Download is DownloadTo into memory.
func (s *Server) Download(msg *waE2E.Message) ([]byte, error) {
	var buf bytes.Buffer
	_, err := s.DownloadTo(msg, &buf)
	return buf.Bytes(), err
}

// mediaRetryKey is the key of media retry receipts and notifications.
func mediaRetryKey(mediaKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, mediaKey, nil, "WhatsApp Media Retry Notification", 32)
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// answerMediaRetry handles a media retry receipt (type server-error): the
// client could not download the media of message id. The phone that has
// the message (its sender's, or the account's own for its own messages)
// checks the encrypted request with the media key, uploads the file again
// and answers with a mediaretry notification carrying the new direct path;
// or with an error code 2 when it does not have the media.
func (s *Server) answerMediaRetry(acc *Account, dev *companion, node *waBinary.Node) error {
	id := node.AttrGetter().OptionalString("id")
	s.media.mu.Lock()
	silent := s.media.silent
	s.media.mu.Unlock()
	if silent {
		return errors.New("media retries are ignored")
	}
	rmr, ok := node.GetOptionalChildByTag("rmr")
	if !ok {
		return errors.New("media retry receipt without rmr")
	}
	rag := rmr.AttrGetter()
	chat := rag.OptionalJIDOrEmpty("jid")
	fromMe := rag.OptionalBool("from_me")
	participant := rag.OptionalJIDOrEmpty("participant")
	msg := s.findMessage(acc, chat, participant, fromMe, id)
	notif := waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"id": id, "type": "mediaretry", "from": acc.JID, "t": time.Now().Unix(),
	}}
	rmrOut := waBinary.Node{Tag: "rmr", Attrs: waBinary.Attrs{"jid": chat, "from_me": fromMe}}
	if !participant.IsEmpty() {
		rmrOut.Attrs["participant"] = participant
	}
	dl := downloadable(msg)
	var newPath string
	var err error
	if dl != nil {
		err = checkRetryRequest(node, id, dl.GetMediaKey())
		if err == nil {
			newPath, err = s.media.reupload(dl.GetDirectPath())
		}
	}
	if dl == nil || err != nil {
		notif.Content = []waBinary.Node{rmrOut, {Tag: "error", Attrs: waBinary.Attrs{"code": 2}}}
		s.pushToDevice(dev, notif)
		if err != nil {
			return err
		}
		return ErrNoSuchMessage
	}
	plain, err := proto.Marshal(&waMmsRetry.MediaRetryNotification{
		StanzaID: proto.String(id), DirectPath: proto.String(newPath),
		Result: waMmsRetry.MediaRetryNotification_SUCCESS.Enum(),
	})
	if err != nil {
		return err
	}
	key, err := mediaRetryKey(dl.GetMediaKey())
	if err != nil {
		return err
	}
	aead, err := gcm(key)
	if err != nil {
		return err
	}
	iv := random.Bytes(12)
	notif.Content = []waBinary.Node{rmrOut, {Tag: "encrypt", Content: []waBinary.Node{
		{Tag: "enc_p", Content: aead.Seal(nil, iv, plain, []byte(id))},
		{Tag: "enc_iv", Content: iv},
	}}}
	s.pushToDevice(dev, notif)
	s.media.mu.Lock()
	s.media.retries++
	s.media.mu.Unlock()
	return nil
}

// checkRetryRequest decrypts the receipt's encrypted request with the media
// key: only someone who has the message can ask for its media again.
func checkRetryRequest(node *waBinary.Node, id string, mediaKey []byte) error {
	enc, ok := node.GetOptionalChildByTag("encrypt")
	if !ok {
		return errors.New("media retry receipt without encrypt")
	}
	ct, _ := enc.GetChildByTag("enc_p").Content.([]byte)
	iv, _ := enc.GetChildByTag("enc_iv").Content.([]byte)
	key, err := mediaRetryKey(mediaKey)
	if err != nil {
		return err
	}
	aead, err := gcm(key)
	if err != nil {
		return err
	}
	if len(iv) != aead.NonceSize() {
		return errors.New("bad media retry IV")
	}
	plain, err := aead.Open(nil, iv, ct, []byte(id))
	if err != nil {
		return fmt.Errorf("failed to decrypt media retry request: %w", err)
	}
	var req waMmsRetry.ServerErrorReceipt
	if err = proto.Unmarshal(plain, &req); err != nil {
		return err
	} else if req.GetStanzaID() != id {
		return fmt.Errorf("media retry request for %q in receipt %q", req.GetStanzaID(), id)
	}
	return nil
}

// findMessage finds the message id of a chat as the account's phone has it.
func (s *Server) findMessage(acc *Account, chat, participant types.JID, fromMe bool, id string) *waE2E.Message {
	sender := acc
	if !fromMe {
		sender = s.accountByJID(chat)
		if !participant.IsEmpty() {
			sender = s.accountByJID(participant)
		}
	}
	if sender != nil {
		s.mu.Lock()
		sent := sender.sent[id]
		s.mu.Unlock()
		if sent != nil {
			var msg waE2E.Message
			if proto.Unmarshal(sent.plaintext, &msg) == nil {
				return &msg
			}
		}
	}
	for _, m := range s.Messages() {
		if m.ID == id && m.From == acc.Phone {
			return m.Message
		}
	}
	return nil
}

// MediaRetries returns how many media retry receipts the simulated phones
// answered with a new upload.
func (s *Server) MediaRetries() int {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	return s.media.retries
}
