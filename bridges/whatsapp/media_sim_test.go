package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// mxBytes returns the bytes a Matrix client gets for a file event: the
// download, decrypted with the event's file info in encrypted rooms.
func mxBytes(t *testing.T, tb *testBridge, content *event.MessageEventContent) []byte {
	t.Helper()
	data, err := tb.mx.Intent(testUser).DownloadMedia(context.Background(), content.URL, content.File)
	if err != nil {
		t.Fatalf("downloading %q %+v: %v", content.URL, content.File, err)
	}
	return data
}

// waitEvent waits for a timeline event of type typ for which pred holds.
func (tb *testBridge) waitEvent(t *testing.T, what string, typ event.Type, pred func(fakematrix.Event) bool) fakematrix.Event {
	t.Helper()
	var found fakematrix.Event
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, e := range tb.mx.Events() {
			if e.Type == typ && pred(e) {
				found = e
				return true
			}
		}
		return false
	}) {
		t.Fatalf("timed out waiting for %s on Matrix", what)
	}
	return found
}

func testWaveform() []byte {
	wf := make([]byte, 64)
	for i := range wf {
		wf[i] = byte((i * 37) % 101)
	}
	return wf
}

// TestMediaFromWhatsApp: every kind of file, a location, a live location, a
// contact card and a poll sent by a WhatsApp contact reach Matrix as the
// matching event, files byte for byte.
func TestMediaFromWhatsApp(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	ctx := ctxFor(t)

	wf := testWaveform()
	files := []struct {
		spec  wasim.MediaSpec
		check func(t *testing.T, c *event.MessageEventContent)
	}{
		{wasim.MediaSpec{Kind: wasim.KindImage, Data: random.Bytes(40_000), MIME: "image/jpeg", Caption: "look *here*", Width: 640, Height: 480, Thumbnail: []byte("\xff\xd8thumb")},
			func(t *testing.T, c *event.MessageEventContent) {
				if c.MsgType != event.MsgImage || c.Body != "look *here*" || c.FormattedBody != "look <strong>here</strong>" || c.FileName != "image.jpg" ||
					c.Info.Width != 640 || c.Info.Height != 480 || c.Info.MimeType != "image/jpeg" || c.Info.Size != 40_000 {
					t.Errorf("image: %+v %+v", c, c.Info)
				}
				if thumb, ok := tb.mx.Media(c.Info.ThumbnailURL); !ok || string(thumb) != "\xff\xd8thumb" {
					t.Errorf("image thumbnail %q", thumb)
				}
			}},
		{wasim.MediaSpec{Kind: wasim.KindVideo, Data: random.Bytes(90_000), MIME: "video/mp4", Seconds: 7, Caption: "the video"},
			func(t *testing.T, c *event.MessageEventContent) {
				if c.MsgType != event.MsgVideo || c.Info.Duration != 7000 || c.Info.MauGIF || c.Body != "the video" {
					t.Errorf("video: %+v %+v", c, c.Info)
				}
			}},
		{wasim.MediaSpec{Kind: wasim.KindGIF, Data: random.Bytes(10_000), MIME: "video/mp4", Caption: "the gif"},
			func(t *testing.T, c *event.MessageEventContent) {
				if c.MsgType != event.MsgVideo || !c.Info.MauGIF || c.Info.Extra["fi.mau.loop"] != true || c.Info.Extra["fi.mau.autoplay"] != true {
					t.Errorf("GIF: %+v %+v", c, c.Info)
				}
			}},
		{wasim.MediaSpec{Kind: wasim.KindVoice, Data: random.Bytes(8_000), MIME: "audio/ogg; codecs=opus", Seconds: 4, Waveform: wf},
			func(t *testing.T, c *event.MessageEventContent) {
				want := media.WaveformFromWhatsApp(wf)
				if c.MsgType != event.MsgAudio || c.MSC3245Voice == nil || c.MSC1767Audio == nil || c.MSC1767Audio.Duration != 4000 ||
					len(c.MSC1767Audio.Waveform) != len(want) || c.MSC1767Audio.Waveform[10] != want[10] || c.Info.MimeType != "audio/ogg" {
					t.Errorf("voice: %+v %+v", c, c.MSC1767Audio)
				}
			}},
		{wasim.MediaSpec{Kind: wasim.KindAudio, Data: random.Bytes(20_000), MIME: "audio/mpeg", Seconds: 9},
			func(t *testing.T, c *event.MessageEventContent) {
				if c.MsgType != event.MsgAudio || c.MSC3245Voice != nil || c.Info.Duration != 9000 || c.FileName != "audio.mp3" {
					t.Errorf("audio: %+v %+v", c, c.Info)
				}
			}},
		{wasim.MediaSpec{Kind: wasim.KindDocument, Data: random.Bytes(70_000), MIME: "application/pdf", FileName: "report.pdf", Caption: "the report"},
			func(t *testing.T, c *event.MessageEventContent) {
				if c.MsgType != event.MsgFile || c.FileName != "report.pdf" || c.Body != "the report" || c.Info.MimeType != "application/pdf" {
					t.Errorf("document: %+v %+v", c, c.Info)
				}
			}},
	}
	for _, f := range files {
		if _, _, err := srv.SendMedia(ctx, bobPh, alicePh, f.spec); err != nil {
			t.Fatalf("%s: %v", f.spec.Kind, err)
		}
		got := tb.waitMsg(t, f.spec.Kind, func(m fakematrix.Message) bool {
			return m.Content.MsgType.IsMedia() && m.Content.Info != nil && m.Content.Info.Size == len(f.spec.Data)
		})
		if got.Sender != bobGhost {
			t.Errorf("%s sent by %s", f.spec.Kind, got.Sender)
		}
		if data := mxBytes(t, tb, got.Content); !bytes.Equal(data, f.spec.Data) {
			t.Errorf("%s: Matrix has %d bytes that differ from the %d sent", f.spec.Kind, len(data), len(f.spec.Data))
		}
		f.check(t, got.Content)
	}

	// A sticker is an m.sticker event.
	sticker := random.Bytes(3_000)
	if _, _, err := srv.SendMedia(ctx, bobPh, alicePh, wasim.MediaSpec{Kind: wasim.KindSticker, Data: sticker, MIME: "image/webp", Width: 512, Height: 512}); err != nil {
		t.Fatal(err)
	}
	st := tb.waitEvent(t, "sticker", event.EventSticker, func(fakematrix.Event) bool { return true })
	sc := st.Content.Parsed.(*event.MessageEventContent)
	if data := mxBytes(t, tb, sc); !bytes.Equal(data, sticker) || sc.Info.Width != 512 || sc.Info.MimeType != "image/webp" {
		t.Errorf("sticker: %d bytes, %+v", len(data), sc.Info)
	}

	// Location and live location (first position).
	for _, msg := range []*waE2E.Message{
		{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(48.8584), DegreesLongitude: proto.Float64(2.2945), Name: proto.String("Tour Eiffel")}},
		{LiveLocationMessage: &waE2E.LiveLocationMessage{DegreesLatitude: proto.Float64(-33.8568), DegreesLongitude: proto.Float64(151.2153)}},
	} {
		if _, err := srv.SendMessage(ctx, bobPh, alicePh, msg); err != nil {
			t.Fatal(err)
		}
	}
	loc := tb.waitMsg(t, "location", func(m fakematrix.Message) bool { return m.Content.GeoURI == "geo:48.8584,2.2945" })
	if loc.Content.MsgType != event.MsgLocation || !strings.Contains(loc.Content.Body, "Tour Eiffel") {
		t.Errorf("location: %+v", loc.Content)
	}
	live := tb.waitMsg(t, "live location", func(m fakematrix.Message) bool { return m.Content.GeoURI == "geo:-33.8568,151.2153" })
	if live.Content.MsgType != event.MsgLocation || !strings.Contains(live.Content.Body, "Live location") {
		t.Errorf("live location: %+v", live.Content)
	}

	// A contact card: the vCard as a file, its name and number readable.
	vcard := "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dana Doe\r\nTEL;type=CELL;waid=15550009999:+1 555 000 9999\r\nEND:VCARD\r\n"
	if _, err := srv.SendMessage(ctx, bobPh, alicePh, &waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String("Dana Doe"), Vcard: proto.String(vcard)}}); err != nil {
		t.Fatal(err)
	}
	card := tb.waitMsg(t, "contact card", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "Dana Doe") })
	if card.Content.MsgType != event.MsgFile || !strings.Contains(card.Content.Body, "+1 555 000 9999") || card.Content.Info.MimeType != "text/vcard" {
		t.Errorf("contact card: %+v", card.Content)
	}
	if data := mxBytes(t, tb, card.Content); string(data) != vcard {
		t.Errorf("vCard on Matrix %q", data)
	}

	// A poll: an MSC3381 poll start with the question and the options, and
	// a vote on it: a poll response to the poll's event.
	pollID, err := srv.SendPoll(ctx, bobPh, alicePh, "Lunch?", []string{"Pizza", "Sushi"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	poll := tb.waitEvent(t, "poll", event.EventUnstablePollStart, func(fakematrix.Event) bool { return true })
	start, _ := poll.Content.Raw["org.matrix.msc3381.poll.start"].(map[string]any)
	answers, _ := start["answers"].([]map[string]any)
	if start == nil || start["max_selections"] != 1 || len(answers) != 2 || answers[1]["org.matrix.msc1767.text"] != "Sushi" {
		t.Fatalf("poll start %#v", poll.Content.Raw)
	}
	if _, err = srv.SendPollVote(ctx, bobPh, alicePh, pollID, []string{"Sushi"}); err != nil {
		t.Fatal(err)
	}
	vote := tb.waitEvent(t, "poll response", event.EventUnstablePollResponse, func(fakematrix.Event) bool { return true })
	resp, _ := vote.Content.Raw["org.matrix.msc3381.poll.response"].(map[string]any)
	rel, _ := vote.Content.Raw["m.relates_to"].(map[string]any)
	if got, _ := resp["answers"].([]string); len(got) != 1 || got[0] != answers[1]["id"] || rel["event_id"] != poll.EventID || vote.Sender != bobGhost {
		t.Errorf("poll response %#v from %s", vote.Content.Raw, vote.Sender)
	}
}

// uploadToMatrix puts data on the fake homeserver as a Matrix client would.
func uploadToMatrix(t *testing.T, tb *testBridge, data []byte) id.ContentURIString {
	t.Helper()
	uri, _, err := tb.mx.Intent(testUser).UploadMedia(context.Background(), "", data, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return uri
}

// bobPortal makes the direct chat with Bob and returns its portal.
func bobPortal(t testing.TB, tb *testBridge, srv *wasim.Server, ul *bridgev2.UserLogin) *bridgev2.Portal {
	t.Helper()
	ctx := ctxFor(t)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "hi"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Bob's hi", func(m fakematrix.Message) bool { return m.Content.Body == "hi" })
	portal, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
	if err != nil || portal == nil {
		t.Fatalf("portal: %v", err)
	}
	return portal
}

// bobGot waits for the message a Matrix send became at Bob's phone.
func bobGot(t testing.TB, srv *wasim.Server, resp *bridgev2.MatrixMessageResponse) wasim.Message {
	t.Helper()
	key, err := waid.ParseMessageID(resp.DB.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := srv.WaitMessage(ctxFor(t), alicePh, bobPh, func(m wasim.Message) bool { return m.ID == key.ID })
	if err != nil {
		t.Fatalf("Bob never got %s: %v", key.ID, err)
	}
	return m
}

// TestMediaToWhatsApp: files of every kind and a location sent from Matrix
// arrive at the contact's phone, which decrypts them to the same bytes.
func TestMediaToWhatsApp(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	portal := bobPortal(t, tb, srv, ul)
	wf := testWaveform()

	type tc struct {
		name    string
		content *event.MessageEventContent
		check   func(t *testing.T, m *waE2E.Message)
	}
	png := append([]byte("\x89PNG\r\n\x1a\n"), random.Bytes(30_000)...)
	cases := []tc{
		{"image", &event.MessageEventContent{MsgType: event.MsgImage, Body: "see **this**", FileName: "cat.png", Format: event.FormatHTML,
			FormattedBody: "see <b>this</b>", Info: &event.FileInfo{MimeType: "image/png", Width: 320, Height: 200, Size: len(png)}},
			func(t *testing.T, m *waE2E.Message) {
				im := m.GetImageMessage()
				if im.GetCaption() != "see *this*" || im.GetMimetype() != "image/png" || im.GetWidth() != 320 {
					t.Errorf("image: %+v", im)
				}
			}},
		{"video", &event.MessageEventContent{MsgType: event.MsgVideo, Body: "clip.mp4", Info: &event.FileInfo{MimeType: "video/mp4", Duration: 3500}},
			func(t *testing.T, m *waE2E.Message) {
				if vm := m.GetVideoMessage(); vm.GetSeconds() != 4 || vm.GetGifPlayback() {
					t.Errorf("video: %+v", vm)
				}
			}},
		{"gif", &event.MessageEventContent{MsgType: event.MsgVideo, Body: "loop.mp4", Info: &event.FileInfo{MimeType: "video/mp4", MauGIF: true}},
			func(t *testing.T, m *waE2E.Message) {
				if !m.GetVideoMessage().GetGifPlayback() {
					t.Errorf("GIF: %+v", m.GetVideoMessage())
				}
			}},
		{"voice", &event.MessageEventContent{MsgType: event.MsgAudio, Body: "voice.ogg", Info: &event.FileInfo{MimeType: "audio/ogg", Duration: 2000},
			MSC3245Voice: &event.MSC3245Voice{}, MSC1767Audio: &event.MSC1767Audio{Duration: 2000, Waveform: media.WaveformFromWhatsApp(wf)}},
			func(t *testing.T, m *waE2E.Message) {
				am := m.GetAudioMessage()
				if !am.GetPTT() || am.GetSeconds() != 2 || len(am.GetWaveform()) != 64 || am.GetMimetype() != "audio/ogg; codecs=opus" {
					t.Errorf("voice: %+v", am)
				}
				if got := am.GetWaveform(); got[5] != wf[5] || got[40] != wf[40] {
					t.Errorf("waveform %v, want %v", got, wf)
				}
			}},
		{"audio", &event.MessageEventContent{MsgType: event.MsgAudio, Body: "listen to this", FileName: "song.mp3", Info: &event.FileInfo{MimeType: "audio/mpeg"}},
			func(t *testing.T, m *waE2E.Message) {
				if am := m.GetAudioMessage(); am.GetPTT() || am.GetMimetype() != "audio/mpeg" {
					t.Errorf("audio: %+v", am)
				}
			}},
		{"file", &event.MessageEventContent{MsgType: event.MsgFile, Body: "the minutes", FileName: "minutes.pdf", Info: &event.FileInfo{MimeType: "application/pdf"}},
			func(t *testing.T, m *waE2E.Message) {
				dm := m.GetDocumentMessage()
				if dm.GetFileName() != "minutes.pdf" || dm.GetCaption() != "the minutes" || dm.GetMimetype() != "application/pdf" {
					t.Errorf("document: %+v", dm)
				}
			}},
		{"sticker", &event.MessageEventContent{MsgType: event.CapMsgSticker, Body: "wave", Info: &event.FileInfo{MimeType: "image/webp", Width: 512, Height: 512}},
			func(t *testing.T, m *waE2E.Message) {
				if sm := m.GetStickerMessage(); sm.GetMimetype() != "image/webp" || sm.GetWidth() != 512 {
					t.Errorf("sticker: %+v", m)
				}
			}},
	}
	for _, c := range cases {
		data := random.Bytes(5_000 + len(c.name)*1000)
		if c.name == "image" {
			data = png
		}
		c.content.URL = uploadToMatrix(t, tb, data)
		m := bobGot(t, srv, tb.sendMatrix(t, ul, portal, c.content))
		got, err := srv.Download(m.Message)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: Bob's phone decrypted %d bytes (%v), want the %d sent", c.name, len(got), err, len(data))
		}
		c.check(t, m.Message)
	}

	// Audio has no caption on WhatsApp: the caption followed as a message.
	if _, err := srv.WaitMessage(ctxFor(t), alicePh, bobPh, func(m wasim.Message) bool { return m.Text() == "listen to this" }); err != nil {
		t.Errorf("the audio's caption never reached Bob: %v", err)
	}

	// A location.
	m := bobGot(t, srv, tb.sendMatrix(t, ul, portal, &event.MessageEventContent{MsgType: event.MsgLocation, Body: "Meet here", GeoURI: "geo:51.5007,-0.1246"}))
	if loc := m.Message.GetLocationMessage(); loc.GetDegreesLatitude() != 51.5007 || loc.GetDegreesLongitude() != -0.1246 || loc.GetName() != "Meet here" {
		t.Errorf("location: %+v", loc)
	}
	// The room features say what goes.
	caps := ul.Client.GetCapabilities(ctxFor(t), portal)
	if caps.File[event.MsgImage] == nil || caps.File[event.CapMsgVoice] == nil || caps.File[event.MsgFile].MaxSize != WhatsAppMaxFileSize ||
		caps.LocationMessage != event.CapLevelFullySupported {
		t.Errorf("room features %+v", caps.File)
	}
}

// TestExpiredMediaFromWhatsApp: media past WhatsApp's retention leave a
// placeholder, a media retry receipt makes the phone upload it again, and
// the placeholder is edited into the file, byte for byte.
func TestExpiredMediaFromWhatsApp(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	ctx := ctxFor(t)
	data := random.Bytes(25_000)
	msg, up, err := srv.MediaMessage(wasim.MediaSpec{Kind: wasim.KindDocument, Data: data, MIME: "application/pdf", FileName: "old.pdf", Caption: "from last year"})
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.ExpireMedia(up.DirectPath); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendMessage(ctx, bobPh, alicePh, msg); err != nil {
		t.Fatal(err)
	}
	placeholder := tb.waitMsg(t, "placeholder", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "expired") })
	if !strings.Contains(placeholder.Content.Body, "old.pdf") || !strings.Contains(placeholder.Content.Body, "from last year") {
		t.Errorf("placeholder %q", placeholder.Content.Body)
	}
	edit := tb.waitMsg(t, "the file", func(m fakematrix.Message) bool { return m.Replaces() == placeholder.EventID })
	nc := edit.Content.NewContent
	if nc == nil || nc.MsgType != event.MsgFile || nc.FileName != "old.pdf" || nc.Body != "from last year" {
		t.Fatalf("edit %+v", nc)
	}
	if got := mxBytes(t, tb, nc); !bytes.Equal(got, data) {
		t.Fatalf("re-uploaded file: %d bytes differ from the %d sent", len(got), len(data))
	}
	if srv.MediaRetries() != 1 {
		t.Fatalf("%d media retries", srv.MediaRetries())
	}
}

// TestMediaLimitsAndRefusals: a file over the gateway's limit, or refused
// by the media check, is a notice naming the file, its type, its size and
// the reason, with the message's text kept; from Matrix it fails with the
// reason.
func TestMediaLimitsAndRefusals(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	portal := bobPortal(t, tb, srv, ul)
	ctx := ctxFor(t)
	tb.conn.Limits.SetGateway(50_000)
	t.Cleanup(func() { tb.conn.Limits.SetGateway(0) })
	var mu sync.Mutex
	var asked []remote.Media
	checked := func() []remote.Media {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
	tb.conn.SetMediaCheck(func(_ context.Context, m remote.Media) error {
		mu.Lock()
		asked = append(asked, m)
		mu.Unlock()
		if m.MIME == "application/x-msdownload" {
			return &remote.Refusal{Reason: "executables are not allowed"}
		}
		return nil
	})

	// Inbound, too big.
	if _, _, err := srv.SendMedia(ctx, bobPh, alicePh, wasim.MediaSpec{Kind: wasim.KindDocument, Data: random.Bytes(60_000), MIME: "application/pdf", FileName: "big.pdf", Caption: "too big?"}); err != nil {
		t.Fatal(err)
	}
	big := tb.waitMsg(t, "too-big notice", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "big.pdf") })
	if b := big.Content.Body; !strings.Contains(b, "too big?") || !strings.Contains(b, "application/pdf") || !strings.Contains(b, "58.6 KB") ||
		!strings.Contains(b, "48.8 KB limit") || big.Content.URL != "" {
		t.Errorf("too-big notice %q", b)
	}
	// Inbound, over the homeserver's upload limit (bridgev2 hands it over).
	tb.conn.SetMaxFileSize(30_000)
	t.Cleanup(func() { tb.conn.SetMaxFileSize(0) })
	if _, _, err := srv.SendMedia(ctx, bobPh, alicePh, wasim.MediaSpec{Kind: wasim.KindVideo, Data: random.Bytes(40_000), MIME: "video/mp4"}); err != nil {
		t.Fatal(err)
	}
	hs := tb.waitMsg(t, "homeserver-limit notice", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "video.mp4") })
	if !strings.Contains(hs.Content.Body, "video/mp4, 39.1 KB") || !strings.Contains(hs.Content.Body, "29.3 KB limit") {
		t.Errorf("homeserver-limit notice %q", hs.Content.Body)
	}
	tb.conn.SetMaxFileSize(0)

	// Inbound, refused.
	if _, _, err := srv.SendMedia(ctx, bobPh, alicePh, wasim.MediaSpec{Kind: wasim.KindDocument, Data: random.Bytes(1_000), MIME: "application/x-msdownload", FileName: "setup.exe"}); err != nil {
		t.Fatal(err)
	}
	refused := tb.waitMsg(t, "refusal notice", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "setup.exe") })
	if !strings.Contains(refused.Content.Body, "executables are not allowed") || refused.Content.MsgType != event.MsgNotice {
		t.Errorf("refusal notice %+v", refused.Content)
	}
	if asked := checked(); len(asked) < 2 || asked[0].Direction != remote.MediaInbound || asked[0].Remote != "whatsapp."+bobPh || asked[0].Size != 60_000 ||
		asked[0].Kind != remote.MediaFile || asked[0].PortalKey != portal.PortalKey {
		t.Errorf("media check asked %+v", asked)
	}

	// Outbound, too big and refused: the send fails with the reason.
	send := func(content *event.MessageEventContent) error {
		_, err := ul.Client.HandleMatrixMessage(ctx, &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
			Event: &event.Event{ID: testEventID(), Sender: testUser, RoomID: portal.MXID, Type: event.EventMessage}, Content: content, Portal: portal,
		}})
		return err
	}
	err := send(&event.MessageEventContent{MsgType: event.MsgFile, Body: "huge.zip", URL: uploadToMatrix(t, tb, random.Bytes(60_000)), Info: &event.FileInfo{MimeType: "application/zip"}})
	if !errors.Is(err, ErrFileNotSent) || !strings.Contains(err.Error(), "huge.zip") || !strings.Contains(err.Error(), "48.8 KB limit") {
		t.Errorf("too big outbound: %v", err)
	}
	err = send(&event.MessageEventContent{MsgType: event.MsgFile, Body: "tool.exe", URL: uploadToMatrix(t, tb, random.Bytes(2_000)), Info: &event.FileInfo{MimeType: "application/x-msdownload"}})
	if !errors.Is(err, ErrFileNotSent) || !strings.Contains(err.Error(), "executables are not allowed") {
		t.Errorf("refused outbound: %v", err)
	}
	tb.conn.SetMediaCheck(func(_ context.Context, m remote.Media) error {
		if m.Kind == remote.MediaLocation {
			return &remote.Refusal{Reason: "locations may not be shared"}
		}
		return nil
	})
	err = send(&event.MessageEventContent{MsgType: event.MsgLocation, Body: "here", GeoURI: "geo:1,2"})
	if !errors.Is(err, ErrFileNotSent) || !strings.Contains(err.Error(), "locations may not be shared") {
		t.Errorf("refused location: %v", err)
	}
	all := checked()
	last := all[len(all)-1]
	if last.Direction != remote.MediaOutbound || last.Name != "tool.exe" || last.Size != 2_000 || last.Remote != "whatsapp."+bobPh {
		t.Errorf("outbound media check %+v", last)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("Bob's phone got %d messages", n)
	}
}

// TestExpiredMediaNotRecovered: when the phone no longer has an expired
// file, or does not answer the media retry receipt in time, the placeholder
// becomes a notice that says so, with the caption kept.
func TestExpiredMediaNotRecovered(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	ctx := ctxFor(t)
	tb.conn.MediaRetryWait = 300 * time.Millisecond
	for _, tc := range []struct {
		name, caption, reason string
		lose                  func(path string) error
	}{
		{"lost.jpg", "gone from the phone", "no longer has it", srv.DeleteMedia},
		{"silent.jpg", "phone offline", "did not send it again in time", func(path string) error {
			srv.IgnoreMediaRetries(true)
			return srv.ExpireMedia(path)
		}},
	} {
		msg, up, err := srv.MediaMessage(wasim.MediaSpec{Kind: wasim.KindDocument, Data: random.Bytes(4_000), MIME: "image/jpeg", FileName: tc.name, Caption: tc.caption})
		if err != nil {
			t.Fatal(err)
		}
		if err = tc.lose(up.DirectPath); err != nil {
			t.Fatal(err)
		}
		if _, err = srv.SendMessage(ctx, bobPh, alicePh, msg); err != nil {
			t.Fatal(err)
		}
		placeholder := tb.waitMsg(t, tc.name+" placeholder", func(m fakematrix.Message) bool {
			return strings.Contains(m.Content.Body, tc.name) && m.Replaces() == ""
		})
		edit := tb.waitMsg(t, tc.name+" notice", func(m fakematrix.Message) bool { return m.Replaces() == placeholder.EventID })
		if nc := edit.Content.NewContent; nc == nil || !strings.Contains(nc.Body, tc.reason) || !strings.Contains(nc.Body, tc.caption) ||
			!strings.Contains(nc.Body, tc.name) || nc.URL != "" {
			t.Errorf("%s: final notice %+v", tc.name, nc)
		}
	}
	srv.IgnoreMediaRetries(false)
}

// TestHeldMediaRedownloadedAtDelivery: a held media message keeps only the
// message (with its media key and direct path), not the file; delivered
// later, after the file expired on WhatsApp's server, it is asked again
// from the phone and reaches Matrix byte for byte.
func TestHeldMediaRedownloadedAtDelivery(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	var mu sync.Mutex
	var held []remote.Holdable
	release := false
	tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		mu.Lock()
		defer mu.Unlock()
		if h, ok := evt.(remote.Holdable); ok && !release {
			held = append(held, h)
			return bridgev2.EventHandlingResultSuccess
		}
		return remote.Direct(login, evt)
	})
	ul := loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	ctx := ctxFor(t)
	data := random.Bytes(200_000)
	_, up, err := srv.SendMedia(ctx, bobPh, alicePh, wasim.MediaSpec{Kind: wasim.KindImage, Data: data, MIME: "image/jpeg", Caption: "held photo"})
	if err != nil {
		t.Fatal(err)
	}
	var h remote.Holdable
	if !tb.mx.Eventually(waitLong, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(held) > 0 {
			h = held[0]
		}
		return h != nil
	}) {
		t.Fatal("the photo was not held")
	}
	payload, err := h.HoldPayload()
	if err != nil {
		t.Fatal(err)
	}
	if len(payload) > 4096 {
		t.Fatalf("held payload is %d bytes: it must reference the file, not hold it", len(payload))
	}
	if err = srv.ExpireMedia(up.DirectPath); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	release = true
	mu.Unlock()
	evt, err := ul.Client.(remote.HeldEventDecoder).DecodeHeldEvent(ctx, ul, payload)
	if err != nil {
		t.Fatal(err)
	}
	if res := ul.QueueRemoteEvent(evt); !res.Success {
		t.Fatalf("delivering the held photo: %+v", res)
	}
	placeholder := tb.waitMsg(t, "placeholder", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "expired") })
	edit := tb.waitMsg(t, "the photo", func(m fakematrix.Message) bool { return m.Replaces() == placeholder.EventID })
	if nc := edit.Content.NewContent; nc == nil || nc.MsgType != event.MsgImage || nc.Body != "held photo" || !bytes.Equal(mxBytes(t, tb, nc), data) {
		t.Fatalf("delivered photo %+v", nc)
	}
}

// TestMediaFromMatrixThroughBridge: files sent from a Matrix client pass
// bridgev2's check against the declared room features and reach the
// contact; a file over the limit gets a failed message status, with a
// notice, that names the file and the limit.
func TestMediaFromMatrixThroughBridge(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	portal := bobPortal(t, tb, srv, ul)
	ctx := ctxFor(t)
	webp := append([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), random.Bytes(2_000)...)
	jpeg := append([]byte("\xff\xd8\xff\xe0"), random.Bytes(9_000)...)
	for _, ev := range []struct {
		typ     event.Type
		content *event.MessageEventContent
		data    []byte
	}{
		{event.EventMessage, &event.MessageEventContent{MsgType: event.MsgImage, Body: "photo.jpg", Info: &event.FileInfo{MimeType: "image/jpeg", Size: len(jpeg)}}, jpeg},
		{event.EventSticker, &event.MessageEventContent{Body: "wave", Info: &event.FileInfo{MimeType: "image/webp", Size: len(webp), Width: 256, Height: 256}}, webp},
	} {
		ev.content.URL = uploadToMatrix(t, tb, ev.data)
		evtID := testEventID()
		tb.mx.Inject(ctx, &event.Event{Type: ev.typ, RoomID: portal.MXID, Sender: testUser, ID: evtID, Content: event.Content{Parsed: ev.content}})
		m, err := srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool {
			got, err := srv.Download(m.Message)
			return err == nil && bytes.Equal(got, ev.data)
		})
		if err != nil {
			t.Fatalf("%s never reached Bob: %v (statuses %+v)", ev.content.Body, err, tb.mx.StatusesOf(evtID))
		}
		if ev.typ == event.EventSticker && m.Message.GetStickerMessage() == nil {
			t.Errorf("sticker arrived as %+v", m.Message)
		}
	}

	tb.conn.Limits.SetGateway(1 << 20)
	t.Cleanup(func() { tb.conn.Limits.SetGateway(0) })
	evtID := testEventID()
	tb.mx.Inject(ctx, &event.Event{Type: event.EventMessage, RoomID: portal.MXID, Sender: testUser, ID: evtID, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgFile, Body: "archive.zip", URL: uploadToMatrix(t, tb, random.Bytes(3<<19)), Info: &event.FileInfo{MimeType: "application/zip", Size: 3 << 19},
	}}})
	notice := tb.waitMsg(t, "too-big notice", func(m fakematrix.Message) bool {
		return m.RoomID == portal.MXID && m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, "too large")
	})
	if !strings.Contains(notice.Content.Body, "1.5 MiB is larger than the maximum of 1.0 MiB") {
		t.Errorf("too-big notice %q", notice.Content.Body)
	}
	for _, st := range tb.mx.StatusesOf(evtID) {
		if st.Status == event.MessageStatusSuccess {
			t.Errorf("too-big file reported sent")
		}
	}
}

// TestGroupMediaExpiredRetried: in a group, a member's expired photo is
// asked again from that member's phone (the receipt names the participant)
// and reaches the group's room byte for byte, from the member's ghost.
func TestGroupMediaExpiredRetried(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	ctx := ctxFor(t)
	gid, err := srv.CreateGroup(ctx, bobPh, "Project", "", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	data := random.Bytes(33_333)
	msg, up, err := srv.MediaMessage(wasim.MediaSpec{Kind: wasim.KindImage, Data: data, MIME: "image/jpeg", Caption: "group photo"})
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.ExpireMedia(up.DirectPath); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendGroupMessage(ctx, carolPh, gid, msg); err != nil {
		t.Fatal(err)
	}
	placeholder := tb.waitMsg(t, "placeholder", func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "expired") })
	edit := tb.waitMsg(t, "the photo", func(m fakematrix.Message) bool { return m.Replaces() == placeholder.EventID })
	if nc := edit.Content.NewContent; nc == nil || nc.MsgType != event.MsgImage || !bytes.Equal(mxBytes(t, tb, nc), data) || edit.Sender != carolGhst {
		t.Fatalf("group photo %+v from %s", nc, edit.Sender)
	}
}

// TestMediaEncryptedRoom: in an encrypted room the homeserver gets only
// ciphertext (the event carries the key and hashes), a Matrix client
// decrypts the exact bytes, and an encrypted file from Matrix reaches the
// contact decrypted.
func TestMediaEncryptedRoom(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	awaitReceiptsAtEnd(t, srv)
	portal := bobPortal(t, tb, srv, ul)
	tb.mx.SetEncryptedMedia(true)
	ctx := ctxFor(t)
	data := random.Bytes(45_000)
	if _, _, err := srv.SendMedia(ctx, bobPh, alicePh, wasim.MediaSpec{Kind: wasim.KindImage, Data: data, MIME: "image/jpeg", Thumbnail: []byte("\xff\xd8small")}); err != nil {
		t.Fatal(err)
	}
	got := tb.waitMsg(t, "encrypted photo", func(m fakematrix.Message) bool { return m.Content.MsgType == event.MsgImage })
	c := got.Content
	if c.File == nil || c.URL != "" || c.File.URL == "" || c.Info.ThumbnailFile == nil || c.Info.ThumbnailURL != "" {
		t.Fatalf("photo in an encrypted room: url %q file %+v thumbnail %+v", c.URL, c.File, c.Info.ThumbnailFile)
	}
	if stored, _ := tb.mx.Media(c.File.URL); bytes.Equal(stored, data) {
		t.Fatal("the homeserver holds the plaintext")
	}
	if !bytes.Equal(mxBytes(t, tb, c), data) {
		t.Fatal("decrypted photo differs from the one sent")
	}

	// From Matrix: a client's encrypted upload.
	out := random.Bytes(12_000)
	uri, file, err := tb.mx.Intent(testUser).UploadMedia(ctx, portal.MXID, out, "", "")
	if err != nil || file == nil {
		t.Fatalf("encrypted upload: %v", err)
	}
	m := bobGot(t, srv, tb.sendMatrix(t, ul, portal, &event.MessageEventContent{MsgType: event.MsgFile, Body: "notes.bin", File: file,
		Info: &event.FileInfo{MimeType: "application/octet-stream", Size: len(out)}}))
	if dl, err := srv.Download(m.Message); err != nil || !bytes.Equal(dl, out) {
		t.Fatalf("Bob decrypted %d bytes (%v), want the %d sent (uploaded as %s)", len(dl), err, len(out), uri)
	}
}

// awaitReceiptsAtEnd makes the test wait, before the bridge stops, until
// Alice's client sent its receipt for every message the contacts sent it:
// whatsmeow sends receipts from goroutines that race its Disconnect.
func awaitReceiptsAtEnd(t *testing.T, srv *wasim.Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := srv.AwaitReceipts(ctx, alicePh); err != nil {
			t.Errorf("Alice's client did not send every receipt: %v", err)
		}
	})
}
