package wasim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/signalerror"
	"go.mau.fi/libsignal/util/optional"
	"go.mau.fi/util/random"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"github.com/passerelle/passerelle/simulator/whatsapp/memstore"
)

var pbSerializer = store.SignalProtobufSerializer

// Account is a simulated WhatsApp user. Its phone (device 0) is simulated by
// the server, which holds its Signal state; devices linked with ScanQR or
// EnterPairingCode are real whatsmeow clients.
type Account struct {
	Phone    string    // digits only, e.g. "15550001111"
	PushName string    // the name other users see
	JID      types.JID // phone@s.whatsapp.net
	LID      types.JID // n@lid

	srv   *Server
	sigMu sync.Mutex // serialises Signal operations on the phone's state
	dev   *store.Device

	// Guarded by srv.mu.
	devices    map[uint16]*companion
	nextDevice uint16
	keyIndex   uint32
	sent       map[string]*sentMessage
	online     bool      // the contact's presence (SetPresence)
	lastSeen   time.Time // when it went offline; zero when hidden
}

// companion is a linked device (a whatsmeow client) as the server knows it.
type companion struct {
	id          uint16
	noisePub    [32]byte
	identityPub [32]byte
	regID       uint32
	signedPre   *keys.PreKey // public part only
	preKeys     []*keys.PreKey
	conn        *conn
	pending     []waBinary.Node
	// unacked are the message nodes sent to the device that it has not
	// acknowledged yet (by its receipt, or an <ack> for a message it could
	// not take), in order: like WhatsApp, the server sends them again
	// when the device next logs in.
	unacked []waBinary.Node
	// notes are the IDs of notifications sent and not acknowledged yet.
	notes map[string]struct{}
	// historyDue: the phone sends the history sync at the device's first
	// login.
	historyDue bool
}

// sentMessage is kept for answering retry receipts.
type sentMessage struct {
	plaintext []byte
	to        string    // the recipient's phone, for direct messages
	group     types.JID // empty for direct messages
	msgType   string
}

// normalizePhone strips everything but digits ("+1 555-0100" → "15550100");
// it also accepts a JID ("15550100@s.whatsapp.net").
func normalizePhone(phone string) string {
	if at := strings.IndexByte(phone, '@'); at >= 0 {
		phone = phone[:at]
	}
	if colon := strings.IndexByte(phone, ':'); colon >= 0 {
		phone = phone[:colon]
	}
	var b strings.Builder
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// CreateAccount registers a simulated WhatsApp user with a phone number (any
// format; only digits are kept) and a push name.
func (s *Server) CreateAccount(phone, pushName string) (*Account, error) {
	phone = normalizePhone(phone)
	if len(phone) < 7 {
		return nil, fmt.Errorf("phone number %q is too short", phone)
	}
	ms := memstore.New(nil)
	dev := ms.NewDevice()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[phone]; ok {
		return nil, fmt.Errorf("%w: %s", ErrAccountExists, phone)
	}
	lid := strconv.FormatUint(s.nextLID, 10)
	s.nextLID++
	acc := &Account{
		Phone:      phone,
		PushName:   pushName,
		JID:        types.NewJID(phone, types.DefaultUserServer),
		LID:        types.NewJID(lid, types.HiddenUserServer),
		srv:        s,
		dev:        dev,
		devices:    map[uint16]*companion{},
		nextDevice: 2,
		sent:       map[string]*sentMessage{},
	}
	id := acc.JID
	dev.ID = &id
	dev.LID = acc.LID
	s.accounts[phone] = acc
	s.byLID[lid] = acc
	return acc, nil
}

// Account returns the account of a phone number (any format).
func (s *Server) Account(phone string) (*Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, ok := s.accounts[normalizePhone(phone)]
	return acc, ok
}

// Unacked is how many messages sent to linked devices they have not
// acknowledged yet. Tests wait for 0 before disconnecting a client:
// whatsmeow sends acks from goroutines that race its Disconnect.
func (s *Server) Unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, acc := range s.accounts {
		for _, d := range acc.devices {
			if d.conn != nil {
				n += len(d.unacked)
			}
		}
	}
	return n
}

// Accounts lists all accounts.
func (s *Server) Accounts() []*Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Account, 0, len(s.accounts))
	for _, acc := range s.accounts {
		out = append(out, acc)
	}
	return out
}

func (s *Server) account(phone string) (*Account, error) {
	acc, ok := s.Account(phone)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoAccount, phone)
	}
	return acc, nil
}

// accountByJID resolves a phone-number or LID JID; s.mu must be held.
func (s *Server) accountByJIDLocked(jid types.JID) *Account {
	switch jid.Server {
	case types.DefaultUserServer:
		return s.accounts[jid.User]
	case types.HiddenUserServer:
		return s.byLID[jid.User]
	}
	return nil
}

func (s *Server) accountByJID(jid types.JID) *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accountByJIDLocked(jid)
}

// Devices returns the JIDs of the account's linked devices.
func (a *Account) Devices() []types.JID {
	a.srv.mu.Lock()
	defer a.srv.mu.Unlock()
	out := make([]types.JID, 0, len(a.devices))
	for id := range a.devices {
		out = append(out, a.deviceJID(id))
	}
	return out
}

func (a *Account) deviceJID(id uint16) types.JID {
	return types.JID{User: a.Phone, Device: id, Server: types.DefaultUserServer}
}

func (a *Account) deviceLID(id uint16) types.JID {
	return types.JID{User: a.LID.User, Device: id, Server: types.HiddenUserServer}
}

// signalAddress is the address under which simulated phones keep their
// Signal state for a device of this account: always the LID form, so state
// does not depend on how a stanza was addressed.
func (a *Account) signalAddress(id uint16) *protocol.SignalAddress {
	return a.deviceLID(id).SignalAddress()
}

func (a *Account) identityPub() [32]byte { return *a.dev.IdentityKey.Pub }

// linkedDevices returns the account's companions; s.mu must be held.
func (a *Account) linkedDevicesLocked() []*companion {
	out := make([]*companion, 0, len(a.devices))
	for _, d := range a.devices {
		out = append(out, d)
	}
	return out
}

// preKeyBundleFor builds a bundle for one of the account's linked devices,
// consuming a one-time prekey when one is left.
func (s *Server) preKeyBundleFor(d *companion) *prekey.Bundle {
	s.mu.Lock()
	var pre *keys.PreKey
	if len(d.preKeys) > 0 {
		pre, d.preKeys = d.preKeys[0], d.preKeys[1:]
	}
	s.mu.Unlock()
	ik := identity.NewKey(ecc.NewDjbECPublicKey(d.identityPub))
	spk := ecc.NewDjbECPublicKey(*d.signedPre.Pub)
	if pre != nil {
		return prekey.NewBundle(d.regID, uint32(d.id), optional.NewOptionalUint32(pre.KeyID), d.signedPre.KeyID,
			ecc.NewDjbECPublicKey(*pre.Pub), spk, *d.signedPre.Signature, ik)
	}
	return prekey.NewBundle(d.regID, uint32(d.id), optional.NewEmptyUint32(), d.signedPre.KeyID,
		nil, spk, *d.signedPre.Signature, ik)
}

// encryptTo encrypts plaintext (unpadded) from a's phone to a linked device.
func (a *Account) encryptTo(ctx context.Context, target *Account, d *companion, plaintext []byte) (encType string, ciphertext []byte, err error) {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	addr := target.signalAddress(d.id)
	builder := session.NewBuilderFromSignal(a.dev, addr, pbSerializer)
	has, err := a.dev.ContainsSession(ctx, addr)
	if err != nil {
		return "", nil, err
	}
	if !has {
		if err = a.processBundleLocked(ctx, builder, addr, a.srv.preKeyBundleFor(d)); err != nil {
			return "", nil, err
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, padMessage(plaintext))
	if err != nil {
		return "", nil, fmt.Errorf("failed to encrypt for %s: %w", addr, err)
	}
	if msg.Type() == protocol.PREKEY_TYPE {
		return "pkmsg", msg.Serialize(), nil
	}
	return "msg", msg.Serialize(), nil
}

func (a *Account) processBundleLocked(ctx context.Context, builder *session.Builder, addr *protocol.SignalAddress, bundle *prekey.Bundle) error {
	err := builder.ProcessBundle(ctx, bundle)
	if errors.Is(err, signalerror.ErrUntrustedIdentity) {
		// A re-linked device got a new identity: trust it, as the phone app does.
		_ = a.dev.Identities.DeleteIdentity(ctx, addr.String())
		err = builder.ProcessBundle(ctx, bundle)
	}
	if err != nil {
		return fmt.Errorf("failed to process prekey bundle of %s: %w", addr, err)
	}
	return nil
}

// resetSession replaces the phone's session with a device by one built from
// a fresh bundle (as sent in a retry receipt).
func (a *Account) resetSession(ctx context.Context, target *Account, id uint16, bundle *prekey.Bundle) error {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	addr := target.signalAddress(id)
	_ = a.dev.Sessions.DeleteSession(ctx, addr.String())
	return a.processBundleLocked(ctx, session.NewBuilderFromSignal(a.dev, addr, pbSerializer), addr, bundle)
}

// decryptFrom decrypts a pkmsg or msg sent to a's phone by a linked device.
func (a *Account) decryptFrom(ctx context.Context, addr *protocol.SignalAddress, encType string, ciphertext []byte) ([]byte, error) {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	builder := session.NewBuilderFromSignal(a.dev, addr, pbSerializer)
	cipher := session.NewCipher(builder, addr)
	var plaintext []byte
	switch encType {
	case "pkmsg":
		msg, err := protocol.NewPreKeySignalMessageFromBytes(ciphertext, pbSerializer.PreKeySignalMessage, pbSerializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("failed to parse prekey message: %w", err)
		}
		plaintext, err = cipher.DecryptMessage(ctx, msg)
		if errors.Is(err, signalerror.ErrUntrustedIdentity) {
			_ = a.dev.Identities.DeleteIdentity(ctx, addr.String())
			plaintext, err = cipher.DecryptMessage(ctx, msg)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to decrypt prekey message: %w", err)
		}
	case "msg":
		msg, err := protocol.NewSignalMessageFromBytes(ciphertext, pbSerializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("failed to parse message: %w", err)
		}
		if plaintext, err = cipher.Decrypt(ctx, msg); err != nil {
			return nil, fmt.Errorf("failed to decrypt message: %w", err)
		}
	default:
		return nil, fmt.Errorf("unexpected enc type %q", encType)
	}
	return unpadMessage(plaintext)
}

func padMessage(plaintext []byte) []byte {
	n := random.Bytes(1)[0] & 0xf
	if n == 0 {
		n = 0xf
	}
	return append(append([]byte{}, plaintext...), bytes.Repeat([]byte{n}, int(n))...)
}

func unpadMessage(plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, errors.New("plaintext is empty")
	}
	n := int(plaintext[len(plaintext)-1])
	if n == 0 || n > len(plaintext) || !bytes.Equal(plaintext[len(plaintext)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, errors.New("plaintext has invalid padding")
	}
	return plaintext[:len(plaintext)-n], nil
}
