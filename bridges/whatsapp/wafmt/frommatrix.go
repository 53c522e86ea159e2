package wafmt

import (
	"context"
	"strings"
	"unicode/utf8"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/htmlguard"
)

// Outgoing is a WhatsApp text with the JIDs it mentions.
type Outgoing struct {
	Text      string
	Mentioned []string // JIDs as strings, for ContextInfo.MentionedJID
}

const mentionedKey = "wafmt_mentioned"

// mentionList collects the JIDs a message mentions, each once, looking each
// Matrix user up once.
type mentionList struct {
	jids   []string
	seen   map[string]bool
	lookup map[id.UserID]string // Matrix user -> WhatsApp number, "" if none
}

// TruncatedMarker ends a message cut to MaxLength.
const TruncatedMarker = "… [message truncated]"

// Truncate cuts text to at most MaxLength bytes, at a rune boundary, and
// ends it with TruncatedMarker; shorter text is returned as is.
func Truncate(text string) string {
	if len(text) <= MaxLength {
		return text
	}
	cut := MaxLength - len(TruncatedMarker)
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + TruncatedMarker
}

func wrap(marker string) format.TextConverter {
	return func(s string, _ format.Context) string {
		if strings.TrimSpace(s) == "" {
			return s
		}
		// WhatsApp markers must touch the text: keep outer spaces outside.
		trimmed := strings.TrimSpace(s)
		lead := s[:strings.Index(s, trimmed)]
		trail := s[len(lead)+len(trimmed):]
		return lead + marker + trimmed + marker + trail
	}
}

func (d Deps) parser() *format.HTMLParser {
	return &format.HTMLParser{
		TabsToSpaces:           4,
		Newline:                "\n",
		HorizontalLine:         "\n---\n",
		BoldConverter:          wrap("*"),
		ItalicConverter:        wrap("_"),
		StrikethroughConverter: wrap("~"),
		MonospaceConverter: func(s string, _ format.Context) string {
			if strings.Contains(s, "\n") {
				return "```" + s + "```"
			}
			return "`" + s + "`"
		},
		MonospaceBlockConverter: func(code, _ string, _ format.Context) string {
			return "```" + strings.TrimSuffix(code, "\n") + "```"
		},
		PillConverter: func(displayname, mxid, eventID string, ctx format.Context) string {
			if mxid == "" || mxid[0] != '@' {
				return format.DefaultPillConverter(displayname, mxid, eventID, ctx)
			}
			list, _ := ctx.ReturnData[mentionedKey].(*mentionList)
			if d.WhatsAppJID == nil || list == nil {
				return displayname
			}
			user, known := list.lookup[id.UserID(mxid)]
			if !known {
				if jid, ok := d.WhatsAppJID(ctx.Ctx, id.UserID(mxid)); ok && jid.User != "" {
					user = jid.User
					if s := jid.String(); !list.seen[s] {
						list.seen[s] = true
						list.jids = append(list.jids, s)
					}
				}
				list.lookup[id.UserID(mxid)] = user
			}
			if user == "" {
				return displayname
			}
			return "@" + user
		},
	}
}

// FromMatrix converts a Matrix text message into WhatsApp text. HTML is used
// when the message has it; pills to WhatsApp users become @<number> with the
// JID in Mentioned. HTML that htmlguard refuses (too deep, unparsable) is
// replaced by the plain body, and text longer than MaxLength is cut with
// TruncatedMarker. The cost is linear in the size of the content.
func FromMatrix(ctx context.Context, deps Deps, content *event.MessageEventContent) Outgoing {
	if content.Format == event.FormatHTML && content.FormattedBody != "" && len(content.FormattedBody) <= MaxLength {
		if prepared, ok := htmlguard.Prepare(content.FormattedBody, nil); ok {
			fctx := format.NewContext(ctx)
			list := &mentionList{seen: map[string]bool{}, lookup: map[id.UserID]string{}}
			fctx.ReturnData[mentionedKey] = list
			text := strings.TrimRight(deps.parser().Parse(prepared, fctx), "\n")
			if text != "" || content.Body == "" {
				return Outgoing{Text: Truncate(text), Mentioned: list.jids}
			}
		}
	}
	return Outgoing{Text: Truncate(content.Body), Mentioned: plainMentions(ctx, deps, content)}
}

// plainMentions keeps the m.mentions of a plain-text message that name
// WhatsApp users whose number is written in the text.
func plainMentions(ctx context.Context, deps Deps, content *event.MessageEventContent) []string {
	if content.Mentions == nil || deps.WhatsAppJID == nil {
		return nil
	}
	written := numbersIn(content.Body)
	if len(written) == 0 {
		return nil
	}
	var out []string
	seen := map[id.UserID]bool{}
	for _, mxid := range content.Mentions.UserIDs {
		if seen[mxid] {
			continue
		}
		seen[mxid] = true
		jid, ok := deps.WhatsAppJID(ctx, mxid)
		if ok && written[jid.User] {
			written[jid.User] = false // each JID once
			out = append(out, jid.String())
		}
	}
	return out
}

// numbersIn returns the set of <number> written as "@<number>" in text.
func numbersIn(text string) map[string]bool {
	var set map[string]bool
	for {
		at := strings.IndexByte(text, '@')
		if at < 0 {
			return set
		}
		end := at + 1
		for end < len(text) && text[end] >= '0' && text[end] <= '9' {
			end++
		}
		if end > at+1 {
			if set == nil {
				set = map[string]bool{}
			}
			set[text[at+1:end]] = true
		}
		text = text[end:]
	}
}
