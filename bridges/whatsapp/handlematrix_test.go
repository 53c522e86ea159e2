package whatsapp

import (
	"fmt"
	"regexp"
	"sync/atomic"
	"testing"

	"maunium.net/go/mautrix/id"
)

// The WhatsApp message ID of a Matrix event has whatsmeow's form, is the
// same every time the event is handled (a redelivered transaction) and
// differs between events.
func TestMatrixMessageID(t *testing.T) {
	form := regexp.MustCompile(`^3EB0[0-9A-F]{18}$`)
	events := []id.EventID{"$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "$a", ""}
	seen := map[string]id.EventID{}
	for _, evt := range events {
		got := string(matrixMessageID(evt))
		if !form.MatchString(got) {
			t.Errorf("message ID of %q is %q, want 3EB0 and 18 upper-case hex digits", evt, got)
		}
		if again := string(matrixMessageID(evt)); again != got {
			t.Errorf("message ID of %q changed: %q then %q", evt, got, again)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%q has the message ID of %q", evt, other)
		}
		seen[got] = evt
	}
}

var lastTestEventID atomic.Int64

// testEventID is a new Matrix event ID: like a homeserver's, each event has
// its own, and so each message its own WhatsApp ID.
func testEventID() id.EventID {
	return id.EventID(fmt.Sprintf("$test-event-%d", lastTestEventID.Add(1)))
}
