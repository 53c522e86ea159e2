package appservice

import (
	"reflect"
	"testing"
	"unsafe"

	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/crypto"
)

// The gateway turns the OlmMachine's ratchet tracking off when neither
// delete_keys option reads it, and leaves it on when one does. It fails
// when a mautrix upgrade moves the machine out of the helper's field.
func TestOlmMachineReachable(t *testing.T) {
	h := &matrix.CryptoHelper{}
	if _, ok := olmMachineOf(h); !ok {
		t.Fatal("bridgev2's crypto helper no longer keeps its OlmMachine in its mach field: ratchet tracking stays on (see ratchet.go)")
	}
	mach := &crypto.OlmMachine{}
	f := reflect.ValueOf(h).Elem().FieldByName("mach")
	*(**crypto.OlmMachine)(unsafe.Pointer(f.UnsafeAddr())) = mach
	if got, _ := olmMachineOf(h); got != mach {
		t.Fatal("olmMachineOf did not return the helper's machine")
	}
	for _, tc := range []struct {
		name                     string
		ratchet, deleteFullyUsed bool
		wantDisabled             bool
	}{
		{"example config", false, false, true},
		{"ratchet_on_decrypt", true, false, false},
		{"delete_fully_used_on_decrypt", false, true, false},
	} {
		mach.DisableRatchetTracking = false
		cfg := &bridgeconfig.Config{}
		cfg.Encryption.DeleteKeys.DeleteOutboundOnAck = true
		cfg.Encryption.DeleteKeys.RatchetOnDecrypt = tc.ratchet
		cfg.Encryption.DeleteKeys.DeleteFullyUsedOnDecrypt = tc.deleteFullyUsed
		(&pacedCrypto{Crypto: h, config: cfg}).quietRatchet()
		if mach.DisableRatchetTracking != tc.wantDisabled {
			t.Errorf("%s: ratchet tracking disabled %v, want %v", tc.name, mach.DisableRatchetTracking, tc.wantDisabled)
		}
	}
}
