package appservice

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestDoublePuppetSwitchSurvivesRestart: a staff member's `double-puppet
// off` and the receipt sync's position are stored, read back by a new
// gateway on the same database, and `on` clears the switch; on SQLite and
// PostgreSQL.
func TestDoublePuppetSwitchSurvivesRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		start := func() *puppeting {
			db := b.Open(t)
			t.Cleanup(func() { _ = db.Close() })
			p := newPuppeting()
			p.Init(&bridgev2.Bridge{DB: &database.Database{Database: db}, Log: zerolog.Nop()})
			if err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Stop)
			return p
		}
		sam, pat := id.UserID("@sam:example.org"), id.UserID("@pat:example.org")
		p := start()
		if err := p.setOff(ctx, sam, true); err != nil {
			t.Fatal(err)
		}
		if err := p.setOff(ctx, sam, true); err != nil {
			t.Fatalf("switching off twice: %v", err)
		}
		if err := p.setSince(ctx, sam, "s1"); err != nil {
			t.Fatal(err)
		}
		if err := p.setSince(ctx, sam, "s2"); err != nil {
			t.Fatal(err)
		}
		p.Stop()

		p = start()
		if off, err := p.isOff(ctx, sam); err != nil || !off {
			t.Errorf("after a restart sam's switch reads off=%v, %v; want off", off, err)
		}
		if off, err := p.isOff(ctx, pat); err != nil || off {
			t.Errorf("pat never switched: off=%v, %v", off, err)
		}
		if tok, err := p.since(ctx, sam); err != nil || tok != "s2" {
			t.Errorf("sync position %q, %v; want s2", tok, err)
		}
		if tok, err := p.since(ctx, pat); err != nil || tok != "" {
			t.Errorf("pat's sync position %q, %v; want none", tok, err)
		}
		if err := p.setOff(ctx, sam, false); err != nil {
			t.Fatal(err)
		}
		if off, _ := p.isOff(ctx, sam); off {
			t.Error("`on` did not clear the switch")
		}
	})
}

// The double_puppet section's example, struct and upgrader agree.
func TestPuppetingConfigUpgrade(t *testing.T) {
	var base, old yaml.Node
	p := newPuppeting()
	example, data, upgrader := p.GetConfig()
	if err := yaml.Unmarshal([]byte(example), &base); err != nil {
		t.Fatalf("example does not parse: %v", err)
	}
	if err := yaml.Unmarshal([]byte("enabled: false\nephemeral: sync\nobsolete: 1\n"), &old); err != nil {
		t.Fatal(err)
	}
	upgrader.DoUpgrade(up.NewHelper(&base, &old))
	out, err := yaml.Marshal(&base)
	if err != nil {
		t.Fatal(err)
	}
	if err = yaml.Unmarshal(out, data); err != nil {
		t.Fatal(err)
	}
	if p.cfg.Enabled || p.cfg.ephemeral() != ephemeralSync || p.cfg.Registration != DefaultDoublePuppetRegistration {
		t.Errorf("upgraded config %+v", p.cfg)
	}
	if err = p.ValidateConfig(); err != nil {
		t.Error(err)
	}
	p.cfg.Ephemeral = "sometimes"
	if p.ValidateConfig() == nil {
		t.Error("an unknown ephemeral mode was accepted")
	}
}

// TestAutoStopsSyncingWhenTheHomeserverPushes: in auto mode a receipt the
// homeserver pushed to the appservice (MSC2409) stops the receipt syncs and
// keeps new ones from starting; the sync's own events do not count.
func TestAutoStopsSyncingWhenTheHomeserverPushes(t *testing.T) {
	p := newPuppeting()
	p.mu.Lock()
	p.runCtx, p.stopAll = context.WithCancel(context.Background())
	p.mu.Unlock()
	defer p.stopAll()
	ctx, cancel := context.WithCancel(p.runCtx)
	defer cancel()
	p.loops["@sam:example.org"] = &syncLoop{cancel: cancel}

	synced := &event.Event{Type: event.EphemeralEventReceipt}
	synced.Mautrix.EventSource = event.SourceEphemeral | event.SourceJoin
	p.sawEphemeral(context.Background(), synced)
	if !p.syncWanted() || ctx.Err() != nil {
		t.Fatal("the sync's own event was taken for a push")
	}
	pushed := &event.Event{Type: event.EphemeralEventReceipt}
	pushed.Mautrix.EventSource = event.SourceEphemeral
	p.sawEphemeral(context.Background(), pushed)
	if p.syncWanted() || ctx.Err() == nil || len(p.loops) != 0 {
		t.Error("a pushed receipt did not stop the receipt sync")
	}
	p.cfg.Ephemeral = ephemeralSync
	if !p.syncWanted() {
		t.Error("ephemeral: sync must keep syncing whatever the homeserver does")
	}
}
