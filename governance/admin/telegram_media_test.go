package admin_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media/mediatest"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestHeldTelegramMediaDownloadedAtDelivery: a file sent in a chat that
// awaits approval is held as the Telegram message (no file is fetched or
// stored); once approved it is downloaded, through a refreshed file
// reference since the one in the held message expired meanwhile, and
// bridged byte for byte with its caption.
func TestHeldTelegramMediaDownloadedAtDelivery(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dbtest.SQLite(t), approvalMode)
	r := e.start()
	e.loginStaff(r)

	data := mediatest.PatternBytes(200_003, 21)
	if _, err := e.sim.SendMedia(e.bob.ID, e.alice.ID, tgsim.MediaSpec{Kind: "document", Data: data, Name: "contract.pdf", MIME: "application/pdf", Caption: "please sign"}); err != nil {
		t.Fatal(err)
	}
	notice := e.waitNotice(e.adminRoom(), "request #1")
	if !poll(10*time.Second, func() bool {
		req, err := r.gv.Approvals.Get(ctx, 1)
		return err == nil && req.HeldCount == 1
	}) {
		t.Fatal("the file was not held")
	}
	if uris := e.mx.MediaURIs(); len(uris) != 0 {
		t.Fatalf("a held file was uploaded to Matrix before approval: %v", uris)
	}
	e.sim.ExpireFileReferences()

	r.react(e, adminMXID, notice.EventID, gate.ReactionApprove)
	var got fakematrix.Message
	if !poll(30*time.Second, func() bool {
		var ok bool
		got, ok = e.mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.FileName == "contract.pdf" })
		return ok
	}) {
		t.Fatalf("the held file never reached Matrix; bodies %q", e.bodiesFrom(e.bob))
	}
	if got.Content.Body != "please sign" || got.Content.Info == nil || got.Content.Info.MimeType != "application/pdf" {
		t.Errorf("delivered as %q %+v", got.Content.Body, got.Content.Info)
	}
	uri := got.Content.URL
	if got.Content.File != nil {
		uri = got.Content.File.URL
	}
	b, err := e.mx.Bridge().Bot.DownloadMedia(ctx, id.ContentURIString(uri), got.Content.File)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("delivered file differs (%d bytes, %v)", len(b), err)
	}
}
