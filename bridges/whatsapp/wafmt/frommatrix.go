package wafmt

import (
	"context"
	"slices"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"
)

// Outgoing is a WhatsApp text with the JIDs it mentions.
type Outgoing struct {
	Text      string
	Mentioned []string // JIDs as strings, for ContextInfo.MentionedJID
}

const mentionedKey = "wafmt_mentioned"

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
			if d.WhatsAppJID != nil {
				if jid, ok := d.WhatsAppJID(ctx.Ctx, id.UserID(mxid)); ok && jid.User != "" {
					list, _ := ctx.ReturnData[mentionedKey].(*[]string)
					if list != nil && !slices.Contains(*list, jid.String()) {
						*list = append(*list, jid.String())
					}
					return "@" + jid.User
				}
			}
			return displayname
		},
	}
}

// FromMatrix converts a Matrix text message into WhatsApp text. HTML is used
// when the message has it; pills to WhatsApp users become @<number> with the
// JID in Mentioned.
func FromMatrix(ctx context.Context, deps Deps, content *event.MessageEventContent) Outgoing {
	body := content.Body
	if content.Format != event.FormatHTML || content.FormattedBody == "" || len(content.FormattedBody) > MaxLength {
		return Outgoing{Text: body, Mentioned: plainMentions(ctx, deps, content)}
	}
	fctx := format.NewContext(ctx)
	var mentioned []string
	fctx.ReturnData[mentionedKey] = &mentioned
	text := deps.parser().Parse(content.FormattedBody, fctx)
	return Outgoing{Text: strings.TrimRight(text, "\n"), Mentioned: mentioned}
}

// plainMentions keeps the m.mentions of a plain-text message that name
// WhatsApp users whose number is written in the text.
func plainMentions(ctx context.Context, deps Deps, content *event.MessageEventContent) []string {
	if content.Mentions == nil || deps.WhatsAppJID == nil {
		return nil
	}
	var out []string
	for _, mxid := range content.Mentions.UserIDs {
		jid, ok := deps.WhatsAppJID(ctx, mxid)
		if ok && strings.Contains(content.Body, "@"+jid.User) && !slices.Contains(out, jid.String()) {
			out = append(out, jid.String())
		}
	}
	return out
}
