package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"
)

// Format is an export format.
type Format string

const (
	// FormatCSV is RFC 4180 CSV with a header row. A cell that a spreadsheet
	// would run as a formula (starting with = + - @, a tab or a CR) or that
	// starts with ' gets a leading ', which the parser removes. Times are
	// RFC 3339 in UTC; lists and details are JSON in their cell.
	FormatCSV Format = "csv"
	// FormatJSON is one JSON array of objects.
	FormatJSON Format = "json"
)

// ParseFormat returns the format called name ("csv" or "json").
func ParseFormat(name string) (Format, error) {
	switch f := Format(strings.ToLower(name)); f {
	case FormatCSV, FormatJSON:
		return f, nil
	default:
		return "", fmt.Errorf("%w %q (csv or json)", ErrUnknownFormat, name)
	}
}

// codec turns T into CSV rows and back.
type codec[T any] struct {
	header  []string
	toRow   func(*T) []string
	fromRow func([]string) (T, error)
}

type encoder[T any] struct {
	w      io.Writer
	format Format
	codec  codec[T]
	csv    *csv.Writer
	n      int
}

func newEncoder[T any](w io.Writer, format Format, c codec[T]) (*encoder[T], error) {
	e := &encoder[T]{w: w, format: format, codec: c}
	switch format {
	case FormatCSV:
		e.csv = csv.NewWriter(w)
		return e, e.csv.Write(c.header)
	case FormatJSON:
		_, err := io.WriteString(w, "[")
		return e, err
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownFormat, format)
	}
}

func (e *encoder[T]) write(v *T) error {
	e.n++
	if e.csv != nil {
		row := e.codec.toRow(v)
		for i, cell := range row {
			row[i] = csvEscape(cell)
		}
		return e.csv.Write(row)
	}
	var buf bytes.Buffer
	if e.n > 1 {
		buf.WriteString(",")
	}
	buf.WriteString("\n")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // details are hashed byte for byte
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	_, err := e.w.Write(buf.Bytes())
	return err
}

func (e *encoder[T]) close() error {
	if e.csv != nil {
		e.csv.Flush()
		return e.csv.Error()
	}
	_, err := io.WriteString(e.w, "\n]\n")
	return err
}

func csvEscape(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r'", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

func csvUnescape(cell string) string {
	return strings.TrimPrefix(cell, "'")
}

// decode reads values in format. special, if not nil, sees each CSV row
// first, and takes it (true) or leaves it to the codec.
func decode[T any](r io.Reader, format Format, c codec[T], special func(row []string) (bool, error)) ([]T, error) {
	switch format {
	case FormatJSON:
		var out []T
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil {
			return nil, err
		}
		return out, nil
	case FormatCSV:
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = len(c.header)
		header, err := cr.Read()
		if err != nil {
			return nil, fmt.Errorf("failed to read header: %w", err)
		}
		for i, h := range header {
			if h != c.header[i] {
				return nil, fmt.Errorf("column %d is %q, expected %q", i+1, h, c.header[i])
			}
		}
		out := []T{}
		for line := 2; ; line++ {
			row, err := cr.Read()
			if err == io.EOF {
				return out, nil
			} else if err != nil {
				return nil, err
			}
			if special != nil {
				taken, err := special(row)
				if err != nil {
					return nil, fmt.Errorf("row %d: %w", line, err)
				} else if taken {
					continue
				}
			}
			for i := range row {
				row[i] = csvUnescape(row[i])
			}
			v, err := c.fromRow(row)
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", line, err)
			}
			out = append(out, v)
		}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownFormat, format)
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

var entryCodec = codec[Entry]{
	header: []string{"seq", "time", "actor", "action", "network", "staff", "login", "portal", "contact", "request", "details", "prev_hash", "hash"},
	toRow: func(e *Entry) []string {
		return []string{strconv.FormatInt(e.Seq, 10), formatTime(e.Time), e.Actor, string(e.Action), e.Network,
			string(e.Staff), string(e.Login), string(e.Portal), e.Contact, e.Request, string(e.Details), e.PrevHash, e.Hash}
	},
	fromRow: func(row []string) (e Entry, err error) {
		if e.Seq, err = strconv.ParseInt(row[0], 10, 64); err != nil {
			return e, fmt.Errorf("seq: %w", err)
		}
		if e.Time, err = parseTime(row[1]); err != nil {
			return e, fmt.Errorf("time: %w", err)
		}
		e.Actor, e.Action, e.Network = row[2], Action(row[3]), row[4]
		e.Staff, e.Login, e.Portal = id.UserID(row[5]), networkid.UserLoginID(row[6]), networkid.PortalID(row[7])
		e.Contact, e.Request, e.Details = row[8], row[9], json.RawMessage(row[10])
		e.PrevHash, e.Hash = row[11], row[12]
		return e, nil
	},
}

// WriteEntries writes entries in format.
func WriteEntries(w io.Writer, format Format, entries []Entry) error {
	enc, err := newEncoder(w, format, entryCodec)
	if err != nil {
		return fmt.Errorf("failed to write audit entries: %w", err)
	}
	for i := range entries {
		if err = enc.write(&entries[i]); err != nil {
			return fmt.Errorf("failed to write audit entries: %w", err)
		}
	}
	return enc.close()
}

// ParseEntries reads entries written by WriteEntries or Log.Export (whose
// trailer it checks for form, and drops: see ParseExport).
func ParseEntries(r io.Reader, format Format) ([]Entry, error) {
	exp, err := ParseExport(r, format)
	if err != nil {
		return nil, err
	}
	return exp.Entries, nil
}

// Trailer ends a log export (Log.Export): the chain head when the export
// started, which is also its last entry when the export is unfiltered. An
// export without its trailer was cut short. Compare Head with a head
// published in the admin room (gov-head) to show that the chain was not
// truncated or rewritten since.
type Trailer struct {
	Head       Head      `json:"head"`
	ExportedAt time.Time `json:"exported_at"`
}

// Exported is a parsed export: its entries, and its trailer (nil for the
// output of WriteEntries, which has none).
type Exported struct {
	Entries []Entry
	Trailer *Trailer
}

// csvTrailerMark starts the trailer row of a CSV export; a real row starts
// with a number.
const csvTrailerMark = "#head"

func (t *Trailer) csvRow() []string {
	row := make([]string, len(entryCodec.header))
	copy(row, []string{csvTrailerMark, "seq=" + strconv.FormatInt(t.Head.Seq, 10), "hash=" + t.Head.Hash,
		"anchor_seq=" + strconv.FormatInt(t.Head.Anchor.Seq, 10), "anchor_hash=" + t.Head.Anchor.Hash,
		"exported_at=" + formatTime(t.ExportedAt)})
	return row
}

func parseCSVTrailer(row []string) (*Trailer, error) {
	t := &Trailer{}
	for i, key := range []string{"seq", "hash", "anchor_seq", "anchor_hash", "exported_at"} {
		val, ok := strings.CutPrefix(row[i+1], key+"=")
		if !ok {
			return nil, fmt.Errorf("trailer: column %d is not %s=", i+2, key)
		}
		var err error
		switch key {
		case "seq":
			t.Head.Seq, err = strconv.ParseInt(val, 10, 64)
		case "hash":
			t.Head.Hash = val
		case "anchor_seq":
			t.Head.Anchor.Seq, err = strconv.ParseInt(val, 10, 64)
		case "anchor_hash":
			t.Head.Anchor.Hash = val
		case "exported_at":
			t.ExportedAt, err = parseTime(val)
		}
		if err != nil {
			return nil, fmt.Errorf("trailer: %s: %w", key, err)
		}
	}
	return t, nil
}

// ParseExport reads a log export: the entries, and the trailer if there is
// one. JSON is either an array of entries (WriteEntries) or the object that
// Log.Export writes, {"entries": [...], "head": {...}, "exported_at": ...}.
func ParseExport(r io.Reader, format Format) (Exported, error) {
	var out Exported
	var err error
	switch format {
	case FormatJSON:
		var raw json.RawMessage
		if err = json.NewDecoder(r).Decode(&raw); err != nil {
			break
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' {
			var obj struct {
				Entries    *[]Entry   `json:"entries"`
				Head       *Head      `json:"head"`
				ExportedAt *time.Time `json:"exported_at"`
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err = dec.Decode(&obj); err == nil && (obj.Entries == nil || obj.Head == nil || obj.ExportedAt == nil) {
				err = fmt.Errorf("an export object needs entries, head and exported_at")
			}
			if err == nil {
				out.Entries = *obj.Entries
				out.Trailer = &Trailer{Head: *obj.Head, ExportedAt: obj.ExportedAt.UTC()}
			}
			break
		}
		out.Entries, err = decode(bytes.NewReader(raw), format, entryCodec, nil)
	case FormatCSV:
		out.Entries, err = decode(r, format, entryCodec, func(row []string) (bool, error) {
			if row[0] != csvTrailerMark {
				if out.Trailer != nil {
					return false, fmt.Errorf("a row follows the trailer")
				}
				return false, nil
			}
			if out.Trailer != nil {
				return false, fmt.Errorf("a second trailer")
			}
			out.Trailer, err = parseCSVTrailer(row)
			return true, err
		})
	default:
		err = fmt.Errorf("%w %q", ErrUnknownFormat, format)
	}
	if err != nil {
		return Exported{}, fmt.Errorf("failed to parse audit entries: %w", err)
	}
	if out.Entries == nil {
		out.Entries = []Entry{}
	}
	return out, nil
}

// Export writes the entries that f selects (f.Limit, f.BeforeSeq and
// f.Descending ignored), oldest first, up to the chain head it sees when it
// starts, followed by a Trailer with that head. It reads in pages
// (PageSize), each a short query of its own, and writes a page only once
// its rows are closed: however slowly w takes the data, no database lock is
// held meanwhile and appends go on. An unfiltered export verifies on its
// own with VerifyEntries, and is consistent up to its head (a purge that
// runs while it is written can only delete entries it has not reached, which
// then are missing from it).
func (l *Log) Export(ctx context.Context, w io.Writer, format Format, f Filter) error {
	f = l.sealFilter(f)
	if _, err := ParseFormat(string(format)); err != nil {
		return fmt.Errorf("failed to export audit log: %w", err)
	}
	h, err := l.Head(ctx)
	if err != nil {
		return fmt.Errorf("failed to export audit log: %w", err)
	}
	trailer := Trailer{Head: h, ExportedAt: l.now().UTC()}
	if format == FormatJSON {
		if _, err = io.WriteString(w, `{"entries":`); err != nil {
			return fmt.Errorf("failed to export audit log: %w", err)
		}
	}
	enc, err := newEncoder(w, format, entryCodec)
	if err != nil {
		return fmt.Errorf("failed to export audit log: %w", err)
	}
	through := h.Seq
	if f.ThroughSeq > 0 && f.ThroughSeq < through {
		through = f.ThroughSeq
	}
	err = l.pages(ctx, f, through, func(page []*Entry) error {
		for _, e := range page {
			if err := enc.write(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && format == FormatCSV {
		err = enc.csv.Write(trailer.csvRow())
	}
	if err == nil {
		err = enc.close()
	}
	if err == nil && format == FormatJSON {
		var tail []byte
		if tail, err = json.Marshal(trailer); err == nil {
			// {"head":…,"exported_at":…} continues the object after "entries".
			_, err = fmt.Fprintf(w, ",%s\n", tail[1:])
		}
	}
	if err != nil {
		return fmt.Errorf("failed to export audit log: %w", err)
	}
	return nil
}

var contactCodec = codec[Contact]{
	header: []string{"network", "remote_id", "phone", "username", "display_names", "first_seen", "last_seen", "messages_in", "messages_out", "media_in", "media_out", "activity_in", "activity_out", "links"},
	toRow: func(c *Contact) []string {
		names, _ := json.Marshal(nonNil(c.DisplayNames))
		links, _ := json.Marshal(nonNil(c.Links))
		return []string{c.Network, c.RemoteID, c.Phone, c.Username, string(names), formatTime(c.FirstSeen), formatTime(c.LastSeen),
			strconv.FormatInt(c.MessagesIn, 10), strconv.FormatInt(c.MessagesOut, 10),
			strconv.FormatInt(c.MediaIn, 10), strconv.FormatInt(c.MediaOut, 10),
			strconv.FormatInt(c.ActivityIn, 10), strconv.FormatInt(c.ActivityOut, 10), string(links)}
	},
	fromRow: func(row []string) (c Contact, err error) {
		c.Network, c.RemoteID, c.Phone, c.Username = row[0], row[1], row[2], row[3]
		if err = json.Unmarshal([]byte(row[4]), &c.DisplayNames); err != nil {
			return c, fmt.Errorf("display_names: %w", err)
		}
		if c.FirstSeen, err = parseTime(row[5]); err != nil {
			return c, fmt.Errorf("first_seen: %w", err)
		}
		if c.LastSeen, err = parseTime(row[6]); err != nil {
			return c, fmt.Errorf("last_seen: %w", err)
		}
		for i, col := range []struct {
			name string
			dst  *int64
		}{{"messages_in", &c.MessagesIn}, {"messages_out", &c.MessagesOut}, {"media_in", &c.MediaIn}, {"media_out", &c.MediaOut},
			{"activity_in", &c.ActivityIn}, {"activity_out", &c.ActivityOut}} {
			if *col.dst, err = strconv.ParseInt(row[7+i], 10, 64); err != nil {
				return c, fmt.Errorf("%s: %w", col.name, err)
			}
		}
		if err = json.Unmarshal([]byte(row[13]), &c.Links); err != nil {
			return c, fmt.Errorf("links: %w", err)
		}
		return c, nil
	},
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// WriteContacts writes contacts in format.
func WriteContacts(w io.Writer, format Format, contacts []Contact) error {
	enc, err := newEncoder(w, format, contactCodec)
	if err != nil {
		return fmt.Errorf("failed to write contacts: %w", err)
	}
	for i := range contacts {
		c := contacts[i]
		c.DisplayNames, c.Links = nonNil(c.DisplayNames), nonNil(c.Links)
		if err = enc.write(&c); err != nil {
			return fmt.Errorf("failed to write contacts: %w", err)
		}
	}
	return enc.close()
}

// ParseContacts reads contacts written by WriteContacts or Registry.Export.
func ParseContacts(r io.Reader, format Format) ([]Contact, error) {
	out, err := decode(r, format, contactCodec, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to parse contacts: %w", err)
	}
	return out, nil
}

// Export writes the contacts that f selects (all of them, f.Limit and
// f.Offset ignored) with their links.
func (r *Registry) Export(ctx context.Context, w io.Writer, format Format, f ContactFilter) error {
	f.Limit, f.Offset = 0, 0
	if _, err := ParseFormat(string(format)); err != nil {
		return fmt.Errorf("failed to export contacts: %w", err)
	}
	contacts, err := r.List(ctx, f)
	if err != nil {
		return fmt.Errorf("failed to export contacts: %w", err)
	}
	return WriteContacts(w, format, contacts)
}
