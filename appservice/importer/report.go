package importer

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Table counts what happened to the rows of one kind.
type Table struct {
	Name     string
	Imported int
	// Skipped counts the rows left out, by reason; Example is the first
	// row left out for each reason.
	Skipped map[string]int
	Example map[string]string
}

func newTable(name string) *Table {
	return &Table{Name: name, Skipped: map[string]int{}, Example: map[string]string{}}
}

func (t *Table) skip(reason string) { t.Skipped[reason]++ }

// skipWith counts a row left out and keeps the first example.
func (t *Table) skipWith(reason, example string) {
	t.Skipped[reason]++
	if _, ok := t.Example[reason]; !ok {
		t.Example[reason] = example
	}
}

// skipErr counts a row left out for a translation error: by its kind, so
// that the summary stays short however many rows share it, with the first
// one as an example.
func (t *Table) skipErr(prefix string, err error) {
	reason := err.Error()
	for _, kind := range []error{errFakeMessage, errUnknownID, errNoReceiver} {
		if errors.Is(err, kind) {
			reason = kind.Error()
			break
		}
	}
	reason = prefix + reason
	t.Skipped[reason]++
	if _, ok := t.Example[reason]; !ok && err.Error() != reason {
		t.Example[reason] = err.Error()
	}
}

// SkippedTotal is the number of rows left out.
func (t *Table) SkippedTotal() int {
	n := 0
	for _, c := range t.Skipped {
		n += c
	}
	return n
}

// Login is what the import did with one login of the old bridge.
type Login struct {
	UserMXID string
	OldID    string
	NewID    string
	// Session is "carried" (the gateway connects with the old session:
	// Telegram auth key, WhatsApp linked device) or why the staff member
	// must log in or link the device again.
	Session string
}

// Report is the outcome of an import, or what one would do (DryRun).
type Report struct {
	DryRun        bool
	OldBridge     string
	Network       string
	SchemaVersion int

	Portals, Ghosts, Logins, Messages *Table
	LoginDetails                      []Login
	// Reactions in the old database; they are not imported.
	Reactions int
	// Rooms whose bot the gateway replaces at its next start.
	Takeovers int
	OldBot    string
	// Namespaces added to (or, DryRun, missing from) Passerelle's
	// registration so that it can act as the old ghosts and the old bot.
	Namespaces []string
	// RegistrationPath is the registration those namespaces go into.
	RegistrationPath string
}

func newReport(dryRun bool) *Report {
	return &Report{
		DryRun:   dryRun,
		Portals:  newTable("portals"),
		Ghosts:   newTable("ghosts"),
		Logins:   newTable("logins"),
		Messages: newTable("messages"),
	}
}

// Print writes the summary an administrator reads.
func (r *Report) Print(w io.Writer) {
	verb := "imported"
	if r.DryRun {
		verb = "would import"
		fmt.Fprintf(w, "Dry run: nothing was written.\n")
	}
	fmt.Fprintf(w, "Source: %s database, bridgev2 schema v%d, into Passerelle's %s network.\n", r.OldBridge, r.SchemaVersion, r.Network)
	for _, t := range []*Table{r.Portals, r.Ghosts, r.Logins, r.Messages} {
		fmt.Fprintf(w, "%-9s %d %s, %d skipped\n", t.Name+":", t.Imported, verb, t.SkippedTotal())
		reasons := make([]string, 0, len(t.Skipped))
		for reason := range t.Skipped {
			reasons = append(reasons, reason)
		}
		sort.Strings(reasons)
		for _, reason := range reasons {
			if example, ok := t.Example[reason]; ok {
				fmt.Fprintf(w, "    skipped %d: %s (first: %s)\n", t.Skipped[reason], reason, example)
			} else {
				fmt.Fprintf(w, "    skipped %d: %s\n", t.Skipped[reason], reason)
			}
		}
	}
	for _, l := range r.LoginDetails {
		fmt.Fprintf(w, "login %s of %s: session %s\n", l.NewID, l.UserMXID, l.Session)
	}
	if r.Reactions > 0 {
		fmt.Fprintf(w, "reactions: %d not imported (reactions to old messages stay in the rooms; they are not bridged back)\n", r.Reactions)
	}
	if r.Takeovers > 0 {
		if r.DryRun {
			fmt.Fprintf(w, "rooms:    %d would be taken over from %s at the gateway's next start\n", r.Takeovers, r.OldBot)
		} else {
			fmt.Fprintf(w, "rooms:    %d to take over from %s at the gateway's next start\n", r.Takeovers, r.OldBot)
		}
	}
	if len(r.Namespaces) > 0 {
		action := "added to"
		if r.DryRun {
			action = "would be added to"
		}
		fmt.Fprintf(w, "registration: user namespaces %s %s (non-exclusive, so both registrations can be loaded during the switch): %s\n",
			action, r.RegistrationPath, strings.Join(r.Namespaces, " "))
		fmt.Fprintf(w, "    restart the homeserver so that it reads the new namespaces\n")
	}
}
