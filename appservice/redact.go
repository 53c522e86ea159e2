package appservice

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
	"go.mau.fi/zeroconfig"
	"gopkg.in/natefinch/lumberjack.v2"
)

// WhatsApp identifies people by phone number, so a WhatsApp ghost, portal or
// JID carries the contact's number, and bridgev2 logs those IDs at info level.
// The gateway keeps numbers out of its logs by masking them in every log
// writer, whatever the level: only the last two digits stay, enough to tell
// two contacts apart while reading a log.
//
// The rules run in order on each log line (JSON or console text); a digit
// masked by one rule is a '*' for the next ones.
var (
	// A number in a WhatsApp link or a phone= parameter: wa.me/33612345678,
	// api.whatsapp.com/send?phone=%2B33612345678.
	linkNumber = regexp.MustCompile(`(?:wa\.me/|[?&]phone=)(?:\+|%2[Bb])?\d{5,}`)
	// JSON keys and console keys of numbers that are never phone numbers:
	// IDs, counters, times and hashes of Telegram and Matrix.
	numericKey = regexp.MustCompile(`(?i)(?:^|_)(?:id|ids|pts|qts|seq|date|time|ts|timestamp|at|ms|hash|dc|port|count|size|offset|order|version|duration|took)$`)
)

// RedactPhoneNumbers masks the phone numbers in one log line, keeping the
// last two digits. A JSON line stays valid JSON.
func RedactPhoneNumbers(line []byte) []byte {
	hasPlus := hasIntlStart(line)
	if !hasPlus && !hasDigitRun(line, 5) {
		return line // nothing that can be a number: most lines
	}
	line = replaceWhatsAppTokens(line)
	line = replaceUserJIDs(line)
	if bytes.Contains(line, []byte("wa.me/")) || bytes.Contains(line, []byte("phone=")) {
		line = linkNumber.ReplaceAllFunc(line, maskAfterPrefix)
	}
	if hasPlus {
		line = replaceIntlNumbers(line)
	}
	return replaceDigitRuns(line)
}

// The rules for WhatsApp's IDs are hand-written scanners, not regular
// expressions: bridgev2 writes four or five lines per bridged message, each
// with several WhatsApp IDs, to each log writer, and the expressions cost
// 12–14 µs per such line (BenchmarkRedactWhatsAppRequestLine). The
// expressions they stand for, kept in the tests to check them
// (FuzzRedactScanners):
//
//	WhatsApp token: whatsapp[._][A-Za-z0-9._=:-]*, its \d{7,} masked
//	user JID:       \d{5,}(?:\.\d+)?(?::\d+)?@(?:s\.whatsapp\.net|c\.us|lid|hosted\.lid|hosted)\b,
//	                the digits before its first '.', ':' or '@' masked

var whatsAppWord = []byte("whatsapp")

// replaceWhatsAppTokens masks the phone numbers of the WhatsApp network IDs
// and ghost localparts of line, with everything that follows them in the
// same token: whatsapp.33612345678, whatsapp.lid-1234...,
// whatsapp.g-1203..., whatsapp.33612345678.33698765432.3EB0...,
// passerelle_whatsapp.336...: every run of 7 digits or more in a token
// that starts with "whatsapp" and a '.' or '_'.
func replaceWhatsAppTokens(line []byte) []byte {
	var out []byte
	last := 0
	for pos := 0; pos < len(line); {
		k := bytes.Index(line[pos:], whatsAppWord)
		if k < 0 {
			break
		}
		i := pos + k
		end := i + len(whatsAppWord)
		if end >= len(line) || line[end] != '.' && line[end] != '_' {
			pos = i + 1
			continue
		}
		end++
		for end < len(line) && isTokenByte(line[end]) {
			end++
		}
		for r := i; r < end; {
			if !isDigit(line[r]) {
				r++
				continue
			}
			e := r + 1
			for e < end && isDigit(line[e]) {
				e++
			}
			if e-r >= 7 {
				out = appendMasked(out, line, last, r, e)
				last = e
			}
			r = e
		}
		pos = end
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

// isTokenByte reports whether b continues a WhatsApp token.
func isTokenByte(b byte) bool {
	return isDigit(b) || isLetter(b) || strings.IndexByte("._=:-", b) >= 0
}

// jidServers are the servers of a user JID after its '@', in the order the
// expression tries them.
var jidServers = [][]byte{[]byte("s.whatsapp.net"), []byte("c.us"), []byte("lid"), []byte("hosted.lid"), []byte("hosted")}

// replaceUserJIDs masks the user of the user JIDs of line: a phone number or
// LID with an optional agent and device: 33612345678@s.whatsapp.net,
// 33612345678.0:12@s.whatsapp.net, 123456789012345@lid. Group JIDs (@g.us)
// are not people.
func replaceUserJIDs(line []byte) []byte {
	var out []byte
	last := 0
	for pos := 0; pos < len(line); {
		k := bytes.IndexByte(line[pos:], '@')
		if k < 0 {
			break
		}
		at := pos + k
		pos = at + 1
		if !jidServerAt(line, at+1) {
			continue
		}
		if start, end := jidUserBefore(line, at); start >= 0 {
			out = appendMasked(out, line, last, start, end)
			last = end
		}
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

// jidServerAt reports whether a user JID's server starts at i and ends a
// word.
func jidServerAt(line []byte, i int) bool {
	for _, server := range jidServers {
		end := i + len(server)
		if bytes.HasPrefix(line[i:], server) && (end == len(line) || !isWordByte(line[end])) {
			return true
		}
	}
	return false
}

func isWordByte(b byte) bool { return isDigit(b) || isLetter(b) || b == '_' }

// jidUserBefore finds the JID whose '@' is at at: the start and end of its
// user (5 digits or more), followed by an optional .agent and an optional
// :device; -1, -1 if there is none. Of the ways to read it, the one that
// starts first is the expression's.
func jidUserBefore(line []byte, at int) (start, end int) {
	runStart := func(end int) int {
		for end > 0 && isDigit(line[end-1]) {
			end--
		}
		return end
	}
	last := runStart(at)
	if last == at {
		return -1, -1
	}
	if last > 0 && (line[last-1] == ':' || line[last-1] == '.') {
		sep := last - 1
		prev := runStart(sep)
		if line[sep] == ':' && prev > 0 && prev < sep && line[prev-1] == '.' {
			if user := runStart(prev - 1); prev-1-user >= 5 {
				return user, prev - 1 // user.agent:device
			}
		}
		if sep-prev >= 5 {
			return prev, sep // user.agent or user:device
		}
	}
	if at-last >= 5 {
		return last, at
	}
	return -1, -1
}

// appendMasked appends line[last:start] and then line[start:end], a run of
// digits, with all of them but the last two replaced by '*' (out starts as
// a copy of the line's prefix the first time).
func appendMasked(out, line []byte, last, start, end int) []byte {
	if out == nil {
		out = make([]byte, 0, len(line))
	}
	out = append(out, line[last:start]...)
	for i := start; i < end-2; i++ {
		out = append(out, '*')
	}
	return append(out, line[max(start, end-2):end]...)
}

// hasIntlStart reports whether line has a '+' or "%2B" followed by a digit,
// where an international number (intlNumberAt) can start. Base64 ('+'
// between letters) is common in debug lines; this keeps the scanner off
// them.
func hasIntlStart(line []byte) bool {
	c := newPrefixCursor(line)
	for i := c.next(0); i >= 0; i = c.next(i + 1) {
		switch line[i] {
		case '+':
			if i+1 < len(line) && isDigit(line[i+1]) {
				return true
			}
		case '%':
			if i+3 < len(line) && line[i+1] == '2' && line[i+2]|0x20 == 'b' && isDigit(line[i+3]) {
				return true
			}
		}
	}
	return false
}

// prefixCursor finds the '+' and '%' of a line, where an international
// number's prefix can start, with the library's byte search rather than a
// loop over every byte.
type prefixCursor struct {
	line      []byte
	plus, pct int
}

func newPrefixCursor(line []byte) prefixCursor {
	return prefixCursor{line: line, plus: bytes.IndexByte(line, '+'), pct: bytes.IndexByte(line, '%')}
}

// next returns the index of the first '+' or '%' at or after from, or -1.
func (c *prefixCursor) next(from int) int {
	c.plus = indexByteFrom(c.line, '+', c.plus, from)
	c.pct = indexByteFrom(c.line, '%', c.pct, from)
	switch {
	case c.plus < 0:
		return c.pct
	case c.pct < 0:
		return c.plus
	}
	return min(c.plus, c.pct)
}

// indexByteFrom moves found, the index of an earlier b (or -1), to the
// first b at or after from.
func indexByteFrom(line []byte, b byte, found, from int) int {
	if found < 0 || found >= from {
		return found
	}
	if from >= len(line) {
		return -1
	}
	if k := bytes.IndexByte(line[from:], b); k >= 0 {
		return from + k
	}
	return -1
}

// An international number written out, possibly URL-encoded and with
// single spaces, dots or dashes between digits: +33612345678,
// +33 6 12 34 56 78, +33-6-12-34-56-78, %2B33612345678: a '+' or "%2B",
// then 7 to 15 digits, each but the first after at most one separator.
const (
	intlMinDigits = 7
	intlMaxDigits = 15
)

// intlNumberAt returns the end of the international number whose prefix
// starts at i, or -1. Digits are taken greedily, up to intlMaxDigits.
func intlNumberAt(line []byte, i int) int {
	j := i
	switch {
	case line[i] == '+':
		j++
	case line[i] == '%' && i+2 < len(line) && line[i+1] == '2' && line[i+2]|0x20 == 'b':
		j += 3
	default:
		return -1
	}
	if j >= len(line) || !isDigit(line[j]) {
		return -1
	}
	j++
	digits := 1
	for digits < intlMaxDigits && j < len(line) {
		if isDigit(line[j]) {
			j++
		} else if (line[j] == ' ' || line[j] == '.' || line[j] == '-') && j+1 < len(line) && isDigit(line[j+1]) {
			j += 2
		} else {
			break
		}
		digits++
	}
	if digits < intlMinDigits {
		return -1
	}
	return j
}

// replaceIntlNumbers masks the international numbers of line that do not
// sit inside base64 (keys, signatures, hashes).
func replaceIntlNumbers(line []byte) []byte {
	var out []byte
	last := 0
	c := newPrefixCursor(line)
	for i := c.next(0); i >= 0; i = c.next(i + 1) {
		end := intlNumberAt(line, i)
		if end < 0 {
			continue
		}
		if !signedBase64Context(line, i, end) {
			if out == nil {
				out = make([]byte, 0, len(line)+8)
			}
			out = append(append(out, line[last:i]...), maskAfterPrefix(line[i:end])...)
			last = end
		}
		i = end - 1
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

// replaceDigitRuns masks the bare numbers (maskBareNumber) among the
// maximal runs of digits of line, without a regular expression: a log line
// has many short runs (times, IDs, counters) and few of 10 to 15 digits.
func replaceDigitRuns(line []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(line); {
		if !isDigit(line[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(line) && isDigit(line[j]) {
			j++
		}
		if n := j - i; n >= 10 && n <= 15 {
			if repl, ok := maskBareNumber(line, i, j); ok {
				if out == nil {
					out = make([]byte, 0, len(line)+8)
				}
				out = append(append(out, line[last:i]...), repl...)
				last = j
			}
		}
		i = j
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

// hasDigitRun reports whether line holds n digits in a row.
func hasDigitRun(line []byte, n int) bool {
	run := 0
	for _, b := range line {
		if isDigit(b) {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// maskBareNumber masks a run of digits that looks like a phone number: 10 to
// 15 digits, not part of a word, hash, ID or decimal number, not a Unix time
// (10, 12 or 13 digits starting with 1: no number of country code 1 has
// that length) and not the value of a key that holds IDs or times.
func maskBareNumber(line []byte, start, end int) ([]byte, bool) {
	n := end - start
	if n < 10 || n > 15 || (line[start] == '1' && n != 11) {
		return nil, false
	}
	before := prevIndex(line, start)
	if before >= 0 && gluesBefore(line[before]) && !isEscape(line, before) {
		return nil, false
	}
	if end < len(line) {
		next := line[end]
		if next == '.' && end+1 < len(line) && isDigit(line[end+1]) || next != '.' && gluesAfter(next) {
			return nil, false
		}
	}
	if key := keyBefore(line, before); key != "" && numericKey.MatchString(key) {
		return nil, false
	}
	masked := maskDigits(line[start:end])
	if before >= 0 && (line[before] == ':' || line[before] == '[' || line[before] == ',') && isJSON(line) && !inJSONString(line, start) {
		// A JSON number becomes a string, so that the line stays JSON.
		masked = append(append([]byte{'"'}, masked...), '"')
	}
	return masked, true
}

// maskDigits replaces all digits but the last two with '*', keeping
// separators and prefixes.
func maskDigits(s []byte) []byte {
	out := bytes.Clone(s)
	keep := 2
	for i := len(out) - 1; i >= 0; i-- {
		if !isDigit(out[i]) {
			continue
		}
		if keep > 0 {
			keep--
			continue
		}
		out[i] = '*'
	}
	return out
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// gluesBefore reports whether b, just before a run of digits, makes it part
// of a word, an ID, a hash, a negative or decimal number.
func gluesBefore(b byte) bool {
	return isDigit(b) || isLetter(b) || strings.IndexByte("_.-$!+/%#~", b) >= 0
}

// gluesAfter reports the same for the byte just after a run of digits ('='
// is base64 padding there).
func gluesAfter(b byte) bool {
	return isDigit(b) || isLetter(b) || strings.IndexByte("_-$!+/=%#~", b) >= 0
}

// maskAfterPrefix masks the digits of a number that follow its prefix (the
// "2" of %2B is not part of the number).
func maskAfterPrefix(s []byte) []byte {
	i := 0
	for i < len(s) && !isDigit(s[i]) || i+1 < len(s) && s[i] == '2' && i > 0 && s[i-1] == '%' {
		i++
	}
	return append(bytes.Clone(s[:i]), maskDigits(s[i:])...)
}

// isEscape reports whether the letter at i ends a JSON escape such as \n.
func isEscape(line []byte, i int) bool {
	return i > 0 && line[i-1] == '\\' && strings.IndexByte("nrtbf", line[i]) >= 0
}

// signedBase64Context reports whether a +digits match sits inside a
// base64 string (keys, signatures, hashes) rather than standing alone.
func signedBase64Context(line []byte, start, end int) bool {
	if start > 0 && (isDigit(line[start-1]) || isLetter(line[start-1]) || strings.IndexByte("/+", line[start-1]) >= 0) {
		return true
	}
	return end < len(line) && (isLetter(line[end]) || strings.IndexByte("/+=", line[end]) >= 0)
}

// prevIndex returns the index of the byte before start, skipping the ANSI
// colour codes of the pretty-colored console format; -1 at the line start.
func prevIndex(line []byte, start int) int {
	i := start - 1
	for i >= 0 && line[i] == 'm' {
		j := i - 1
		for j >= 0 && (isDigit(line[j]) || line[j] == ';') {
			j--
		}
		if j < 1 || line[j] != '[' || line[j-1] != 0x1b {
			break
		}
		i = j - 2
	}
	return i
}

// keyBefore returns the key whose value starts after index sep, for a JSON
// number ("key":value) or a console field (key=value); "" otherwise. A JSON
// string value has no key here: IDs that the gateway logs as strings carry
// their network, and a bare number in a string is masked whatever its key.
func keyBefore(line []byte, sep int) string {
	if sep < 0 {
		return ""
	}
	switch line[sep] {
	case ':':
		end := sep - 1
		if end < 1 || line[end] != '"' {
			return ""
		}
		begin := bytes.LastIndexByte(line[:end], '"')
		if begin < 0 {
			return ""
		}
		return string(line[begin+1 : end])
	case '=':
		end := prevIndex(line, sep) + 1
		begin := end
		for begin > 0 && (isLetter(line[begin-1]) || isDigit(line[begin-1]) || line[begin-1] == '_') {
			begin--
		}
		return string(line[begin:end])
	}
	return ""
}

func isJSON(line []byte) bool {
	trimmed := bytes.TrimLeft(line, " \t")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// inJSONString reports whether the byte at pos is inside a JSON string.
func inJSONString(line []byte, pos int) bool {
	in, escaped := false, false
	for _, b := range line[:pos] {
		switch {
		case escaped:
			escaped = false
		case b == '\\' && in:
			escaped = true
		case b == '"':
			in = !in
		}
	}
	return in
}

// redactingWriter masks phone numbers in what passes through it. zerolog
// hands a writer one whole event per Write, so a number is never split. It
// passes levels on to a writer that takes them (syslog, journald).
type redactingWriter struct {
	out io.Writer
}

var _ zerolog.LevelWriter = redactingWriter{}

func (w redactingWriter) Write(p []byte) (int, error) {
	if _, err := w.out.Write(RedactPhoneNumbers(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w redactingWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	lw, ok := w.out.(zerolog.LevelWriter)
	if !ok {
		return w.Write(p)
	}
	if _, err := lw.WriteLevel(level, RedactPhoneNumbers(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactedWriterTypes are the writer types of the `logging:` section, each
// compiled to a writer behind the masker. zeroconfig knows no other type on
// Unix; an unknown type fails at start-up.
var redactedWriterTypes = map[zeroconfig.WriterType]func(*zeroconfig.WriterConfig) (io.Writer, error){
	zeroconfig.WriterTypeStdout: func(*zeroconfig.WriterConfig) (io.Writer, error) { return zeroconfig.Stdout, nil },
	zeroconfig.WriterTypeStderr: func(*zeroconfig.WriterConfig) (io.Writer, error) { return zeroconfig.Stderr, nil },
	zeroconfig.WriterTypeFile:   compileFile,
}

// registerRedactingWriters puts the masker behind every writer type that
// bridgev2 can build from the `logging:` section of the config, whatever the
// format (json; pretty and pretty-colored, written by prettyWriter in front
// of the masker, see usePrettyWriters).
func registerRedactingWriters() {
	for wt, compile := range redactedWriterTypes {
		zeroconfig.RegisterWriter(wt, func(wc *zeroconfig.WriterConfig) (io.Writer, error) {
			out, err := compile(wc)
			if err != nil {
				return nil, err
			}
			return redactingWriter{out: out}, nil
		})
		for _, format := range prettyFormats {
			zeroconfig.RegisterWriter(prettyWriterType(wt, format), func(wc *zeroconfig.WriterConfig) (io.Writer, error) {
				out, err := compile(wc)
				if err != nil {
					return nil, err
				}
				return newPrettyWriter(redactingWriter{out: out}, format == zeroconfig.LogFormatPrettyColored, wc.TimeFormat), nil
			})
		}
	}
}

// compileFile opens a rotating log file as zeroconfig's own file writer does.
func compileFile(wc *zeroconfig.WriterConfig) (io.Writer, error) {
	file := &lumberjack.Logger{
		Filename:   wc.Filename,
		MaxSize:    wc.MaxSize,
		MaxAge:     wc.MaxAge,
		MaxBackups: wc.MaxBackups,
		LocalTime:  wc.LocalTime,
		Compress:   wc.Compress,
	}
	if err := file.Rotate(); err != nil {
		return nil, fmt.Errorf("failed to open log file: %w", err)
	}
	return file, nil
}
