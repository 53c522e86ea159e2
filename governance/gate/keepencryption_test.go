package gate

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// TestKeepEncryption: once a room is megolm-encrypted, state events that
// remove or change the algorithm (as they come from a transaction) leave the
// room encrypted; rooms that were not encrypted take any setting.
func TestKeepEncryption(t *testing.T) {
	ctx := context.Background()
	mem := mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore)
	store := KeepEncryption(mem)
	if KeepEncryption(store) != store {
		t.Error("wrapping twice wrapped again")
	}
	const room, plain id.RoomID = "!portal:test", "!plain:test"
	stateKey := ""
	apply := func(roomID id.RoomID, content *event.EncryptionEventContent) {
		mautrix.UpdateStateStore(ctx, store, &event.Event{
			Type: event.StateEncryption, RoomID: roomID, StateKey: &stateKey, Content: event.Content{Parsed: content},
		})
	}
	for _, c := range []struct {
		name    string
		roomID  id.RoomID
		content *event.EncryptionEventContent
		want    id.Algorithm
	}{
		{"megolm in a new room", room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}, id.AlgorithmMegolmV1},
		{"removing encryption is ignored", room, &event.EncryptionEventContent{}, id.AlgorithmMegolmV1},
		{"another algorithm is ignored", room, &event.EncryptionEventContent{Algorithm: id.AlgorithmOlmV1}, id.AlgorithmMegolmV1},
		{"megolm with a rotation period is taken", room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1, RotationPeriodMessages: 10}, id.AlgorithmMegolmV1},
		{"a room without megolm takes anything", plain, &event.EncryptionEventContent{Algorithm: "org.example.none"}, "org.example.none"},
	} {
		apply(c.roomID, c.content)
		got, err := mem.GetEncryptionEvent(ctx, c.roomID)
		if err != nil || got == nil || got.Algorithm != c.want {
			t.Errorf("%s: stored %+v (%v), want algorithm %q", c.name, got, err, c.want)
		}
	}
	if got, _ := mem.GetEncryptionEvent(ctx, room); got.RotationPeriodMessages != 10 {
		t.Errorf("a megolm update was not stored: %+v", got)
	}
	if enc, _ := store.IsEncrypted(ctx, room); !enc {
		t.Error("the portal is no longer encrypted")
	}
}
