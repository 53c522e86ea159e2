package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
)

// testClock is a manual clock whose After never fires (the code under test
// is driven by calling it, not by waiting).
type testClock struct{ *clocktest.Manual }

func (testClock) After(time.Duration) <-chan time.Time { return nil }

var t0 = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

func newClock() testClock { return testClock{clocktest.New(t0)} }

func login(id string) *bridgev2.UserLogin {
	return &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: networkid.UserLoginID("telegram." + id)}}
}

func remoteEvent(t bridgev2.RemoteEventType, ts time.Time) bridgev2.RemoteEvent {
	return &simplevent.Message[string]{EventMeta: simplevent.EventMeta{Type: t, Timestamp: ts}}
}

func bridged(m *Metrics, network, direction, kind string) float64 {
	return testutil.ToFloat64(m.bridged.WithLabelValues(network, direction, kind))
}

func failed(m *Metrics, network, direction, reason string) float64 {
	return testutil.ToFloat64(m.failures.WithLabelValues(network, direction, reason))
}

// latency returns the number and the sum of latency observations.
func latency(t *testing.T, m *Metrics, network, direction string) (count uint64, sum float64) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != NameLatency {
			continue
		}
		for _, metric := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["network"] == network && labels["direction"] == direction {
				return metric.GetHistogram().GetSampleCount(), metric.GetHistogram().GetSampleSum()
			}
		}
	}
	t.Fatalf("no latency series for %s %s", network, direction)
	return 0, 0
}

func TestRemoteEventsCountedByKindWithLatency(t *testing.T) {
	clk := newClock()
	m := New(clk, "telegram", "whatsapp")
	q := m.WrapQueue(func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		clk.Advance(2 * time.Second) // the portal takes 2 s to handle it
		return bridgev2.EventHandlingResultSuccess
	})
	l := login("1")
	for range 5 {
		sent := clk.Now().Add(-time.Second) // sent on Telegram 1 s before it reached the gateway
		q(l, remoteEvent(bridgev2.RemoteEventMessage, sent))
	}
	q(l, remoteEvent(bridgev2.RemoteEventEdit, clk.Now()))
	q(l, remoteEvent(bridgev2.RemoteEventReaction, clk.Now()))
	q(l, remoteEvent(bridgev2.RemoteEventReactionRemove, clk.Now()))
	q(l, remoteEvent(bridgev2.RemoteEventMessageRemove, clk.Now()))
	q(l, remoteEvent(bridgev2.RemoteEventTyping, clk.Now()))
	q(l, remoteEvent(bridgev2.RemoteEventReadReceipt, clk.Now()))

	for _, c := range []struct {
		kind string
		want float64
	}{{KindMessage, 5}, {KindEdit, 1}, {KindReaction, 2}, {KindDeletion, 1}, {KindMedia, 0}, {KindOther, 0}} {
		if got := bridged(m, "telegram", ToMatrix, c.kind); got != c.want {
			t.Errorf("telegram to_matrix %s = %v, want %v", c.kind, got, c.want)
		}
	}
	if got := bridged(m, "whatsapp", ToMatrix, KindMessage); got != 0 {
		t.Errorf("whatsapp counted %v messages of a Telegram login", got)
	}
	count, sum := latency(t, m, "telegram", ToMatrix)
	// 5 messages at 3 s, 4 events at 2 s; the signals are not observed.
	if count != 9 || sum != 5*3+4*2 {
		t.Errorf("latency: %d observations summing %v s, want 9 summing 23 s", count, sum)
	}
}

func TestRemoteFailuresByReason(t *testing.T) {
	m := New(newClock(), "telegram")
	results := []bridgev2.EventHandlingResult{
		bridgev2.EventHandlingResultIgnored,
		bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("%w: homeserver away", remote.ErrTransient)),
		bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("%w: again", remote.ErrNotReady)),
		bridgev2.EventHandlingResultFailed.WithError(errors.New("broken event")),
	}
	var next bridgev2.EventHandlingResult
	q := m.WrapQueue(func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult { return next })
	for _, res := range results {
		next = res
		if got := q(login("1"), remoteEvent(bridgev2.RemoteEventMessage, t0)); got.Error != res.Error || got.Ignored != res.Ignored {
			t.Fatalf("the wrapper changed the result: %+v, want %+v", got, res)
		}
	}
	for _, c := range []struct {
		reason string
		want   float64
	}{{ReasonIgnored, 1}, {ReasonRefused, 0}, {ReasonTransient, 2}, {ReasonFailed, 1}} {
		if got := failed(m, "telegram", ToMatrix, c.reason); got != c.want {
			t.Errorf("failures %s = %v, want %v", c.reason, got, c.want)
		}
	}
	if got := bridged(m, "telegram", ToMatrix, KindMessage); got != 0 {
		t.Errorf("%v failed events counted as bridged", got)
	}
}

func TestRemotePanicCountedAsFailedAndPassedOn(t *testing.T) {
	m := New(newClock(), "telegram")
	q := m.WrapQueue(func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult { panic("boom") })
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic was swallowed: remote.Hooks.Queue must see it")
			}
		}()
		q(login("1"), remoteEvent(bridgev2.RemoteEventMessage, t0))
	}()
	if got := failed(m, "telegram", ToMatrix, ReasonFailed); got != 1 {
		t.Errorf("failures failed = %v, want 1", got)
	}
}

func TestOutboundRefusalsAndSends(t *testing.T) {
	m := New(newClock(), "telegram", "whatsapp")
	refuse := true
	check := m.WrapCheck(func(_ context.Context, out remote.Outbound) error {
		if refuse {
			return &remote.Refusal{Reason: "not allowed"}
		}
		return nil
	})
	var recorded int
	sent := m.WrapSent(func(context.Context, remote.Outbound) { recorded++ })
	wa := &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "whatsapp.1"}}
	ctx := context.Background()
	for range 3 {
		if err := check(ctx, remote.Outbound{Kind: remote.OutboundMessage, Login: wa}); err == nil {
			t.Fatal("the refusal was lost")
		}
	}
	check(ctx, remote.Outbound{Kind: remote.OutboundTyping, Login: wa}) // a signal: not counted
	refuse = false
	for range 5 {
		out := remote.Outbound{Kind: remote.OutboundMessage, Login: wa}
		if err := check(ctx, out); err != nil {
			t.Fatal(err)
		}
		sent(ctx, out)
	}
	sent(ctx, remote.Outbound{Kind: remote.OutboundMessage, Login: wa, HasMedia: true})
	sent(ctx, remote.Outbound{Kind: remote.OutboundReaction, Login: wa})
	sent(ctx, remote.Outbound{Kind: remote.OutboundRedaction, Login: wa})
	sent(ctx, remote.Outbound{Kind: remote.OutboundReadReceipt, Login: wa})

	if got := failed(m, "whatsapp", ToRemote, ReasonRefused); got != 3 {
		t.Errorf("refused = %v, want 3", got)
	}
	for _, c := range []struct {
		kind string
		want float64
	}{{KindMessage, 5}, {KindMedia, 1}, {KindReaction, 1}, {KindDeletion, 1}, {KindEdit, 0}} {
		if got := bridged(m, "whatsapp", ToRemote, c.kind); got != c.want {
			t.Errorf("whatsapp to_remote %s = %v, want %v", c.kind, got, c.want)
		}
	}
	if recorded != 9 {
		t.Errorf("the governance recorder was told of %d sends, want all 9", recorded)
	}
	if count, _ := latency(t, m, "whatsapp", ToRemote); count != 0 {
		t.Errorf("%d latencies observed without a Matrix event", count)
	}
}

func TestUnknownNetworkIsLabelledOther(t *testing.T) {
	m := New(newClock(), "telegram")
	q := m.WrapQueue(func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		return bridgev2.EventHandlingResultSuccess
	})
	q(&bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "signal.5"}}, remoteEvent(bridgev2.RemoteEventMessage, t0))
	q(&bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "no-prefix"}}, remoteEvent(bridgev2.RemoteEventMessage, t0))
	if got := bridged(m, OtherNetwork, ToMatrix, KindMessage); got != 2 {
		t.Errorf("other = %v, want 2", got)
	}
	text, err := testutil.CollectAndFormat(m.bridged, expfmt.TypeTextPlain, NameBridged)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), "signal") || strings.Contains(string(text), "no-prefix") {
		t.Errorf("an unknown network became a label:\n%s", text)
	}
}

func TestBackfilledHistoryCounted(t *testing.T) {
	m := New(newClock(), "telegram")
	filter := m.WrapBackfill(func(_ context.Context, h remote.History) []*bridgev2.BackfillMessage {
		out := make([]*bridgev2.BackfillMessage, 0, len(h.Messages))
		for range h.Messages[1:] { // the gate drops the first one
			out = append(out, &bridgev2.BackfillMessage{})
		}
		return out
	})
	got := filter(context.Background(), remote.History{Login: login("1"), Messages: make([]remote.HistoryMessage, 4)})
	if len(got) != 3 {
		t.Fatalf("the wrapper changed the filter's answer: %d messages", len(got))
	}
	if n := testutil.ToFloat64(m.history.WithLabelValues("telegram")); n != 3 {
		t.Errorf("backfilled = %v, want 3", n)
	}
	if n := bridged(m, "telegram", ToMatrix, KindMessage); n != 0 {
		t.Errorf("history counted as live messages: %v", n)
	}
}

// TestRemoteEventsInFlight: events that wait for their portal (another
// event of it is being bridged) show in the gauge of their portal class,
// and leave it when bridged, whatever the outcome.
func TestRemoteEventsInFlight(t *testing.T) {
	m := New(newClock(), "telegram", "whatsapp")
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	q := m.WrapQueue(func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		entered <- struct{}{}
		<-release
		return bridgev2.EventHandlingResultFailed.WithError(errors.New("homeserver away"))
	})
	inDM := func(t bridgev2.RemoteEventType) bridgev2.RemoteEvent {
		return &simplevent.Message[string]{EventMeta: simplevent.EventMeta{Type: t, Timestamp: t0,
			PortalKey: networkid.PortalKey{ID: "telegram.u2", Receiver: "telegram.1"}}}
	}
	inGroup := &simplevent.Message[string]{EventMeta: simplevent.EventMeta{Type: bridgev2.RemoteEventMessage, Timestamp: t0,
		PortalKey: networkid.PortalKey{ID: "telegram.c42"}}}
	done := make(chan struct{})
	for _, evt := range []bridgev2.RemoteEvent{inDM(bridgev2.RemoteEventMessage), inDM(bridgev2.RemoteEventMessage), inDM(bridgev2.RemoteEventTyping), inGroup} {
		go func() { q(login("1"), evt); done <- struct{}{} }()
	}
	for range 4 {
		<-entered
	}
	gauge := func(class string) float64 { return testutil.ToFloat64(m.inFlight.WithLabelValues("telegram", class)) }
	if d, g := gauge(ClassDirect), gauge(ClassGroup); d != 3 || g != 1 {
		t.Fatalf("in flight: direct %v, group %v; want 3 and 1", d, g)
	}
	close(release)
	for range 4 {
		<-done
	}
	if d, g := gauge(ClassDirect), gauge(ClassGroup); d != 0 || g != 0 {
		t.Fatalf("in flight after bridging: direct %v, group %v; want 0", d, g)
	}
}
