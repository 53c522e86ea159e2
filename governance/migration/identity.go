package migration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/governance/e164"
	"github.com/passerelle/passerelle/governance/seal"
)

// Networks.
const (
	NetworkWhatsApp = "whatsapp"
	NetworkTelegram = "telegram"
)

// Errors a caller branches on.
var (
	ErrUnknownContact   = errors.New("not in the contact registry")
	ErrAmbiguousContact = errors.New("matches more than one contact")
	ErrBadIdentity      = errors.New("not a phone number, Telegram @username, Telegram user ID or remote ID")
	ErrBadMatrixID      = errors.New("not a valid Matrix user ID")
	ErrNotLinked        = errors.New("not in the directory")
	ErrNotPending       = errors.New("the link is not pending")
)

// Identity is an outside identity as the registry stores it.
type Identity struct {
	Network string `json:"network"`
	// Contact is audit.Registry.Key of the remote ID (a keyed hash in
	// hashed mode).
	Contact string `json:"contact"`
}

// ValidateMatrixID checks that s is a Matrix user ID of any server.
func ValidateMatrixID(s string) (id.UserID, error) {
	s = strings.TrimSpace(s)
	userID := id.UserID(s)
	if !strings.HasPrefix(s, "@") || len(s) > 255 {
		return "", fmt.Errorf("%q is %w", s, ErrBadMatrixID)
	}
	localpart, server, err := userID.ParseAndValidateRelaxed()
	if err != nil || localpart == "" || server == "" || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return "", fmt.Errorf("%q is %w", s, ErrBadMatrixID)
	}
	return userID, nil
}

const findContactQuery = `SELECT network, remote_id FROM governance_contact WHERE `

// Resolve finds the registry contact that identity names: a phone number
// (normalised with e164), a Telegram @username, a Telegram user ID, or a
// remote ID ("whatsapp.336…"). "whatsapp:" or "telegram:" in front limits it
// to that network.
func (d *Directory) Resolve(ctx context.Context, identity string) (Identity, error) {
	raw := strings.TrimSpace(identity)
	network := ""
	if n, rest, ok := strings.Cut(raw, ":"); ok && (n == NetworkWhatsApp || n == NetworkTelegram) {
		network, raw = n, strings.TrimSpace(rest)
	}
	var cond string
	var args []any
	switch {
	case raw == "":
		return Identity{}, fmt.Errorf("empty identity: %w", ErrBadIdentity)
	case strings.HasPrefix(raw, "@"):
		name := strings.ToLower(strings.TrimPrefix(raw, "@"))
		if name == "" || strings.ContainsAny(name, " \t:") {
			return Identity{}, fmt.Errorf("%q is %w", identity, ErrBadIdentity)
		}
		if network == "" {
			network = NetworkTelegram
		}
		cond, args = "username = $1", []any{d.seal.Pseudonym(seal.KindUsername, name)}
	case strings.HasPrefix(raw, "+") || strings.HasPrefix(raw, "00"):
		phone, err := e164.Normalize(raw)
		if err != nil {
			return Identity{}, fmt.Errorf("%q is %w: %v", identity, ErrBadIdentity, err)
		}
		cond, args = "phone = $1", []any{d.seal.Pseudonym(seal.KindPhone, phone)}
	case e164.IsDigits(raw):
		if network == "" {
			network = NetworkTelegram
		}
		if _, err := strconv.ParseInt(raw, 10, 64); err != nil {
			return Identity{}, fmt.Errorf("%q is %w", identity, ErrBadIdentity)
		}
		cond, args = "remote_id = $1", []any{d.reg.Key(networkid.UserID(netid.Join(network, raw)))}
	default:
		n, _, err := netid.Split(raw)
		if err != nil || (n != NetworkWhatsApp && n != NetworkTelegram) {
			return Identity{}, fmt.Errorf("%q is %w", identity, ErrBadIdentity)
		}
		cond, args = "remote_id = $1", []any{d.reg.Key(networkid.UserID(raw))}
	}
	if network != "" {
		cond += " AND network = $2"
		args = append(args, network)
	}
	rows, err := d.db.Query(ctx, findContactQuery+cond+" ORDER BY network, remote_id LIMIT 3", args...)
	if err != nil {
		return Identity{}, fmt.Errorf("failed to look up contact: %w", err)
	}
	defer rows.Close()
	var found []Identity
	for rows.Next() {
		var ident Identity
		if err = rows.Scan(&ident.Network, &ident.Contact); err != nil {
			return Identity{}, fmt.Errorf("failed to read contact: %w", err)
		}
		found = append(found, ident)
	}
	if err = rows.Err(); err != nil {
		return Identity{}, fmt.Errorf("failed to read contacts: %w", err)
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("%q is %w", identity, ErrUnknownContact)
	case 1:
		return found[0], nil
	default:
		return Identity{}, fmt.Errorf("%q %w: write whatsapp:… or telegram:… before it", identity, ErrAmbiguousContact)
	}
}
