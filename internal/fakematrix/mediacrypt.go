package fakematrix

import (
	"fmt"
	"os"

	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Encrypted media, as bridgev2 uploads them in encrypted rooms: the bytes
// are encrypted before they reach the homeserver (AES-CTR, with the key and
// hashes in the event's EncryptedFileInfo), the homeserver keeps only the
// ciphertext, and a download with the file info decrypts and checks it.

// SetEncryptedMedia makes uploads from now on encrypted (on) or plain.
// Media(uri) returns what the homeserver holds: the ciphertext.
func (m *Matrix) SetEncryptedMedia(on bool) {
	m.mu.Lock()
	m.encryptMedia = on
	m.mu.Unlock()
}

func (m *Matrix) encryptsMedia() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.encryptMedia
}

// encryptUpload encrypts data in place when encrypted media are on, and
// returns the file info to put in the event (nil when off).
func (m *Matrix) encryptUpload(data []byte) *event.EncryptedFileInfo {
	if !m.encryptsMedia() {
		return nil
	}
	ef := attachment.NewEncryptedFile()
	ef.EncryptInPlace(data)
	return fileInfo(ef)
}

// fileInfo is the file info an event carries: only its JSON fields, as a
// client reads them (not the keys decoded while encrypting).
func fileInfo(ef *attachment.EncryptedFile) *event.EncryptedFileInfo {
	return &event.EncryptedFileInfo{EncryptedFile: attachment.EncryptedFile{
		Key: ef.Key, InitVector: ef.InitVector, Hashes: ef.Hashes, Version: ef.Version,
	}}
}

// encryptFileInPlace encrypts an uploaded file kept on disk.
func (m *Matrix) encryptFileInPlace(path string) (*event.EncryptedFileInfo, error) {
	if !m.encryptsMedia() {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	ef := attachment.NewEncryptedFile()
	if err = ef.EncryptFile(f); err != nil {
		return nil, fmt.Errorf("failed to encrypt media: %w", err)
	}
	return fileInfo(ef), nil
}

// decryptDownload decrypts what the homeserver holds with the event's file
// info (nil: plain media), checking its hash.
func decryptDownload(data []byte, file *event.EncryptedFileInfo) ([]byte, error) {
	if file == nil {
		return data, nil
	}
	if err := file.PrepareForDecryption(); err != nil {
		return nil, err
	}
	if err := file.DecryptInPlace(data); err != nil {
		return nil, fmt.Errorf("failed to decrypt media: %w", err)
	}
	return data, nil
}

// uploaded is what an upload returns, as mautrix's intents return it: for
// an encrypted upload, no URI and the URI in the EncryptedFileInfo; for a
// plain one, the URI alone. A connector that takes the URI for an encrypted
// file sends a message with no file at all on a real homeserver.
func uploaded(file *event.EncryptedFileInfo, uri id.ContentURIString) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	if file != nil {
		file.URL = uri
		return "", file, nil
	}
	return uri, nil, nil
}
