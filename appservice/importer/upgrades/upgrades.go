// Package upgrades holds the numbered SQL upgrades of the importer's own
// tables (version table passerelle_import_version).
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var rawUpgrades embed.FS

// Table is the upgrade table of the importer's tables.
var Table = dbutil.BuildUpgradeTable().WithFS(rawUpgrades).Finish()
