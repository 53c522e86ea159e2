package audit_test

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func newClock() *clocktest.Manual { return clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) }

func openDB(t *testing.T, b dbtest.Backend) *dbutil.Database {
	t.Helper()
	db, err := store.Open(context.Background(), b.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}
