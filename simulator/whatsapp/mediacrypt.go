package wasim

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"go.mau.fi/whatsmeow"
)

// WhatsApp media encryption, written from the protocol rather than taken
// from whatsmeow, so that the simulator checks the client instead of
// agreeing with it by construction:
//
//	expanded = HKDF-SHA256(mediaKey, salt: none, info: "WhatsApp <Type> Keys", 112 bytes)
//	iv = expanded[0:16], cipherKey = expanded[16:48], macKey = expanded[48:80]
//	enc = AES-256-CBC(cipherKey, iv, PKCS#7(plaintext))
//	mac = HMAC-SHA256(macKey, iv || enc)[:10]
//	the server stores enc || mac; fileEncSHA256 = SHA-256(enc || mac),
//	fileSHA256 = SHA-256(plaintext)

// Errors of media decryption.
var (
	ErrMediaMAC      = errors.New("media MAC mismatch")
	ErrMediaEncHash  = errors.New("encrypted media SHA-256 mismatch")
	ErrMediaHash     = errors.New("media SHA-256 mismatch")
	ErrMediaPadding  = errors.New("invalid media padding")
	ErrMediaTooShort = errors.New("encrypted media too short")
)

const mediaMACLength = 10

type mediaKeys struct {
	iv, cipherKey, macKey []byte
}

func expandMediaKey(mediaKey []byte, typ whatsmeow.MediaType) (mediaKeys, error) {
	expanded, err := hkdf.Key(sha256.New, mediaKey, nil, string(typ), 112)
	if err != nil {
		return mediaKeys{}, fmt.Errorf("failed to expand media key: %w", err)
	}
	return mediaKeys{iv: expanded[:16], cipherKey: expanded[16:48], macKey: expanded[48:80]}, nil
}

// encryptMedia encrypts plaintext (streamed) into w as a phone uploads it,
// and returns the plaintext's length and SHA-256 and the SHA-256 of what it
// wrote.
func encryptMedia(mediaKey []byte, typ whatsmeow.MediaType, plaintext io.Reader, w io.Writer) (length uint64, fileSHA, encSHA []byte, err error) {
	keys, err := expandMediaKey(mediaKey, typ)
	if err != nil {
		return 0, nil, nil, err
	}
	block, err := aes.NewCipher(keys.cipherKey)
	if err != nil {
		return 0, nil, nil, err
	}
	cbc := cipher.NewCBCEncrypter(block, keys.iv)
	mac := hmac.New(sha256.New, keys.macKey)
	mac.Write(keys.iv)
	plainHash, encHash := sha256.New(), sha256.New()
	out := io.MultiWriter(w, mac, encHash)
	buf := make([]byte, 64*1024)
	var pending int
	for {
		n, rerr := io.ReadFull(plaintext, buf[pending:])
		pending += n
		length += uint64(n)
		plainHash.Write(buf[pending-n : pending])
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		} else if rerr != nil {
			return 0, nil, nil, fmt.Errorf("failed to read media: %w", rerr)
		}
		// A full buffer: encrypt it all (it is a multiple of the block size).
		cbc.CryptBlocks(buf[:pending], buf[:pending])
		if _, err = out.Write(buf[:pending]); err != nil {
			return 0, nil, nil, err
		}
		pending = 0
	}
	padLen := aes.BlockSize - pending%aes.BlockSize
	tail := append(buf[:pending:pending], make([]byte, padLen)...)
	for i := pending; i < len(tail); i++ {
		tail[i] = byte(padLen)
	}
	cbc.CryptBlocks(tail, tail)
	if _, err = out.Write(tail); err != nil {
		return 0, nil, nil, err
	}
	sum := mac.Sum(nil)[:mediaMACLength]
	encHash.Write(sum)
	if _, err = w.Write(sum); err != nil {
		return 0, nil, nil, err
	}
	return length, plainHash.Sum(nil), encHash.Sum(nil), nil
}

// decryptMedia checks and decrypts what the server stores (enc || mac, size
// bytes read from r, which must be readable twice through open) into w. The
// MAC and the encrypted hash are checked before any plaintext is written.
func decryptMedia(mediaKey []byte, typ whatsmeow.MediaType, encSHA, fileSHA []byte, size int64, open func() (io.ReadCloser, error), w io.Writer) (int64, error) {
	if size < aes.BlockSize+mediaMACLength || (size-mediaMACLength)%aes.BlockSize != 0 {
		return 0, ErrMediaTooShort
	}
	keys, err := expandMediaKey(mediaKey, typ)
	if err != nil {
		return 0, err
	}
	// First pass: MAC and encrypted hash.
	r, err := open()
	if err != nil {
		return 0, err
	}
	mac := hmac.New(sha256.New, keys.macKey)
	mac.Write(keys.iv)
	encHash := sha256.New()
	if _, err = io.CopyN(io.MultiWriter(mac, encHash), r, size-mediaMACLength); err != nil {
		_ = r.Close()
		return 0, err
	}
	gotMAC := make([]byte, mediaMACLength)
	_, err = io.ReadFull(r, gotMAC)
	_ = r.Close()
	if err != nil {
		return 0, err
	}
	encHash.Write(gotMAC)
	if !hmac.Equal(mac.Sum(nil)[:mediaMACLength], gotMAC) {
		return 0, ErrMediaMAC
	}
	if len(encSHA) > 0 && !hmac.Equal(encHash.Sum(nil), encSHA) {
		return 0, ErrMediaEncHash
	}
	// Second pass: decrypt.
	if r, err = open(); err != nil {
		return 0, err
	}
	defer func() { _ = r.Close() }()
	block, err := aes.NewCipher(keys.cipherKey)
	if err != nil {
		return 0, err
	}
	cbc := cipher.NewCBCDecrypter(block, keys.iv)
	plainHash := sha256.New()
	return copyDecrypted(cbc, bufio.NewReaderSize(io.LimitReader(r, size-mediaMACLength), 64*1024), io.MultiWriter(w, plainHash), size-mediaMACLength, plainHash, fileSHA)
}

func copyDecrypted(cbc cipher.BlockMode, r io.Reader, w io.Writer, encLen int64, plainHash hash.Hash, fileSHA []byte) (int64, error) {
	buf := make([]byte, 64*1024)
	var written, read int64
	for read < encLen {
		n := int64(len(buf))
		if rest := encLen - read; rest < n {
			n = rest
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return written, err
		}
		read += n
		cbc.CryptBlocks(buf[:n], buf[:n])
		out := buf[:n]
		if read == encLen {
			pad := int(out[len(out)-1])
			if pad == 0 || pad > aes.BlockSize || pad > len(out) {
				return written, ErrMediaPadding
			}
			for _, b := range out[len(out)-pad:] {
				if int(b) != pad {
					return written, ErrMediaPadding
				}
			}
			out = out[:len(out)-pad]
		}
		m, err := w.Write(out)
		written += int64(m)
		if err != nil {
			return written, err
		}
	}
	if len(fileSHA) > 0 && !hmac.Equal(plainHash.Sum(nil), fileSHA) {
		return written, ErrMediaHash
	}
	return written, nil
}
