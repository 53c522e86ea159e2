package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/passerelle/passerelle/e2e"
)

// The live probe: while a load runs, the contact of an existing portal
// (b.probeContact, whose portal b.probePortal the setup made) sends a message every
// probeEvery, open-loop: message k is due at start + k·probeEvery and its
// text carries that due time, so a late send (the simulator or the machine
// busy) counts in its latency instead of hiding it. The latency is from the
// due time to the js client's decryption.

// probeEvery is the live probe's period.
const probeEvery = 250 * time.Millisecond

// probeStats is what the live probe saw during one load.
type probeStats struct {
	Sent  int     `json:"sent"`
	Seen  int     `json:"seen"` // decrypted by the client
	P50ms float64 `json:"latency_p50_ms"`
	P99ms float64 `json:"latency_p99_ms"`
	MaxMs float64 `json:"latency_max_ms"`
}

type probe struct {
	tag      string
	stop     chan struct{}
	done     chan struct{}
	profiled <-chan struct{} // the load's profiles are saved (-profile)
	sent     int
	err      error
}

// startProbe starts the live probe, and with -profile the load's profiles;
// stop it with (*probe).finish.
func (b *bench) startProbe(ctx context.Context, tag string) *probe {
	p := &probe{tag: tag, stop: make(chan struct{}), done: make(chan struct{})}
	p.profiled = b.profileLoad(ctx, tag, p.stop)
	go func() {
		defer close(p.done)
		start := time.Now()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for k := 0; ; k++ {
			due := start.Add(time.Duration(k) * probeEvery)
			timer.Reset(time.Until(due))
			select {
			case <-p.stop:
				return
			case <-timer.C:
			}
			body := fmt.Sprintf("bench %s %d %d", tag, k, due.UnixMicro())
			if err := b.send(ctx, b.probeContact, body); err != nil {
				p.err = err
				return
			}
			p.sent = k + 1
		}
	}()
	return p
}

// finish stops the probe, waits for its last message to reach the client
// and reads the latencies.
func (b *bench) finishProbe(ctx context.Context, p *probe) (probeStats, error) {
	close(p.stop)
	<-p.done
	<-p.profiled
	st := probeStats{Sent: p.sent}
	if p.err != nil {
		return st, fmt.Errorf("live probe send: %w", p.err)
	}
	if p.sent == 0 {
		return st, nil
	}
	// A probe stuck behind the load is a result, not a failure: after 5
	// minutes the latencies are over the messages the client has.
	if _, err := b.client.WaitMessage(ctx, b.probePortal, e2e.MessageFilter{BodyContains: fmt.Sprintf("bench %s %d ", p.tag, p.sent-1), Timeout: 5 * time.Minute}); err != nil {
		if ctx.Err() != nil {
			return st, err
		}
		b.logf("the live probe's last message did not reach the client within 5 minutes: figures over those that did")
	}
	lat, err := b.latencies(ctx, b.probePortal, p.tag)
	if err != nil {
		return st, err
	}
	st.Seen = len(lat)
	if st.Seen > 0 {
		st.P50ms, st.P99ms, st.MaxMs = percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1]
	}
	return st, nil
}

// latencies are the sorted latencies (ms) of the room's messages of tag
// that the client decrypted, each message counted once.
func (b *bench) latencies(ctx context.Context, room, tag string) ([]float64, error) {
	evs, err := b.client.Messages(ctx, room, 0)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	var lat []float64
	for _, ev := range evs {
		i, sent, ok := parseBurstBody(tag, ev.Body())
		if !ok || ev.SeenAt == 0 || seen[i] {
			continue
		}
		seen[i] = true
		lat = append(lat, float64(ev.SeenAt*1000-sent)/1000)
	}
	sort.Float64s(lat)
	return lat, nil
}

// openPortal has contact send a first message to staff login staff and
// waits until the client joined the new portal (named after the contact)
// and decrypted it.
func (b *bench) openPortal(ctx context.Context, contact, staff int, name string) (string, error) {
	if err := b.net().sendTo(ctx, contact, staff, "hello "+name); err != nil {
		return "", err
	}
	room, err := b.client.WaitRoom(ctx, e2e.RoomFilter{NameContains: name, AutoJoin: true, Timeout: 2 * time.Minute})
	if err != nil {
		return "", fmt.Errorf("the portal of %s: %w", name, err)
	}
	if _, err = b.client.WaitMessage(ctx, room.RoomID, e2e.MessageFilter{BodyContains: "hello " + name, Timeout: time.Minute}); err != nil {
		return "", fmt.Errorf("the first message of %s: %w", name, err)
	}
	return room.RoomID, nil
}
