package audit_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// stallFor is how long the stalled export client of
// TestStalledExportNeverBlocksAppends reads nothing. The default is longer
// than SQLite's 5 s busy timeout, which is what shows that no lock is held;
// the acceptance test of issue 7 runs it with -audit.stall=60s.
var stallFor = flag.Duration("audit.stall", 6*time.Second, "how long the stalled export client reads nothing")

// appendBound is a generous bound for one append while an export stalls: an
// append that waited for a lock would take SQLite's busy timeout (5 s) and
// then fail with "database is locked".
const appendBound = time.Second

// TestStalledExportNeverBlocksAppends: while an export's reader takes
// nothing (a pipe that nobody reads), audit appends go on within a second,
// and verification runs beside them; once read, the stalled export is
// complete and consistent up to the head it started at.
func TestStalledExportNeverBlocksAppends(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		l := audit.NewLog(openDB(t, b))
		l.Now = clk.Now
		const before = audit.PageSize + 100 // more than one page
		for i := 0; i < before; i++ {
			if _, err := l.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionFirstContact, Network: "telegram", Contact: "telegram.1"}); err != nil {
				t.Fatal(err)
			}
		}
		head, err := l.Head(ctx)
		if err != nil || head.Seq != before {
			t.Fatalf("head = %+v, %v", head, err)
		}

		for _, format := range []audit.Format{audit.FormatJSON, audit.FormatCSV} {
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				err := l.Export(ctx, pw, format, audit.Filter{})
				_ = pw.CloseWithError(err)
				done <- err
			}()
			// The client reads the first bytes, then stalls: the export is
			// now blocked in a write.
			var got bytes.Buffer
			if _, err = io.CopyN(&got, pr, 512); err != nil {
				t.Fatal(err)
			}
			stallEnd := time.Now().Add(*stallFor)
			appended := 0
			for time.Now().Before(stallEnd) {
				start := time.Now()
				_, err := l.Append(ctx, audit.Entry{Actor: "@admin:example.org", Action: audit.ActionAdminAction, Details: audit.Details(map[string]any{"during": "export"})})
				if took := time.Since(start); err != nil || took > appendBound {
					t.Fatalf("%s: append while the export stalls took %v: %v", format, took, err)
				}
				appended++
				if appended%10 == 0 {
					// A verification beside the stalled export and the
					// appends sees a chain that verifies.
					if r := mustVerify(t, l); !r.OK() {
						t.Fatalf("%s: verify beside a stalled export: %v", format, r.Err())
					}
				}
				select {
				case err := <-done:
					t.Fatalf("%s: the export finished although nobody read it: %v", format, err)
				case <-time.After(100 * time.Millisecond): // pace the appends through the stall
				}
			}
			t.Logf("%s: %d appends while the export stalled for %v", format, appended, *stallFor)
			if _, err = io.Copy(&got, pr); err != nil {
				t.Fatal(err)
			}
			if err = <-done; err != nil {
				t.Fatalf("%s: export: %v", format, err)
			}
			exp, err := audit.ParseExport(&got, format)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if int64(len(exp.Entries)) != head.Seq || exp.Trailer == nil || exp.Trailer.Head.Seq != head.Seq ||
				exp.Trailer.Head.Hash != exp.Entries[len(exp.Entries)-1].Hash {
				t.Fatalf("%s: stalled export has %d entries, trailer %+v; want the %d entries up to the head it started at", format, len(exp.Entries), exp.Trailer, head.Seq)
			}
			if r := audit.VerifyEntries(exp.Entries); !r.OK() {
				t.Fatalf("%s: stalled export does not verify: %v", format, r.Err())
			}
			if head, err = l.Head(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if r := mustVerify(t, l); !r.OK() || r.LastSeq != head.Seq {
			t.Fatalf("after the stalls: %+v, %v", r, r.Err())
		}
	})
}
