// Package migration tracks an organisation's move from WhatsApp and
// Telegram to Matrix (DESIGN.md, decision 10): a directory linking outside
// identities of the contact registry to Matrix accounts, claim codes with
// which a contact links themselves, and the migration status of each
// contact. It is network-agnostic: contacts are named as the registry
// stores them (network and audit.Registry.Key of the remote ID), so hashed
// mode keeps working.
package migration

import "github.com/passerelle/passerelle/governance/audit"

// Audit actions of the migration.
const (
	ActionDirectoryLinked    audit.Action = "directory_linked"    // an identity was linked to a Matrix account (or pending)
	ActionDirectoryCorrected audit.Action = "directory_corrected" // its Matrix account, department or label changed
	ActionDirectoryConfirmed audit.Action = "directory_confirmed" // a pending link was confirmed
	ActionDirectoryUnlinked  audit.Action = "directory_unlinked"  // a link was removed
	ActionClaimIssued        audit.Action = "claim_issued"        // a Matrix user asked for a claim code (never the code)
	ActionStatusChanged      audit.Action = "migration_status"    // a contact's migration status changed
)

// actions are registered with the audit log so that it accepts them.
// TODO(governance/audit owner): move these into audit.Actions.
var actions = []audit.Action{ActionDirectoryLinked, ActionDirectoryCorrected, ActionDirectoryConfirmed,
	ActionDirectoryUnlinked, ActionClaimIssued, ActionStatusChanged}

func init() {
	for _, a := range actions {
		if !a.Valid() {
			audit.Actions = append(audit.Actions, a)
		}
	}
}
