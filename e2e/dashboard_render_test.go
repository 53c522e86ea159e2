package e2e

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/passerelle/passerelle/internal/testbin"
)

// chartJS is the Chart.js the progress page vendors (governance/admin/web).
const chartJS = "../governance/admin/web/chart.umd.min.js"

//go:embed testdata/dashboard.html
var dashboardPage []byte

// renderedPanel is one panel as the page draws it.
type renderedPanel struct {
	Title     string           `json:"title"`
	X         int              `json:"x"`
	Y         int              `json:"y"`
	W         int              `json:"w"`
	H         int              `json:"h"`
	Unit      string           `json:"unit"`
	RightAxis []string         `json:"right_axis"` // series on the right axis (overrides)
	Series    []renderedSeries `json:"series"`
}

type renderedSeries struct {
	Name string `json:"name"`
	// Points are [unix ms, value or null].
	Points [][2]*float64 `json:"points"`
}

// renderDashboard draws the panels from what their queries returned
// (Grafana's grid: 24 columns, 30 px rows) with Chart.js in headless
// Chromium and writes a screenshot to $PASSERELLE_DASHBOARD_PNG or the
// test's artifact directory.
func renderDashboard(t *testing.T, title string, panels []panelData, from, to time.Time) {
	t.Helper()
	browserPath := testbin.Chromium(t)
	lib, err := os.ReadFile(chartJS)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Title  string          `json:"title"`
		From   int64           `json:"from"`
		To     int64           `json:"to"`
		Panels []renderedPanel `json:"panels"`
	}
	page.Title, page.From, page.To = title, from.UnixMilli(), to.UnixMilli()
	wantSeries := map[string]int{}
	for _, p := range panels {
		rp := renderedPanel{Title: p.Panel.Title, X: p.Panel.GridPos.X, Y: p.Panel.GridPos.Y, W: p.Panel.GridPos.W, H: p.Panel.GridPos.H,
			Unit: p.Panel.FieldConfig.Defaults.Unit, RightAxis: []string{}}
		for _, o := range p.Panel.FieldConfig.Overrides {
			for _, prop := range o.Properties {
				if o.Matcher.ID == "byName" && prop.ID == "custom.axisPlacement" && prop.Value == "right" {
					rp.RightAxis = append(rp.RightAxis, o.Matcher.Options)
				}
			}
		}
		for _, s := range p.Series {
			rs := renderedSeries{Name: s.Name}
			for _, pt := range s.Series.Points {
				ms := pt[0] * 1000
				var v *float64
				if isNum(pt[1]) {
					val := pt[1]
					v = &val
				}
				rs.Points = append(rs.Points, [2]*float64{&ms, v})
			}
			rp.Series = append(rp.Series, rs)
		}
		wantSeries[p.Panel.Title] = len(rp.Series)
		page.Panels = append(page.Panels, rp)
	}
	data, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(dashboardPage)
	})
	mux.HandleFunc("/chart.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(lib)
	})
	mux.HandleFunc("/data.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	const width = 1280
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(width, 900), chromedp.Flag("headless", true), chromedp.Flag("force-device-scale-factor", "1"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	defer cancel3()
	if err = chromedp.Do(ctx,
		chromedp.EmulateViewport(width, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitReady(chromedp.CSS("body[data-ready]")),
	); err != nil {
		t.Fatalf("drawing the dashboard in chromium: %v", err)
	}
	// The page drew every panel with every series the queries returned.
	drawn, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](
		`Object.fromEntries(window.dashboardCharts.map(c => [c.title, c.chart.data.datasets.length]))`))
	if err != nil {
		t.Fatal(err)
	}
	for title, n := range wantSeries {
		if drawn[title] != n {
			t.Errorf("panel %q drawn with %d series, want %d", title, drawn[title], n)
		}
	}
	if len(drawn) != len(wantSeries) {
		t.Errorf("%d panels drawn, want %d", len(drawn), len(wantSeries))
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("PASSERELLE_DASHBOARD_PNG")
	if path == "" {
		path = filepath.Join(t.ArtifactDir(), "dashboard.png")
	}
	if err = os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard drawn from %d panels' query results: %s (%d KB)", len(panels), path, len(png)/1024)
}
