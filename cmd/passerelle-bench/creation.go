package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/e2e"
)

// Scenario "creation": K new contacts each send a first message to
// the staff member at the same moment; each makes the gateway create a
// portal (room, invite, the client's join) and bridge the message. It runs
// twice per K: once quiet, for the CPU figures (Dendrite's and the
// gateway's CPU from before the first send until both are idle again,
// divided by K), and once with the live probe running on the existing
// portal, for the latency of live messages while K portals are being made
// (the probe's own messages would otherwise count in the CPU per portal).

// creationResult is one K of one repetition.
type creationResult struct {
	Portals int `json:"portals"`
	// HomeserverCPUs and GatewayCPUs are CPU-seconds per created portal
	// (quiet pass).
	HomeserverCPUs float64 `json:"homeserver_cpu_s_per_portal"`
	GatewayCPUs    float64 `json:"gateway_cpu_s_per_portal"`
	// AllDecryptedS is from the sends to the client's decryption of the
	// last first message (quiet pass); FirstP50ms/FirstP99ms the first
	// messages' latencies.
	AllDecryptedS float64 `json:"all_first_messages_decrypted_s"`
	FirstP50ms    float64 `json:"first_message_p50_ms"`
	FirstP99ms    float64 `json:"first_message_p99_ms"`
	// ProbedAllDecryptedS is the same with the live probe running.
	ProbedAllDecryptedS float64 `json:"probed_all_first_messages_decrypted_s"`
	// BareHomeserverCPUs is the floor: the homeserver's CPU-seconds per
	// room when a bare appservice creates K rooms at once as bridgev2's
	// portals are made without their extra state (private chat preset,
	// name, encryption, the user invited) and the user's client joins
	// them, no message sent.
	BareHomeserverCPUs float64 `json:"bare_homeserver_cpu_s_per_room"`
	// Probe is the live probe during the second pass.
	Probe       probeStats `json:"live_probe"`
	IdleTimeout bool       `json:"idle_timeout,omitempty"`
	// Requests are the gateway's homeserver requests per created portal
	// (quiet pass, from its debug log).
	Requests []requestCount `json:"gateway_homeserver_requests_per_portal,omitempty"`
	Stalls   []string       `json:"stall_log_lines,omitempty"`
}

// creation runs scenario creation for k portals, with 2k new contacts.
func (b *bench) creation(ctx context.Context, k int, tag string) (creationResult, error) {
	res := creationResult{Portals: k}
	quiet, err := b.newContacts(k, "New"+tag+"q")
	if err != nil {
		return res, err
	}
	probed, err := b.newContacts(k, "New"+tag+"p")
	if err != nil {
		return res, err
	}
	pids := []int{b.dendrite.PID(), b.gw.PID()}
	before, _, err := b.idle(ctx, pids)
	if err != nil {
		return res, err
	}
	offset := b.logOffset()
	start := time.Now()
	lat, last, err := b.createPortals(ctx, quiet, tag+"q")
	if err != nil {
		return res, err
	}
	after, timedOut, err := b.idle(ctx, pids)
	if err != nil {
		return res, err
	}
	res.IdleTimeout = timedOut
	res.HomeserverCPUs = (after[0] - before[0]).Seconds() / float64(k)
	res.GatewayCPUs = (after[1] - before[1]).Seconds() / float64(k)
	res.AllDecryptedS = last.Sub(start).Seconds()
	res.FirstP50ms, res.FirstP99ms = percentile(lat, 50), percentile(lat, 99)
	if res.Requests, err = gatewayRequests(b.gw.LogPath, start, time.Now(), k); err != nil {
		return res, err
	}

	if res.BareHomeserverCPUs, err = b.bareCreation(ctx, k, tag); err != nil {
		return res, fmt.Errorf("bare appservice rooms: %w", err)
	}

	p := b.startProbe(ctx, "probe"+tag)
	// Let the probe run alone for a second: its first messages show the
	// latency without load.
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Second):
	}
	start = time.Now()
	_, last, err = b.createPortals(ctx, probed, tag+"p")
	if err != nil {
		return res, err
	}
	res.ProbedAllDecryptedS = last.Sub(start).Seconds()
	if res.Probe, err = b.finishProbe(ctx, p); err != nil {
		return res, err
	}
	if _, _, err = b.idle(ctx, pids); err != nil {
		return res, err
	}
	if res.Stalls, err = b.stallLines(offset); err != nil {
		return res, err
	}
	return res, nil
}

// createPortals has every contact send its first message at once, waits
// until the client joined every new portal and decrypted every first
// message, and returns the first messages' sorted latencies (ms) and when
// the last was decrypted.
func (b *bench) createPortals(ctx context.Context, contacts []namedContact, tag string) ([]float64, time.Time, error) {
	for i, c := range contacts {
		if err := b.net().sendTo(ctx, c.i, b.creators[i%len(b.creators)], burstBody(tag, i)); err != nil {
			return nil, time.Time{}, err
		}
	}
	timeout := 2*time.Minute + time.Duration(len(contacts))*3*time.Second
	deadline := time.Now().Add(timeout)
	lat := make([]float64, 0, len(contacts))
	var last int64
	for i, c := range contacts {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, time.Time{}, fmt.Errorf("%d of %d portals made within %s", i, len(contacts), timeout)
		}
		room, err := b.client.WaitRoom(ctx, e2e.RoomFilter{NameContains: c.first + " ", AutoJoin: true, Timeout: left})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("the portal of %s (%d of %d made): %w", c.first, i, len(contacts), err)
		}
		ev, err := b.client.WaitMessage(ctx, room.RoomID, e2e.MessageFilter{BodyContains: fmt.Sprintf("bench %s %d ", tag, i), Timeout: max(time.Until(deadline), time.Second)})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("the first message of %s: %w", c.first, err)
		}
		_, sent, ok := parseBurstBody(tag, ev.Body())
		if !ok || ev.SeenAt == 0 {
			return nil, time.Time{}, fmt.Errorf("the first message of %s has no decryption time", c.first)
		}
		lat = append(lat, float64(ev.SeenAt*1000-sent)/1000)
		last = max(last, ev.SeenAt)
	}
	sort.Float64s(lat)
	return lat, time.UnixMilli(last), nil
}

// bareCreation has a ghost of the bare appservice create k rooms at once
// for the bench user, who joins each, and returns the homeserver's
// CPU-seconds per room until it is idle again.
func (b *bench) bareCreation(ctx context.Context, k int, tag string) (float64, error) {
	as, err := mautrix.NewClient(b.dendrite.URL, "", b.bare.asToken)
	if err != nil {
		return 0, err
	}
	resp, _, err := as.Register(ctx, &mautrix.ReqRegister[any]{Username: bareLocalpartPrefix + "creator" + tag, Type: mautrix.AuthTypeAppservice})
	if err != nil {
		return 0, fmt.Errorf("failed to register the bare appservice's ghost: %w", err)
	}
	client, err := mautrix.NewClient(b.dendrite.URL, resp.UserID, resp.AccessToken)
	if err != nil {
		return 0, err
	}
	pids := []int{b.dendrite.PID()}
	before, _, err := b.idle(ctx, pids)
	if err != nil {
		return 0, err
	}
	user := id.UserID(b.client.UserID)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &mautrix.ReqCreateRoom{Preset: "private_chat", IsDirect: true, Invite: []id.UserID{user}, Name: fmt.Sprintf("Bare%s-%03d Room", tag, i)}
			if !b.o.plain {
				req.InitialState = []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}
			}
			_, errs[i] = client.CreateRoom(ctx, req)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	for i := range k {
		if _, err = b.client.WaitRoom(ctx, e2e.RoomFilter{NameContains: fmt.Sprintf("Bare%s-%03d ", tag, i), AutoJoin: true, Timeout: 2 * time.Minute}); err != nil {
			return 0, fmt.Errorf("the bench user never joined bare room %d: %w", i, err)
		}
	}
	after, _, err := b.idle(ctx, pids)
	if err != nil {
		return 0, err
	}
	return (after[0] - before[0]).Seconds() / float64(k), nil
}
