package fakematrix

import (
	"fmt"
	"io"
	"os"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Media kept in files: for big files (benchmarks of 100 MB transfers), so
// that the fake homeserver does not hold them in memory. The bytes stored
// and returned are still exactly the uploaded ones.

// SetMediaDir keeps media uploaded from now on as files under dir (which
// the caller removes) instead of in memory; "" goes back to memory.
func (m *Matrix) SetMediaDir(dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mediaDir = dir
	if m.mediaFiles == nil {
		m.mediaFiles = make(map[id.ContentURIString]string)
	}
}

// MediaPath is the file holding media kept on disk.
func (m *Matrix) MediaPath(uri id.ContentURIString) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	path, ok := m.mediaFiles[uri]
	return path, ok
}

// PutMediaFile stores what r holds under a new URI, as a Matrix client's
// plain (unencrypted) upload (streamed into a file when SetMediaDir is on, else in memory).
func (m *Matrix) PutMediaFile(r io.Reader) (id.ContentURIString, error) {
	dir := m.mediaDirOf()
	if dir == "" {
		data, err := io.ReadAll(r)
		if err != nil {
			return "", err
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		uri := id.ContentURIString(fmt.Sprintf("mxc://%s/media%d", ServerName, m.nextLocked()))
		m.media[uri] = data
		return uri, nil
	}
	f, err := os.CreateTemp(dir, "media-*")
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	if _, err = io.Copy(f, r); err != nil {
		return "", err
	}
	return m.addMediaFile(f.Name()), nil
}

func (m *Matrix) mediaDirOf() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mediaDir
}

func (m *Matrix) addMediaFile(path string) id.ContentURIString {
	m.mu.Lock()
	defer m.mu.Unlock()
	uri := id.ContentURIString(fmt.Sprintf("mxc://%s/media%d", ServerName, m.nextLocked()))
	m.mediaFiles[uri] = path
	return uri
}

// uploadStreamToDir is UploadMediaStream with SetMediaDir on.
func (m *Matrix) uploadStreamToDir(dir string, roomID id.RoomID, cb bridgev2.FileStreamCallback) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	f, err := os.CreateTemp(dir, "media-*")
	if err != nil {
		return "", nil, fmt.Errorf("failed to create media file: %w", err)
	}
	res, err := cb(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", nil, err
	}
	path := f.Name()
	if res != nil && res.ReplacementFile != "" {
		_ = os.Remove(path)
		path = res.ReplacementFile
	}
	var file *event.EncryptedFileInfo
	if roomID != "" { // as mautrix: an upload outside a room is never encrypted
		if file, err = m.encryptFileInPlace(path); err != nil {
			return "", nil, err
		}
	}
	uri := m.addMediaFile(path)
	return uploaded(file, uri)
}

// downloadFromDir streams media kept on disk (decrypted with file, when
// given) into a temporary file for cb.
func downloadFromDir(path string, file *event.EncryptedFileInfo, cb func(*os.File) error) error {
	raw, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = raw.Close() }()
	var src io.Reader = raw
	if file != nil {
		if err = file.PrepareForDecryption(); err != nil {
			return err
		}
		dec := file.DecryptStream(raw)
		defer func() { _ = dec.Close() }()
		src = dec
	}
	f, err := os.CreateTemp("", "fakematrix-download-*")
	if err != nil {
		return fmt.Errorf("failed to create temp file: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer func() { _ = f.Close() }()
	if _, err = io.Copy(f, src); err != nil {
		return err
	}
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return cb(f)
}
