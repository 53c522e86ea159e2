package fakematrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Media, as a homeserver and bridgev2's Matrix connector handle it: an
// upload into an encrypted room is encrypted first (the homeserver only
// ever holds ciphertext, and the uploader gets the key back); a download
// with the key decrypts and checks the hash. Bytes are kept exactly.

// mediaEntry is one upload: in memory, or in a file under the media
// directory.
type mediaEntry struct {
	data      []byte
	path      string
	encrypted bool
}

// SetMediaDir keeps uploads in files under dir instead of in memory (for
// big files); dir must exist and outlive the Matrix (a test's TempDir).
func (m *Matrix) SetMediaDir(dir string) {
	m.mu.Lock()
	m.mediaDir = dir
	m.mu.Unlock()
}

// SetEncryptByDefault makes rooms created from now on encrypted
// (m.room.encryption in their initial state), as the real Matrix connector
// does with encryption.default.
func (m *Matrix) SetEncryptByDefault(on bool) {
	m.mu.Lock()
	m.encryptByDefault = on
	m.mu.Unlock()
}

func (m *Matrix) roomEncrypted(roomID id.RoomID) bool {
	return roomID != "" && m.State(roomID, event.StateEncryption, "") != nil
}

func (m *Matrix) storeMedia(e *mediaEntry) id.ContentURIString {
	m.mu.Lock()
	defer m.mu.Unlock()
	uri := id.ContentURIString(fmt.Sprintf("mxc://%s/media%d", ServerName, m.nextLocked()))
	m.media[uri] = e
	return uri
}

func (m *Matrix) mediaEntry(uri id.ContentURIString) (*mediaEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.media[uri]
	return e, ok
}

// Media returns a copy of what the homeserver holds under uri: the
// ciphertext of an encrypted upload.
func (m *Matrix) Media(uri id.ContentURIString) ([]byte, bool) {
	e, ok := m.mediaEntry(uri)
	if !ok {
		return nil, false
	}
	if e.path != "" {
		data, err := os.ReadFile(e.path)
		return data, err == nil
	}
	return bytes.Clone(e.data), true
}

// MediaEncrypted reports whether the upload under uri was encrypted.
func (m *Matrix) MediaEncrypted(uri id.ContentURIString) bool {
	e, ok := m.mediaEntry(uri)
	return ok && e.encrypted
}

// OpenMedia opens what the homeserver holds under uri, for big files.
func (m *Matrix) OpenMedia(uri id.ContentURIString) (io.ReadCloser, error) {
	e, ok := m.mediaEntry(uri)
	if !ok {
		return nil, fmt.Errorf("media %s: %w", uri, mautrix.MNotFound)
	}
	if e.path != "" {
		return os.Open(e.path)
	}
	return io.NopCloser(bytes.NewReader(e.data)), nil
}

// UploadMedia stores data under a new mxc:// URI, encrypted in an
// encrypted room.
func (in *Intent) UploadMedia(_ context.Context, roomID id.RoomID, data []byte, _, _ string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	e := &mediaEntry{data: bytes.Clone(data)}
	var file *event.EncryptedFileInfo
	if in.m.roomEncrypted(roomID) {
		file = &event.EncryptedFileInfo{EncryptedFile: *attachment.NewEncryptedFile()}
		file.EncryptInPlace(e.data)
		e.encrypted = true
	}
	uri := in.m.storeMedia(e)
	return uri, publicFileInfo(file, uri), nil
}

// UploadMediaStream lets cb write into a temporary file, encrypts it in
// place in an encrypted room, and stores it (as a file with SetMediaDir).
func (in *Intent) UploadMediaStream(_ context.Context, roomID id.RoomID, _ int64, _ bool, cb bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	in.m.mu.Lock()
	dir := in.m.mediaDir
	in.m.mu.Unlock()
	f, err := os.CreateTemp(dir, "fakematrix-upload-*")
	if err != nil {
		return "", nil, fmt.Errorf("failed to create temp file: %w", err)
	}
	keep := false
	defer func() {
		_ = f.Close()
		if !keep {
			_ = os.Remove(f.Name())
		}
	}()
	res, err := cb(f)
	if err != nil {
		return "", nil, err
	}
	target := f
	if res != nil && res.ReplacementFile != "" {
		if target, err = os.OpenFile(res.ReplacementFile, os.O_RDWR, 0); err != nil {
			return "", nil, fmt.Errorf("failed to open replacement file: %w", err)
		}
		defer target.Close()
	}
	e := &mediaEntry{}
	var file *event.EncryptedFileInfo
	if in.m.roomEncrypted(roomID) {
		file = &event.EncryptedFileInfo{EncryptedFile: *attachment.NewEncryptedFile()}
		if _, err = target.Seek(0, io.SeekStart); err != nil {
			return "", nil, err
		}
		if err = file.EncryptFile(target); err != nil {
			return "", nil, fmt.Errorf("failed to encrypt upload: %w", err)
		}
		e.encrypted = true
	}
	if dir != "" && target == f {
		e.path, keep = f.Name(), true
	} else if e.data, err = os.ReadFile(target.Name()); err != nil {
		return "", nil, fmt.Errorf("failed to read upload: %w", err)
	}
	uri := in.m.storeMedia(e)
	return uri, publicFileInfo(file, uri), nil
}

// publicFileInfo is the encryption info as a client reads it from the
// event: only its JSON fields (the encryptor's cached state stays behind).
func publicFileInfo(file *event.EncryptedFileInfo, uri id.ContentURIString) *event.EncryptedFileInfo {
	if file == nil {
		return nil
	}
	file.URL = uri
	data, err := json.Marshal(file)
	if err != nil {
		panic(fmt.Sprintf("fakematrix: marshal file info: %v", err))
	}
	var out event.EncryptedFileInfo
	if err = json.Unmarshal(data, &out); err != nil {
		panic(fmt.Sprintf("fakematrix: unmarshal file info: %v", err))
	}
	return &out
}

// errKeyMismatch is a download whose encryption info does not fit the
// upload (a key for a plain upload, or none for an encrypted one).
var errKeyMismatch = errors.New("encryption info does not match the upload")

// DownloadMedia returns an upload, decrypted with file when it was
// encrypted.
func (in *Intent) DownloadMedia(_ context.Context, uri id.ContentURIString, file *event.EncryptedFileInfo) ([]byte, error) {
	e, ok := in.m.mediaEntry(uri)
	if !ok {
		return nil, fmt.Errorf("media %s: %w", uri, mautrix.MNotFound)
	}
	if e.encrypted != (file != nil) {
		return nil, fmt.Errorf("media %s: %w", uri, errKeyMismatch)
	}
	data, _ := in.m.Media(uri)
	if file == nil {
		return data, nil
	}
	if err := file.DecryptInPlace(data); err != nil {
		return nil, fmt.Errorf("failed to decrypt media: %w", err)
	}
	return data, nil
}

// DownloadMediaToFile streams an upload (decrypted) into a temporary file
// and gives it to cb.
func (in *Intent) DownloadMediaToFile(_ context.Context, uri id.ContentURIString, file *event.EncryptedFileInfo, _ bool, cb func(*os.File) error) error {
	e, ok := in.m.mediaEntry(uri)
	if !ok {
		return fmt.Errorf("media %s: %w", uri, mautrix.MNotFound)
	}
	if e.encrypted != (file != nil) {
		return fmt.Errorf("media %s: %w", uri, errKeyMismatch)
	}
	src, err := in.m.OpenMedia(uri)
	if err != nil {
		return err
	}
	var r io.ReadCloser = src
	if file != nil {
		if err = file.PrepareForDecryption(); err != nil {
			_ = src.Close()
			return fmt.Errorf("failed to prepare decryption: %w", err)
		}
		r = file.DecryptStream(src)
	}
	f, err := os.CreateTemp("", "fakematrix-download-*")
	if err != nil {
		_ = r.Close()
		return fmt.Errorf("failed to create temp file: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer func() { _ = f.Close() }()
	_, err = io.Copy(f, r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to download media: %w", err)
	}
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("failed to rewind temp file: %w", err)
	}
	return cb(f)
}
