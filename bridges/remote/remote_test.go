package remote_test

import (
	"runtime"
	"testing"
	"time"

	"go.mau.fi/util/exsync"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
)

// The governance gate asks whether a chat's portal has a room while the
// portal's own loop may be making it (a held chat approved while its
// contact writes again): bridgev2 writes the room ID without a lock, then
// sets RoomCreated. RoomOf sees no room until then and the room after,
// without racing the write (go test -race: reading MXID first is reported
// as a DATA RACE, as CI once did in the gate).
func TestRoomOfWhileTheRoomIsMade(t *testing.T) {
	portal := &bridgev2.Portal{Portal: &database.Portal{}, RoomCreated: exsync.NewEvent()}
	if got := remote.RoomOf(portal); got != "" {
		t.Fatalf("RoomOf before the room = %q", got)
	}
	if got := remote.RoomOf(nil); got != "" {
		t.Fatalf("RoomOf(nil) = %q", got)
	}
	go func() {
		// What bridgev2's createMatrixRoomInLoop does.
		portal.MXID = "!made:x"
		portal.RoomCreated.Set()
	}()
	deadline := time.Now().Add(10 * time.Second)
	var got id.RoomID
	for got == "" && time.Now().Before(deadline) {
		got = remote.RoomOf(portal)
		runtime.Gosched()
	}
	if got != "!made:x" {
		t.Fatalf("RoomOf once the room is made = %q, want !made:x", got)
	}
}
