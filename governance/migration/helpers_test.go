package migration_test

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func newClock() *clocktest.Manual { return clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) }

type fixture struct {
	dir   *migration.Directory
	log   *audit.Log
	reg   *audit.Registry
	clock *clocktest.Manual
}

// newFixture opens the governance tables on b, with a registry that knows
// a WhatsApp contact (+33 6 12 34 56 78), a Telegram contact (@Press_Office,
// user 4242) and a Telegram contact with the same number as the WhatsApp
// one (user 77, +33 6 12 34 56 78 — an ambiguous number).
func newFixture(t *testing.T, b dbtest.Backend, hashKey []byte) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, b.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.New(hashKey)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	log := audit.NewLog(db)
	log.Now = c.Now
	reg := audit.NewSealedRegistry(db, log, s)
	reg.Now = c.Now
	for _, obs := range []audit.Observation{
		{Network: "whatsapp", RemoteID: "whatsapp.33612345678", Phone: "+33612345678", DisplayName: "Amina", Kind: audit.KindSeen},
		{Network: "telegram", RemoteID: "telegram.4242", Username: "Press_Office", DisplayName: "Press", Kind: audit.KindSeen},
		{Network: "telegram", RemoteID: "telegram.77", Phone: "+4915112345678", Kind: audit.KindSeen},
		{Network: "whatsapp", RemoteID: "whatsapp.4915112345678", Phone: "+4915112345678", Kind: audit.KindSeen},
	} {
		if _, err := reg.Record(ctx, obs); err != nil {
			t.Fatal(err)
		}
	}
	dir := migration.New(db, log, reg, s)
	dir.Now = c.Now
	return &fixture{dir: dir, log: log, reg: reg, clock: c}
}

func (f *fixture) ident(network, remoteID string) migration.Identity {
	return migration.Identity{Network: network, Contact: f.reg.Key(networkid.UserID(remoteID))}
}

// actions returns the actions of the log's entries after seq.
func (f *fixture) entries(t *testing.T, after int64) []audit.Entry {
	t.Helper()
	entries, err := f.log.List(context.Background(), audit.Filter{AfterSeq: after, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func (f *fixture) head(t *testing.T) int64 {
	t.Helper()
	h, err := f.log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Seq
}
