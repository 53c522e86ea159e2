package media

import (
	"mime"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SniffLen is how many leading bytes Sniff looks at.
const SniffLen = 512

// Generic MIME types that say nothing about the content; a declared type
// equal to one of these loses to a sniffed or extension-derived type.
const (
	MIMEOctetStream = "application/octet-stream"
	MIMEText        = "text/plain"
)

// extToMIME is the table used for file names whose content sniffing cannot
// tell (documents, audio containers, stickers). It deliberately does not
// depend on the host's /etc/mime.types so results are the same everywhere.
var extToMIME = map[string]string{
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".png":  "image/png",
	".gif":  "image/gif",
	".webp": "image/webp",
	".heic": "image/heic",
	".bmp":  "image/bmp",
	".svg":  "image/svg+xml",
	".tgs":  "application/x-tgsticker",
	".mp4":  "video/mp4",
	".m4v":  "video/mp4",
	".mov":  "video/quicktime",
	".webm": "video/webm",
	".mkv":  "video/x-matroska",
	".3gp":  "video/3gpp",
	".mp3":  "audio/mpeg",
	".m4a":  "audio/mp4",
	".aac":  "audio/aac",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".opus": "audio/ogg",
	".wav":  "audio/wav",
	".flac": "audio/flac",
	".pdf":  "application/pdf",
	".zip":  "application/zip",
	".gz":   "application/gzip",
	".txt":  "text/plain",
	".csv":  "text/csv",
	".html": "text/html",
	".json": "application/json",
	".xml":  "application/xml",
	".vcf":  "text/vcard",
	".doc":  "application/msword",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xls":  "application/vnd.ms-excel",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".ppt":  "application/vnd.ms-powerpoint",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".exe":  "application/x-msdownload",
	".apk":  "application/vnd.android.package-archive",
}

// mimeToExt is the preferred extension for a MIME type (the reverse of
// extToMIME where several extensions share a type).
var mimeToExt = map[string]string{
	"image/jpeg":              ".jpg",
	"image/png":               ".png",
	"image/gif":               ".gif",
	"image/webp":              ".webp",
	"image/heic":              ".heic",
	"image/bmp":               ".bmp",
	"image/svg+xml":           ".svg",
	"application/x-tgsticker": ".tgs",
	"video/mp4":               ".mp4",
	"video/quicktime":         ".mov",
	"video/webm":              ".webm",
	"video/x-matroska":        ".mkv",
	"video/3gpp":              ".3gp",
	"audio/mpeg":              ".mp3",
	"audio/mp4":               ".m4a",
	"audio/aac":               ".aac",
	"audio/ogg":               ".ogg",
	"audio/wav":               ".wav",
	"audio/wave":              ".wav",
	"audio/flac":              ".flac",
	"application/pdf":         ".pdf",
	"application/zip":         ".zip",
	"application/gzip":        ".gz",
	"application/x-gzip":      ".gz",
	"text/plain":              ".txt",
	"text/csv":                ".csv",
	"text/html":               ".html",
	"application/json":        ".json",
	"application/xml":         ".xml",
	"text/xml":                ".xml",
	"text/vcard":              ".vcf",
	"text/x-vcard":            ".vcf",
	"application/msword":      ".doc",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
	"application/vnd.ms-excel": ".xls",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         ".xlsx",
	"application/vnd.ms-powerpoint":                                             ".ppt",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
	"application/vnd.oasis.opendocument.text":                                   ".odt",
	"application/vnd.oasis.opendocument.spreadsheet":                            ".ods",
	"application/x-msdownload":                                                  ".exe",
	"application/vnd.android.package-archive":                                   ".apk",
}

// BaseMIME lowercases a MIME type and strips its parameters
// ("Text/Plain; charset=utf-8" → "text/plain"). An unparsable value gives "".
func BaseMIME(m string) string {
	m = strings.TrimSpace(m)
	if m == "" {
		return ""
	}
	base, _, err := mime.ParseMediaType(m)
	if err != nil {
		return ""
	}
	return base
}

// MIMEForName is the MIME type the table gives a file name's extension, or
// "" when the extension is unknown.
func MIMEForName(name string) string {
	return extToMIME[strings.ToLower(path.Ext(name))]
}

// ExtensionFor is the usual extension (with its dot) for a MIME type, or ""
// when there is none in the table.
func ExtensionFor(mimeType string) string {
	return mimeToExt[BaseMIME(mimeType)]
}

// isGeneric reports whether a MIME type carries no information about the
// content.
func isGeneric(m string) bool {
	return m == "" || m == MIMEOctetStream || m == "binary/octet-stream" || m == "application/unknown"
}

// Sniff decides a file's MIME type from what the sender declared, the file
// name and the first bytes of the content (up to SniffLen are used).
//
// The rules, in order:
//  1. a specific declared type wins: senders know formats that content
//     sniffing cannot tell apart (docx is a zip, tgs is gzip, opus is ogg);
//  2. otherwise a sniffed type wins if it is specific (not octet-stream and
//     not plain text, which http.DetectContentType answers for anything that
//     merely looks like UTF-8);
//  3. otherwise the file name's extension;
//  4. otherwise the sniffed type, which may be text/plain;
//  5. otherwise application/octet-stream.
//
// The result has no parameters.
func Sniff(declared, name string, head []byte) string {
	declared = BaseMIME(declared)
	if !isGeneric(declared) && declared != MIMEText {
		return declared
	}
	var sniffed string
	if len(head) > 0 {
		if len(head) > SniffLen {
			head = head[:SniffLen]
		}
		sniffed = BaseMIME(http.DetectContentType(head))
	}
	if !isGeneric(sniffed) && sniffed != MIMEText {
		return sniffed
	}
	if byName := MIMEForName(name); byName != "" {
		return byName
	}
	if declared == MIMEText || sniffed == MIMEText {
		return MIMEText
	}
	return MIMEOctetStream
}

// MaxFileNameBytes bounds the length of a name SafeFileName returns.
const MaxFileNameBytes = 200

// SafeFileName turns a name from the other side into one that can be shown
// and saved: the directory part is dropped (both / and \ separators), control
// and format characters are removed, surrounding spaces and dots trimmed,
// and the result cut to MaxFileNameBytes keeping the extension. When nothing
// is left, fallback is used (and if fallback is empty, "file"); a fallback
// without an extension gets ExtensionFor(mimeType).
func SafeFileName(name, fallback, mimeType string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		b.WriteRune(r)
	}
	name = strings.Trim(b.String(), " .")
	if name == "" {
		name = fallback
		if name == "" {
			name = "file"
		}
		if path.Ext(name) == "" {
			name += ExtensionFor(mimeType)
		}
	}
	if len(name) > MaxFileNameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		stem := name[:MaxFileNameBytes-len(ext)]
		for !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
		name = stem + ext
	}
	return name
}
