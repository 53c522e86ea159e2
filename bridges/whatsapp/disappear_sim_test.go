package whatsapp

import (
	"context"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
)

// TestDisappearingMessages: Bob turns on his chat's timer (2 s here; the
// apps offer a day and more): the portal's timer follows, with a notice,
// and the change reaches the gate as a timer change by a contact. A message
// sent with the timer disappears from Matrix when it ends; with the
// organisation keeping disappearing messages, it stays. Turned off, the
// portal's timer goes off.
func TestDisappearingMessages(t *testing.T) {
	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "honoured", true: "kept"}[keep]
		t.Run(name, func(t *testing.T) {
			srv := startSim(t)
			tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
			tb.conn.SetDisappearingPolicy(func() bool { return keep })
			var mu sync.Mutex
			var changes []remote.TimerChange
			tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
				if tc, ok := evt.(remote.TimerChange); ok {
					mu.Lock()
					changes = append(changes, tc)
					mu.Unlock()
				}
				return remote.Direct(login, evt)
			})
			ul := loginQR(t, tb, srv)
			ctx := ctxFor(t)
			if _, err := srv.SendText(ctx, bobPh, alicePh, "before the timer"); err != nil {
				t.Fatal(err)
			}
			first := tb.waitMsg(t, "the first message", func(m fakematrix.Message) bool { return m.Content.Body == "before the timer" })
			if _, err := srv.SetDisappearingTimer(ctx, bobPh, alicePh, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			tb.waitMsg(t, "the timer notice", func(m fakematrix.Message) bool {
				return m.RoomID == first.RoomID && m.Content.Body == "Set the disappearing message timer to 2 seconds"
			})
			portal, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
			if err != nil || portal == nil || portal.Disappear.Timer != 2*time.Second || portal.Disappear.Type != event.DisappearingTypeAfterSend {
				t.Fatalf("portal timer %+v, %v", portal, err)
			}
			mu.Lock()
			if len(changes) != 1 {
				t.Fatalf("%d timer changes reached the gate, want 1", len(changes))
			}
			if timer, byStaff := changes[0].DisappearingTimer(); timer != 2*time.Second || byStaff {
				t.Fatalf("timer change %s by staff %v", timer, byStaff)
			}
			mu.Unlock()

			if _, err = srv.SendText(ctx, bobPh, alicePh, "this will vanish"); err != nil {
				t.Fatal(err)
			}
			timed := tb.waitMsg(t, "the timed message", func(m fakematrix.Message) bool { return m.Content.Body == "this will vanish" })
			if _, err = srv.SetDisappearingTimer(ctx, bobPh, alicePh, 0); err != nil {
				t.Fatal(err)
			}
			tb.waitMsg(t, "the timer-off notice", func(m fakematrix.Message) bool { return m.Content.Body == "Turned off disappearing messages" })
			if _, err = srv.SendText(ctx, bobPh, alicePh, "here to stay"); err != nil {
				t.Fatal(err)
			}
			tb.waitMsg(t, "the message after the timer", func(m fakematrix.Message) bool { return m.Content.Body == "here to stay" })
			gone := func() bool { return redacted(tb.mx, timed.EventID) }
			if !keep {
				if !tb.mx.Eventually(waitLong, gone) {
					t.Fatal("the timed message never disappeared from Matrix")
				}
			} else {
				// Everything before "here to stay" is handled: nothing is
				// scheduled to disappear.
				upcoming, err := tb.br.DB.DisappearingMessage.GetUpcoming(context.Background(), 24*time.Hour, 100)
				if err != nil || len(upcoming) != 0 || gone() {
					t.Fatalf("kept: %d scheduled to disappear (%v), redacted %v", len(upcoming), err, gone())
				}
			}
			if redacted(tb.mx, first.EventID) {
				t.Error("the message sent before the timer disappeared")
			}
			if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
				t.Fatal(err)
			}
		})
	}
}
