package admin_test

import (
	"context"
	"fmt"
	"testing"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// benchBackends runs a benchmark on SQLite and, when it is set up, on
// PostgreSQL.
func benchBackends(b *testing.B, fn func(b *testing.B, be dbtest.Backend)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, dbtest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { fn(b, dbtest.Postgres(b)) })
}

// gateBench is a running gateway with Alice logged in and a bridged chat
// with Bob, as the gate sees it on every message after the first.
func gateBench(b *testing.B, be dbtest.Backend) (*env, *running, *bridgev2.UserLogin) {
	e := newEnv(b, be, nil)
	r := e.start()
	login := e.loginStaff(r)
	e.send(e.bob, "hello")
	e.waitBodies(e.bob, "hello")
	return e, r, login
}

// BenchmarkGateOutbound is the governance gate's share of every message a
// staff member sends to a chat the policy allows: the outbound check
// before it leaves and the count of what left (registry of outside
// contacts, border counts, written in the background and flushed before
// the clock stops), on the gateway's database.
func BenchmarkGateOutbound(b *testing.B) {
	benchBackends(b, func(b *testing.B, be dbtest.Backend) {
		e, r, login := gateBench(b, be)
		ctx := context.Background()
		out := remote.Outbound{
			Kind: remote.OutboundMessage, Login: login, PortalKey: e.portalKey(e.bob), Remote: tgid.MakeUserID(e.bob.ID),
			Identity: remote.Identity{ID: tgid.MakeUserID(e.bob.ID), Username: e.bob.Username, DisplayName: "Bob Outside", Number: e.bob.ID},
		}
		before := e.contact(r, e.bob).MessagesOut
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := r.gv.CheckOutbound(ctx, out); err != nil {
				b.Fatal(err)
			}
			r.gv.RecordSent(ctx, out)
		}
		// The counts are written in the background: the time of writing
		// them is part of the cost.
		if err := r.gv.Contacts.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := e.contact(r, e.bob).MessagesOut - before; got != int64(b.N) {
			b.Fatalf("the registry counted %d messages out, want %d", got, b.N)
		}
	})
}

// BenchmarkGateInbound is the governance gate's share of every message a
// contact sends in a chat the policy allows: identify, decide, take the
// chat's turn, and count it; the delivery itself (bridgev2's portal and
// the Matrix side) is left out.
func BenchmarkGateInbound(b *testing.B) {
	benchBackends(b, func(b *testing.B, be dbtest.Backend) {
		e, r, login := gateBench(b, be)
		delivered := 0
		r.gv.Next = func(*bridgev2.UserLogin, bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
			delivered++
			return bridgev2.EventHandlingResultSuccess
		}
		evts := make([]bridgev2.RemoteEvent, b.N)
		for i := range evts {
			evts[i] = mediaMessage(e.portalKey(e.bob), tgid.MakeUserID(e.bob.ID), fmt.Sprintf("bench-%d", i), "hi")
		}
		before := e.contact(r, e.bob).MessagesIn
		b.ReportAllocs()
		b.ResetTimer()
		for _, evt := range evts {
			if res := r.gv.Queue(login, evt); !res.Success {
				b.Fatalf("an allowed message did not pass: %+v", res)
			}
		}
		if err := r.gv.Contacts.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := e.contact(r, e.bob).MessagesIn - before; delivered != b.N || got != int64(b.N) {
			b.Fatalf("%d delivered and %d counted in, want %d", delivered, got, b.N)
		}
	})
}
