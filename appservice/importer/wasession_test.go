package importer

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/oldwhatsapp"
)

// oldWADevice is what the fixture's whatsmeow tables hold for Alice's
// device 3 (the wa_device_id of the fixture's login).
type oldWADevice struct {
	jid, lid          types.JID
	noise, ident, pre *keys.KeyPair
	preKey            *keys.KeyPair
}

var (
	waBob    = types.NewJID("15550002222", types.DefaultUserServer)
	waBobLID = types.NewJID("98765", types.HiddenUserServer)
	waGroup  = types.NewJID("120363000000000001", types.GroupServer)
)

func bytesOf(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// withWhatsmeowStore adds whatsmeow's device tables (by its own upgrades)
// to a mautrix-whatsapp fixture, with one row in each for the login's
// device.
func withWhatsmeowStore(t *testing.T, fx fixture) oldWADevice {
	t.Helper()
	ctx := context.Background()
	must(t, oldwhatsapp.Schema(ctx, fx.db))
	d := oldWADevice{
		jid:   types.JID{User: "15550001111", Device: 3, Server: types.DefaultUserServer},
		lid:   types.JID{User: "11223344", Device: 3, Server: types.HiddenUserServer},
		noise: keys.NewKeyPair(), ident: keys.NewKeyPair(), pre: keys.NewKeyPair(), preKey: keys.NewKeyPair(),
	}
	own := d.jid.String()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO whatsmeow_device (jid, lid, facebook_uuid, registration_id, noise_key, identity_key, signed_pre_key, signed_pre_key_id,
			signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig, platform, business_name, push_name, lid_migration_ts)
			VALUES ($1, $2, NULL, 4242, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11, 'chrome', '', 'Alice', 1760000000)`,
			[]any{own, d.lid.String(), d.noise.Priv[:], d.ident.Priv[:], d.pre.Priv[:], bytesOf(64, 1), bytesOf(32, 2), []byte("details"),
				bytesOf(64, 3), bytesOf(32, 4), bytesOf(64, 5)}},
		{`INSERT INTO whatsmeow_identity_keys (our_jid, their_id, identity) VALUES ($1, '98765_1.0', $2)`, []any{own, bytesOf(32, 6)}},
		{`INSERT INTO whatsmeow_sessions (our_jid, their_id, session) VALUES ($1, '98765_1.0', $2)`, []any{own, []byte("signal session")}},
		{`INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES ($1, 7, $2, true)`, []any{own, d.preKey.Priv[:]}},
		{`INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES ($1, 8, $2, false)`, []any{own, keys.NewKeyPair().Priv[:]}},
		{`INSERT INTO whatsmeow_sender_keys (our_jid, chat_id, sender_id, sender_key) VALUES ($1, $2, '98765_1.0', $3)`,
			[]any{own, waGroup.String(), []byte("sender key")}},
		{`INSERT INTO whatsmeow_app_state_sync_keys (jid, key_id, key_data, timestamp, fingerprint) VALUES ($1, $2, $3, 1700000000, $4)`,
			[]any{own, []byte("key-1"), bytesOf(32, 7), []byte("fingerprint")}},
		{`INSERT INTO whatsmeow_app_state_version (jid, name, version, hash) VALUES ($1, 'regular', 12, $2)`, []any{own, bytesOf(128, 8)}},
		{`INSERT INTO whatsmeow_app_state_mutation_macs (jid, name, version, index_mac, value_mac) VALUES ($1, 'regular', 12, $2, $3)`,
			[]any{own, bytesOf(32, 9), bytesOf(32, 10)}},
		{`INSERT INTO whatsmeow_contacts (our_jid, their_jid, first_name, full_name, push_name, business_name, redacted_phone)
			VALUES ($1, $2, 'Bob', 'Bob Martin', 'Bobby', 'Bob & Co', NULL)`, []any{own, waBob.String()}},
		{`INSERT INTO whatsmeow_contacts (our_jid, their_jid, first_name, full_name, push_name, business_name, redacted_phone)
			VALUES ($1, $2, NULL, NULL, NULL, NULL, '+1 555 •••• 22')`, []any{own, waBobLID.String()}},
		{`INSERT INTO whatsmeow_chat_settings (our_jid, chat_jid, muted_until, pinned, archived) VALUES ($1, $2, -1, true, false)`,
			[]any{own, waGroup.String()}},
		{`INSERT INTO whatsmeow_chat_settings (our_jid, chat_jid, muted_until, pinned, archived) VALUES ($1, $2, 1900000000, false, true)`,
			[]any{own, waBob.String()}},
		{`INSERT INTO whatsmeow_message_secrets (our_jid, chat_jid, sender_jid, message_id, key) VALUES ($1, $2, $3, '3EB0POLL', $4)`,
			[]any{own, waGroup.String(), waBob.String(), bytesOf(32, 11)}},
		{`INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, 1750000000)`,
			[]any{own, waBob.String(), []byte("token")}},
		{`INSERT INTO whatsmeow_event_buffer (our_jid, ciphertext_hash, plaintext, server_timestamp, insert_timestamp) VALUES ($1, $2, $3, 1760000001, 1760000001000)`,
			[]any{own, bytesOf(32, 12), []byte("plaintext")}},
		{`INSERT INTO whatsmeow_lid_map (lid, pn) VALUES ('98765', '15550002222')`, nil},
	} {
		if _, err := fx.db.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	return d
}

// TestImportWhatsAppDeviceStore checks every kind of state whatsmeow keeps
// for a device arrives in Passerelle's device store as whatsmeow reads it.
func TestImportWhatsAppDeviceStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, oldB, dstB dbtest.Backend) {
		ctx := context.Background()
		fx := whatsappFixture(t, oldB)
		old := withWhatsmeowStore(t, fx)
		c := newCase(t, fx, dstB, "whatsapp")
		dry := c.run(t, true)
		if out := summary(dry); !strings.Contains(out, "login whatsapp.15550001111 of @alice:example.org: session carried") {
			t.Errorf("dry run:\n%s", out)
		}
		// A device row left without a login by an earlier link of the
		// same phone is replaced by the old bridge's device.
		ws := wastore.NewChild(c.dst, nil, nil)
		must(t, ws.Upgrade(ctx))
		stale := ws.NewDevice()
		stale.ID, stale.Account = &old.jid, &waAdv.ADVSignedDeviceIdentity{
			Details: []byte("stale"), AccountSignature: bytesOf(64, 1), AccountSignatureKey: bytesOf(32, 1), DeviceSignature: bytesOf(64, 1)}
		must(t, ws.PutDevice(ctx, stale))
		must(t, ws.PutPreKey(ctx, old.jid, &keys.PreKey{KeyPair: *keys.NewKeyPair(), KeyID: 7}, false))

		report := c.run(t, false)
		if report.Logins.Imported != 1 {
			t.Fatalf("import:\n%s", summary(report))
		}

		login, err := target(c.dst).UserLogin.GetByID(ctx, "whatsapp.15550001111")
		must(t, err)
		if login == nil || login.UserMXID != "@alice:example.org" {
			t.Fatalf("login = %+v", login)
		}
		if m := *login.Metadata.(*map[string]any); m["device_jid"] != "15550001111:3@s.whatsapp.net" || m["lid"] != "11223344@lid" || m["push_name"] != "Alice" {
			t.Errorf("login metadata = %v", m)
		}
		dev, err := ws.GetDevice(ctx, old.jid)
		must(t, err)
		if dev == nil {
			t.Fatal("device not carried")
		}
		if *dev.NoiseKey.Priv != *old.noise.Priv || *dev.IdentityKey.Priv != *old.ident.Priv || *dev.SignedPreKey.Priv != *old.pre.Priv ||
			dev.RegistrationID != 4242 || dev.LID != old.lid || dev.PushName != "Alice" || dev.Platform != "chrome" ||
			!bytes.Equal(dev.Account.Details, []byte("details")) || !bytes.Equal(dev.AdvSecretKey, bytesOf(32, 2)) || dev.LIDMigrationTimestamp != 1760000000 {
			t.Errorf("device = %+v", dev)
		}
		if ok, err := dev.Identities.IsTrustedIdentity(ctx, "98765_1.0", [32]byte(bytesOf(32, 6))); err != nil || !ok {
			t.Errorf("identity: %v %v", ok, err)
		}
		if s, err := dev.Sessions.GetSession(ctx, "98765_1.0"); err != nil || string(s) != "signal session" {
			t.Errorf("session %q %v", s, err)
		}
		if k, err := dev.PreKeys.GetPreKey(ctx, 7); err != nil || k == nil || *k.Priv != *old.preKey.Priv {
			t.Errorf("prekey 7: %v %v", k, err)
		}
		if n, err := dev.PreKeys.UploadedPreKeyCount(ctx); err != nil || n != 1 {
			t.Errorf("uploaded prekeys %d %v", n, err)
		}
		if k, err := dev.SenderKeys.GetSenderKey(ctx, waGroup.String(), "98765_1.0"); err != nil || string(k) != "sender key" {
			t.Errorf("sender key %q %v", k, err)
		}
		if k, err := dev.AppStateKeys.GetAppStateSyncKey(ctx, []byte("key-1")); err != nil || k == nil || k.Timestamp != 1700000000 || string(k.Fingerprint) != "fingerprint" {
			t.Errorf("app state key %+v %v", k, err)
		}
		if v, hash, err := dev.AppState.GetAppStateVersion(ctx, "regular"); err != nil || v != 12 || hash != [128]byte(bytesOf(128, 8)) {
			t.Errorf("app state version %d %v", v, err)
		}
		if mac, err := dev.AppState.GetAppStateMutationMAC(ctx, "regular", bytesOf(32, 9)); err != nil || !bytes.Equal(mac, bytesOf(32, 10)) {
			t.Errorf("mutation MAC %x %v", mac, err)
		}
		if ci, err := dev.Contacts.GetContact(ctx, waBob); err != nil || ci.FirstName != "Bob" || ci.FullName != "Bob Martin" || ci.PushName != "Bobby" || ci.BusinessName != "Bob & Co" {
			t.Errorf("contact %+v %v", ci, err)
		}
		if ci, err := dev.Contacts.GetContact(ctx, waBobLID); err != nil || ci.RedactedPhone != "+1 555 •••• 22" {
			t.Errorf("LID contact %+v %v", ci, err)
		}
		if cs, err := dev.ChatSettings.GetChatSettings(ctx, waGroup); err != nil || !cs.MutedUntil.Equal(store.MutedForever) || !cs.Pinned || cs.Archived {
			t.Errorf("group chat settings %+v %v", cs, err)
		}
		if cs, err := dev.ChatSettings.GetChatSettings(ctx, waBob); err != nil || cs.MutedUntil.Unix() != 1900000000 || cs.Pinned || !cs.Archived {
			t.Errorf("direct chat settings %+v %v", cs, err)
		}
		if s, _, err := dev.MsgSecrets.GetMessageSecret(ctx, waGroup, waBob, "3EB0POLL"); err != nil || !bytes.Equal(s, bytesOf(32, 11)) {
			t.Errorf("message secret %x %v", s, err)
		}
		if tok, err := dev.PrivacyTokens.GetPrivacyToken(ctx, waBob); err != nil || tok == nil || string(tok.Token) != "token" || tok.Timestamp.Unix() != 1750000000 {
			t.Errorf("privacy token %+v %v", tok, err)
		}
		if ev, err := dev.EventBuffer.GetBufferedEvent(ctx, [32]byte(bytesOf(32, 12))); err != nil || ev == nil || string(ev.Plaintext) != "plaintext" || !ev.ServerTime.Equal(time.Unix(1760000001, 0)) {
			t.Errorf("buffered event %+v %v", ev, err)
		}
		if pn, err := dev.LIDs.GetPNForLID(ctx, waBobLID); err != nil || pn != waBob {
			t.Errorf("LID map %v %v", pn, err)
		}
	})
}

// TestImportWhatsAppRelinkReasons: a device the import cannot read is
// reported with its reason, and its login is left out.
func TestImportWhatsAppRelinkReasons(t *testing.T) {
	for _, tc := range []struct {
		name, change, want string
	}{
		{"newer compatible schema", `UPDATE whatsmeow_version SET version=12, compat=10`, "session carried"},
		{"newer incompatible schema", `UPDATE whatsmeow_version SET version=12, compat=12`,
			"session re-link needed: the old whatsmeow device store has schema v12, newer than the v11 this import reads; link the device again"},
		{"older schema", `UPDATE whatsmeow_version SET version=9, compat=8`, "session re-link needed: the old whatsmeow device store has schema v9, older than the v11"},
		{"device logged out", `DELETE FROM whatsmeow_device`, "session re-link needed: " + whyNoWADevice},
		{"no device number", `UPDATE user_login SET metadata='{}'`, "session re-link needed: " + whyBadWAMeta},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := whatsappFixture(t, dbtest.SQLite(t))
			withWhatsmeowStore(t, fx)
			_, err := fx.db.Exec(context.Background(), tc.change)
			must(t, err)
			c := newCase(t, fx, dbtest.SQLite(t), "whatsapp")
			report := c.run(t, false)
			if out := summary(report); !strings.Contains(out, "login whatsapp.15550001111 of @alice:example.org: "+tc.want) {
				t.Errorf("report:\n%s\nwant %q", out, tc.want)
			}
			l, err := target(c.dst).UserLogin.GetByID(context.Background(), "whatsapp.15550001111")
			must(t, err)
			if (l != nil) != (tc.want == "session carried") {
				t.Errorf("login written: %+v", l)
			}
		})
	}
}
