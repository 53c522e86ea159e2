package telegram

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestBackfillIntoNewPortal: when a chat's portal is made, its latest
// messages (initial_messages of them) come first, in order, with their
// senders (the staff member's own message included) and original times,
// pinging nobody; the message that made the portal comes once, after them;
// older history stays out.
func TestBackfillIntoNewPortal(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	var sentAt []time.Time
	for _, m := range []struct {
		from, to *tgsim.Account
		text     string
	}{{bob, alice, "history 1"}, {bob, alice, "history 2"}, {bob, alice, "history 3 for @Alice"}, {alice, bob, "my answer"}, {bob, alice, "history 4"}} {
		msg, err := s.SendMessage(m.from.ID, m.to.ID, m.text, nil)
		if err != nil {
			t.Fatal(err)
		}
		sentAt = append(sentAt, msg.Date)
	}
	tb := startBridgeOn(t, s, dbtest.SQLite(t).Open(t), fakematrix.New(), func(c *TelegramConnector, _ *fakematrix.Matrix) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: 4, MaxAgeDays: 30}
	}, func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	})
	ul := loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	if _, err := s.SendMessage(bob.ID, alice.ID, "live now", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "live now" }); !ok {
		t.Fatal("the live message never reached Matrix")
	}
	key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: bob.ID}), Receiver: ul.ID}
	portal, err := tb.br.GetExistingPortalByKey(context.Background(), key)
	if err != nil || portal == nil || portal.MXID == "" {
		t.Fatalf("no portal: %v", err)
	}
	var bodies []string
	var msgs []fakematrix.Message
	for _, m := range tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == portal.MXID }) {
		bodies = append(bodies, m.Content.Body)
		msgs = append(msgs, m)
	}
	// The latest 4 of the chat when the portal was made: the live message
	// was one of them.
	want := []string{"history 3 for @Alice", "my answer", "history 4", "live now"}
	if strings.Join(bodies, " | ") != strings.Join(want, " | ") {
		t.Fatalf("portal messages %q, want %q", bodies, want)
	}
	bobGhost := tb.mx.FormatGhostMXID(tgid.MakeUserID(bob.ID))
	if msgs[0].Sender != bobGhost || msgs[2].Sender != bobGhost || msgs[1].Sender == bobGhost {
		t.Errorf("senders %s, %s, %s: want bob's ghost, not bob's ghost, bob's ghost", msgs[0].Sender, msgs[1].Sender, msgs[2].Sender)
	}
	for i, at := range sentAt[2:] {
		if !msgs[i].TS.Equal(at.Truncate(time.Second)) {
			t.Errorf("%q has time %s, want its original %s", bodies[i], msgs[i].TS, at.Truncate(time.Second))
		}
	}
	for _, m := range msgs[:3] {
		if m.Content.Mentions == nil || len(m.Content.Mentions.UserIDs) != 0 || m.Content.Mentions.Room {
			t.Errorf("backfilled %q may ping: mentions %+v", m.Content.Body, m.Content.Mentions)
		}
	}
}
