package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MediaConfig is the `media` section of the governance config: what files
// may cross, per network and direction. The key is a network name, or
// AnyNetwork ("*") for rules every network applies; a file must pass both
// the "*" rules and its network's rules. No entry: no limit beyond the
// gateway's own, and every type crosses.
//
//	media:
//	    "*":
//	        outbound: {refused_types: [application/x-msdownload, application/x-sh]}
//	    whatsapp:
//	        inbound: {max_size: 50MB, allowed_types: ["image/*", "video/*", application/pdf]}
type MediaConfig map[string]MediaDirections

// MediaDirections holds the rules of each direction of one network.
type MediaDirections struct {
	// Inbound: files sent by outside contacts to Matrix.
	Inbound MediaRules `yaml:"inbound,omitempty" json:"inbound"`
	// Outbound: files sent by staff members to the remote network.
	Outbound MediaRules `yaml:"outbound,omitempty" json:"outbound"`
}

// MediaRules limit the files of one network and direction. The zero value
// lets every file through.
type MediaRules struct {
	// MaxSize is the largest file allowed; 0 is no limit.
	MaxSize ByteSize `yaml:"max_size,omitempty" json:"max_size"`
	// AllowedTypes, when not empty, are the only MIME types allowed:
	// "application/pdf", "image/*" (every image), "*/*" (everything).
	AllowedTypes []string `yaml:"allowed_types,omitempty" json:"allowed_types"`
	// RefusedTypes are MIME types refused even when AllowedTypes match.
	RefusedTypes []string `yaml:"refused_types,omitempty" json:"refused_types"`
}

// ByteSize is a size in bytes, written in the config as a number of bytes or
// with a unit: "50MB", "1.5GB", "512KiB" (KB, MB, GB are powers of 1000;
// KiB, MiB, GiB of 1024).
type ByteSize int64

var _ yaml.Unmarshaler = (*ByteSize)(nil)

var byteUnits = []struct {
	suffix string
	factor float64
}{
	// Longest suffixes first: "MiB" before "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1},
}

// ParseByteSize parses "0", "1048576", "50MB", "1.5 GB" or "512KiB".
func ParseByteSize(s string) (ByteSize, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	if in == "" {
		return 0, nil
	}
	factor := 1.0
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(in, u.suffix); ok {
			in, factor = strings.TrimSpace(num), u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(in, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) || n*factor > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q (write e.g. 50MB, 1.5GB, 512KiB or a number of bytes)", s)
	}
	return ByteSize(math.Round(n * factor)), nil
}

// UnmarshalYAML accepts a number of bytes or a size with a unit.
func (b *ByteSize) UnmarshalYAML(node *yaml.Node) error {
	parsed, err := ParseByteSize(node.Value)
	if err != nil {
		return err
	}
	*b = parsed
	return nil
}

// MarshalYAML writes the size as a number of bytes.
func (b ByteSize) MarshalYAML() (any, error) { return int64(b), nil }

// String is the size for people: "812 bytes", "1.4 MB", "2.1 GB" (powers
// of 1000).
func (b ByteSize) String() string { return HumanSize(int64(b)) }

// HumanSize writes a size for people: "812 bytes", "1.4 MB"; "unknown size"
// for a negative one.
func HumanSize(n int64) string {
	switch {
	case n < 0:
		return "unknown size"
	case n == 1:
		return "1 byte"
	case n < 1000:
		return fmt.Sprintf("%d bytes", n)
	}
	v, unit := float64(n)/1e3, "kB"
	for _, next := range []string{"MB", "GB", "TB"} {
		if v < 999.95 {
			break
		}
		v, unit = v/1e3, next
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// MediaFile is a file about to cross, as the media rules see it.
type MediaFile struct {
	Network   string
	Direction Direction
	// MIME is the file's type; "" for something that is not a file (a
	// location, a poll): type rules do not apply to it.
	MIME string
	// Size in bytes; -1 when not known yet (the size rule cannot apply).
	Size int64
}

// Media refusal causes.
const (
	MediaTooLarge       = "too_large"
	MediaTypeNotAllowed = "type_not_allowed"
	MediaTypeRefused    = "type_refused"
)

// MediaRefusal says why the media rules refuse a file.
type MediaRefusal struct {
	// Cause is MediaTooLarge, MediaTypeNotAllowed or MediaTypeRefused.
	Cause string `json:"cause"`
	// Scope is the key of the rules that refused: a network or "*".
	Scope string `json:"scope"`
	// MIME is the file's type as the rules compared it.
	MIME string `json:"mime,omitempty"`
	// Limit is the max_size that a too large file passed.
	Limit ByteSize `json:"limit,omitempty"`
	// Pattern is the refused type that matched.
	Pattern string `json:"pattern,omitempty"`
	// Allowed are the allowed types of a file whose type is not among them.
	Allowed []string `json:"allowed,omitempty"`
}

// NormalizeMIME lowercases a MIME type and drops its parameters
// ("Text/Plain; charset=utf-8" is "text/plain").
func NormalizeMIME(mime string) string {
	mime, _, _ = strings.Cut(mime, ";")
	return strings.ToLower(strings.TrimSpace(mime))
}

// MatchMIME reports whether a MIME type (normalised) matches a pattern:
// "image/png", "image/*" or "*/*".
func MatchMIME(pattern, mime string) bool {
	pattern = NormalizeMIME(pattern)
	if pattern == "*/*" || pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(mime, prefix+"/")
	}
	return pattern == mime
}

// rules returns the rules of one network and direction: "*" first, then
// the network's own.
func (c MediaConfig) rules(network string, dir Direction) []scopedRules {
	var out []scopedRules
	for _, scope := range []string{AnyNetwork, network} {
		d, ok := c[scope]
		if !ok {
			continue
		}
		r := d.Inbound
		if dir == Outbound {
			r = d.Outbound
		}
		out = append(out, scopedRules{scope, r})
	}
	return out
}

type scopedRules struct {
	scope string
	MediaRules
}

// Check applies the media rules to f: nil lets it cross.
func (c MediaConfig) Check(f MediaFile) *MediaRefusal {
	mime := NormalizeMIME(f.MIME)
	for _, r := range c.rules(f.Network, f.Direction) {
		if r.MaxSize > 0 && f.Size > int64(r.MaxSize) {
			return &MediaRefusal{Cause: MediaTooLarge, Scope: r.scope, MIME: mime, Limit: r.MaxSize}
		}
		if mime == "" {
			continue
		}
		for _, p := range r.RefusedTypes {
			if MatchMIME(p, mime) {
				return &MediaRefusal{Cause: MediaTypeRefused, Scope: r.scope, MIME: mime, Pattern: NormalizeMIME(p)}
			}
		}
		if len(r.AllowedTypes) > 0 && !slices.ContainsFunc(r.AllowedTypes, func(p string) bool { return MatchMIME(p, mime) }) {
			return &MediaRefusal{Cause: MediaTypeNotAllowed, Scope: r.scope, MIME: mime, Allowed: r.AllowedTypes}
		}
	}
	return nil
}

// Limit is the smallest max_size that applies to a network and direction;
// 0 when none does.
func (c MediaConfig) Limit(network string, dir Direction) ByteSize {
	var limit ByteSize
	for _, r := range c.rules(network, dir) {
		if r.MaxSize > 0 && (limit == 0 || r.MaxSize < limit) {
			limit = r.MaxSize
		}
	}
	return limit
}

// validMIMEPattern reports whether p is "type/subtype", "type/*" or "*/*".
func validMIMEPattern(p string) bool {
	p = NormalizeMIME(p)
	typ, sub, ok := strings.Cut(p, "/")
	if !ok || !mimeToken(typ) && typ != "*" || !mimeToken(sub) && sub != "*" {
		return false
	}
	return typ != "*" || sub == "*"
}

// mimeToken reports whether s is a MIME type or subtype name (RFC 6838).
func mimeToken(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', strings.ContainsRune("!#$&-^_.+", c):
		default:
			return false
		}
	}
	return true
}

// Validate checks the section: known networks (or "*"), sizes not negative,
// well-formed type patterns. An error names the key.
func (c MediaConfig) Validate() error {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, network := range keys {
		if network != AnyNetwork && !slices.Contains(Networks, network) {
			return fmt.Errorf("%w: media.%s: unknown network (known: %s, or \"*\" for every network)",
				ErrInvalidConfig, network, strings.Join(Networks, ", "))
		}
		d := c[network]
		for _, dr := range []struct {
			name string
			r    MediaRules
		}{{"inbound", d.Inbound}, {"outbound", d.Outbound}} {
			at := "media." + network + "." + dr.name
			if dr.r.MaxSize < 0 {
				return fmt.Errorf("%w: %s.max_size must not be negative (0 is no limit)", ErrInvalidConfig, at)
			}
			for _, l := range []struct {
				key  string
				list []string
			}{{"allowed_types", dr.r.AllowedTypes}, {"refused_types", dr.r.RefusedTypes}} {
				for i, p := range l.list {
					if !validMIMEPattern(p) {
						return fmt.Errorf("%w: %s.%s[%d] %q is not a MIME type pattern (write e.g. \"application/pdf\", \"image/*\" or \"*/*\")",
							ErrInvalidConfig, at, l.key, i, p)
					}
				}
			}
		}
	}
	return nil
}
