// Package upgrades holds the numbered SQL upgrades of the Telegram
// connector's own tables (version table telegram_version).
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var rawUpgrades embed.FS

// Table is the upgrade table of the Telegram connector's tables.
var Table = dbutil.BuildUpgradeTable().WithFS(rawUpgrades).Finish()
