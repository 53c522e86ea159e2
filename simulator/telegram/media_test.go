package tgsim_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/gotd/td/telegram/downloader"
	"github.com/gotd/td/telegram/uploader"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/passerelle/passerelle/bridges/media/mediatest"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func download(ctx context.Context, t *testing.T, c *testClient, loc tg.InputFileLocationClass) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	_, err := downloader.NewDownloader().Download(c.api(), loc).Stream(ctx, &buf)
	return buf.Bytes(), err
}

func pngImage(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestClientSendsMedia: a real gotd client uploads files whose size is not a
// multiple of the part size (small and big uploads) and sends them; the peer
// receives the same bytes, name, type and attributes.
func TestClientSendsMedia(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	c, me, peer := loggedInClient(t, s)
	inputPeer := &tg.InputPeerUser{UserID: peer.ID, AccessHash: peer.AccessHash}
	up := uploader.NewUploader(c.api())

	tests := []struct {
		name  string
		size  int
		media func(f tg.InputFileClass) tg.InputMediaClass
		check func(t *testing.T, m tgsim.Message)
	}{
		{"small document, short last part", 300_001, func(f tg.InputFileClass) tg.InputMediaClass {
			return &tg.InputMediaUploadedDocument{File: f, MimeType: "application/pdf",
				Attributes: []tg.DocumentAttributeClass{&tg.DocumentAttributeFilename{FileName: "report.pdf"}}}
		}, func(t *testing.T, m tgsim.Message) {
			if m.Media.Name != "report.pdf" || m.Media.MIME != "application/pdf" || m.Text != "the report" {
				t.Errorf("received %+v with caption %q", m.Media, m.Text)
			}
		}},
		{"big document", 10<<20 + 12_345, func(f tg.InputFileClass) tg.InputMediaClass {
			if _, big := f.(*tg.InputFileBig); !big {
				t.Errorf("uploader did not use saveBigFilePart for %T", f)
			}
			return &tg.InputMediaUploadedDocument{File: f, MimeType: "video/mp4",
				Attributes: []tg.DocumentAttributeClass{&tg.DocumentAttributeFilename{FileName: "big.mp4"}, &tg.DocumentAttributeVideo{W: 640, H: 480, Duration: 3}}}
		}, func(t *testing.T, m tgsim.Message) {
			d := m.Media.Media.(*tg.MessageMediaDocument)
			if !d.Video || m.Media.Size != 10<<20+12_345 {
				t.Errorf("big video media %+v", m.Media)
			}
		}},
		{"voice with waveform", 4_000, func(f tg.InputFileClass) tg.InputMediaClass {
			a := &tg.DocumentAttributeAudio{Voice: true, Duration: 7}
			a.SetWaveform([]byte{1, 2, 3, 4, 5})
			return &tg.InputMediaUploadedDocument{File: f, MimeType: "audio/ogg", Attributes: []tg.DocumentAttributeClass{a}}
		}, func(t *testing.T, m tgsim.Message) {
			d := m.Media.Media.(*tg.MessageMediaDocument)
			a, ok := m.Media.Attributes[0].(*tg.DocumentAttributeAudio)
			if !d.Voice || !ok || !a.Voice || a.Duration != 7 || !bytes.Equal(a.Waveform, []byte{1, 2, 3, 4, 5}) {
				t.Errorf("voice media %+v", m.Media)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := mediatest.PatternBytes(tt.size, uint64(i+1))
			f, err := up.Upload(ctx, uploader.NewUpload("x", bytes.NewReader(data), int64(len(data))))
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			caption := ""
			if i == 0 {
				caption = "the report"
			}
			res, err := c.api().MessagesSendMedia(ctx, &tg.MessagesSendMediaRequest{Peer: inputPeer, Media: tt.media(f), Message: caption, RandomID: int64(100 + i)})
			if err != nil {
				t.Fatalf("sendMedia: %v", err)
			}
			upd := res.(*tg.Updates)
			sent := upd.Updates[0].(*tg.UpdateMessageID)
			got, err := s.WaitMessage(ctx, me.ID, peer.ID, func(m tgsim.Message) bool { return m.SenderMsgID == sent.ID })
			if err != nil || got.Media == nil {
				t.Fatalf("peer got %+v, %v", got, err)
			}
			if b, err := s.MediaBytes(got); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("peer's file differs (%d bytes, %v)", len(b), err)
			}
			tt.check(t, got)
		})
	}

	t.Run("uploaded photo has its size", func(t *testing.T) {
		data := pngImage(t, 33, 21)
		f, err := up.FromBytes(ctx, "p.png", data)
		if err != nil {
			t.Fatal(err)
		}
		mm, err := c.api().MessagesUploadMedia(ctx, &tg.MessagesUploadMediaRequest{Peer: inputPeer, Media: &tg.InputMediaUploadedPhoto{File: f}})
		if err != nil {
			t.Fatal(err)
		}
		photo := mm.(*tg.MessageMediaPhoto).Photo.(*tg.Photo)
		size := photo.Sizes[0].(*tg.PhotoSize)
		if size.W != 33 || size.H != 21 || size.Size != len(data) {
			t.Errorf("photo size %+v", size)
		}
		// sent by reference after uploadMedia, as clients do for albums
		_, err = c.api().MessagesSendMedia(ctx, &tg.MessagesSendMediaRequest{Peer: inputPeer, RandomID: 999,
			Media: &tg.InputMediaPhoto{ID: &tg.InputPhoto{ID: photo.ID, AccessHash: photo.AccessHash, FileReference: photo.FileReference}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.WaitMessage(ctx, me.ID, peer.ID, func(m tgsim.Message) bool { return m.Media != nil && m.Media.Kind == "photo" })
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := s.MediaBytes(got); !bytes.Equal(b, data) || got.Media.Width != 33 {
			t.Errorf("photo by reference: %d bytes, %+v", len(b), got.Media)
		}
	})

	t.Run("parts of different sizes are refused", func(t *testing.T) {
		for part, n := range []int{2048, 1024, 1024} {
			if _, err := c.api().UploadSaveFilePart(ctx, &tg.UploadSaveFilePartRequest{FileID: 77, FilePart: part, Bytes: make([]byte, n)}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.api().MessagesSendMedia(ctx, &tg.MessagesSendMediaRequest{Peer: inputPeer, RandomID: 5,
			Media: &tg.InputMediaUploadedDocument{File: &tg.InputFile{ID: 77, Parts: 3, Name: "x"}, MimeType: "text/plain"}})
		if !tgerr.Is(err, "FILE_PART_SIZE_CHANGED") {
			t.Errorf("sendMedia with uneven parts: %v", err)
		}
	})
}

// TestContactSendsMedia: what a contact sends reaches a real gotd client
// with downloadable files (photo and document locations with file
// references), and an expired file reference is refreshed through
// messages.getMessages.
func TestContactSendsMedia(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	c, me, peer := loggedInClient(t, s)

	photo := pngImage(t, 40, 30)
	voice := mediatest.PatternBytes(5_000, 3)
	if _, err := s.SendMedia(peer.ID, me.ID, tgsim.MediaSpec{Kind: "photo", Data: photo, Caption: "a photo"}); err != nil {
		t.Fatal(err)
	}
	m := c.nextMessage(ctx)
	p := m.Media.(*tg.MessageMediaPhoto).Photo.(*tg.Photo)
	if m.Message != "a photo" || p.Sizes[0].(*tg.PhotoSize).W != 40 {
		t.Errorf("photo message %+v", m)
	}
	loc := &tg.InputPhotoFileLocation{ID: p.ID, AccessHash: p.AccessHash, FileReference: p.FileReference, ThumbSize: "x"}
	if got, err := download(ctx, t, c, loc); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("photo download: %d bytes, %v", len(got), err)
	}

	if _, err := s.SendMedia(peer.ID, me.ID, tgsim.MediaSpec{Kind: "voice", Data: voice, Duration: 4, Waveform: []byte{9, 8, 7}}); err != nil {
		t.Fatal(err)
	}
	m = c.nextMessage(ctx)
	md := m.Media.(*tg.MessageMediaDocument)
	d := md.Document.(*tg.Document)
	a := d.Attributes[0].(*tg.DocumentAttributeAudio)
	if !md.Voice || !a.Voice || a.Duration != 4 || !bytes.Equal(a.Waveform, []byte{9, 8, 7}) || d.MimeType != "audio/ogg" {
		t.Errorf("voice %+v %+v", md, a)
	}
	dloc := &tg.InputDocumentFileLocation{ID: d.ID, AccessHash: d.AccessHash, FileReference: d.FileReference}
	if got, err := download(ctx, t, c, dloc); err != nil || !bytes.Equal(got, voice) {
		t.Fatalf("voice download: %d bytes, %v", len(got), err)
	}

	s.ExpireFileReferences()
	if _, err := download(ctx, t, c, dloc); !tgerr.Is(err, "FILE_REFERENCE_EXPIRED") {
		t.Fatalf("download with an expired reference: %v", err)
	}
	res, err := c.api().MessagesGetMessages(ctx, []tg.InputMessageClass{&tg.InputMessageID{ID: m.ID}})
	if err != nil {
		t.Fatal(err)
	}
	fresh := res.(*tg.MessagesMessages).Messages[0].(*tg.Message).Media.(*tg.MessageMediaDocument).Document.(*tg.Document)
	dloc.FileReference = fresh.FileReference
	if got, err := download(ctx, t, c, dloc); err != nil || !bytes.Equal(got, voice) {
		t.Fatalf("download after refresh: %d bytes, %v", len(got), err)
	}

	for _, spec := range []tgsim.MediaSpec{
		{Kind: "venue", Lat: 48.8584, Long: 2.2945, Title: "Tour Eiffel", Address: "Champ de Mars"},
		{Kind: "contact", Phone: "+33612345678", FirstName: "Jean", LastName: "Dupont"},
		{Kind: "poll", Question: "Lunch?", Answers: []string{"Yes", "No"}},
		{Kind: "sticker", Data: []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), Emoji: "👍", Width: 512, Height: 512},
	} {
		if _, err := s.SendMedia(peer.ID, me.ID, spec); err != nil {
			t.Fatal(err)
		}
		m := c.nextMessage(ctx)
		switch v := m.Media.(type) {
		case *tg.MessageMediaVenue:
			g := v.Geo.(*tg.GeoPoint)
			if spec.Kind != "venue" || g.Lat != 48.8584 || v.Title != "Tour Eiffel" {
				t.Errorf("venue %+v", v)
			}
		case *tg.MessageMediaContact:
			if spec.Kind != "contact" || v.PhoneNumber != "+33612345678" || v.FirstName != "Jean" {
				t.Errorf("contact %+v", v)
			}
		case *tg.MessageMediaPoll:
			if spec.Kind != "poll" || v.Poll.Question.Text != "Lunch?" || len(v.Poll.Answers) != 2 {
				t.Errorf("poll %+v", v)
			}
		case *tg.MessageMediaDocument:
			d := v.Document.(*tg.Document)
			var alt string
			for _, a := range d.Attributes {
				if st, ok := a.(*tg.DocumentAttributeSticker); ok {
					alt = st.Alt
				}
			}
			if spec.Kind != "sticker" || d.MimeType != "image/webp" || alt != "👍" {
				t.Errorf("sticker %+v", d)
			}
		default:
			t.Errorf("%s arrived as %T", spec.Kind, m.Media)
		}
	}
}

// TestPollVotes: a contact's vote reaches the client as updateMessagePoll
// with the counts; the client's own vote (messages.sendVote) is marked
// chosen for it and counted for the contact.
func TestPollVotes(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	c, me, peer := loggedInClient(t, s)
	sent, err := s.SendMedia(peer.ID, me.ID, tgsim.MediaSpec{Kind: "poll", Question: "Where?", Answers: []string{"Here", "There"}})
	if err != nil {
		t.Fatal(err)
	}
	m := c.nextMessage(ctx)
	if err := s.VotePoll(peer.ID, sent, 1); err != nil {
		t.Fatal(err)
	}
	var u *tg.UpdateMessagePoll
	select {
	case u = <-c.polls:
	case <-ctx.Done():
		t.Fatal("no poll update")
	}
	res := u.Results.Results
	if u.MsgID != m.ID || u.Results.TotalVoters != 1 || len(res) != 2 || res[1].Voters != 1 || res[1].Chosen || res[0].Voters != 0 {
		t.Fatalf("contact's vote seen as %+v", u)
	}
	poll := m.Media.(*tg.MessageMediaPoll).Poll
	_, err = c.api().MessagesSendVote(ctx, &tg.MessagesSendVoteRequest{Peer: &tg.InputPeerUser{UserID: peer.ID, AccessHash: peer.AccessHash},
		MsgID: m.ID, Options: [][]byte{poll.Answers[0].(*tg.PollAnswer).Option}})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Messages(peer.ID, me.ID)
	results := got[len(got)-1].Media.Media.(*tg.MessageMediaPoll).Results
	if results.TotalVoters != 2 || results.Results[0].Voters != 1 || results.Results[1].Voters != 1 {
		t.Errorf("results after both votes %+v", results)
	}
	if _, err := c.api().MessagesSendVote(ctx, &tg.MessagesSendVoteRequest{Peer: &tg.InputPeerUser{UserID: peer.ID, AccessHash: peer.AccessHash},
		MsgID: m.ID, Options: [][]byte{{'x'}}}); !tgerr.Is(err, "OPTIONS_INVALID") {
		t.Errorf("vote for a missing option: %v", err)
	}
}
