package gate

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"
)

// VersionTable is the version table of the gate's own tables.
const VersionTable = "passerelle_governance_gate_version"

//go:embed upgrades/*.sql
var rawUpgrades embed.FS

var upgradeTable = dbutil.BuildUpgradeTable().WithFSPath(rawUpgrades, "upgrades").Finish()

// createVersionTable: see governance/store (dbutil looks for the version
// table in every schema on PostgreSQL).
const createVersionTable = `CREATE TABLE IF NOT EXISTS ` + VersionTable + ` (version INTEGER, compat INTEGER)`

func openStore(ctx context.Context, parent *dbutil.Database) (*stateStore, error) {
	db := parent.Child(VersionTable, upgradeTable, nil)
	if _, err := db.Exec(ctx, createVersionTable); err != nil {
		return nil, fmt.Errorf("failed to create gate version table: %w", err)
	}
	if err := db.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("failed to upgrade gate tables: %w", err)
	}
	return &stateStore{db: db, portals: dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*PortalState]) *PortalState { return &PortalState{} })}, nil
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

type stateStore struct {
	db      *dbutil.Database
	portals *dbutil.QueryHelper[*PortalState]
}

const portalColumns = "portal_id, receiver, network, staff, room_id, controlled_at, revoked, revoked_at, revoked_by"

const (
	getPortalQuery    = `SELECT ` + portalColumns + ` FROM governance_gate_portal WHERE portal_id = $1 AND receiver = $2`
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
	return s.portals.QueryOne(ctx, getPortalQuery, key.ID, key.Receiver)
}

func (s *stateStore) listPortals(ctx context.Context) ([]*PortalState, error) {
	return s.portals.QueryMany(ctx, listPortalsQuery)
}

func (s *stateStore) putControlled(ctx context.Context, p *PortalState) error {
	_, err := s.db.Exec(ctx, upsertPortalQuery, p.Key.ID, p.Key.Receiver, p.Network, p.Staff, p.RoomID, p.ControlledAt.UnixMilli())
	return err
}

// setRevoked changes the revoked flag; changed is false if it already had
// that value (or the portal is unknown).
func (s *stateStore) setRevoked(ctx context.Context, key networkid.PortalKey, revoked bool, at time.Time, by id.UserID) (changed bool, err error) {
	res, err := s.db.Exec(ctx, setRevokedQuery, key.ID, key.Receiver, revoked, at.UnixMilli(), by)
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
		return l, row.Scan(&l.ID, &l.Staff, &l.Network)
	}, err).AsList()
}

func (s *stateStore) putLogin(ctx context.Context, l knownLogin, at time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, putLoginQuery, l.ID, l.Staff, l.Network, at.UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *stateStore) deleteLogin(ctx context.Context, loginID networkid.UserLoginID) error {
	_, err := s.db.Exec(ctx, delLoginQuery, loginID)
	return err
}
