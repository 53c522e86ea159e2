package telegram

import (
	"testing"

	"maunium.net/go/mautrix/id"
)

// The random_id of a Matrix event is the same every time the event is
// handled (a redelivered transaction), differs between events and between
// parts of one event, and is never 0 (which Telegram does not deduplicate).
func TestMatrixRandomID(t *testing.T) {
	const a, b = id.EventID("$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), id.EventID("$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	if first, again := matrixRandomID(a, 0), matrixRandomID(a, 0); first != again {
		t.Fatal("random_id of one event changes between calls")
	}
	seen := map[int64]string{}
	for _, c := range []struct {
		evt  id.EventID
		part int
	}{{a, 0}, {a, 1}, {a, 2}, {b, 0}, {b, 1}, {"", 0}} {
		v := matrixRandomID(c.evt, c.part)
		if v == 0 {
			t.Errorf("random_id of %s part %d is 0", c.evt, c.part)
		}
		key := string(c.evt) + "/" + string(rune('0'+c.part))
		if other, dup := seen[v]; dup {
			t.Errorf("random_id of %s is also that of %s", key, other)
		}
		seen[v] = key
	}
}
