package whatsapp

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/jsontime"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
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
			changes := gateTimerChanges(tb)
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
			// bridgev2 saves the portal after its notice: read it back.
			if !tb.mx.Eventually(waitLong, func() bool {
				portal, err := tb.br.DB.Portal.GetByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
				return err == nil && portal != nil && portal.Disappear.Timer == 2*time.Second && portal.Disappear.Type == event.DisappearingTypeAfterSend
			}) {
				t.Fatal("the portal's timer never became 2 s")
			}
			if got := changes(); len(got) != 1 {
				t.Fatalf("%d timer changes reached the gate, want 1", len(got))
			} else if timer, byStaff := got[0].DisappearingTimer(); timer != 2*time.Second || byStaff {
				t.Fatalf("timer change %s by staff %v", timer, byStaff)
			}

			if _, err := srv.SendText(ctx, bobPh, alicePh, "this will vanish"); err != nil {
				t.Fatal(err)
			}
			timed := tb.waitMsg(t, "the timed message", func(m fakematrix.Message) bool { return m.Content.Body == "this will vanish" })
			// Alice answers from Matrix: the message carries the timer
			// to Bob's phone.
			answer := id.EventID("$timed-answer-" + name)
			tb.mx.Inject(ctx, &event.Event{Type: event.EventMessage, RoomID: first.RoomID, Sender: testUser, ID: answer,
				Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "answer from Matrix"}}})
			got, err := srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool {
				return m.Message.GetEphemeralMessage().GetMessage().GetExtendedTextMessage().GetText() == "answer from Matrix"
			})
			if err != nil {
				t.Fatalf("Bob never got Alice's timed answer: %v", err)
			}
			if exp := got.Message.GetEphemeralMessage().GetMessage().GetExtendedTextMessage().GetContextInfo().GetExpiration(); exp != 2 {
				t.Fatalf("Alice's answer carries a timer of %d s, want 2", exp)
			}
			_, err = srv.SetDisappearingTimer(ctx, bobPh, alicePh, 0)
			if err != nil {
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
				if !tb.mx.Eventually(waitLong, func() bool { return redacted(tb.mx, answer) }) {
					t.Fatal("Alice's timed answer never disappeared from Matrix")
				}
			} else {
				// Everything before "here to stay" is handled: nothing is
				// scheduled to disappear.
				upcoming, err := tb.br.DB.DisappearingMessage.GetUpcoming(context.Background(), 24*time.Hour, 100)
				if err != nil || len(upcoming) != 0 || gone() || redacted(tb.mx, answer) {
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

// TestDisappearingTimerBothWays: Alice sets her chat's timer with Bob from
// Matrix (a day): Bob's chat has it and his next message carries it. In a
// group, Carol turns the timer on from her phone (the group portal
// follows, as a timer change by a contact), then Alice changes it from
// Matrix (a week), which WhatsApp applies for the group. A timer WhatsApp
// does not offer is refused.
func TestDisappearingTimerBothWays(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	changes := gateTimerChanges(tb)
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "hi"); err != nil {
		t.Fatal(err)
	}
	dm := tb.waitMsg(t, "Bob's message", func(m fakematrix.Message) bool { return m.Content.Body == "hi" })
	day := &event.BeeperDisappearingTimer{Type: event.DisappearingTypeAfterSend, Timer: jsontime.MS(24 * time.Hour)}
	injectState(ctx, tb, dm.RoomID, event.StateBeeperDisappearingTimer, "", day, nil)
	if err := srv.WaitCondition(ctx, func() bool { return srv.DisappearingTimer(bobPh, alicePh) == 24*time.Hour }); err != nil {
		t.Fatalf("Bob's chat never got the day timer: %v", err)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		portal, err := tb.br.DB.Portal.GetByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
		return err == nil && portal != nil && portal.Disappear.Timer == 24*time.Hour
	}) {
		t.Fatal("the DM portal's timer never became a day")
	}
	odd := &event.BeeperDisappearingTimer{Type: event.DisappearingTypeAfterSend, Timer: jsontime.MS(5 * time.Minute)}
	oddID := injectState(ctx, tb, dm.RoomID, event.StateBeeperDisappearingTimer, "", odd, day)
	if !tb.mx.Eventually(waitLong, func() bool { return len(tb.mx.StatusesOf(oddID)) > 0 }) {
		t.Fatal("no status for a timer WhatsApp does not offer")
	}
	if st := tb.mx.StatusesOf(oddID)[0]; st.Status == event.MessageStatusSuccess || srv.DisappearingTimer(bobPh, alicePh) != 24*time.Hour {
		t.Fatalf("a 5-minute timer: status %+v, timer on WhatsApp %s", st, srv.DisappearingTimer(bobPh, alicePh))
	}

	gid, err := srv.CreateGroup(ctx, bobPh, "Crew", "", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendGroupText(ctx, carolPh, gid, "group hello", nil); err != nil {
		t.Fatal(err)
	}
	grp := tb.waitMsg(t, "Carol's group message", func(m fakematrix.Message) bool { return m.Content.Body == "group hello" })
	if _, err = srv.SetDisappearingTimer(ctx, carolPh, gid, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "the group timer notice", func(m fakematrix.Message) bool {
		return m.RoomID == grp.RoomID && m.Content.Body == "Set the disappearing message timer to 1 day"
	})
	if got := changes(); len(got) != 1 {
		t.Fatalf("%d timer changes reached the gate, want Carol's", len(got))
	} else if timer, byStaff := got[0].DisappearingTimer(); timer != 24*time.Hour || byStaff {
		t.Fatalf("group timer change %s by staff %v", timer, byStaff)
	}
	week := &event.BeeperDisappearingTimer{Type: event.DisappearingTypeAfterSend, Timer: jsontime.MS(7 * 24 * time.Hour)}
	injectState(ctx, tb, grp.RoomID, event.StateBeeperDisappearingTimer, "", week, day)
	if err = srv.WaitCondition(ctx, func() bool { return srv.DisappearingTimer(carolPh, gid) == 7*24*time.Hour }); err != nil {
		t.Fatalf("the group never got the week timer: %v", err)
	}
	if _, err = srv.SendGroupText(ctx, carolPh, gid, "timed group message", nil); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "the timed group message", func(m fakematrix.Message) bool { return m.Content.Body == "timed group message" })
	// bridgev2 schedules the disappearance after the message is sent:
	// wait for it.
	var upcoming []*database.DisappearingMessage
	tb.mx.Eventually(5*time.Second, func() bool {
		upcoming, err = tb.br.DB.DisappearingMessage.GetUpcoming(ctx, 8*24*time.Hour, 10)
		return err != nil || len(upcoming) > 0
	})
	if err != nil || len(upcoming) != 1 || upcoming[0].RoomID != grp.RoomID || upcoming[0].Timer != 7*24*time.Hour {
		t.Fatalf("scheduled to disappear: %+v, %v", upcoming, err)
	}
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
}

// gateTimerChanges records the timer changes tb's connector hands to the
// gate (each event still goes straight to bridgev2); the function returned
// lists them so far.
func gateTimerChanges(tb *testBridge) func() []remote.TimerChange {
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
	return func() []remote.TimerChange {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(changes)
	}
}
