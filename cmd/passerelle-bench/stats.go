package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// repResult is one repetition of one scenario.
type repResult struct {
	Messages int `json:"messages"`
	// Seen is how many of them the Matrix client decrypted live (with a
	// decryption time); latencies are over these.
	Seen int `json:"seen"`
	// MsgsPerSec is Messages over the time from the first send to the last
	// decryption.
	MsgsPerSec float64 `json:"msgs_per_s"`
	// HomeserverCPUms and GatewayCPUms are per message, from before the
	// first send until the process was idle again (CPU not moving for 2 s).
	HomeserverCPUms float64 `json:"homeserver_cpu_ms_per_msg"`
	GatewayCPUms    float64 `json:"gateway_cpu_ms_per_msg,omitempty"`
	P50ms           float64 `json:"latency_p50_ms"`
	P99ms           float64 `json:"latency_p99_ms"`
	// AddedP50ms and AddedP99ms are the bridge's own part of a
	// Matrix→remote message's latency: from its appservice transaction's
	// arrival to the remote side's receipt.
	AddedP50ms float64 `json:"added_latency_p50_ms,omitempty"`
	AddedP99ms float64 `json:"added_latency_p99_ms,omitempty"`
	// TxnAnswerP50ms and TxnAnswerP99ms are how long the bridge took to
	// answer the homeserver's appservice transactions (Matrix→remote).
	TxnAnswerP50ms float64 `json:"txn_answer_p50_ms,omitempty"`
	TxnAnswerP99ms float64 `json:"txn_answer_p99_ms,omitempty"`
	// GatewayPeakRSSMB is the gateway's resident-memory high-water mark since
	// it started (VmHWM), after this repetition.
	GatewayPeakRSSMB float64 `json:"gateway_peak_rss_mb,omitempty"`
	// IdleTimeout is set when a process never went idle within the bound
	// (the CPU figures then stop at that bound).
	IdleTimeout bool `json:"idle_timeout,omitempty"`
	// GatewayRequests are the gateway's homeserver requests per message
	// during the burst, by kind (from its debug log; empty at other levels).
	GatewayRequests []requestCount `json:"gateway_homeserver_requests_per_msg,omitempty"`
}

// summary is the median and spread of one figure over the repetitions.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Spread is (max - min) / median, in percent.
	Spread float64 `json:"spread_pct"`
}

func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var med float64
	if n := len(s); n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	sum := summary{Median: med, Min: s[0], Max: s[len(s)-1]}
	if med != 0 {
		sum.Spread = (sum.Max - sum.Min) / math.Abs(med) * 100
	}
	return sum
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// column is one figure of the table.
type column struct {
	Key    string
	Header string
	get    func(r repResult) float64
	format string
}

var columns = []column{
	{"msgs_per_s", "msgs/s", func(r repResult) float64 { return r.MsgsPerSec }, "%.1f"},
	{"homeserver_cpu_ms_per_msg", "HS CPU-ms/msg", func(r repResult) float64 { return r.HomeserverCPUms }, "%.1f"},
	{"gateway_cpu_ms_per_msg", "GW CPU-ms/msg", func(r repResult) float64 { return r.GatewayCPUms }, "%.2f"},
	{"latency_p50_ms", "p50 ms", func(r repResult) float64 { return r.P50ms }, "%.0f"},
	{"latency_p99_ms", "p99 ms", func(r repResult) float64 { return r.P99ms }, "%.0f"},
	{"added_p50_ms", "added p50 ms", func(r repResult) float64 { return r.AddedP50ms }, "%.1f"},
	{"added_p99_ms", "added p99 ms", func(r repResult) float64 { return r.AddedP99ms }, "%.1f"},
	{"txn_answer_p99_ms", "txn answer p99 ms", func(r repResult) float64 { return r.TxnAnswerP99ms }, "%.1f"},
	{"gateway_peak_rss_mb", "GW peak RSS MB", func(r repResult) float64 { return r.GatewayPeakRSSMB }, "%.1f"},
}

// scenarioResult is one row of the table.
type scenarioResult struct {
	Name string             `json:"name"`
	Reps []repResult        `json:"reps"`
	Sum  map[string]summary `json:"summary"`
	// NotApplicable lists the columns that mean nothing for this row
	// (the bare appservice has no gateway).
	NotApplicable []string `json:"not_applicable,omitempty"`
}

func (s *scenarioResult) summarize() {
	s.Sum = map[string]summary{}
	for _, c := range columns {
		if s.na(c.Key) {
			continue
		}
		xs := make([]float64, len(s.Reps))
		for i, r := range s.Reps {
			xs[i] = c.get(r)
		}
		s.Sum[c.Key] = summarize(xs)
	}
}

func (s *scenarioResult) na(key string) bool {
	for _, k := range s.NotApplicable {
		if k == key {
			return true
		}
	}
	return false
}

// noisy lists the figures whose spread is over maxSpread percent.
func (s *scenarioResult) noisy(maxSpread float64) []string {
	var out []string
	for _, c := range columns {
		if sum, ok := s.Sum[c.Key]; ok && len(s.Reps) > 1 && sum.Spread > maxSpread {
			out = append(out, fmt.Sprintf("%s %s spread %.0f%%", s.Name, c.Header, sum.Spread))
		}
	}
	return out
}

// printTable writes the rows with median ± spread for every column.
func printTable(w io.Writer, rows []*scenarioResult) {
	headers := []string{"scenario"}
	for _, c := range columns {
		headers = append(headers, c.Header)
	}
	cells := [][]string{headers}
	for _, r := range rows {
		line := []string{r.Name}
		for _, c := range columns {
			sum, ok := r.Sum[c.Key]
			switch {
			case !ok:
				line = append(line, "-")
			case len(r.Reps) > 1:
				line = append(line, fmt.Sprintf(c.format+" ±%.0f%%", sum.Median, sum.Spread))
			default:
				line = append(line, fmt.Sprintf(c.format, sum.Median))
			}
		}
		cells = append(cells, line)
	}
	widths := make([]int, len(headers))
	for _, line := range cells {
		for i, c := range line {
			widths[i] = max(widths[i], len(c))
		}
	}
	for n, line := range cells {
		var b strings.Builder
		for i, c := range line {
			if i == 0 {
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			} else {
				fmt.Fprintf(&b, "  %*s", widths[i], c)
			}
		}
		fmt.Fprintln(w, b.String())
		if n == 0 {
			fmt.Fprintln(w, strings.Repeat("-", len(b.String())))
		}
	}
}
