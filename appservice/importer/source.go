package importer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	_ "github.com/lib/pq" // PostgreSQL driver
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // the sqlite3-fk-wal driver
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/database/upgrades"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// ErrNotBridgev2 is returned for a source database that is not a mautrix
// bridgev2 database this import can read.
var ErrNotBridgev2 = errors.New("not a supported mautrix bridgev2 database")

// bridgev2's own version table (the main one of a bridge's database).
const bridgev2VersionTable = "version"

// messagePage bounds how many source messages are held at once.
const messagePage = 500

// OpenSource opens the old bridge's database: a postgres:// URI, or the
// path (or file: URI) of a SQLite file, which must exist: a typo must not
// create an empty database.
func OpenSource(uri string) (*dbutil.Database, error) {
	if strings.HasPrefix(uri, "postgres://") || strings.HasPrefix(uri, "postgresql://") {
		db, err := dbutil.NewWithDialect(uri, "postgres")
		if err != nil {
			return nil, fmt.Errorf("failed to open the source database: %w", err)
		}
		return db, nil
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(uri, "file:"), "?")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the source database %s does not exist", path)
	} else if err != nil {
		return nil, fmt.Errorf("failed to check the source database: %w", err)
	}
	if !strings.HasPrefix(uri, "file:") {
		uri = "file:" + path + "?_txlock=immediate"
	}
	db, err := dbutil.NewWithDialect(uri, "sqlite3-fk-wal")
	if err != nil {
		return nil, fmt.Errorf("failed to open the source database: %w", err)
	}
	return db, nil
}

// rawMeta reads any metadata as a JSON object, whatever the old connector
// stored in it.
func rawMeta() any { return &map[string]any{} }

// source is the old bridge's database, read through bridgev2's own
// queries; nothing is ever written to it.
type source struct {
	db      *database.Database
	version int
}

// readVersion returns bridgev2's schema version of db (0, false when it has
// no version table). Unlike dbutil's own check it writes nothing.
func readVersion(ctx context.Context, db *dbutil.Database) (version, compat int, ok bool, err error) {
	exists, err := db.TableExists(ctx, bridgev2VersionTable)
	if err != nil || !exists {
		return 0, 0, false, err
	}
	var v, c sql.NullInt64
	err = db.QueryRow(ctx, "SELECT version, compat FROM "+bridgev2VersionTable+" LIMIT 1").Scan(&v, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	} else if err != nil {
		return 0, 0, false, fmt.Errorf("failed to read the schema version: %w", err)
	}
	version = int(v.Int64)
	compat = version
	if c.Valid && c.Int64 != 0 {
		compat = int(c.Int64)
	}
	return version, compat, true, nil
}

// openSource checks that db is a bridgev2 database whose schema this build
// reads: the version bridgev2 here knows, or a newer one that declares
// itself compatible with it (dbutil's own rule).
func openSource(ctx context.Context, db *dbutil.Database, bridgeID networkid.BridgeID) (*source, error) {
	version, compat, ok, err := readVersion(ctx, db)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: it has no %q table (is it a mautrix-whatsapp or mautrix-telegram v2 database?)", ErrNotBridgev2, bridgev2VersionTable)
	}
	for _, table := range []string{"portal", "ghost", "message", "user_login"} {
		if exists, err := db.TableExists(ctx, table); err != nil {
			return nil, err
		} else if !exists {
			return nil, fmt.Errorf("%w: it has no %s table (a bridge older than bridgev2?)", ErrNotBridgev2, table)
		}
	}
	latest := len(upgrades.Table)
	switch {
	case version < latest:
		return nil, fmt.Errorf("%w: schema v%d is older than v%d that this import reads; start the old bridge once with a newer release so that it upgrades its database, then stop it and import", ErrNotBridgev2, version, latest)
	case compat > latest:
		return nil, fmt.Errorf("%w: schema v%d (compatible down to v%d) is newer than v%d that this import reads; use a newer Passerelle", ErrNotBridgev2, version, compat, latest)
	}
	mt := database.MetaTypes{Portal: rawMeta, Ghost: rawMeta, Message: rawMeta, Reaction: rawMeta, UserLogin: rawMeta}
	return &source{db: database.New(bridgeID, mt, db), version: version}, nil
}

const (
	// The columns bridgev2's Ghost and Message scanners read, in their order.
	getAllGhostsQuery = `
		SELECT bridge_id, id, name, avatar_id, avatar_hash, avatar_mxc,
		       name_set, avatar_set, contact_info_set, is_bot, identifiers, extra_profile, metadata
		FROM ghost WHERE bridge_id=$1 ORDER BY id`
	getMessagePageQuery = `
		SELECT rowid, bridge_id, id, part_id, mxid, room_id, room_receiver, sender_id, sender_mxid,
		       timestamp, edit_count, double_puppeted, thread_root_id, reply_to_id, reply_to_part_id,
		       send_txn_id, metadata
		FROM message WHERE bridge_id=$1 AND rowid>$2 ORDER BY rowid LIMIT $3`
	countReactionsQuery = `SELECT COUNT(*) FROM reaction WHERE bridge_id=$1`
)

func (s *source) logins(ctx context.Context) ([]*database.UserLogin, error) {
	users, err := s.db.UserLogin.GetAllUserIDsWithLogins(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to list the old bridge's users: %w", err)
	}
	var out []*database.UserLogin
	for _, user := range users {
		logins, err := s.db.UserLogin.GetAllForUser(ctx, user)
		if err != nil {
			return nil, fmt.Errorf("failed to list the old bridge's logins: %w", err)
		}
		out = append(out, logins...)
	}
	return out, nil
}

func (s *source) ghosts(ctx context.Context) ([]*database.Ghost, error) {
	ghosts, err := s.db.Ghost.QueryMany(ctx, getAllGhostsQuery, s.db.BridgeID)
	if err != nil {
		return nil, fmt.Errorf("failed to read the old bridge's ghosts: %w", err)
	}
	return ghosts, nil
}

// eachMessage calls fn for every message part, a page at a time.
func (s *source) eachMessage(ctx context.Context, fn func(*database.Message) error) error {
	var after int64
	for {
		page, err := s.db.Message.QueryMany(ctx, getMessagePageQuery, s.db.BridgeID, after, messagePage)
		if err != nil {
			return fmt.Errorf("failed to read the old bridge's messages: %w", err)
		}
		for _, msg := range page {
			if err = fn(msg); err != nil {
				return err
			}
			after = msg.RowID
		}
		if len(page) < messagePage {
			return nil
		}
	}
}

func (s *source) reactionCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRow(ctx, countReactionsQuery, s.db.BridgeID).Scan(&n); err != nil {
		return 0, fmt.Errorf("failed to count the old bridge's reactions: %w", err)
	}
	return n, nil
}
