package migration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
)

// ActionDepartmentChanged is the audit action of a staff member's
// department being set or cleared (listed in audit.Actions).
const ActionDepartmentChanged = audit.ActionDepartmentChanged

// DepartmentSource is who set a staff member's department.
type DepartmentSource string

const (
	DepartmentAdmin  DepartmentSource = "admin"  // an admin's command or API call
	DepartmentConfig DepartmentSource = "config" // migration.departments in the config file
)

// ActorConfig is the actor of the changes the config file makes (their
// details say source config).
const ActorConfig = audit.ActorSystem

// Bounds of the department queries.
const (
	// MaxStaffDepartments is the most staff members StaffDepartments
	// returns (and the config file may name).
	MaxStaffDepartments = 10000
	// MaxActiveContacts is the most contacts ActiveContacts returns: the
	// most recently seen ones.
	MaxActiveContacts = 10000
)

// ErrUnknownDepartment is returned for a department no staff member is in.
var ErrUnknownDepartment = errors.New("no staff member is in that department")

const (
	getStaffDepartmentQuery = `SELECT department, source FROM governance_staff_department WHERE staff = $1`
	upsertStaffDepartment   = `
		INSERT INTO governance_staff_department (staff, department, source, set_by, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (staff) DO UPDATE SET department = excluded.department, source = excluded.source,
			set_by = excluded.set_by, updated_at = excluded.updated_at
	`
	deleteStaffDepartment = `DELETE FROM governance_staff_department WHERE staff = $1`
	listStaffDepartments  = `SELECT staff, department, source FROM governance_staff_department ORDER BY staff LIMIT $1`
)

// CleanDepartment trims a department name and checks its length and that
// it is on one line.
func CleanDepartment(dept string) (string, error) {
	return cleanField(dept, MaxDepartmentLength, "department")
}

// SetStaffDepartment puts the staff member staff in department dept ("":
// in none), as actor (an admin). The change is audited; an admin's choice
// stays when the config file names the staff member in another
// department.
func (d *Directory) SetStaffDepartment(ctx context.Context, actor string, staff id.UserID, dept string) error {
	if _, err := ValidateMatrixID(string(staff)); err != nil {
		return err
	}
	dept, err := CleanDepartment(dept)
	if err != nil {
		return err
	}
	return d.inTxn(ctx, func(ctx context.Context) error {
		_, err := d.setStaffDepartment(ctx, actor, staff, dept, DepartmentAdmin)
		return err
	})
}

// setStaffDepartment stores and audits a change; it reports whether
// anything changed.
func (d *Directory) setStaffDepartment(ctx context.Context, actor string, staff id.UserID, dept string, src DepartmentSource) (bool, error) {
	var old, oldSource string
	err := d.db.QueryRow(ctx, getStaffDepartmentQuery, string(staff)).Scan(&old, &oldSource)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("failed to get staff department: %w", err)
	}
	if old == dept && (dept == "" || oldSource == string(src)) {
		return false, nil
	}
	if dept == "" {
		_, err = d.db.Exec(ctx, deleteStaffDepartment, string(staff))
	} else {
		_, err = d.db.Exec(ctx, upsertStaffDepartment, string(staff), dept, string(src), actor, d.now().UnixMilli())
	}
	if err != nil {
		return false, fmt.Errorf("failed to store staff department: %w", err)
	}
	if old == dept {
		return true, nil // only the source changed: nothing to tell
	}
	if d.log != nil {
		_, err = d.log.Append(ctx, audit.Entry{Actor: actor, Action: ActionDepartmentChanged, Staff: staff,
			Details: audit.Details(map[string]any{"department": dept, "previous": old, "source": src})})
		if err != nil {
			return false, fmt.Errorf("failed to audit %s: %w", ActionDepartmentChanged, err)
		}
	}
	return true, nil
}

// ApplyConfigDepartments applies the config file's departments
// (migration.departments: department → staff members) at start: each
// named staff member is put in their department unless an admin set
// another; a staff member the config file put in a department and no
// longer names is taken out of it. It returns how many staff members
// changed.
func (d *Directory) ApplyConfigDepartments(ctx context.Context, departments map[string][]id.UserID) (int, error) {
	want, err := ConfigDepartments(departments)
	if err != nil {
		return 0, err
	}
	changed := 0
	err = d.inTxn(ctx, func(ctx context.Context) error {
		current, err := d.staffDepartments(ctx)
		if err != nil {
			return err
		}
		staff := make([]id.UserID, 0, len(want))
		for s := range want {
			staff = append(staff, s)
		}
		sort.Slice(staff, func(i, j int) bool { return staff[i] < staff[j] })
		for _, s := range staff {
			if cur, ok := current[s]; ok && cur.source == DepartmentAdmin {
				continue
			}
			ok, err := d.setStaffDepartment(ctx, ActorConfig, s, want[s], DepartmentConfig)
			if err != nil {
				return err
			}
			if ok {
				changed++
			}
		}
		for s, cur := range current {
			if _, named := want[s]; !named && cur.source == DepartmentConfig {
				if _, err := d.setStaffDepartment(ctx, ActorConfig, s, "", DepartmentConfig); err != nil {
					return err
				}
				changed++
			}
		}
		return nil
	})
	return changed, err
}

// ConfigDepartments checks the config file's departments and returns each
// staff member's: a staff member in two departments, a bad Matrix ID or a
// bad department name is an error.
func ConfigDepartments(departments map[string][]id.UserID) (map[id.UserID]string, error) {
	out := map[id.UserID]string{}
	names := make([]string, 0, len(departments))
	for name := range departments {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		dept, err := CleanDepartment(name)
		if err != nil {
			return nil, err
		} else if dept == "" {
			return nil, fmt.Errorf("a department has no name")
		}
		for _, s := range departments[name] {
			userID, err := ValidateMatrixID(string(s))
			if err != nil {
				return nil, fmt.Errorf("department %q: %w", dept, err)
			}
			if other, dup := out[userID]; dup && other != dept {
				return nil, fmt.Errorf("%s is in two departments, %q and %q", userID, other, dept)
			}
			out[userID] = dept
		}
	}
	if len(out) > MaxStaffDepartments {
		return nil, fmt.Errorf("more than %d staff members in departments", MaxStaffDepartments)
	}
	return out, nil
}

type staffDept struct {
	dept   string
	source DepartmentSource
}

func (d *Directory) staffDepartments(ctx context.Context) (map[id.UserID]staffDept, error) {
	rows, err := d.db.Query(ctx, listStaffDepartments, MaxStaffDepartments)
	if err != nil {
		return nil, fmt.Errorf("failed to list staff departments: %w", err)
	}
	defer rows.Close()
	out := map[id.UserID]staffDept{}
	for rows.Next() {
		var staff, dept, src string
		if err = rows.Scan(&staff, &dept, &src); err != nil {
			return nil, fmt.Errorf("failed to read staff department: %w", err)
		}
		out[id.UserID(staff)] = staffDept{dept: dept, source: DepartmentSource(src)}
	}
	return out, rows.Err()
}

// StaffDepartments returns each staff member's department (at most
// MaxStaffDepartments of them); a staff member in none is absent.
func (d *Directory) StaffDepartments(ctx context.Context) (map[id.UserID]string, error) {
	all, err := d.staffDepartments(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[id.UserID]string, len(all))
	for s, sd := range all {
		out[s] = sd.dept
	}
	return out, nil
}

// ActiveContact is an outside contact seen recently, with its department.
type ActiveContact struct {
	Identity
	// Department is the directory entry's department if it has one, else
	// the department of the staff member who talked with the contact most
	// recently ("" when that one is in none).
	Department string `json:"department"`
	// Staff are the staff members who talked with it, most recent first.
	Staff    []id.UserID `json:"staff"`
	LastSeen time.Time   `json:"last_seen"`
	Status   Status      `json:"status"`
}

// activeContactsQuery selects the contacts seen since $1 with their
// department, in department $2 ("" for all), most recently seen first.
const activeContactsQuery = `
	SELECT network, remote_id, last_seen, status, department FROM (
		SELECT c.network, c.remote_id, c.last_seen, COALESCE(s.status, 'bridged') AS status,
			COALESCE(NULLIF(dir.department, ''), (
				SELECT COALESCE(sd.department, '') FROM governance_contact_link l
				LEFT JOIN governance_staff_department sd ON sd.staff = l.staff
				WHERE l.network = c.network AND l.remote_id = c.remote_id AND l.staff <> ''
				ORDER BY l.last_seen DESC, l.staff LIMIT 1
			), '') AS department
		FROM governance_contact c
		LEFT JOIN governance_migration_status s ON s.network = c.network AND s.contact = c.remote_id
		LEFT JOIN governance_directory dir ON dir.network = c.network AND dir.contact = c.remote_id
		WHERE c.last_seen >= $1
	) active
	WHERE $2 = '' OR department = $2
	ORDER BY last_seen DESC, network, remote_id
	LIMIT $3
`

// activeStaffQuery lists who talked with the contacts seen since $1.
const activeStaffQuery = `
	SELECT l.network, l.remote_id, l.staff, MAX(l.last_seen) AS seen
	FROM governance_contact_link l
	JOIN governance_contact c ON c.network = l.network AND c.remote_id = l.remote_id
	WHERE c.last_seen >= $1 AND l.staff <> ''
	GROUP BY l.network, l.remote_id, l.staff
`

// ActiveContacts returns the contacts seen since since, in department
// ("" for every contact), most recently seen first: at most
// MaxActiveContacts of them (the most recent).
func (d *Directory) ActiveContacts(ctx context.Context, since time.Time, department string) ([]ActiveContact, error) {
	if err := d.reg.Flush(ctx); err != nil {
		return nil, err
	}
	department, err := CleanDepartment(department)
	if err != nil {
		return nil, err
	}
	rows, err := d.db.Query(ctx, activeContactsQuery, since.UnixMilli(), department, MaxActiveContacts)
	if err != nil {
		return nil, fmt.Errorf("failed to list active contacts: %w", err)
	}
	out := []ActiveContact{}
	index := map[Identity]int{}
	for rows.Next() {
		var c ActiveContact
		var seen int64
		var st string
		if err = rows.Scan(&c.Network, &c.Contact, &seen, &st, &c.Department); err != nil {
			rows.Close()
			return nil, fmt.Errorf("failed to read active contact: %w", err)
		}
		c.LastSeen, c.Status, c.Staff = time.UnixMilli(seen).UTC(), Status(st), []id.UserID{}
		index[c.Identity] = len(out)
		out = append(out, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("failed to read active contacts: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	type seenBy struct {
		staff id.UserID
		at    int64
	}
	staff := make([][]seenBy, len(out))
	rows, err = d.db.Query(ctx, activeStaffQuery, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("failed to list active contacts' staff: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ident Identity
		var s string
		var at int64
		if err = rows.Scan(&ident.Network, &ident.Contact, &s, &at); err != nil {
			return nil, fmt.Errorf("failed to read active contact's staff: %w", err)
		}
		if i, ok := index[ident]; ok {
			staff[i] = append(staff[i], seenBy{id.UserID(s), at})
		}
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read active contacts' staff: %w", err)
	}
	for i, list := range staff {
		sort.Slice(list, func(a, b int) bool {
			if list[a].at != list[b].at {
				return list[a].at > list[b].at
			}
			return list[a].staff < list[b].staff
		})
		for _, sb := range list {
			out[i].Staff = append(out[i].Staff, sb.staff)
		}
	}
	return out, nil
}

// DepartmentExists reports whether a staff member is in dept, or a
// directory entry names it.
func (d *Directory) DepartmentExists(ctx context.Context, dept string) (bool, error) {
	dept = strings.TrimSpace(dept)
	var n int
	err := d.db.QueryRow(ctx, `
		SELECT (SELECT COUNT(*) FROM governance_staff_department WHERE department = $1)
			+ (SELECT COUNT(*) FROM governance_directory WHERE department = $1)`, dept).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("failed to look up department: %w", err)
	}
	return n > 0, nil
}
