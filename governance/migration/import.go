package migration

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"maunium.net/go/mautrix/id"
)

// Bounds of a CSV import.
const (
	MaxImportBytes = 1 << 20
	MaxImportRows  = 10000
	maxRowErrors   = 100
)

// RowError is a row of an import that was not linked.
type RowError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// ImportResult is what an import did.
type ImportResult struct {
	Linked    int        `json:"linked"`
	Unchanged int        `json:"unchanged"`
	Failed    int        `json:"failed"`
	Errors    []RowError `json:"errors"` // the first maxRowErrors failed rows, by line
}

// ErrImportTooLarge is returned when an import passes MaxImportBytes or
// MaxImportRows; nothing is imported then.
var ErrImportTooLarge = errors.New("import is too large")

type importRow struct {
	line     int
	identity string
	req      LinkRequest
}

// Import links the rows of a CSV (identity, matrix_id, department, label;
// a first row naming those columns is skipped) as actor: good rows are
// linked, bad rows are reported by line. The whole input is read and
// checked against the bounds before anything is linked.
func (d *Directory) Import(ctx context.Context, actor string, r io.Reader) (*ImportResult, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read import: %w", err)
	}
	if len(data) > MaxImportBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrImportTooLarge, MaxImportBytes)
	}
	cr := csv.NewReader(strings.NewReader(string(data)))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	res := &ImportResult{Errors: []RowError{}}
	fail := func(line int, err error) {
		res.Failed++
		res.Errors = append(res.Errors, RowError{Line: line, Error: err.Error()})
	}
	var rows []importRow
	for n := 0; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			var perr *csv.ParseError
			if errors.As(err, &perr) {
				fail(perr.Line, perr.Err)
				if errors.Is(perr.Err, csv.ErrFieldCount) {
					continue
				}
			}
			return nil, fmt.Errorf("failed to parse import: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if n == 0 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "identity") {
			continue
		}
		if len(rows) >= MaxImportRows {
			return nil, fmt.Errorf("%w: more than %d rows", ErrImportTooLarge, MaxImportRows)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < 2 || len(rec) > 4 {
			fail(line, fmt.Errorf("%d columns: want identity, matrix_id, department, label", len(rec)))
			continue
		}
		for len(rec) < 4 {
			rec = append(rec, "")
		}
		rows = append(rows, importRow{line: line, identity: rec[0], req: LinkRequest{MatrixID: id.UserID(strings.TrimSpace(rec[1])), Department: rec[2], Label: rec[3], Source: SourceImport}})
	}
	for _, row := range rows {
		ident, err := d.Resolve(ctx, row.identity)
		if err != nil {
			fail(row.line, err)
			continue
		}
		row.req.Identity = ident
		before, err := d.Get(ctx, ident)
		if err != nil {
			return res, err
		}
		after, err := d.Link(ctx, actor, row.req)
		if err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			fail(row.line, err)
			continue
		}
		if before != nil && *before == *after {
			res.Unchanged++
		} else {
			res.Linked++
		}
	}
	sort.SliceStable(res.Errors, func(i, j int) bool { return res.Errors[i].Line < res.Errors[j].Line })
	if len(res.Errors) > maxRowErrors {
		res.Errors = res.Errors[:maxRowErrors]
	}
	return res, nil
}
