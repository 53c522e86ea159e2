// Package seal keeps identifiers out of the governance tables when a hash key
// is configured (`network.governance.contact_hash_key`, "hashed mode").
//
// Two forms replace a value:
//
//   - a pseudonym (Pseudonym): a keyed hash, deterministic, one way. Equal
//     values give equal pseudonyms, so lookups and cross-references still
//     work (the audit log, the contact registry and its links, admin
//     outputs);
//   - a sealed value (Seal, SealBytes): authenticated encryption under a key
//     derived from the hash key, where the gateway needs the value back
//     (approval requests' login and portal key, held events, the portals and
//     logins the gate keeps). Seal is deterministic (the nonce is a keyed
//     hash of the kind and the value, as in SIV), so a sealed column is still
//     looked up by equality; SealBytes (held events, which hold message
//     content) takes a random nonce.
//
// Both are written with letters only (Encode), never decimal digits, so that
// a stored pseudonym or sealed value can never look like, or be mistaken
// for, a phone number or a numeric user ID.
//
// A nil *Sealer is hashed mode off: every method returns its input.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

// MinKeyLength is the shortest hash key New accepts.
const MinKeyLength = 32

// PseudonymPrefix starts every pseudonym, SealedPrefix every sealed string.
const (
	PseudonymPrefix = "hmac-sha256:"
	SealedPrefix    = "sealed:"
)

// sealedMagic starts every sealed byte string (SealBytes).
var sealedMagic = []byte("passerelle-sealed-v1\x00")

// Kinds of values: the kind is hashed with the value (and is the associated
// data of a sealed value), so that a value of one kind never matches or
// opens as another.
const (
	KindRemoteID = "remote_id"
	KindPhone    = "phone"
	KindUsername = "username"
	KindLogin    = "login"
	KindPortal   = "portal"
	KindText     = "text"
	KindHeld     = "held"
	KindMessage  = "message"
)

// ErrOpen is returned (wrapped) for a sealed value that does not open under
// the key (another key, or tampered with).
var ErrOpen = errors.New("failed to open sealed value")

// Sealer pseudonymises and seals under one hash key.
type Sealer struct {
	macKey []byte
	sivKey []byte
	aead   cipher.AEAD
}

// New returns the sealer of key, or nil (hashed mode off) for an empty key.
// A key shorter than MinKeyLength is refused.
func New(key []byte) (*Sealer, error) {
	if len(key) == 0 {
		return nil, nil
	}
	if len(key) < MinKeyLength {
		return nil, fmt.Errorf("contact hash key has %d bytes, at least %d are needed", len(key), MinKeyLength)
	}
	block, err := aes.NewCipher(derive(key, "encryption"))
	if err != nil {
		return nil, fmt.Errorf("failed to make cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("failed to make AEAD: %w", err)
	}
	return &Sealer{macKey: bytes.Clone(key), sivKey: derive(key, "synthetic-nonce"), aead: aead}, nil
}

// derive is a 32-byte subkey of key for one purpose.
func derive(key []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("passerelle-seal-v1\x00" + purpose))
	return mac.Sum(nil)
}

// On reports whether hashed mode is on.
func (s *Sealer) On() bool { return s != nil }

func keyedHash(key []byte, kind string, value []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(kind))
	mac.Write([]byte{0})
	mac.Write(value)
	return mac.Sum(nil)
}

// Pseudonym is the keyed hash of value: "hmac-sha256:" and HMAC-SHA256 under
// the hash key of kind, a zero byte and value, encoded with Encode. An empty
// value, and a value that already is a pseudonym, are returned as they are.
func (s *Sealer) Pseudonym(kind, value string) string {
	if s == nil || value == "" || IsPseudonym(value) {
		return value
	}
	return PseudonymPrefix + Encode(keyedHash(s.macKey, kind, []byte(value)))
}

// IsPseudonym reports whether v has the form of a pseudonym.
func IsPseudonym(v string) bool {
	rest, ok := strings.CutPrefix(v, PseudonymPrefix)
	return ok && len(rest) == 2*sha256.Size && isEncoded(rest)
}

// Seal encrypts value deterministically: "sealed:" and, encoded, a nonce
// (the first 12 bytes of a keyed hash of kind and value) followed by the
// AES-256-GCM ciphertext of value with kind as associated data. An empty
// value, and a value that already is sealed, are returned as they are.
func (s *Sealer) Seal(kind, value string) string {
	if s == nil || value == "" || strings.HasPrefix(value, SealedPrefix) {
		return value
	}
	nonce := keyedHash(s.sivKey, kind, []byte(value))[:s.aead.NonceSize()]
	return SealedPrefix + Encode(s.aead.Seal(nonce, nonce, []byte(value), []byte(kind)))
}

// Open returns the value that Seal sealed. A value without the sealed form
// is returned as it is (stored before hashed mode was on).
func (s *Sealer) Open(kind, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, SealedPrefix)
	if s == nil || !ok {
		return stored, nil
	}
	data, err := Decode(rest)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrOpen, err)
	}
	plain, err := s.open(kind, data)
	return string(plain), err
}

func (s *Sealer) open(kind string, data []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(data) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	plain, err := s.aead.Open(nil, data[:n], data[n:], []byte(kind))
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %w", ErrOpen, kind, err)
	}
	return plain, nil
}

// SealBytes encrypts data with a random nonce, behind a magic header. Nil
// data, and data that already is sealed, are returned as they are.
func (s *Sealer) SealBytes(kind string, data []byte) ([]byte, error) {
	if s == nil || data == nil || bytes.HasPrefix(data, sealedMagic) {
		return data, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("failed to make nonce: %w", err)
	}
	out := append(bytes.Clone(sealedMagic), nonce...)
	return s.aead.Seal(out, nonce, data, []byte(kind)), nil
}

// OpenBytes returns the data that SealBytes sealed. Data without the magic
// header is returned as it is (stored before hashed mode was on).
func (s *Sealer) OpenBytes(kind string, stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, sealedMagic) {
		return stored, nil
	}
	if s == nil {
		return nil, fmt.Errorf("%w: sealed data, but no contact hash key is configured", ErrOpen)
	}
	return s.open(kind, stored[len(sealedMagic):])
}

// Scrub returns text as it is, or its pseudonym (of KindText) if it looks
// like it holds a number (LooksLikeNumber: perhaps a phone number or a
// Telegram user ID): for free text that an admin or the remote side wrote.
func (s *Sealer) Scrub(text string) string {
	if s == nil || !LooksLikeNumber(text) {
		return text
	}
	return s.Pseudonym(KindText, text)
}

// numberSeparators are what people write between the digits of a number
// ("+1 555-000-1111", "06.12.34.56.78"). A date counts as a number too: a
// caller that keeps timestamps tells them apart itself.
const numberSeparators = " +-.()/\u00a0"

// LooksLikeNumber reports whether s holds DigitRun or more digits in a row,
// ignoring the separators people write in phone numbers ("+33 6 12 34 56 78",
// "06.12.34.56.78", "+1 555-000-1111").
func LooksLikeNumber(s string) bool {
	digits := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			if digits++; digits >= DigitRun {
				return true
			}
		case strings.ContainsRune(numberSeparators, c):
		default:
			digits = 0
		}
	}
	return false
}

// DigitRun is the length of a run of digits that hashed mode treats as a
// possible phone number or numeric user ID.
const DigitRun = 7

// HasDigitRun reports whether s holds n or more ASCII digits in a row.
func HasDigitRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// alphabet encodes a nibble: the hex digits 0-9 become g-p and a-f stay,
// so a hex string converts by replacing its digits (upgrade 03 of the
// governance schema does this for the pseudonyms stored before).
const alphabet = "ghijklmnopabcdef"

// Encode writes data with 16 lowercase letters (a-p), two per byte.
func Encode(data []byte) string {
	out := make([]byte, 2*len(data))
	for i, b := range data {
		out[2*i], out[2*i+1] = alphabet[b>>4], alphabet[b&0xf]
	}
	return string(out)
}

func nibble(c byte) (byte, bool) {
	i := strings.IndexByte(alphabet, c)
	return byte(i), i >= 0
}

func isEncoded(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := nibble(s[i]); !ok {
			return false
		}
	}
	return true
}

// Decode reads what Encode wrote.
func Decode(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, errors.New("odd length")
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, ok1 := nibble(s[2*i])
		lo, ok2 := nibble(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("invalid character at %d", 2*i)
		}
		out[i] = hi<<4 | lo
	}
	return out, nil
}
