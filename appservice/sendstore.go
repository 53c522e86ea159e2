package appservice

import (
	"context"
	"embed"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.mau.fi/util/dbutil"
)

// sendsVersionTable is the version table of the unanswered-sends schema,
// which migrates on its own, like the governance and connector schemas.
const sendsVersionTable = "passerelle_sends_version"

//go:embed upgrades/*.sql
var rawSendUpgrades embed.FS

var sendsUpgradeTable = dbutil.BuildUpgradeTable().WithFSPath(rawSendUpgrades, "upgrades").Finish()

// unansweredKeep is how long an attempt whose outcome is unknown is kept:
// far longer than any retry of the same message, short enough that the
// table stays small.
const unansweredKeep = 24 * time.Hour

// maxAttemptsRead bounds the earlier attempts read for one send.
const maxAttemptsRead = 16

// maxKnownPending bounds the paths the store remembers having rows for.
const maxKnownPending = 4096

// sendStore keeps the digests of unanswered sends in the gateway's database,
// so that they survive the gateway.
//
// It also knows, in memory, which paths have rows: the ones found at open
// (only the active instance writes the table, and it opens the store once
// it holds the lease) and the ones recorded since and not yet answered. A
// send whose path has none needs no read of the table, which is nearly every
// send. Past maxKnownPending paths it stops keeping count and reads the
// table for every send, as without the memory.
type sendStore struct {
	db  *dbutil.Database
	now func() time.Time

	mu         sync.Mutex
	pending    map[string]int // path → rows this instance knows of
	maxPending int            // paths pending may hold
	unsure     bool           // rows the memory does not cover: read the table
	// answeredPaths are answered sends whose rows are still in the table:
	// a record deletes them in its transaction once answeredBatch wait
	// (one commit per send instead of two). A row left behind by a crash before that is
	// harmless: its send was answered, so a later attempt of the same path
	// (a redelivery) finds the event it made and does not send again.
	answeredPaths []string
}

// maxAnsweredQueued bounds the answered paths waiting for deletion; past it
// an answer deletes its rows at once.
const maxAnsweredQueued = 256

// openSendStore upgrades the schema, drops attempts older than a day and
// learns the paths of the rows left.
func openSendStore(ctx context.Context, parent *dbutil.Database) (*sendStore, error) {
	db, err := openSchema(ctx, parent, sendsVersionTable, sendsUpgradeTable, "sends", nil)
	if err != nil {
		return nil, err
	}
	s := &sendStore{db: db, now: time.Now, pending: make(map[string]int), maxPending: maxKnownPending}
	if err := s.prune(ctx); err != nil {
		return nil, err
	}
	if err := s.learnPending(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// learnPending reads the paths that have rows, up to maxKnownPending.
func (s *sendStore) learnPending(ctx context.Context) error {
	rows, err := s.db.Query(ctx, `SELECT path, COUNT(*) FROM passerelle_unanswered_send GROUP BY path LIMIT $1`, s.maxPending+1)
	type pathCount struct {
		path string
		n    int
	}
	found, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (pc pathCount, err error) {
		err = row.Scan(&pc.path, &pc.n)
		return
	}, err).AsList()
	if err != nil {
		return fmt.Errorf("failed to read unanswered sends: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(found) > s.maxPending {
		s.unsure = true
		return nil
	}
	for _, pc := range found {
		s.pending[pc.path] = pc.n
	}
	return nil
}

// mayHave says whether path may have rows.
func (s *sendStore) mayHave(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsure || s.pending[path] > 0
}

// willRecord counts a row of path before it is written (a failed write
// leaves a count too many, which only costs a read).
func (s *sendStore) willRecord(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[path] == 0 && len(s.pending) >= s.maxPending {
		s.unsure = true
		return
	}
	s.pending[path]++
}

func (s *sendStore) prune(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM passerelle_unanswered_send WHERE created < $1`, s.now().Add(-unansweredKeep).UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to prune unanswered sends: %w", err)
	}
	return nil
}

// earlier returns the digests of the unanswered attempts of path.
func (s *sendStore) earlier(ctx context.Context, path string) ([][]byte, error) {
	if !s.mayHave(path) {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT digest FROM passerelle_unanswered_send WHERE path = $1 ORDER BY created DESC LIMIT $2`, path, maxAttemptsRead)
	bodies, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) ([]byte, error) {
		var digest string
		err := row.Scan(&digest)
		return []byte(digest), err
	}, err).AsList()
	if err != nil {
		return nil, fmt.Errorf("failed to read unanswered sends: %w", err)
	}
	return bodies, nil
}

// record notes an attempt before it leaves, in one transaction with the
// deletion of the rows of sends answered since the last record.
//
// The deletions wait until answeredBatch answered paths have gathered:
// until then a record is one statement, committed on its own, instead of
// a transaction of two (the transaction's begin, commit and bookkeeping
// were half of a record's cost, 4% of the gateway's CPU per WhatsApp
// message bridged to Matrix).
func (s *sendStore) record(ctx context.Context, path string, digest []byte) error {
	s.willRecord(path)
	s.mu.Lock()
	var done []string
	if len(s.answeredPaths) >= answeredBatch {
		done = s.answeredPaths
		s.answeredPaths = nil
	}
	s.mu.Unlock()
	created := s.now().UnixMilli()
	insert := func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `INSERT INTO passerelle_unanswered_send (path, digest, created) VALUES ($1, $2, $3)`, path, string(digest), created)
		return err
	}
	if len(done) == 0 {
		if err := insert(ctx); err != nil {
			return fmt.Errorf("failed to record a send: %w", err)
		}
		return nil
	}
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := s.deleteAnswered(ctx, done); err != nil {
			return err
		}
		return insert(ctx)
	})
	if err != nil {
		s.requeue(done)
		return fmt.Errorf("failed to record a send: %w", err)
	}
	return nil
}

// answeredBatch is how many answered paths wait before a record deletes
// their rows.
const answeredBatch = 32

// deleteAnswered deletes the rows of answered paths.
func (s *sendStore) deleteAnswered(ctx context.Context, paths []string) error {
	for len(paths) > 0 {
		batch := paths[:min(len(paths), 64)]
		paths = paths[len(batch):]
		args := make([]any, len(batch))
		marks := make([]byte, 0, 4*len(batch))
		for i, p := range batch {
			args[i] = p
			if i > 0 {
				marks = append(marks, ',')
			}
			marks = append(marks, '$')
			marks = strconv.AppendInt(marks, int64(i+1), 10)
		}
		if _, err := s.db.Exec(ctx, `DELETE FROM passerelle_unanswered_send WHERE path IN (`+string(marks)+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// requeue puts back answered paths whose deletion failed, as far as the
// bound allows (a row left is harmless, see answeredPaths).
func (s *sendStore) requeue(paths []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	room := maxAnsweredQueued - len(s.answeredPaths)
	s.answeredPaths = append(s.answeredPaths, paths[:max(0, min(len(paths), room))]...)
}

// answered forgets every attempt of path: at once in memory, in the table
// with the next record (or now, when too many wait).
func (s *sendStore) answered(ctx context.Context, path string) error {
	s.mu.Lock()
	delete(s.pending, path)
	queued := len(s.answeredPaths) < maxAnsweredQueued
	if queued {
		s.answeredPaths = append(s.answeredPaths, path)
	}
	s.mu.Unlock()
	if queued {
		return nil
	}
	if err := s.deleteAnswered(ctx, []string{path}); err != nil {
		return fmt.Errorf("failed to forget answered sends: %w", err)
	}
	return nil
}
