package whatsapp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media/mediatest"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// BenchmarkMedia100MB moves a 100 MB file each way through the connector,
// whatsmeow and the simulator's HTTPS media server (WhatsApp's encryption
// both ways, Matrix attachment encryption for the upload to the homeserver,
// which keeps files on disk), checks it arrived
// byte for byte, and reports throughput and the peak heap in use above the
// baseline while it moved (the whole process: bridge, whatsmeow and the
// simulator).
//
//	go test -tags goolm -run '^$' -bench Media100MB -benchtime 1x ./bridges/whatsapp/
func BenchmarkMedia100MB(b *testing.B) {
	const size = 100 << 20
	const mb = float64(size) / (1 << 20)
	srv := startSim(b)
	tb := startBridge(b, srv, dbtest.SQLite(b).Open(b))
	tb.mx.SetMediaDir(b.TempDir())
	tb.mx.SetEncryptedMedia(true) // as in an encrypted portal
	ul := loginQR(b, tb, srv)
	portal := bobPortal(b, tb, srv, ul)
	ctx := ctxFor(b)

	run := 0 // b.Run calls a function more than once: names stay unique
	b.Run("whatsapp_to_matrix", func(b *testing.B) {
		var total time.Duration
		var peak uint64
		for i := 0; i < b.N; i++ {
			run++
			seed := uint64(1000 + run)
			name := fmt.Sprintf("in-%d.bin", run)
			msg, _, err := srv.MediaMessage(wasim.MediaSpec{Kind: wasim.KindDocument, Reader: mediatest.NewPattern(size, seed),
				MIME: "application/octet-stream", FileName: name})
			if err != nil {
				b.Fatal(err)
			}
			heap := mediatest.StartHeapSampler(2 * time.Millisecond)
			start := time.Now()
			if _, err = srv.SendMessage(ctx, bobPh, alicePh, msg); err != nil {
				b.Fatal(err)
			}
			got := tb.waitMsg(b, name, func(m fakematrix.Message) bool { return m.Content.FileName == name })
			elapsed := time.Since(start)
			iterPeak := heap.Stop()
			if sum := matrixSHA256(b, tb, got.Content); sum != mediatest.PatternSHA256(size, seed) {
				b.Fatalf("the file on Matrix differs from the one sent")
			}
			total, peak = total+elapsed, max(peak, iterPeak)
			report(b, "whatsapp→matrix", mb, elapsed, iterPeak)
		}
		reportMetrics(b, mb*float64(b.N), total, peak)
	})
	b.Run("matrix_to_whatsapp", func(b *testing.B) {
		var total time.Duration
		var peak uint64
		for i := 0; i < b.N; i++ {
			run++
			seed := uint64(2000 + run)
			uri, err := tb.mx.PutMediaFile(mediatest.NewPattern(size, seed))
			if err != nil {
				b.Fatal(err)
			}
			heap := mediatest.StartHeapSampler(2 * time.Millisecond)
			start := time.Now()
			resp := tb.sendMatrix(b, ul, portal, &event.MessageEventContent{MsgType: event.MsgFile, Body: fmt.Sprintf("out-%d.bin", run), URL: uri,
				Info: &event.FileInfo{MimeType: "application/octet-stream", Size: size}})
			m := bobGot(b, srv, resp)
			elapsed := time.Since(start)
			iterPeak := heap.Stop()
			h := sha256.New()
			if n, err := srv.DownloadTo(m.Message, h); err != nil || n != size || [32]byte(h.Sum(nil)) != mediatest.PatternSHA256(size, seed) {
				b.Fatalf("Bob's phone decrypted %d bytes (%v) that differ from the file sent", n, err)
			}
			total, peak = total+elapsed, max(peak, iterPeak)
			report(b, "matrix→whatsapp", mb, elapsed, iterPeak)
		}
		reportMetrics(b, mb*float64(b.N), total, peak)
	})
}

// report prints one transfer's figures.
func report(b *testing.B, what string, mb float64, elapsed time.Duration, peak uint64) {
	peakMB := float64(peak) / (1 << 20)
	fmt.Printf("%s: %.0f MB in %s: %.1f MB/s, peak heap %.1f MB (%.3f MB per transferred MB)\n",
		what, mb, elapsed.Round(time.Millisecond), mb/elapsed.Seconds(), peakMB, peakMB/mb)
}

// reportMetrics gives the benchmark's throughput over all transfers and
// the largest peak heap of any of them.
func reportMetrics(b *testing.B, mb float64, total time.Duration, peak uint64) {
	b.ReportMetric(mb/total.Seconds(), "MB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// matrixSHA256 is the digest of a file as a Matrix client downloads and
// decrypts it (streamed).
func matrixSHA256(b *testing.B, tb *testBridge, content *event.MessageEventContent) [32]byte {
	h := sha256.New()
	err := tb.mx.Intent(testUser).DownloadMediaToFile(context.Background(), content.URL, content.File, false, func(f *os.File) error {
		_, err := io.Copy(h, f)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}
