package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
	"github.com/passerelle/passerelle/internal/testbin"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// dashboardPath is the Grafana dashboard the test checks.
const dashboardPath = "../packaging/grafana-dashboard.json"

// dashboard is what the test reads of a Grafana dashboard JSON.
type dashboard struct {
	Title  string           `json:"title"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct {
		X int `json:"x"`
		Y int `json:"y"`
		W int `json:"w"`
		H int `json:"h"`
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options string `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		RefID        string `json:"refId"`
	} `json:"targets"`
	// Panels of a row panel.
	Panels []dashboardPanel `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err = json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	// Rows hold their panels when collapsed: check those too.
	var flat []dashboardPanel
	for _, p := range d.Panels {
		flat = append(flat, p)
		flat = append(flat, p.Panels...)
	}
	d.Panels = flat
	return d
}

// grafanaExpr substitutes Grafana's interval variables as Grafana does for a
// Prometheus data source whose scrape interval is scrape: $__interval is the
// step of the graph, $__rate_interval is max($__interval + scrape, 4 ×
// scrape). Any other variable left is an error (the test does not know it).
func grafanaExpr(expr string, step, scrape time.Duration) (string, error) {
	rate := max(step+scrape, 4*scrape)
	r := strings.NewReplacer(
		"${__rate_interval}", promDuration(rate), "$__rate_interval", promDuration(rate),
		"${__interval}", promDuration(step), "$__interval", promDuration(step),
	)
	out := r.Replace(expr)
	if v := regexp.MustCompile(`\$\{?\w+`).FindString(out); v != "" {
		return "", fmt.Errorf("unknown variable %s", v)
	}
	return out, nil
}

// promDuration writes d as PromQL does (whole milliseconds).
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// legend names a series as Grafana does from a legendFormat.
func legend(format string, metric map[string]string) string {
	if format == "" || format == "__auto" {
		var parts []string
		for k, v := range metric {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return legendLabel.ReplaceAllStringFunc(format, func(m string) string {
		return metric[legendLabel.FindStringSubmatch(m)[1]]
	})
}

// panelData is what one panel's queries returned: its series by legend.
type panelData struct {
	Panel  dashboardPanel
	Series []namedSeries
}

type namedSeries struct {
	Name   string
	RefID  string
	Series promSeries
}

func (p panelData) find(name string) (promSeries, bool) {
	for _, s := range p.Series {
		if s.Name == name {
			return s.Series, true
		}
	}
	return promSeries{}, false
}

// TestDashboardAgainstPrometheus: the Grafana dashboard in packaging/ is
// checked against a real Prometheus (Debian's) scraping a local stack every
// second while it carries traffic: a staff member linked to Telegram and
// WhatsApp exchanges messages both ways on both, and a new Telegram contact
// (Telegram is in approval mode) writes: one approval pending, one message
// held. Then every target of every panel is evaluated through Prometheus'
// /api/v1/query_range, with Grafana's $__interval and $__rate_interval as
// Grafana would substitute them: each must be valid PromQL and return data,
// and the figures must be the traffic's (both networks both ways in the
// message rates, a latency, each login connected, one approval and one held
// message, audit entries). The panels are then drawn from those results
// (layout from gridPos, series with Chart.js) and screenshotted by headless
// Chromium: $PASSERELLE_DASHBOARD_PNG names the file (the README's
// packaging/dashboard.png), else the test's artifact directory.
func TestDashboardAgainstPrometheus(t *testing.T) {
	promBin := testbin.Prometheus(t)
	dash := readDashboard(t)
	if len(dash.Panels) == 0 {
		t.Fatalf("%s has no panels", dashboardPath)
	}

	const staffPhone = "+15550161"
	tg := NewTelegramSim(t, tgsim.Options{})
	staff, alice := telegramWorld(t, tg, staffPhone, "")
	bob, err := tg.CreateAccount(tgsim.AccountSpec{Phone: "+15550162", FirstName: "Bob", LastName: "Newcomer"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]int64{{staff.ID, bob.ID}, {bob.ID, staff.ID}} {
		if err = tg.AddContact(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	wa := NewWhatsAppSim(t)
	const waStaff, waYara = "+33600000161", "+33600000162"
	createWAAccounts(t, wa, map[string]string{waStaff: "Sam Staff", waYara: "Yara Outside"})

	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", port)
	// Prometheus starts first: its first scrape comes about 5 s later, while
	// the stack starts.
	prom := startPrometheus(t, promBin, t.TempDir(), metricsAddr, time.Second)
	const admin = "gina"
	s := NewStack(t, StackOptions{TelegramSim: tg, WhatsAppSim: wa, Users: []string{admin, "sam"}, GatewayPatch: func(doc *stack.YAMLDoc) error {
		for k, v := range map[string]any{
			"network.metrics.enabled":         true,
			"network.metrics.listen":          metricsAddr,
			"network.governance.modes":        map[string]string{"telegram": "approval"},
			"network.governance.admins":       []string{"@" + admin + ":localhost"},
			"network.governance.approval_ttl": "72h",
			// Alice is allowed by rule; Bob, new, waits for an admin.
			"network.governance.rules": []map[string]any{{"action": "allow", "telegram_username": alice.Username}},
		} {
			if err := doc.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	}})
	sam, gina := s.User("sam"), s.User(admin)
	ctx := s.Ctx()

	adminRoom := s.AdminRoom(gina)
	// The graphs start at Prometheus' first scrape of the gateway.
	from := prom.FirstScrape(ctx, t)
	t.Logf("prometheus first scraped the gateway %s after it started", from.Sub(prom.started).Round(time.Millisecond))

	mgmt, _ := s.BotRoom(sam)
	s.LoginTelegramPhone(sam, mgmt, tg, staffPhone)
	s.LinkWhatsAppQR(sam, mgmt, wa, waStaff)

	// Alice (Telegram) and Yara (WhatsApp) open their chats.
	if _, err = tg.SendMessage(alice.ID, staff.ID, "hello from Telegram", nil); err != nil {
		t.Fatal(err)
	}
	tgRoom, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt}, NameContains: "Alice", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = sam.WaitMessage(ctx, tgRoom.RoomID, MessageFilter{BodyContains: "hello from Telegram"}); err != nil {
		t.Fatal(err)
	}
	if _, err = wa.SendText(ctx, waYara, waStaff, "hello from WhatsApp"); err != nil {
		t.Fatal(err)
	}
	waRoom, err := sam.WaitRoom(ctx, RoomFilter{Exclude: []string{mgmt, tgRoom.RoomID}, NameContains: "Yara", AutoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = sam.WaitMessage(ctx, waRoom.RoomID, MessageFilter{BodyContains: "hello from WhatsApp"}); err != nil {
		t.Fatal(err)
	}

	// A conversation on each network, one message at a time, each waited
	// for where it goes. Midway, Bob, new on Telegram, writes: held until
	// an admin decides.
	const rounds = 12
	var since time.Time
	for i := 1; i <= rounds; i++ {
		in, out := fmt.Sprintf("telegram in %d", i), fmt.Sprintf("telegram out %d", i)
		if _, err = tg.SendMessage(alice.ID, staff.ID, in, nil); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.WaitMessage(ctx, tgRoom.RoomID, MessageFilter{BodyContains: in}); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.Send(ctx, tgRoom.RoomID, out); err != nil {
			t.Fatal(err)
		}
		if _, err = tg.WaitMessage(ctx, staff.ID, alice.ID, func(m tgsim.Message) bool { return m.Text == out }); err != nil {
			t.Fatalf("%q never reached Telegram: %v", out, err)
		}
		in, out = fmt.Sprintf("whatsapp in %d", i), fmt.Sprintf("whatsapp out %d", i)
		if _, err = wa.SendText(ctx, waYara, waStaff, in); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.WaitMessage(ctx, waRoom.RoomID, MessageFilter{BodyContains: in}); err != nil {
			t.Fatal(err)
		}
		if _, err = sam.Send(ctx, waRoom.RoomID, out); err != nil {
			t.Fatal(err)
		}
		if _, err = wa.WaitMessage(ctx, waStaff, waYara, func(m wasim.Message) bool { return m.Text() == out }); err != nil {
			t.Fatalf("%q never reached WhatsApp: %v", out, err)
		}
		if i == rounds/3 {
			since = time.Now()
			if _, err = tg.SendMessage(bob.ID, staff.ID, "hello, may I?", nil); err != nil {
				t.Fatal(err)
			}
			if _, err = gina.WaitMessage(ctx, adminRoom, MessageFilter{Sender: s.BotID, BodyContains: "Bob Newcomer", Since: since}); err != nil {
				t.Fatalf("no approval request in the admin room: %v", err)
			}
		}
	}

	// The gateway counts every message sent (a send is counted once the
	// connector has sent it); Prometheus then scrapes what it counted.
	base := "http://" + metricsAddr
	const (
		tgSent = `passerelle_messages_bridged_total{direction="to_remote",kind="message",network="telegram"}`
		waSent = `passerelle_messages_bridged_total{direction="to_remote",kind="message",network="whatsapp"}`
	)
	var m map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for m = scrape(t, base); m[tgSent] < rounds || m[waSent] < rounds; m = scrape(t, base) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway counted %v messages sent to Telegram and %v to WhatsApp, want %d each", m[tgSent], m[waSent], rounds)
		}
		<-time.After(200 * time.Millisecond)
	}
	total := 0.0
	for series, v := range m {
		if strings.HasPrefix(series, "passerelle_messages_bridged_total{") {
			total += v
		}
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		res, err := prom.Query(ctx, `sum(passerelle_messages_bridged_total) + sum(passerelle_held_messages)`)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) == 1 && res[0].Last() >= total+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never scraped the traffic: %+v, want %v", res, total+1)
		}
		<-time.After(250 * time.Millisecond)
	}
	// Every target of every panel, as Grafana would ask for the graph, up
	// to now: the last point is evaluated at the end of the range.
	step := prom.Scrape
	to := time.Now()
	from = to.Add(-to.Sub(from).Truncate(step))
	t.Logf("traffic and scrapes over %s: %v events bridged", to.Sub(from).Round(time.Second), total)
	var panels []panelData
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		pd := panelData{Panel: p}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			expr, err := grafanaExpr(target.Expr, step, prom.Scrape)
			if err != nil {
				t.Errorf("panel %q, target %s: %v", p.Title, target.RefID, err)
				continue
			}
			res, err := prom.QueryRange(ctx, expr, from, to, step)
			if err != nil {
				t.Errorf("panel %q, target %s: %s: %v", p.Title, target.RefID, expr, err)
				continue
			}
			finite := 0
			for _, s := range res {
				finite += s.Finite()
				pd.Series = append(pd.Series, namedSeries{Name: legend(target.LegendFormat, s.Metric), RefID: target.RefID, Series: s})
			}
			if finite == 0 {
				t.Errorf("panel %q, target %s returned no data (%d series): %s", p.Title, target.RefID, len(res), expr)
			}
		}
		panels = append(panels, pd)
	}

	// What an operator reads on the panels after this traffic.
	checks := map[string]func(t *testing.T, p panelData){
		"Messages bridged per second, by network and direction": func(t *testing.T, p panelData) {
			for _, name := range []string{"telegram to_matrix", "telegram to_remote", "whatsapp to_matrix", "whatsapp to_remote"} {
				if s, ok := p.find(name); !ok || !(s.Max() > 0) {
					t.Errorf("no messages per second for %q (max %v)", name, s.Max())
				}
			}
		},
		"Failures per second, by reason": func(t *testing.T, p panelData) {
			if _, ok := p.find("telegram to_matrix ignored"); !ok {
				t.Error("no series for Telegram messages not bridged (ignored)")
			}
		},
		"Latency p50 / p99": func(t *testing.T, p panelData) {
			for _, name := range []string{"p50 to_matrix", "p50 to_remote", "p99 to_matrix", "p99 to_remote"} {
				if s, ok := p.find(name); !ok || !(s.Max() > 0 && s.Max() < 60) {
					t.Errorf("%s latency: max %v s, want a figure under a minute", name, s.Max())
				}
			}
		},
		"Logins by state": func(t *testing.T, p panelData) {
			for _, name := range []string{"telegram connected", "whatsapp connected"} {
				if s, ok := p.find(name); !ok || s.Last() != 1 {
					t.Errorf("%s logins at the end: %v, want 1", name, s.Last())
				}
			}
		},
		"Approvals pending and held messages": func(t *testing.T, p panelData) {
			for _, name := range []string{"approvals pending", "held messages"} {
				if s, ok := p.find(name); !ok || s.Last() != 1 || s.Max() != 1 {
					t.Errorf("%s: last %v, max %v, want 1", name, s.Last(), s.Max())
				}
			}
		},
		"Age of the oldest pending approval": func(t *testing.T, p panelData) {
			if s, ok := p.find("oldest pending"); !ok || !(s.Last() > 0 && s.Last() <= time.Since(since).Seconds()+1) {
				t.Errorf("oldest pending approval: %v s, want within the %s since Bob wrote", s.Last(), time.Since(since))
			}
		},
		"Database connection pool": func(t *testing.T, p panelData) {
			if s, ok := p.find("open"); !ok || !(s.Max() >= 1) {
				t.Errorf("open database connections: max %v, want at least 1", s.Max())
			}
		},
		"Audit log entries": func(t *testing.T, p panelData) {
			s, ok := p.find("entries")
			if !ok || !(s.Last() >= 3 && s.Last() > s.Points[0][1]) {
				t.Errorf("audit log entries: %v at the end, want at least the two logins and the request, and growing during the run", s.Points)
			}
		},
		"Events in flight: remote events by portal class, Matrix events in the inbox (queue depth)": func(t *testing.T, p panelData) {
			// The Matrix events of the conversation were all handled.
			if s, ok := p.find("Matrix inbox"); !ok || s.Last() != 0 {
				t.Errorf("Matrix inbox at the end: %v, want 0", s.Last())
			}
		},
		"Process": func(t *testing.T, p panelData) {
			for _, name := range []string{"CPU", "RSS GB", "goroutines"} {
				if s, ok := p.find(name); !ok || !(s.Max() > 0) {
					t.Errorf("process %s: max %v, want above 0", name, s.Max())
				}
			}
		},
	}
	for _, p := range panels {
		var figures []string
		for _, s := range p.Series {
			if s.Series.Finite() > 0 && (s.Series.Max() != 0 || len(p.Series) <= 4) {
				figures = append(figures, fmt.Sprintf("%s max %.3g last %.3g", s.Name, s.Series.Max(), s.Series.Last()))
			}
		}
		t.Logf("panel %q: %d series; %s", p.Panel.Title, len(p.Series), strings.Join(figures, "; "))
		if check, ok := checks[p.Panel.Title]; ok {
			check(t, p)
		} else {
			t.Logf("panel %q: no figures checked beyond returning data", p.Panel.Title)
		}
	}
	if t.Failed() {
		return
	}

	t.Run("picture", func(t *testing.T) {
		renderDashboard(t, dash.Title, panels, from, to)
	})
}

// isNum tells whether v is a number to draw.
func isNum(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// TestGrafanaExpr: the dashboard's interval variables become what Grafana
// would send Prometheus; anything else is refused rather than sent as is.
func TestGrafanaExpr(t *testing.T) {
	for _, tc := range []struct {
		expr, want, err string
		step, scrape    time.Duration
	}{
		{expr: "rate(x[$__rate_interval])", step: time.Second, scrape: time.Second, want: "rate(x[4s])"},
		{expr: "rate(x[${__rate_interval}])", step: 30 * time.Second, scrape: 15 * time.Second, want: "rate(x[60s])"},
		{expr: "rate(x[$__rate_interval])", step: 90 * time.Second, scrape: 15 * time.Second, want: "rate(x[105s])"},
		{expr: "avg_over_time(x[$__interval])", step: 1500 * time.Millisecond, scrape: time.Second, want: "avg_over_time(x[1500ms])"},
		{expr: `x{job="$job"}`, step: time.Second, scrape: time.Second, err: "unknown variable $job"},
	} {
		got, err := grafanaExpr(tc.expr, tc.step, tc.scrape)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v, want %s", tc.expr, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
}
