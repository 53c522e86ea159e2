package migration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/internal/lru"
)

// Source is how a link was made.
type Source string

const (
	SourceImport Source = "import" // an admin's CSV import
	SourceAdmin  Source = "admin"  // an admin's command or API call
	SourceStaff  Source = "staff"  // a staff member who knows the contact
	SourceClaim  Source = "claim"  // the contact, with a claim code
)

// State of a link.
type State string

const (
	StatePending   State = "pending"   // a staff member's link, until confirmed
	StateConfirmed State = "confirmed" // in use
)

// StaffLinks is the organisation's choice for staff members' links
// (config migration.staff_links).
type StaffLinks string

const (
	StaffLinksConfirm StaffLinks = "confirm" // pending until the contact or an admin confirms
	StaffLinksTrust   StaffLinks = "trust"   // confirmed at once
)

// Entry is one link of the directory.
type Entry struct {
	Identity
	MatrixID   id.UserID `json:"matrix_id"`
	Department string    `json:"department,omitempty"`
	Label      string    `json:"label,omitempty"`
	Source     Source    `json:"source"`
	State      State     `json:"state"`
	LinkedBy   string    `json:"linked_by"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Limits of the free-text fields.
const (
	MaxDepartmentLength = 100
	MaxLabelLength      = 200
)

// Directory links outside identities of the contact registry to Matrix
// accounts. Every change is an audit entry.
type Directory struct {
	db   *dbutil.Database
	log  *audit.Log
	reg  *audit.Registry
	seal *seal.Sealer
	// StaffLinks is how staff members' links start; StaffLinksConfirm when
	// empty.
	StaffLinks StaffLinks
	// ClaimTTL is how long a claim code is valid; DefaultClaimTTL when 0.
	ClaimTTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// notCutOver remembers portals read as not cut over: the gate looks
	// for a cut-over on every inbound message, and a cut-over is rare and
	// made by this process only (RecordCutOver), which forgets its portal.
	// cutOverGen counts the cut-overs recorded, so that a read that raced
	// with one does not remember a stale answer.
	cutOverMu  sync.Mutex
	notCutOver *lru.Cache[networkid.PortalKey, struct{}]
	cutOverGen uint64
}

// notCutOverSize bounds the portals remembered as not cut over.
const notCutOverSize = 4096

// New returns the directory stored in db (store.Open), writing to log,
// naming contacts as reg does; s is the registry's sealer (nil: hashed mode
// off).
func New(db *dbutil.Database, log *audit.Log, reg *audit.Registry, s *seal.Sealer) *Directory {
	return &Directory{db: db, log: log, reg: reg, seal: s, notCutOver: lru.New[networkid.PortalKey, struct{}](notCutOverSize)}
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

const entryColumns = "network, contact, matrix_id, department, label, source, state, linked_by, created_at, updated_at"

const (
	getEntryQuery    = `SELECT ` + entryColumns + ` FROM governance_directory WHERE network = $1 AND contact = $2`
	insertEntryQuery = `
		INSERT INTO governance_directory (` + entryColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
	`
	updateEntryQuery = `
		UPDATE governance_directory SET matrix_id = $3, department = $4, label = $5, source = $6, state = $7,
			linked_by = $8, updated_at = $9
		WHERE network = $1 AND contact = $2
	`
	deleteEntryQuery = `DELETE FROM governance_directory WHERE network = $1 AND contact = $2`
)

func scanEntry(row dbutil.Scannable) (*Entry, error) {
	var e Entry
	var created, updated int64
	err := row.Scan(&e.Network, &e.Contact, &e.MatrixID, &e.Department, &e.Label, &e.Source, &e.State, &e.LinkedBy, &created, &updated)
	if err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &e, nil
}

// Get returns the link of ident, or nil.
func (d *Directory) Get(ctx context.Context, ident Identity) (*Entry, error) {
	e, err := scanEntry(d.db.QueryRow(ctx, getEntryQuery, ident.Network, ident.Contact))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get directory entry: %w", err)
	}
	return e, nil
}

// LinkRequest is a link to make or correct.
type LinkRequest struct {
	Identity   Identity
	MatrixID   id.UserID
	Department string
	Label      string
	Source     Source
}

func (d *Directory) initialState(src Source) State {
	if src == SourceStaff && d.StaffLinks != StaffLinksTrust {
		return StatePending
	}
	return StateConfirmed
}

func cleanField(s string, max int, name string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > max {
		return "", fmt.Errorf("%s is longer than %d bytes", name, max)
	}
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", fmt.Errorf("%s has a line break", name)
	}
	return s, nil
}

// Link links an identity to a Matrix account (or corrects its link: a new
// Matrix ID, department or label), as actor. A staff member's link is
// pending unless StaffLinks is trust; any other source confirms. A staff
// member cannot overwrite a confirmed link. The change is audited; a
// confirmed link makes the contact "linked".
func (d *Directory) Link(ctx context.Context, actor string, req LinkRequest) (*Entry, error) {
	userID, err := ValidateMatrixID(string(req.MatrixID))
	if err != nil {
		return nil, err
	}
	dept, err := cleanField(req.Department, MaxDepartmentLength, "department")
	if err != nil {
		return nil, err
	}
	label, err := cleanField(req.Label, MaxLabelLength, "label")
	if err != nil {
		return nil, err
	}
	switch req.Source {
	case SourceImport, SourceAdmin, SourceStaff, SourceClaim:
	default:
		return nil, fmt.Errorf("unknown link source %q", req.Source)
	}
	if req.Identity.Network == "" || req.Identity.Contact == "" {
		return nil, fmt.Errorf("identity: %w", ErrBadIdentity)
	}
	var out *Entry
	err = d.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		old, err := d.Get(ctx, req.Identity)
		if err != nil {
			return err
		}
		now := d.now()
		e := Entry{Identity: req.Identity, MatrixID: userID, Department: dept, Label: label, Source: req.Source,
			State: d.initialState(req.Source), LinkedBy: actor, CreatedAt: now, UpdatedAt: now}
		action := ActionDirectoryLinked
		details := map[string]any{"matrix_id": userID, "source": req.Source, "state": e.State}
		if dept != "" {
			details["department"] = dept
		}
		if label != "" {
			details["label"] = label
		}
		if old != nil {
			if req.Source == SourceStaff && old.State == StateConfirmed {
				return fmt.Errorf("the contact is already linked to %s: only an admin can change it", old.MatrixID)
			}
			if old.MatrixID == userID && old.Department == dept && old.Label == label && (old.State == e.State || old.State == StateConfirmed) {
				out = old
				return nil // nothing changes
			}
			if e.Department == "" {
				e.Department = old.Department
			}
			if e.Label == "" {
				e.Label = old.Label
			}
			e.CreatedAt = old.CreatedAt
			action = ActionDirectoryCorrected
			if old.MatrixID != userID {
				details["previous_matrix_id"] = old.MatrixID
			} else if old.State == StatePending && e.State == StateConfirmed {
				action = ActionDirectoryConfirmed
			}
			_, err = d.db.Exec(ctx, updateEntryQuery, e.Network, e.Contact, e.MatrixID, e.Department, e.Label, e.Source, e.State, e.LinkedBy, e.UpdatedAt.UnixMilli())
		} else {
			_, err = d.db.Exec(ctx, insertEntryQuery, e.Network, e.Contact, e.MatrixID, e.Department, e.Label, e.Source, e.State, e.LinkedBy, e.CreatedAt.UnixMilli(), e.UpdatedAt.UnixMilli())
		}
		if err != nil {
			return fmt.Errorf("failed to store directory entry: %w", err)
		}
		if err = d.audit(ctx, actor, action, e.Identity, details); err != nil {
			return err
		}
		if e.State == StateConfirmed {
			if err = d.setStatus(ctx, actor, e.Identity, StatusLinked, StatusBridged, StatusInvited); err != nil {
				return err
			}
		}
		out = &e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Confirm confirms a pending link, as actor (an admin, or the contact).
func (d *Directory) Confirm(ctx context.Context, actor string, ident Identity) (*Entry, error) {
	var out *Entry
	err := d.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		e, err := d.Get(ctx, ident)
		if err != nil {
			return err
		} else if e == nil {
			return ErrNotLinked
		} else if e.State != StatePending {
			return ErrNotPending
		}
		e.State, e.UpdatedAt = StateConfirmed, d.now()
		if _, err = d.db.Exec(ctx, updateEntryQuery, e.Network, e.Contact, e.MatrixID, e.Department, e.Label, e.Source, e.State, e.LinkedBy, e.UpdatedAt.UnixMilli()); err != nil {
			return fmt.Errorf("failed to confirm directory entry: %w", err)
		}
		if err = d.audit(ctx, actor, ActionDirectoryConfirmed, ident, map[string]any{"matrix_id": e.MatrixID, "source": e.Source}); err != nil {
			return err
		}
		if err = d.setStatus(ctx, actor, ident, StatusLinked, StatusBridged, StatusInvited); err != nil {
			return err
		}
		out = e
		return nil
	})
	return out, err
}

// Unlink removes the link of ident, as actor; a linked contact is bridged
// again.
func (d *Directory) Unlink(ctx context.Context, actor string, ident Identity) (*Entry, error) {
	var out *Entry
	err := d.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		e, err := d.Get(ctx, ident)
		if err != nil {
			return err
		} else if e == nil {
			return ErrNotLinked
		}
		if _, err = d.db.Exec(ctx, deleteEntryQuery, ident.Network, ident.Contact); err != nil {
			return fmt.Errorf("failed to delete directory entry: %w", err)
		}
		if err = d.audit(ctx, actor, ActionDirectoryUnlinked, ident, map[string]any{"matrix_id": e.MatrixID}); err != nil {
			return err
		}
		if err = d.setStatus(ctx, actor, ident, StatusBridged, StatusLinked); err != nil {
			return err
		}
		out = e
		return nil
	})
	return out, err
}

// ListFilter selects directory entries; zero fields select everything.
type ListFilter struct {
	Network    string
	State      State
	MatrixID   id.UserID
	Department string
	Limit      int // at most MaxList; MaxList when 0
	Offset     int
}

// MaxList is the most entries List returns at once.
const MaxList = 1000

// List returns the entries f selects, oldest first.
func (d *Directory) List(ctx context.Context, f ListFilter) ([]Entry, error) {
	var where []string
	var args []any
	add := func(col string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
	}
	if f.Network != "" {
		add("network", f.Network)
	}
	if f.State != "" {
		add("state", string(f.State))
	}
	if f.MatrixID != "" {
		add("matrix_id", string(f.MatrixID))
	}
	if f.Department != "" {
		add("department", f.Department)
	}
	q := `SELECT ` + entryColumns + ` FROM governance_directory`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	q += fmt.Sprintf(" ORDER BY created_at, network, contact LIMIT %d OFFSET %d", limit, max(f.Offset, 0))
	rows, err := d.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list directory: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to read directory entry: %w", err)
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

func (d *Directory) audit(ctx context.Context, actor string, action audit.Action, ident Identity, details map[string]any) error {
	if d.log == nil {
		return nil
	}
	if _, err := d.log.Append(ctx, audit.Entry{Actor: actor, Action: action, Network: ident.Network, Contact: ident.Contact, Details: audit.Details(details)}); err != nil {
		return fmt.Errorf("failed to audit %s: %w", action, err)
	}
	return nil
}

// Knows reports whether the staff member staff has talked with ident (the
// registry has a link between them): a staff member may only link contacts
// they know.
func (d *Directory) Knows(ctx context.Context, ident Identity, staff id.UserID) (bool, error) {
	var n int
	err := d.db.QueryRow(ctx, `SELECT COUNT(*) FROM governance_contact_link WHERE network = $1 AND remote_id = $2 AND staff = $3`,
		ident.Network, ident.Contact, string(staff)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("failed to look up contact links: %w", err)
	}
	return n > 0, nil
}
