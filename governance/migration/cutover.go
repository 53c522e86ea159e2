package migration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/seal"
)

// ActionCutOver is the audit action of a cut-over.
const ActionCutOver = audit.ActionCutOver

// CutOverKind tells a direct chat from a group.
type CutOverKind string

const (
	KindDM    CutOverKind = "dm"
	KindGroup CutOverKind = "group"
)

// Who created the native room of a cut-over.
const (
	CreatedAsStaff = "staff" // the staff member, through double puppeting
	CreatedAsBot   = "bot"   // the bridge bot, which invited everyone
)

// ErrAlreadyCutOver is returned for a portal that was already cut over.
var ErrAlreadyCutOver = errors.New("this chat was already cut over")

// CutOver is a portal that moved to a native Matrix room.
type CutOver struct {
	// Portal is the portal key as the registry stores it (pseudonyms in
	// hashed mode).
	Portal    networkid.PortalKey `json:"portal"`
	Network   string              `json:"network"`
	Kind      CutOverKind         `json:"kind"`
	OldRoom   id.RoomID           `json:"old_room"`
	NewRoom   id.RoomID           `json:"new_room"`
	Staff     id.UserID           `json:"staff"`
	Contact   string              `json:"contact,omitempty"`
	Actor     string              `json:"actor"`
	CreatedAs string              `json:"created_as"`
	At        time.Time           `json:"at"`
}

const cutOverColumns = "portal_id, portal_receiver, network, kind, old_room, new_room, staff, contact, actor, created_as, cut_at"

const (
	getCutOverQuery    = `SELECT ` + cutOverColumns + ` FROM governance_cutover WHERE portal_id = $1 AND portal_receiver = $2`
	insertCutOverQuery = `INSERT INTO governance_cutover (` + cutOverColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	getReminderQuery   = `SELECT last_at FROM governance_cutover_reminder WHERE network = $1 AND contact = $2`
	upsertReminder     = `
		INSERT INTO governance_cutover_reminder (network, contact, last_at) VALUES ($1, $2, $3)
		ON CONFLICT (network, contact) DO UPDATE SET last_at = excluded.last_at
	`
	getPinQuery    = `SELECT room_id, event_id FROM governance_cutover_pin WHERE portal_id = $1 AND portal_receiver = $2`
	upsertPinQuery = `
		INSERT INTO governance_cutover_pin (portal_id, portal_receiver, room_id, event_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (portal_id, portal_receiver) DO UPDATE SET room_id = excluded.room_id, event_id = excluded.event_id
	`
)

func scanCutOver(row dbutil.Scannable) (*CutOver, error) {
	var c CutOver
	var at int64
	err := row.Scan(&c.Portal.ID, &c.Portal.Receiver, &c.Network, &c.Kind, &c.OldRoom, &c.NewRoom, &c.Staff, &c.Contact, &c.Actor, &c.CreatedAs, &at)
	if err != nil {
		return nil, err
	}
	c.At = time.UnixMilli(at).UTC()
	return &c, nil
}

// StoredPortal is a portal key as the registry and the cut-over table
// store it: pseudonyms in hashed mode, the key itself otherwise.
func (d *Directory) StoredPortal(key networkid.PortalKey) networkid.PortalKey {
	out := networkid.PortalKey{ID: networkid.PortalID(d.seal.Pseudonym(seal.KindPortal, string(key.ID)))}
	if key.Receiver != "" {
		out.Receiver = networkid.UserLoginID(d.seal.Pseudonym(seal.KindLogin, string(key.Receiver)))
	}
	return out
}

// CutOverOf returns the cut-over of the portal key (as bridgev2 names it),
// or nil.
func (d *Directory) CutOverOf(ctx context.Context, key networkid.PortalKey) (*CutOver, error) {
	stored := d.StoredPortal(key)
	if d.notCutOver == nil {
		return d.storedCutOver(ctx, stored)
	}
	d.cutOverMu.Lock()
	_, known := d.notCutOver.Get(stored)
	gen := d.cutOverGen
	d.cutOverMu.Unlock()
	if known {
		return nil, nil
	}
	c, err := d.storedCutOver(ctx, stored)
	if err == nil && c == nil {
		d.cutOverMu.Lock()
		if d.cutOverGen == gen {
			d.notCutOver.Put(stored, struct{}{})
		}
		d.cutOverMu.Unlock()
	}
	return c, err
}

func (d *Directory) storedCutOver(ctx context.Context, stored networkid.PortalKey) (*CutOver, error) {
	c, err := scanCutOver(d.db.QueryRow(ctx, getCutOverQuery, string(stored.ID), string(stored.Receiver)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get cut-over: %w", err)
	}
	return c, nil
}

// RecordCutOver records that the portal key moved to c.NewRoom, as actor:
// the row (c.Portal is the bridgev2 key, stored as StoredPortal names it),
// an audit entry, and the status cut_over for each contact.
func (d *Directory) RecordCutOver(ctx context.Context, c CutOver, contacts []Identity) (*CutOver, error) {
	c.Portal = d.StoredPortal(c.Portal)
	c.At = d.now().UTC().Truncate(time.Millisecond)
	err := d.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if old, err := d.storedCutOver(ctx, c.Portal); err != nil {
			return err
		} else if old != nil {
			return ErrAlreadyCutOver
		}
		_, err := d.db.Exec(ctx, insertCutOverQuery, string(c.Portal.ID), string(c.Portal.Receiver), c.Network, string(c.Kind),
			string(c.OldRoom), string(c.NewRoom), string(c.Staff), c.Contact, c.Actor, c.CreatedAs, c.At.UnixMilli())
		if err != nil {
			return fmt.Errorf("failed to store cut-over: %w", err)
		}
		if d.log != nil {
			_, err = d.log.Append(ctx, audit.Entry{Actor: c.Actor, Action: ActionCutOver, Network: c.Network, Contact: c.Contact,
				Staff: c.Staff, Portal: c.Portal.ID, Details: audit.Details(map[string]any{
					"kind": c.Kind, "old_room": c.OldRoom, "new_room": c.NewRoom, "created_as": c.CreatedAs,
					"receiver": c.Portal.Receiver, "contacts": len(contacts)})})
			if err != nil {
				return fmt.Errorf("failed to audit cut-over: %w", err)
			}
		}
		for _, ident := range contacts {
			if err = d.setStatus(ctx, c.Actor, ident, StatusCutOver); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d.notCutOver != nil {
		d.cutOverMu.Lock()
		d.cutOverGen++
		d.notCutOver.Remove(c.Portal)
		d.cutOverMu.Unlock()
	}
	return &c, nil
}

// ReminderDue tells whether ident may be reminded now that the chat moved
// (never, or not within interval), and if so notes the reminder as sent
// now: at most one per contact per interval, across restarts.
func (d *Directory) ReminderDue(ctx context.Context, ident Identity, interval time.Duration) (bool, error) {
	due := false
	err := d.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		now := d.now()
		var last int64
		err := d.db.QueryRow(ctx, getReminderQuery, ident.Network, ident.Contact).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("failed to get last reminder: %w", err)
		}
		if err == nil && now.Sub(time.UnixMilli(last)) < interval {
			return nil
		}
		if _, err = d.db.Exec(ctx, upsertReminder, ident.Network, ident.Contact, now.UnixMilli()); err != nil {
			return fmt.Errorf("failed to note reminder: %w", err)
		}
		due = true
		return nil
	})
	return due, err
}

// Pin returns the room and event of the pinned "still missing" notice of a
// group portal, if any.
func (d *Directory) Pin(ctx context.Context, key networkid.PortalKey) (id.RoomID, id.EventID, error) {
	stored := d.StoredPortal(key)
	var room, evt string
	err := d.db.QueryRow(ctx, getPinQuery, string(stored.ID), string(stored.Receiver)).Scan(&room, &evt)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	} else if err != nil {
		return "", "", fmt.Errorf("failed to get pinned notice: %w", err)
	}
	return id.RoomID(room), id.EventID(evt), nil
}

// SetPin notes the pinned "still missing" notice of a group portal.
func (d *Directory) SetPin(ctx context.Context, key networkid.PortalKey, room id.RoomID, evt id.EventID) error {
	stored := d.StoredPortal(key)
	if _, err := d.db.Exec(ctx, upsertPinQuery, string(stored.ID), string(stored.Receiver), string(room), string(evt)); err != nil {
		return fmt.Errorf("failed to store pinned notice: %w", err)
	}
	return nil
}

// MaxCutOvers is the most cut-overs CutOvers returns.
const MaxCutOvers = 1000

// CutOvers lists the cut-overs, newest first: all, or those of staff.
func (d *Directory) CutOvers(ctx context.Context, staff id.UserID) ([]CutOver, error) {
	q := `SELECT ` + cutOverColumns + ` FROM governance_cutover`
	var args []any
	if staff != "" {
		q += ` WHERE staff = $1`
		args = append(args, string(staff))
	}
	q += fmt.Sprintf(` ORDER BY cut_at DESC, portal_id LIMIT %d`, MaxCutOvers)
	rows, err := d.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list cut-overs: %w", err)
	}
	defer rows.Close()
	out := []CutOver{}
	for rows.Next() {
		c, err := scanCutOver(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to read cut-over: %w", err)
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}
