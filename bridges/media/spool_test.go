package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/passerelle/passerelle/bridges/media/mediatest"
)

func TestSpool(t *testing.T) {
	dir := t.TempDir()
	data := mediatest.PatternBytes(300_000, 7)
	tests := []struct {
		name  string
		size  int
		limit int64
		err   error
	}{
		{"empty", 0, 10, nil},
		{"under limit", 1000, 1001, nil},
		{"exactly limit", 1000, 1000, nil},
		{"one over", 1001, 1000, ErrTooLarge},
		{"no limit", len(data), 0, nil},
		{"far over", len(data), 100_000, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Spool(context.Background(), bytes.NewReader(data[:tt.size]), dir, tt.limit)
			if tt.err != nil {
				var tl *TooLargeError
				if !errors.Is(err, tt.err) || !errors.As(err, &tl) || tl.Limit != tt.limit {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Fatalf("a refused file left %d files behind", len(entries))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Remove()
			if s.Size != int64(tt.size) || s.SHA256 != sha256.Sum256(data[:tt.size]) {
				t.Errorf("size %d sha %x", s.Size, s.SHA256)
			}
			if !bytes.Equal(s.Head, data[:min(tt.size, SniffLen)]) {
				t.Errorf("head has %d bytes", len(s.Head))
			}
			st, err := os.Stat(s.Path())
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("spool file mode %v, %v", st.Mode(), err)
			}
			for range 2 { // readable more than once
				f, err := s.Open()
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(f)
				f.Close()
				if !bytes.Equal(got, data[:tt.size]) {
					t.Fatal("spooled bytes differ")
				}
			}
			if err := s.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(s.path); !errors.Is(err, os.ErrNotExist) && s.path != "" {
				t.Error("file still there after Remove")
			}
			if err := s.Remove(); err != nil {
				t.Errorf("second Remove: %v", err)
			}
		})
	}
}

func TestSpoolCancelAndReadError(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Spool(ctx, mediatest.NewPattern(1<<20, 1), dir, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled spool err = %v", err)
	}
	boom := errors.New("connection reset")
	if _, err := Spool(context.Background(), io.MultiReader(bytes.NewReader(make([]byte, 100)), iotestErr{boom}), dir, 0); !errors.Is(err, boom) {
		t.Errorf("read error = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed spools left %d files", len(entries))
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func TestSpoolWriterLimit(t *testing.T) {
	w, err := NewSpoolWriter(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("678901")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write over limit: %v", err)
	}
	if _, err := w.Finish(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("finish after over-limit write: %v", err)
	}
}

// TestSpoolBoundedMemory spools a 32 MB generated stream and checks that the
// bytes allocated on the heap during the whole transfer stay far below the
// file's size (a copy buffer, not the file).
func TestSpoolBoundedMemory(t *testing.T) {
	const size = 32 << 20
	dir := t.TempDir()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := Spool(context.Background(), mediatest.NewPattern(size, 42), dir, size)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove()
	allocated := after.TotalAlloc - before.TotalAlloc
	if allocated > 2<<20 {
		t.Errorf("spooling %s allocated %s on the heap", FormatSize(size), FormatSize(int64(allocated)))
	}
	if s.Size != size || s.SHA256 != mediatest.PatternSHA256(size, 42) {
		t.Errorf("spooled %d bytes with a different digest", s.Size)
	}
}

// BenchmarkSpool100MB prints throughput and the peak heap growth per MB
// moved while spooling a 100 MB stream.
func BenchmarkSpool100MB(b *testing.B) {
	const size = 100 << 20
	dir := b.TempDir()
	b.SetBytes(size)
	var peak uint64
	start := time.Now()
	for b.Loop() {
		hs := mediatest.StartHeapSampler(5 * time.Millisecond)
		s, err := Spool(context.Background(), mediatest.NewPattern(size, 1), dir, 0)
		peak = max(peak, hs.Stop())
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Remove()
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(peak)/float64(size>>20), "peak-heap-B/MB")
	b.Logf("spool 100 MB: %.1f MB/s, peak heap %s (%.0f B per MB)",
		float64(size)*float64(b.N)/elapsed.Seconds()/(1<<20), FormatSize(int64(peak)), float64(peak)/float64(size>>20))
}
