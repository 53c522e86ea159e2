package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/governance/seal"
)

// Log is the append-only, hash-chained audit log. Its database is the
// governance schema (governance/store). Every method is safe for concurrent
// use, also from several gateway processes on one PostgreSQL database.
type Log struct {
	db      *dbutil.Database
	entries *dbutil.QueryHelper[*Entry]
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Seal, when set (hashed mode), turns identifiers into pseudonyms before
	// an entry is hashed and stored (sealEntry), and the filters of List and
	// Export likewise.
	Seal *seal.Sealer
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

func (l *Log) lockHead(ctx context.Context) (h Head, err error) {
	err = l.db.QueryRow(ctx, lockHeadQuery).Scan(&h.Seq, &h.Hash, &h.Anchor.Seq, &h.Anchor.Hash)
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
	l.sealEntry(&e)
	err := l.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		h, err := l.lockHead(ctx)
		if err != nil {
			return fmt.Errorf("failed to lock audit chain head: %w", err)
		}
		e.Seq = h.Seq + 1
		e.PrevHash = h.Hash
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

// Head is the state of the chain: its newest entry and its anchor.
type Head struct {
	Seq    int64  `json:"seq"`
	Hash   string `json:"hash"`
	Anchor Anchor `json:"anchor"`
}

// Head returns the chain head as it is now: one short read, no lock.
func (l *Log) Head(ctx context.Context) (Head, error) {
	var h Head
	err := l.db.QueryRow(ctx, readHeadQuery).Scan(&h.Seq, &h.Hash, &h.Anchor.Seq, &h.Anchor.Hash)
	if err != nil {
		return Head{}, fmt.Errorf("failed to read audit chain head: %w", err)
	}
	return h, nil
}

// PageSize is how many entries Verify and Export read at a time.
const PageSize = 500

// pages reads the entries f selects, up to and including entry through,
// oldest first, one page at a time: each page is a query of its own that is
// read to the end (and its rows closed) before fn sees it, and no page runs
// in a transaction of its own. So a slow consumer (an HTTP client that
// stalls) never holds a database lock: on SQLite, where every transaction
// of the gateway takes the write lock (_txlock=immediate), one would block
// every append, and so every bridged message. Inside a caller's transaction
// (Purge) the pages read through it.
func (l *Log) pages(ctx context.Context, f Filter, through int64, fn func([]*Entry) error) error {
	if through <= 0 {
		return nil // an empty chain
	}
	f.Limit, f.ThroughSeq, f.Descending, f.BeforeSeq = PageSize, through, false, 0
	for {
		q, args := f.query()
		page, err := l.entries.QueryMany(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("failed to read audit entries after %d: %w", f.AfterSeq, err)
		}
		if len(page) > 0 {
			if err = fn(page); err != nil {
				return err
			}
			f.AfterSeq = page[len(page)-1].Seq
		}
		if len(page) < PageSize {
			return nil
		}
	}
}

// verifyRetries is how often Verify starts again when a purge moved the
// anchor while it read.
const verifyRetries = 3

// Verify walks the whole chain from its anchor up to the head it saw when it
// started, and reports every entry that was edited, deleted or relinked,
// first one first, and an anchor that moved without a purge that says so.
// It reads in pages and takes no lock, so appends go on meanwhile. The error
// is for failures to read; a broken chain is a Report that is not OK.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	for attempt := 1; ; attempt++ {
		report, err := l.verify(ctx)
		if err != nil {
			return Report{}, fmt.Errorf("failed to verify audit log: %w", err)
		}
		if report.OK() || attempt == verifyRetries {
			return report, nil
		}
		// A purge that ran meanwhile deletes entries the walk had not
		// reached yet: if the anchor moved, look again.
		now, err := l.Head(ctx)
		if err != nil {
			return Report{}, fmt.Errorf("failed to verify audit log: %w", err)
		}
		if now.Anchor == report.Anchor {
			return report, nil
		}
	}
}

func (l *Log) verify(ctx context.Context) (Report, error) {
	h, err := l.Head(ctx)
	if err != nil {
		return Report{}, err
	}
	c := newChecker(h.Anchor)
	err = l.pages(ctx, Filter{}, h.Seq, func(page []*Entry) error {
		for _, e := range page {
			c.add(e)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	if err = l.checkAnchor(ctx, c, h.Anchor); err != nil {
		return Report{}, err
	}
	return c.finish(h.Seq, h.Hash), nil
}

// checkAnchor flags an anchor that no purge accounts for. The chain may only
// start after entry 0 because of a purge, and Purge records every move of the
// anchor in the retention_purge entry it appends after it: the newest such
// entry must name the anchor. (That entry is never purged before a newer
// purge records a newer anchor.) Without it, the oldest entries were deleted
// and the anchor reset out of band.
func (l *Log) checkAnchor(ctx context.Context, c *checker, anchor Anchor) error {
	if anchor.Seq == 0 {
		if anchor.Hash != ZeroHash {
			c.problem(1, ProblemAnchor, "the chain starts at entry 1 but its anchor hash is not the zero hash: the anchor was rewritten")
		}
		return nil
	}
	purges, err := l.List(ctx, Filter{Actions: []Action{ActionRetentionPurge}, Descending: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(purges) == 0 {
		c.problem(anchor.Seq+1, ProblemAnchor, "the chain starts after entry %d, but no retention_purge entry records a purge: entries up to %d were deleted out of band", anchor.Seq, anchor.Seq)
		return nil
	}
	var rec struct {
		Through    int64  `json:"through_seq"`
		AnchorHash string `json:"anchor_hash"`
	}
	last := purges[0]
	if err = json.Unmarshal(last.Details, &rec); err != nil || rec.Through != anchor.Seq || rec.AnchorHash != anchor.Hash {
		c.problem(anchor.Seq+1, ProblemAnchor, "the chain starts after entry %d, but the newest retention_purge entry (%d) purged through entry %d: the anchor was moved out of band", anchor.Seq, last.Seq, rec.Through)
	}
	return nil
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
			return fmt.Errorf("failed to verify audit log: %w", err)
		}
		if err = report.Err(); err != nil {
			return err
		}
		var firstKept sql.NullInt64
		if err = l.db.QueryRow(ctx, firstKeptSeqQuery, olderThan.UnixMilli()).Scan(&firstKept); err != nil {
			return fmt.Errorf("failed to find the first audit entry to keep: %w", err)
		}
		through := h.Seq
		if firstKept.Valid {
			through = firstKept.Int64 - 1
		}
		res.Anchor = h.Anchor
		if through <= h.Anchor.Seq {
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
		res.Purged = through - h.Anchor.Seq
		res.Anchor = Anchor{Seq: through, Hash: last.Hash}
		if _, err = l.db.Exec(ctx, setAnchorQuery, res.Anchor.Seq, res.Anchor.Hash); err != nil {
			return fmt.Errorf("failed to move audit chain anchor: %w", err)
		}
		entry, err := l.Append(ctx, Entry{
			Actor:  actor,
			Action: ActionRetentionPurge,
			Details: Details(map[string]any{
				"purged":      res.Purged,
				"from_seq":    h.Anchor.Seq + 1,
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
	AfterSeq   int64 // entries with Seq > AfterSeq (paging forwards)
	BeforeSeq  int64 // entries with Seq < BeforeSeq (paging backwards)
	ThroughSeq int64 // entries with Seq <= ThroughSeq
	// Descending lists the newest entries first (with Limit: the newest).
	Descending bool
	Since      time.Time
	Until      time.Time // exclusive
	Actions    []Action
	Network    string
	Actor      string
	Staff      string
	Portal     string
	Contact    string
	Request    string
	Limit      int // 0: no limit
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
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	if f.ThroughSeq > 0 {
		add("seq <= ?", f.ThroughSeq)
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
	if f.Descending {
		q += " DESC"
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return q, args
}

// List returns the entries that f selects, oldest first (newest first if
// f.Descending). It reads them all at once: page with f.Limit and a cursor
// (AfterSeq, or BeforeSeq going backwards).
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, error) {
	f = l.sealFilter(f)
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
