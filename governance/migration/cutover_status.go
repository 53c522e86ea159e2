package migration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/seal"
)

// PortalContact is one outside contact of a portal, with where it is in the
// migration.
type PortalContact struct {
	Identity
	// Portal is the portal, as the registry stores it; Login the login of
	// the staff member who talked with the contact there.
	Portal   networkid.PortalID    `json:"portal"`
	Login    networkid.UserLoginID `json:"login"`
	Staff    id.UserID             `json:"staff"`
	Status   Status                `json:"status"`
	MatrixID id.UserID             `json:"matrix_id,omitempty"`
	// LinkState is pending or confirmed when the contact has a link.
	LinkState State `json:"link_state,omitempty"`
	// NewRoom is the native room of the portal's cut-over, if any.
	NewRoom id.RoomID `json:"new_room,omitempty"`
}

// Linked reports whether the contact has a confirmed Matrix account.
func (pc PortalContact) Linked() bool { return pc.LinkState == StateConfirmed && pc.MatrixID != "" }

// MaxPortalContacts bounds the rows of a staff member's or a chat's view.
const MaxPortalContacts = 1000

const portalContactsQuery = `
	SELECT l.network, l.remote_id, l.portal, l.login, l.staff, COALESCE(s.status, 'bridged'),
		COALESCE(dr.matrix_id, ''), COALESCE(dr.state, ''), COALESCE(c.new_room, '')
	FROM governance_contact_link l
	LEFT JOIN governance_migration_status s ON s.network = l.network AND s.contact = l.remote_id
	LEFT JOIN governance_directory dr ON dr.network = l.network AND dr.contact = l.remote_id
	LEFT JOIN governance_cutover c ON c.portal_id = l.portal AND (c.portal_receiver = l.login OR c.portal_receiver = '')
	WHERE %s
	ORDER BY l.network, l.portal, l.remote_id, l.login
	LIMIT %d
`

func (d *Directory) portalContacts(ctx context.Context, where string, args ...any) ([]PortalContact, error) {
	rows, err := d.db.Query(ctx, fmt.Sprintf(portalContactsQuery, where, MaxPortalContacts), args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list portal contacts: %w", err)
	}
	defer rows.Close()
	out := []PortalContact{}
	for rows.Next() {
		var pc PortalContact
		if err = rows.Scan(&pc.Network, &pc.Contact, &pc.Portal, &pc.Login, &pc.Staff, &pc.Status, &pc.MatrixID, &pc.LinkState, &pc.NewRoom); err != nil {
			return nil, fmt.Errorf("failed to read portal contact: %w", err)
		}
		out = append(out, pc)
	}
	return out, rows.Err()
}

// StaffContacts lists the contacts staff talks with, per portal, with their
// migration status, link and the portal's cut-over.
func (d *Directory) StaffContacts(ctx context.Context, staff id.UserID) ([]PortalContact, error) {
	return d.portalContacts(ctx, "l.staff = $1", string(staff))
}

// IdentityChats lists the chats of one contact, every staff member's.
func (d *Directory) IdentityChats(ctx context.Context, ident Identity) ([]PortalContact, error) {
	return d.portalContacts(ctx, "l.network = $1 AND l.remote_id = $2", ident.Network, ident.Contact)
}

// DistinctContacts keeps the first row of each identity, in order.
func DistinctContacts(rows []PortalContact) []PortalContact {
	seen := map[Identity]bool{}
	var out []PortalContact
	for _, r := range rows {
		if !seen[r.Identity] {
			seen[r.Identity] = true
			out = append(out, r)
		}
	}
	return out
}

// ChatContacts lists the outside contacts of the portal key (as bridgev2
// names it): for a direct chat, those of its receiver's login only.
func (d *Directory) ChatContacts(ctx context.Context, key networkid.PortalKey) ([]PortalContact, error) {
	stored := d.StoredPortal(key)
	if stored.Receiver != "" {
		return d.portalContacts(ctx, "l.portal = $1 AND l.login = $2", string(stored.ID), string(stored.Receiver))
	}
	return d.portalContacts(ctx, "l.portal = $1", string(stored.ID))
}

// ChatReport is the migration status of one portal.
type ChatReport struct {
	Portal   networkid.PortalKey `json:"portal"`
	CutOver  *CutOver            `json:"cut_over,omitempty"`
	Contacts []PortalContact     `json:"contacts"`
}

// Chat reports on the portal key: its cut-over and its contacts.
func (d *Directory) Chat(ctx context.Context, key networkid.PortalKey) (*ChatReport, error) {
	if err := d.reg.Flush(ctx); err != nil {
		return nil, err
	}
	c, err := d.CutOverOf(ctx, key)
	if err != nil {
		return nil, err
	}
	contacts, err := d.ChatContacts(ctx, key)
	if err != nil {
		return nil, err
	}
	return &ChatReport{Portal: d.StoredPortal(key), CutOver: c, Contacts: contacts}, nil
}

// ContactName names a contact for people: its newest display name and
// username (as the registry keeps them: in hashed mode, no number and no
// username), else its registry key.
func (d *Directory) ContactName(ctx context.Context, ident Identity) string {
	var username, namesJSON string
	err := d.db.QueryRow(ctx, `SELECT username, display_names FROM governance_contact WHERE network = $1 AND remote_id = $2`,
		ident.Network, ident.Contact).Scan(&username, &namesJSON)
	if err != nil {
		return ident.Contact
	}
	var names []string
	_ = json.Unmarshal([]byte(namesJSON), &names)
	var parts []string
	if len(names) > 0 && strings.TrimSpace(names[len(names)-1]) != "" {
		parts = append(parts, names[len(names)-1])
	}
	if username != "" && !seal.IsPseudonym(username) {
		parts = append(parts, "@"+username)
	}
	if len(parts) == 0 {
		return ident.Contact
	}
	return strings.Join(parts, " ")
}
