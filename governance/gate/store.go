package gate

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/internal/lru"
)

// VersionTable is the version table of the gate's own tables.
const VersionTable = "passerelle_governance_gate_version"

//go:embed upgrades/*.sql
var rawUpgrades embed.FS

var upgradeTable = dbutil.BuildUpgradeTable().WithFSPath(rawUpgrades, "upgrades").Finish()

// createVersionTable: see governance/store (dbutil looks for the version
// table in every schema on PostgreSQL).
const createVersionTable = `CREATE TABLE IF NOT EXISTS ` + VersionTable + ` (version INTEGER, compat INTEGER)`

func openStore(ctx context.Context, parent *dbutil.Database, s *seal.Sealer) (*stateStore, error) {
	db := parent.Child(VersionTable, upgradeTable, nil)
	if _, err := db.Exec(ctx, createVersionTable); err != nil {
		return nil, fmt.Errorf("failed to create gate version table: %w", err)
	}
	if err := db.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("failed to upgrade gate tables: %w", err)
	}
	return &stateStore{db: db, seal: s, portals: dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*PortalState]) *PortalState { return &PortalState{} }),
		cache: lru.New[sealedKey, PortalState](portalStatesKept)}, nil
}

// PortalState is what the gate keeps of a portal.
type PortalState struct {
	Key          networkid.PortalKey
	Network      string
	Staff        id.UserID
	RoomID       id.RoomID
	ControlledAt time.Time
	Revoked      bool
	RevokedAt    time.Time
	RevokedBy    id.UserID
}

// Scan implements dbutil.DataStruct.
func (p *PortalState) Scan(row dbutil.Scannable) (*PortalState, error) {
	var controlled, revoked int64
	err := row.Scan(&p.Key.ID, &p.Key.Receiver, &p.Network, &p.Staff, &p.RoomID, &controlled, &p.Revoked, &revoked, &p.RevokedBy)
	if err != nil {
		return nil, err
	}
	if controlled != 0 {
		p.ControlledAt = time.UnixMilli(controlled).UTC()
	}
	if revoked != 0 {
		p.RevokedAt = time.UnixMilli(revoked).UTC()
	}
	return p, nil
}

// stateStore keeps the gate's tables. In hashed mode, portal IDs, receivers
// and login IDs are sealed (deterministically: they are looked up by
// equality) and opened when read back.
type stateStore struct {
	db      *dbutil.Database
	seal    *seal.Sealer
	portals *dbutil.QueryHelper[*PortalState]

	// The portal states read, so that a message does not re-read its
	// portal's: every write of a state goes through this store and drops
	// what it changes (and bumps gen, so that a read that raced the write
	// does not put the old state back). Reads inside a transaction are not
	// kept (it may roll back).
	cacheMu sync.Mutex
	gen     uint64 // guarded by cacheMu
	cache   *lru.Cache[sealedKey, PortalState]
}

// sealedKey is a portal key as stored (sealed in hashed mode).
type sealedKey struct{ portalID, receiver string }

// portalStatesKept bounds the cache of portal states.
const portalStatesKept = 10000

// forgetPortal drops the cached state of key: after a transaction that
// changed it ends (a read outside it may have kept the state from before
// its commit).
func (s *stateStore) forgetPortal(key networkid.PortalKey) {
	portalID, receiver := s.sealKey(key)
	s.forget(sealedKey{portalID, receiver})
}

// forget drops the cached states of keys (all of them when none is given)
// after a write.
func (s *stateStore) forget(keys ...sealedKey) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	s.gen++
	if len(keys) == 0 {
		s.cache = lru.New[sealedKey, PortalState](portalStatesKept)
		return
	}
	for _, k := range keys {
		s.cache.Remove(k)
	}
}

func (s *stateStore) sealKey(key networkid.PortalKey) (string, string) {
	return s.seal.Seal(seal.KindPortal, string(key.ID)), s.seal.Seal(seal.KindLogin, string(key.Receiver))
}

func (s *stateStore) openKey(p *PortalState) error {
	portalID, err := s.seal.Open(seal.KindPortal, string(p.Key.ID))
	if err != nil {
		return fmt.Errorf("failed to open portal ID: %w", err)
	}
	receiver, err := s.seal.Open(seal.KindLogin, string(p.Key.Receiver))
	if err != nil {
		return fmt.Errorf("failed to open portal receiver: %w", err)
	}
	p.Key = networkid.PortalKey{ID: networkid.PortalID(portalID), Receiver: networkid.UserLoginID(receiver)}
	return nil
}

const portalColumns = "portal_id, receiver, network, staff, room_id, controlled_at, revoked, revoked_at, revoked_by"

const (
	getPortalQuery = `SELECT ` + portalColumns + ` FROM governance_gate_portal WHERE portal_id = $1 AND receiver = $2`
	// The per-login state of a portal that became shared, the revoked one
	// first.
	perLoginPortalQuery = `SELECT ` + portalColumns + ` FROM governance_gate_portal WHERE portal_id = $1
		ORDER BY revoked DESC, controlled_at DESC LIMIT 1`
	inheritPortalQuery = `
		INSERT INTO governance_gate_portal (portal_id, receiver, network, staff, room_id, controlled_at, revoked, revoked_at, revoked_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (portal_id, receiver) DO NOTHING
	`
	// The state of a portal moved to a new key, revoked if either was.
	movePortalQuery = `
		INSERT INTO governance_gate_portal (portal_id, receiver, network, staff, room_id, controlled_at, revoked, revoked_at, revoked_by)
		SELECT $3, $4, network, staff, room_id, controlled_at, revoked, revoked_at, revoked_by
		FROM governance_gate_portal WHERE portal_id = $1 AND receiver = $2
		ON CONFLICT (portal_id, receiver) DO UPDATE SET
			revoked_at = CASE WHEN excluded.revoked AND NOT governance_gate_portal.revoked THEN excluded.revoked_at ELSE governance_gate_portal.revoked_at END,
			revoked_by = CASE WHEN excluded.revoked AND NOT governance_gate_portal.revoked THEN excluded.revoked_by ELSE governance_gate_portal.revoked_by END,
			revoked = (governance_gate_portal.revoked OR excluded.revoked)
	`
	listPortalsQuery  = `SELECT ` + portalColumns + ` FROM governance_gate_portal ORDER BY network, portal_id, receiver`
	upsertPortalQuery = `
		INSERT INTO governance_gate_portal (portal_id, receiver, network, staff, room_id, controlled_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (portal_id, receiver) DO UPDATE SET
			room_id = excluded.room_id, staff = excluded.staff, controlled_at = excluded.controlled_at
	`
	setRevokedQuery = `
		UPDATE governance_gate_portal SET revoked = $3, revoked_at = $4, revoked_by = $5
		WHERE portal_id = $1 AND receiver = $2 AND revoked <> $3
	`
	getKVQuery    = `SELECT value FROM governance_gate_kv WHERE key = $1`
	setKVQuery    = `INSERT INTO governance_gate_kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
	putNotice     = `INSERT INTO governance_gate_notice (event_id, request_id) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING`
	getNotice     = `SELECT request_id FROM governance_gate_notice WHERE event_id = $1`
	getLogins     = `SELECT login_id, staff, network FROM governance_gate_login`
	putLoginQuery = `INSERT INTO governance_gate_login (login_id, staff, network, since) VALUES ($1, $2, $3, $4) ON CONFLICT (login_id) DO NOTHING`
	delLoginQuery = `DELETE FROM governance_gate_login WHERE login_id = $1`
)

func (s *stateStore) portal(ctx context.Context, key networkid.PortalKey) (*PortalState, error) {
	portalID, receiver := s.sealKey(key)
	ck := sealedKey{portalID, receiver}
	s.cacheMu.Lock()
	cached, ok := s.cache.Get(ck)
	gen := s.gen
	s.cacheMu.Unlock()
	if ok {
		return &cached, nil
	}
	p, err := s.portals.QueryOne(ctx, getPortalQuery, portalID, receiver)
	if err == nil && p == nil && key.Receiver == "" {
		p, err = s.inheritShared(ctx, key, portalID, receiver)
	}
	if err != nil || p == nil {
		return p, err
	}
	if err = s.openKey(p); err != nil {
		return nil, err
	}
	if _, inTxn := s.db.Execable(ctx).(dbutil.Transaction); !inTxn {
		s.cacheMu.Lock()
		if s.gen == gen {
			s.cache.Put(ck, *p)
		}
		s.cacheMu.Unlock()
	}
	return p, nil
}

// inheritShared gives a shared portal (its key has no receiver, as a
// group's since portals are shared) the state of the portal it was per
// login before: revoked if any of them was. It is written under the shared
// key, so that it is found directly afterwards.
func (s *stateStore) inheritShared(ctx context.Context, key networkid.PortalKey, portalID, receiver string) (*PortalState, error) {
	old, err := s.portals.QueryOne(ctx, perLoginPortalQuery, portalID)
	if err != nil || old == nil {
		return nil, err
	}
	_, err = s.db.Exec(ctx, inheritPortalQuery, portalID, receiver, old.Network, old.Staff, old.RoomID,
		unixMilli(old.ControlledAt), old.Revoked, unixMilli(old.RevokedAt), old.RevokedBy)
	s.forget(sealedKey{portalID, receiver})
	if err != nil {
		return nil, fmt.Errorf("failed to inherit portal state: %w", err)
	}
	return s.portals.QueryOne(ctx, getPortalQuery, portalID, receiver)
}

// movePortal gives the portal's new key the state of its old one (revoked if
// either is); the old row stays, as history.
func (s *stateStore) movePortal(ctx context.Context, from, to networkid.PortalKey) error {
	fromID, fromReceiver := s.sealKey(from)
	toID, toReceiver := s.sealKey(to)
	_, err := s.db.Exec(ctx, movePortalQuery, fromID, fromReceiver, toID, toReceiver)
	s.forget(sealedKey{fromID, fromReceiver}, sealedKey{toID, toReceiver})
	if err != nil {
		return fmt.Errorf("failed to move portal state: %w", err)
	}
	return nil
}

func (s *stateStore) listPortals(ctx context.Context) ([]*PortalState, error) {
	ps, err := s.portals.QueryMany(ctx, listPortalsQuery)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if err = s.openKey(p); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

func (s *stateStore) putControlled(ctx context.Context, p *PortalState) error {
	portalID, receiver := s.sealKey(p.Key)
	_, err := s.db.Exec(ctx, upsertPortalQuery, portalID, receiver, p.Network, p.Staff, p.RoomID, p.ControlledAt.UnixMilli())
	s.forget(sealedKey{portalID, receiver})
	return err
}

// setRevoked changes the revoked flag; changed is false if it already had
// that value (or the portal is unknown).
func (s *stateStore) setRevoked(ctx context.Context, key networkid.PortalKey, revoked bool, at time.Time, by id.UserID) (changed bool, err error) {
	portalID, receiver := s.sealKey(key)
	res, err := s.db.Exec(ctx, setRevokedQuery, portalID, receiver, revoked, at.UnixMilli(), by)
	s.forget(sealedKey{portalID, receiver})
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *stateStore) getKV(ctx context.Context, key string) (string, error) {
	var val string
	err := s.db.QueryRow(ctx, getKVQuery, key).Scan(&val)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return val, err
}

func (s *stateStore) setKV(ctx context.Context, key, val string) error {
	_, err := s.db.Exec(ctx, setKVQuery, key, val)
	return err
}

func (s *stateStore) putNotice(ctx context.Context, eventID id.EventID, requestID int64) error {
	_, err := s.db.Exec(ctx, putNotice, eventID, requestID)
	return err
}

func (s *stateStore) notice(ctx context.Context, eventID id.EventID) (int64, bool, error) {
	var reqID int64
	err := s.db.QueryRow(ctx, getNotice, eventID).Scan(&reqID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return reqID, err == nil, err
}

type knownLogin struct {
	ID      networkid.UserLoginID
	Staff   id.UserID
	Network string
}

func (s *stateStore) logins(ctx context.Context) ([]knownLogin, error) {
	rows, err := s.db.Query(ctx, getLogins)
	return dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (knownLogin, error) {
		var l knownLogin
		var stored string
		if err := row.Scan(&stored, &l.Staff, &l.Network); err != nil {
			return l, err
		}
		opened, err := s.seal.Open(seal.KindLogin, stored)
		l.ID = networkid.UserLoginID(opened)
		return l, err
	}, err).AsList()
}

func (s *stateStore) putLogin(ctx context.Context, l knownLogin, at time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, putLoginQuery, s.seal.Seal(seal.KindLogin, string(l.ID)), l.Staff, l.Network, at.UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *stateStore) deleteLogin(ctx context.Context, loginID networkid.UserLoginID) error {
	_, err := s.db.Exec(ctx, delLoginQuery, s.seal.Seal(seal.KindLogin, string(loginID)))
	return err
}

const (
	plainPortalsQuery = `SELECT portal_id, receiver FROM governance_gate_portal WHERE portal_id NOT LIKE 'sealed:%'`
	sealPortalQuery   = `UPDATE governance_gate_portal SET portal_id = $3, receiver = $4 WHERE portal_id = $1 AND receiver = $2`
	plainLoginsQuery  = `SELECT login_id FROM governance_gate_login WHERE login_id NOT LIKE 'sealed:%'`
	sealLoginQuery    = `UPDATE governance_gate_login SET login_id = $2 WHERE login_id = $1`
)

// sealExisting seals, in hashed mode, the portals and logins stored before
// hashed mode was turned on, so that a revoked portal stays revoked. It
// returns how many rows it sealed.
func (s *stateStore) sealExisting(ctx context.Context) (n int, err error) {
	if !s.seal.On() {
		return 0, nil
	}
	err = s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		rows, err := s.db.Query(ctx, plainPortalsQuery)
		keys, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (k networkid.PortalKey, err error) {
			return k, row.Scan(&k.ID, &k.Receiver)
		}, err).AsList()
		if err != nil {
			return fmt.Errorf("failed to read portals to seal: %w", err)
		}
		for _, k := range keys {
			portalID, receiver := s.sealKey(k)
			if _, err = s.db.Exec(ctx, sealPortalQuery, k.ID, k.Receiver, portalID, receiver); err != nil {
				return fmt.Errorf("failed to seal portal: %w", err)
			}
		}
		rows, err = s.db.Query(ctx, plainLoginsQuery)
		logins, err := dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[string], err).AsList()
		if err != nil {
			return fmt.Errorf("failed to read logins to seal: %w", err)
		}
		for _, l := range logins {
			if _, err = s.db.Exec(ctx, sealLoginQuery, l, s.seal.Seal(seal.KindLogin, l)); err != nil {
				return fmt.Errorf("failed to seal login: %w", err)
			}
		}
		n = len(keys) + len(logins)
		return nil
	})
	s.forget()
	return n, err
}

// unixMilli is t in milliseconds, 0 for the zero time (as the tables keep
// "never").
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
