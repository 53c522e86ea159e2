package wastore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.mau.fi/util/dbutil"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

var _ store.AllSessionSpecificStores = (*deviceStore)(nil)

// deviceStore is the state of one linked device, keyed by its JID.
type deviceStore struct {
	c   *Container
	db  *dbutil.Database
	jid string

	preKeyMu sync.Mutex

	contactMu    sync.Mutex
	contactCache map[types.JID]*types.ContactInfo

	migratedMu sync.Mutex
	migrated   map[string]bool

	cache *signalCache
}

func newDeviceStore(c *Container, jid types.JID) *deviceStore {
	return &deviceStore{
		c:            c,
		db:           c.db,
		jid:          jid.String(),
		contactCache: make(map[types.JID]*types.ContactInfo),
		migrated:     make(map[string]bool),
		cache:        c.signalCache(jid.String()),
	}
}

// likePrefix makes a LIKE pattern matching strings that start with prefix
// followed by ":" (a Signal address of any device of the user).
func likePrefix(prefix string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(prefix) + ":%"
}

func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

const (
	putIdentityQuery = `
		INSERT INTO whatsapp_identity_keys (our_jid, their_id, identity) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid, their_id) DO UPDATE SET identity=excluded.identity`
	deleteAllIdentitiesQuery = `DELETE FROM whatsapp_identity_keys WHERE our_jid=$1 AND their_id LIKE $2 ESCAPE '\'`
	deleteIdentityQuery      = `DELETE FROM whatsapp_identity_keys WHERE our_jid=$1 AND their_id=$2`
	getIdentityQuery         = `SELECT identity FROM whatsapp_identity_keys WHERE our_jid=$1 AND their_id=$2`
	getIdentitiesLikeQuery   = `SELECT their_id, identity FROM whatsapp_identity_keys WHERE our_jid=$1 AND their_id LIKE $2 ESCAPE '\'`

	getSessionQuery        = `SELECT session FROM whatsapp_sessions WHERE our_jid=$1 AND their_id=$2`
	getManySessionsQuery   = `SELECT their_id, session FROM whatsapp_sessions WHERE our_jid=$1 AND their_id IN (%s)`
	getSessionsLikeQuery   = `SELECT their_id, session FROM whatsapp_sessions WHERE our_jid=$1 AND their_id LIKE $2 ESCAPE '\'`
	deleteAllSessionsQuery = `DELETE FROM whatsapp_sessions WHERE our_jid=$1 AND their_id LIKE $2 ESCAPE '\'`
	deleteSessionQuery     = `DELETE FROM whatsapp_sessions WHERE our_jid=$1 AND their_id=$2`
	putSessionQuery        = `
		INSERT INTO whatsapp_sessions (our_jid, their_id, session) VALUES ($1, $2, $3)
		ON CONFLICT (our_jid, their_id) DO UPDATE SET session=excluded.session`

	getLastPreKeyIDQuery        = `SELECT COALESCE(MAX(key_id), 0) FROM whatsapp_pre_keys WHERE jid=$1`
	insertPreKeyQuery           = `INSERT INTO whatsapp_pre_keys (jid, key_id, key, uploaded) VALUES ($1, $2, $3, $4)`
	getUnuploadedPreKeysQuery   = `SELECT key_id, key FROM whatsapp_pre_keys WHERE jid=$1 AND uploaded=false ORDER BY key_id LIMIT $2`
	getPreKeyQuery              = `SELECT key_id, key FROM whatsapp_pre_keys WHERE jid=$1 AND key_id=$2`
	deletePreKeyQuery           = `DELETE FROM whatsapp_pre_keys WHERE jid=$1 AND key_id=$2`
	markPreKeysAsUploadedQuery  = `UPDATE whatsapp_pre_keys SET uploaded=true WHERE jid=$1 AND key_id<=$2`
	getUploadedPreKeyCountQuery = `SELECT COUNT(*) FROM whatsapp_pre_keys WHERE jid=$1 AND uploaded=true`

	getSenderKeyQuery = `SELECT sender_key FROM whatsapp_sender_keys WHERE our_jid=$1 AND chat_id=$2 AND sender_id=$3`
	putSenderKeyQuery = `
		INSERT INTO whatsapp_sender_keys (our_jid, chat_id, sender_id, sender_key) VALUES ($1, $2, $3, $4)
		ON CONFLICT (our_jid, chat_id, sender_id) DO UPDATE SET sender_key=excluded.sender_key`
	getSenderKeysLikeQuery    = `SELECT chat_id, sender_id, sender_key FROM whatsapp_sender_keys WHERE our_jid=$1 AND sender_id LIKE $2 ESCAPE '\'`
	deleteSenderKeysLikeQuery = `DELETE FROM whatsapp_sender_keys WHERE our_jid=$1 AND sender_id LIKE $2 ESCAPE '\'`
)

// PutIdentity implements store.IdentityStore. libsignal saves the
// contact's identity key after every message it encrypts, and whatsmeow
// after every one it decrypts, although it almost never changes: a key
// already stored is not written again: a read instead of a write and its
// commit (BenchmarkIdentityCheckAndSave, the check and the save of one
// device: SQLite 19.5–21.4 → 15.1–15.6 µs, PostgreSQL 467–519 → 408–492
// µs), and no WAL page per device and message.
func (s *deviceStore) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	existing, found, err := s.identity(ctx, address)
	if err != nil || (found && bytes.Equal(existing, key[:])) {
		return err
	}
	return s.write(ctx, cacheKey{kindIdentity, address}, cacheEntry{val: key[:], present: true}, func() error {
		_, err := s.db.Exec(ctx, putIdentityQuery, s.jid, address, key[:])
		return err
	})
}

// identity is the stored identity key of address, if one is (through the
// device's cache, signalcache.go).
func (s *deviceStore) identity(ctx context.Context, address string) (key []byte, found bool, err error) {
	return s.readRow(ctx, kindIdentity, getIdentityQuery, address)
}

// readRow reads the one column query selects for the device and address,
// through the device's cache (signalcache.go).
func (s *deviceStore) readRow(ctx context.Context, kind cacheKind, query, address string) ([]byte, bool, error) {
	return s.read(ctx, cacheKey{kind, address}, func() ([]byte, bool, error) {
		var val []byte
		err := s.db.QueryRow(ctx, query, s.jid, address).Scan(&val)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil
		}
		return val, err == nil, err
	})
}

// DeleteAllIdentities implements store.IdentityStore.
func (s *deviceStore) DeleteAllIdentities(ctx context.Context, phone string) error {
	return s.deletePrefix(ctx, kindIdentity, phone, func() error {
		_, err := s.db.Exec(ctx, deleteAllIdentitiesQuery, s.jid, likePrefix(phone))
		return err
	})
}

// DeleteIdentity implements store.IdentityStore.
func (s *deviceStore) DeleteIdentity(ctx context.Context, address string) error {
	return s.write(ctx, cacheKey{kindIdentity, address}, cacheEntry{}, func() error {
		_, err := s.db.Exec(ctx, deleteIdentityQuery, s.jid, address)
		return err
	})
}

// IsTrustedIdentity implements store.IdentityStore: an unknown identity is
// trusted (it is saved afterwards), a known one must match.
func (s *deviceStore) IsTrustedIdentity(ctx context.Context, address string, key [32]byte) (bool, error) {
	existing, found, err := s.identity(ctx, address)
	if err != nil {
		return false, err
	} else if !found {
		return true, nil
	} else if len(existing) != 32 {
		return false, ErrInvalidLength
	}
	return [32]byte(existing) == key, nil
}

// session reads address's session through the device's cache
// (signalcache.go).
func (s *deviceStore) session(ctx context.Context, address string) ([]byte, bool, error) {
	return s.readRow(ctx, kindSession, getSessionQuery, address)
}

// GetSession implements store.SessionStore.
func (s *deviceStore) GetSession(ctx context.Context, address string) ([]byte, error) {
	session, _, err := s.session(ctx, address)
	return session, err
}

// HasSession implements store.SessionStore.
func (s *deviceStore) HasSession(ctx context.Context, address string) (bool, error) {
	_, found, err := s.session(ctx, address)
	return found, err
}

// GetManySessions implements store.SessionStore: every address is in the
// result, with nil for those without a session.
func (s *deviceStore) GetManySessions(ctx context.Context, addresses []string) (map[string][]byte, error) {
	if len(addresses) == 0 {
		return nil, nil
	}
	result := make(map[string][]byte, len(addresses))
	for _, addr := range addresses {
		result[addr] = nil
	}
	// Those the device's cache (or the store's transaction) has are not
	// read again; the others are, and kept.
	ch := s.cache.changesIn(ctx)
	cached := ch != nil || !s.inTxn(ctx)
	var missing []string
	gens := make(map[string]uint64)
	for _, addr := range addresses {
		k := cacheKey{kindSession, addr}
		if ch != nil {
			if e, ok := ch.rows[k]; ok {
				result[addr] = bytes.Clone(e.val)
				continue
			}
			if len(ch.prefixes) > 0 {
				missing = append(missing, addr)
				continue
			}
		}
		if cached {
			e, ok, gen := s.cache.get(k)
			if ok {
				result[addr] = e.val
				continue
			}
			gens[addr] = gen
		}
		missing = append(missing, addr)
	}
	found := make(map[string]bool, len(missing))
	if err := s.readSessions(ctx, missing, result, found); err != nil {
		return nil, err
	}
	for addr, gen := range gens {
		s.cache.fill(cacheKey{kindSession, addr}, cacheEntry{val: bytes.Clone(result[addr]), present: found[addr]}, gen)
	}
	return result, nil
}

// readSessions reads the sessions of addresses from the database into
// result, and which have a row into found.
func (s *deviceStore) readSessions(ctx context.Context, addresses []string, result map[string][]byte, found map[string]bool) error {
	const chunk = 500
	for start := 0; start < len(addresses); start += chunk {
		part := addresses[start:min(start+chunk, len(addresses))]
		args := make([]any, 0, len(part)+1)
		placeholders := make([]string, len(part))
		args = append(args, s.jid)
		for i, addr := range part {
			args = append(args, addr)
			placeholders[i] = fmt.Sprintf("$%d", i+2)
		}
		rows, err := s.db.Query(ctx, fmt.Sprintf(getManySessionsQuery, strings.Join(placeholders, ",")), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var addr string
			var sess []byte
			if err = rows.Scan(&addr, &sess); err != nil {
				_ = rows.Close()
				return err
			}
			result[addr] = sess
			found[addr] = true
		}
		if err = rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// PutSession implements store.SessionStore.
func (s *deviceStore) PutSession(ctx context.Context, address string, session []byte) error {
	return s.write(ctx, cacheKey{kindSession, address}, cacheEntry{val: session, present: true}, func() error {
		_, err := s.db.Exec(ctx, putSessionQuery, s.jid, address, session)
		return err
	})
}

// PutManySessions implements store.SessionStore.
func (s *deviceStore) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	return s.txn(ctx, func(ctx context.Context) error {
		for addr, sess := range sessions {
			if err := s.PutSession(ctx, addr, sess); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteAllSessions implements store.SessionStore.
func (s *deviceStore) DeleteAllSessions(ctx context.Context, phone string) error {
	return s.deletePrefix(ctx, kindSession, phone, func() error {
		_, err := s.db.Exec(ctx, deleteAllSessionsQuery, s.jid, likePrefix(phone))
		return err
	})
}

// DeleteSession implements store.SessionStore.
func (s *deviceStore) DeleteSession(ctx context.Context, address string) error {
	return s.write(ctx, cacheKey{kindSession, address}, cacheEntry{}, func() error {
		_, err := s.db.Exec(ctx, deleteSessionQuery, s.jid, address)
		return err
	})
}

type kv struct {
	extra string
	key   string
	val   []byte
}

func (s *deviceStore) collect(ctx context.Context, query string, pattern string, withExtra bool) ([]kv, error) {
	rows, err := s.db.Query(ctx, query, s.jid, pattern)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []kv
	for rows.Next() {
		var row kv
		if withExtra {
			err = rows.Scan(&row.extra, &row.key, &row.val)
		} else {
			err = rows.Scan(&row.key, &row.val)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// MigratePNToLID implements store.SessionStore: the sessions, identities and
// sender keys of the phone-number addresses move to the LID addresses.
func (s *deviceStore) MigratePNToLID(ctx context.Context, pn, lid types.JID) error {
	pnUser, lidUser := pn.SignalAddressUser(), lid.SignalAddressUser()
	s.migratedMu.Lock()
	done := s.migrated[pnUser]
	s.migrated[pnUser] = true
	s.migratedMu.Unlock()
	if done {
		return nil
	}
	pattern := likePrefix(pnUser)
	rename := func(addr string) string { return lidUser + strings.TrimPrefix(addr, pnUser) }
	var moved int
	err := s.txn(ctx, func(ctx context.Context) error {
		sessions, err := s.collect(ctx, getSessionsLikeQuery, pattern, false)
		if err != nil {
			return fmt.Errorf("failed to read sessions: %w", err)
		}
		for _, row := range sessions {
			if err = s.PutSession(ctx, rename(row.key), row.val); err != nil {
				return fmt.Errorf("failed to move session: %w", err)
			}
		}
		if err = s.DeleteAllSessions(ctx, pnUser); err != nil {
			return fmt.Errorf("failed to delete moved sessions: %w", err)
		}
		identities, err := s.collect(ctx, getIdentitiesLikeQuery, pattern, false)
		if err != nil {
			return fmt.Errorf("failed to read identities: %w", err)
		}
		for _, row := range identities {
			if len(row.val) != 32 {
				continue
			}
			if err = s.PutIdentity(ctx, rename(row.key), [32]byte(row.val)); err != nil {
				return fmt.Errorf("failed to move identity: %w", err)
			}
		}
		if err = s.DeleteAllIdentities(ctx, pnUser); err != nil {
			return fmt.Errorf("failed to delete moved identities: %w", err)
		}
		senderKeys, err := s.collect(ctx, getSenderKeysLikeQuery, pattern, true)
		if err != nil {
			return fmt.Errorf("failed to read sender keys: %w", err)
		}
		for _, row := range senderKeys {
			if err = s.PutSenderKey(ctx, row.extra, rename(row.key), row.val); err != nil {
				return fmt.Errorf("failed to move sender key: %w", err)
			}
		}
		if _, err = s.db.Exec(ctx, deleteSenderKeysLikeQuery, s.jid, pattern); err != nil {
			return fmt.Errorf("failed to delete moved sender keys: %w", err)
		}
		moved = len(sessions) + len(identities) + len(senderKeys)
		return nil
	})
	if err != nil {
		s.migratedMu.Lock()
		delete(s.migrated, pnUser)
		s.migratedMu.Unlock()
		return err
	}
	if moved > 0 {
		s.c.log.Debugf("Moved %d Signal records from a phone-number address to its LID", moved)
	}
	return nil
}

func (s *deviceStore) nextPreKeyID(ctx context.Context) (uint32, error) {
	var last int64
	if err := s.db.QueryRow(ctx, getLastPreKeyIDQuery, s.jid).Scan(&last); err != nil {
		return 0, fmt.Errorf("failed to query next prekey ID: %w", err)
	}
	return uint32(last) + 1, nil
}

func (s *deviceStore) genPreKey(ctx context.Context, id uint32, uploaded bool) (*keys.PreKey, error) {
	key := keys.NewPreKey(id)
	_, err := s.db.Exec(ctx, insertPreKeyQuery, s.jid, key.KeyID, key.Priv[:], uploaded)
	return key, err
}

// GenOnePreKey implements store.PreKeyStore.
func (s *deviceStore) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	s.preKeyMu.Lock()
	defer s.preKeyMu.Unlock()
	id, err := s.nextPreKeyID(ctx)
	if err != nil {
		return nil, err
	}
	return s.genPreKey(ctx, id, true)
}

// GetOrGenPreKeys implements store.PreKeyStore: the not yet uploaded keys,
// topped up with new ones to count.
func (s *deviceStore) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	s.preKeyMu.Lock()
	defer s.preKeyMu.Unlock()
	out := make([]*keys.PreKey, 0, count)
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		rows, err := s.db.Query(ctx, getUnuploadedPreKeysQuery, s.jid, count)
		if err != nil {
			return fmt.Errorf("failed to query prekeys: %w", err)
		}
		for rows.Next() {
			key, err := scanPreKey(rows)
			if err != nil {
				_ = rows.Close()
				return err
			}
			out = append(out, key)
		}
		if err = rows.Close(); err != nil {
			return err
		}
		if uint32(len(out)) >= count {
			return nil
		}
		next, err := s.nextPreKeyID(ctx)
		if err != nil {
			return err
		}
		for uint32(len(out)) < count {
			key, err := s.genPreKey(ctx, next, false)
			if err != nil {
				return fmt.Errorf("failed to store prekey: %w", err)
			}
			out = append(out, key)
			next++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func scanPreKey(row dbutil.Scannable) (*keys.PreKey, error) {
	var priv []byte
	var id uint32
	if err := row.Scan(&id, &priv); err != nil {
		return nil, err
	}
	if len(priv) != 32 {
		return nil, ErrInvalidLength
	}
	return &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey([32]byte(priv)), KeyID: id}, nil
}

// GetPreKey implements store.PreKeyStore; nil when there is no such key.
func (s *deviceStore) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	key, err := scanPreKey(s.db.QueryRow(ctx, getPreKeyQuery, s.jid, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return key, err
}

// RemovePreKey implements store.PreKeyStore.
func (s *deviceStore) RemovePreKey(ctx context.Context, id uint32) error {
	_, err := s.db.Exec(ctx, deletePreKeyQuery, s.jid, id)
	return err
}

// MarkPreKeysAsUploaded implements store.PreKeyStore.
func (s *deviceStore) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	_, err := s.db.Exec(ctx, markPreKeysAsUploadedQuery, s.jid, upToID)
	return err
}

// UploadedPreKeyCount implements store.PreKeyStore.
func (s *deviceStore) UploadedPreKeyCount(ctx context.Context) (count int, err error) {
	err = s.db.QueryRow(ctx, getUploadedPreKeyCountQuery, s.jid).Scan(&count)
	return
}

// PutSenderKey implements store.SenderKeyStore.
func (s *deviceStore) PutSenderKey(ctx context.Context, group, user string, session []byte) error {
	_, err := s.db.Exec(ctx, putSenderKeyQuery, s.jid, group, user, session)
	return err
}

// GetSenderKey implements store.SenderKeyStore.
func (s *deviceStore) GetSenderKey(ctx context.Context, group, user string) (key []byte, err error) {
	err = noRows(s.db.QueryRow(ctx, getSenderKeyQuery, s.jid, group, user).Scan(&key))
	return
}
