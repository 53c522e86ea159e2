// Package upgrades holds the numbered SQL upgrades of the WhatsApp
// connector's changes to bridgev2's tables (version table
// whatsapp_portal_version): they run after bridgev2's own upgrades, on the
// bridge's database, never on a device store alone.
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var rawUpgrades embed.FS

// Table is the connector's upgrade table.
var Table = dbutil.BuildUpgradeTable().WithFS(rawUpgrades).Finish()

// VersionTable is the table that keeps its version.
const VersionTable = "whatsapp_portal_version"
