package audit_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestVerifyFlagsAnchorMovedOutOfBand: deleting the oldest entries and
// moving the anchor to match (what a purge does, but without one) is found;
// a real purge is not flagged, and a truncation after it is.
func TestVerifyFlagsAnchorMovedOutOfBand(t *testing.T) {
	moveAnchor := `UPDATE governance_audit_head SET anchor_seq = $1, anchor_hash = (SELECT prev_hash FROM governance_audit_log WHERE seq = $2) WHERE id = 0`
	for _, tc := range []struct {
		name  string
		purge bool  // a real purge of entries 1 to 3 first
		cut   int64 // then delete out of band through this entry
	}{
		{"truncated", false, 2},
		{"truncated after a purge", true, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
				ctx := context.Background()
				clk := newClock()
				db := openDB(t, b)
				l := audit.NewLog(db)
				l.Now = clk.Now
				entries := appendN(t, l, clk, 8)
				if tc.purge {
					if _, err := l.Purge(ctx, entries[3].Time, audit.ActorSystem); err != nil {
						t.Fatal(err)
					}
					if r := mustVerify(t, l); !r.OK() || r.Anchor.Seq != 3 {
						t.Fatalf("after a real purge: %+v %v", r, r.Err())
					}
				}
				if _, err := db.Exec(ctx, "DELETE FROM governance_audit_log WHERE seq <= $1", tc.cut); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(ctx, moveAnchor, tc.cut, tc.cut+1); err != nil {
					t.Fatal(err)
				}
				r := mustVerify(t, l)
				if len(r.Problems) != 1 || r.Problems[0].Kind != audit.ProblemAnchor || r.Problems[0].Seq != tc.cut+1 ||
					!strings.Contains(r.Problems[0].Detail, "out of band") {
					t.Fatalf("problems = %v, want the anchor at %d flagged", r.Problems, tc.cut)
				}
			})
		})
	}
}

// TestListPagesBothWays: a cursor on the sequence number pages forwards
// (after_seq) and backwards from the newest (before_seq, descending).
func TestListPagesBothWays(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		l := audit.NewLog(openDB(t, b))
		l.Now = clk.Now
		appendN(t, l, clk, 7)
		seqs := func(f audit.Filter) (out []int64) {
			entries, err := l.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				out = append(out, e.Seq)
			}
			return out
		}
		for _, tc := range []struct {
			f    audit.Filter
			want string
		}{
			{audit.Filter{Limit: 3}, "[1 2 3]"},
			{audit.Filter{AfterSeq: 3, Limit: 3}, "[4 5 6]"},
			{audit.Filter{AfterSeq: 6, Limit: 3}, "[7]"},
			{audit.Filter{Descending: true, Limit: 3}, "[7 6 5]"},
			{audit.Filter{Descending: true, BeforeSeq: 5, Limit: 3}, "[4 3 2]"},
			{audit.Filter{ThroughSeq: 2}, "[1 2]"},
		} {
			if got := fmtSeqs(seqs(tc.f)); got != tc.want {
				t.Errorf("%+v: %s, want %s", tc.f, got, tc.want)
			}
		}
	})
}

func fmtSeqs(seqs []int64) string {
	var b strings.Builder
	b.WriteString("[")
	for i, s := range seqs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.FormatInt(s, 10))
	}
	b.WriteString("]")
	return b.String()
}

// TestCheckPublishedFindsRewriteAndTruncation: a head published earlier is
// still in an untouched chain; a chain rewritten consistently (every hash
// recomputed, so that it verifies on its own) or truncated back before the
// published head does not match it.
func TestCheckPublishedFindsRewriteAndTruncation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		db := openDB(t, b)
		l := audit.NewLog(db)
		l.Now = clk.Now
		entries := appendN(t, l, clk, 6)
		published := audit.Anchor{Seq: 4, Hash: entries[3].Hash}
		if p, err := l.CheckPublished(ctx, published); err != nil || p != nil {
			t.Fatalf("untouched chain: %v, %v", p, err)
		}
		// Rewrite entry 3 and every hash after it, and the head: the chain
		// verifies, the published head does not match.
		prev := entries[1].Hash
		for i := 2; i < len(entries); i++ {
			e := entries[i]
			if i == 2 {
				e.Actor = "@someone-else:example.org"
			}
			e.PrevHash = prev
			var err error
			if e.Hash, err = audit.ComputeHash(prev, &e); err != nil {
				t.Fatal(err)
			}
			if _, err = db.Exec(ctx, "UPDATE governance_audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4", e.Actor, e.PrevHash, e.Hash, e.Seq); err != nil {
				t.Fatal(err)
			}
			prev = e.Hash
		}
		if _, err := db.Exec(ctx, "UPDATE governance_audit_head SET last_hash = $1 WHERE id = 0", prev); err != nil {
			t.Fatal(err)
		}
		if r := mustVerify(t, l); !r.OK() {
			t.Fatalf("the consistent rewrite should verify on its own: %v", r.Err())
		}
		if p, err := l.CheckPublished(ctx, published); err != nil || p == nil || p.Kind != audit.ProblemPublished || p.Seq != 4 {
			t.Fatalf("rewritten chain against the published head: %v, %v", p, err)
		}
		// Truncate back to entry 2.
		if _, err := db.Exec(ctx, "DELETE FROM governance_audit_log WHERE seq > 2"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, "UPDATE governance_audit_head SET last_seq = 2, last_hash = $1 WHERE id = 0", entries[1].Hash); err != nil {
			t.Fatal(err)
		}
		if r := mustVerify(t, l); !r.OK() {
			t.Fatalf("the truncated chain should verify on its own: %v", r.Err())
		}
		if p, err := l.CheckPublished(ctx, published); err != nil || p == nil || !strings.Contains(p.Detail, "truncated") {
			t.Fatalf("truncated chain against the published head: %v, %v", p, err)
		}
	})
}
