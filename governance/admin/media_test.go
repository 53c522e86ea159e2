package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// mediaEvent is a remote message with media, as a connector builds it: a
// bridgev2 message that lists its media (remote.MediaCarrier) and, when
// payload is set, can be held (remote.Holdable). The Telegram connector
// does not bridge media yet, so these tests hand such events to its hooks,
// which the gateway wired to the gate exactly as in production.
type mediaEvent struct {
	*simplevent.Message[string]
	media   []remote.Media
	payload []byte
}

var (
	_ remote.MediaCarrier = (*mediaEvent)(nil)
	_ remote.Holdable     = (*mediaEvent)(nil)
)

func (m *mediaEvent) RemoteMedia() []remote.Media { return m.media }

func (m *mediaEvent) HoldPayload() ([]byte, error) {
	if m.payload == nil {
		return nil, errors.New("not holdable")
	}
	return m.payload, nil
}

// mediaFrom makes a message from acc to Alice with a caption and files.
func (e *env) mediaFrom(acc *tgsim.Account, id, caption string, files ...remote.Media) *mediaEvent {
	return mediaMessage(e.portalKey(acc), tgid.MakeUserID(acc.ID), id, caption, files...)
}

// mediaMessage makes a message from sender in the chat key with a caption
// and files.
func mediaMessage(key networkid.PortalKey, sender networkid.UserID, id, caption string, files ...remote.Media) *mediaEvent {
	for i := range files {
		files[i].Direction, files[i].PortalKey, files[i].Remote = remote.MediaInbound, key, sender
	}
	return &mediaEvent{media: files, Message: &simplevent.Message[string]{
		EventMeta: simplevent.EventMeta{
			Type: bridgev2.RemoteEventMessage, PortalKey: key, CreatePortal: true, Timestamp: time.Now(),
			Sender: bridgev2.EventSender{Sender: sender},
		},
		ID: networkid.MessageID(id), Data: caption,
		ConvertMessageFunc: func(_ context.Context, _ *bridgev2.Portal, _ bridgev2.MatrixAPI, caption string) (*bridgev2.ConvertedMessage, error) {
			return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
				Type: event.EventMessage, Content: &event.MessageEventContent{MsgType: event.MsgText, Body: caption},
			}}}, nil
		},
	}}
}

func (e *env) contact(r *running, acc *tgsim.Account) *audit.Contact {
	e.t.Helper()
	c, err := r.gv.Contacts.Get(context.Background(), policy.NetworkTelegram, tgid.MakeUserID(acc.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestMediaRulesThroughTheGateway: with executables refused outbound and
// Telegram files from outside limited to 1 MB, through a real gateway and
// the Telegram connector's hooks: the staff member's executable is refused
// with a notice in the chat and a failed status that say why, and an audit
// entry records it; media from and to the contact are counted in the
// registry, except the file the rules refused.
func TestMediaRulesThroughTheGateway(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			cfg.Media = policy.MediaConfig{
				policy.AnyNetwork:      {Outbound: policy.MediaRules{RefusedTypes: []string{"application/x-msdownload", "application/x-sh"}}},
				policy.NetworkTelegram: {Inbound: policy.MediaRules{MaxSize: 1_000_000}},
			}
		})
		r := e.start()
		login := e.loginStaff(r)
		key := e.portalKey(e.bob)

		e.send(e.bob, "hello")
		msgs := e.waitBodies(e.bob, "hello")
		room := msgs[0].RoomID

		// Outbound: Alice sends an executable from Matrix. The connector
		// asks the media check (the gate, wired by the gateway) and turns
		// the refusal into the message's status, as for every refusal.
		err := r.conn.CheckMedia(ctx, remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaFile, Login: login,
			PortalKey: key, Remote: tgid.MakeUserID(e.bob.ID), MIME: "application/x-msdownload", Size: 1_234_567, Name: "setup.exe"})
		var refusal *remote.Refusal
		if !errors.As(err, &refusal) {
			t.Fatalf("an executable sent to Telegram: %v, want a refusal", err)
		}
		var st bridgev2.MessageStatus
		if !errors.As(remote.MessageStatus(err), &st) {
			t.Fatalf("no message status from %v", err)
		}
		r.br.Matrix.SendMessageStatus(ctx, &st, &bridgev2.MessageStatusEventInfo{RoomID: room, SourceEventID: "$alice-exe",
			EventType: event.EventMessage, MessageType: event.MsgFile, Sender: staffMXID})
		notice := e.waitNotice(room, "not bridged")
		for _, want := range []string{"does not allow files of type application/x-msdownload to be sent to Telegram", "1.2 MB"} {
			if !strings.Contains(notice.Content.Body, want) {
				t.Errorf("notice to the staff member %q lacks %q", notice.Content.Body, want)
			}
		}
		if st.Status != event.MessageStatusFail || !st.IsCertain || st.Message != refusal.Reason {
			t.Errorf("status of the refused file: %+v", st)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionMediaRefused}})
		if err != nil || len(entries) != 1 {
			t.Fatalf("media_refused entries: %+v, %v", entries, err)
		}
		var d map[string]any
		_ = json.Unmarshal(entries[0].Details, &d)
		if entries[0].Staff != staffMXID || entries[0].Portal != key.ID || entries[0].Contact != string(tgid.MakeUserID(e.bob.ID)) ||
			d["direction"] != "outbound" || d["mime"] != "application/x-msdownload" || d["size"] != 1_234_567.0 {
			t.Errorf("media_refused entry: %+v %s", entries[0], entries[0].Details)
		}
		if got := e.sentBy(e.alice, e.bob); len(got) != 0 {
			t.Errorf("Bob received %q", got)
		}

		// Inbound: a photo within the limit is bridged and counted as
		// media; a video over it is refused by the rules (the connector
		// bridges the caption and the reason) and counted as a message only.
		photo := e.mediaFrom(e.bob, "m-photo", "our poster", remote.Media{Kind: remote.MediaImage, Login: login, MIME: "image/jpeg", Size: 400_000})
		if res := r.conn.Queue(login, photo); !res.Success {
			t.Fatalf("photo: %+v", res)
		}
		video := e.mediaFrom(e.bob, "m-video", "the whole talk", remote.Media{Kind: remote.MediaVideo, Login: login, MIME: "video/mp4", Size: 80_000_000})
		if res := r.conn.Queue(login, video); !res.Success {
			t.Fatalf("video: %+v", res)
		}
		if err = r.conn.CheckMedia(ctx, video.media[0]); !errors.As(err, &refusal) ||
			!strings.Contains(refusal.Reason, "files over 1.0 MB to be received from Telegram") || !strings.Contains(refusal.Reason, "80.0 MB") {
			t.Errorf("video over the inbound limit: %v", err)
		}
		e.waitBodies(e.bob, "hello", "our poster", "the whole talk")

		// Outbound text, then a file that left: counted by the sent
		// recorder, the file as media.
		r.sendMatrix(room, "$alice-text", "see you")
		if !e.mx.Eventually(20*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 1 }) {
			t.Fatalf("Bob never received Alice's text: %q", e.sentBy(e.alice, e.bob))
		}
		r.conn.Sent(ctx, remote.Outbound{Kind: remote.OutboundMessage, Login: login, PortalKey: key, Remote: tgid.MakeUserID(e.bob.ID), HasMedia: true})

		var c *audit.Contact
		if !e.mx.Eventually(20*time.Second, func() bool {
			c = e.contact(r, e.bob)
			return c != nil && c.MessagesOut == 2
		}) {
			t.Fatalf("registry never counted Alice's messages: %+v", c)
		}
		if c.MessagesIn != 3 || c.MediaIn != 1 || c.MessagesOut != 2 || c.MediaOut != 1 {
			t.Errorf("registry: in %d (media %d), out %d (media %d); want in 3 (media 1), out 2 (media 1)",
				c.MessagesIn, c.MediaIn, c.MessagesOut, c.MediaOut)
		}
		if n := len(mustList(t, r, audit.ActionMediaRefused)); n != 2 {
			t.Errorf("%d media_refused entries, want 2 (the executable and the video)", n)
		}

		// Admins see the media rules and the counts.
		out := r.command(t, e, adminMXID, e.adminRoom(), "gov-rules")
		for _, want := range []string{"* `*` outbound: never `application/x-msdownload, application/x-sh`", "* `telegram` inbound: up to 1.0 MB"} {
			if !strings.Contains(out, want) {
				t.Errorf("gov-rules lacks %q:\n%q", want, out)
			}
		}
		if out = r.command(t, e, adminMXID, e.adminRoom(), "gov-contacts bob_outside"); !strings.Contains(out, "in 3 (media 1) / out 2 (media 1)") {
			t.Errorf("gov-contacts: %s", out)
		}
	})
}

// TestHeldMediaIsBoundedAndNotCounted: in approval mode a message with
// media from a new chat is held as the connector's payload (a reference,
// not the file), and not counted until it is bridged; a payload over
// gate.MaxHeldPayload is refused with a clear error and nothing is stored.
func TestHeldMediaIsBoundedAndNotCounted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, func(cfg *gate.Config) {
			cfg.Policy.Modes = map[string]policy.Mode{policy.NetworkTelegram: policy.ModeApproval}
		})
		r := e.start()
		login := e.loginStaff(r)

		huge := e.mediaFrom(e.carol, "m-huge", "a file inline", remote.Media{Kind: remote.MediaFile, Login: login, MIME: "application/pdf", Size: 5_000_000})
		huge.payload = make([]byte, gate.MaxHeldPayload+1)
		res := r.conn.Queue(login, huge)
		if res.Success || !errors.Is(res.Error, gate.ErrHeldPayloadTooLarge) ||
			!strings.Contains(res.Error.Error(), fmt.Sprintf("%d bytes, the limit is %d", gate.MaxHeldPayload+1, gate.MaxHeldPayload)) {
			t.Fatalf("huge payload: %+v, want ErrHeldPayloadTooLarge with sizes", res)
		}
		if pending, err := r.gv.Approvals.Pending(ctx); err != nil || len(pending) != 0 {
			t.Fatalf("pending requests after a refused hold: %+v, %v", pending, err)
		}

		ref := e.mediaFrom(e.carol, "m-ref", "a photo", remote.Media{Kind: remote.MediaImage, Login: login, MIME: "image/jpeg", Size: 2_000_000})
		ref.payload = []byte(`{"media_ref":"file-reference-bytes","access_hash":1}`)
		if res = r.conn.Queue(login, ref); !res.Success {
			t.Fatalf("held photo: %+v", res)
		}
		pending, err := r.gv.Approvals.Pending(ctx)
		if err != nil || len(pending) != 1 || pending[0].HeldCount != 1 {
			t.Fatalf("pending requests: %+v, %v", pending, err)
		}
		held, err := r.gv.Approvals.Held(ctx, pending[0].ID)
		if err != nil || len(held) != 1 || len(held[0].Payload) != len(ref.payload) {
			t.Fatalf("held payloads: %+v, %v", held, err)
		}
		e.waitNotice(e.adminRoom(), fmt.Sprintf("request #%d", pending[0].ID))
		if c := e.contact(r, e.carol); c != nil && (c.MediaIn != 0 || c.MessagesIn != 0) {
			t.Errorf("a held message was counted: %+v", c)
		}
		if got := e.bodiesFrom(e.carol); len(got) != 0 {
			t.Errorf("held messages reached Matrix: %q", got)
		}
	})
}

func mustList(t *testing.T, r *running, action audit.Action) []audit.Entry {
	t.Helper()
	entries, err := r.gv.Audit.List(context.Background(), audit.Filter{Actions: []audit.Action{action}})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestWhatsAppMediaRulesHashed: on WhatsApp in hashed mode, through the
// WhatsApp connector's hooks: a type outside the inbound allow list and an
// outbound executable are refused with reasons that hold no number, their
// audit entries name the chat and the contact by pseudonyms only, and the
// contact's media are counted.
func TestWhatsAppMediaRulesHashed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		w := newWAEnv(t, b, func(cfg *gate.Config) {
			cfg.ContactHashKey = "a-hash-key-of-at-least-32-bytes-for-media"
			cfg.Media = policy.MediaConfig{
				policy.AnyNetwork:      {Outbound: policy.MediaRules{RefusedTypes: []string{"application/x-msdownload"}}},
				policy.NetworkWhatsApp: {Inbound: policy.MediaRules{AllowedTypes: []string{"image/*", "application/pdf"}}},
			}
		})
		r := w.start()
		login := w.loginStaff(r)
		key := w.portalKey(waBob)
		bob := networkid.UserID("whatsapp." + waBob)

		w.send(waBob, "hello")
		if !w.mx.Eventually(20*time.Second, func() bool { return len(w.mx.MessagesFrom(waGhost(waBob))) == 1 }) {
			t.Fatal("Bob's text never reached Matrix")
		}

		for _, c := range []struct {
			m    remote.Media
			want string
		}{
			{remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaFile, Login: login, PortalKey: key, Remote: bob, MIME: "application/zip", Size: 3_000_000, Name: waBob + ".zip"},
				"allows only files of type image/*, application/pdf to be received from WhatsApp. This file is application/zip (3.0 MB)."},
			{remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaFile, Login: login, PortalKey: key, Remote: bob, MIME: "application/x-msdownload", Size: 700},
				"does not allow files of type application/x-msdownload to be sent to WhatsApp. This file is application/x-msdownload (700 bytes)."},
		} {
			err := r.waConn.CheckMedia(ctx, c.m)
			var refusal *remote.Refusal
			if !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, c.want) || strings.Contains(refusal.Reason, waBob) {
				t.Errorf("%s %s: %v, want a refusal containing %q", c.m.Direction, c.m.MIME, err, c.want)
			}
		}
		if err := r.waConn.CheckMedia(ctx, remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaImage, Login: login, PortalKey: key, Remote: bob, MIME: "image/webp", Size: 80_000}); err != nil {
			t.Errorf("an image from WhatsApp: %v", err)
		}

		entries := mustList(t, r.running, audit.ActionMediaRefused)
		if len(entries) != 2 {
			t.Fatalf("media_refused entries: %+v", entries)
		}
		for _, e := range entries {
			all, _ := json.Marshal(e)
			if strings.Contains(string(all), waBob) || strings.Contains(string(all), waAlice) {
				t.Errorf("hashed mode entry holds a number: %s", all)
			}
			if string(e.Portal) != r.gv.ShownPortal(key.ID) || e.Contact != r.gv.Contacts.Key(bob) || e.Staff != staffMXID {
				t.Errorf("entry names chat %q contact %q staff %q, want the pseudonyms %q %q", e.Portal, e.Contact, e.Staff, r.gv.ShownPortal(key.ID), r.gv.Contacts.Key(bob))
			}
		}
		if !strings.Contains(string(entries[0].Details), `"direction":"inbound"`) || !strings.Contains(string(entries[1].Details), `"direction":"outbound"`) {
			t.Errorf("directions: %s / %s", entries[0].Details, entries[1].Details)
		}

		sticker := mediaMessage(key, bob, "wa-sticker", "a sticker", remote.Media{Kind: remote.MediaSticker, Login: login, MIME: "image/webp", Size: 30_000})
		if res := r.waConn.Queue(login, sticker); !res.Success {
			t.Fatalf("sticker: %+v", res)
		}
		r.waConn.Sent(ctx, remote.Outbound{Kind: remote.OutboundMessage, Login: login, PortalKey: key, Remote: bob, HasMedia: true})
		var c *audit.Contact
		if !w.mx.Eventually(20*time.Second, func() bool {
			var err error
			c, err = r.gv.Contacts.Get(ctx, policy.NetworkWhatsApp, bob)
			return err == nil && c != nil && c.MessagesIn == 2 && c.MessagesOut == 1
		}) {
			t.Fatalf("registry: %+v", c)
		}
		if c.MediaIn != 1 || c.MediaOut != 1 {
			t.Errorf("registry media in %d out %d, want 1 and 1", c.MediaIn, c.MediaOut)
		}
	})
}

// TestWhatsAppMediaCountedFromRealMessages: real WhatsApp messages from the
// simulator, through the connector: a photo is bridged and counted as media
// from Bob; a ZIP outside the inbound allow list becomes a notice with its
// reason (the caption kept), is audited, and is counted as a message but
// not as media.
func TestWhatsAppMediaCountedFromRealMessages(t *testing.T) {
	ctx := context.Background()
	w := newWAEnv(t, dbtest.SQLite(t), func(cfg *gate.Config) {
		cfg.Media = policy.MediaConfig{policy.NetworkWhatsApp: {Inbound: policy.MediaRules{AllowedTypes: []string{"image/*"}}}}
	})
	r := w.start()
	w.loginStaff(r)
	bob := networkid.UserID("whatsapp." + waBob)
	photo := bytes.Repeat([]byte{0xff, 0xd8, 0xff, 0xe0}, 512)
	if _, _, err := w.srv.SendMedia(ctx, waBob, waAlice, wasim.MediaSpec{Kind: wasim.KindImage, Data: photo, MIME: "image/jpeg", Caption: "the harbour"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.srv.SendMedia(ctx, waBob, waAlice, wasim.MediaSpec{Kind: wasim.KindDocument, Data: []byte("PK\x03\x04 not really a zip"), MIME: "application/zip", FileName: "plans.zip", Caption: "the plans"}); err != nil {
		t.Fatal(err)
	}
	var got []fakematrix.Message
	if !w.mx.Eventually(30*time.Second, func() bool {
		got = w.mx.MessagesFrom(waGhost(waBob))
		return len(got) == 2
	}) {
		t.Fatalf("messages from Bob on Matrix: %d, want 2", len(got))
	}
	if got[0].Content.MsgType != event.MsgImage {
		t.Errorf("the photo arrived as %q", got[0].Content.MsgType)
	}
	if refused := got[1].Content; refused.MsgType == event.MsgFile || !strings.Contains(refused.Body, "the plans") || !strings.Contains(refused.Body, "application/zip") {
		t.Errorf("the refused ZIP arrived as %q %q, want a notice with its type and the caption", refused.MsgType, refused.Body)
	}
	if entries := mustList(t, r.running, audit.ActionMediaRefused); len(entries) != 1 {
		t.Errorf("media_refused entries: %d, want 1", len(entries))
	}
	var c *audit.Contact
	if !w.mx.Eventually(20*time.Second, func() bool {
		var err error
		c, err = r.gv.Contacts.Get(ctx, policy.NetworkWhatsApp, bob)
		return err == nil && c != nil && c.MessagesIn == 2
	}) {
		t.Fatalf("registry: %+v", c)
	}
	if c.MediaIn != 1 {
		t.Errorf("registry media in %d, want 1 (the photo, not the refused ZIP)", c.MediaIn)
	}
}
