package gate

import (
	"context"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// encryptionKeeper is the appservice's state store, except that a room's
// megolm encryption, once known, is never replaced by a weaker setting (no
// algorithm, or another one): what Element and the Rust SDK do too.
//
// Guard undoes such a change on the homeserver, but only after the
// homeserver has sent it to the bridge, which stores it first; without the
// keeper, what the bridge sends to the room in between (a contact's message,
// a notice) would leave unencrypted.
type encryptionKeeper struct {
	appservice.StateStore
}

var _ appservice.StateStore = (*encryptionKeeper)(nil)

// KeepEncryption wraps store so that it never weakens a room's encryption.
// Wrapping twice is wrapping once.
func KeepEncryption(store appservice.StateStore) appservice.StateStore {
	if _, ok := store.(*encryptionKeeper); ok || store == nil {
		return store
	}
	return &encryptionKeeper{StateStore: store}
}

// SetEncryptionEvent stores content unless it would weaken megolm.
func (s *encryptionKeeper) SetEncryptionEvent(ctx context.Context, roomID id.RoomID, content *event.EncryptionEventContent) error {
	if content == nil || content.Algorithm != id.AlgorithmMegolmV1 {
		// IsEncrypted means megolm.
		encrypted, err := s.StateStore.IsEncrypted(ctx, roomID)
		if err != nil {
			return err
		}
		if encrypted {
			var algorithm id.Algorithm
			if content != nil {
				algorithm = content.Algorithm
			}
			zerolog.Ctx(ctx).Warn().Stringer("room_id", roomID).Str("algorithm", string(algorithm)).
				Msg("Ignoring a room encryption change that would weaken megolm")
			return nil
		}
	}
	return s.StateStore.SetEncryptionEvent(ctx, roomID, content)
}
