package telegram

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/updates"
	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/bridges/telegram/upgrades"
	"github.com/passerelle/passerelle/internal/lru"
)

// Store keeps what gotd needs between restarts in the connector's own tables:
// the MTProto session (auth key), the update state (pts/qts/date/seq and
// per-channel pts) and the access hashes of users and channels.
type Store struct {
	db       *dbutil.Database
	state    *dbutil.QueryHelper[*stateRow]
	channels *dbutil.QueryHelper[*channelRow]
	peers    *dbutil.QueryHelper[*peerRow]
	// known holds the access hashes read or written lately: gotd asks for
	// the sender's on every update and every message brings its sender's
	// again, so without it each bridged message read and wrote the table.
	known atomic.Pointer[lru.Cache[peerKey, peerRow]]
}

// peerKey names an access hash: the account that saw the peer, and the
// peer.
type peerKey struct {
	userID   int64
	peerType string
	peerID   int64
}

// knownPeers bounds the access hashes kept in memory.
const knownPeers = 4096

// VersionTable is the name of the connector's version table.
const VersionTable = "telegram_version"

// NewStore wraps db (normally br.DB.Child(VersionTable, upgrades.Table, log)).
func NewStore(db *dbutil.Database) *Store {
	s := &Store{
		db:       db,
		state:    dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*stateRow]) *stateRow { return &stateRow{} }),
		channels: dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*channelRow]) *channelRow { return &channelRow{} }),
		peers:    dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*peerRow]) *peerRow { return &peerRow{} }),
	}
	s.known.Store(lru.New[peerKey, peerRow](knownPeers))
	return s
}

// NewChildStore makes the connector's child database on parent.
func NewChildStore(parent *dbutil.Database, log dbutil.DatabaseLogger) *Store {
	return NewStore(parent.Child(VersionTable, upgrades.Table, log))
}

// Upgrade creates or upgrades the connector's tables.
func (s *Store) Upgrade(ctx context.Context) error {
	if err := s.db.Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to upgrade telegram tables: %w", err)
	}
	return nil
}

const (
	getSessionQuery    = `SELECT data FROM telegram_session WHERE user_id=$1`
	putSessionQuery    = `INSERT INTO telegram_session (user_id, data) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET data=excluded.data`
	deleteSessionQuery = `DELETE FROM telegram_session WHERE user_id=$1`

	getStateQuery = `SELECT pts, qts, state_date, seq FROM telegram_update_state WHERE user_id=$1`
	putStateQuery = `
		INSERT INTO telegram_update_state (user_id, pts, qts, state_date, seq) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id) DO UPDATE SET pts=excluded.pts, qts=excluded.qts, state_date=excluded.state_date, seq=excluded.seq`
	setPtsQuery     = `UPDATE telegram_update_state SET pts=$2 WHERE user_id=$1`
	setQtsQuery     = `UPDATE telegram_update_state SET qts=$2 WHERE user_id=$1`
	setDateQuery    = `UPDATE telegram_update_state SET state_date=$2 WHERE user_id=$1`
	setSeqQuery     = `UPDATE telegram_update_state SET seq=$2 WHERE user_id=$1`
	setDateSeqQuery = `UPDATE telegram_update_state SET state_date=$2, seq=$3 WHERE user_id=$1`
	deleteState     = `DELETE FROM telegram_update_state WHERE user_id=$1`

	getChannelPtsQuery = `SELECT channel_id, pts FROM telegram_channel_state WHERE user_id=$1 AND channel_id=$2`
	putChannelPtsQuery = `
		INSERT INTO telegram_channel_state (user_id, channel_id, pts) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, channel_id) DO UPDATE SET pts=excluded.pts`
	allChannelPtsQuery = `SELECT channel_id, pts FROM telegram_channel_state WHERE user_id=$1`
	deleteChannels     = `DELETE FROM telegram_channel_state WHERE user_id=$1`

	getPeerQuery = `SELECT peer_type, peer_id, access_hash, username FROM telegram_access_hash WHERE user_id=$1 AND peer_type=$2 AND peer_id=$3`
	putPeerQuery = `
		INSERT INTO telegram_access_hash (user_id, peer_type, peer_id, access_hash, username) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, peer_type, peer_id) DO UPDATE SET access_hash=excluded.access_hash,
			username=COALESCE(excluded.username, telegram_access_hash.username)`
	getPeerByUsernameQuery = `SELECT peer_type, peer_id, access_hash, username FROM telegram_access_hash WHERE user_id=$1 AND LOWER(username)=LOWER($2)`
	deletePeers            = `DELETE FROM telegram_access_hash WHERE user_id=$1`
)

type stateRow struct{ updates.State }

func (r *stateRow) Scan(row dbutil.Scannable) (*stateRow, error) {
	return dbutil.ValueOrErr(r, row.Scan(&r.Pts, &r.Qts, &r.Date, &r.Seq))
}

type channelRow struct {
	ChannelID int64
	Pts       int
}

func (r *channelRow) Scan(row dbutil.Scannable) (*channelRow, error) {
	return dbutil.ValueOrErr(r, row.Scan(&r.ChannelID, &r.Pts))
}

// Peer types in telegram_access_hash.
const (
	peerTypeUser    = "user"
	peerTypeChannel = "channel"
)

type peerRow struct {
	Type       string
	ID         int64
	AccessHash int64
	Username   sql.NullString
}

func (r *peerRow) Scan(row dbutil.Scannable) (*peerRow, error) {
	return dbutil.ValueOrErr(r, row.Scan(&r.Type, &r.ID, &r.AccessHash, &r.Username))
}

// Session returns the gotd session storage of one account.
func (s *Store) Session(userID int64) telegram.SessionStorage {
	return &sessionStorage{store: s, userID: userID}
}

// SaveSession stores raw session data for an account.
func (s *Store) SaveSession(ctx context.Context, userID int64, data []byte) error {
	if _, err := s.db.Exec(ctx, putSessionQuery, userID, string(data)); err != nil {
		return fmt.Errorf("failed to save telegram session: %w", err)
	}
	return nil
}

// HasSession reports whether an account has a stored session.
func (s *Store) HasSession(ctx context.Context, userID int64) (bool, error) {
	_, err := s.Session(userID).LoadSession(ctx)
	if errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DeleteAccount removes everything stored for an account (on logout).
func (s *Store) DeleteAccount(ctx context.Context, userID int64) error {
	// Forget every account's cached access hashes (a logout is rare).
	defer s.known.Store(lru.New[peerKey, peerRow](knownPeers))
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, q := range []string{deleteSessionQuery, deleteState, deleteChannels, deletePeers} {
			if _, err := s.db.Exec(ctx, q, userID); err != nil {
				return fmt.Errorf("failed to delete telegram account data: %w", err)
			}
		}
		return nil
	})
}

type sessionStorage struct {
	store  *Store
	userID int64
}

var _ telegram.SessionStorage = (*sessionStorage)(nil)

func (ss *sessionStorage) LoadSession(ctx context.Context) ([]byte, error) {
	var data string
	err := ss.store.db.QueryRow(ctx, getSessionQuery, ss.userID).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, session.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("failed to load telegram session: %w", err)
	}
	return []byte(data), nil
}

func (ss *sessionStorage) StoreSession(ctx context.Context, data []byte) error {
	return ss.store.SaveSession(ctx, ss.userID, data)
}

// UpdateState is the store seen as gotd's updates.StateStorage.
func (s *Store) UpdateState() updates.StateStorage { return (*stateStorage)(s) }

// ChannelAccessHasher is the store seen as gotd's updates.ChannelAccessHasher.
func (s *Store) ChannelAccessHasher() updates.ChannelAccessHasher { return (*channelHasher)(s) }

// UserAccessHasher is the store seen as gotd's updates.UserAccessHasher.
func (s *Store) UserAccessHasher() updates.UserAccessHasher { return (*userHasher)(s) }

type stateStorage Store

var _ updates.StateStorage = (*stateStorage)(nil)

func (s *stateStorage) GetState(ctx context.Context, userID int64) (updates.State, bool, error) {
	row, err := s.state.QueryOne(ctx, getStateQuery, userID)
	if err != nil {
		return updates.State{}, false, fmt.Errorf("failed to get update state: %w", err)
	} else if row == nil {
		return updates.State{}, false, nil
	}
	return row.State, true, nil
}

func (s *stateStorage) SetState(ctx context.Context, userID int64, st updates.State) error {
	return s.exec(ctx, putStateQuery, userID, st.Pts, st.Qts, st.Date, st.Seq)
}

func (s *stateStorage) exec(ctx context.Context, query string, args ...any) error {
	if _, err := s.db.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("failed to save update state: %w", err)
	}
	return nil
}

func (s *stateStorage) SetPts(ctx context.Context, userID int64, pts int) error {
	return s.exec(ctx, setPtsQuery, userID, pts)
}

func (s *stateStorage) SetQts(ctx context.Context, userID int64, qts int) error {
	return s.exec(ctx, setQtsQuery, userID, qts)
}

func (s *stateStorage) SetDate(ctx context.Context, userID int64, date int) error {
	return s.exec(ctx, setDateQuery, userID, date)
}

func (s *stateStorage) SetSeq(ctx context.Context, userID int64, seq int) error {
	return s.exec(ctx, setSeqQuery, userID, seq)
}

func (s *stateStorage) SetDateSeq(ctx context.Context, userID int64, date, seq int) error {
	return s.exec(ctx, setDateSeqQuery, userID, date, seq)
}

func (s *stateStorage) GetChannelPts(ctx context.Context, userID, channelID int64) (int, bool, error) {
	row, err := s.channels.QueryOne(ctx, getChannelPtsQuery, userID, channelID)
	if err != nil {
		return 0, false, fmt.Errorf("failed to get channel pts: %w", err)
	} else if row == nil {
		return 0, false, nil
	}
	return row.Pts, true, nil
}

func (s *stateStorage) SetChannelPts(ctx context.Context, userID, channelID int64, pts int) error {
	return s.exec(ctx, putChannelPtsQuery, userID, channelID, pts)
}

func (s *stateStorage) ForEachChannels(ctx context.Context, userID int64, f func(ctx context.Context, channelID int64, pts int) error) error {
	rows, err := s.channels.QueryMany(ctx, allChannelPtsQuery, userID)
	if err != nil {
		return fmt.Errorf("failed to list channel pts: %w", err)
	}
	for _, row := range rows {
		if err = f(ctx, row.ChannelID, row.Pts); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) getPeer(ctx context.Context, userID int64, peerType string, peerID int64) (*peerRow, error) {
	key := peerKey{userID, peerType, peerID}
	known := s.known.Load()
	if row, ok := known.Get(key); ok {
		return &row, nil
	}
	row, err := s.peers.QueryOne(ctx, getPeerQuery, userID, peerType, peerID)
	if err != nil {
		return nil, fmt.Errorf("failed to get access hash: %w", err)
	}
	if row != nil {
		known.Put(key, *row)
	}
	return row, nil
}

// putPeer saves an access hash and username (an empty one keeps the
// stored one); what the table already holds is not written again.
func (s *Store) putPeer(ctx context.Context, userID int64, peerType string, peerID, accessHash int64, username string) error {
	key := peerKey{userID, peerType, peerID}
	known := s.known.Load()
	if row, ok := known.Get(key); ok && row.AccessHash == accessHash && (username == "" || row.Username.Valid && row.Username.String == username) {
		return nil
	}
	known.Remove(key)
	_, err := s.db.Exec(ctx, putPeerQuery, userID, peerType, peerID, accessHash, sql.NullString{String: username, Valid: username != ""})
	if err != nil {
		return fmt.Errorf("failed to save access hash: %w", err)
	}
	return nil
}

// PeerByUsername finds a user or channel the account has seen by @username.
func (s *Store) PeerByUsername(ctx context.Context, userID int64, username string) (peerType string, peerID, accessHash int64, found bool, err error) {
	row, err := s.peers.QueryOne(ctx, getPeerByUsernameQuery, userID, username)
	if err != nil {
		return "", 0, 0, false, fmt.Errorf("failed to find username: %w", err)
	} else if row == nil {
		return "", 0, 0, false, nil
	}
	return row.Type, row.ID, row.AccessHash, true, nil
}

// PutUser records a user's access hash (and username) as seen by an account.
func (s *Store) PutUser(ctx context.Context, selfID, userID, accessHash int64, username string) error {
	return s.putPeer(ctx, selfID, peerTypeUser, userID, accessHash, username)
}

type channelHasher Store

var _ updates.ChannelAccessHasher = (*channelHasher)(nil)

func (h *channelHasher) SetChannelAccessHash(ctx context.Context, userID, channelID, accessHash int64) error {
	return (*Store)(h).putPeer(ctx, userID, peerTypeChannel, channelID, accessHash, "")
}

func (h *channelHasher) GetChannelAccessHash(ctx context.Context, userID, channelID int64) (int64, bool, error) {
	row, err := (*Store)(h).getPeer(ctx, userID, peerTypeChannel, channelID)
	if err != nil || row == nil {
		return 0, false, err
	}
	return row.AccessHash, true, nil
}

type userHasher Store

var _ updates.UserAccessHasher = (*userHasher)(nil)

func (h *userHasher) SetUserAccessHash(ctx context.Context, userID, targetUserID, accessHash int64) error {
	return (*Store)(h).putPeer(ctx, userID, peerTypeUser, targetUserID, accessHash, "")
}

func (h *userHasher) GetUserAccessHash(ctx context.Context, userID, targetUserID int64) (int64, bool, error) {
	row, err := (*Store)(h).getPeer(ctx, userID, peerTypeUser, targetUserID)
	if err != nil || row == nil {
		return 0, false, err
	}
	return row.AccessHash, true, nil
}
