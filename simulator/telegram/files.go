package tgsim

import (
	"crypto/md5" // #nosec G501 -- Telegram's upload checksum is MD5
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Telegram's file transfer rules (https://core.telegram.org/api/files).
const (
	maxPartSize      = 512 * 1024
	maxParts         = 8000 // 4 GB in 512 KB parts, the premium limit
	maxSmallFileSize = 10 * 1024 * 1024
	maxGetFileLimit  = 1024 * 1024
	// maxPendingUploads bounds the unfinished uploads kept per user; the
	// oldest is dropped beyond it.
	maxPendingUploads = 64
)

var (
	errFilePartEmpty      = tgerr.New(400, "FILE_PART_EMPTY")
	errFilePartTooBig     = tgerr.New(400, "FILE_PART_TOO_BIG")
	errFilePartInvalid    = tgerr.New(400, "FILE_PART_INVALID")
	errFilePartSizeInv    = tgerr.New(400, "FILE_PART_SIZE_INVALID")
	errFilePartSizeChange = tgerr.New(400, "FILE_PART_SIZE_CHANGED")
	errFilePartsInvalid   = tgerr.New(400, "FILE_PARTS_INVALID")
	errFilePartMissing    = tgerr.New(400, "FILE_PART_0_MISSING")
	errChecksumInvalid    = tgerr.New(400, "CHECKSUM_INVALID")
	errFileIDInvalid      = tgerr.New(400, "FILE_ID_INVALID")
	errLimitInvalid       = tgerr.New(400, "LIMIT_INVALID")
	errOffsetInvalid      = tgerr.New(400, "OFFSET_INVALID")
	errLocationInvalid    = tgerr.New(400, "LOCATION_INVALID")
	errFileRefExpired     = tgerr.New(400, "FILE_REFERENCE_EXPIRED")
	errTooBig             = tgerr.New(400, "FILE_PARTS_INVALID")
)

// blob is a finished file on disk.
type blob struct {
	path string
	size int64
}

func (b *blob) open() (*os.File, error) { return os.Open(b.path) }

// pendingUpload is a file being uploaded part by part. Parts are written at
// part*maxPartSize of a sparse file, so they may arrive in any order; the
// file is compacted when a message uses it.
type pendingUpload struct {
	f     *os.File
	parts map[int]int // part → length
	big   bool
	total int // declared total parts (big files), 0 if unknown
	seq   int
}

// fileStore holds uploads and finished files in a private directory. It has
// its own lock: disk I/O never runs under Server.mu.
type fileStore struct {
	mu      sync.Mutex
	dir     string
	pending map[[2]int64]*pendingUpload // user, file ID
	seq     int
}

func newFileStore() (*fileStore, error) {
	dir, err := os.MkdirTemp("", "tgsim-files-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create file store: %w", err)
	}
	return &fileStore{dir: dir, pending: map[[2]int64]*pendingUpload{}}, nil
}

func (fs *fileStore) close() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for k, p := range fs.pending {
		_ = p.f.Close()
		delete(fs.pending, k)
	}
	_ = os.RemoveAll(fs.dir)
}

// savePart stores one part of a user's upload, as upload.saveFilePart
// (big=false) and upload.saveBigFilePart do. A shorter last part is
// accepted; every other part must have the same size, a multiple of 1 KB
// that divides 512 KB.
func (fs *fileStore) savePart(userID, fileID int64, part, totalParts int, big bool, data []byte) error {
	switch {
	case len(data) == 0:
		return errFilePartEmpty
	case len(data) > maxPartSize:
		return errFilePartTooBig
	case part < 0 || part >= maxParts || (big && (totalParts <= 0 || totalParts > maxParts || part >= totalParts)):
		return errFilePartInvalid
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := [2]int64{userID, fileID}
	p, ok := fs.pending[key]
	if !ok {
		f, err := os.CreateTemp(fs.dir, "upload-*")
		if err != nil {
			return fmt.Errorf("failed to create upload file: %w", err)
		}
		fs.seq++
		p = &pendingUpload{f: f, parts: map[int]int{}, big: big, total: totalParts, seq: fs.seq}
		fs.pending[key] = p
		fs.evictLocked(userID)
	}
	if big && p.total != totalParts {
		return errFilePartsInvalid
	}
	// Sizes are checked when the file is used (finish): only then is it
	// known which part is the last, the one allowed to be shorter.
	if _, err := p.f.WriteAt(data, int64(part)*maxPartSize); err != nil {
		return fmt.Errorf("failed to write upload part: %w", err)
	}
	p.parts[part] = len(data)
	return nil
}

func (fs *fileStore) evictLocked(userID int64) {
	var n int
	var oldest [2]int64
	oldestSeq := -1
	for k, p := range fs.pending {
		if k[0] != userID {
			continue
		}
		n++
		if oldestSeq < 0 || p.seq < oldestSeq {
			oldest, oldestSeq = k, p.seq
		}
	}
	if n > maxPendingUploads {
		p := fs.pending[oldest]
		_ = p.f.Close()
		_ = os.Remove(p.f.Name())
		delete(fs.pending, oldest)
	}
}

// finish turns an uploaded InputFile into a blob: every part 0..parts-1
// present, all but the last of one valid size, the MD5 right when given.
func (fs *fileStore) finish(userID int64, in tg.InputFileClass) (*blob, string, error) {
	var (
		fileID   int64
		parts    int
		name     string
		checksum string
		big      bool
	)
	switch f := in.(type) {
	case *tg.InputFile:
		fileID, parts, name, checksum = f.ID, f.Parts, f.Name, f.MD5Checksum
	case *tg.InputFileBig:
		fileID, parts, name, big = f.ID, f.Parts, f.Name, true
	default:
		return nil, "", errFileIDInvalid
	}
	fs.mu.Lock()
	key := [2]int64{userID, fileID}
	p, ok := fs.pending[key]
	if ok {
		delete(fs.pending, key)
	}
	fs.mu.Unlock()
	if !ok {
		return nil, "", errFilePartMissing
	}
	defer func() {
		_ = p.f.Close()
		_ = os.Remove(p.f.Name())
	}()
	if parts <= 0 || parts != len(p.parts) || (big && parts != p.total) {
		return nil, "", errFilePartsInvalid
	}
	size := p.parts[0]
	if size%1024 != 0 && parts > 1 || maxPartSize%max(size, 1) != 0 && parts > 1 {
		return nil, "", errFilePartSizeInv
	}
	for i := 0; i < parts; i++ {
		n, ok := p.parts[i]
		if !ok {
			return nil, "", tgerr.New(400, fmt.Sprintf("FILE_PART_%d_MISSING", i))
		}
		if (i < parts-1 && n != size) || (i == parts-1 && n > size) {
			return nil, "", errFilePartSizeChange
		}
	}
	out, err := os.CreateTemp(fs.dir, "file-*")
	if err != nil {
		return nil, "", fmt.Errorf("failed to create file: %w", err)
	}
	h := md5.New() // #nosec G401
	var total int64
	buf := make([]byte, maxPartSize)
	for i := 0; i < parts; i++ {
		chunk := buf[:p.parts[i]]
		if _, err := p.f.ReadAt(chunk, int64(i)*maxPartSize); err != nil && !errors.Is(err, io.EOF) {
			_ = out.Close()
			return nil, "", fmt.Errorf("failed to read upload part: %w", err)
		}
		h.Write(chunk)
		if _, err := out.Write(chunk); err != nil {
			_ = out.Close()
			return nil, "", fmt.Errorf("failed to write file: %w", err)
		}
		total += int64(len(chunk))
	}
	if err := out.Close(); err != nil {
		return nil, "", fmt.Errorf("failed to close file: %w", err)
	}
	if !big && total > maxSmallFileSize {
		_ = os.Remove(out.Name())
		return nil, "", errTooBig
	}
	if checksum != "" && checksum != hex.EncodeToString(h.Sum(nil)) {
		_ = os.Remove(out.Name())
		return nil, "", errChecksumInvalid
	}
	return &blob{path: out.Name(), size: total}, name, nil
}

// put stores bytes from r as a blob (media a contact sends).
func (fs *fileStore) put(r io.Reader) (*blob, error) {
	out, err := os.CreateTemp(fs.dir, "file-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create file: %w", err)
	}
	n, err := io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(out.Name())
		return nil, fmt.Errorf("failed to store file: %w", err)
	}
	return &blob{path: filepath.Clean(out.Name()), size: n}, nil
}

// read serves upload.getFile from a blob.
func (b *blob) read(offset int64, limit int) ([]byte, error) {
	switch {
	case limit <= 0 || limit > maxGetFileLimit || limit%1024 != 0:
		return nil, errLimitInvalid
	case offset < 0 || offset%1024 != 0:
		return nil, errOffsetInvalid
	}
	if offset >= b.size {
		return []byte{}, nil
	}
	f, err := b.open()
	if err != nil {
		return nil, fmt.Errorf("failed to open file: %w", err)
	}
	defer f.Close()
	n := min(int64(limit), b.size-offset)
	out := make([]byte, n)
	if _, err := f.ReadAt(out, offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("failed to read file: %w", err)
	}
	return out, nil
}
