package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
)

// countLedger is a counter's database: the items written, by remote ID.
type countLedger struct {
	mu      sync.Mutex
	written map[networkid.UserID]int
	batches int
	fail    bool
}

func (l *countLedger) write(_ context.Context, items []countItem) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return errors.New("database is down")
	}
	l.batches++
	for _, it := range items {
		if it.done != nil {
			panic("a flush request was written as a count")
		}
		l.written[it.obs.RemoteID]++
	}
	return nil
}

func (l *countLedger) count(id networkid.UserID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written[id]
}

// TestCounterWritesEachCountOnce: eight senders queue counts while readers
// flush; a flush returns only once every count queued before it is
// written; counts are written in batches (not one transaction each); when the writer stops in the middle, each count
// is either written by it or refused to its sender (who writes it
// itself): none is lost, none written twice.
func TestCounterWritesEachCountOnce(t *testing.T) {
	l := &countLedger{written: map[networkid.UserID]int{}}
	c := newCounter(20*time.Millisecond, l.write)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		c.run(ctx)
	}()

	const senders, each = 8, 3000
	var wg sync.WaitGroup
	refused := make([]int, senders)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := networkid.UserID(fmt.Sprintf("telegram.%d", s))
			for i := range each {
				if !c.add(context.Background(), audit.Observation{RemoteID: id}, migration.BorderMessage{}) {
					refused[s]++
					continue
				}
				if i == 1000 {
					// A reader: everything this sender queued is written.
					if err := c.flush(context.Background()); err != nil {
						t.Errorf("flush: %v", err)
					}
					if got := l.count(id); got != i+1-refused[s] {
						t.Errorf("sender %d: %d counts written after a flush, want %d", s, got, i+1-refused[s])
					}
				}
				if s == 0 && i == 2000 {
					stop() // the gate stops while the others still send
				}
			}
		}()
	}
	wg.Wait()
	<-ran
	total := 0
	for s := range senders {
		id := networkid.UserID(fmt.Sprintf("telegram.%d", s))
		if got := l.count(id) + refused[s]; got != each {
			t.Errorf("sender %d: %d written + %d refused, want %d", s, l.count(id), refused[s], each)
		}
		total += l.count(id)
	}
	if l.batches == 0 || total/l.batches < 10 {
		t.Errorf("%d counts in %d transactions: not gathered", total, l.batches)
	}
	if err := c.flush(context.Background()); err != nil {
		t.Errorf("flush after stop: %v", err)
	}
	if c.add(context.Background(), audit.Observation{RemoteID: "telegram.late"}, migration.BorderMessage{}) {
		t.Error("a stopped counter took a count")
	}
}

// TestCounterReportsAFailedWrite: a reader's flush reports that the counts
// could not be written, and a panic in the write does not stop the writer.
func TestCounterReportsAFailedWrite(t *testing.T) {
	l := &countLedger{written: map[networkid.UserID]int{}, fail: true}
	panicked := false
	c := newCounter(time.Hour, func(ctx context.Context, items []countItem) error {
		if !panicked {
			panicked = true
			panic("driver bug")
		}
		return l.write(ctx, items)
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go c.run(ctx)
	for _, wantErr := range []string{"panic while recording counts: driver bug", "database is down", ""} {
		if wantErr == "" {
			l.mu.Lock()
			l.fail = false
			l.mu.Unlock()
		}
		c.add(context.Background(), audit.Observation{RemoteID: "telegram.1"}, migration.BorderMessage{})
		err := c.flush(context.Background())
		if (err == nil) != (wantErr == "") || err != nil && err.Error() != wantErr {
			t.Errorf("flush = %v, want %q", err, wantErr)
		}
	}
	if got := l.count("telegram.1"); got != 1 {
		t.Errorf("%d counts written once the database is back, want 1 (the failed ones are logged and dropped)", got)
	}
}
