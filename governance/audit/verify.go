package audit

import (
	"context"
	"errors"
	"fmt"
)

// ErrTampered is returned (wrapped) by Report.Err and by Purge when the chain
// does not verify.
var ErrTampered = errors.New("audit log chain is broken")

// ProblemKind classifies what Verify found wrong with an entry.
type ProblemKind string

const (
	// ProblemEdited: the entry's content does not match its hash.
	ProblemEdited ProblemKind = "edited"
	// ProblemMissing: the entry (or the run of entries starting with it) is
	// gone.
	ProblemMissing ProblemKind = "missing"
	// ProblemUnlinked: the entry's prev_hash is not the hash of the entry
	// before it, which was rewritten together with its hash.
	ProblemUnlinked ProblemKind = "unlinked"
	// ProblemHead: the chain head does not match the newest entry.
	ProblemHead ProblemKind = "head"
	// ProblemAnchor: the chain starts later than the last purge left it:
	// its oldest entries were deleted and the anchor moved out of band.
	ProblemAnchor ProblemKind = "anchor"
	// ProblemPublished: a head published before (in the admin room) is not
	// in the chain: the chain was truncated or rewritten since.
	ProblemPublished ProblemKind = "published"
)

// Problem is one defect of the chain, at entry Seq.
type Problem struct {
	Seq    int64       `json:"seq"`
	Kind   ProblemKind `json:"kind"`
	Detail string      `json:"detail"`
}

func (p Problem) String() string {
	return fmt.Sprintf("entry %d: %s: %s", p.Seq, p.Kind, p.Detail)
}

// Anchor is where the chain starts: the last purged entry (Seq 0 and ZeroHash
// when nothing was ever purged).
type Anchor struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Report is the result of a verification.
type Report struct {
	Anchor Anchor `json:"anchor"`
	// Entries is how many entries were read; FirstSeq and LastSeq the first
	// and last of them (0 if none).
	Entries  int64 `json:"entries"`
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// HeadSeq and HeadHash are the newest entry as the chain head records it.
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// Problems lists what is wrong, in chain order; the first is the first
	// entry that fails. At most maxProblems are kept.
	Problems []Problem `json:"problems,omitempty"`
}

const maxProblems = 100

// OK reports whether the chain verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Err is nil for a chain that verified, else an error wrapping ErrTampered
// that names the first failing entry.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	if len(r.Problems) == 1 {
		return fmt.Errorf("%w: %s", ErrTampered, r.Problems[0])
	}
	return fmt.Errorf("%w: %s (and %d more problems)", ErrTampered, r.Problems[0], len(r.Problems)-1)
}

// checker walks a chain entry by entry.
type checker struct {
	r       Report
	nextSeq int64
	prev    string // stored hash of the previous entry
}

func newChecker(anchor Anchor) *checker {
	return &checker{r: Report{Anchor: anchor}, nextSeq: anchor.Seq + 1, prev: anchor.Hash}
}

func (c *checker) problem(seq int64, kind ProblemKind, format string, args ...any) {
	if len(c.r.Problems) < maxProblems {
		c.r.Problems = append(c.r.Problems, Problem{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
}

func (c *checker) add(e *Entry) {
	c.r.Entries++
	if c.r.FirstSeq == 0 {
		c.r.FirstSeq = e.Seq
	}
	c.r.LastSeq = e.Seq
	gap := false
	switch {
	case e.Seq > c.nextSeq:
		gap = true
		if e.Seq == c.nextSeq+1 {
			c.problem(c.nextSeq, ProblemMissing, "entry %d was deleted (entry %d follows entry %d)", c.nextSeq, e.Seq, c.nextSeq-1)
		} else {
			c.problem(c.nextSeq, ProblemMissing, "entries %d to %d were deleted", c.nextSeq, e.Seq-1)
		}
	case e.Seq < c.nextSeq:
		c.problem(e.Seq, ProblemMissing, "entry %d is out of order (expected %d)", e.Seq, c.nextSeq)
	}
	if !gap && e.PrevHash != c.prev {
		c.problem(e.Seq, ProblemUnlinked, "prev_hash is not the hash of entry %d: entry %d or its hash was rewritten", e.Seq-1, e.Seq-1)
	}
	if want, err := ComputeHash(e.PrevHash, e); err != nil {
		c.problem(e.Seq, ProblemEdited, "%v", err)
	} else if want != e.Hash {
		c.problem(e.Seq, ProblemEdited, "content does not match its hash: the entry was edited")
	}
	c.nextSeq = e.Seq + 1
	c.prev = e.Hash
}

func (c *checker) finish(headSeq int64, headHash string) Report {
	c.r.HeadSeq, c.r.HeadHash = headSeq, headHash
	lastSeq := c.nextSeq - 1
	switch {
	case headSeq > lastSeq:
		if headSeq == lastSeq+1 {
			c.problem(lastSeq+1, ProblemMissing, "entry %d, the newest, was deleted", lastSeq+1)
		} else {
			c.problem(lastSeq+1, ProblemMissing, "entries %d to %d, the newest, were deleted", lastSeq+1, headSeq)
		}
	case headSeq < lastSeq:
		c.problem(headSeq+1, ProblemHead, "entries after %d were not written through the log", headSeq)
	case headHash != c.prev:
		c.problem(headSeq, ProblemHead, "the chain head does not match entry %d: it was rewritten", headSeq)
	}
	return c.r
}

// VerifyEntries checks an exported run of entries (ParseEntries) on its own:
// consecutive sequence numbers, links and hashes. The run is trusted to start
// at its first entry's PrevHash, and to end where it ends.
func VerifyEntries(entries []Entry) Report {
	if len(entries) == 0 {
		return Report{}
	}
	c := newChecker(Anchor{Seq: entries[0].Seq - 1, Hash: entries[0].PrevHash})
	for i := range entries {
		c.add(&entries[i])
	}
	last := entries[len(entries)-1]
	return c.finish(last.Seq, last.Hash)
}

// CheckPublished compares the chain with a head published earlier (posted
// in the admin room, kept in an export's trailer): entry published.Seq must
// still be there with that hash. It returns the problem found, or nil. A
// head older than the anchor was purged since and can only be compared when
// it is the anchor itself. A chain rewritten consistently from before the
// published head has other hashes from there on, so this finds it; the
// chain alone cannot.
func (l *Log) CheckPublished(ctx context.Context, published Anchor) (*Problem, error) {
	h, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	problem := func(kind ProblemKind, format string, args ...any) (*Problem, error) {
		return &Problem{Seq: published.Seq, Kind: kind, Detail: fmt.Sprintf(format, args...)}, nil
	}
	switch {
	case published.Seq > h.Seq:
		return problem(ProblemPublished, "the log ends at entry %d, before the published head %d: it was truncated", h.Seq, published.Seq)
	case published.Seq == h.Anchor.Seq:
		if published.Hash != h.Anchor.Hash {
			return problem(ProblemPublished, "the chain's anchor (entry %d, purged) has another hash than the published head: the chain was rewritten", published.Seq)
		}
		return nil, nil
	case published.Seq < h.Anchor.Seq:
		return nil, nil // purged since: nothing left to compare
	}
	e, err := l.Get(ctx, published.Seq)
	if err != nil {
		return nil, err
	} else if e == nil {
		return problem(ProblemMissing, "entry %d, a published head, is gone", published.Seq)
	} else if e.Hash != published.Hash {
		return problem(ProblemPublished, "entry %d has another hash than the published head: the chain was rewritten from there or before", published.Seq)
	}
	return nil, nil
}
