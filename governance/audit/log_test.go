package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func appendN(t *testing.T, l *audit.Log, clk *clocktest.Manual, n int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for i := 0; i < n; i++ {
		e, err := l.Append(context.Background(), audit.Entry{
			Actor: "@admin:example.org", Action: audit.ActionAdminAction, Network: "telegram",
			Portal: "telegram.100", Details: audit.Details(map[string]any{"n": i}),
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		clk.Advance(24 * time.Hour)
	}
	return out
}

func mustVerify(t *testing.T, l *audit.Log) audit.Report {
	t.Helper()
	r, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAppendAndVerify(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		l := audit.NewLog(openDB(t, b))
		l.Now = clk.Now
		if r := mustVerify(t, l); !r.OK() || r.Entries != 0 {
			t.Fatalf("empty log: %+v", r)
		}
		entries := appendN(t, l, clk, 5)
		for i, e := range entries {
			if e.Seq != int64(i+1) {
				t.Errorf("entry %d has seq %d", i, e.Seq)
			}
			if i > 0 && e.PrevHash != entries[i-1].Hash {
				t.Errorf("entry %d is not linked to its predecessor", e.Seq)
			}
		}
		if entries[0].PrevHash != audit.ZeroHash {
			t.Errorf("first entry prev_hash = %s", entries[0].PrevHash)
		}
		r := mustVerify(t, l)
		if !r.OK() || r.Entries != 5 || r.FirstSeq != 1 || r.LastSeq != 5 || r.HeadHash != entries[4].Hash {
			t.Fatalf("report = %+v, %v", r, r.Err())
		}
		got, err := l.Get(ctx, 3)
		if err != nil || got == nil {
			t.Fatalf("Get(3) = %v, %v", got, err)
		}
		if got.Hash != entries[2].Hash || !got.Time.Equal(entries[2].Time) || string(got.Details) != `{"n":2}` {
			t.Errorf("stored entry differs from appended one: %+v vs %+v", got, entries[2])
		}
		// Reopening the database (a restart) continues the same chain.
		l2 := audit.NewLog(openDB(t, b))
		e, err := l2.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionLogin, Staff: "@alice:example.org"})
		if err != nil || e.Seq != 6 || e.PrevHash != entries[4].Hash {
			t.Fatalf("append after restart: %+v, %v", e, err)
		}
		if r := mustVerify(t, l2); !r.OK() {
			t.Fatal(r.Err())
		}
	})
}

func TestAppendRejectsInvalidEntries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		l := audit.NewLog(openDB(t, b))
		for _, e := range []audit.Entry{
			{Actor: audit.ActorSystem, Action: "coffee_break"},
			{Actor: "alice", Action: audit.ActionLogin},
			{Actor: "", Action: audit.ActionLogin},
			{Actor: audit.ActorSystem, Action: audit.ActionLogin, Details: []byte(`[1,2]`)},
			{Actor: audit.ActorSystem, Action: audit.ActionLogin, Details: []byte(`{"a":`)},
		} {
			if _, err := l.Append(context.Background(), e); !errors.Is(err, audit.ErrInvalidEntry) {
				t.Errorf("Append(%+v) = %v, want ErrInvalidEntry", e, err)
			}
		}
		if r := mustVerify(t, l); r.Entries != 0 || r.HeadSeq != 0 {
			t.Fatalf("rejected entries changed the log: %+v", r)
		}
	})
}

// TestVerifyNamesEditedEntry edits one row behind the log's back, as someone
// with database access would, and expects Verify to name exactly that entry.
func TestVerifyNamesEditedEntry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		db := openDB(t, b)
		l := audit.NewLog(db)
		l.Now = clk.Now
		appendN(t, l, clk, 6)
		if _, err := db.Exec(ctx, "UPDATE governance_audit_log SET actor = '@mallory:example.org' WHERE seq = 4"); err != nil {
			t.Fatal(err)
		}
		r := mustVerify(t, l)
		if r.OK() {
			t.Fatal("Verify did not notice an edited entry")
		}
		if len(r.Problems) != 1 || r.Problems[0].Seq != 4 || r.Problems[0].Kind != audit.ProblemEdited {
			t.Fatalf("problems = %v, want entry 4 edited only", r.Problems)
		}
		if err := r.Err(); !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "entry 4") {
			t.Errorf("Err() = %v", err)
		}
	})
}

// TestVerifyNamesEntryRewrittenWithItsHash: the editor also recomputes the
// edited entry's hash; the next entry no longer links to it.
func TestVerifyNamesEntryRewrittenWithItsHash(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		db := openDB(t, b)
		l := audit.NewLog(db)
		l.Now = clk.Now
		entries := appendN(t, l, clk, 5)
		forged := entries[2]
		forged.Details = []byte(`{"n":99}`)
		hash, err := audit.ComputeHash(forged.PrevHash, &forged)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = db.Exec(ctx, "UPDATE governance_audit_log SET details = $1, hash = $2 WHERE seq = 3", string(forged.Details), hash); err != nil {
			t.Fatal(err)
		}
		r := mustVerify(t, l)
		if len(r.Problems) != 1 || r.Problems[0].Seq != 4 || r.Problems[0].Kind != audit.ProblemUnlinked || !strings.Contains(r.Problems[0].Detail, "entry 3") {
			t.Fatalf("problems = %v, want entry 4 unlinked from entry 3", r.Problems)
		}
	})
}

func TestVerifyNamesDeletedEntry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		deleted string
		seq     int64
	}{
		{"middle", "seq = 3", 3},
		{"first", "seq = 1", 1},
		{"run", "seq IN (2, 3, 4)", 2},
		{"newest", "seq = 6", 6},
		{"everything", "seq > 0", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
				clk := newClock()
				db := openDB(t, b)
				l := audit.NewLog(db)
				l.Now = clk.Now
				appendN(t, l, clk, 6)
				if _, err := db.Exec(context.Background(), "DELETE FROM governance_audit_log WHERE "+tc.deleted); err != nil {
					t.Fatal(err)
				}
				r := mustVerify(t, l)
				if len(r.Problems) != 1 || r.Problems[0].Seq != tc.seq || r.Problems[0].Kind != audit.ProblemMissing {
					t.Fatalf("problems = %v, want entry %d missing", r.Problems, tc.seq)
				}
			})
		})
	}
}

func TestPurgeKeepsChainVerifiableAndLogsItself(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		db := openDB(t, b)
		l := audit.NewLog(db)
		l.Now = clk.Now
		entries := appendN(t, l, clk, 10) // one a day
		cutoff := entries[5].Time         // keep entries 6..10
		res, err := l.Purge(ctx, cutoff, "@admin:example.org")
		if err != nil {
			t.Fatal(err)
		}
		if res.Purged != 5 || res.Anchor.Seq != 5 || res.Anchor.Hash != entries[4].Hash || res.Entry == nil {
			t.Fatalf("purge result = %+v", res)
		}
		if res.Entry.Seq != 11 || res.Entry.Action != audit.ActionRetentionPurge || res.Entry.Actor != "@admin:example.org" ||
			!strings.Contains(string(res.Entry.Details), `"purged":5`) {
			t.Errorf("purge entry = %+v", res.Entry)
		}
		if e, _ := l.Get(ctx, 5); e != nil {
			t.Error("entry 5 survived the purge")
		}
		r := mustVerify(t, l)
		if !r.OK() || r.FirstSeq != 6 || r.LastSeq != 11 || r.Anchor != res.Anchor {
			t.Fatalf("after purge: %+v %v", r, r.Err())
		}
		// Nothing more is old enough: no purge, no entry.
		res, err = l.Purge(ctx, cutoff, audit.ActorSystem)
		if err != nil || res.Purged != 0 || res.Entry != nil {
			t.Fatalf("second purge = %+v, %v", res, err)
		}
		// The anchor still catches a deletion right after it.
		if _, err = db.Exec(ctx, "DELETE FROM governance_audit_log WHERE seq = 6"); err != nil {
			t.Fatal(err)
		}
		if r := mustVerify(t, l); len(r.Problems) != 1 || r.Problems[0].Seq != 6 || r.Problems[0].Kind != audit.ProblemMissing {
			t.Fatalf("problems after deleting the first kept entry = %v", r.Problems)
		}
	})
}

// TestPurgeRefusesBrokenChain: purging must not erase the evidence of an edit.
func TestPurgeRefusesBrokenChain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		db := openDB(t, b)
		l := audit.NewLog(db)
		l.Now = clk.Now
		appendN(t, l, clk, 4)
		if _, err := db.Exec(ctx, "UPDATE governance_audit_log SET network = 'whatsapp' WHERE seq = 2"); err != nil {
			t.Fatal(err)
		}
		_, err := l.Purge(ctx, clk.Now(), audit.ActorSystem)
		if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "entry 2") {
			t.Fatalf("Purge on a broken chain = %v, want ErrTampered naming entry 2", err)
		}
		if r := mustVerify(t, l); r.Entries != 4 || r.Anchor.Seq != 0 {
			t.Fatalf("refused purge changed the log: %+v", r)
		}
	})
}

func TestConcurrentAppendsKeepValidChain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := openDB(t, b)
		const writers, each = 8, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := 0; w < writers; w++ {
			// Each writer has its own Log, as separate gateway processes would.
			l := audit.NewLog(db)
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					_, err := l.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionFirstContact,
						Contact: fmt.Sprintf("telegram.%d%03d", w, i)})
					if err != nil {
						errs <- err
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		r := mustVerify(t, audit.NewLog(db))
		if !r.OK() || r.Entries != writers*each || r.LastSeq != writers*each {
			t.Fatalf("after concurrent appends: %+v %v", r, r.Err())
		}
	})
}

// TestAppendRollsBackWithCallerTransaction: an entry appended inside a
// transaction that fails leaves no trace and no gap.
func TestAppendRollsBackWithCallerTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := openDB(t, b)
		l := audit.NewLog(db)
		boom := errors.New("boom")
		err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
			if _, err := l.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionPortalCreated}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		e, err := l.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionPortalCreated})
		if err != nil || e.Seq != 1 {
			t.Fatalf("append after rollback: %+v, %v", e, err)
		}
		if r := mustVerify(t, l); !r.OK() || r.Entries != 1 {
			t.Fatalf("%+v %v", r, r.Err())
		}
	})
}

func TestListFilters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		l := audit.NewLog(openDB(t, b))
		l.Now = clk.Now
		for _, e := range []audit.Entry{
			{Actor: "@alice:example.org", Action: audit.ActionLogin, Network: "telegram", Staff: "@alice:example.org"},
			{Actor: audit.ActorSystem, Action: audit.ActionRequestCreated, Network: "whatsapp", Staff: "@bob:example.org", Request: "7"},
			{Actor: "@admin:example.org", Action: audit.ActionRequestApproved, Network: "whatsapp", Staff: "@bob:example.org", Request: "7"},
			{Actor: "@alice:example.org", Action: audit.ActionLogout, Network: "telegram", Staff: "@alice:example.org"},
		} {
			if _, err := l.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Hour)
		}
		start := newClock().Now()
		for _, tc := range []struct {
			name string
			f    audit.Filter
			want []int64
		}{
			{"all", audit.Filter{}, []int64{1, 2, 3, 4}},
			{"network", audit.Filter{Network: "telegram"}, []int64{1, 4}},
			{"request", audit.Filter{Request: "7"}, []int64{2, 3}},
			{"actions", audit.Filter{Actions: []audit.Action{audit.ActionLogin, audit.ActionLogout}}, []int64{1, 4}},
			{"actor", audit.Filter{Actor: "@admin:example.org"}, []int64{3}},
			{"time", audit.Filter{Since: start.Add(time.Hour), Until: start.Add(3 * time.Hour)}, []int64{2, 3}},
			{"page", audit.Filter{AfterSeq: 1, Limit: 2}, []int64{2, 3}},
		} {
			got, err := l.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, seqs, tc.want)
			}
		}
	})
}
