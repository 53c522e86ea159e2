package wastore

import (
	"context"
	"sync"
	"time"

	"go.mau.fi/util/dbutil"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// whatsmeow keeps each received message's decrypted form in the event
// buffer until the message is handled, then clears it (and only then
// acknowledges the message). One UPDATE and its commit per message were a
// tenth of the store's writes under load; the clears are gathered instead
// and written together, clearWindow after the first one waiting, or at
// once when clearBatch wait.
//
// A clear waiting counts as written: GetBufferedEvent answers "already
// processed" for it, as it would after the UPDATE, so a message the server
// sends again meanwhile is not handled twice. A stop writes what waits
// (Container.FlushClears); a crash before that leaves those plaintexts in
// the buffer, where the fourteen days' clean-up of old hashes removes them
// (the messages were handled: the server does not send them again).
const (
	clearWindow = 250 * time.Millisecond
	clearBatch  = 256
)

type clearKey struct {
	jid  string
	hash [32]byte
}

// plaintextClears gathers the clears of one container.
type plaintextClears struct {
	db  *dbutil.Database
	log waLog.Logger

	mu      sync.Mutex
	pending map[clearKey]struct{} // the clears waiting
	armed   bool                  // a write is due after clearWindow

	// write serialises the writes, so that FlushClears returns only once
	// every clear taken before it is in the database.
	write sync.Mutex
}

func newPlaintextClears(db *dbutil.Database, log waLog.Logger) *plaintextClears {
	return &plaintextClears{db: db, log: log, pending: make(map[clearKey]struct{})}
}

// add queues a clear; the caller writes the batch itself when it is full.
func (pc *plaintextClears) add(ctx context.Context, key clearKey) error {
	pc.mu.Lock()
	pc.pending[key] = struct{}{}
	full := len(pc.pending) >= clearBatch
	if !full && !pc.armed {
		pc.armed = true
		time.AfterFunc(clearWindow, func() {
			if err := pc.flush(context.Background()); err != nil {
				pc.log.Warnf("Failed to clear the plaintext of handled messages: %v", err)
			}
		})
	}
	pc.mu.Unlock()
	if full {
		return pc.flush(ctx)
	}
	return nil
}

// waiting reports whether a clear of key waits.
func (pc *plaintextClears) waiting(key clearKey) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	_, ok := pc.pending[key]
	return ok
}

// flush writes the clears waiting in one transaction. They stay waiting
// until written: after a failed write, the next clear queued arms another.
func (pc *plaintextClears) flush(ctx context.Context) error {
	pc.write.Lock()
	defer pc.write.Unlock()
	pc.mu.Lock()
	pc.armed = false
	batch := make([]clearKey, 0, len(pc.pending))
	for key := range pc.pending {
		batch = append(batch, key)
	}
	pc.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := pc.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, key := range batch {
			if _, err := pc.db.Exec(ctx, clearBufferedEventPlaintextQuery, key.jid, key.hash[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err // still waiting: the next clear arms a write again
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, key := range batch {
		delete(pc.pending, key)
	}
	return nil
}
