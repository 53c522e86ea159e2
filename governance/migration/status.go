package migration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Status is where a contact is in the migration.
type Status string

const (
	StatusBridged Status = "bridged"  // talks with staff through a portal
	StatusInvited Status = "invited"  // was invited to Matrix
	StatusLinked  Status = "linked"   // has a Matrix account in the directory
	StatusCutOver Status = "cut_over" // a native Matrix room is in use
	StatusRetired Status = "retired"  // the portal is closed
)

// Statuses lists the statuses in migration order.
var Statuses = []Status{StatusBridged, StatusInvited, StatusLinked, StatusCutOver, StatusRetired}

const (
	getStatusQuery    = `SELECT status, changed_at FROM governance_migration_status WHERE network = $1 AND contact = $2`
	upsertStatusQuery = `
		INSERT INTO governance_migration_status (network, contact, status, changed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (network, contact) DO UPDATE SET status = excluded.status, changed_at = excluded.changed_at
	`
	summaryQuery = `
		SELECT c.network, COALESCE(s.status, 'bridged'), COUNT(*)
		FROM governance_contact c
		LEFT JOIN governance_migration_status s ON s.network = c.network AND s.contact = c.remote_id
		GROUP BY c.network, COALESCE(s.status, 'bridged')
	`
)

// Status returns the status of ident (bridged when never changed) and when
// it last changed (zero when never).
func (d *Directory) Status(ctx context.Context, ident Identity) (Status, time.Time, error) {
	var st string
	var at int64
	err := d.db.QueryRow(ctx, getStatusQuery, ident.Network, ident.Contact).Scan(&st, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return StatusBridged, time.Time{}, nil
	} else if err != nil {
		return "", time.Time{}, fmt.Errorf("failed to get migration status: %w", err)
	}
	return Status(st), time.UnixMilli(at).UTC(), nil
}

// setStatus moves ident to status if its current status is one of from
// (any when from is empty), and audits the change.
func (d *Directory) setStatus(ctx context.Context, actor string, ident Identity, status Status, from ...Status) error {
	cur, _, err := d.Status(ctx, ident)
	if err != nil {
		return err
	}
	if cur == status {
		return nil
	}
	if len(from) > 0 && !contains(from, cur) {
		return nil
	}
	if _, err = d.db.Exec(ctx, upsertStatusQuery, ident.Network, ident.Contact, string(status), d.now().UnixMilli()); err != nil {
		return fmt.Errorf("failed to store migration status: %w", err)
	}
	return d.audit(ctx, actor, ActionStatusChanged, ident, map[string]any{"from": cur, "to": status})
}

func contains(list []Status, s Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// MarkInvited records that ident was invited (from bridged only: a linked
// contact stays linked). For the invitations part.
func (d *Directory) MarkInvited(ctx context.Context, actor string, ident Identity) error {
	return d.inTxn(ctx, func(ctx context.Context) error {
		return d.setStatus(ctx, actor, ident, StatusInvited, StatusBridged)
	})
}

// MarkCutOver records that ident's chats moved to a native Matrix room.
// For the cut-over part.
func (d *Directory) MarkCutOver(ctx context.Context, actor string, ident Identity) error {
	return d.inTxn(ctx, func(ctx context.Context) error {
		return d.setStatus(ctx, actor, ident, StatusCutOver)
	})
}

// MarkRetired records that ident's portals are closed. For the deadlines
// part.
func (d *Directory) MarkRetired(ctx context.Context, actor string, ident Identity) error {
	return d.inTxn(ctx, func(ctx context.Context) error {
		return d.setStatus(ctx, actor, ident, StatusRetired)
	})
}

func (d *Directory) inTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	return d.db.DoTxn(ctx, nil, fn)
}

// Summary counts the registry's contacts per network and status:
// counts[network][status]; every status of Statuses is present for each
// network with contacts.
func (d *Directory) Summary(ctx context.Context) (map[string]map[Status]int64, error) {
	rows, err := d.db.Query(ctx, summaryQuery)
	if err != nil {
		return nil, fmt.Errorf("failed to count migration statuses: %w", err)
	}
	defer rows.Close()
	out := map[string]map[Status]int64{}
	for rows.Next() {
		var network, st string
		var n int64
		if err = rows.Scan(&network, &st, &n); err != nil {
			return nil, fmt.Errorf("failed to read migration status count: %w", err)
		}
		if out[network] == nil {
			out[network] = map[Status]int64{}
			for _, s := range Statuses {
				out[network][s] = 0
			}
		}
		out[network][Status(st)] += n
	}
	return out, rows.Err()
}

// ContactReport is what the directory knows of one contact.
type ContactReport struct {
	Identity
	Status        Status    `json:"status"`
	StatusChanged time.Time `json:"status_changed,omitempty"`
	Link          *Entry    `json:"link,omitempty"`
}

// Contact reports on the contact that identity names (as Resolve reads it).
func (d *Directory) Contact(ctx context.Context, identity string) (*ContactReport, error) {
	if err := d.reg.Flush(ctx); err != nil {
		return nil, err
	}
	ident, err := d.Resolve(ctx, identity)
	if err != nil {
		return nil, err
	}
	st, at, err := d.Status(ctx, ident)
	if err != nil {
		return nil, err
	}
	link, err := d.Get(ctx, ident)
	if err != nil {
		return nil, err
	}
	return &ContactReport{Identity: ident, Status: st, StatusChanged: at, Link: link}, nil
}
