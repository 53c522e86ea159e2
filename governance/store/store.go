// Package store holds the database schema shared by every governance package
// (policy rules, audit log, contact registry, approval requests). All of them
// live in one upgrade table with its own version table, so that governance
// migrates independently of bridgev2 and of the network connectors, and in one
// step.
package store

import (
	"context"
	"embed"
	"fmt"

	"go.mau.fi/util/dbutil"
)

// VersionTable is the version table of the governance schema.
const VersionTable = "passerelle_governance_version"

//go:embed upgrades/*.sql
var rawUpgrades embed.FS

// Table is the upgrade table of the governance schema.
var Table = dbutil.BuildUpgradeTable().WithFSPath(rawUpgrades, "upgrades").Finish()

// Child returns the governance view of the gateway's database: the same
// connection pool, with the governance version and upgrade table.
func Child(parent *dbutil.Database) *dbutil.Database {
	return parent.Child(VersionTable, Table, nil)
}

// createVersionTable makes the version table in the current schema before
// dbutil looks for it: on PostgreSQL, dbutil's TableExists and ColumnExists
// search information_schema across every schema, so a version table of the
// same name in another schema of the database (another deployment, or a
// parallel test) would make it skip creating ours and then fail to read it.
const createVersionTable = `CREATE TABLE IF NOT EXISTS ` + VersionTable + ` (version INTEGER, compat INTEGER)`

// Open returns Child(parent) after upgrading the governance schema to the
// latest version.
func Open(ctx context.Context, parent *dbutil.Database) (*dbutil.Database, error) {
	db := Child(parent)
	if _, err := db.Exec(ctx, createVersionTable); err != nil {
		return nil, fmt.Errorf("failed to create governance version table: %w", err)
	}
	if err := db.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("failed to upgrade governance database: %w", err)
	}
	return db, nil
}
