package tgmedia

import (
	"strings"
	"testing"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
)

func TestDocumentFile(t *testing.T) {
	voice := &tg.DocumentAttributeAudio{Voice: true, Duration: 5}
	voice.SetWaveform(media.EncodeTelegramWaveform([]int{31, 0}))
	tests := []struct {
		name     string
		mime     string
		attrs    []tg.DocumentAttributeClass
		kind     remote.MediaKind
		msgType  event.MessageType
		evtType  event.Type
		fileName string
		note     string
		check    func(t *testing.T, f *InboundFile)
	}{
		{"plain document", "application/pdf", []tg.DocumentAttributeClass{&tg.DocumentAttributeFilename{FileName: "../../a report.pdf"}},
			remote.MediaFile, event.MsgFile, event.EventMessage, "a report.pdf", "", nil},
		{"document without name", "application/zip", nil, remote.MediaFile, event.MsgFile, event.EventMessage, "file2s.zip", "", nil},
		{"video", "video/mp4", []tg.DocumentAttributeClass{&tg.DocumentAttributeVideo{W: 640, H: 480, Duration: 2.5}, &tg.DocumentAttributeFilename{FileName: "v.mp4"}},
			remote.MediaVideo, event.MsgVideo, event.EventMessage, "v.mp4", "", func(t *testing.T, f *InboundFile) {
				if f.Info.Width != 640 || f.Info.Duration != 2500 || f.Info.MauGIF {
					t.Errorf("video info %+v", f.Info)
				}
			}},
		{"gif", "video/mp4", []tg.DocumentAttributeClass{&tg.DocumentAttributeVideo{W: 1, H: 1}, &tg.DocumentAttributeAnimated{}},
			remote.MediaGIF, event.MsgVideo, event.EventMessage, "file2s.mp4", "", func(t *testing.T, f *InboundFile) {
				if !f.Info.MauGIF || !f.Info.IsAnimated {
					t.Errorf("gif not looping %+v", f.Info)
				}
			}},
		{"voice", "audio/ogg", []tg.DocumentAttributeClass{voice}, remote.MediaVoice, event.MsgAudio, event.EventMessage, "voice2s.ogg", "",
			func(t *testing.T, f *InboundFile) {
				if !f.Voice || f.Info.Duration != 5000 || len(f.Waveform) < 2 || f.Waveform[0] != 1024 || f.Waveform[1] != 0 {
					t.Errorf("voice %+v %v", f.Info, f.Waveform)
				}
			}},
		{"audio named from tags", "audio/mpeg", []tg.DocumentAttributeClass{&tg.DocumentAttributeAudio{Duration: 3, Title: "T", Performer: "P"}},
			remote.MediaAudio, event.MsgAudio, event.EventMessage, "P - T.mp3", "", nil},
		{"webp sticker", "image/webp", []tg.DocumentAttributeClass{&tg.DocumentAttributeSticker{Alt: "😀"}, &tg.DocumentAttributeImageSize{W: 512, H: 512}},
			remote.MediaSticker, "", event.EventSticker, "sticker.webp", "😀", nil},
		{"tgs sticker", "application/x-tgsticker", []tg.DocumentAttributeClass{&tg.DocumentAttributeSticker{Alt: "🎉"}},
			remote.MediaSticker, event.MsgFile, event.EventMessage, "sticker.tgs", "Animated sticker 🎉", nil},
		{"webm sticker", "video/webm", []tg.DocumentAttributeClass{&tg.DocumentAttributeSticker{Alt: "🔥"}, &tg.DocumentAttributeVideo{W: 512, H: 512}},
			remote.MediaSticker, event.MsgVideo, event.EventMessage, "sticker.webm", "Sticker 🔥", func(t *testing.T, f *InboundFile) {
				if !f.Info.MauGIF {
					t.Error("video sticker not looping")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := DocumentFile(&tg.Document{ID: 100, AccessHash: 7, FileReference: []byte{1}, MimeType: tt.mime, Size: 1234, Attributes: tt.attrs})
			if f.Kind != tt.kind || f.MsgType != tt.msgType || f.EvtType != tt.evtType || f.Name != tt.fileName || f.Note != tt.note || f.Size != 1234 {
				t.Errorf("got kind %s msgtype %q evt %s name %q note %q", f.Kind, f.MsgType, f.EvtType.Type, f.Name, f.Note)
			}
			loc, ok := f.Loc.(*tg.InputDocumentFileLocation)
			if !ok || loc.ID != 100 || loc.AccessHash != 7 || len(loc.FileReference) != 1 {
				t.Errorf("location %+v", f.Loc)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func TestPhotoFilePicksLargest(t *testing.T) {
	f, ok := PhotoFile(&tg.Photo{ID: 5, AccessHash: 6, FileReference: []byte{9}, Sizes: []tg.PhotoSizeClass{
		&tg.PhotoStrippedSize{Type: "i", Bytes: []byte{1}},
		&tg.PhotoSize{Type: "m", W: 320, H: 240, Size: 10_000},
		&tg.PhotoSizeProgressive{Type: "y", W: 1280, H: 960, Sizes: []int{1000, 50_000, 90_000}},
		&tg.PhotoSize{Type: "x", W: 800, H: 600, Size: 40_000},
	}})
	loc, _ := f.Loc.(*tg.InputPhotoFileLocation)
	if !ok || loc == nil || loc.ThumbSize != "y" || f.Size != 90_000 || f.Info.Width != 1280 || f.MsgType != event.MsgImage || f.MIME != "" {
		t.Errorf("photo file %+v %+v", f, loc)
	}
	if th, ok := f.Thumb.Loc.(*tg.InputPhotoFileLocation); f.Thumb == nil || !ok || th.ThumbSize != "m" || f.Thumb.Width != 320 || f.Thumb.Size != 10_000 {
		t.Errorf("thumbnail %+v", f.Thumb)
	}
	if _, ok := PhotoFile(&tg.Photo{Sizes: []tg.PhotoSizeClass{&tg.PhotoStrippedSize{Type: "i"}}}); ok {
		t.Error("a photo with only a stripped preview has no file")
	}
}

func TestInputMedia(t *testing.T) {
	file := &tg.InputFile{ID: 1, Parts: 1, Name: "x"}
	wave := []int{0, 512, 1024}
	tests := []struct {
		name    string
		content *event.MessageEventContent
		check   func(t *testing.T, m tg.InputMediaClass, f OutboundFile)
	}{
		{"jpeg image is a photo", &event.MessageEventContent{MsgType: event.MsgImage, Body: "a.jpg", Info: &event.FileInfo{MimeType: "image/jpeg"}},
			func(t *testing.T, m tg.InputMediaClass, _ OutboundFile) {
				if _, ok := m.(*tg.InputMediaUploadedPhoto); !ok {
					t.Errorf("%T", m)
				}
			}},
		{"big jpeg is a document", &event.MessageEventContent{MsgType: event.MsgImage, Body: "huge.jpg", Info: &event.FileInfo{MimeType: "image/jpeg", Size: MaxPhotoSize + 1}},
			func(t *testing.T, m tg.InputMediaClass, _ OutboundFile) {
				if d, ok := m.(*tg.InputMediaUploadedDocument); !ok || d.MimeType != "image/jpeg" {
					t.Errorf("%T", m)
				}
			}},
		{"gif image is a document with its size", &event.MessageEventContent{MsgType: event.MsgImage, Body: "funny", FileName: "a.gif", Info: &event.FileInfo{MimeType: "image/gif", Width: 10, Height: 20}},
			func(t *testing.T, m tg.InputMediaClass, f OutboundFile) {
				d := m.(*tg.InputMediaUploadedDocument)
				if d.MimeType != "image/gif" || len(d.Attributes) != 2 || f.Caption.Text != "funny" || f.Name != "a.gif" {
					t.Errorf("%+v %+v", d, f)
				}
			}},
		{"voice", &event.MessageEventContent{MsgType: event.MsgAudio, Body: "v.ogg", Info: &event.FileInfo{MimeType: "audio/ogg"},
			MSC3245Voice: &event.MSC3245Voice{}, MSC1767Audio: &event.MSC1767Audio{Duration: 2600, Waveform: wave}},
			func(t *testing.T, m tg.InputMediaClass, f OutboundFile) {
				a := m.(*tg.InputMediaUploadedDocument).Attributes[1].(*tg.DocumentAttributeAudio)
				if f.Kind != remote.MediaVoice || !a.Voice || a.Duration != 3 || len(media.DecodeTelegramWaveform(a.Waveform)) != media.TelegramWaveformLen {
					t.Errorf("%+v", a)
				}
			}},
		{"gif video is animated", &event.MessageEventContent{MsgType: event.MsgVideo, Body: "g.mp4", Info: &event.FileInfo{MimeType: "video/mp4", MauGIF: true, Duration: 1500}},
			func(t *testing.T, m tg.InputMediaClass, f OutboundFile) {
				d := m.(*tg.InputMediaUploadedDocument)
				_, animated := d.Attributes[2].(*tg.DocumentAttributeAnimated)
				if f.Kind != remote.MediaGIF || !animated || d.Attributes[1].(*tg.DocumentAttributeVideo).Duration != 1.5 {
					t.Errorf("%+v", d.Attributes)
				}
			}},
		{"file is forced to a file", &event.MessageEventContent{MsgType: event.MsgFile, Body: "notes.txt"},
			func(t *testing.T, m tg.InputMediaClass, f OutboundFile) {
				d := m.(*tg.InputMediaUploadedDocument)
				if !d.ForceFile || f.Size != -1 || f.Name != "notes.txt" {
					t.Errorf("%+v %+v", d, f)
				}
			}},
		{"sticker keeps its emoji, not as a caption", &event.MessageEventContent{MsgType: event.CapMsgSticker, Body: "😀", Info: &event.FileInfo{MimeType: "image/webp", Width: 5, Height: 5, Size: 10}},
			func(t *testing.T, m tg.InputMediaClass, f OutboundFile) {
				d := m.(*tg.InputMediaUploadedDocument)
				if st, ok := d.Attributes[1].(*tg.DocumentAttributeSticker); !ok || st.Alt != "😀" || f.Caption.Text != "" || f.Size != 10 {
					t.Errorf("%+v %+v", d.Attributes, f)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := DescribeOutbound(tt.content)
			f.MIME = media.Sniff(f.MIME, f.Name, nil)
			tt.check(t, InputMedia(tt.content, f, file), f)
		})
	}
}

func TestPollAndContact(t *testing.T) {
	poll := &tg.MessageMediaPoll{Poll: tg.Poll{Question: tg.TextWithEntities{Text: "Q?"}, MultipleChoice: true, PublicVoters: true,
		Answers: []tg.PollAnswerClass{&tg.PollAnswer{Text: tg.TextWithEntities{Text: "A"}, Option: []byte{0}}, &tg.PollAnswer{Text: tg.TextWithEntities{Text: "B"}, Option: []byte{1}}}}}
	start, text := PollStart(poll)
	if start.Kind != "org.matrix.msc3381.poll.disclosed" || start.MaxSelections != 2 || len(start.Answers) != 2 || start.Answers[1].ID != "b64:AQ" || text != "Q?\n1. A\n2. B" {
		t.Errorf("poll %+v %q", start, text)
	}
	poll.Poll.PublicVoters, poll.Poll.MultipleChoice = false, false
	if start, _ = PollStart(poll); start.Kind != "org.matrix.msc3381.poll.undisclosed" || start.MaxSelections != 1 {
		t.Errorf("anonymous poll %+v", start)
	}

	c, card := Contact(&tg.MessageMediaContact{PhoneNumber: "+1555", FirstName: "Ann"})
	if c.Name != "Ann" || len(c.Phones) != 1 {
		t.Errorf("contact %+v", c)
	}
	if back, err := media.ParseVCard(card); err != nil || back.Name != "Ann" || back.Phones[0].Number != "+1555" {
		t.Errorf("written vCard %q: %+v %v", card, back, err)
	}
	vcard := "BEGIN:VCARD\nFN:Bea Full\nTEL;TYPE=cell:+44 1\nEND:VCARD\n"
	c, card = Contact(&tg.MessageMediaContact{Vcard: vcard})
	if c.Name != "Bea Full" || c.Phones[0].Number != "+44 1" || string(card) != vcard {
		t.Errorf("contact from vCard %+v %q", c, card)
	}
}

func TestContactVote(t *testing.T) {
	av := func(opt byte, voters int, chosen bool) tg.PollAnswerVoters {
		return tg.PollAnswerVoters{Option: []byte{opt}, Voters: voters, Chosen: chosen}
	}
	results := func(total int, rs ...tg.PollAnswerVoters) tg.PollResults {
		r := tg.PollResults{TotalVoters: total}
		r.SetResults(rs)
		return r
	}
	tests := []struct {
		name string
		res  tg.PollResults
		want []string
		ok   bool
	}{
		{"contact voted B", results(1, av(0, 0, false), av(1, 1, false)), []string{"b64:AQ"}, true},
		{"both voted A", results(2, av(0, 2, true), av(1, 0, false)), []string{"b64:AA"}, true},
		{"only me", results(1, av(0, 1, true), av(1, 0, false)), []string{}, true},
		{"contact took it back", results(0, av(0, 0, false), av(1, 0, false)), []string{}, true},
		{"multiple choice", results(2, av(0, 2, true), av(1, 1, false)), []string{"b64:AA", "b64:AQ"}, true},
		{"plain options", results(1, av('1', 1, false)), []string{"1"}, true},
		{"no counts", tg.PollResults{}, nil, false},
	}
	for _, tt := range tests {
		got, ok := ContactVote(tt.res)
		if ok != tt.ok || strings.Join(got, ",") != strings.Join(tt.want, ",") || (tt.ok && got == nil) {
			t.Errorf("%s: %v %v, want %v %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestOptionIDs(t *testing.T) {
	for _, tt := range []struct {
		opt []byte
		id  string
	}{
		{[]byte("0"), "0"},
		{[]byte("opt-A_1.x~"), "opt-A_1.x~"},
		{[]byte{0, 1, 255}, "b64:AAH_"},
		{[]byte("with space"), "b64:d2l0aCBzcGFjZQ"},
	} {
		if got := OptionID(tt.opt); got != tt.id {
			t.Errorf("OptionID(%q) = %q, want %q", tt.opt, got, tt.id)
		}
		if back, ok := OptionBytes(tt.id); !ok || string(back) != string(tt.opt) {
			t.Errorf("OptionBytes(%q) = %q, %v", tt.id, back, ok)
		}
	}
	for _, bad := range []string{"", "b64:!!", "has space", strings.Repeat("a", 101)} {
		if _, ok := OptionBytes(bad); ok {
			t.Errorf("OptionBytes(%q) accepted", bad)
		}
	}
}

func TestInputPoll(t *testing.T) {
	opt := func(id, text string) event.PollOption {
		return event.PollOption{ID: id, MSC1767Message: event.MSC1767Message{Text: text}}
	}
	start := func(q string, max int, answers ...event.PollOption) *event.PollStartEventContent {
		return &event.PollStartEventContent{PollStart: event.PollStart{Question: event.MSC1767Message{Text: q}, MaxSelections: max, Answers: answers}}
	}
	tests := []struct {
		name    string
		in      *event.PollStartEventContent
		options string
		multi   bool
		err     string
	}{
		{"plain IDs kept", start("Q?", 1, opt("yes", "Yes"), opt("no", "No")), "yes,no", false, ""},
		{"odd and duplicate IDs get positions", start("Q?", 2, opt("a b", "A"), opt("x", "X"), opt("x", "X2")), "0,x,2", true, ""},
		{"binary option IDs from Telegram", start("Q?", 1, opt("b64:AAE", "A"), opt("1", "B")), "\x00\x01,1", false, ""},
		{"one answer", start("Q?", 1, opt("a", "A")), "", false, "2 to 10 answers"},
		{"empty question", start(" ", 1, opt("a", "A"), opt("b", "B")), "", false, "question is empty"},
		{"empty answer", start("Q", 1, opt("a", "A"), opt("b", " ")), "", false, "answer 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InputPoll(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var opts []string
			for _, a := range got.Poll.Answers {
				opts = append(opts, string(a.(*tg.PollAnswer).Option))
			}
			if strings.Join(opts, ",") != tt.options || got.Poll.MultipleChoice != tt.multi {
				t.Errorf("options %q multiple %v", opts, got.Poll.MultipleChoice)
			}
		})
	}
}
