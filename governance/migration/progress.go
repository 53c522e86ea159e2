package migration

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/id"
)

// Defaults of Figures.
const (
	// DefaultReportWeeks is how many ISO weeks of border messages a report
	// shows (this week included).
	DefaultReportWeeks = 12
	// ActiveWindow is how recently a contact must have been seen to count
	// as active.
	ActiveWindow = 30 * 24 * time.Hour
	// LeagueWeeks is how many weeks of border messages the department
	// league table sums (this week included).
	LeagueWeeks = 4
)

// NoDepartment names the contacts without a department in reports.
const NoDepartment = "(none)"

// StaffLogin is one staff member's login on a network.
type StaffLogin struct {
	Network string
	Staff   id.UserID
	Login   string
}

// Figures computes progress reports from the directory's tables.
type Figures struct {
	Dir *Directory
	// Logins lists the staff logins bridgev2 holds now; without it the
	// report has no staff_logins.
	Logins func(ctx context.Context) ([]StaffLogin, error)
	// Weeks is how many ISO weeks of border messages a report shows;
	// DefaultReportWeeks when 0.
	Weeks int
}

// Report is the progress of the migration at one time. It is
// JSON-serialisable; Tables gives every part as a table for exports.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Week is the ISO week of GeneratedAt ("2026-W09").
	Week string `json:"week"`
	// Networks with contacts, border messages or logins, sorted.
	Networks []string `json:"networks"`
	// Border has one row per shown week (oldest first) and network: the
	// messages that crossed the border, the number that must go to zero.
	Border []BorderWeek `json:"border_weeks"`
	// Active counts the contacts seen in the last 30 days by network and
	// department: the directory entry's, else that of the staff member who
	// talked with the contact last (ActiveContacts), else NoDepartment.
	Active []ActiveCount `json:"active_contacts"`
	// Funnel counts every contact of the registry by network and status.
	Funnel []FunnelRow `json:"funnel"`
	// ChatsCutOver counts the chats moved to native Matrix rooms, by
	// network; ChatsCutOverCounts says what was counted.
	ChatsCutOver       []NetworkCount `json:"chats_cut_over"`
	ChatsCutOverCounts string         `json:"chats_cut_over_counts"`
	// StaffLogins counts the staff members still holding a login, by
	// network.
	StaffLogins []LoginCount `json:"staff_logins"`
	// Departments is the league table, best first.
	Departments []DepartmentRow `json:"departments"`
}

// BorderWeek is one week of border messages on one network.
type BorderWeek struct {
	Week    string `json:"week"`
	Start   string `json:"start"` // Monday, 2006-01-02
	Network string `json:"network"`
	In      int64  `json:"messages_in"`
	Out     int64  `json:"messages_out"`
}

// ActiveCount is the number of active contacts of one network and
// department.
type ActiveCount struct {
	Network    string `json:"network"`
	Department string `json:"department"`
	Contacts   int64  `json:"contacts"`
}

// FunnelRow counts one network's contacts by status; Reached* count those
// at a stage or beyond it (retired apart).
type FunnelRow struct {
	Network        string `json:"network"`
	Bridged        int64  `json:"bridged"`
	Invited        int64  `json:"invited"`
	Linked         int64  `json:"linked"`
	CutOver        int64  `json:"cut_over"`
	Retired        int64  `json:"retired"`
	Total          int64  `json:"total"`
	ReachedInvited int64  `json:"reached_invited"`
	ReachedLinked  int64  `json:"reached_linked"`
}

// NetworkCount is a number per network.
type NetworkCount struct {
	Network string `json:"network"`
	Count   int64  `json:"count"`
}

// LoginCount is the staff members and logins of one network.
type LoginCount struct {
	Network string `json:"network"`
	Staff   int64  `json:"staff"`
	Logins  int64  `json:"logins"`
}

// DepartmentRow is one line of the league table.
type DepartmentRow struct {
	Department string `json:"department"`
	Active     int64  `json:"active_contacts"`
	// LinkedOrBeyond counts the active contacts linked, cut over or
	// retired; Percent is its share of Active (0–100, one decimal).
	LinkedOrBeyond int64   `json:"linked_or_beyond"`
	Percent        float64 `json:"percent_linked"`
	// BorderMessages sums the border messages (both directions) of the
	// department's contacts over the last LeagueWeeks weeks.
	BorderMessages int64 `json:"border_messages_4w"`
}

// What Report.ChatsCutOverCounts says: the portals cut over (the
// cut-over table, governance_cutover), or, in a database without it, the
// contacts with status cut_over.
const (
	ChatsCountedAsPortals  = "portals cut over"
	ChatsCountedAsContacts = "contacts with status cut_over"
)

const (
	borderWeeksQuery = `
		SELECT week, network, SUM(messages_in), SUM(messages_out) FROM governance_border_count
		WHERE week >= $1 GROUP BY week, network
	`
	borderContactsQuery = `
		SELECT network, contact, SUM(messages_in + messages_out) FROM governance_border_count
		WHERE week >= $1 GROUP BY network, contact
	`
	departmentsQuery = `SELECT network, contact, department FROM governance_directory WHERE department <> ''`
	cutOverQuery     = `SELECT network, COUNT(*) FROM governance_cutover GROUP BY network`
)

// departments maps each identity with a department in the directory to
// it (for contacts with border messages that ActiveContacts does not list).
func (d *Directory) departments(ctx context.Context) (map[Identity]string, error) {
	rows, err := d.db.Query(ctx, departmentsQuery)
	if err != nil {
		return nil, fmt.Errorf("failed to list departments: %w", err)
	}
	defer rows.Close()
	out := map[Identity]string{}
	for rows.Next() {
		var ident Identity
		var dept string
		if err = rows.Scan(&ident.Network, &ident.Contact, &dept); err != nil {
			return nil, fmt.Errorf("failed to read department: %w", err)
		}
		out[ident] = dept
	}
	return out, rows.Err()
}

func (f *Figures) weeks() int {
	if f.Weeks > 0 {
		return f.Weeks
	}
	return DefaultReportWeeks
}

func deptName(dept string) string {
	if dept == "" {
		return NoDepartment
	}
	return dept
}

// Progress computes the report at now.
func (f *Figures) Progress(ctx context.Context, now time.Time) (*Report, error) {
	d := f.Dir
	if err := d.reg.Flush(ctx); err != nil {
		return nil, err
	}
	now = now.UTC()
	r := &Report{GeneratedAt: now, Week: WeekLabel(now), ChatsCutOverCounts: ChatsCountedAsContacts,
		Border: []BorderWeek{}, Active: []ActiveCount{}, Funnel: []FunnelRow{}, ChatsCutOver: []NetworkCount{},
		StaffLogins: []LoginCount{}, Departments: []DepartmentRow{}}
	networks := map[string]bool{}

	// Funnel and chats cut over.
	summary, err := d.Summary(ctx)
	if err != nil {
		return nil, err
	}
	for network, c := range summary {
		networks[network] = true
		row := FunnelRow{Network: network, Bridged: c[StatusBridged], Invited: c[StatusInvited], Linked: c[StatusLinked],
			CutOver: c[StatusCutOver], Retired: c[StatusRetired]}
		row.Total = row.Bridged + row.Invited + row.Linked + row.CutOver + row.Retired
		row.ReachedLinked = row.Linked + row.CutOver
		row.ReachedInvited = row.Invited + row.ReachedLinked
		r.Funnel = append(r.Funnel, row)
		r.ChatsCutOver = append(r.ChatsCutOver, NetworkCount{Network: network, Count: row.CutOver})
	}

	if err = f.chatsCutOver(ctx, r, networks); err != nil {
		return nil, err
	}

	// Border messages per week.
	first := WeekStart(now).AddDate(0, 0, -7*(f.weeks()-1))
	type wn struct {
		week    string
		network string
	}
	counts := map[wn][2]int64{}
	rows, err := d.db.Query(ctx, borderWeeksQuery, first.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("failed to count border messages: %w", err)
	}
	for rows.Next() {
		var k wn
		var c [2]int64
		if err = rows.Scan(&k.week, &k.network, &c[0], &c[1]); err != nil {
			rows.Close()
			return nil, fmt.Errorf("failed to read border messages: %w", err)
		}
		counts[k] = c
		networks[k.network] = true
	}
	rows.Close()
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read border messages: %w", err)
	}

	// Staff still holding a login.
	if f.Logins != nil {
		logins, err := f.Logins(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list staff logins: %w", err)
		}
		per := map[string]*LoginCount{}
		staff := map[string]map[id.UserID]bool{}
		for _, l := range logins {
			if per[l.Network] == nil {
				per[l.Network], staff[l.Network] = &LoginCount{Network: l.Network}, map[id.UserID]bool{}
			}
			per[l.Network].Logins++
			staff[l.Network][l.Staff] = true
		}
		for network, c := range per {
			networks[network] = true
			c.Staff = int64(len(staff[network]))
			r.StaffLogins = append(r.StaffLogins, *c)
		}
	}

	for network := range networks {
		r.Networks = append(r.Networks, network)
	}
	sort.Strings(r.Networks)
	for w := first; !w.After(now); w = w.AddDate(0, 0, 7) {
		for _, network := range r.Networks {
			c := counts[wn{w.Format(time.DateOnly), network}]
			r.Border = append(r.Border, BorderWeek{Week: WeekLabel(w), Start: w.Format(time.DateOnly), Network: network, In: c[0], Out: c[1]})
		}
	}

	// Active contacts and the league table.
	active, err := d.ActiveContacts(ctx, now.Add(-ActiveWindow), "")
	if err != nil {
		return nil, err
	}
	depts, err := d.departments(ctx)
	if err != nil {
		return nil, err
	}
	type nd struct{ network, dept string }
	activeCount := map[nd]int64{}
	league := map[string]*DepartmentRow{}
	row := func(dept string) *DepartmentRow {
		if league[dept] == nil {
			league[dept] = &DepartmentRow{Department: dept}
		}
		return league[dept]
	}
	for _, a := range active {
		depts[a.Identity] = a.Department
		dept := deptName(a.Department)
		activeCount[nd{a.Network, dept}]++
		dr := row(dept)
		dr.Active++
		if a.Status == StatusLinked || a.Status == StatusCutOver || a.Status == StatusRetired {
			dr.LinkedOrBeyond++
		}
	}
	for k, n := range activeCount {
		r.Active = append(r.Active, ActiveCount{Network: k.network, Department: k.dept, Contacts: n})
	}
	rows, err = d.db.Query(ctx, borderContactsQuery, WeekStart(now).AddDate(0, 0, -7*(LeagueWeeks-1)).Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("failed to count border messages per contact: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ident Identity
		var n int64
		if err = rows.Scan(&ident.Network, &ident.Contact, &n); err != nil {
			return nil, fmt.Errorf("failed to read border messages per contact: %w", err)
		}
		row(deptName(depts[ident])).BorderMessages += n
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read border messages per contact: %w", err)
	}
	for _, dr := range league {
		if dr.Active > 0 {
			dr.Percent = float64(dr.LinkedOrBeyond*1000/dr.Active) / 10
		}
		r.Departments = append(r.Departments, *dr)
	}
	sortReport(r)
	return r, nil
}

// tableHere reports whether table exists where the governance tables are
// (PostgreSQL: on the search path; not in another schema).
func (d *Directory) tableHere(ctx context.Context, table string) (bool, error) {
	var n int
	var err error
	if d.db.Dialect == dbutil.Postgres {
		err = d.db.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT to_regclass($1) AS t) x WHERE t IS NOT NULL`, table).Scan(&n)
	} else {
		err = d.db.QueryRow(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`, table).Scan(&n)
	}
	if err != nil {
		return false, fmt.Errorf("failed to look for table %s: %w", table, err)
	}
	return n > 0, nil
}

// chatsCutOver counts the portals cut over per network when the cut-over
// table is there; r.ChatsCutOver holds the contacts with status cut_over
// until then.
func (f *Figures) chatsCutOver(ctx context.Context, r *Report, networks map[string]bool) error {
	here, err := f.Dir.tableHere(ctx, "governance_cutover")
	if err != nil || !here {
		return err
	}
	rows, err := f.Dir.db.Query(ctx, cutOverQuery)
	if err != nil {
		return fmt.Errorf("failed to count portals cut over: %w", err)
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var network string
		var n int64
		if err = rows.Scan(&network, &n); err != nil {
			return fmt.Errorf("failed to read portals cut over: %w", err)
		}
		counts[network] = n
		networks[network] = true
	}
	if err = rows.Err(); err != nil {
		return fmt.Errorf("failed to read portals cut over: %w", err)
	}
	r.ChatsCutOver, r.ChatsCutOverCounts = []NetworkCount{}, ChatsCountedAsPortals
	for network := range networks {
		r.ChatsCutOver = append(r.ChatsCutOver, NetworkCount{Network: network, Count: counts[network]})
	}
	return nil
}

func sortReport(r *Report) {
	sort.Slice(r.Active, func(i, j int) bool {
		a, b := r.Active[i], r.Active[j]
		if a.Network != b.Network {
			return a.Network < b.Network
		}
		return a.Department < b.Department
	})
	sort.Slice(r.Funnel, func(i, j int) bool { return r.Funnel[i].Network < r.Funnel[j].Network })
	sort.Slice(r.ChatsCutOver, func(i, j int) bool { return r.ChatsCutOver[i].Network < r.ChatsCutOver[j].Network })
	sort.Slice(r.StaffLogins, func(i, j int) bool { return r.StaffLogins[i].Network < r.StaffLogins[j].Network })
	sort.Slice(r.Departments, func(i, j int) bool {
		a, b := r.Departments[i], r.Departments[j]
		if a.Percent != b.Percent {
			return a.Percent > b.Percent
		}
		if a.Active != b.Active {
			return a.Active > b.Active
		}
		return a.Department < b.Department
	})
}
