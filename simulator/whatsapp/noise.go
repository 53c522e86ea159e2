package wasim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"

	"go.mau.fi/whatsmeow/socket"
)

// noiseState is the responder side of WhatsApp's
// Noise_XX_25519_AESGCM_SHA256 handshake (see whatsmeow's handshake.go for
// the initiator side).
type noiseState struct {
	hash    []byte
	salt    []byte
	key     cipher.AEAD
	counter uint32
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func nonce(counter uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], counter)
	return iv
}

func newNoiseState(header []byte) (*noiseState, error) {
	pattern := []byte(socket.NoiseStartPattern)
	ns := &noiseState{}
	if len(pattern) == 32 {
		ns.hash = pattern
	} else {
		h := sha256.Sum256(pattern)
		ns.hash = h[:]
	}
	ns.salt = ns.hash
	var err error
	if ns.key, err = newGCM(ns.hash); err != nil {
		return nil, err
	}
	ns.authenticate(header)
	return ns, nil
}

func (ns *noiseState) authenticate(data []byte) {
	h := sha256.Sum256(append(append([]byte{}, ns.hash...), data...))
	ns.hash = h[:]
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ct := ns.key.Seal(nil, nonce(ns.counter), plaintext, ns.hash)
	ns.counter++
	ns.authenticate(ct)
	return ct
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := ns.key.Open(nil, nonce(ns.counter), ciphertext, ns.hash)
	ns.counter++
	if err != nil {
		return nil, err
	}
	ns.authenticate(ciphertext)
	return pt, nil
}

func expand(salt, data []byte) (first, second []byte, err error) {
	h := hkdf.New(sha256.New, data, salt, nil)
	first, second = make([]byte, 32), make([]byte, 32)
	if _, err = io.ReadFull(h, first); err == nil {
		_, err = io.ReadFull(h, second)
	}
	return
}

func (ns *noiseState) mixDH(priv, pub [32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return fmt.Errorf("failed to compute shared secret: %w", err)
	}
	ns.counter = 0
	write, read, err := expand(ns.salt, secret)
	if err != nil {
		return err
	}
	ns.salt = write
	ns.key, err = newGCM(read)
	return err
}

// finish returns the transport ciphers. The client writes with the first key
// and reads with the second, so the server does the opposite.
func (ns *noiseState) finish() (readKey, writeKey cipher.AEAD, err error) {
	clientWrite, clientRead, err := expand(ns.salt, nil)
	if err != nil {
		return nil, nil, err
	}
	if readKey, err = newGCM(clientWrite); err != nil {
		return nil, nil, err
	}
	writeKey, err = newGCM(clientRead)
	return readKey, writeKey, err
}
