package tgsim

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // photo sizes
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"
	"slices"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

var (
	errMediaInvalid = tgerr.New(400, "MEDIA_INVALID")
	errMediaEmpty   = tgerr.New(400, "MEDIA_EMPTY")
)

// mediaObj is a photo or document stored on the server, with the file
// reference clients must present to download it. A location, contact or poll
// has no file: only tmpl.
type mediaObj struct {
	id, accessHash int64
	ref            []byte
	blob           *blob
	thumb          *blob // size "m", if any
	photo          bool
	// tmpl is the TL encoding of the MessageMedia; render decodes a fresh
	// copy and sets the current file reference.
	tmpl []byte
	info MediaInfo
	// votes of a poll: options chosen by each voter, in voting order.
	votes     map[int64][][]byte
	voteOrder []int64
}

// MediaInfo describes the media of a message, as stored by the server.
type MediaInfo struct {
	// Kind is "photo", "document", "geo", "venue", "geo_live", "contact" or
	// "poll".
	Kind string
	// For photos and documents: the file's size, MIME type and name
	// (documentAttributeFilename), and the document attributes.
	Size       int64
	MIME       string
	Name       string
	Attributes []tg.DocumentAttributeClass
	// Width and Height of a photo.
	Width, Height int
	// Media is the message media as the recipient sees it (a copy).
	Media tg.MessageMediaClass
}

func encodeTL(e bin.Encoder) []byte {
	var b bin.Buffer
	if err := e.Encode(&b); err != nil {
		panic(fmt.Sprintf("tgsim: encode %T: %v", e, err))
	}
	return append([]byte(nil), b.Buf...)
}

// render decodes a fresh MessageMedia with the current file reference.
func (o *mediaObj) render() tg.MessageMediaClass { return o.renderFor(0) }

// renderFor is render as viewer sees it: a poll's results show which
// options viewer chose.
func (o *mediaObj) renderFor(viewer int64) tg.MessageMediaClass {
	m, err := tg.DecodeMessageMedia(&bin.Buffer{Buf: o.tmpl})
	if err != nil {
		panic(fmt.Sprintf("tgsim: decode stored media: %v", err))
	}
	switch v := m.(type) {
	case *tg.MessageMediaPhoto:
		if p, ok := v.Photo.(*tg.Photo); ok {
			p.FileReference = append([]byte(nil), o.ref...)
		}
	case *tg.MessageMediaDocument:
		if d, ok := v.Document.(*tg.Document); ok {
			d.FileReference = append([]byte(nil), o.ref...)
		}
	case *tg.MessageMediaPoll:
		v.Results = o.pollResults(&v.Poll, viewer)
	}
	return m
}

// pollResults counts the votes as viewer sees them.
func (o *mediaObj) pollResults(poll *tg.Poll, viewer int64) tg.PollResults {
	var res tg.PollResults
	if len(o.votes) == 0 {
		return res
	}
	for _, a := range poll.Answers {
		ans, ok := a.(*tg.PollAnswer)
		if !ok {
			continue
		}
		av := tg.PollAnswerVoters{Option: ans.Option}
		for voter, opts := range o.votes {
			for _, opt := range opts {
				if bytes.Equal(opt, ans.Option) {
					av.Voters++
					if voter == viewer {
						av.SetChosen(true)
					}
				}
			}
		}
		res.Results = append(res.Results, av)
	}
	res.SetResults(res.Results)
	res.SetTotalVoters(len(o.votes))
	if poll.PublicVoters {
		var recent []tg.PeerClass
		for _, voter := range o.voteOrder {
			recent = append(recent, &tg.PeerUser{UserID: voter})
		}
		res.SetRecentVoters(recent)
	}
	return res
}

var errOptionsInvalid = tgerr.New(400, "OPTIONS_INVALID")

// voteLocked records voter's choice on the poll of a stored message and
// pushes the new results to both participants; an empty choice retracts.
func (s *Server) voteLocked(voter int64, m *stored, options [][]byte) (*tg.UpdateMessagePoll, error) {
	o := m.media
	if o == nil || o.info.Kind != "poll" {
		return nil, errMediaInvalid
	}
	mp := o.render().(*tg.MessageMediaPoll)
	valid := map[string]bool{}
	for _, a := range mp.Poll.Answers {
		if ans, ok := a.(*tg.PollAnswer); ok {
			valid[string(ans.Option)] = true
		}
	}
	if len(options) > 1 && !mp.Poll.MultipleChoice {
		return nil, errOptionsInvalid
	}
	for _, opt := range options {
		if !valid[string(opt)] {
			return nil, errOptionsInvalid
		}
	}
	if o.votes == nil {
		o.votes = map[int64][][]byte{}
	}
	if len(options) == 0 {
		delete(o.votes, voter)
		o.voteOrder = slices.DeleteFunc(o.voteOrder, func(id int64) bool { return id == voter })
	} else {
		if _, again := o.votes[voter]; !again {
			o.voteOrder = append(o.voteOrder, voter)
		}
		o.votes[voter] = options
	}
	var mine *tg.UpdateMessagePoll
	for _, viewer := range []int64{m.from, m.to} {
		id := m.fromID
		if viewer == m.to {
			id = m.toID
		}
		u := &tg.UpdateMessagePoll{PollID: mp.Poll.ID, Results: o.pollResults(&mp.Poll, viewer)}
		u.SetPeer(&tg.PeerUser{UserID: peerOf(m, viewer)})
		u.SetMsgID(id)
		u.SetPoll(mp.Poll)
		if viewer == voter {
			mine = u
		}
		s.pushToUserLocked(viewer, 0, &tg.Updates{Updates: []tg.UpdateClass{u}, Users: s.tgUsersLocked(viewer, m.from, m.to), Date: int(time.Now().Unix())})
		if m.from == m.to {
			break
		}
	}
	return mine, nil
}

func (s *Server) messagesSendVote(ctx context.Context, req *tg.MessagesSendVoteRequest) (tg.UpdatesClass, error) {
	return withPeer(s, ctx, req.Peer, func(_ *request, self, _ *user) (tg.UpdatesClass, error) {
		if req.MsgID <= 0 || req.MsgID > len(self.box) {
			return nil, tgerr.New(400, "MSG_ID_INVALID")
		}
		u, err := s.voteLocked(self.acc.ID, self.box[req.MsgID-1].msg, req.Options)
		if err != nil {
			return nil, err
		}
		return &tg.Updates{Updates: []tg.UpdateClass{u}, Date: int(time.Now().Unix())}, nil
	})
}

// VotePoll makes voter vote on the poll of message m (answers by index,
// none to retract), as if voter's phone did; both participants get the new
// results.
func (s *Server) VotePoll(voter int64, m Message, answers ...int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[voter]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, voter)
	}
	id := m.IDFor(voter)
	if id <= 0 || id > len(u.box) {
		return fmt.Errorf("tgsim: message %d is not in %d's history", m.ID, voter)
	}
	st := u.box[id-1].msg
	if st.media == nil || st.media.info.Kind != "poll" {
		return fmt.Errorf("tgsim: message %d is not a poll", m.ID)
	}
	mp := st.media.render().(*tg.MessageMediaPoll)
	var opts [][]byte
	for _, i := range answers {
		if i < 0 || i >= len(mp.Poll.Answers) {
			return fmt.Errorf("tgsim: poll has no answer %d", i)
		}
		opts = append(opts, mp.Poll.Answers[i].(*tg.PollAnswer).Option)
	}
	_, err := s.voteLocked(voter, st, opts)
	return err
}

func (o *mediaObj) snapshot(viewer int64) *MediaInfo {
	info := o.info
	info.Media = o.renderFor(viewer)
	if len(o.info.Attributes) > 0 {
		if d, ok := info.Media.(*tg.MessageMediaDocument); ok {
			info.Attributes = d.Document.(*tg.Document).Attributes
		}
	}
	return &info
}

func attrFileName(attrs []tg.DocumentAttributeClass) string {
	for _, a := range attrs {
		if f, ok := a.(*tg.DocumentAttributeFilename); ok {
			return f.FileName
		}
	}
	return ""
}

// setThumb gives a photo or document a smaller size "m" (a thumbnail)
// stored in b.
func (o *mediaObj) setThumb(b *blob) {
	w, h := imageSize(b)
	size := &tg.PhotoSize{Type: "m", W: w, H: h, Size: int(b.size)}
	m := o.render()
	switch v := m.(type) {
	case *tg.MessageMediaPhoto:
		p := v.Photo.(*tg.Photo)
		p.Sizes = append([]tg.PhotoSizeClass{size}, p.Sizes...)
	case *tg.MessageMediaDocument:
		v.Document.(*tg.Document).SetThumbs([]tg.PhotoSizeClass{size})
	default:
		return
	}
	o.tmpl = encodeTL(m)
	o.thumb = b
}

func imageSize(b *blob) (w, h int) {
	if f, err := b.open(); err == nil {
		if cfg, _, err := image.DecodeConfig(f); err == nil {
			w, h = cfg.Width, cfg.Height
		}
		_ = f.Close()
	}
	return w, h
}

// newPhotoLocked registers an uploaded photo.
func (s *Server) newPhotoLocked(b *blob) *mediaObj {
	w, h := imageSize(b)
	o := &mediaObj{id: randInt64(), accessHash: randInt64(), ref: randBytes(16), blob: b, photo: true}
	photo := &tg.Photo{ID: o.id, AccessHash: o.accessHash, Date: int(time.Now().Unix()), DCID: s.dc,
		Sizes: []tg.PhotoSizeClass{&tg.PhotoSize{Type: "x", W: w, H: h, Size: int(b.size)}}}
	mm := &tg.MessageMediaPhoto{}
	mm.SetPhoto(photo)
	o.tmpl = encodeTL(mm)
	o.info = MediaInfo{Kind: "photo", Size: b.size, MIME: "image/jpeg", Width: w, Height: h}
	s.st.media[o.id] = o
	return o
}

// newDocumentLocked registers an uploaded document.
func (s *Server) newDocumentLocked(b *blob, mime string, attrs []tg.DocumentAttributeClass) *mediaObj {
	if mime == "" {
		mime = "application/octet-stream"
	}
	o := &mediaObj{id: randInt64(), accessHash: randInt64(), ref: randBytes(16), blob: b}
	doc := &tg.Document{ID: o.id, AccessHash: o.accessHash, Date: int(time.Now().Unix()), MimeType: mime,
		Size: b.size, DCID: s.dc, Attributes: attrs}
	mm := &tg.MessageMediaDocument{}
	mm.SetDocument(doc)
	for _, a := range attrs {
		switch v := a.(type) {
		case *tg.DocumentAttributeAudio:
			if v.Voice {
				mm.SetVoice(true)
			}
		case *tg.DocumentAttributeVideo:
			if v.RoundMessage {
				mm.SetRound(true)
			} else {
				mm.SetVideo(true)
			}
		}
	}
	o.tmpl = encodeTL(mm)
	o.info = MediaInfo{Kind: "document", Size: b.size, MIME: mime, Name: attrFileName(attrs), Attributes: attrs}
	s.st.media[o.id] = o
	return o
}

// plainMedia wraps a file-less media (location, contact, poll).
func plainMedia(kind string, mm tg.MessageMediaClass) *mediaObj {
	return &mediaObj{tmpl: encodeTL(mm), info: MediaInfo{Kind: kind}}
}

// inputMediaLocked turns what a client sends into stored media. Uploaded
// files must have been finished (outside the lock) into blobs first.
func (s *Server) inputMediaLocked(self *user, in tg.InputMediaClass, uploaded *blob) (*mediaObj, error) {
	switch v := in.(type) {
	case *tg.InputMediaUploadedPhoto:
		if uploaded == nil {
			return nil, errMediaInvalid
		}
		return s.newPhotoLocked(uploaded), nil
	case *tg.InputMediaUploadedDocument:
		if uploaded == nil {
			return nil, errMediaInvalid
		}
		return s.newDocumentLocked(uploaded, v.MimeType, v.Attributes), nil
	case *tg.InputMediaPhoto:
		p, ok := v.ID.(*tg.InputPhoto)
		if !ok {
			return nil, errMediaEmpty
		}
		o, ok := s.st.media[p.ID]
		if !ok || !o.photo || o.accessHash != p.AccessHash {
			return nil, errMediaInvalid
		}
		if !bytes.Equal(p.FileReference, o.ref) {
			return nil, errFileRefExpired
		}
		return o, nil
	case *tg.InputMediaDocument:
		d, ok := v.ID.(*tg.InputDocument)
		if !ok {
			return nil, errMediaEmpty
		}
		o, ok := s.st.media[d.ID]
		if !ok || o.photo || o.accessHash != d.AccessHash {
			return nil, errMediaInvalid
		}
		if !bytes.Equal(d.FileReference, o.ref) {
			return nil, errFileRefExpired
		}
		return o, nil
	case *tg.InputMediaGeoPoint:
		geo, err := geoPoint(v.GeoPoint)
		if err != nil {
			return nil, err
		}
		return plainMedia("geo", &tg.MessageMediaGeo{Geo: geo}), nil
	case *tg.InputMediaVenue:
		geo, err := geoPoint(v.GeoPoint)
		if err != nil {
			return nil, err
		}
		return plainMedia("venue", &tg.MessageMediaVenue{Geo: geo, Title: v.Title, Address: v.Address,
			Provider: v.Provider, VenueID: v.VenueID, VenueType: v.VenueType}), nil
	case *tg.InputMediaGeoLive:
		geo, err := geoPoint(v.GeoPoint)
		if err != nil {
			return nil, err
		}
		live := &tg.MessageMediaGeoLive{Geo: geo}
		if p, ok := v.GetPeriod(); ok {
			live.Period = p
		}
		return plainMedia("geo_live", live), nil
	case *tg.InputMediaContact:
		mc := &tg.MessageMediaContact{PhoneNumber: v.PhoneNumber, FirstName: v.FirstName, LastName: v.LastName, Vcard: v.Vcard}
		if u, ok := s.st.byPhone[NormalizePhone(v.PhoneNumber)]; ok {
			mc.UserID = u.acc.ID
		}
		return plainMedia("contact", mc), nil
	case *tg.InputMediaPoll:
		if len(v.Poll.Answers) < 2 || len(v.Poll.Answers) > 12 || v.Poll.Question.Text == "" {
			return nil, tgerr.New(400, "POLL_ANSWERS_INVALID")
		}
		poll := v.Poll
		poll.ID = randInt64()
		mp := &tg.MessageMediaPoll{Poll: poll, Results: tg.PollResults{}}
		return plainMedia("poll", mp), nil
	}
	return nil, errMediaInvalid
}

func geoPoint(in tg.InputGeoPointClass) (*tg.GeoPoint, error) {
	p, ok := in.(*tg.InputGeoPoint)
	if !ok || p.Lat < -90 || p.Lat > 90 || p.Long < -180 || p.Long > 180 {
		return nil, tgerr.New(400, "GEO_POINT_INVALID")
	}
	return &tg.GeoPoint{Lat: p.Lat, Long: p.Long, AccessHash: randInt64()}, nil
}

// uploadedFile is the InputFile of a media that uploads one, if any.
func uploadedFile(in tg.InputMediaClass) tg.InputFileClass {
	switch v := in.(type) {
	case *tg.InputMediaUploadedPhoto:
		return v.File
	case *tg.InputMediaUploadedDocument:
		return v.File
	}
	return nil
}

// finishUpload turns the media's uploaded file, if any, into a blob.
func (s *Server) finishUpload(ctx context.Context, in tg.InputMediaClass) (*blob, error) {
	f := uploadedFile(in)
	if f == nil {
		return nil, nil
	}
	self, err := s.self(ctx)
	if err != nil {
		return nil, err
	}
	b, _, err := s.files.finish(self.acc.ID, f)
	return b, err
}

func (s *Server) messagesUploadMedia(ctx context.Context, req *tg.MessagesUploadMediaRequest) (tg.MessageMediaClass, error) {
	b, err := s.finishUpload(ctx, req.Media)
	if err != nil {
		return nil, err
	}
	return withPeer(s, ctx, req.Peer, func(_ *request, self, _ *user) (tg.MessageMediaClass, error) {
		o, err := s.inputMediaLocked(self, req.Media, b)
		if err != nil {
			return nil, err
		}
		return o.render(), nil
	})
}

func (s *Server) messagesSendMedia(ctx context.Context, req *tg.MessagesSendMediaRequest) (tg.UpdatesClass, error) {
	if _, ok := req.Peer.(*tg.InputPeerChat); ok {
		return s.chatSendMedia(ctx, req)
	}
	b, err := s.finishUpload(ctx, req.Media)
	if err != nil {
		return nil, err
	}
	return withPeer(s, ctx, req.Peer, func(r *request, self, peer *user) (tg.UpdatesClass, error) {
		if len([]rune(req.Message)) > captionLengthMax {
			return nil, tgerr.New(400, "MEDIA_CAPTION_TOO_LONG")
		}
		entry, _, err := s.sendOnceLocked(self, r, req.RandomID, func() (*stored, error) {
			o, err := s.inputMediaLocked(self, req.Media, b)
			if err != nil {
				return nil, err
			}
			m := s.deliverLocked(self, peer, req.Message, req.Entities, true)
			m.media = o
			m.replyTo, m.quote = replyTargetLocked(self, peer, req.ReplyTo)
			return m, nil
		})
		if err != nil {
			return nil, err
		}
		return &tg.Updates{
			Updates: []tg.UpdateClass{
				&tg.UpdateMessageID{ID: entry.id, RandomID: req.RandomID},
				&tg.UpdateNewMessage{Message: s.tgMessageLocked(entry.msg, self.acc.ID), Pts: entry.pts, PtsCount: 1},
			},
			Users: s.tgUsersLocked(self.acc.ID, entry.msg.from, entry.msg.to),
			Date:  int(entry.msg.date.Unix()),
		}, nil
	})
}

// messagesGetMessages returns messages of the caller's private history by
// ID, with current file references.
func (s *Server) messagesGetMessages(ctx context.Context, ids []tg.InputMessageClass) (tg.MessagesMessagesClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (tg.MessagesMessagesClass, error) {
		out := &tg.MessagesMessages{}
		users := []int64{self.acc.ID}
		for _, in := range ids {
			v, ok := in.(*tg.InputMessageID)
			if !ok || v.ID <= 0 || v.ID > len(self.box) {
				out.Messages = append(out.Messages, &tg.MessageEmpty{ID: 0})
				continue
			}
			e := self.box[v.ID-1]
			if e.msg.goneFor(self.acc.ID) {
				out.Messages = append(out.Messages, &tg.MessageEmpty{ID: v.ID})
				continue
			}
			out.Messages = append(out.Messages, s.tgMessageLocked(e.msg, self.acc.ID))
			users = append(users, peerOf(e.msg, self.acc.ID))
		}
		out.Users = s.tgUsersLocked(self.acc.ID, users...)
		return out, nil
	})
}

func (s *Server) uploadSaveFilePart(ctx context.Context, req *tg.UploadSaveFilePartRequest) (bool, error) {
	self, err := s.self(ctx)
	if err != nil {
		return false, err
	}
	if err := s.files.savePart(self.acc.ID, req.FileID, req.FilePart, 0, false, req.Bytes); err != nil {
		return false, err
	}
	return true, nil
}

func (s *Server) uploadSaveBigFilePart(ctx context.Context, req *tg.UploadSaveBigFilePartRequest) (bool, error) {
	self, err := s.self(ctx)
	if err != nil {
		return false, err
	}
	if err := s.files.savePart(self.acc.ID, req.FileID, req.FilePart, req.FileTotalParts, true, req.Bytes); err != nil {
		return false, err
	}
	return true, nil
}

func (s *Server) uploadGetFile(ctx context.Context, req *tg.UploadGetFileRequest) (tg.UploadFileClass, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	if _, err := s.selfLocked(r); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	var (
		id, hash int64
		ref      []byte
		photo    bool
		size     string
	)
	switch loc := req.Location.(type) {
	case *tg.InputPhotoFileLocation:
		id, hash, ref, photo, size = loc.ID, loc.AccessHash, loc.FileReference, true, loc.ThumbSize
	case *tg.InputDocumentFileLocation:
		id, hash, ref, size = loc.ID, loc.AccessHash, loc.FileReference, loc.ThumbSize
	case *tg.InputPeerPhotoFileLocation:
		// By peer and photo ID: no file reference.
		self, _ := s.selfLocked(r)
		o, err := s.peerPhotoLocked(self, loc)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		id, hash, ref, photo = o.id, o.accessHash, o.ref, true
	default:
		s.mu.Unlock()
		return nil, errLocationInvalid
	}
	o, ok := s.st.media[id]
	if !ok || o.photo != photo || o.accessHash != hash || o.blob == nil {
		s.mu.Unlock()
		return nil, errLocationInvalid
	}
	if !bytes.Equal(ref, o.ref) {
		s.mu.Unlock()
		return nil, errFileRefExpired
	}
	b := o.blob
	if size == "m" {
		b = o.thumb
	} else if size != "" && (!photo || size != "x") {
		b = nil
	}
	s.mu.Unlock()
	if b == nil {
		return nil, errLocationInvalid
	}
	data, err := b.read(req.Offset, req.Limit)
	if err != nil {
		return nil, err
	}
	var typ tg.StorageFileTypeClass = &tg.StorageFileUnknown{}
	if photo {
		typ = &tg.StorageFileJpeg{}
	}
	return &tg.UploadFile{Type: typ, Mtime: int(time.Now().Unix()), Bytes: data}, nil
}

// ExpireFileReferences gives every stored photo and document a new file
// reference: downloads with an older one fail with FILE_REFERENCE_EXPIRED
// until the client fetches the message again (messages.getMessages).
func (s *Server) ExpireFileReferences() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.st.media {
		o.ref = randBytes(16)
	}
}

// MediaSpec is media a contact sends with SendMedia. Kind picks the form;
// only the fields of that kind are used.
type MediaSpec struct {
	// Kind: "photo", "document", "video", "gif", "voice", "audio",
	// "sticker", "geo", "venue", "geo_live", "contact" or "poll".
	Kind string
	// Data is the file (photo and document kinds); Reader, if set, is used
	// instead, for big files.
	Data   []byte
	Reader io.Reader
	// Thumb, if set, is a smaller image served as size "m" (photos and
	// documents).
	Thumb []byte
	// Name and MIME of a document.
	Name string
	MIME string
	// Caption and its entities.
	Caption  string
	Entities []tg.MessageEntityClass
	// Video/animation/audio details.
	Width, Height int
	Duration      int
	Waveform      []byte // voice: Telegram's packed 5-bit waveform
	Title         string // audio title, venue title
	Performer     string
	Emoji         string // sticker alt
	// Locations.
	Lat, Long  float64
	Address    string
	LivePeriod int
	// Contact.
	Phone, FirstName, LastName, VCard string
	// Poll.
	Question string
	Answers  []string
	Multiple bool
}

// documentAttrs builds the attributes of a document kind.
func (m MediaSpec) documentAttrs() (mime string, attrs []tg.DocumentAttributeClass) {
	mime = m.MIME
	if m.Name != "" {
		attrs = append(attrs, &tg.DocumentAttributeFilename{FileName: m.Name})
	}
	switch m.Kind {
	case "video", "gif":
		v := &tg.DocumentAttributeVideo{Duration: float64(m.Duration), W: m.Width, H: m.Height}
		v.SetSupportsStreaming(true)
		attrs = append(attrs, v)
		if m.Kind == "gif" {
			attrs = append(attrs, &tg.DocumentAttributeAnimated{})
		}
		if mime == "" {
			mime = "video/mp4"
		}
	case "voice", "audio":
		a := &tg.DocumentAttributeAudio{Duration: m.Duration}
		if m.Kind == "voice" {
			a.SetVoice(true)
			if len(m.Waveform) > 0 {
				a.SetWaveform(m.Waveform)
			}
			if mime == "" {
				mime = "audio/ogg"
			}
		} else {
			if m.Title != "" {
				a.SetTitle(m.Title)
			}
			if m.Performer != "" {
				a.SetPerformer(m.Performer)
			}
			if mime == "" {
				mime = "audio/mpeg"
			}
		}
		attrs = append(attrs, a)
	case "sticker":
		attrs = append(attrs, &tg.DocumentAttributeSticker{Alt: m.Emoji, Stickerset: &tg.InputStickerSetEmpty{}})
		if m.Width > 0 {
			attrs = append(attrs, &tg.DocumentAttributeImageSize{W: m.Width, H: m.Height})
		}
		if mime == "video/webm" {
			attrs = append(attrs, &tg.DocumentAttributeVideo{Duration: float64(m.Duration), W: m.Width, H: m.Height})
		}
		if mime == "" {
			mime = "image/webp"
		}
	}
	return mime, attrs
}

// SendMedia makes from send media to to, as if from's phone sent it: files
// are stored on the server, the message is stored in both histories and
// pushed like SendMessage.
func (s *Server) SendMedia(from, to int64, spec MediaSpec) (Message, error) {
	if s.isClosed() {
		return Message{}, ErrClosed
	}
	ents, err := cloneEntities(spec.Entities)
	if err != nil {
		return Message{}, err
	}
	var b *blob
	switch spec.Kind {
	case "photo", "document", "video", "gif", "voice", "audio", "sticker":
		r := spec.Reader
		if r == nil {
			r = bytes.NewReader(spec.Data)
		}
		if b, err = s.files.put(r); err != nil {
			return Message{}, err
		}
	}
	var thumb *blob
	if len(spec.Thumb) > 0 && b != nil {
		if thumb, err = s.files.put(bytes.NewReader(spec.Thumb)); err != nil {
			return Message{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fu, ok := s.st.users[from]
	if !ok {
		return Message{}, fmt.Errorf("%w: %d", ErrNoAccount, from)
	}
	tu, ok := s.st.users[to]
	if !ok {
		return Message{}, fmt.Errorf("%w: %d", ErrNoAccount, to)
	}
	var in tg.InputMediaClass
	switch spec.Kind {
	case "photo":
		in = &tg.InputMediaUploadedPhoto{}
	case "document", "video", "gif", "voice", "audio", "sticker":
		mime, attrs := spec.documentAttrs()
		in = &tg.InputMediaUploadedDocument{MimeType: mime, Attributes: attrs}
	case "geo":
		in = &tg.InputMediaGeoPoint{GeoPoint: &tg.InputGeoPoint{Lat: spec.Lat, Long: spec.Long}}
	case "venue":
		in = &tg.InputMediaVenue{GeoPoint: &tg.InputGeoPoint{Lat: spec.Lat, Long: spec.Long}, Title: spec.Title, Address: spec.Address, Provider: "foursquare"}
	case "geo_live":
		live := &tg.InputMediaGeoLive{GeoPoint: &tg.InputGeoPoint{Lat: spec.Lat, Long: spec.Long}}
		live.SetPeriod(max(spec.LivePeriod, 60))
		in = live
	case "contact":
		in = &tg.InputMediaContact{PhoneNumber: spec.Phone, FirstName: spec.FirstName, LastName: spec.LastName, Vcard: spec.VCard}
	case "poll":
		poll := tg.Poll{Question: tg.TextWithEntities{Text: spec.Question}}
		poll.SetMultipleChoice(spec.Multiple)
		for i, a := range spec.Answers {
			poll.Answers = append(poll.Answers, &tg.PollAnswer{Text: tg.TextWithEntities{Text: a}, Option: []byte{byte('0' + i)}})
		}
		in = &tg.InputMediaPoll{Poll: poll}
	default:
		if b != nil {
			_ = os.Remove(b.path)
		}
		return Message{}, fmt.Errorf("tgsim: unknown media kind %q", spec.Kind)
	}
	o, err := s.inputMediaLocked(fu, in, b)
	if err != nil {
		return Message{}, err
	}
	if thumb != nil {
		o.setThumb(thumb)
	}
	m := s.deliverLocked(fu, tu, spec.Caption, ents, false)
	m.media = o
	s.pushNewMessageLocked(m, 0)
	return s.messageLocked(m), nil
}

// OpenMedia opens the file of a message's photo or document for reading.
func (s *Server) OpenMedia(m Message) (io.ReadCloser, error) {
	if m.Media == nil {
		return nil, fmt.Errorf("tgsim: message %d has no media", m.ID)
	}
	s.mu.Lock()
	var o *mediaObj
	switch v := m.Media.Media.(type) {
	case *tg.MessageMediaPhoto:
		if p, ok := v.Photo.(*tg.Photo); ok {
			o = s.st.media[p.ID]
		}
	case *tg.MessageMediaDocument:
		if d, ok := v.Document.(*tg.Document); ok {
			o = s.st.media[d.ID]
		}
	}
	s.mu.Unlock()
	if o == nil || o.blob == nil {
		return nil, fmt.Errorf("tgsim: message %d has no file", m.ID)
	}
	return o.blob.open()
}

// MediaBytes reads the whole file of a message's photo or document.
func (s *Server) MediaBytes(m Message) ([]byte, error) {
	f, err := s.OpenMedia(m)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
