package telegram

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/media/mediatest"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func testPNG(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{R: uint8(x), G: 100, B: 200, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mediaSetup is a logged-in bridge with encrypted portals and a first
// message from bob, so that the DM portal exists.
type mediaSetup struct {
	s          *tgsim.Server
	tb         *testBridge
	alice, bob *tgsim.Account
	ul         *bridgev2.UserLogin
	portal     *bridgev2.Portal
}

func newMediaSetup(t testing.TB, configure func(*TelegramConnector)) *mediaSetup {
	t.Helper()
	s := newSim(t)
	ms := &mediaSetup{s: s}
	ms.alice = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	ms.bob = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	ms.tb = startBridgeWith(t, s, dbtest.SQLite(t).Open(t), func(conn *TelegramConnector, mx *fakematrix.Matrix) {
		mx.SetEncryptedMedia(true)
		mx.SetMediaDir(t.TempDir())
		if configure != nil {
			configure(conn)
		}
	})
	ms.ul = loginByPhone(t, ms.tb, s, ms.alice, "")
	waitConnected(t, ms.tb)
	if _, err := s.SendMessage(ms.bob.ID, ms.alice.ID, "hello", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := ms.tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" }); !ok {
		t.Fatal("first message never reached Matrix")
	}
	key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: ms.bob.ID}), Receiver: ms.ul.ID}
	portal, err := ms.tb.br.GetExistingPortalByKey(context.Background(), key)
	if err != nil || portal == nil {
		t.Fatalf("portal: %v", err)
	}
	ms.portal = portal
	return ms
}

// waitEvent waits for a timeline event the bridge sent, from the from-th
// on, that pred accepts.
func waitEvent(t *testing.T, mx *fakematrix.Matrix, from int, what string, pred func(fakematrix.Event) bool) fakematrix.Event {
	t.Helper()
	var found fakematrix.Event
	if !mx.Eventually(30*time.Second, func() bool {
		evts := mx.Events()
		for _, e := range evts[min(from, len(evts)):] {
			if pred(e) {
				found = e
				return true
			}
		}
		return false
	}) {
		t.Fatalf("%s never reached Matrix", what)
	}
	return found
}

func msgContent(e fakematrix.Event) *event.MessageEventContent {
	c, _ := e.Content.Parsed.(*event.MessageEventContent)
	return c
}

// fileBytes downloads an attachment as a Matrix client would, checking that
// the homeserver holds only ciphertext.
func fileBytes(t *testing.T, mx *fakematrix.Matrix, c *event.MessageEventContent, plain []byte) []byte {
	t.Helper()
	if c.File == nil || c.URL != "" {
		t.Fatalf("attachment in an encrypted room not sent as an encrypted file (url %q)", c.URL)
	}
	stored, _ := mx.Media(c.File.URL)
	if len(stored) == 0 || bytes.Equal(stored, plain) {
		t.Errorf("the homeserver holds the plaintext of %s", c.File.URL)
	}
	got, err := mx.Bridge().Bot.DownloadMedia(context.Background(), c.File.URL, c.File)
	if err != nil {
		t.Fatalf("download %s: %v", c.File.URL, err)
	}
	return got
}

// checkThumb checks that a file came with Telegram's thumbnail, encrypted
// like the file.
func checkThumb(t *testing.T, mx *fakematrix.Matrix, c *event.MessageEventContent, want []byte, w, h int) {
	t.Helper()
	ti := c.Info.ThumbnailInfo
	if c.Info.ThumbnailFile == nil || ti == nil || ti.Width != w || ti.Height != h || ti.MimeType != "image/png" || ti.Size != len(want) {
		t.Fatalf("thumbnail %+v %+v", c.Info.ThumbnailFile, ti)
	}
	got, err := mx.Bridge().Bot.DownloadMedia(context.Background(), c.Info.ThumbnailFile.URL, c.Info.ThumbnailFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("thumbnail bytes differ (%d, %v)", len(got), err)
	}
}

// TestMediaTelegramToMatrix: every kind a Telegram contact sends arrives in
// the encrypted portal as the Matrix event a user expects, files byte for
// byte.
func TestMediaTelegramToMatrix(t *testing.T) {
	ms := newMediaSetup(t, nil)
	s, mx := ms.s, ms.tb.mx
	photo := testPNG(t, 64, 48)
	thumb := testPNG(t, 8, 6)
	pdf := append([]byte("%PDF-1.4\n"), mediatest.PatternBytes(300_001, 1)...)
	voice := append([]byte("OggS"), mediatest.PatternBytes(12_345, 2)...)
	mp3 := append([]byte("ID3"), mediatest.PatternBytes(20_000, 3)...)
	video := mediatest.PatternBytes(700_000, 4)
	gif := mediatest.PatternBytes(50_000, 5)
	webp := append([]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), mediatest.PatternBytes(2_000, 6)...)
	tgs := append([]byte{0x1f, 0x8b, 0x08, 0x00}, mediatest.PatternBytes(3_000, 7)...)
	webm := append([]byte{0x1a, 0x45, 0xdf, 0xa3}, mediatest.PatternBytes(4_000, 8)...)
	tgWave := media.EncodeTelegramWaveform([]int{0, 31, 16, 8})

	type check func(t *testing.T, e fakematrix.Event, c *event.MessageEventContent)
	tests := []struct {
		name  string
		spec  tgsim.MediaSpec
		match func(fakematrix.Event) bool
		data  []byte
		check check
	}{
		{"photo with caption", tgsim.MediaSpec{Kind: "photo", Data: photo, Thumb: thumb, Caption: "look at this", Entities: []tg.MessageEntityClass{&tg.MessageEntityBold{Offset: 0, Length: 4}}},
			nil, photo, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgImage || c.Body != "look at this" || c.FormattedBody != "<strong>look</strong> at this" || !strings.HasSuffix(c.FileName, ".jpg") {
					t.Errorf("photo: %s %q %q %q", c.MsgType, c.Body, c.FormattedBody, c.FileName)
				}
				if c.Info.Width != 64 || c.Info.Height != 48 || c.Info.Size != len(photo) || c.Info.MimeType != "image/png" {
					t.Errorf("photo info %+v", c.Info)
				}
				checkThumb(t, mx, c, thumb, 8, 6)
			}},
		{"document", tgsim.MediaSpec{Kind: "document", Data: pdf, Name: "report.pdf", MIME: "application/pdf"},
			nil, pdf, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgFile || c.FileName != "report.pdf" || c.Body != "report.pdf" || c.Info.MimeType != "application/pdf" || c.Info.Size != len(pdf) {
					t.Errorf("document: %s %q %q %+v", c.MsgType, c.FileName, c.Body, c.Info)
				}
			}},
		{"voice note", tgsim.MediaSpec{Kind: "voice", Data: voice, Duration: 3, Waveform: tgWave},
			nil, voice, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgAudio || c.MSC3245Voice == nil || c.MSC1767Audio == nil || c.MSC1767Audio.Duration != 3000 || c.Info.Duration != 3000 {
					t.Fatalf("voice: %+v", c)
				}
				if wf := c.MSC1767Audio.Waveform; len(wf) < 4 || wf[0] != 0 || wf[1] != 1024 || wf[2] != 529 {
					t.Errorf("waveform %v", wf)
				}
			}},
		{"audio", tgsim.MediaSpec{Kind: "audio", Data: mp3, Duration: 200, Title: "Song", Performer: "Band"},
			nil, mp3, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgAudio || c.MSC3245Voice != nil || c.FileName != "Band - Song.mp3" || c.Info.Duration != 200_000 {
					t.Errorf("audio: %s %q %+v", c.MsgType, c.FileName, c.Info)
				}
			}},
		{"video", tgsim.MediaSpec{Kind: "video", Data: video, Thumb: thumb, Name: "clip.mp4", Width: 1280, Height: 720, Duration: 9, Caption: "our clip"},
			nil, video, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgVideo || c.Info.MauGIF || c.Info.Width != 1280 || c.Info.Duration != 9000 || c.Body != "our clip" || c.FileName != "clip.mp4" {
					t.Errorf("video: %s %q %+v", c.MsgType, c.Body, c.Info)
				}
				checkThumb(t, mx, c, thumb, 8, 6)
			}},
		{"gif", tgsim.MediaSpec{Kind: "gif", Data: gif, Name: "fun.mp4", Width: 320, Height: 240, Duration: 2},
			nil, gif, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgVideo || !c.Info.MauGIF || !c.Info.IsAnimated {
					t.Errorf("gif: %s %+v", c.MsgType, c.Info)
				}
			}},
		{"webp sticker", tgsim.MediaSpec{Kind: "sticker", Data: webp, Emoji: "👍", Width: 512, Height: 512},
			func(e fakematrix.Event) bool { return e.Type == event.EventSticker }, webp,
			func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.Body != "👍" || c.Info.MimeType != "image/webp" || c.Info.Width != 512 {
					t.Errorf("sticker: %q %+v", c.Body, c.Info)
				}
			}},
		{"video sticker", tgsim.MediaSpec{Kind: "sticker", Data: webm, MIME: "video/webm", Emoji: "🔥", Width: 512, Height: 512},
			nil, webm, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgVideo || !c.Info.MauGIF || c.Body != "Sticker 🔥" || c.Info.MimeType != "video/webm" {
					t.Errorf("video sticker: %s %q %+v", c.MsgType, c.Body, c.Info)
				}
			}},
		{"animated tgs sticker", tgsim.MediaSpec{Kind: "sticker", Data: tgs, MIME: "application/x-tgsticker", Emoji: "🎉"},
			nil, tgs, func(t *testing.T, _ fakematrix.Event, c *event.MessageEventContent) {
				if c.MsgType != event.MsgFile || c.Body != "Animated sticker 🎉" || c.FileName != "sticker.tgs" || c.Info.MimeType != "application/x-tgsticker" {
					t.Errorf("tgs sticker: %s %q %q %+v", c.MsgType, c.Body, c.FileName, c.Info)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(mx.Events())
			if _, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tt.spec); err != nil {
				t.Fatal(err)
			}
			e := waitEvent(t, mx, before, tt.name, func(e fakematrix.Event) bool {
				c := msgContent(e)
				return c != nil && e.RoomID == ms.portal.MXID && (c.File != nil || c.URL != "" || c.MsgType == event.MsgNotice) && (tt.match == nil || tt.match(e))
			})
			c := msgContent(e)
			if c.MsgType == event.MsgNotice {
				t.Fatalf("a notice instead of the file: %q", c.Body)
			}
			if got := fileBytes(t, mx, c, tt.data); !bytes.Equal(got, tt.data) {
				t.Fatalf("file differs: got %d bytes, sent %d", len(got), len(tt.data))
			}
			tt.check(t, e, c)
		})
	}

	t.Run("locations", func(t *testing.T) {
		for _, tt := range []struct {
			spec tgsim.MediaSpec
			body string
			geo  string
		}{
			{tgsim.MediaSpec{Kind: "geo", Lat: 48.858844, Long: 2.294351}, "Location (geo:48.858844,2.294351)", "geo:48.858844,2.294351"},
			{tgsim.MediaSpec{Kind: "venue", Lat: 48.8606, Long: 2.3376, Title: "Louvre", Address: "Rue de Rivoli"}, "Location: Louvre, Rue de Rivoli (geo:48.8606,2.3376)", "geo:48.8606,2.3376"},
			{tgsim.MediaSpec{Kind: "geo_live", Lat: -33.8568, Long: 151.2153, LivePeriod: 900}, "Live location (geo:-33.8568,151.2153)", "geo:-33.8568,151.2153"},
		} {
			if _, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tt.spec); err != nil {
				t.Fatal(err)
			}
			m, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool {
				return m.Content.MsgType == event.MsgLocation && m.Content.GeoURI == tt.geo
			})
			if !ok {
				t.Fatalf("%s never arrived", tt.spec.Kind)
			}
			if m.Content.Body != tt.body {
				t.Errorf("%s body %q, want %q", tt.spec.Kind, m.Content.Body, tt.body)
			}
		}
	})

	t.Run("contact", func(t *testing.T) {
		if _, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "contact", Phone: "+33612345678", FirstName: "Jean", LastName: "Dupont"}); err != nil {
			t.Fatal(err)
		}
		m, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.FileName == "Jean Dupont.vcf" })
		if !ok {
			t.Fatal("contact never arrived")
		}
		if m.Content.Body != "Contact: Jean Dupont\n+33612345678" || m.Content.Info.MimeType != "text/vcard" {
			t.Errorf("contact body %q info %+v", m.Content.Body, m.Content.Info)
		}
		card, err := media.ParseVCard(fileBytes(t, mx, m.Content, nil))
		if err != nil || card.Name != "Jean Dupont" || len(card.Phones) != 1 || card.Phones[0].Number != "+33612345678" {
			t.Errorf("vCard %+v, %v", card, err)
		}
	})

	t.Run("poll", func(t *testing.T) {
		sent, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "poll", Question: "Lunch where?", Answers: []string{"Bistro", "Canteen", "Park"}})
		if err != nil {
			t.Fatal(err)
		}
		e := waitEvent(t, mx, 0, "poll", func(e fakematrix.Event) bool { return e.Type == event.EventUnstablePollStart })
		poll, ok := e.Content.Raw["org.matrix.msc3381.poll.start"].(event.PollStart)
		if !ok {
			t.Fatalf("poll start content %#v", e.Content.Raw)
		}
		var answers []string
		for _, a := range poll.Answers {
			answers = append(answers, a.Text)
		}
		if poll.Question.Text != "Lunch where?" || strings.Join(answers, ",") != "Bistro,Canteen,Park" || poll.MaxSelections != 1 {
			t.Errorf("poll %+v", poll)
		}
		if c := msgContent(e); c == nil || !strings.Contains(c.Body, "2. Canteen") {
			t.Errorf("poll fallback text %+v", c)
		}

		// Bob's votes arrive as his poll responses to the poll; Alice's own
		// vote from her phone changes nothing of Bob's.
		bobGhost := mx.FormatGhostMXID(tgid.MakeUserID(ms.bob.ID))
		responses := func() []string {
			var out []string
			for _, r := range mx.Events() {
				if r.Type != event.EventUnstablePollResponse || r.Sender != bobGhost {
					continue
				}
				c := msgContent(r)
				resp, _ := r.Content.Raw["org.matrix.msc3381.poll.response"].(map[string]any)
				answers, _ := resp["answers"].([]string)
				if c == nil || c.RelatesTo == nil || c.RelatesTo.EventID != e.EventID || c.RelatesTo.Type != event.RelReference {
					t.Errorf("poll response not related to the poll: %+v", c)
				}
				out = append(out, strings.Join(answers, ","))
			}
			return out
		}
		optionID := func(i int) string { return poll.Answers[i].ID }
		if err := s.VotePoll(ms.bob.ID, sent, 1); err != nil {
			t.Fatal(err)
		}
		if !mx.Eventually(20*time.Second, func() bool { return len(responses()) == 1 }) || responses()[0] != optionID(1) {
			t.Fatalf("Bob's vote bridged as %q, want %q", responses(), optionID(1))
		}
		if err := s.VotePoll(ms.alice.ID, sent, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.VotePoll(ms.bob.ID, sent, 0); err != nil {
			t.Fatal(err)
		}
		if !mx.Eventually(20*time.Second, func() bool { return len(responses()) == 2 }) {
			t.Fatalf("Bob's changed vote not bridged: %q", responses())
		}
		if got := responses(); got[1] != optionID(0) {
			t.Errorf("responses %q, want the second to be %q", got, optionID(0))
		}
	})
}

// TestMediaExpiredFileReference: a file whose reference expired before the
// bridge downloads it is fetched again and bridged; one that cannot be
// fetched even so becomes a notice.
func TestMediaExpiredFileReference(t *testing.T) {
	ms := newMediaSetup(t, nil)
	data := mediatest.PatternBytes(80_000, 9)
	// The reference the bridge got in the update expires just before its
	// first download.
	var expired atomic.Bool
	ms.s.SetBeforeAnswer(func(_ int64, method string) {
		if method == "upload.getFile" && expired.CompareAndSwap(false, true) {
			ms.s.ExpireFileReferences()
		}
	})
	if _, err := ms.s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "document", Data: data, Name: "data.bin"}); err != nil {
		t.Fatal(err)
	}
	m, ok := ms.tb.mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool {
		return m.Content.MsgType == event.MsgFile || m.Content.MsgType == event.MsgNotice
	})
	if !ok {
		t.Fatal("nothing arrived")
	}
	if m.Content.MsgType != event.MsgFile {
		t.Fatalf("got a notice instead of the file: %q", m.Content.Body)
	}
	if got := fileBytes(t, ms.tb.mx, m.Content, data); !bytes.Equal(got, data) {
		t.Fatal("file differs after the reference refresh")
	}
	if !expired.Load() {
		t.Fatal("the reference never expired: the test did not test the refresh")
	}

	// A reference that expires again after the refresh ends in a notice
	// naming the file, with the caption kept.
	ms.s.SetBeforeAnswer(func(_ int64, method string) {
		if method == "upload.getFile" {
			ms.s.ExpireFileReferences()
		}
	})
	if _, err := ms.s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "document", Data: data[:2048], Name: "gone.bin", Caption: "still here"}); err != nil {
		t.Fatal(err)
	}
	notice, ok := ms.tb.mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool { return m.Content.MsgType == event.MsgNotice })
	if want := "gone.bin (application/octet-stream, 2 KB) was not bridged: Telegram no longer has it (the file reference expired)"; !ok || notice.Content.Body != want {
		t.Errorf("notice %q, want %q", notice.Content.Body, want)
	}
	if _, ok := ms.tb.mx.WaitMessage(10*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "still here" }); !ok {
		t.Error("caption lost with the file")
	}
}

// TestMediaTooBigAndRefused: a file over the gateway's limit, and a file the
// media check refuses, become notices naming the file, with the caption
// kept; the other way they fail with a status naming the reason.
func TestMediaTooBigAndRefused(t *testing.T) {
	ms := newMediaSetup(t, func(conn *TelegramConnector) {
		conn.Config.MaxFileSize = 100_000
	})
	ms.tb.conn.Limits.SetGateway(100_000)
	var (
		checksMu sync.Mutex
		checks   []remote.Media
	)
	ms.tb.conn.SetMediaCheck(func(_ context.Context, m remote.Media) error {
		checksMu.Lock()
		checks = append(checks, m)
		checksMu.Unlock()
		if m.MIME == "application/x-msdownload" {
			return &remote.Refusal{Reason: "executables are not allowed"}
		}
		return nil
	})
	s, mx := ms.s, ms.tb.mx
	if _, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "document", Data: mediatest.PatternBytes(150_000, 1), Name: "big.pdf", MIME: "application/pdf", Caption: "see attached"}); err != nil {
		t.Fatal(err)
	}
	notice, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.MsgType == event.MsgNotice })
	if !ok || notice.Content.Body != "big.pdf (application/pdf, 146.5 KB) was not bridged: larger than the 97.7 KB limit" {
		t.Errorf("too-big notice %q", notice.Content.Body)
	}
	if _, ok := mx.WaitMessage(10*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "see attached" }); !ok {
		t.Error("the caption of a too-big file was lost")
	}
	if _, err := s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "document", Data: []byte("MZ\x90\x00"), Name: "setup.exe", MIME: "application/x-msdownload"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool {
		return m.Content.Body == "setup.exe (application/x-msdownload, 4 B) was not bridged: executables are not allowed"
	}); !ok {
		t.Error("no refusal notice for an executable")
	}
	var sawInbound bool
	checksMu.Lock()
	for _, c := range checks {
		if c.Direction == remote.MediaInbound && c.Name == "setup.exe" && c.Size == 4 && c.Remote == tgid.MakeUserID(ms.bob.ID) && c.PortalKey == ms.portal.PortalKey {
			sawInbound = true
		}
	}
	checksMu.Unlock()
	if !sawInbound {
		t.Errorf("media check not asked with the file's details: %+v", checks)
	}

	// Matrix → Telegram: too big, and refused.
	ctx := context.Background()
	big := mediatest.PatternBytes(150_000, 2)
	uri, _, _ := mx.Bridge().Bot.UploadMedia(ctx, "", big, "big.bin", "application/octet-stream")
	_, err := ms.ul.Client.HandleMatrixMessage(ctx, matrixMessage(ms.portal, "$big", &event.MessageEventContent{
		MsgType: event.MsgFile, Body: "big.bin", URL: uri, Info: &event.FileInfo{Size: len(big), MimeType: "application/octet-stream"}}))
	var st bridgev2.MessageStatus
	if !errors.As(err, &st) || st.Status != event.MessageStatusFail || st.Message != "big.bin (application/octet-stream, 146.5 KB) was not sent to Telegram: larger than the 97.7 KB limit" {
		t.Errorf("too-big outbound status %+v (%v)", st, err)
	}
	exe := []byte("MZ\x90\x00rest")
	uri, _, _ = mx.Bridge().Bot.UploadMedia(ctx, "", exe, "", "")
	_, err = ms.ul.Client.HandleMatrixMessage(ctx, matrixMessage(ms.portal, "$exe", &event.MessageEventContent{
		MsgType: event.MsgFile, Body: "tool.exe", URL: uri, Info: &event.FileInfo{Size: len(exe), MimeType: "application/x-msdownload"}}))
	if !errors.As(err, &st) || st.ErrorReason != event.MessageStatusNoPermission || !strings.Contains(st.Message, "executables are not allowed") {
		t.Errorf("refused outbound status %+v (%v)", st, err)
	}
	// A file that declares no type is asked about again once its real type
	// is known.
	exe2 := []byte("MZ\x90\x00more")
	uri, _, _ = mx.Bridge().Bot.UploadMedia(ctx, "", exe2, "", "")
	_, err = ms.ul.Client.HandleMatrixMessage(ctx, matrixMessage(ms.portal, "$exe2", &event.MessageEventContent{
		MsgType: event.MsgFile, Body: "installer.exe", URL: uri}))
	if !errors.As(err, &st) || st.ErrorReason != event.MessageStatusNoPermission || !strings.Contains(st.Message, "installer.exe (application/x-msdownload, 8 B)") {
		t.Errorf("undeclared executable: status %+v (%v)", st, err)
	}
	for _, m := range s.Messages(ms.alice.ID, ms.bob.ID) {
		if m.From == ms.alice.ID && m.Media != nil {
			t.Errorf("a refused file reached Telegram: %+v", m.Media)
		}
	}
}

func matrixMessage(portal *bridgev2.Portal, evtID id.EventID, content *event.MessageEventContent) *bridgev2.MatrixMessage {
	return &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
		Event:   &event.Event{ID: evtID, Sender: testUser, RoomID: portal.MXID, Type: event.EventMessage},
		Content: content,
		Portal:  portal,
	}}
}

// upload puts a file on the Matrix side as a client in the (encrypted)
// portal would, and fills the content's file fields.
func upload(t *testing.T, ms *mediaSetup, data []byte, c *event.MessageEventContent) *event.MessageEventContent {
	t.Helper()
	uri, file, err := ms.tb.mx.Bridge().Bot.UploadMedia(context.Background(), ms.portal.MXID, data, c.FileName, "")
	if err != nil {
		t.Fatal(err)
	}
	if file == nil || uri != "" || file.URL == "" {
		t.Fatalf("upload into the encrypted portal was not encrypted (uri %q, file %+v)", uri, file)
	}
	c.File = file
	if c.Info == nil {
		c.Info = &event.FileInfo{}
	}
	c.Info.Size = len(data)
	return c
}

// TestMediaMatrixToTelegram: every kind a Matrix user sends from the
// encrypted portal arrives at the Telegram contact byte for byte, with its
// name, type, attributes and formatted caption; a file over 10 MB goes
// through saveBigFilePart.
func TestMediaMatrixToTelegram(t *testing.T) {
	ms := newMediaSetup(t, nil)
	s, mx := ms.s, ms.tb.mx
	ctx := context.Background()
	photo := testPNG(t, 30, 20)
	pdf := append([]byte("%PDF-1.4\n"), mediatest.PatternBytes(300_001, 11)...)
	voice := append([]byte("OggS"), mediatest.PatternBytes(9_000, 12)...)
	mp3 := append([]byte("ID3"), mediatest.PatternBytes(40_000, 13)...)
	video := mediatest.PatternBytes(200_000, 14)
	webp := append([]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), mediatest.PatternBytes(1_000, 15)...)
	big := mediatest.PatternBytes(10<<20+777, 16)
	wave := make([]int, 50)
	for i := range wave {
		wave[i] = i * 1024 / 49
	}

	tests := []struct {
		name    string
		evtType event.Type
		content *event.MessageEventContent
		data    []byte
		check   func(t *testing.T, m tgsim.Message)
	}{
		{"image with formatted caption", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgImage, FileName: "pic.png", Body: "my *pic*",
			Format: event.FormatHTML, FormattedBody: "my <b>pic</b>", Info: &event.FileInfo{MimeType: "image/png", Width: 30, Height: 20}}, photo,
			func(t *testing.T, m tgsim.Message) {
				if m.Media.Kind != "photo" || m.Media.Width != 30 || m.Text != "my pic" || len(m.Entities) != 1 {
					t.Errorf("image arrived as %+v %q %v", m.Media.Kind, m.Text, m.Entities)
				} else if b, ok := m.Entities[0].(*tg.MessageEntityBold); !ok || b.Offset != 3 || b.Length != 3 {
					t.Errorf("caption entity %+v", m.Entities[0])
				}
			}},
		{"file", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgFile, FileName: "report.pdf", Body: "report.pdf",
			Info: &event.FileInfo{MimeType: "application/pdf"}}, pdf,
			func(t *testing.T, m tgsim.Message) {
				if m.Media.Name != "report.pdf" || m.Media.MIME != "application/pdf" || m.Text != "" {
					t.Errorf("file arrived as %+v with text %q", m.Media, m.Text)
				}
			}},
		{"voice", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgAudio, Body: "Voice message", FileName: "voice.ogg",
			Info: &event.FileInfo{MimeType: "audio/ogg", Duration: 4200}, MSC3245Voice: &event.MSC3245Voice{},
			MSC1767Audio: &event.MSC1767Audio{Duration: 4200, Waveform: wave}}, voice,
			func(t *testing.T, m tgsim.Message) {
				var a *tg.DocumentAttributeAudio
				for _, at := range m.Media.Attributes {
					if v, ok := at.(*tg.DocumentAttributeAudio); ok {
						a = v
					}
				}
				if a == nil || !a.Voice || a.Duration != 4 {
					t.Fatalf("voice attributes %+v", m.Media.Attributes)
				}
				if wf := media.DecodeTelegramWaveform(a.Waveform); len(wf) != media.TelegramWaveformLen || wf[0] != 0 || wf[99] != 31 {
					t.Errorf("waveform %v", wf)
				}
				if m.Text != "Voice message" {
					t.Errorf("voice caption %q", m.Text)
				}
			}},
		{"audio", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgAudio, Body: "song.mp3", Info: &event.FileInfo{MimeType: "audio/mpeg", Duration: 61_000}}, mp3,
			func(t *testing.T, m tgsim.Message) {
				a, ok := m.Media.Attributes[1].(*tg.DocumentAttributeAudio)
				if !ok || a.Voice || a.Duration != 61 || m.Media.Name != "song.mp3" {
					t.Errorf("audio %+v", m.Media)
				}
			}},
		{"video", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgVideo, Body: "clip.mp4", Info: &event.FileInfo{MimeType: "video/mp4", Width: 640, Height: 360, Duration: 5000}}, video,
			func(t *testing.T, m tgsim.Message) {
				v, ok := m.Media.Attributes[1].(*tg.DocumentAttributeVideo)
				if !ok || v.W != 640 || v.Duration != 5 || len(m.Media.Attributes) != 2 {
					t.Errorf("video %+v", m.Media.Attributes)
				}
			}},
		{"gif", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgVideo, Body: "loop.mp4", Info: &event.FileInfo{MimeType: "video/mp4", Width: 100, Height: 100, MauGIF: true}}, video[:5000],
			func(t *testing.T, m tgsim.Message) {
				animated := false
				for _, a := range m.Media.Attributes {
					_, ok := a.(*tg.DocumentAttributeAnimated)
					animated = animated || ok
				}
				if !animated {
					t.Errorf("gif not animated: %+v", m.Media.Attributes)
				}
			}},
		{"sticker", event.EventSticker, &event.MessageEventContent{Body: "😀", Info: &event.FileInfo{MimeType: "image/webp", Width: 256, Height: 256}}, webp,
			func(t *testing.T, m tgsim.Message) {
				var alt string
				for _, a := range m.Media.Attributes {
					if st, ok := a.(*tg.DocumentAttributeSticker); ok {
						alt = st.Alt
					}
				}
				if alt != "😀" || m.Media.MIME != "image/webp" || m.Text != "" {
					t.Errorf("sticker %+v, text %q", m.Media, m.Text)
				}
			}},
		{"big file", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgFile, Body: "big.bin", Info: &event.FileInfo{MimeType: "application/octet-stream"}}, big,
			func(t *testing.T, m tgsim.Message) {
				if m.Media.Size != int64(len(big)) {
					t.Errorf("big file size %d", m.Media.Size)
				}
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := upload(t, ms, tt.data, tt.content)
			evtID := id.EventID("$media" + string(rune('a'+i)))
			mx.Inject(ctx, &event.Event{Type: tt.evtType, RoomID: ms.portal.MXID, Sender: testUser, ID: evtID,
				Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: content}})
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			got, err := s.WaitMessage(wctx, ms.alice.ID, ms.bob.ID, func(m tgsim.Message) bool {
				return m.Media != nil && m.Media.Size == int64(len(tt.data)) && m.Date.After(time.Unix(0, 0))
			})
			if err != nil {
				t.Fatalf("never reached Telegram: %v (statuses %+v)", err, mx.StatusesOf(evtID))
			}
			if b, err := s.MediaBytes(got); err != nil || !bytes.Equal(b, tt.data) {
				t.Fatalf("Telegram got %d bytes, sent %d (%v)", len(b), len(tt.data), err)
			}
			tt.check(t, got)
			if !mx.Eventually(10*time.Second, func() bool {
				msg, err := ms.tb.br.DB.Message.GetPartByMXID(ctx, evtID)
				return err == nil && msg != nil
			}) {
				t.Error("sent file not mapped to its Telegram message")
			}
		})
	}

	t.Run("poll and votes", func(t *testing.T) {
		start := &event.PollStartEventContent{PollStart: event.PollStart{
			Kind: "org.matrix.msc3381.poll.disclosed", MaxSelections: 1, Question: event.MSC1767Message{Text: "Meet when?"},
			Answers: []event.PollOption{{ID: "mon", MSC1767Message: event.MSC1767Message{Text: "Monday"}}, {ID: "tue", MSC1767Message: event.MSC1767Message{Text: "Tuesday"}}},
		}}
		mx.Inject(ctx, &event.Event{Type: event.EventUnstablePollStart, RoomID: ms.portal.MXID, Sender: testUser, ID: "$pollq",
			Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: start}})
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		got, err := s.WaitMessage(wctx, ms.alice.ID, ms.bob.ID, func(m tgsim.Message) bool { return m.Media != nil && m.Media.Kind == "poll" })
		if err != nil {
			t.Fatalf("poll never reached Telegram: %v (%+v)", err, mx.StatusesOf("$pollq"))
		}
		poll := got.Media.Media.(*tg.MessageMediaPoll).Poll
		var answers []string
		for _, a := range poll.Answers {
			pa := a.(*tg.PollAnswer)
			answers = append(answers, pa.Text.Text+"="+string(pa.Option))
		}
		if poll.Question.Text != "Meet when?" || strings.Join(answers, ",") != "Monday=mon,Tuesday=tue" || poll.MultipleChoice {
			t.Fatalf("poll on Telegram: %q %v", poll.Question.Text, answers)
		}

		// Bob votes on Telegram: his response relates to the Matrix poll.
		if err := s.VotePoll(ms.bob.ID, got, 1); err != nil {
			t.Fatal(err)
		}
		bobGhost := mx.FormatGhostMXID(tgid.MakeUserID(ms.bob.ID))
		waitEvent(t, mx, 0, "Bob's vote", func(e fakematrix.Event) bool {
			c := msgContent(e)
			resp, _ := e.Content.Raw["org.matrix.msc3381.poll.response"].(map[string]any)
			answers, _ := resp["answers"].([]string)
			return e.Type == event.EventUnstablePollResponse && e.Sender == bobGhost && c != nil && c.RelatesTo != nil &&
				c.RelatesTo.EventID == "$pollq" && strings.Join(answers, ",") == "tue"
		})

		// Alice votes from Matrix.
		vote := &event.PollResponseEventContent{RelatesTo: event.RelatesTo{Type: event.RelReference, EventID: "$pollq"},
			Response: event.PollResponse{Answers: []string{"mon"}}}
		mx.Inject(ctx, &event.Event{Type: event.EventUnstablePollResponse, RoomID: ms.portal.MXID, Sender: testUser, ID: "$vote1",
			Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: vote}})
		if !mx.Eventually(20*time.Second, func() bool {
			h := s.Messages(ms.bob.ID, ms.alice.ID)
			for _, m := range h {
				if m.Media == nil {
					continue
				}
				if mp, ok := m.Media.Media.(*tg.MessageMediaPoll); ok && mp.Poll.Question.Text == "Meet when?" {
					r := mp.Results
					return r.TotalVoters == 2 && len(r.Results) == 2 && r.Results[0].Voters == 1 && r.Results[1].Voters == 1
				}
			}
			return false
		}) {
			t.Errorf("Alice's vote from Matrix not counted on Telegram (statuses %+v)", mx.StatusesOf("$vote1"))
		}

		// A poll Telegram cannot carry fails with the reason.
		bad := &event.PollStartEventContent{PollStart: event.PollStart{MaxSelections: 1, Question: event.MSC1767Message{Text: "Only one?"},
			Answers: []event.PollOption{{ID: "a", MSC1767Message: event.MSC1767Message{Text: "A"}}}}}
		_, err = ms.ul.Client.(bridgev2.PollHandlingNetworkAPI).HandleMatrixPollStart(ctx, &bridgev2.MatrixPollStart{
			MatrixMessage: *matrixMessage(ms.portal, "$badpoll", &event.MessageEventContent{}), Content: bad})
		var st bridgev2.MessageStatus
		if !errors.As(err, &st) || st.ErrorReason != event.MessageStatusUnsupported || !strings.Contains(st.Error(), "2 to 10 answers") {
			t.Errorf("one-answer poll: %v", err)
		}
	})

	t.Run("location", func(t *testing.T) {
		mx.Inject(ctx, &event.Event{Type: event.EventMessage, RoomID: ms.portal.MXID, Sender: testUser, ID: "$loc",
			Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgLocation, Body: "Here", GeoURI: "geo:51.5007,-0.1246;u=10"}}})
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		got, err := s.WaitMessage(wctx, ms.alice.ID, ms.bob.ID, func(m tgsim.Message) bool { return m.Media != nil && m.Media.Kind == "geo" })
		if err != nil {
			t.Fatal(err)
		}
		g := got.Media.Media.(*tg.MessageMediaGeo).Geo.(*tg.GeoPoint)
		if g.Lat != 51.5007 || g.Long != -0.1246 {
			t.Errorf("location %v,%v", g.Lat, g.Long)
		}
	})
}
