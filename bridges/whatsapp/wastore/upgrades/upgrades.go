// Package upgrades holds the numbered SQL upgrades of the WhatsApp device
// store's tables (version table whatsapp_version).
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var rawUpgrades embed.FS

// Table is the upgrade table of the WhatsApp device store.
var Table = dbutil.BuildUpgradeTable().WithFS(rawUpgrades).Finish()
