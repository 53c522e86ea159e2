package gate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/governance/store"
	"github.com/passerelle/passerelle/internal/dbtest"
)

const testHashKey = "0123456789abcdef0123456789abcdef-media"

// newMediaGate is a started gate on a database of b with the stores the
// media check uses (no bridge: the check never needs one).
func newMediaGate(t *testing.T, b dbtest.Backend, hashKey string, media policy.MediaConfig) *Gate {
	t.Helper()
	db, err := store.Open(context.Background(), b.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	g := New()
	g.cfg.Media = media
	g.cfg.ContactHashKey = hashKey
	if err = g.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if g.Seal, err = seal.New([]byte(hashKey)); err != nil {
		t.Fatal(err)
	}
	g.DB = db
	g.Audit = audit.NewLog(db)
	g.Audit.Seal = g.Seal
	g.Contacts = audit.NewSealedRegistry(db, g.Audit, g.Seal)
	g.started.Store(true)
	return g
}

func mediaLogin(id networkid.UserLoginID) *bridgev2.UserLogin {
	return &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: id, UserMXID: "@alice:test"}}
}

// orgMedia: no executables sent anywhere, WhatsApp files from outside up to
// 10 MB and only images and PDFs.
var orgMedia = policy.MediaConfig{
	policy.AnyNetwork:      {Outbound: policy.MediaRules{RefusedTypes: []string{"application/x-msdownload", "application/x-executable", "application/x-sh"}}},
	policy.NetworkWhatsApp: {Inbound: policy.MediaRules{MaxSize: 10_000_000, AllowedTypes: []string{"image/*", "application/pdf"}}},
}

// TestCheckMediaRefusesAndAudits: what the rules refuse is refused with a
// sentence naming the type, the size and the limit, and written to the
// audit log with who, which chat, the direction, the type and the size;
// what they allow passes without an entry. On SQLite and PostgreSQL, with
// and without hashed mode (where the chat and the contact are pseudonyms
// and no number is stored).
func TestCheckMediaRefusesAndAudits(t *testing.T) {
	for _, hashKey := range []string{"", testHashKey} {
		t.Run("hashed="+boolName(hashKey != ""), func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
				ctx := context.Background()
				g := newMediaGate(t, b, hashKey, orgMedia)
				wa := mediaLogin("whatsapp.33612345678")
				tg := mediaLogin("telegram.777000111")
				waChat := networkid.PortalKey{ID: "whatsapp.33698765432", Receiver: wa.ID}
				tgGroup := networkid.PortalKey{ID: "telegram.-1001234567"}
				const contact = networkid.UserID("whatsapp.33698765432")

				for _, c := range []struct {
					name   string
					m      remote.Media
					reason []string // nil: allowed
				}{
					{"whatsapp inbound photo", remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaImage, Login: wa, PortalKey: waChat, Remote: contact, MIME: "image/jpeg", Size: 2_000_000}, nil},
					{"whatsapp inbound location", remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaLocation, Login: wa, PortalKey: waChat, Remote: contact, Size: -1}, nil},
					{"telegram outbound pdf", remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaFile, Login: tg, PortalKey: tgGroup, MIME: "application/pdf", Size: 90_000_000}, nil},
					{"whatsapp inbound video too large", remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaVideo, Login: wa, PortalKey: waChat, Remote: contact, MIME: "image/gif", Size: 12_500_000},
						[]string{"files over 10.0 MB to be received from WhatsApp", "12.5 MB", "image/gif"}},
					{"whatsapp inbound zip not allowed", remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaFile, Login: wa, PortalKey: waChat, Remote: contact, MIME: "application/zip", Size: 3_000_000},
						[]string{"only files of type image/*, application/pdf to be received from WhatsApp", "application/zip", "3.0 MB"}},
					{"whatsapp inbound file without type", remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaFile, Login: wa, PortalKey: waChat, Remote: contact, Size: 10},
						[]string{"application/octet-stream", "10 bytes"}},
					{"telegram outbound exe in a group", remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaFile, Login: tg, PortalKey: tgGroup, MIME: "application/x-msdownload", Size: 1_200_000, Name: "setup+33612345678.exe"},
						[]string{"does not allow files of type application/x-msdownload to be sent to Telegram", "1.2 MB"}},
					{"whatsapp outbound shell script", remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaFile, Login: wa, PortalKey: waChat, Remote: contact, MIME: "application/x-sh; charset=utf-8", Size: 120},
						[]string{"application/x-sh to be sent to WhatsApp", "120 bytes"}},
				} {
					before := countEntries(t, g, audit.ActionMediaRefused)
					err := g.CheckMedia(ctx, c.m)
					after := countEntries(t, g, audit.ActionMediaRefused)
					if c.reason == nil {
						if err != nil || after != before {
							t.Errorf("%s: %v (audit entries %d → %d), want it allowed without an entry", c.name, err, before, after)
						}
						continue
					}
					var refusal *remote.Refusal
					if !errors.As(err, &refusal) {
						t.Errorf("%s: %v, want a refusal", c.name, err)
						continue
					}
					for _, want := range c.reason {
						if !strings.Contains(refusal.Reason, want) {
							t.Errorf("%s: reason %q lacks %q", c.name, refusal.Reason, want)
						}
					}
					if seal.LooksLikeNumber(refusal.Reason) || strings.Contains(refusal.Reason, "setup") {
						t.Errorf("%s: reason %q shows a number or the file name", c.name, refusal.Reason)
					}
					if after != before+1 {
						t.Errorf("%s: %d new media_refused entries, want 1", c.name, after-before)
					}
				}

				entries, err := g.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionMediaRefused}})
				if err != nil || len(entries) != 5 {
					t.Fatalf("media_refused entries: %d, %v", len(entries), err)
				}
				// The first: WhatsApp inbound, too large, from the contact.
				e := entries[0]
				var d map[string]any
				if err = json.Unmarshal(e.Details, &d); err != nil {
					t.Fatal(err)
				}
				if e.Staff != "@alice:test" || e.Network != "whatsapp" || d["direction"] != "inbound" || d["kind"] != "video" ||
					d["mime"] != "image/gif" || d["size"] != 12_500_000.0 || d["limit"] != 10_000_000.0 || d["cause"] != policy.MediaTooLarge {
					t.Errorf("entry of the too large file: %+v %s", e, e.Details)
				}
				exe := entries[3]
				if exe.Network != "telegram" || exe.Contact != "" || !strings.Contains(string(exe.Details), `"pattern":"application/x-msdownload"`) ||
					!strings.Contains(string(exe.Details), `"direction":"outbound"`) {
					t.Errorf("entry of the refused executable: %+v %s", exe, exe.Details)
				}
				if hashKey == "" {
					if e.Portal != waChat.ID || e.Login != wa.ID || e.Contact != string(contact) {
						t.Errorf("entry names chat %q login %q contact %q", e.Portal, e.Login, e.Contact)
					}
				} else {
					for _, x := range entries {
						all, _ := json.Marshal(x)
						if containsAny(string(all), "33612345678", "33698765432", "1001234567", "777000111") {
							t.Errorf("hashed mode entry holds a number: %s", all)
						}
					}
					if e.Portal != networkid.PortalID(g.ShownPortal(waChat.ID)) || e.Contact != g.Contacts.Key(contact) {
						t.Errorf("hashed entry names chat %q contact %q, want the pseudonyms %q %q", e.Portal, e.Contact, g.ShownPortal(waChat.ID), g.Contacts.Key(contact))
					}
				}
				if report, err := g.Audit.Verify(ctx); err != nil || !report.OK() {
					t.Errorf("audit chain after refusals: %+v, %v", report, err)
				}
			})
		})
	}
}

// TestCheckMediaDefaultAllowsAll: without a media section nothing is
// refused and nothing is logged; before start the check is not ready.
func TestCheckMediaDefaultAllowsAll(t *testing.T) {
	g := newMediaGate(t, dbtest.SQLite(t), "", nil)
	ctx := context.Background()
	for _, dir := range []remote.MediaDirection{remote.MediaInbound, remote.MediaOutbound} {
		for _, key := range []networkid.PortalKey{{ID: "telegram.u1", Receiver: "telegram.1"}, {ID: "whatsapp.1@s.whatsapp.net", Receiver: "whatsapp.2"}} {
			m := remote.Media{Direction: dir, Kind: remote.MediaFile, Login: mediaLogin(key.Receiver), PortalKey: key, MIME: "application/x-msdownload", Size: 4 << 30}
			if err := g.CheckMedia(ctx, m); err != nil {
				t.Errorf("%s %s refused by default: %v", dir, key.ID, err)
			}
		}
	}
	if n := countEntries(t, g, audit.ActionMediaRefused); n != 0 {
		t.Errorf("%d media_refused entries by default", n)
	}
	g.started.Store(false)
	if err := g.CheckMedia(ctx, remote.Media{PortalKey: networkid.PortalKey{ID: "telegram.u1"}}); !errors.Is(err, remote.ErrNotReady) {
		t.Errorf("check before start: %v, want a not-ready error", err)
	}
}

// TestMediaReasonNeverEchoesOddTypes: a type chosen by the sender that is
// not a plain MIME type, or that holds a number, is not repeated to staff.
func TestMediaReasonNeverEchoesOddTypes(t *testing.T) {
	g := newMediaGate(t, dbtest.SQLite(t), "", policy.MediaConfig{policy.AnyNetwork: {Inbound: policy.MediaRules{AllowedTypes: []string{"image/*"}}}})
	for _, mime := range []string{"application/x-+33612345678", "text/<b>hi</b>", "a/b\nc"} {
		err := g.CheckMedia(context.Background(), remote.Media{Direction: remote.MediaInbound, Kind: remote.MediaFile,
			Login: mediaLogin("telegram.1"), PortalKey: networkid.PortalKey{ID: "telegram.u2", Receiver: "telegram.1"}, MIME: mime, Size: 5})
		var refusal *remote.Refusal
		if !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "an unrecognised type") || strings.Contains(refusal.Reason, "336") ||
			strings.Contains(refusal.Reason, "<b>") {
			t.Errorf("%q: %v", mime, err)
		}
	}
}

func countEntries(t *testing.T, g *Gate, action audit.Action) int {
	t.Helper()
	entries, err := g.Audit.List(context.Background(), audit.Filter{Actions: []audit.Action{action}})
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func boolName(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
