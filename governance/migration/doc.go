// Package migration tracks an organisation's move from WhatsApp and
// Telegram to Matrix (DESIGN.md, decision 10): a directory linking outside
// identities of the contact registry to Matrix accounts, claim codes with
// which a contact links themselves, and the migration status of each
// contact. It is network-agnostic: contacts are named as the registry
// stores them (network and audit.Registry.Key of the remote ID), so hashed
// mode keeps working.
package migration

import "github.com/passerelle/passerelle/governance/audit"

// Audit actions of the migration (listed in audit.Actions).
const (
	ActionDirectoryLinked    = audit.ActionDirectoryLinked
	ActionDirectoryCorrected = audit.ActionDirectoryCorrected
	ActionDirectoryConfirmed = audit.ActionDirectoryConfirmed
	ActionDirectoryUnlinked  = audit.ActionDirectoryUnlinked
	ActionClaimIssued        = audit.ActionClaimIssued
	ActionStatusChanged      = audit.ActionStatusChanged
)
