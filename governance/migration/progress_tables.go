package migration

import (
	"fmt"
	"strconv"
	"strings"
)

// Table is one part of a report as a table, for CSV and JSON exports.
type Table struct {
	Name   string     `json:"name"`
	Title  string     `json:"title"`
	Header []string   `json:"header"`
	Rows   [][]string `json:"rows"`
}

// TableNames lists the tables of a report in the order Tables gives them.
var TableNames = []string{"border_weeks", "active_contacts", "funnel", "chats_cut_over", "staff_logins", "departments"}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Tables returns every part of the report as a table.
func (r *Report) Tables() []Table {
	border := Table{Name: "border_weeks", Title: "Border messages per week", Header: []string{"week", "start", "network", "messages_in", "messages_out"}, Rows: [][]string{}}
	for _, b := range r.Border {
		border.Rows = append(border.Rows, []string{b.Week, b.Start, b.Network, itoa(b.In), itoa(b.Out)})
	}
	active := Table{Name: "active_contacts", Title: "Contacts active in the last 30 days", Header: []string{"network", "department", "contacts"}, Rows: [][]string{}}
	for _, a := range r.Active {
		active.Rows = append(active.Rows, []string{a.Network, a.Department, itoa(a.Contacts)})
	}
	funnel := Table{Name: "funnel", Title: "Contacts by status", Header: []string{"network", "bridged", "invited", "linked", "cut_over", "retired", "total"}, Rows: [][]string{}}
	for _, f := range r.Funnel {
		funnel.Rows = append(funnel.Rows, []string{f.Network, itoa(f.Bridged), itoa(f.Invited), itoa(f.Linked), itoa(f.CutOver), itoa(f.Retired), itoa(f.Total)})
	}
	chats := Table{Name: "chats_cut_over", Title: "Chats cut over (" + r.ChatsCutOverCounts + ")", Header: []string{"network", "chats_cut_over"}, Rows: [][]string{}}
	for _, c := range r.ChatsCutOver {
		chats.Rows = append(chats.Rows, []string{c.Network, itoa(c.Count)})
	}
	logins := Table{Name: "staff_logins", Title: "Staff still holding a login", Header: []string{"network", "staff", "logins"}, Rows: [][]string{}}
	for _, l := range r.StaffLogins {
		logins.Rows = append(logins.Rows, []string{l.Network, itoa(l.Staff), itoa(l.Logins)})
	}
	depts := Table{Name: "departments", Title: "Departments", Header: []string{"department", "active_contacts", "linked_or_beyond", "percent_linked", "border_messages_4w"}, Rows: [][]string{}}
	for _, d := range r.Departments {
		depts.Rows = append(depts.Rows, []string{d.Department, itoa(d.Active), itoa(d.LinkedOrBeyond), strconv.FormatFloat(d.Percent, 'f', 1, 64), itoa(d.BorderMessages)})
	}
	return []Table{border, active, funnel, chats, logins, depts}
}

// Table returns the table called name, or false.
func (r *Report) Table(name string) (Table, bool) {
	for _, t := range r.Tables() {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// Text is the report as a short Markdown summary: what the weekly summary
// posts in the admin room and `gov-migration progress` prints.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Migration progress, week %s** (%s UTC)\n\n", r.Week, r.GeneratedAt.Format("2006-01-02 15:04"))
	if len(r.Funnel) == 0 && len(r.StaffLogins) == 0 {
		b.WriteString("No outside contact yet.\n")
		return b.String()
	}
	b.WriteString("Border messages per week (in/out):\n")
	weeks := []string{}
	seen := map[string]bool{}
	for _, bw := range r.Border {
		if !seen[bw.Week] {
			seen[bw.Week] = true
			weeks = append(weeks, bw.Week)
		}
	}
	if len(weeks) > LeagueWeeks {
		weeks = weeks[len(weeks)-LeagueWeeks:]
	}
	for _, w := range weeks {
		var parts []string
		for _, bw := range r.Border {
			if bw.Week == w {
				parts = append(parts, fmt.Sprintf("%s %d/%d", bw.Network, bw.In, bw.Out))
			}
		}
		fmt.Fprintf(&b, "* %s: %s\n", w, strings.Join(parts, ", "))
	}
	b.WriteString("\nContacts by status:\n")
	for _, f := range r.Funnel {
		fmt.Fprintf(&b, "* %s: bridged %d, invited %d, linked %d, cut over %d, retired %d (of %d)\n",
			f.Network, f.Bridged, f.Invited, f.Linked, f.CutOver, f.Retired, f.Total)
	}
	b.WriteString("\nContacts active in the last 30 days:\n")
	for _, a := range r.Active {
		fmt.Fprintf(&b, "* %s, %s: %d\n", a.Network, a.Department, a.Contacts)
	}
	if len(r.Active) == 0 {
		b.WriteString("* none\n")
	}
	b.WriteString("\nChats cut over (" + r.ChatsCutOverCounts + "):")
	for _, c := range r.ChatsCutOver {
		fmt.Fprintf(&b, " %s %d", c.Network, c.Count)
	}
	b.WriteString("\nStaff still holding a login:")
	if len(r.StaffLogins) == 0 {
		b.WriteString(" none")
	}
	for _, l := range r.StaffLogins {
		fmt.Fprintf(&b, " %s %d (%d logins)", l.Network, l.Staff, l.Logins)
	}
	b.WriteString("\n\nDepartments (active contacts, linked or beyond, border messages in 4 weeks):\n")
	for i, d := range r.Departments {
		fmt.Fprintf(&b, "%d. %s: %d active, %.1f%% linked, %d border messages\n", i+1, d.Department, d.Active, d.Percent, d.BorderMessages)
	}
	return b.String()
}
