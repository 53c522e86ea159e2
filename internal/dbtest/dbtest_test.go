package dbtest

import (
	"context"
	"testing"
)

// TestEachBackendIsFreshAndPersistent checks the harness itself: a table made
// on one connection pool is seen by a second one (a restart), and each test
// starts from an empty database.
func TestEachBackendIsFreshAndPersistent(t *testing.T) {
	for round := 0; round < 2; round++ {
		Each(t, func(t *testing.T, b Backend) {
			ctx := context.Background()
			db := b.Open(t)
			if _, err := db.Exec(ctx, "CREATE TABLE probe (n INTEGER)"); err != nil {
				t.Fatalf("a fresh %s database already had the table: %v", b.Name, err)
			}
			if _, err := db.Exec(ctx, "INSERT INTO probe (n) VALUES (42)"); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := b.Open(t).QueryRow(ctx, "SELECT n FROM probe").Scan(&n); err != nil || n != 42 {
				t.Fatalf("second pool read %d, %v", n, err)
			}
		})
	}
}
