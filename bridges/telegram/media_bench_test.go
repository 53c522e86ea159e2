package telegram

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/media/mediatest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

const benchFileSize = 100 << 20

// BenchmarkMedia100MB moves a 100 MB file each way through the real
// connector, gotd and the simulator, into and out of an encrypted portal,
// and prints the throughput and the peak heap growth per MB moved (the
// simulator and the fake Matrix side run in the same process and count).
func BenchmarkMedia100MB(b *testing.B) {
	ms := newMediaSetup(b, nil)
	ctx := context.Background()
	want := mediatest.PatternSHA256(benchFileSize, 77)

	b.Run("TelegramToMatrix", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			before := len(ms.tb.mx.Events())
			hs := mediatest.StartHeapSampler(10 * time.Millisecond)
			start := time.Now()
			if _, err := ms.s.SendMedia(ms.bob.ID, ms.alice.ID, tgsim.MediaSpec{Kind: "document", Reader: mediatest.NewPattern(benchFileSize, 77), Name: "big.bin"}); err != nil {
				b.Fatal(err)
			}
			var got *event.MessageEventContent
			if !ms.tb.mx.Eventually(5*time.Minute, func() bool {
				evts := ms.tb.mx.Events()
				for _, e := range evts[min(before, len(evts)):] {
					if c := msgContent(e); c != nil && (c.File != nil || c.MsgType == event.MsgNotice) {
						got = c
						return true
					}
				}
				return false
			}) {
				b.Fatal("file never reached Matrix")
			}
			elapsed := time.Since(start)
			peak := hs.Stop()
			if got.File == nil {
				b.Fatalf("notice instead of the file: %q", got.Body)
			}
			if sum := matrixSHA256(b, ms.tb.mx, got); sum != want {
				b.Fatal("file differs")
			}
			report(b, "Telegram→Matrix", elapsed, peak)
		}
	})

	b.Run("MatrixToTelegram", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			bot := ms.tb.mx.Bridge().Bot
			uri, file, err := bot.UploadMediaStream(ctx, ms.portal.MXID, benchFileSize, true, func(f io.Writer) (*bridgev2.FileStreamResult, error) {
				_, err := io.Copy(f, mediatest.NewPattern(benchFileSize, 77))
				return &bridgev2.FileStreamResult{FileName: "big.bin", MimeType: "application/octet-stream"}, err
			})
			if err != nil {
				b.Fatal(err)
			}
			file.URL = uri
			evtID := id.EventID("$bench" + string(rune('a'+i)))
			hs := mediatest.StartHeapSampler(10 * time.Millisecond)
			start := time.Now()
			ms.tb.mx.Inject(ctx, &event.Event{Type: event.EventMessage, RoomID: ms.portal.MXID, Sender: testUser, ID: evtID,
				Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.MessageEventContent{
					MsgType: event.MsgFile, Body: "big.bin", File: file, Info: &event.FileInfo{Size: benchFileSize, MimeType: "application/octet-stream"}}}})
			wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			m, err := ms.s.WaitMessage(wctx, ms.alice.ID, ms.bob.ID, func(m tgsim.Message) bool { return m.Media != nil && m.Media.Size == benchFileSize })
			cancel()
			elapsed := time.Since(start)
			peak := hs.Stop()
			if err != nil {
				b.Fatalf("file never reached Telegram: %v (%+v)", err, ms.tb.mx.StatusesOf(evtID))
			}
			r, err := ms.s.OpenMedia(m)
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			_, _ = io.Copy(h, r)
			_ = r.Close()
			if [sha256.Size]byte(h.Sum(nil)) != want {
				b.Fatal("file differs")
			}
			report(b, "Matrix→Telegram", elapsed, peak)
		}
	})
}

func report(b *testing.B, dir string, elapsed time.Duration, peak uint64) {
	mbps := float64(benchFileSize) / (1 << 20) / elapsed.Seconds()
	perMB := float64(peak) / float64(benchFileSize>>20)
	b.ReportMetric(mbps, "MB/s")
	b.ReportMetric(perMB, "peak-heap-B/MB")
	b.Logf("%s 100 MB: %.1f MB/s, peak heap growth %s (%.0f B per MB moved)", dir, mbps, media.FormatSize(int64(peak)), perMB)
}

// matrixSHA256 downloads and decrypts an attachment by streaming and
// returns its digest.
func matrixSHA256(b *testing.B, mx *fakematrix.Matrix, c *event.MessageEventContent) [sha256.Size]byte {
	var sum [sha256.Size]byte
	err := mx.Bridge().Bot.DownloadMediaToFile(context.Background(), c.File.URL, c.File, false, func(f *os.File) error {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		h.Sum(sum[:0])
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return sum
}
