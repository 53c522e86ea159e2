package appservice

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	up "go.mau.fi/util/configupgrade"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/gateway"
)

var _ gateway.Component = (*storage)(nil)

// storageExample is the `network.storage` section of the example config.
//
//go:embed storage-example.yaml
var storageExample string

// SQLite's synchronous modes that the gateway offers, and the values that
// PRAGMA synchronous reports for them.
const (
	syncNormal = "normal"
	syncFull   = "full"

	pragmaSyncNormal = 1
	pragmaSyncFull   = 2
)

// The drivers that go.mau.fi/util registers for SQLite in WAL mode: the
// default one commits with synchronous=NORMAL, the other with FULL.
const (
	sqliteWAL         = "sqlite3-fk-wal"
	sqliteWALFullSync = "sqlite3-fk-wal-fullsync"
)

// StorageConfig is the `network.storage` section: how the gateway's own
// database stores data. bridgev2's `database` section has no room for it.
type StorageConfig struct {
	SQLiteSynchronous string `yaml:"sqlite_synchronous"`
}

func (cfg StorageConfig) fullSync() bool {
	return strings.EqualFold(strings.TrimSpace(cfg.SQLiteSynchronous), syncFull)
}

// storage is the gateway component that owns StorageConfig: it checks the
// section and, once the database is open, that SQLite commits the way the
// section asks.
type storage struct {
	cfg StorageConfig
	db  *dbutil.Database
	log zerolog.Logger
}

func newStorage() *storage {
	return &storage{cfg: StorageConfig{SQLiteSynchronous: syncNormal}}
}

func (s *storage) ConfigKey() string { return "storage" }

func (s *storage) GetConfig() (example string, data any, upgrader up.Upgrader) {
	return storageExample, &s.cfg, up.SimpleUpgrader(func(helper up.Helper) {
		helper.Copy(up.Str, "sqlite_synchronous")
	})
}

func (s *storage) ValidateConfig() error {
	switch strings.ToLower(strings.TrimSpace(s.cfg.SQLiteSynchronous)) {
	case "", syncNormal, syncFull:
		return nil
	default:
		return fmt.Errorf("invalid sqlite_synchronous %q (use normal or full)", s.cfg.SQLiteSynchronous)
	}
}

func (s *storage) Init(br *bridgev2.Bridge) {
	s.db = br.DB.Database
	s.log = br.Log.With().Str("component", "storage").Logger()
}

// Start checks that SQLite runs in the synchronous mode the config asks for.
func (s *storage) Start(ctx context.Context) error {
	if s.db == nil || s.db.Dialect != dbutil.SQLite {
		return nil
	}
	mode, err := sqliteSynchronous(ctx, s.db)
	if err != nil {
		return err
	}
	if s.cfg.fullSync() && mode != pragmaSyncFull {
		return fmt.Errorf("sqlite_synchronous is full but SQLite runs with synchronous=%d: use database.type %s", mode, sqliteWAL)
	}
	s.log.Info().Int("sqlite_synchronous", mode).Msg("SQLite commit mode checked")
	return nil
}

func (s *storage) Stop() {}

// sqliteSynchronous returns PRAGMA synchronous (0 off, 1 normal, 2 full,
// 3 extra) of a connection of db; every connection gets the same from the
// driver's connect hook.
func sqliteSynchronous(ctx context.Context, db *dbutil.Database) (int, error) {
	var mode int
	if err := db.QueryRow(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
		return 0, fmt.Errorf("failed to read SQLite's synchronous mode: %w", err)
	}
	return mode, nil
}

// applyStorage switches the SQLite driver to the one that commits with
// synchronous=FULL when the storage section asks for it. It runs after the
// config is loaded and before bridgev2 opens the database.
//
// It also gives each SQLite connection a cache of prepared statements: the
// driver otherwise compiles every statement anew, and compiling was an
// eighth of the gateway's CPU time per bridged message (the same few dozen
// statements again and again). A URI that names _stmt_cache_size keeps its
// own. And it keeps every SQLite connection it opened (max_idle_conns is
// raised to max_open_conns, bridgev2's example has 1 and 5): with one idle
// connection, each moment two goroutines used the database a connection was
// opened (a file open and five PRAGMAs, about 300 µs, 6% of the CPU time
// per bridged message) and closed again, its cached statements with it.
func applyStorage(db *dbutil.Config, cfg StorageConfig) {
	if cfg.fullSync() && db.Type == sqliteWAL {
		db.Type = sqliteWALFullSync
	}
	if dialect, err := dbutil.ParseDialect(db.Type); err != nil || dialect != dbutil.SQLite {
		return
	}
	if !strings.Contains(db.URI, stmtCacheParam+"=") {
		sep := "?"
		if strings.Contains(db.URI, "?") {
			sep = "&"
		}
		db.URI += sep + stmtCacheParam + "=" + strconv.Itoa(stmtCacheSize)
	}
	if db.MaxOpenConns > 0 && db.MaxIdleConns < db.MaxOpenConns {
		db.MaxIdleConns = db.MaxOpenConns
	}
}

// stmtCacheParam is go-sqlite3's DSN parameter for the prepared statements
// kept per connection, and stmtCacheSize the gateway's default: more than the
// statements of a bridged message's path (bridgev2, crypto, governance,
// connector), bounded per connection.
const (
	stmtCacheParam = "_stmt_cache_size"
	stmtCacheSize  = 128
)
