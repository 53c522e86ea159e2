package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/testbin"
)

// artifactDir is where screenshots go: $PASSERELLE_ARTIFACTS, or the test's
// artifact directory (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	if d := os.Getenv("PASSERELLE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

var progressLink = regexp.MustCompile(`https?://\S+/_passerelle/admin/progress/login#token=[A-Za-z0-9_%-]+`)

// browser is one headless Chromium profile (its own cookies).
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1000), chromedp.Flag("headless", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("failed to start chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// login opens a login link and presses its button; it returns the text of
// the page it lands on.
func login(t *testing.T, ctx context.Context, link string) (landed string, ok bool) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitReady(chromedp.CSS("body[data-ready], #message")),
	)
	if err != nil {
		t.Fatalf("login through %s: %v", redact(link), err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(loc, "/_passerelle/admin/progress") {
		return loc, true
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("message")))
	if err != nil {
		t.Fatal(err)
	}
	return msg, false
}

func redact(link string) string { return progressLink.ReplaceAllString(link, "<login link>") }

// TestProgressPageInBrowser: with the real Telegram connector, a staff
// member's conversations fill the figures (border messages over two
// weeks, a contact of the Press department linked and its chat cut over
// with the cut-over command, an invited one); an admin asks the bot for a login link (gov-migration
// progress-link, in their DM; from the admin room it goes to their DM),
// logs in with headless Chromium, and the charts show the expected figures
// (read from the Chart.js objects) and the tables the same, with CSV
// exports; the link works once, an expired link is refused, a non-admin
// gets no link, a browser without a session gets nothing, a POST without
// the CSRF token is refused and logout ends the session. Screenshots
// (desktop and phone) are written to $PASSERELLE_ARTIFACTS or the test's
// artifact directory.
func TestProgressPageInBrowser(t *testing.T) {
	chromium := testbin.Chromium(t)
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		var handler atomic.Pointer[http.Handler]
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*handler.Load()).ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		e := newEnv(t, b, func(cfg *gate.Config) { cfg.Migration.Progress.PageURL = srv.URL })
		r := e.start()
		// The listener as Init mounts it: the admin API and the page.
		mux := http.NewServeMux()
		mux.Handle(admin.APIPrefix, r.gv.APIHandler())
		mux.Handle(admin.ProgressPrefix, r.gv.ProgressHandler())
		var h http.Handler = mux
		handler.Store(&h)

		// Week 1: Bob writes twice, Carol once, Alice answers Bob.
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		msgs := e.waitBodies(e.bob, "hello from bob")
		e.send(e.bob, "second from bob")
		e.waitBodies(e.bob, "hello from bob", "second from bob")
		e.send(e.carol, "carol here")
		e.waitBodies(e.carol, "carol here")
		r.sendMatrix(msgs[0].RoomID, "$alice-reply", "hi bob")
		if !poll(20*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 1 }) {
			t.Fatal("Alice's reply never reached Bob")
		}
		waitBorder(t, r, e, 4) // and the registry knows Bob and Carol
		room := e.adminRoom()
		if out := r.command(t, e, adminMXID, room, "gov-directory add @bob_outside @bob:matrix.partner.example department=Press"); !strings.Contains(out, "is linked") {
			t.Fatalf("gov-directory add: %q", out)
		}
		bob, err := r.gv.Migration.Resolve(ctx, "@bob_outside")
		if err != nil {
			t.Fatal(err)
		}
		carol, err := r.gv.Migration.Resolve(ctx, "@carol_press")
		if err != nil {
			t.Fatal(err)
		}
		// Alice cuts her chat with Bob over to a native room: Bob gets the
		// final message on Telegram (a border message too).
		if out := r.command(t, e, staffMXID, msgs[0].RoomID, "cut-over"); !strings.Contains(out, "Cut over: this chat moved to") {
			t.Fatalf("cut-over: %q", out)
		}
		if !poll(20*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 2 }) {
			t.Fatalf("Bob never got the final message: %q", e.sentBy(e.alice, e.bob))
		}
		if st, _, err := r.gv.Migration.Status(ctx, bob); err != nil || st != migration.StatusCutOver {
			t.Fatalf("Bob's status after the cut-over: %s, %v", st, err)
		}
		if err = r.gv.Migration.MarkInvited(ctx, string(adminMXID), carol); err != nil {
			t.Fatal(err)
		}
		waitBorder(t, r, e, 5) // counted in week 1 before the clock moves
		// Week 2: Bob writes once more in the old chat; it is delivered, and
		// he gets a reminder that the chat moved (a border message too).
		e.clk.Advance(7 * 24 * time.Hour)
		e.send(e.bob, "a week later")
		e.waitBodies(e.bob, "hello from bob", "second from bob", "a week later")
		if !poll(20*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 3 }) {
			t.Fatalf("Bob never got the reminder: %q", e.sentBy(e.alice, e.bob))
		}
		waitBorder(t, r, e, 2)

		// Links: a non-admin gets none; from the admin room the link goes
		// to the admin's DM; in the DM it is the reply.
		if out := r.command(t, e, otherMXID, room, "gov-migration progress-link"); !strings.Contains(out, "limited to the organisation's governance admins") || progressLink.MatchString(out) {
			t.Errorf("non-admin progress-link: %q", out)
		}
		dm := id.RoomID("!admindm:test")
		r.user(t, adminMXID).ManagementRoom = dm
		out := r.command(t, e, adminMXID, room, "gov-migration progress-link")
		if !strings.Contains(out, "in your direct chat") || progressLink.MatchString(out) {
			t.Errorf("progress-link in the admin room: %q", out)
		}
		first, ok := e.mx.MessageContaining(dm, "/_passerelle/admin/progress/login#token=")
		if !ok {
			t.Fatal("no login link in the admin's DM")
		}
		firstLink := progressLink.FindString(first.Content.Body)
		out = r.command(t, e, adminMXID, dm, "gov-migration progress-link")
		link := progressLink.FindString(out)
		if link == "" || !strings.HasPrefix(link, srv.URL+"/") {
			t.Fatalf("progress-link in the DM: %q", redact(out))
		}

		// No session: nothing but a refusal.
		for _, path := range []string{"progress", "progress.json", "progress/export?table=funnel&format=csv"} {
			resp, err := http.Get(srv.URL + admin.ProgressPrefix + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without a session: %d", path, resp.StatusCode)
			}
		}
		// A login POST from another site is refused and does not use the link.
		resp, err := http.PostForm(srv.URL+admin.ProgressPrefix+"progress/session", url.Values{"token": {tokenOf(t, link)}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("login POST without Origin: %d", resp.StatusCode)
		}

		bctx := browser(t, chromium)
		if where, ok := login(t, bctx, link); !ok {
			t.Fatalf("login refused: %q", where)
		}
		var charts struct {
			Border struct {
				Labels   []string `json:"labels"`
				Datasets []struct {
					Label string  `json:"label"`
					Data  []int64 `json:"data"`
				} `json:"datasets"`
			} `json:"border"`
			Funnel struct {
				Labels []string `json:"labels"`
				Data   []int64  `json:"data"`
			} `json:"funnel"`
			Departments struct {
				Labels []string  `json:"labels"`
				Data   []float64 `json:"data"`
			} `json:"departments"`
		}
		chartJSON, err := chromedp.Run(bctx, chromedp.Evaluate[json.RawMessage](`(() => { const c = window.passerelleCharts; return {
				border: {labels: c.border.data.labels, datasets: c.border.data.datasets.map(d => ({label: d.label, data: d.data}))},
				funnel: {labels: c.funnel.data.labels, data: c.funnel.data.datasets[0].data},
				departments: {labels: c.departments.data.labels, data: c.departments.data.datasets[0].data}}; })()`))
		if err == nil {
			err = json.Unmarshal(chartJSON, &charts)
		}
		if err != nil {
			t.Fatalf("reading the charts: %v", err)
		}
		kpiStaff, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#kpi-staff .value")))
		if err != nil {
			t.Fatal(err)
		}
		funnelRow, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#table-funnel tbody tr")))
		if err != nil {
			t.Fatal(err)
		}
		now := e.clk.Now()
		if n := len(charts.Border.Labels); n != migration.DefaultReportWeeks || charts.Border.Labels[n-1] != migration.WeekLabel(now) ||
			charts.Border.Labels[n-2] != migration.WeekLabel(now.AddDate(0, 0, -7)) {
			t.Errorf("border chart weeks: %v", charts.Border.Labels)
		}
		if len(charts.Border.Datasets) != 1 || charts.Border.Datasets[0].Label != "Telegram" {
			t.Fatalf("border chart datasets: %+v", charts.Border.Datasets)
		}
		data := charts.Border.Datasets[0].Data
		// Week 1: Bob 2, Carol 1, Alice's answer and the final message;
		// week 2: Bob's message and the reminder.
		if want := append(make([]int64, migration.DefaultReportWeeks-2), 5, 2); !reflect.DeepEqual(data, want) {
			t.Errorf("border messages per week: %v, want %v", data, want)
		}
		if want := []int64{2, 2, 1, 1}; !reflect.DeepEqual(charts.Funnel.Data, want) || charts.Funnel.Labels[3] != "Cut over" {
			t.Errorf("funnel: %v %v, want %v", charts.Funnel.Labels, charts.Funnel.Data, want)
		}
		if !reflect.DeepEqual(charts.Departments.Labels, []string{"Press", migration.NoDepartment}) || !reflect.DeepEqual(charts.Departments.Data, []float64{100, 0}) {
			t.Errorf("departments: %v %v", charts.Departments.Labels, charts.Departments.Data)
		}
		if kpiChats, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#kpi-chats .value"))); err != nil || kpiChats != "1" {
			t.Errorf("chats cut over: %q, %v", kpiChats, err)
		}
		if kpiStaff != "1" {
			t.Errorf("staff still holding a login: %q", kpiStaff)
		}
		if f := strings.Fields(funnelRow); !reflect.DeepEqual(f, []string{"telegram", "0", "1", "0", "1", "0", "2"}) {
			t.Errorf("funnel table row: %q", funnelRow)
		}
		shot(t, bctx, "progress-desktop.png", 1280, 1000)
		shot(t, bctx, "progress-phone.png", 390, 844)

		// An export through the browser's session (fetch from the page).
		csvText, err := chromedp.Run(bctx, chromedp.Evaluate[string](`fetch("progress/export?table=departments&format=csv").then(r => r.text())`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if want := "department,active_contacts,linked_or_beyond,percent_linked,border_messages_4w\nPress,1,1,100.0,6\n(none),1,0,0.0,1\n"; csvText != want {
			t.Errorf("departments CSV:\n%s\nwant\n%s", csvText, want)
		}
		// POST without the CSRF token: refused; with it: logged out.
		statuses, err := chromedp.Run(bctx, chromedp.Evaluate[[]int](`(async () => {
			const a = await fetch("progress/logout", {method: "POST"});
			const token = document.querySelector('meta[name="csrf-token"]').content;
			const j1 = await fetch("progress.json");
			const b = await fetch("progress/logout", {method: "POST", headers: {"X-CSRF-Token": token}});
			const j2 = await fetch("progress.json");
			return [a.status, j1.status, b.status, j2.status]; })()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(statuses, []int{403, 200, 200, 401}) {
			t.Errorf("logout without and with the CSRF token, progress.json before and after: %v", statuses)
		}

		// The same link again, in another browser: refused.
		other := browser(t, chromium)
		if msg, ok := login(t, other, link); ok || !strings.Contains(msg, "already used") {
			t.Errorf("reused link: %q", msg)
		}
		// A link older than 10 minutes: refused.
		e.clk.Advance(admin.ProgressLinkTTL + time.Minute)
		if msg, ok := login(t, other, firstLink); ok || !strings.Contains(msg, "expired") {
			t.Errorf("expired link: %q", msg)
		}
		if err = chromedp.Do(other, chromedp.Navigate(srv.URL+admin.ProgressPrefix+"progress.json")); err != nil {
			t.Fatal(err)
		}
		body, err := chromedp.Run(other, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, "border_weeks") || !strings.Contains(body, "Not logged in") {
			t.Errorf("progress.json after refused logins: %q", body)
		}
		// The bearer-token API still works.
		if rec := apiGet(mux, "migration/summary", "127.0.0.1:40000", "Bearer "+apiToken); rec.Code != http.StatusOK {
			t.Errorf("admin API: %d %s", rec.Code, rec.Body)
		}
		// The same figures from the admin API, with its bearer token only.
		if rec := apiGet(mux, "migration/progress", "127.0.0.1:40000", ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("migration/progress without a token: %d", rec.Code)
		}
		rec := apiGet(mux, "migration/progress", "127.0.0.1:40000", "Bearer "+apiToken)
		var rep migration.Report
		if err = json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("migration/progress: %d %v", rec.Code, err)
		}
		if want := []migration.FunnelRow{{Network: "telegram", Invited: 1, CutOver: 1, Total: 2, ReachedInvited: 2, ReachedLinked: 1}}; !reflect.DeepEqual(rep.Funnel, want) {
			t.Errorf("migration/progress funnel: %+v", rep.Funnel)
		}
	})
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Fragment, "token=")
}

// shot writes a full-page screenshot at the given viewport width.
func shot(t *testing.T, ctx context.Context, name string, width, height int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactDir(t), strings.ReplaceAll(t.Name(), "/", "_")+"-"+name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("Screenshot of the progress page: %s", path)
}
