package main

import (
	"context"
	"fmt"
	"time"

	"github.com/passerelle/passerelle/e2e"
)

// Scenario "flood": one contact sends N messages at once into its portal
// (made before the measure) while the live probe runs on another portal.
// It reports whether every message reached the client (decrypted, each
// once), how long the flood took, whether the gateway logged a stall
// (stallPatterns: bridgev2's full portal queue, gotd's update gaps) and the
// probe's latencies.

// floodResult is one repetition.
type floodResult struct {
	Messages  int `json:"messages"`
	Delivered int `json:"delivered"` // decrypted by the client, each once
	// OutOfOrder counts the messages that came after one sent later, in
	// the room's timeline.
	OutOfOrder int `json:"out_of_order"`
	// DurationS is from the first send to the last decryption.
	DurationS float64 `json:"duration_s"`
	P50ms     float64 `json:"latency_p50_ms"`
	P99ms     float64 `json:"latency_p99_ms"`
	// CPU per flooded message, probe included, until both are idle.
	HomeserverCPUms float64    `json:"homeserver_cpu_ms_per_msg"`
	GatewayCPUms    float64    `json:"gateway_cpu_ms_per_msg"`
	Probe           probeStats `json:"live_probe"`
	Stalls          []string   `json:"stall_log_lines,omitempty"`
	IdleTimeout     bool       `json:"idle_timeout,omitempty"`
	// GatewayPeakRSSMB is the gateway's resident-memory high-water mark
	// (VmHWM) after the flood: what the queued messages cost at most.
	GatewayPeakRSSMB float64 `json:"gateway_peak_rss_mb,omitempty"`
}

func (b *bench) flood(ctx context.Context, n int, tag string) (floodResult, error) {
	res := floodResult{Messages: n}
	accts, err := b.newContacts(1, "Flo"+tag)
	if err != nil {
		return res, err
	}
	c := accts[0]
	to := b.creators[0]
	room, err := b.openPortal(ctx, c.i, to, c.first+" ")
	if err != nil {
		return res, fmt.Errorf("%s's portal: %w", c.first, err)
	}
	pids := []int{b.dendrite.PID(), b.gw.PID()}
	before, _, err := b.idle(ctx, pids)
	if err != nil {
		return res, err
	}
	offset := b.logOffset()
	p := b.startProbe(ctx, "probe"+tag)
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Second):
	}
	start := time.Now()
	for i := range n {
		if err = b.net().sendTo(ctx, c.i, to, burstBody(tag, i)); err != nil {
			return res, err
		}
	}
	if _, err = b.client.WaitMessage(ctx, room, e2e.MessageFilter{BodyContains: fmt.Sprintf("bench %s %d ", tag, n-1), Timeout: burstTimeout(n)}); err != nil {
		return res, fmt.Errorf("the flood's last message never reached the client: %w", err)
	}
	if res.Probe, err = b.finishProbe(ctx, p); err != nil {
		return res, err
	}
	// The last message may overtake none, but count them all: wait until
	// every one is there or nothing more comes for 10 s.
	var lat []float64
	for quiet := time.Now(); ; {
		got, err := b.latencies(ctx, room, tag)
		if err != nil {
			return res, err
		}
		if len(got) > len(lat) {
			quiet = time.Now()
		}
		lat = got
		if len(lat) >= n || time.Since(quiet) > 10*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	res.Delivered = len(lat)
	if len(lat) > 0 {
		res.P50ms, res.P99ms = percentile(lat, 50), percentile(lat, 99)
	}
	evs, err := b.client.Messages(ctx, room, 0)
	if err != nil {
		return res, err
	}
	var last int64
	bodies := make([]string, 0, len(evs))
	for _, ev := range evs {
		if _, _, ok := parseBurstBody(tag, ev.Body()); ok && ev.SeenAt > last {
			last = ev.SeenAt
		}
		bodies = append(bodies, ev.Body())
	}
	res.OutOfOrder = overtaken(tag, bodies)
	if last > 0 {
		res.DurationS = time.UnixMilli(last).Sub(start).Seconds()
	}
	after, timedOut, err := b.idle(ctx, pids)
	if err != nil {
		return res, err
	}
	res.IdleTimeout = timedOut
	if peak, err := b.gw.PeakRSS(); err == nil {
		res.GatewayPeakRSSMB = float64(peak) / (1 << 20)
	}
	res.HomeserverCPUms = float64(after[0]-before[0]) / float64(time.Millisecond) / float64(n)
	res.GatewayCPUms = float64(after[1]-before[1]) / float64(time.Millisecond) / float64(n)
	if res.Stalls, err = b.stallLines(offset); err != nil {
		return res, err
	}
	return res, nil
}

// overtaken counts the burst messages of tag in a timeline (bodies, in
// order) that come after a message sent later than them (a higher index).
func overtaken(tag string, bodies []string) int {
	n, highest := 0, -1
	for _, body := range bodies {
		i, _, ok := parseBurstBody(tag, body)
		if !ok {
			continue
		}
		if i < highest {
			n++
		}
		highest = max(highest, i)
	}
	return n
}
