package gate

import (
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/governance/seal"
)

// In hashed mode (contact_hash_key set), what admins see of a portal, a
// login or an outside user is its pseudonym, the same that the audit log
// and the contact registry keep, so that the outputs cross-reference
// without holding a number. Without a key, the values themselves.

// ShownPortal is a portal ID as admins see it.
func (g *Gate) ShownPortal(portalID networkid.PortalID) string {
	return g.Seal.Pseudonym(seal.KindPortal, string(portalID))
}

// ShownLogin is a login ID (or a portal's receiver) as admins see it.
func (g *Gate) ShownLogin(loginID networkid.UserLoginID) string {
	return g.Seal.Pseudonym(seal.KindLogin, string(loginID))
}

// ShownUser is a remote user ID as admins see it: in hashed mode, its
// contact registry key.
func (g *Gate) ShownUser(userID networkid.UserID) string {
	return g.Seal.Pseudonym(seal.KindRemoteID, string(userID))
}

// ShownName is a remote name as admins see it: in hashed mode, nothing if
// it looks like a number (a chat without a name is often named after one).
func (g *Gate) ShownName(name string) string {
	if g.Seal.On() && seal.LooksLikeNumber(name) {
		return ""
	}
	return name
}
