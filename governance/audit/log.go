package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
)

// Log is the append-only, hash-chained audit log. Its database is the
// governance schema (governance/store). Every method is safe for concurrent
// use, also from several gateway processes on one PostgreSQL database.
type Log struct {
	db      *dbutil.Database
	entries *dbutil.QueryHelper[*Entry]
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// NewLog returns the audit log stored in db, an upgraded governance database
// (store.Open).
func NewLog(db *dbutil.Database) *Log {
	return &Log{db: db, entries: dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*Entry]) *Entry { return &Entry{} })}
}

func (l *Log) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

const entryColumns = "seq, ts, actor, action, network, staff, login, portal, contact, request, details, prev_hash, hash"

const (
	// lockHeadQuery takes the chain head for the rest of the transaction:
	// starting with a write serialises appenders on both backends (a row
	// lock on PostgreSQL, the database write lock on SQLite).
	lockHeadQuery = `
		UPDATE governance_audit_head SET last_seq = last_seq WHERE id = 0
		RETURNING last_seq, last_hash, anchor_seq, anchor_hash
	`
	readHeadQuery    = `SELECT last_seq, last_hash, anchor_seq, anchor_hash FROM governance_audit_head WHERE id = 0`
	setHeadQuery     = `UPDATE governance_audit_head SET last_seq = $1, last_hash = $2 WHERE id = 0`
	setAnchorQuery   = `UPDATE governance_audit_head SET anchor_seq = $1, anchor_hash = $2 WHERE id = 0`
	insertEntryQuery = `
		INSERT INTO governance_audit_log (` + entryColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	`
	allEntriesQuery   = `SELECT ` + entryColumns + ` FROM governance_audit_log ORDER BY seq`
	getEntryQuery     = `SELECT ` + entryColumns + ` FROM governance_audit_log WHERE seq = $1`
	firstKeptSeqQuery = `SELECT MIN(seq) FROM governance_audit_log WHERE ts >= $1`
	purgeQuery        = `DELETE FROM governance_audit_log WHERE seq <= $1`
)

// Scan implements dbutil.DataStruct.
func (e *Entry) Scan(row dbutil.Scannable) (*Entry, error) {
	var ts int64
	var details string
	err := row.Scan(&e.Seq, &ts, &e.Actor, &e.Action, &e.Network, &e.Staff, &e.Login, &e.Portal, &e.Contact, &e.Request, &details, &e.PrevHash, &e.Hash)
	if err != nil {
		return nil, err
	}
	e.Time = time.UnixMilli(ts).UTC()
	e.Details = []byte(details)
	return e, nil
}

func (e *Entry) sqlVariables() []any {
	return []any{e.Seq, e.Time.UnixMilli(), e.Actor, e.Action, e.Network, e.Staff, e.Login, e.Portal, e.Contact, e.Request, string(e.Details), e.PrevHash, e.Hash}
}

type head struct {
	lastSeq  int64
	lastHash string
	anchor   Anchor
}

func (l *Log) lockHead(ctx context.Context) (h head, err error) {
	err = l.db.QueryRow(ctx, lockHeadQuery).Scan(&h.lastSeq, &h.lastHash, &h.anchor.Seq, &h.anchor.Hash)
	return
}

// Append adds e to the log and returns it as stored: Seq, Time (if it was
// zero), PrevHash and Hash set. Inside a transaction of the same database
// (in ctx) the entry commits or rolls back with it.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	if err := e.normalize(); err != nil {
		return Entry{}, err
	}
	err := l.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		h, err := l.lockHead(ctx)
		if err != nil {
			return fmt.Errorf("failed to lock audit chain head: %w", err)
		}
		e.Seq = h.lastSeq + 1
		e.PrevHash = h.lastHash
		if e.Hash, err = ComputeHash(e.PrevHash, &e); err != nil {
			return fmt.Errorf("failed to hash audit entry: %w", err)
		}
		if _, err = l.db.Exec(ctx, insertEntryQuery, e.sqlVariables()...); err != nil {
			return fmt.Errorf("failed to insert audit entry: %w", err)
		}
		if _, err = l.db.Exec(ctx, setHeadQuery, e.Seq, e.Hash); err != nil {
			return fmt.Errorf("failed to update audit chain head: %w", err)
		}
		return nil
	})
	if err != nil {
		return Entry{}, fmt.Errorf("failed to append audit entry: %w", err)
	}
	return e, nil
}

// Get returns entry seq, or nil if there is none.
func (l *Log) Get(ctx context.Context, seq int64) (*Entry, error) {
	e, err := l.entries.QueryOne(ctx, getEntryQuery, seq)
	if err != nil {
		return nil, fmt.Errorf("failed to get audit entry: %w", err)
	}
	return e, nil
}

// snapshot runs fn in a transaction that sees one state of the log.
func (l *Log) snapshot(ctx context.Context, fn func(ctx context.Context) error) error {
	opts := &dbutil.TxnOptions{ReadOnly: true}
	if l.db.Dialect == dbutil.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	} else {
		opts = nil // SQLite transactions are snapshots already
	}
	return l.db.DoTxn(ctx, opts, fn)
}

// Verify walks the whole chain from its anchor and reports every entry that
// was edited, deleted or relinked, first one first. The error is for failures
// to read; a broken chain is a Report that is not OK.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	var report Report
	err := l.snapshot(ctx, func(ctx context.Context) error {
		var err error
		report, err = l.verify(ctx)
		return err
	})
	if err != nil {
		return Report{}, fmt.Errorf("failed to verify audit log: %w", err)
	}
	return report, nil
}

func (l *Log) verify(ctx context.Context) (Report, error) {
	var h head
	if err := l.db.QueryRow(ctx, readHeadQuery).Scan(&h.lastSeq, &h.lastHash, &h.anchor.Seq, &h.anchor.Hash); err != nil {
		return Report{}, fmt.Errorf("failed to read audit chain head: %w", err)
	}
	c := newChecker(h.anchor)
	err := l.entries.QueryManyIter(ctx, allEntriesQuery).Iter(func(e *Entry) (bool, error) {
		c.add(e)
		return true, nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("failed to read audit entries: %w", err)
	}
	return c.finish(h.lastSeq, h.lastHash), nil
}

// PurgeResult tells what Purge removed.
type PurgeResult struct {
	// Purged is the number of entries removed; 0 when nothing was old enough.
	Purged int64
	// Anchor is the newest purged entry, where the chain now starts.
	Anchor Anchor
	// Entry is the retention_purge entry that records the purge.
	Entry *Entry
}

// Purge removes the entries older than olderThan from the start of the chain
// (it stops at the first entry that is not old enough, so the chain stays
// contiguous), keeps the hash of the newest removed entry as the chain's new
// anchor, and appends a retention_purge entry by actor. It first verifies the
// chain and purges nothing from a broken one (the error wraps ErrTampered):
// a purge must not erase the evidence.
func (l *Log) Purge(ctx context.Context, olderThan time.Time, actor string) (PurgeResult, error) {
	var res PurgeResult
	err := l.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		h, err := l.lockHead(ctx)
		if err != nil {
			return fmt.Errorf("failed to lock audit chain head: %w", err)
		}
		report, err := l.verify(ctx)
		if err != nil {
			return err
		}
		if err = report.Err(); err != nil {
			return err
		}
		var firstKept sql.NullInt64
		if err = l.db.QueryRow(ctx, firstKeptSeqQuery, olderThan.UnixMilli()).Scan(&firstKept); err != nil {
			return fmt.Errorf("failed to find the first audit entry to keep: %w", err)
		}
		through := h.lastSeq
		if firstKept.Valid {
			through = firstKept.Int64 - 1
		}
		res.Anchor = h.anchor
		if through <= h.anchor.Seq {
			return nil
		}
		last, err := l.entries.QueryOne(ctx, getEntryQuery, through)
		if err != nil {
			return fmt.Errorf("failed to read audit entry %d: %w", through, err)
		} else if last == nil {
			return fmt.Errorf("%w: entry %d is missing", ErrTampered, through)
		}
		if _, err = l.db.Exec(ctx, purgeQuery, through); err != nil {
			return fmt.Errorf("failed to delete audit entries: %w", err)
		}
		res.Purged = through - h.anchor.Seq
		res.Anchor = Anchor{Seq: through, Hash: last.Hash}
		if _, err = l.db.Exec(ctx, setAnchorQuery, res.Anchor.Seq, res.Anchor.Hash); err != nil {
			return fmt.Errorf("failed to move audit chain anchor: %w", err)
		}
		entry, err := l.Append(ctx, Entry{
			Actor:  actor,
			Action: ActionRetentionPurge,
			Details: Details(map[string]any{
				"purged":      res.Purged,
				"from_seq":    h.anchor.Seq + 1,
				"through_seq": through,
				"anchor_hash": res.Anchor.Hash,
				"older_than":  olderThan.UTC().Format(time.RFC3339),
			}),
		})
		res.Entry = &entry
		return err
	})
	if err != nil {
		return PurgeResult{}, fmt.Errorf("failed to purge audit log: %w", err)
	}
	return res, nil
}

// Filter selects entries for List and Export. Zero fields select everything.
type Filter struct {
	AfterSeq int64 // entries with Seq > AfterSeq (paging)
	Since    time.Time
	Until    time.Time // exclusive
	Actions  []Action
	Network  string
	Actor    string
	Staff    string
	Portal   string
	Contact  string
	Request  string
	Limit    int // 0: no limit
}

func (f *Filter) query() (string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if !f.Since.IsZero() {
		add("ts >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("ts < ?", f.Until.UnixMilli())
	}
	if len(f.Actions) > 0 {
		var or []string
		for _, a := range f.Actions {
			args = append(args, string(a))
			or = append(or, fmt.Sprintf("action = $%d", len(args)))
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	for _, kv := range []struct{ col, val string }{
		{"network", f.Network}, {"actor", f.Actor}, {"staff", f.Staff}, {"portal", f.Portal},
		{"contact", f.Contact}, {"request", f.Request},
	} {
		if kv.val != "" {
			add(kv.col+" = ?", kv.val)
		}
	}
	q := "SELECT " + entryColumns + " FROM governance_audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return q, args
}

// List returns the entries that f selects, oldest first.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, error) {
	q, args := f.query()
	ptrs, err := l.entries.QueryMany(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list audit entries: %w", err)
	}
	out := make([]Entry, len(ptrs))
	for i, p := range ptrs {
		out[i] = *p
	}
	return out, nil
}

// ErrUnknownFormat is returned for an export format other than CSV and JSON.
var ErrUnknownFormat = errors.New("unknown export format")
