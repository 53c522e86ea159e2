package appservice

import (
	"context"
	"embed"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// sendsVersionTable is the version table of the unanswered-sends schema,
// which migrates on its own, like the governance and connector schemas.
const sendsVersionTable = "passerelle_sends_version"

//go:embed upgrades/*.sql
var rawSendUpgrades embed.FS

var sendsUpgradeTable = dbutil.BuildUpgradeTable().WithFSPath(rawSendUpgrades, "upgrades").Finish()

// unansweredKeep is how long an attempt whose outcome is unknown is kept:
// far longer than any retry of the same message, short enough that the
// table stays small.
const unansweredKeep = 24 * time.Hour

// maxAttemptsRead bounds the earlier attempts read for one send.
const maxAttemptsRead = 16

// sendStore keeps the digests of unanswered sends in the gateway's database,
// so that they survive the gateway.
type sendStore struct {
	db  *dbutil.Database
	now func() time.Time
}

// openSendStore upgrades the schema and drops attempts older than a day.
func openSendStore(ctx context.Context, parent *dbutil.Database) (*sendStore, error) {
	db := parent.Child(sendsVersionTable, sendsUpgradeTable, nil)
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+sendsVersionTable+` (version INTEGER, compat INTEGER)`); err != nil {
		return nil, fmt.Errorf("failed to create the sends version table: %w", err)
	}
	if err := db.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("failed to upgrade the sends table: %w", err)
	}
	s := &sendStore{db: db, now: time.Now}
	if err := s.prune(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sendStore) prune(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM passerelle_unanswered_send WHERE created < $1`, s.now().Add(-unansweredKeep).UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to prune unanswered sends: %w", err)
	}
	return nil
}

// earlier returns the digests of the unanswered attempts of path.
func (s *sendStore) earlier(ctx context.Context, path string) ([][]byte, error) {
	rows, err := s.db.Query(ctx, `SELECT digest FROM passerelle_unanswered_send WHERE path = $1 ORDER BY created DESC LIMIT $2`, path, maxAttemptsRead)
	bodies, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) ([]byte, error) {
		var digest string
		err := row.Scan(&digest)
		return []byte(digest), err
	}, err).AsList()
	if err != nil {
		return nil, fmt.Errorf("failed to read unanswered sends: %w", err)
	}
	return bodies, nil
}

// record notes an attempt before it leaves.
func (s *sendStore) record(ctx context.Context, path string, digest []byte) error {
	_, err := s.db.Exec(ctx, `INSERT INTO passerelle_unanswered_send (path, digest, created) VALUES ($1, $2, $3)`, path, string(digest), s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to record a send: %w", err)
	}
	return nil
}

// answered forgets every attempt of path.
func (s *sendStore) answered(ctx context.Context, path string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM passerelle_unanswered_send WHERE path = $1`, path)
	if err != nil {
		return fmt.Errorf("failed to forget answered sends: %w", err)
	}
	return nil
}
