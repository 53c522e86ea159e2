package policy_test

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/passerelle/passerelle/governance/policy"
)

// mediaSection is what an organisation writes: executables refused outbound
// on every network, WhatsApp inbound limited to 50 MB of images, videos and
// PDFs, Telegram outbound limited to 2 MiB.
const mediaSection = `
"*":
    outbound:
        refused_types: [application/x-msdownload, application/x-executable, application/vnd.microsoft.portable-executable, application/x-sh]
whatsapp:
    inbound: {max_size: 50MB, allowed_types: ["image/*", "video/*", application/pdf]}
telegram:
    outbound: {max_size: 2MiB}
`

func decodeMedia(t *testing.T, doc string) policy.MediaConfig {
	t.Helper()
	var cfg policy.MediaConfig
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMediaRules(t *testing.T) {
	cfg := decodeMedia(t, mediaSection)
	const mb = 1_000_000
	for _, c := range []struct {
		name      string
		file      policy.MediaFile
		cause     string // "" when allowed
		scope     string
		limit     policy.ByteSize
		pattern   string
		mimeShown string
	}{
		// WhatsApp inbound: size and allowed types.
		{"whatsapp inbound photo under the limit", policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "image/jpeg", Size: 3 * mb}, "", "", 0, "", ""},
		{"whatsapp inbound at the limit exactly", policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "video/mp4", Size: 50 * mb}, "", "", 0, "", ""},
		{"whatsapp inbound one byte over", policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "video/mp4", Size: 50*mb + 1}, policy.MediaTooLarge, "whatsapp", 50 * mb, "", "video/mp4"},
		{"whatsapp inbound type outside the list", policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "application/zip", Size: 10}, policy.MediaTypeNotAllowed, "whatsapp", 0, "", "application/zip"},
		{"whatsapp inbound type with parameters and capitals", policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "Application/PDF; name=x", Size: 10}, "", "", 0, "", ""},
		{"whatsapp inbound unknown size passes the size rule", policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "image/png", Size: -1}, "", "", 0, "", ""},
		{"whatsapp inbound location is not a file", policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "", Size: -1}, "", "", 0, "", ""},
		// WhatsApp outbound: only the "*" refusals.
		{"whatsapp outbound zip", policy.MediaFile{Network: "whatsapp", Direction: policy.Outbound, MIME: "application/zip", Size: 500 * mb}, "", "", 0, "", ""},
		{"whatsapp outbound exe", policy.MediaFile{Network: "whatsapp", Direction: policy.Outbound, MIME: "application/x-msdownload", Size: 10}, policy.MediaTypeRefused, "*", 0, "application/x-msdownload", "application/x-msdownload"},
		{"whatsapp outbound shell script", policy.MediaFile{Network: "whatsapp", Direction: policy.Outbound, MIME: "application/x-sh", Size: 10}, policy.MediaTypeRefused, "*", 0, "application/x-sh", "application/x-sh"},
		// Telegram: outbound limit in MiB and the "*" refusals; inbound free.
		{"telegram outbound at 2 MiB", policy.MediaFile{Network: "telegram", Direction: policy.Outbound, MIME: "application/pdf", Size: 2 << 20}, "", "", 0, "", ""},
		{"telegram outbound over 2 MiB", policy.MediaFile{Network: "telegram", Direction: policy.Outbound, MIME: "application/pdf", Size: 2<<20 + 1}, policy.MediaTooLarge, "telegram", 2 << 20, "", "application/pdf"},
		{"telegram outbound exe, small", policy.MediaFile{Network: "telegram", Direction: policy.Outbound, MIME: "application/vnd.microsoft.portable-executable", Size: 10}, policy.MediaTypeRefused, "*", 0, "application/vnd.microsoft.portable-executable", "application/vnd.microsoft.portable-executable"},
		{"telegram inbound exe is not refused", policy.MediaFile{Network: "telegram", Direction: policy.Inbound, MIME: "application/x-msdownload", Size: 900 * mb}, "", "", 0, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cfg.Check(c.file)
			if c.cause == "" {
				if got != nil {
					t.Fatalf("refused: %+v", got)
				}
				return
			}
			if got == nil || got.Cause != c.cause || got.Scope != c.scope || got.Limit != c.limit || got.Pattern != c.pattern || got.MIME != c.mimeShown {
				t.Fatalf("refusal %+v, want cause %s scope %s limit %d pattern %q mime %q", got, c.cause, c.scope, c.limit, c.pattern, c.mimeShown)
			}
		})
	}
	if got := cfg.Limit("telegram", policy.Outbound); got != 2<<20 {
		t.Errorf("telegram outbound limit %d", got)
	}
	if got := cfg.Limit("telegram", policy.Inbound); got != 0 {
		t.Errorf("telegram inbound limit %d, want none", got)
	}
}

// TestMediaDefaultsAllowEverything: no section (and empty rules) refuse
// nothing, whatever the size or type, both ways on both networks.
func TestMediaDefaultsAllowEverything(t *testing.T) {
	for _, cfg := range []policy.MediaConfig{nil, decodeMedia(t, "{}"), decodeMedia(t, "whatsapp: {inbound: {}, outbound: {}}")} {
		for _, network := range policy.Networks {
			for _, dir := range []policy.Direction{policy.Inbound, policy.Outbound} {
				for _, mime := range []string{"application/x-msdownload", "image/png", ""} {
					if r := cfg.Check(policy.MediaFile{Network: network, Direction: dir, MIME: mime, Size: 4 << 30}); r != nil {
						t.Errorf("%v: %s %s %s refused: %+v", cfg, network, dir, mime, r)
					}
				}
			}
		}
	}
}

// TestMediaBothScopesApply: a file must pass the "*" rules and its
// network's; the smaller limit wins, refused wins over allowed.
func TestMediaBothScopesApply(t *testing.T) {
	cfg := decodeMedia(t, `
"*": {inbound: {max_size: 10MB, allowed_types: ["*/*"], refused_types: ["video/*"]}}
telegram: {inbound: {max_size: 20MB, allowed_types: ["video/*", "image/*"]}}
`)
	for _, c := range []struct {
		file  policy.MediaFile
		cause string
		scope string
	}{
		{policy.MediaFile{Network: "telegram", Direction: policy.Inbound, MIME: "image/png", Size: 15_000_000}, policy.MediaTooLarge, "*"},
		{policy.MediaFile{Network: "telegram", Direction: policy.Inbound, MIME: "video/mp4", Size: 1}, policy.MediaTypeRefused, "*"},
		{policy.MediaFile{Network: "telegram", Direction: policy.Inbound, MIME: "audio/ogg", Size: 1}, policy.MediaTypeNotAllowed, "telegram"},
		{policy.MediaFile{Network: "whatsapp", Direction: policy.Inbound, MIME: "audio/ogg", Size: 1}, "", ""},
	} {
		got := cfg.Check(c.file)
		if c.cause == "" && got != nil || c.cause != "" && (got == nil || got.Cause != c.cause || got.Scope != c.scope) {
			t.Errorf("%+v: refusal %+v, want %q from %q", c.file, got, c.cause, c.scope)
		}
	}
	if got := cfg.Limit("telegram", policy.Inbound); got != 10_000_000 {
		t.Errorf("limit %d, want the smaller one", got)
	}
}

func TestMediaValidateNamesTheKey(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"signal: {outbound: {max_size: 1MB}}", `media.signal: unknown network`},
		{"whatsapp: {outbound: {refused_types: [exe]}}", `media.whatsapp.outbound.refused_types[0] "exe" is not a MIME type pattern`},
		{"telegram: {inbound: {allowed_types: [image/png, \"*/png\"]}}", `media.telegram.inbound.allowed_types[1] "*/png"`},
		{"\"*\": {inbound: {allowed_types: [\"image/ png\"]}}", `media.*.inbound.allowed_types[0]`},
	} {
		var cfg policy.MediaConfig
		if err := yaml.Unmarshal([]byte(c.doc), &cfg); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, policy.ErrInvalidConfig) {
			t.Errorf("%s: %v, want %q", c.doc, err, c.want)
		}
	}
	var cfg policy.MediaConfig
	err := yaml.Unmarshal([]byte("whatsapp: {inbound: {max_size: lots}}"), &cfg)
	if err == nil || !strings.Contains(err.Error(), `invalid size "lots"`) {
		t.Errorf("bad size: %v", err)
	}
}

func TestParseByteSizeAndHumanSize(t *testing.T) {
	for in, want := range map[string]policy.ByteSize{
		"0": 0, "": 0, "1048576": 1 << 20, "50MB": 50_000_000, "1.5 GB": 1_500_000_000, "512KiB": 512 << 10, "2mib": 2 << 20, "100k": 100_000, "7B": 7,
	} {
		if got, err := policy.ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1MB", "many", "1.5XB", "1e300GB"} {
		if _, err := policy.ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	for n, want := range map[int64]string{-1: "unknown size", 1: "1 byte", 812: "812 bytes", 1000: "1.0 kB", 1_400_000: "1.4 MB", 50_000_001: "50.0 MB", 999_999: "1.0 MB", 2_100_000_000: "2.1 GB"} {
		if got := policy.HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
