package appservice

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/zeroconfig"
)

// The `pretty` and `pretty-colored` log formats (console text) are written
// by prettyWriter, not by zerolog's ConsoleWriter, which zeroconfig puts in
// front of such a writer. ConsoleWriter decodes every event into a map
// through encoding/json and formats each field with fmt: with bridgev2's
// debug lines (four or five per bridged message, a dozen fields each) it
// was an eighth of the gateway's CPU in the 100-portal benchmark
// (passerelle-bench -profile; README, "The console log written in place
// (session 23)").
// prettyWriter reads the JSON line in place and writes the same text:
// time, level, caller and message, then the fields sorted by name with the
// error first, a string quoted when it has a space, a quote, a backslash
// or a byte outside printable ASCII. One difference: an object or array
// field is written as zerolog wrote it, where ConsoleWriter decodes and
// encodes it again (its keys sorted, <, > and & escaped).
// BenchmarkPrettyLog measures both.

// prettyWriter writes zerolog's JSON events as console text.
type prettyWriter struct {
	out        io.Writer
	color      bool
	timeFormat string
	cwd        string // callers are written relative to it
}

// defaultPrettyTimeFormat is zeroconfig's time format for console text.
const defaultPrettyTimeFormat = "2006-01-02T15:04:05.999Z07:00"

// ANSI colours, as zerolog's console writer uses them.
const (
	colorRed      = 31
	colorCyan     = 36
	colorBold     = 1
	colorDarkGray = 90
)

func newPrettyWriter(out io.Writer, color bool, timeFormat string) *prettyWriter {
	if timeFormat == "" {
		timeFormat = defaultPrettyTimeFormat
	}
	cwd, _ := os.Getwd()
	return &prettyWriter{out: out, color: color && os.Getenv("NO_COLOR") == "", timeFormat: timeFormat, cwd: cwd}
}

// jsonField is one member of an event: its key (unquoted) and its value as
// zerolog wrote it.
type jsonField struct {
	key, val []byte
}

type prettyScratch struct {
	fields []jsonField
	keys   []byte // keys that had escapes, unquoted
	out    []byte
}

var prettyScratchPool = sync.Pool{New: func() any {
	return &prettyScratch{fields: make([]jsonField, 0, 32), out: make([]byte, 0, 512)}
}}

// maxPooledLine bounds the buffer a writer puts back in the pool.
const maxPooledLine = 64 << 10

func (w *prettyWriter) Write(p []byte) (int, error) {
	s := prettyScratchPool.Get().(*prettyScratch)
	defer func() {
		if cap(s.out) <= maxPooledLine {
			prettyScratchPool.Put(s)
		}
	}()
	fields, keys, ok := splitJSONObject(p, s.fields[:0], s.keys[:0])
	s.fields, s.keys = fields, keys
	if ok {
		s.out = w.format(s.out[:0], fields)
	} else {
		// Not an event zerolog wrote: the line as it came, not lost.
		s.out = append(append(s.out[:0], bytes.TrimRight(p, "\n")...), '\n')
	}
	if _, err := w.out.Write(s.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// format writes one event's text: the parts, then the fields.
func (w *prettyWriter) format(out []byte, fields []jsonField) []byte {
	// The last of equal keys counts, as in a decoded map.
	slices.SortStableFunc(fields, func(a, b jsonField) int { return bytes.Compare(a.key, b.key) })
	n := 0
	for i := range fields {
		if i+1 < len(fields) && bytes.Equal(fields[i].key, fields[i+1].key) {
			continue
		}
		fields[n] = fields[i]
		n++
	}
	fields = fields[:n]
	find := func(name string) (jsonField, bool) {
		i, ok := slices.BinarySearchFunc(fields, name, compareKey)
		if !ok {
			return jsonField{}, false
		}
		return fields[i], true
	}
	levelField, _ := find(zerolog.LevelFieldName)
	levelName := stringValue(levelField.val)
	parts := [...]string{zerolog.TimestampFieldName, zerolog.LevelFieldName, zerolog.CallerFieldName, zerolog.MessageFieldName}
	for _, name := range parts {
		f, ok := find(name)
		start := len(out)
		if start > 0 {
			out = append(out, ' ')
		}
		textStart := len(out)
		switch name {
		case zerolog.TimestampFieldName:
			out = w.appendTime(out, f.val, ok)
		case zerolog.LevelFieldName:
			out = w.appendLevel(out, f.val, ok)
		case zerolog.CallerFieldName:
			out = w.appendCaller(out, f.val, ok)
		case zerolog.MessageFieldName:
			out = w.appendMessage(out, f.val, ok, levelName)
		}
		if len(out) == textStart {
			out = out[:start] // an empty part takes no space
		}
	}
	rest := 0
	for _, f := range fields {
		if !isPart(f.key) {
			rest++
		}
	}
	if rest == 0 {
		return append(out, '\n')
	}
	if len(out) > 0 {
		out = append(out, ' ')
	}
	if f, ok := find(zerolog.ErrorFieldName); ok {
		out = w.appendField(out, f, true)
		rest--
		if rest > 0 {
			out = append(out, ' ')
		}
	}
	for _, f := range fields {
		if isPart(f.key) || string(f.key) == zerolog.ErrorFieldName {
			continue
		}
		out = w.appendField(out, f, false)
		rest--
		if rest > 0 {
			out = append(out, ' ')
		}
	}
	return append(out, '\n')
}

// compareKey compares a field's key with a name, as bytes.Compare would.
func compareKey(f jsonField, name string) int {
	for i := 0; i < len(f.key) && i < len(name); i++ {
		if f.key[i] != name[i] {
			if f.key[i] < name[i] {
				return -1
			}
			return 1
		}
	}
	return len(f.key) - len(name)
}

func isPart(key []byte) bool {
	switch string(key) {
	case zerolog.LevelFieldName, zerolog.TimestampFieldName, zerolog.MessageFieldName, zerolog.CallerFieldName:
		return true
	}
	return false
}

// colorStart and colorEnd surround coloured text when colours are on.
func (w *prettyWriter) colorStart(out []byte, c int) []byte {
	if !w.color || c == 0 {
		return out
	}
	out = append(out, "\x1b["...)
	out = strconv.AppendInt(out, int64(c), 10)
	return append(out, 'm')
}

func (w *prettyWriter) colorEnd(out []byte, c int) []byte {
	if !w.color || c == 0 {
		return out
	}
	return append(out, "\x1b[0m"...)
}

func (w *prettyWriter) appendTime(out, val []byte, ok bool) []byte {
	out = w.colorStart(out, colorDarkGray)
	switch {
	case !ok:
		out = append(out, "<nil>"...)
	case len(val) > 0 && val[0] == '"':
		s := string(stringValue(val))
		if t, err := time.ParseInLocation(zerolog.TimeFieldFormat, s, time.Local); err == nil {
			out = t.In(time.Local).AppendFormat(out, w.timeFormat)
		} else {
			out = append(out, s...)
		}
	case isJSONNumber(val):
		i, err := strconv.ParseInt(string(val), 10, 64)
		if err != nil {
			out = append(out, val...)
			break
		}
		var t time.Time
		switch zerolog.TimeFieldFormat {
		case zerolog.TimeFormatUnixNano:
			t = time.Unix(0, i)
		case zerolog.TimeFormatUnixMicro:
			t = time.Unix(0, int64(time.Duration(i)*time.Microsecond))
		case zerolog.TimeFormatUnixMs:
			t = time.Unix(0, int64(time.Duration(i)*time.Millisecond))
		default:
			t = time.Unix(i, 0)
		}
		out = t.In(time.Local).AppendFormat(out, w.timeFormat)
	default:
		out = append(out, "<nil>"...) // neither text nor a number
	}
	return w.colorEnd(out, colorDarkGray)
}

func (w *prettyWriter) appendLevel(out, val []byte, ok bool) []byte {
	if !ok || len(val) == 0 || val[0] != '"' {
		if ok && string(val) != "null" {
			return append(out, bytes.ToUpper(val[:min(3, len(val))])...)
		}
		return append(out, "???"...)
	}
	name := stringValue(val)
	level, _ := zerolog.ParseLevel(string(name))
	if short, known := zerolog.FormattedLevels[level]; known {
		c := zerolog.LevelColors[level]
		out = w.colorStart(out, c)
		out = append(out, short...)
		return w.colorEnd(out, c)
	}
	if len(name) == 0 {
		return append(out, "???"...)
	}
	return append(out, bytes.ToUpper(name[:min(3, len(name))])...)
}

func (w *prettyWriter) appendCaller(out, val []byte, ok bool) []byte {
	if !ok || len(val) == 0 || val[0] != '"' {
		return out
	}
	c := string(stringValue(val))
	if c == "" {
		return out
	}
	if w.cwd != "" {
		if rel, err := filepath.Rel(w.cwd, c); err == nil {
			c = rel
		}
	}
	out = w.colorStart(out, colorBold)
	out = append(out, c...)
	out = w.colorEnd(out, colorBold)
	out = w.colorStart(out, colorCyan)
	out = append(out, " >"...)
	return w.colorEnd(out, colorCyan)
}

func (w *prettyWriter) appendMessage(out, val []byte, ok bool, level []byte) []byte {
	if !ok || string(val) == "null" || string(val) == `""` {
		return out
	}
	bold := false
	switch string(level) {
	case zerolog.LevelInfoValue, zerolog.LevelWarnValue, zerolog.LevelErrorValue, zerolog.LevelFatalValue, zerolog.LevelPanicValue:
		bold = true
	}
	if bold {
		out = w.colorStart(out, colorBold)
	}
	if val[0] == '"' {
		out = append(out, stringValue(val)...)
	} else {
		out = append(out, val...)
	}
	if bold {
		out = w.colorEnd(out, colorBold)
	}
	return out
}

func (w *prettyWriter) appendField(out []byte, f jsonField, isError bool) []byte {
	out = w.colorStart(out, colorCyan)
	out = append(out, f.key...)
	out = append(out, '=')
	out = w.colorEnd(out, colorCyan)
	if isError {
		out = w.colorStart(out, colorRed)
		out = w.colorStart(out, colorBold)
	}
	if len(f.val) > 0 && f.val[0] == '"' {
		s := stringValue(f.val)
		if needsQuote(s) {
			out = strconv.AppendQuote(out, string(s))
		} else {
			out = append(out, s...)
		}
	} else {
		out = append(out, f.val...)
	}
	if isError {
		out = w.colorEnd(out, colorBold)
		out = w.colorEnd(out, colorRed)
	}
	return out
}

// needsQuote reports whether a string value is quoted in console text.
func needsQuote(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == ' ' || c == '\\' || c == '"' {
			return true
		}
	}
	return false
}

// stringValue returns a JSON string's text: the bytes between its quotes
// when it has no escape, else the decoded text.
func stringValue(val []byte) []byte {
	if len(val) < 2 || val[0] != '"' {
		return val
	}
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if err := json.Unmarshal(val, &s); err != nil {
		return inner
	}
	return []byte(s)
}

func isJSONNumber(val []byte) bool {
	return len(val) > 0 && (val[0] == '-' || val[0] >= '0' && val[0] <= '9')
}

// splitJSONObject splits one JSON object into its members, without
// decoding their values. Keys with escapes are decoded into keys. It
// reports false for anything but one object (whitespace around it allowed).
func splitJSONObject(line []byte, fields []jsonField, keys []byte) ([]jsonField, []byte, bool) {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return fields, keys, false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return fields, keys, skipSpace(line, i+1) == len(line)
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return fields, keys, false
		}
		end, escaped := scanJSONString(line, i)
		if end < 0 {
			return fields, keys, false
		}
		key := line[i+1 : end-1]
		if escaped {
			var s string
			if json.Unmarshal(line[i:end], &s) != nil {
				return fields, keys, false
			}
			start := len(keys)
			keys = append(keys, s...)
			key = keys[start:len(keys):len(keys)]
		}
		i = skipSpace(line, end)
		if i >= len(line) || line[i] != ':' {
			return fields, keys, false
		}
		i = skipSpace(line, i+1)
		vend := scanJSONValue(line, i)
		if vend < 0 {
			return fields, keys, false
		}
		fields = append(fields, jsonField{key: key, val: line[i:vend]})
		i = skipSpace(line, vend)
		if i >= len(line) {
			return fields, keys, false
		}
		switch line[i] {
		case ',':
			i = skipSpace(line, i+1)
		case '}':
			return fields, keys, skipSpace(line, i+1) == len(line)
		default:
			return fields, keys, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanJSONString returns the end (past the closing quote) of the string
// that starts at b[i], and whether it has escapes; -1 if it does not end.
func scanJSONString(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, false
}

// scanJSONValue returns the end of the value that starts at b[i]: a
// string, an object or array (nested ones and their strings skipped), or a
// literal up to the next delimiter; -1 if it does not end.
func scanJSONValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := scanJSONString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := scanJSONString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// prettyFormats are the console-text formats of the `logging:` section.
var prettyFormats = []zeroconfig.LogFormat{zeroconfig.LogFormatPretty, zeroconfig.LogFormatPrettyColored}

// prettyWriterType is the writer type that stands for wt written in
// format by prettyWriter.
func prettyWriterType(wt zeroconfig.WriterType, format zeroconfig.LogFormat) zeroconfig.WriterType {
	return zeroconfig.WriterType("passerelle-" + string(format) + "-" + string(wt))
}

// usePrettyWriters has prettyWriter write the console-text writers of cfg
// (in memory: the config file is not changed): each becomes a JSON writer
// of a type registered by registerRedactingWriters, which formats the text
// itself. Writers of other types stay as they are.
func usePrettyWriters(cfg *zeroconfig.Config) {
	writers := slices.Clone(cfg.Writers)
	for i, wc := range writers {
		if _, known := redactedWriterTypes[wc.Type]; !known || !slices.Contains(prettyFormats, wc.Format) {
			continue
		}
		writers[i].Type = prettyWriterType(wc.Type, wc.Format)
		writers[i].Format = zeroconfig.LogFormatJSON
	}
	cfg.Writers = writers
}
