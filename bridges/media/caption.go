package media

import (
	"maunium.net/go/mautrix/event"
)

// Caption is the text sent with a file, plain and optionally as HTML.
type Caption struct {
	Text string
	HTML string
}

// SetFileAndCaption fills a media event's body, filename and format the way
// Matrix v1.10 reads captions: filename always holds the file's name; body is
// the caption when there is one that differs from the name, and the name
// otherwise; format/formatted_body carry the caption's HTML, if any.
func SetFileAndCaption(content *event.MessageEventContent, fileName string, caption Caption) {
	content.FileName = fileName
	content.Format = ""
	content.FormattedBody = ""
	if caption.Text != "" && caption.Text != fileName {
		content.Body = caption.Text
		if caption.HTML != "" {
			content.Format = event.FormatHTML
			content.FormattedBody = caption.HTML
		}
		return
	}
	content.Body = fileName
}

// FileAndCaption reads a Matrix media event the same way: the file's name
// (filename, else body) and the caption (body when filename is set and
// differs from it), with its HTML only when there is a caption.
func FileAndCaption(content *event.MessageEventContent) (fileName string, caption Caption) {
	fileName = content.GetFileName()
	caption.Text = content.GetCaption()
	if caption.Text != "" {
		caption.HTML = content.GetFormattedCaption()
	}
	return fileName, caption
}
