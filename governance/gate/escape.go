package gate

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLength is how many characters of a remote name a notice shows.
const MaxNameLength = 200

// Characters that replace or split what a client would act on in a remote
// name: a word joiner (invisible) and a one dot leader (looks like a dot,
// but makes no domain name).
const (
	wordJoiner   = "\u2060"
	oneDotLeader = "\u2024"
)

// markdownSpecial are the ASCII characters that markdown (CommonMark, with
// the strikethrough, table and spoiler extensions of the notices) or HTML
// give a meaning; EscapeName backslash-escapes them, which CommonMark allows
// for any ASCII punctuation.
const markdownSpecial = "\\`*_{}[]()<>#+-.!|~&\"'=:"

// EscapeName makes a name chosen on a remote network (a display name, a
// group's title, a username, a phone label) safe to put into a markdown
// notice of the bot: it shows as the text it is, never as a link, markup,
// HTML or a mention. It
//   - replaces line breaks and other control characters with a space and
//     drops invisible format characters (bidi overrides and isolates, zero
//     widths), so that a name cannot start a new line of the notice or
//     reorder the text around it (an emoji's zero width joiner stays);
//   - neutralises "@room" (which would notify the whole room, the bot
//     having the power to) and URLs (a word joiner after "://", a one dot
//     leader for a dot between letters or digits, so that no client
//     linkifies "evil.example");
//   - backslash-escapes markdown and HTML characters, so that the formatted
//     body has the name HTML-escaped;
//   - cuts it to MaxNameLength characters.
func EscapeName(name string) string {
	var clean strings.Builder
	n := 0
	lastSpace := false
	for _, r := range name {
		switch {
		case r == '\u200d': // zero width joiner: emoji sequences
		case unicode.IsControl(r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) || unicode.IsSpace(r):
			if lastSpace {
				continue
			}
			r = ' '
		case unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			continue
		}
		if n == MaxNameLength {
			clean.WriteString("…")
			break
		}
		lastSpace = r == ' '
		clean.WriteRune(r)
		n++
	}
	s := strings.TrimSpace(clean.String())
	s = roomMention.ReplaceAllString(s, "@"+wordJoiner+"$1")
	s = strings.ReplaceAll(s, "://", ":"+wordJoiner+"//")
	var out strings.Builder
	runes := []rune(s)
	for i, r := range runes {
		if r == '.' && i > 0 && i+1 < len(runes) && isAlnum(runes[i-1]) && isAlnum(runes[i+1]) {
			out.WriteString(oneDotLeader)
			continue
		}
		if r < utf8.RuneSelf && strings.ContainsRune(markdownSpecial, r) {
			out.WriteByte('\\')
		}
		out.WriteRune(r)
	}
	return out.String()
}

// roomMention is what notifies a whole room (push rule .m.rule.roomnotif
// matches the word, in any case).
var roomMention = regexp.MustCompile(`(?i)@(room)`)

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
