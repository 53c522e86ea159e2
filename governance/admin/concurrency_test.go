package admin_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// burst is how many messages each side sends at once.
const burst = 50

// conversation is one portal in which both sides write at the same time.
type conversation struct {
	r       *running
	mx      *fakematrix.Matrix
	key     networkid.PortalKey
	ghost   id.UserID
	inbound func(i int) // the contact sends "in i"
	// sentOut lists what the staff member's account sent to the contact.
	sentOut func() []string
}

// run sends burst messages from each side at once, in one portal, and
// checks that every one of them arrives exactly once and in order. It is
// what deadlocked the gateway: an inbound event waiting for the portal while
// the portal's outbound message waited for the gate's lock of that chat.
func (c *conversation) run(t *testing.T, wantInbound func() []string) {
	t.Helper()
	portal, err := c.r.br.GetExistingPortalByKey(context.Background(), c.key)
	if err != nil || portal == nil || portal.MXID == "" {
		t.Fatalf("no portal room for %v: %v", c.key, err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range burst {
			c.inbound(i)
		}
	}()
	go func() {
		defer wg.Done()
		for i := range burst {
			c.r.sendMatrix(portal.MXID, id.EventID(fmt.Sprintf("$out%d", i)), fmt.Sprintf("out %d", i))
		}
	}()
	sent := make(chan struct{})
	go func() { wg.Wait(); close(sent) }()
	select {
	case <-sent:
	case <-time.After(60 * time.Second):
		t.Fatal("the two sides could not send their messages within 60 s: the gateway is wedged")
	}
	var wantOut []string
	for i := range burst {
		wantOut = append(wantOut, fmt.Sprintf("out %d", i))
	}
	want := wantInbound()
	var gotIn, gotOut []string
	ok := poll(60*time.Second, func() bool {
		gotIn = gotIn[:0]
		for _, m := range c.mx.MessagesFrom(c.ghost) {
			if m.RoomID == portal.MXID {
				gotIn = append(gotIn, m.Content.Body)
			}
		}
		gotOut = c.sentOut()
		return len(gotIn) >= len(want) && len(gotOut) >= len(wantOut)
	})
	if !ok || strings.Join(gotIn, "|") != strings.Join(want, "|") {
		t.Fatalf("inbound in the portal (%d): %q\nwant (%d): %q", len(gotIn), gotIn, len(want), want)
	}
	if strings.Join(gotOut, "|") != strings.Join(wantOut, "|") {
		t.Fatalf("outbound received by the contact (%d): %q", len(gotOut), gotOut)
	}
	t.Logf("%d inbound and %d outbound messages bridged in %s", len(gotIn), len(gotOut), time.Since(start).Round(time.Millisecond))
}

// TestConcurrentConversationTelegram: the contact answers every message the
// staff member sends from Matrix, and writes on his own at the same time.
func TestConcurrentConversationTelegram(t *testing.T) {
	b := dbtest.SQLite(t)
	e := newEnv(t, b, nil)
	r := e.start()
	e.loginStaff(r)
	e.send(e.bob, "first")
	e.waitBodies(e.bob, "first")
	e.sim.SetAutoReply(e.bob.ID, func(in tgsim.Message) (string, bool) { return "re: " + in.Text, true })
	c := &conversation{
		r: r, mx: e.mx, key: e.portalKey(e.bob), ghost: e.ghost(e.bob),
		inbound: func(i int) { e.send(e.bob, fmt.Sprintf("in %d", i)) },
		sentOut: func() []string { return e.sentBy(e.alice, e.bob) },
	}
	c.run(t, func() []string {
		// The answers interleave with the contact's own messages in the
		// order Telegram stored them: that is the order Matrix must show.
		var want []string
		for _, m := range e.sim.Messages(e.alice.ID, e.bob.ID) {
			if m.From == e.bob.ID {
				want = append(want, m.Text)
			}
		}
		if len(want) < 1+2*burst {
			// Not all answers are stored yet: ask again until they are.
			poll(30*time.Second, func() bool {
				n := 0
				for _, m := range e.sim.Messages(e.alice.ID, e.bob.ID) {
					if m.From == e.bob.ID {
						n++
					}
				}
				return n >= 1+2*burst
			})
			want = want[:0]
			for _, m := range e.sim.Messages(e.alice.ID, e.bob.ID) {
				if m.From == e.bob.ID {
					want = append(want, m.Text)
				}
			}
		}
		return want
	})
}

// TestConcurrentConversationWhatsApp: both sides write at once in one
// WhatsApp direct chat.
func TestConcurrentConversationWhatsApp(t *testing.T) {
	w := newWAEnv(t, dbtest.SQLite(t), nil)
	r := w.start()
	w.loginStaff(r)
	w.send(waBob, "first")
	w.waitBodiesFrom(waBob, "first")
	c := &conversation{
		r: r.running, mx: w.mx, key: w.portalKey(waBob), ghost: waGhost(waBob),
		inbound: func(i int) { w.send(waBob, fmt.Sprintf("in %d", i)) },
		sentOut: func() []string { return w.sentBy(waAlice, waBob) },
	}
	c.run(t, func() []string {
		want := []string{"first"}
		for i := range burst {
			want = append(want, fmt.Sprintf("in %d", i))
		}
		return want
	})
}
