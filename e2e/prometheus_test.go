package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
)

// promServer is a Prometheus started for one test, on loopback, with its
// storage in the test's directory; stopped at cleanup.
type promServer struct {
	URL string
	// Scrape is the scrape interval of the gateway's /metrics.
	Scrape time.Duration

	started time.Time
}

// FirstScrape waits until Prometheus has scraped its target successfully
// (its scrape manager applies targets on a 5 s tick) and returns when it
// first did.
func (p *promServer) FirstScrape(ctx context.Context, t *testing.T) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		up, err := p.QueryRange(ctx, `up{job="passerelle"}`, p.started, time.Now(), 100*time.Millisecond)
		if err != nil {
			t.Fatalf("prometheus: %v", err)
		}
		if len(up) == 1 && up[0].Last() == 1 {
			for _, pt := range up[0].Points {
				if pt[1] == 1 {
					return time.UnixMilli(int64(pt[0] * 1000))
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("prometheus did not scrape the gateway within 30s: up = %+v", up)
		case <-tick.C:
		}
	}
}

// startPrometheus runs the binary at path, scraping target (host:port of a
// /metrics endpoint) every scrape, and waits until it is ready.
func startPrometheus(t *testing.T, path, dir, target string, scrape time.Duration) *promServer {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: passerelle
    static_configs:
      - targets: [%[2]q]
`, scrape, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err = os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err = cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("---- prometheus log %s ----\n%s", logPath, tail(string(b), 40))
			}
		}
	})
	p := &promServer{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Scrape: scrape}
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err = <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited (%v):\n%s", err, tail(string(b), 20))
		case <-tick.C:
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("prometheus not ready after 30s")
		}
	}
	p.started = time.Now()
	t.Logf("prometheus ready in %s, to scrape %s every %s", time.Since(start).Round(time.Millisecond), target, scrape)
	return p
}

// promSeries is one series of a query result.
type promSeries struct {
	Metric map[string]string
	// Points are (unix seconds, value); NaN where Prometheus answered NaN
	// (a histogram_quantile without observations in the window).
	Points [][2]float64
}

// Finite is how many of the series' points are numbers.
func (s promSeries) Finite() int {
	n := 0
	for _, p := range s.Points {
		if !math.IsNaN(p[1]) && !math.IsInf(p[1], 0) {
			n++
		}
	}
	return n
}

// Max is the largest finite value of the series (NaN without any).
func (s promSeries) Max() float64 {
	m := math.NaN()
	for _, p := range s.Points {
		if !math.IsNaN(p[1]) && !math.IsInf(p[1], 0) && (math.IsNaN(m) || p[1] > m) {
			m = p[1]
		}
	}
	return m
}

// Last is the series' last finite value (NaN without any).
func (s promSeries) Last() float64 {
	for i := len(s.Points) - 1; i >= 0; i-- {
		if v := s.Points[i][1]; !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v
		}
	}
	return math.NaN()
}

// promError is an error answer of the HTTP API (a bad query).
type promError struct{ Type, Msg string }

func (e *promError) Error() string { return e.Type + ": " + e.Msg }

// api calls an endpoint of the HTTP API and decodes its result.
func (p *promServer) api(ctx context.Context, endpoint string, params url.Values) ([]promSeries, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/"+endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.URL.RawQuery = params.Encode()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err = json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("prometheus answered %d %q: %w", resp.StatusCode, body, err)
	}
	if out.Status != "success" {
		return nil, &promError{Type: out.ErrorType, Msg: out.Error}
	}
	var series []promSeries
	for _, r := range out.Data.Result {
		values := r.Values
		if out.Data.ResultType == "vector" {
			values = [][2]any{r.Value}
		}
		s := promSeries{Metric: r.Metric}
		for _, v := range values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", str, err)
			}
			s.Points = append(s.Points, [2]float64{ts, f})
		}
		series = append(series, s)
	}
	return series, nil
}

// QueryRange evaluates expr over [start, end] every step.
func (p *promServer) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]promSeries, error) {
	return p.api(ctx, "query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {step.String()},
	})
}

// Query evaluates expr now.
func (p *promServer) Query(ctx context.Context, expr string) ([]promSeries, error) {
	return p.api(ctx, "query", url.Values{"query": {expr}})
}
