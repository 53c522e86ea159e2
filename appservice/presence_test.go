package appservice

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/stack"
)

func TestPresenceState(t *testing.T) {
	now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		p    remote.Presence
		want event.Presence
	}{
		{remote.Presence{Online: true}, event.PresenceOnline},
		{remote.Presence{Online: true, LastSeen: now.Add(-time.Hour)}, event.PresenceOnline},
		{remote.Presence{LastSeen: now.Add(-time.Minute)}, event.PresenceUnavailable},
		{remote.Presence{LastSeen: now.Add(-time.Hour)}, event.PresenceOffline},
		{remote.Presence{}, event.PresenceOffline},
	} {
		if got := presenceState(tc.p, now); got != tc.want {
			t.Errorf("presenceState(%+v) = %s, want %s", tc.p, got, tc.want)
		}
	}
}

// TestPresenceSinkIsBoundedAndCoalesces: reports for one ghost keep only the
// latest, and beyond maxPendingPresence ghosts waiting new ones are dropped,
// without blocking the connector.
func TestPresenceSinkIsBoundedAndCoalesces(t *testing.T) {
	g := newPresenceWorker(func(context.Context, networkid.UserID) *mautrix.Client { return nil }, zerolog.Nop())
	for i := range maxPendingPresence + 500 {
		g.Sink(context.Background(), nil, remote.Presence{User: networkid.UserID(fmt.Sprint("telegram.", i))})
	}
	g.Sink(context.Background(), nil, remote.Presence{User: "telegram.0", Online: true})
	if len(g.pending) != maxPendingPresence || len(g.order) != maxPendingPresence {
		t.Fatalf("%d pending (%d in order), want %d", len(g.pending), len(g.order), maxPendingPresence)
	}
	first, ok := g.next()
	if !ok || first.User != "telegram.0" || !first.Online {
		t.Errorf("first pending = %+v, want telegram.0 online (the latest report)", first)
	}
}

// TestGhostPresenceOnDendrite: the sink sets an existing ghost's presence
// through the appservice (masquerading) and a Matrix user who shares a room
// with the ghost sees it, in /sync and from the presence API; a report for a
// user with no ghost sets nothing and makes no ghost.
func TestGhostPresenceOnDendrite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Dendrite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := stack.EnsureDendrite(ctx)
	if err != nil {
		t.Fatalf("Dendrite: %v", err)
	}
	dir := t.TempDir()
	asToken := randomToken(32)
	reg := map[string]any{
		"id": "passerelle", "url": nil, "as_token": asToken, "hs_token": randomToken(32), "sender_localpart": "gwbot",
		"namespaces": map[string]any{"users": []map[string]any{{"regex": "^@gw_.*:localhost$", "exclusive": true}}},
	}
	data, _ := yaml.Marshal(reg)
	regPath := filepath.Join(dir, "registration.yaml")
	if err = os.WriteFile(regPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	hs, err := stack.StartDendrite(ctx, stack.DendriteOptions{BinDir: bin, DataDir: filepath.Join(dir, "hs"), AppServiceConfigFiles: []string{regPath}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Stop() })

	ghostID := id.UserID("@gw_telegram.42:localhost")
	as, _ := mautrix.NewClient(hs.URL, "", asToken)
	if _, _, err = as.Register(ctx, &mautrix.ReqRegister[any]{Username: "gw_telegram.42", Type: mautrix.AuthTypeAppservice, InhibitLogin: true}); err != nil {
		t.Fatalf("register the ghost: %v", err)
	}
	ghost, _ := mautrix.NewClient(hs.URL, ghostID, asToken)
	ghost.SetAppServiceUserID = true

	staffReg, err := hs.RegisterUser(ctx, "staff", randomToken(8), false)
	if err != nil {
		t.Fatal(err)
	}
	staff, _ := mautrix.NewClient(hs.URL, id.UserID(staffReg.UserID), staffReg.AccessToken)
	room, err := staff.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{ghostID}, IsDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = ghost.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}
	sync, err := staff.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	since := sync.NextBatch

	looked := map[networkid.UserID]int{}
	g := newPresenceWorker(func(_ context.Context, user networkid.UserID) *mautrix.Client {
		looked[user]++
		if user == "telegram.42" {
			return ghost
		}
		return nil
	}, zerolog.New(zerolog.NewTestWriter(t)))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g.start(runCtx)

	for _, step := range []struct {
		p    remote.Presence
		want event.Presence
	}{
		{remote.Presence{User: "telegram.42", Online: true}, event.PresenceOnline},
		{remote.Presence{User: "telegram.42", LastSeen: time.Now().Add(-time.Minute)}, event.PresenceUnavailable},
		{remote.Presence{User: "telegram.42"}, event.PresenceOffline},
	} {
		g.Sink(ctx, nil, remote.Presence{User: "telegram.7", Online: true})
		g.Sink(ctx, nil, step.p)
		var seen event.Presence
		deadline := time.Now().Add(30 * time.Second)
		for seen != step.want {
			if time.Now().After(deadline) {
				t.Fatalf("the staff member's sync never showed the ghost %s (last %q)", step.want, seen)
			}
			resp, err := staff.SyncRequest(ctx, 2000, since, "", false, event.PresenceOffline)
			if err != nil {
				t.Fatal(err)
			}
			since = resp.NextBatch
			for _, evt := range resp.Presence.Events {
				_ = evt.Content.ParseRaw(evt.Type)
				if evt.Sender == ghostID {
					seen = evt.Content.AsPresence().Presence
				}
			}
		}
		got, err := staff.GetPresence(ctx, ghostID)
		if err != nil || got.Presence != step.want {
			t.Errorf("presence API for the ghost: %+v, %v; want %s", got, err, step.want)
		}
	}
	if looked["telegram.7"] == 0 {
		t.Error("the report for a user with no ghost was never looked at")
	}
	if _, err = staff.GetProfile(ctx, "@gw_telegram.7:localhost"); err == nil {
		t.Error("a presence report made a ghost")
	}
}
