package appservice

import (
	"bytes"
	"fmt"
	"io"
	"regexp"

	"go.mau.fi/zeroconfig"
	"gopkg.in/natefinch/lumberjack.v2"
)

// WhatsApp identifies people by phone number, so a WhatsApp ghost, portal or
// JID carries the contact's number, and bridgev2 logs those IDs at info level.
// The gateway keeps numbers out of its logs by masking them in every log
// writer, whatever the level: only the last two digits stay, enough to tell
// two contacts apart while reading a log.
var (
	// A WhatsApp network ID or ghost localpart, with everything that follows
	// it in the same token: whatsapp.33612345678, whatsapp.g-1203...,
	// whatsapp.33612345678.33698765432.3EB0..., passerelle_whatsapp.336...
	whatsAppToken = regexp.MustCompile(`whatsapp[._][A-Za-z0-9._=:-]*`)
	// A run of digits long enough to be a phone number, inside such a token.
	longDigits = regexp.MustCompile(`\d{7,}`)
	// Phone-number JIDs (33612345678@s.whatsapp.net, with a device: :12@)
	// and E.164 numbers written out (+33612345678).
	phonePatterns = []*regexp.Regexp{
		regexp.MustCompile(`()(\d{5,})(\d{2}(?::\d+)?@s\.whatsapp\.net)`),
		regexp.MustCompile(`(\+)(\d{5,})(\d{2})`),
	}
)

// RedactPhoneNumbers masks the phone numbers in one log line, keeping the
// last two digits.
func RedactPhoneNumbers(line []byte) []byte {
	line = whatsAppToken.ReplaceAllFunc(line, func(token []byte) []byte {
		return longDigits.ReplaceAllFunc(token, mask)
	})
	for _, re := range phonePatterns {
		line = re.ReplaceAllFunc(line, func(m []byte) []byte {
			parts := re.FindSubmatch(m)
			out := append([]byte{}, parts[1]...)
			out = append(out, bytes.Repeat([]byte{'*'}, len(parts[2]))...)
			return append(out, parts[3]...)
		})
	}
	return line
}

// mask replaces all digits of a run but the last two.
func mask(digits []byte) []byte {
	out := bytes.Repeat([]byte{'*'}, len(digits))
	copy(out[len(out)-2:], digits[len(digits)-2:])
	return out
}

// redactingWriter masks phone numbers in what passes through it. zerolog
// hands a writer one whole event per Write, so a number is never split.
type redactingWriter struct {
	out io.Writer
}

func (w redactingWriter) Write(p []byte) (int, error) {
	if _, err := w.out.Write(RedactPhoneNumbers(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// registerRedactingWriters wraps zeroconfig's stdout, stderr and file writers,
// which bridgev2 builds from the `logging:` section of the config.
func registerRedactingWriters() {
	stdout := func(*zeroconfig.WriterConfig) (io.Writer, error) {
		return redactingWriter{out: zeroconfig.Stdout}, nil
	}
	stderr := func(*zeroconfig.WriterConfig) (io.Writer, error) {
		return redactingWriter{out: zeroconfig.Stderr}, nil
	}
	zeroconfig.RegisterWriter(zeroconfig.WriterTypeStdout, stdout)
	zeroconfig.RegisterWriter(zeroconfig.WriterTypeStderr, stderr)
	zeroconfig.RegisterWriter(zeroconfig.WriterTypeFile, func(wc *zeroconfig.WriterConfig) (io.Writer, error) {
		file, err := compileFile(wc)
		if err != nil {
			return nil, err
		}
		return redactingWriter{out: file}, nil
	})
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
