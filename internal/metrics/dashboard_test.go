package metrics

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// dashboardPath is the Grafana dashboard shipped for operators.
const dashboardPath = "../../packaging/grafana-dashboard.json"

type dashboard struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// metricName finds the metric names in a PromQL expression: the series of
// our registry, of the Go runtime, of the process and of the database pool.
var metricName = regexp.MustCompile(`\b(?:passerelle|go|process)_[a-z0-9_]+\b`)

// TestGrafanaDashboardUsesRegisteredMetrics: every metric the dashboard
// queries is served by the gateway's registry, and the panels an operator
// looks for are there.
func TestGrafanaDashboardUsesRegisteredMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err = json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}

	// The registry as the gateway builds it (appservice's metrics
	// component): ours, logins, governance, database pool, process, Go.
	m := New(newClock(), "telegram", "whatsapp")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Register(m.LoginCollector(func() []LoginState { return nil }, "telegram", "whatsapp")))
	must(m.Register(m.GovernanceCollector(func(context.Context) (GovernanceStats, error) { return GovernanceStats{}, nil })))
	db, err := sql.Open("postgres", "postgres://unused.invalid/db") // never connects: the pool's stats only
	must(err)
	defer db.Close()
	must(m.Register(collectors.NewDBStatsCollector(db, "passerelle")))
	must(m.Register(InboxCollector(func() int { return 0 })))
	mfs, err := m.Registry.Gather()
	must(err)
	served := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		served[name] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				served[name+s] = true
			}
		}
	}

	var titles []string
	queried := 0
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
		for _, target := range p.Targets {
			names := metricName.FindAllString(target.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, target.Expr)
			}
			for _, n := range names {
				queried++
				if !served[n] {
					t.Errorf("panel %q queries %s, which the registry does not serve", p.Title, n)
				}
			}
		}
	}
	if queried == 0 {
		t.Fatal("the dashboard queries nothing")
	}
	all := strings.ToLower(strings.Join(titles, "\n"))
	for _, want := range []string{"messages bridged per second", "failures", "p50 / p99", "logins by state", "approvals pending", "matrix events in the inbox"} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel titled like %q in %q", want, titles)
		}
	}
}
