package telegram

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// offsetClock is the real clock moved ahead, as a test moves the
// simulator's.
type offsetClock struct{ ahead atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *offsetClock) After(d time.Duration) <-chan time.Time {
	return time.After(d)
}

// TestSelfDestructingMessages: a contact sets a one-hour self-destruct
// timer on the chat: the portal's disappearing timer is set, with a notice,
// by an event the gate audits as a timer change; the next message carries
// the timer in Matrix and, when Telegram deletes it an hour later, it goes
// from Matrix too. When the organisation keeps disappearing messages, the
// timer is not applied and the message stays after Telegram's deletion.
func TestSelfDestructingMessages(t *testing.T) {
	for _, keep := range []bool{false, true} {
		name := "honoured"
		if keep {
			name = "kept"
		}
		t.Run(name, func(t *testing.T) {
			s := newSim(t)
			alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
			bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
			clk := &offsetClock{}
			tb := startBridgeWith(t, s, dbtest.SQLite(t).Open(t), func(c *TelegramConnector, _ *fakematrix.Matrix) {
				c.Clock = clk
				c.SetDisappearingPolicy(func() bool { return keep })
			})
			var (
				mu     sync.Mutex
				timers []time.Duration
			)
			br := tb.br
			tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
				if tc, ok := evt.(remote.TimerChange); ok {
					timer, byStaff := tc.DisappearingTimer()
					if !byStaff {
						mu.Lock()
						timers = append(timers, timer)
						mu.Unlock()
					}
				}
				return br.QueueRemoteEvent(login, evt)
			})
			loginByPhone(t, tb, s, alice, "")
			waitConnected(t, tb)
			mx := tb.mx
			if _, err := s.SendMessage(bob.ID, alice.ID, "hello", nil); err != nil {
				t.Fatal(err)
			}
			hello, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" })
			if !ok {
				t.Fatal("hello never reached Matrix")
			}
			if err := s.SetHistoryTTL(bob.ID, alice.ID, time.Hour); err != nil {
				t.Fatal(err)
			}
			if !mx.Eventually(20*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(timers) == 1 && timers[0] == time.Hour
			}) {
				t.Fatalf("timer changes seen by the gate: %v", timers)
			}
			if _, err := s.SendMessage(bob.ID, alice.ID, "timed", nil); err != nil {
				t.Fatal(err)
			}
			timed, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "timed" })
			if !ok {
				t.Fatal("the timed message never reached Matrix")
			}
			st := mx.State(hello.RoomID, event.StateBeeperDisappearingTimer, "")
			if keep {
				if timed.Content.BeeperDisappearingTimer != nil && timed.Content.BeeperDisappearingTimer.Timer.Duration != 0 {
					t.Errorf("kept message carries a timer %+v", timed.Content.BeeperDisappearingTimer)
				}
				if st != nil && stateTimer(st) != 0 {
					t.Errorf("the portal got a timer although the organisation keeps messages: %+v", stateTimer(st))
				}
			} else {
				if dt := timed.Content.BeeperDisappearingTimer; dt == nil || dt.Timer.Duration != time.Hour || dt.Type != event.DisappearingTypeAfterSend {
					t.Errorf("timed message's timer %+v, want one hour after sending", dt)
				}
				if st == nil || stateTimer(st) != time.Hour {
					t.Errorf("portal timer state %+v, want one hour", st)
				}
				if _, ok := mx.FindMessage(func(m fakematrix.Message) bool {
					return m.RoomID == hello.RoomID && m.Content.MsgType == event.MsgNotice
				}); !ok {
					t.Error("no notice of the timer change in the room")
				}
			}

			// An hour later Telegram deletes it.
			clk.ahead.Store(int64(time.Hour + time.Minute))
			s.AdvanceClock(time.Hour + time.Minute)
			if _, err := s.SendMessage(bob.ID, alice.ID, "after", nil); err != nil {
				t.Fatal(err)
			}
			if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "after" }); !ok {
				t.Fatal("the message after the expiry never reached Matrix")
			}
			redacted := func() bool {
				for _, r := range mx.Redactions() {
					if r.Redacts == timed.EventID {
						return true
					}
				}
				return false
			}
			if keep {
				if redacted() {
					t.Error("the self-destructed message was deleted from Matrix although the organisation keeps them")
				}
			} else if !mx.Eventually(20*time.Second, redacted) {
				t.Error("the self-destructed message stayed in Matrix")
			}
			for _, r := range mx.Redactions() {
				if r.Redacts == hello.EventID {
					t.Error("a message from before the timer was deleted")
				}
			}
		})
	}
}

// stateTimer is the timer of a disappearing-timer state event (0: none).
func stateTimer(c *event.Content) time.Duration {
	if c == nil {
		return 0
	}
	if c.Parsed == nil {
		if err := c.ParseRaw(event.StateBeeperDisappearingTimer); err != nil {
			return 0
		}
	}
	if dt, ok := c.Parsed.(*event.BeeperDisappearingTimer); ok {
		return dt.Timer.Duration
	}
	return 0
}
