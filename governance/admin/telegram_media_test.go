package admin_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/media/mediatest"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
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

// TestTelegramMediaCountedFromRealMessages: with Telegram files from outside
// limited to images, a contact's photo is bridged and counted in the
// registry, and his ZIP becomes a notice with its type and the caption, an
// audit entry, and no count.
func TestTelegramMediaCountedFromRealMessages(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, dbtest.SQLite(t), func(cfg *gate.Config) {
		cfg.Media = policy.MediaConfig{policy.NetworkTelegram: {Inbound: policy.MediaRules{AllowedTypes: []string{"image/*"}}}}
	})
	r := e.start()
	e.loginStaff(r)
	if _, err := e.sim.SendMedia(e.bob.ID, e.alice.ID, tgsim.MediaSpec{Kind: "photo", Data: mediatest.PatternBytes(5_000, 1), Caption: "the harbour"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.SendMedia(e.bob.ID, e.alice.ID, tgsim.MediaSpec{Kind: "document", Data: []byte("PK\x03\x04 not really a zip"), MIME: "application/zip", Name: "plans.zip", Caption: "the plans"}); err != nil {
		t.Fatal(err)
	}
	var got []fakematrix.Message
	if !poll(30*time.Second, func() bool {
		got = e.mx.MessagesFrom(e.ghost(e.bob))
		return len(got) >= 3
	}) {
		t.Fatalf("messages from Bob on Matrix: %d, want the photo, the notice and the caption", len(got))
	}
	if got[0].Content.MsgType != event.MsgImage || got[0].Content.Body != "the harbour" {
		t.Errorf("the photo arrived as %q %q", got[0].Content.MsgType, got[0].Content.Body)
	}
	if n := got[1].Content; n.MsgType != event.MsgNotice || !strings.Contains(n.Body, "plans.zip (application/zip") || got[2].Content.Body != "the plans" {
		t.Errorf("the refused ZIP arrived as %q %q, then %q", n.MsgType, n.Body, got[2].Content.Body)
	}
	if entries := mustList(t, r, audit.ActionMediaRefused); len(entries) != 1 {
		t.Errorf("media_refused entries: %d, want 1", len(entries))
	}
	var c *audit.Contact
	if !poll(20*time.Second, func() bool {
		var err error
		c, err = r.gv.Contacts.Get(ctx, policy.NetworkTelegram, tgid.MakeUserID(e.bob.ID))
		return err == nil && c != nil && c.MessagesIn == 2
	}) {
		t.Fatalf("registry: %+v", c)
	}
	if c.MediaIn != 1 {
		t.Errorf("registry media in %d, want 1 (the photo, not the refused ZIP)", c.MediaIn)
	}
}
