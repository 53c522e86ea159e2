package wastore

import (
	"bytes"
	"context"
	"strings"
	"sync"

	"go.mau.fi/util/dbutil"
)

// A device's Signal sessions and contacts' identity keys, as committed in
// the database, kept in memory: whatsmeow reads a contact's sessions
// before each message it encrypts and its session and identity key (two
// reads each) for each message it decrypts, and writes the session back
// after each; the reads went to the database every time.
//
// The cache holds only what was committed. Writes in a transaction this
// store began (DoDecryptionTxn, PutManySessions, MigratePNToLID) are kept
// aside with the transaction (txnChanges) and reach the cache once it
// commits; a rolled back transaction leaves the cache as it was, as it
// leaves the database. A write in a transaction someone else began (the
// store cannot see when it ends) turns the device's cache off for good:
// reads go to the database from then on. A value read from the database
// is kept only if no change reached the cache while it was read (gen), so
// a read that raced a commit cannot put the older value back.
//
// Bounded: at most maxCachedBytes of sessions and keys per device; past
// that, entries go in map order until the new one fits.

// maxCachedBytes bounds a device's cached sessions and identity keys. A
// session is 1–10 KiB (its current state and up to 40 older ones); the
// contacts a login talks to at one time fit.
const maxCachedBytes = 128 << 10

// cacheKind separates sessions and identity keys in one map.
type cacheKind uint8

const (
	kindSession cacheKind = iota
	kindIdentity
)

type cacheKey struct {
	kind cacheKind
	addr string
}

// cacheEntry is a committed row, or that there is none (!present).
type cacheEntry struct {
	val     []byte
	present bool
}

func entrySize(k cacheKey, e cacheEntry) int {
	return len(k.addr) + len(e.val) + 64
}

// signalCache is one device's cache, shared by every deviceStore of the
// device (Container.signalCache).
type signalCache struct {
	mu  sync.Mutex
	off bool
	// gens counts the changes that reached the cache, per stripe of keys:
	// a read of the database is kept, and a committed write applied, only
	// if no other change to its stripe came in between.
	gens     [cacheStripes]uint64
	size     int
	entries  map[cacheKey]cacheEntry
	maxBytes int
}

const cacheStripes = 64

func stripe(k cacheKey) int {
	h := uint32(2166136261) ^ uint32(k.kind)
	for i := 0; i < len(k.addr); i++ {
		h = (h ^ uint32(k.addr[i])) * 16777619
	}
	return int(h % cacheStripes)
}

func newSignalCache() *signalCache {
	return &signalCache{entries: make(map[cacheKey]cacheEntry), maxBytes: maxCachedBytes}
}

// get returns the committed row of k if the cache has it, and the
// generation to hand to fill after reading the database otherwise.
func (c *signalCache) get(k cacheKey) (e cacheEntry, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off {
		return cacheEntry{}, false, 0
	}
	e, ok = c.entries[k]
	// A copy: the caller may keep or change it.
	e.val = bytes.Clone(e.val)
	return e, ok, c.gens[stripe(k)]
}

// fill keeps a row read from the database, unless a change to its stripe
// reached the cache since get returned gen.
func (c *signalCache) fill(k cacheKey, e cacheEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off || c.gens[stripe(k)] != gen {
		return
	}
	c.putLocked(k, e)
}

// snapshot is the generations before a write, for apply.
func (c *signalCache) snapshot() [cacheStripes]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens
}

// apply puts committed changes in the cache. A row whose stripe changed
// since before (another write may have committed after this one and
// reached the cache first) is dropped instead: the next read asks the
// database.
func (c *signalCache) apply(ch *txnChanges, before [cacheStripes]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off {
		return
	}
	for _, p := range ch.prefixes {
		c.dropPrefixLocked(p)
	}
	for k, e := range ch.rows {
		if c.gens[stripe(k)] == before[stripe(k)] && len(ch.prefixes) == 0 {
			c.putLocked(k, e)
		} else {
			c.dropLocked(k)
		}
	}
	for k := range ch.rows {
		c.gens[stripe(k)]++
	}
	if len(ch.prefixes) > 0 {
		c.bumpAllLocked()
	}
}

// forget drops k, or with prefix every address of the user k.addr (its
// devices).
func (c *signalCache) forget(k cacheKey, prefix bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prefix {
		c.dropPrefixLocked(k)
		c.bumpAllLocked()
	} else {
		c.dropLocked(k)
		c.gens[stripe(k)]++
	}
}

func (c *signalCache) bumpAllLocked() {
	for i := range c.gens {
		c.gens[i]++
	}
}

// turnOff empties the cache and stops it for good; it reports whether the
// cache was on.
func (c *signalCache) turnOff() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bumpAllLocked()
	wasOn := !c.off
	c.off = true
	c.entries = nil
	c.size = 0
	return wasOn
}

// foreignWrite turns the device's cache off before a write in a
// transaction the store did not begin, and says so once.
func (s *deviceStore) foreignWrite() {
	if s.cache.turnOff() {
		s.c.log.Warnf("Signal session cache of %s off: a session or identity key was written in a transaction the store did not begin", s.jid)
	}
}

func (c *signalCache) putLocked(k cacheKey, e cacheEntry) {
	c.dropLocked(k)
	n := entrySize(k, e)
	if n > c.maxBytes {
		return
	}
	for other := range c.entries {
		if c.size+n <= c.maxBytes {
			break
		}
		c.dropLocked(other)
	}
	c.entries[k] = e
	c.size += n
}

func (c *signalCache) dropLocked(k cacheKey) {
	if e, ok := c.entries[k]; ok {
		delete(c.entries, k)
		c.size -= entrySize(k, e)
	}
}

// dropPrefixLocked drops the entries of p.kind whose address is the user
// p.addr followed by ":" (the user's devices).
func (c *signalCache) dropPrefixLocked(p cacheKey) {
	for k := range c.entries {
		if k.kind == p.kind && strings.HasPrefix(k.addr, p.addr+":") {
			c.dropLocked(k)
		}
	}
}

// txnChanges are the rows a transaction of this store wrote, for the cache
// once it commits.
type txnChanges struct {
	cache    *signalCache
	rows     map[cacheKey]cacheEntry
	prefixes []cacheKey
}

type txnChangesKey struct{}

// changesIn returns the changes of the store's transaction ctx is in, if
// it is in one of the device's.
func (c *signalCache) changesIn(ctx context.Context) *txnChanges {
	ch, _ := ctx.Value(txnChangesKey{}).(*txnChanges)
	if ch == nil || ch.cache != c {
		return nil
	}
	return ch
}

// inTxn reports whether ctx carries a transaction of s's database.
func (s *deviceStore) inTxn(ctx context.Context) bool {
	_, ok := s.db.Execable(ctx).(dbutil.Transaction)
	return ok
}

// txn runs fn in a transaction whose Signal writes reach the cache once
// it commits. Inside one of the store's transactions it joins it; inside
// a transaction the store did not begin, it runs fn in it and the writes
// turn the cache off (see write).
func (s *deviceStore) txn(ctx context.Context, fn func(context.Context) error) error {
	if s.cache.changesIn(ctx) != nil || s.inTxn(ctx) {
		return s.db.DoTxn(ctx, nil, fn)
	}
	ch := &txnChanges{cache: s.cache, rows: make(map[cacheKey]cacheEntry)}
	before := s.cache.snapshot()
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		return fn(context.WithValue(ctx, txnChangesKey{}, ch))
	})
	if err == nil {
		s.cache.apply(ch, before)
	}
	return err
}

// read returns the committed row of k (or, in the store's transaction,
// the row as the transaction wrote it): from the transaction's changes or
// the cache, else from load, which reads the database.
func (s *deviceStore) read(ctx context.Context, k cacheKey, load func() ([]byte, bool, error)) ([]byte, bool, error) {
	ch := s.cache.changesIn(ctx)
	if ch != nil {
		if e, ok := ch.rows[k]; ok {
			return bytes.Clone(e.val), e.present, nil
		}
		for _, p := range ch.prefixes {
			if p.kind == k.kind && strings.HasPrefix(k.addr, p.addr+":") {
				// Deleted earlier in this transaction and not written
				// since: the database says so.
				return load()
			}
		}
	} else if s.inTxn(ctx) {
		// Someone else's transaction may have written it.
		return load()
	}
	e, ok, gen := s.cache.get(k)
	if ok {
		return e.val, e.present, nil
	}
	val, found, err := load()
	if err != nil {
		return nil, false, err
	}
	s.cache.fill(k, cacheEntry{val: bytes.Clone(val), present: found}, gen)
	return val, found, nil
}

// write runs store, which writes k's row as e says (!e.present: deletes
// it), and keeps the cache true to what will be committed.
func (s *deviceStore) write(ctx context.Context, k cacheKey, e cacheEntry, store func() error) error {
	e.val = bytes.Clone(e.val)
	ch := s.cache.changesIn(ctx)
	if ch == nil && s.inTxn(ctx) {
		// The store cannot see when this transaction ends.
		s.foreignWrite()
		return store()
	}
	if ch != nil {
		if err := store(); err != nil {
			return err
		}
		ch.rows[k] = e
		return nil
	}
	// Autocommitted: the cache forgets the row before the write, so a
	// read racing it reads the database, and learns it after.
	s.cache.forget(k, false)
	before := s.cache.snapshot()
	if err := store(); err != nil {
		s.cache.forget(k, false)
		return err
	}
	s.cache.apply(&txnChanges{rows: map[cacheKey]cacheEntry{k: e}}, before)
	return nil
}

// deletePrefix runs del, which deletes the rows of kind of every device
// of the user prefix, and keeps the cache true to it.
func (s *deviceStore) deletePrefix(ctx context.Context, kind cacheKind, prefix string, del func() error) error {
	p := cacheKey{kind: kind, addr: prefix}
	ch := s.cache.changesIn(ctx)
	if ch == nil && s.inTxn(ctx) {
		s.foreignWrite()
		return del()
	}
	s.cache.forget(p, true)
	if err := del(); err != nil {
		return err
	}
	if ch != nil {
		for k := range ch.rows {
			if k.kind == kind && strings.HasPrefix(k.addr, prefix+":") {
				delete(ch.rows, k)
			}
		}
		ch.prefixes = append(ch.prefixes, p)
	} else {
		s.cache.forget(p, true)
	}
	return nil
}
