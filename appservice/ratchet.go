package appservice

import (
	"context"
	"reflect"
	"unsafe"

	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/crypto"
)

// For every megolm event it decrypts, mautrix's OlmMachine updates the
// session's "ratchet safety" record (the next index expected, the indices
// missed) and writes the whole session back to the crypto store: a
// pickled session upserted and two debug lines, for each staff message
// bridged to a remote network. That record is read only to ratchet
// sessions forward or delete used ones on decryption
// (encryption.delete_keys.ratchet_on_decrypt and
// delete_fully_used_on_decrypt). With both off, as in the example config,
// the gateway turns the tracking off (the machine's DisableRatchetTracking,
// which bridgev2 does not set): nothing reads what it would write. Turned
// on later, those options start from records that are behind, which makes
// them keep keys longer, never drop one too early.
//
// bridgev2 keeps the machine in an unexported field of its crypto helper;
// olmMachineOf reaches it by reflection. If a mautrix upgrade renames it,
// the tracking stays on (and TestOlmMachineReachable fails).

// ratchetTrackingNeeded reports whether the delete_keys options read the
// ratchet safety records.
func ratchetTrackingNeeded(cfg bridgeconfig.EncryptionConfig) bool {
	return cfg.DeleteKeys.RatchetOnDecrypt || cfg.DeleteKeys.DeleteFullyUsedOnDecrypt
}

// olmMachineOf returns the helper's OlmMachine (nil before its Init), and
// whether the helper still keeps it where this code looks.
func olmMachineOf(h *matrix.CryptoHelper) (*crypto.OlmMachine, bool) {
	if h == nil {
		return nil, false
	}
	f := reflect.ValueOf(h).Elem().FieldByName("mach")
	if !f.IsValid() || f.Type() != reflect.TypeOf((*crypto.OlmMachine)(nil)) {
		return nil, false
	}
	return *(**crypto.OlmMachine)(unsafe.Pointer(f.UnsafeAddr())), true
}

// quietRatchet turns the ratchet tracking off on the helper's machine when
// no option needs it. It runs right after the helper's Init (which makes
// the machine), before the bridge handles events.
func (p *pacedCrypto) quietRatchet() {
	if p.config == nil || ratchetTrackingNeeded(p.config.Encryption) {
		return
	}
	h, _ := p.Crypto.(*matrix.CryptoHelper)
	if mach, ok := olmMachineOf(h); ok && mach != nil {
		mach.DisableRatchetTracking = true
	}
}

// Init initialises the helper, then quiets its machine's ratchet tracking.
func (p *pacedCrypto) Init(ctx context.Context) error {
	if err := p.Crypto.Init(ctx); err != nil {
		return err
	}
	p.quietRatchet()
	return nil
}
