package media

import (
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
)

func TestSniff(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	jpeg := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	pdf := []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3")
	zip := []byte("PK\x03\x04\x14\x00\x06\x00")
	gz := []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00")
	tests := []struct {
		name, declared, file string
		head                 []byte
		want                 string
	}{
		{"declared specific wins over sniff", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "a.docx", zip, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"declared params stripped", "Image/PNG; q=1", "", png, "image/png"},
		{"octet-stream loses to sniff", "application/octet-stream", "x", pdf, "application/pdf"},
		{"nothing declared: sniff", "", "", jpeg, "image/jpeg"},
		{"text/plain declared loses to sniffed pdf", "text/plain", "", pdf, "application/pdf"},
		{"generic sniff loses to extension", "", "sticker.tgs", []byte{0, 1, 2}, "application/x-tgsticker"},
		{"gzip sniffed beats extension", "", "sticker.tgs", gz, "application/x-gzip"},
		{"text sniffed loses to extension", "", "card.vcf", []byte("BEGIN:VCARD\r\n"), "text/vcard"},
		{"text stays text without extension", "", "notes", []byte("hello"), "text/plain"},
		{"unknown everything", "", "blob.unknownext", []byte{0, 1, 2, 3, 0xfe}, "application/octet-stream"},
		{"empty input", "", "", nil, "application/octet-stream"},
		{"extension case-insensitive", "", "REPORT.PDF", nil, "application/pdf"},
		{"invalid declared ignored", ";;;", "a.mp3", nil, "audio/mpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sniff(tt.declared, tt.file, tt.head); got != tt.want {
				t.Errorf("Sniff(%q, %q) = %q, want %q", tt.declared, tt.file, got, tt.want)
			}
		})
	}
}

func TestExtensionFor(t *testing.T) {
	for mt, want := range map[string]string{
		"image/jpeg": ".jpg", "IMAGE/JPEG; x=y": ".jpg", "audio/ogg": ".ogg", "video/mp4": ".mp4",
		"application/pdf": ".pdf", "application/x-unknown": "", "": "",
	} {
		if got := ExtensionFor(mt); got != want {
			t.Errorf("ExtensionFor(%q) = %q, want %q", mt, got, want)
		}
	}
	// every extension the table maps to comes back to a type of its own
	for mt, ext := range mimeToExt {
		if MIMEForName("x"+ext) == "" {
			t.Errorf("extension %q of %q is unknown to MIMEForName", ext, mt)
		}
	}
}

func TestSafeFileName(t *testing.T) {
	long := strings.Repeat("é", 150) + ".pdf"
	tests := []struct{ in, fallback, mime, want string }{
		{"report.pdf", "", "", "report.pdf"},
		{"../../etc/passwd", "", "", "passwd"},
		{`C:\Users\me\secret.docx`, "", "", "secret.docx"},
		{"bad\x00na\x1bme\u202e.txt", "", "", "badname.txt"},
		{"  ..hidden.. ", "", "", "hidden"},
		{"", "photo", "image/jpeg", "photo.jpg"},
		{"/", "", "", "file"},
		{"", "voice.ogg", "audio/ogg", "voice.ogg"},
		{"", "", "application/pdf", "file.pdf"},
	}
	for _, tt := range tests {
		if got := SafeFileName(tt.in, tt.fallback, tt.mime); got != tt.want {
			t.Errorf("SafeFileName(%q, %q, %q) = %q, want %q", tt.in, tt.fallback, tt.mime, got, tt.want)
		}
	}
	got := SafeFileName(long, "", "")
	if len(got) > MaxFileNameBytes || !strings.HasSuffix(got, ".pdf") || !strings.HasPrefix(got, "éé") {
		t.Errorf("long name cut to %d bytes %q", len(got), got)
	}
}

func TestFormatSizeAndNotice(t *testing.T) {
	sizes := map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KB", 1536: "1.5 KB",
		10 << 20: "10 MB", 12*(1<<20) + 300*1024: "12.3 MB", 2 << 30: "2 GB", -1: "unknown size",
	}
	for n, want := range sizes {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	notices := []struct {
		name, mime string
		size       int64
		reason     string
		want       string
	}{
		{"file.pdf", "application/pdf", 12*(1<<20) + 300*1024, TooLargeReason(10 << 20),
			"file.pdf (application/pdf, 12.3 MB) was not bridged: larger than the 10 MB limit"},
		{"", "image/png", -1, "refused by policy", "A file (image/png) was not bridged: refused by policy"},
		{"a.bin", "", 2048, "", "a.bin (2 KB) was not bridged"},
	}
	for _, tt := range notices {
		if got := NotBridgedNotice(tt.name, tt.mime, tt.size, tt.reason); got != tt.want {
			t.Errorf("NotBridgedNotice = %q, want %q", got, tt.want)
		}
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		gateway, homeserver, network int64
		in, out                      int64
	}{
		{0, 0, 0, 0, 0},
		{100, 0, 0, 100, 100},
		{0, 50, 0, 50, 0},
		{100, 50, 0, 50, 100},
		{100, 500, 2000, 100, 100},
		{0, 500, 2000, 500, 2000},
		{300, 500, 200, 300, 200},
	}
	for _, tt := range tests {
		l := NewLimits(tt.gateway)
		l.SetHomeserver(tt.homeserver)
		if got := l.Inbound(); got != tt.in {
			t.Errorf("gateway %d homeserver %d: Inbound = %d, want %d", tt.gateway, tt.homeserver, got, tt.in)
		}
		if got := l.Outbound(tt.network); got != tt.out {
			t.Errorf("gateway %d network %d: Outbound = %d, want %d", tt.gateway, tt.network, got, tt.out)
		}
	}
	if !Fits(10, 0) || !Fits(10, 10) || Fits(11, 10) || !Fits(-1, 10) {
		t.Error("Fits gives wrong answers")
	}
}

func TestGeo(t *testing.T) {
	tests := []struct {
		loc  Location
		uri  string
		body string
	}{
		{Location{Latitude: 48.858844, Longitude: 2.294351}, "geo:48.858844,2.294351", "Location (geo:48.858844,2.294351)"},
		{Location{Latitude: -33.8567844, Longitude: 151.213108, Title: "Opera House", Address: "Bennelong Point"},
			"geo:-33.856784,151.213108", "Location: Opera House, Bennelong Point (geo:-33.856784,151.213108)"},
		{Location{Latitude: 0, Longitude: -0.0000001, Live: true}, "geo:0,0", "Live location (geo:0,0)"},
		{Location{Latitude: 10.5, Longitude: 20, Address: "Somewhere"}, "geo:10.5,20", "Location: Somewhere (geo:10.5,20)"},
	}
	for _, tt := range tests {
		if got := tt.loc.GeoURI(); got != tt.uri {
			t.Errorf("GeoURI = %q, want %q", got, tt.uri)
		}
		if got := tt.loc.Body(); got != tt.body {
			t.Errorf("Body = %q, want %q", got, tt.body)
		}
		lat, long, err := ParseGeoURI(tt.uri)
		if err != nil || lat-tt.loc.Latitude > 1e-6 || tt.loc.Latitude-lat > 1e-6 || long-tt.loc.Longitude > 1e-6 || tt.loc.Longitude-long > 1e-6 {
			t.Errorf("ParseGeoURI(%q) = %v, %v, %v", tt.uri, lat, long, err)
		}
	}
	parse := []struct {
		uri       string
		lat, long float64
		ok        bool
	}{
		{"geo:1.5,-2.25;u=35", 1.5, -2.25, true},
		{"GEO:1,2,300", 1, 2, true},
		{"geo:91,0", 0, 0, false},
		{"geo:0,181", 0, 0, false},
		{"geo:abc,1", 0, 0, false},
		{"geo:1", 0, 0, false},
		{"http://x", 0, 0, false},
		{"geo:NaN,1", 0, 0, false},
	}
	for _, tt := range parse {
		lat, long, err := ParseGeoURI(tt.uri)
		if (err == nil) != tt.ok || (tt.ok && (lat != tt.lat || long != tt.long)) {
			t.Errorf("ParseGeoURI(%q) = %v, %v, %v", tt.uri, lat, long, err)
		}
	}
}

func TestVCard(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Contact
		err  bool
	}{
		{"vcard 3 with waid", "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nFN:Jane Doe\r\nitem1.TEL;waid=33612345678:+33 6 12 34 56 78\r\nTEL;TYPE=WORK,VOICE:+33 1 00 00 00 00\r\nEND:VCARD\r\n",
			Contact{Name: "Jane Doe", Phones: []Phone{{Number: "+33 6 12 34 56 78", WAID: "33612345678"}, {Number: "+33 1 00 00 00 00", Type: "work"}}}, false},
		{"vcard 2.1 no FN", "BEGIN:VCARD\nVERSION:2.1\nN:Smith;John\nTEL;CELL:+1 555 0100\nEND:VCARD\n",
			Contact{Name: "John Smith", Phones: []Phone{{Number: "+1 555 0100", Type: "cell"}}}, false},
		{"vcard 4 uri and folding, escapes", "BEGIN:VCARD\nVERSION:4.0\nFN:Ann\\, the\n  Second\nTEL;VALUE=uri;TYPE=\"cell\":tel:+44-20-7946-0000\nEND:VCARD\nBEGIN:VCARD\nFN:Other\nEND:VCARD\n",
			Contact{Name: "Ann, the Second", Phones: []Phone{{Number: "+44-20-7946-0000", Type: "cell"}}}, false},
		{"not a vcard", "hello", Contact{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVCard([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if got.Name != tt.want.Name || len(got.Phones) != len(tt.want.Phones) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got.Phones {
				if got.Phones[i] != tt.want.Phones[i] {
					t.Errorf("phone %d = %+v, want %+v", i, got.Phones[i], tt.want.Phones[i])
				}
			}
		})
	}
	c := Contact{Name: "Zoë; O'Brien", Phones: []Phone{{Number: "+33 6 00", Type: "cell"}, {Number: "+1 2", WAID: "12"}}}
	back, err := ParseVCard(c.VCard())
	if err != nil || back.Name != c.Name || len(back.Phones) != 2 || back.Phones[0] != c.Phones[0] || back.Phones[1] != c.Phones[1] {
		t.Errorf("round trip gave %+v, %v", back, err)
	}
	if got, want := c.Body(), "Contact: Zoë; O'Brien\n+33 6 00 (cell)\n+1 2"; got != want {
		t.Errorf("Body = %q, want %q", got, want)
	}
	if got := (Contact{}).FileName(); got != "contact.vcf" {
		t.Errorf("FileName of nameless contact = %q", got)
	}
	if got := c.FileName(); got != "Zoë; O'Brien.vcf" {
		t.Errorf("FileName = %q", got)
	}
}

func TestWaveforms(t *testing.T) {
	// Telegram packing: known vector (values 0..31 in order, 5 bits each LSB first)
	vals := make([]int, 32)
	for i := range vals {
		vals[i] = i
	}
	packed := EncodeTelegramWaveform(vals)
	if len(packed) != 20 {
		t.Fatalf("32 values packed into %d bytes, want 20", len(packed))
	}
	// first byte: value0 (0) bits 0-4, low 3 bits of value1 (1) at bits 5-7
	if packed[0] != 0x20 || packed[1] != 0x88 {
		t.Errorf("packing starts % x, want 20 88", packed[:2])
	}
	if got := DecodeTelegramWaveform(packed); !equalInts(got, vals) {
		t.Errorf("decode(encode) = %v", got)
	}
	if got := len(EncodeTelegramWaveform(make([]int, 100))); got != 63 {
		t.Errorf("100 values pack to %d bytes, want 63", got)
	}
	// clamped
	if got := DecodeTelegramWaveform(EncodeTelegramWaveform([]int{-5, 99}))[:2]; !equalInts(got, []int{0, 31}) {
		t.Errorf("clamp gave %v", got)
	}

	tests := []struct {
		name string
		got  []int
		want []int
	}{
		{"whatsapp to matrix", WaveformFromWhatsApp([]byte{0, 50, 100, 200}), []int{0, 512, 1024, 1024}},
		{"telegram to matrix", WaveformFromTelegram(EncodeTelegramWaveform([]int{0, 31, 16})), []int{0, 1024, 529}},
	}
	for _, tt := range tests {
		if !equalInts(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	mx := make([]int, 100)
	for i := range mx {
		mx[i] = i * 1024 / 99
	}
	wa := WaveformToWhatsApp(mx)
	if len(wa) != WhatsAppWaveformLen || wa[0] != 0 || wa[63] < 95 || wa[63] > 100 {
		t.Errorf("to whatsapp = %v", wa)
	}
	tg := DecodeTelegramWaveform(WaveformToTelegram(mx))
	if len(tg) != TelegramWaveformLen || tg[0] != 0 || tg[99] != 31 {
		t.Errorf("to telegram = %v", tg)
	}
	for i := 1; i < len(tg); i++ {
		if tg[i] < tg[i-1] {
			t.Fatalf("rising waveform not rising after conversion at %d: %v", i, tg)
		}
	}
	if WaveformToWhatsApp(nil) != nil || WaveformToTelegram(nil) != nil {
		t.Error("empty waveform should stay empty")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCaptions(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		caption   Caption
		body      string
		formatted string
	}{
		{"no caption", "a.jpg", Caption{}, "a.jpg", ""},
		{"caption", "a.jpg", Caption{Text: "look", HTML: "<b>look</b>"}, "look", "<b>look</b>"},
		{"plain caption", "a.jpg", Caption{Text: "look"}, "look", ""},
		{"caption equal to name", "a.jpg", Caption{Text: "a.jpg", HTML: "<i>a.jpg</i>"}, "a.jpg", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &event.MessageEventContent{MsgType: event.MsgImage, Format: event.FormatHTML, FormattedBody: "stale"}
			SetFileAndCaption(c, tt.file, tt.caption)
			if c.Body != tt.body || c.FileName != tt.file || c.FormattedBody != tt.formatted {
				t.Errorf("got body %q filename %q formatted %q", c.Body, c.FileName, c.FormattedBody)
			}
			if (c.FormattedBody != "") != (c.Format == event.FormatHTML) {
				t.Errorf("format %q with formatted body %q", c.Format, c.FormattedBody)
			}
			name, capt := FileAndCaption(c)
			wantCaption := tt.caption
			if tt.caption.Text == tt.file {
				wantCaption = Caption{}
			}
			if name != tt.file || capt != wantCaption {
				t.Errorf("read back %q %+v, want %q %+v", name, capt, tt.file, wantCaption)
			}
		})
	}
	// an event from an older client: body only
	name, capt := FileAndCaption(&event.MessageEventContent{MsgType: event.MsgFile, Body: "old.pdf"})
	if name != "old.pdf" || capt != (Caption{}) {
		t.Errorf("body-only event read as %q %+v", name, capt)
	}
}

func TestFileFeatures(t *testing.T) {
	ff := FileFeatures(2<<30, 4096,
		FileCap{MsgType: event.MsgImage, MIMETypes: Types("image/jpeg", "image/png"), Caption: event.CapLevelFullySupported, MaxSize: 10 << 20},
		FileCap{MsgType: event.MsgFile, MIMETypes: AllTypes(), Caption: event.CapLevelFullySupported},
		FileCap{MsgType: event.CapMsgSticker, MIMETypes: Types("image/webp"), Caption: event.CapLevelDropped},
	)
	img := ff[event.MsgImage]
	if img == nil || img.MaxSize != 10<<20 || img.MaxCaptionLength != 4096 || img.GetMimeSupport("image/png") != event.CapLevelFullySupported || img.GetMimeSupport("image/gif") != event.CapLevelRejected {
		t.Errorf("image features = %+v", img)
	}
	if f := ff[event.MsgFile]; f == nil || f.MaxSize != 2<<30 || f.GetMimeSupport("application/x-anything") != event.CapLevelFullySupported {
		t.Errorf("file features = %+v", f)
	}
	if s := ff[event.CapMsgSticker]; s == nil || s.MaxCaptionLength != 0 || s.Caption != event.CapLevelDropped {
		t.Errorf("sticker features = %+v", s)
	}
	if _, ok := ff[event.MsgVideo]; ok {
		t.Error("video declared without being asked")
	}
}
