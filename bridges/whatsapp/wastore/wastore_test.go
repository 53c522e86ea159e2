package wastore_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
	"github.com/passerelle/passerelle/internal/dbtest"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

func TestMain(m *testing.M) {
	wasim.UseRootPublicKey(wasim.RootPublicKeyFromSeed(""))
	os.Exit(m.Run())
}

func newContainer(t testing.TB, db *dbutil.Database) *wastore.Container {
	t.Helper()
	c := wastore.NewChild(db, nil, nil)
	if err := c.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// fakePaired fills in what pairing would, so that the device can be saved.
func fakePaired(dev *store.Device, user string) {
	jid := types.NewADJID(user, 0, 3)
	dev.ID = &jid
	dev.LID = types.NewADJID("9"+user, 0, 3)
	dev.PushName = "Alice"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignature:    bytes.Repeat([]byte{1}, 64),
		AccountSignatureKey: bytes.Repeat([]byte{2}, 32),
		DeviceSignature:     bytes.Repeat([]byte{3}, 64),
	}
}

func TestDeviceStoreRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := b.Open(t)
		c := newContainer(t, db)
		dev := c.NewDevice()
		if err := dev.Save(ctx); err == nil {
			t.Fatal("saving an unpaired device should fail")
		}
		fakePaired(dev, "15550001111")
		if err := dev.Save(ctx); err != nil {
			t.Fatal(err)
		}
		if !dev.Initialized || dev.Sessions == nil {
			t.Fatal("saved device is not wired to the store")
		}

		// Signal state.
		addr := "15550002222:0"
		must(t, dev.Sessions.PutSession(ctx, addr, []byte("session")))
		if has, err := dev.Sessions.HasSession(ctx, addr); err != nil || !has {
			t.Fatalf("HasSession = %v, %v", has, err)
		}
		many, err := dev.Sessions.GetManySessions(ctx, []string{addr, "nobody:0"})
		if err != nil || string(many[addr]) != "session" || many["nobody:0"] != nil || len(many) != 2 {
			t.Fatalf("GetManySessions = %v, %v", many, err)
		}
		key := [32]byte{7}
		if ok, _ := dev.Identities.IsTrustedIdentity(ctx, addr, key); !ok {
			t.Fatal("unknown identity should be trusted")
		}
		must(t, dev.Identities.PutIdentity(ctx, addr, key))
		if ok, _ := dev.Identities.IsTrustedIdentity(ctx, addr, [32]byte{8}); ok {
			t.Fatal("changed identity should not be trusted")
		}
		// Saved again unchanged (what every message does), then changed:
		// the new key replaces the old one.
		must(t, dev.Identities.PutIdentity(ctx, addr, key))
		must(t, dev.Identities.PutIdentity(ctx, addr, [32]byte{8}))
		if ok, _ := dev.Identities.IsTrustedIdentity(ctx, addr, [32]byte{8}); !ok {
			t.Fatal("the identity saved last should be trusted")
		}
		if ok, _ := dev.Identities.IsTrustedIdentity(ctx, addr, key); ok {
			t.Fatal("the identity replaced should no longer be trusted")
		}
		must(t, dev.Identities.PutIdentity(ctx, addr, key))
		must(t, dev.SenderKeys.PutSenderKey(ctx, "g@g.us", addr, []byte("sk")))
		// Moving a phone-number address to its LID.
		pn, lid := types.NewJID("15550002222", types.DefaultUserServer), types.NewJID("777", types.HiddenUserServer)
		must(t, dev.Sessions.MigratePNToLID(ctx, pn, lid))
		if s, _ := dev.Sessions.GetSession(ctx, "777_1:0"); string(s) != "session" {
			t.Fatalf("session not moved to LID: %q", s)
		}
		if s, _ := dev.Sessions.GetSession(ctx, addr); s != nil {
			t.Fatal("session still under phone number")
		}
		if k, _ := dev.SenderKeys.GetSenderKey(ctx, "g@g.us", "777_1:0"); string(k) != "sk" {
			t.Fatal("sender key not moved")
		}
		must(t, dev.Sessions.DeleteAllSessions(ctx, "777_1"))
		if has, _ := dev.Sessions.HasSession(ctx, "777_1:0"); has {
			t.Fatal("DeleteAllSessions left a session")
		}

		// Prekeys.
		pks, err := dev.PreKeys.GetOrGenPreKeys(ctx, 30)
		if err != nil || len(pks) != 30 || pks[0].KeyID != 1 || pks[29].KeyID != 30 {
			t.Fatalf("GetOrGenPreKeys = %d keys, %v", len(pks), err)
		}
		must(t, dev.PreKeys.MarkPreKeysAsUploaded(ctx, 20))
		if n, _ := dev.PreKeys.UploadedPreKeyCount(ctx); n != 20 {
			t.Fatalf("uploaded = %d", n)
		}
		again, _ := dev.PreKeys.GetOrGenPreKeys(ctx, 15)
		if len(again) != 15 || again[0].KeyID != 21 || again[14].KeyID != 35 {
			t.Fatalf("second batch starts at %d", again[0].KeyID)
		}
		got, _ := dev.PreKeys.GetPreKey(ctx, 5)
		if got == nil || *got.Priv != *pks[4].Priv {
			t.Fatal("GetPreKey returned another key")
		}
		must(t, dev.PreKeys.RemovePreKey(ctx, 5))
		if got, _ = dev.PreKeys.GetPreKey(ctx, 5); got != nil {
			t.Fatal("removed prekey still there")
		}

		// App state.
		must(t, dev.AppStateKeys.PutAppStateSyncKey(ctx, []byte("k1"), store.AppStateSyncKey{Data: []byte("d1"), Fingerprint: []byte("f"), Timestamp: 10}))
		must(t, dev.AppStateKeys.PutAppStateSyncKey(ctx, []byte("k2"), store.AppStateSyncKey{Data: []byte("d2"), Fingerprint: []byte("f"), Timestamp: 20}))
		must(t, dev.AppStateKeys.PutAppStateSyncKey(ctx, []byte("k2"), store.AppStateSyncKey{Data: []byte("old"), Fingerprint: []byte("f"), Timestamp: 5}))
		if latest, _ := dev.AppStateKeys.GetLatestAppStateSyncKeyID(ctx); string(latest) != "k2" {
			t.Fatalf("latest key %q", latest)
		}
		if k, _ := dev.AppStateKeys.GetAppStateSyncKey(ctx, []byte("k2")); k == nil || string(k.Data) != "d2" {
			t.Fatal("older key replaced a newer one")
		}
		hash := [128]byte{1, 2, 3}
		must(t, dev.AppState.PutAppStateVersion(ctx, "regular", 3, hash))
		idx, val := bytes.Repeat([]byte{4}, 32), bytes.Repeat([]byte{5}, 32)
		must(t, dev.AppState.PutAppStateMutationMACs(ctx, "regular", 3, []store.AppStateMutationMAC{{IndexMAC: idx, ValueMAC: val}}))
		if v, h, _ := dev.AppState.GetAppStateVersion(ctx, "regular"); v != 3 || h != hash {
			t.Fatal("app state version lost")
		}
		if got, _ := dev.AppState.GetAppStateMutationMAC(ctx, "regular", idx); !bytes.Equal(got, val) {
			t.Fatal("mutation MAC lost")
		}
		must(t, dev.AppState.DeleteAppStateMutationMACs(ctx, "regular", [][]byte{idx}))
		if got, _ := dev.AppState.GetAppStateMutationMAC(ctx, "regular", idx); got != nil {
			t.Fatal("mutation MAC not deleted")
		}

		// Contacts and chat settings.
		bob := types.NewJID("15550002222", types.DefaultUserServer)
		changed, prev, err := dev.Contacts.PutPushName(ctx, bob, "Bob")
		if err != nil || !changed || prev != "" {
			t.Fatalf("PutPushName = %v %q %v", changed, prev, err)
		}
		if changed, _, _ = dev.Contacts.PutPushName(ctx, bob, "Bob"); changed {
			t.Fatal("same push name reported as changed")
		}
		must(t, dev.Contacts.PutContactName(ctx, bob, "Robert", "Robert Smith"))
		info, _ := dev.Contacts.GetContact(ctx, bob)
		if !info.Found || info.PushName != "Bob" || info.FirstName != "Robert" || info.FullName != "Robert Smith" {
			t.Fatalf("contact = %+v", info)
		}
		must(t, dev.ChatSettings.PutMutedUntil(ctx, bob, store.MutedForever))
		must(t, dev.ChatSettings.PutPinned(ctx, bob, true))
		if cs, _ := dev.ChatSettings.GetChatSettings(ctx, bob); !cs.Found || !cs.Pinned || !cs.MutedUntil.Equal(store.MutedForever) {
			t.Fatalf("chat settings = %+v", cs)
		}

		// LID map, message secrets (matched through the LID map) and privacy tokens.
		bobLID := types.NewJID("888", types.HiddenUserServer)
		must(t, dev.LIDs.PutLIDMapping(ctx, bobLID, bob))
		if l, _ := dev.LIDs.GetLIDForPN(ctx, bob); l != bobLID {
			t.Fatalf("LID for PN = %s", l)
		}
		must(t, dev.MsgSecrets.PutMessageSecret(ctx, bob, bob, "MSG1", []byte("secret")))
		sec, sender, err := dev.MsgSecrets.GetMessageSecret(ctx, bobLID, bobLID, "MSG1")
		if err != nil || string(sec) != "secret" || sender != bob {
			t.Fatalf("GetMessageSecret via LID = %q %s %v", sec, sender, err)
		}
		now := time.Unix(time.Now().Unix(), 0)
		must(t, dev.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: bob, Token: []byte("tok"), Timestamp: now}))
		if tok, _ := dev.PrivacyTokens.GetPrivacyToken(ctx, bobLID); tok == nil || string(tok.Token) != "tok" || !tok.Timestamp.Equal(now) {
			t.Fatalf("privacy token = %+v", tok)
		}

		// Event buffer.
		h := [32]byte{9}
		must(t, dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			return dev.EventBuffer.PutBufferedEvent(ctx, h, []byte("plain"), now)
		}))
		if buf, _ := dev.EventBuffer.GetBufferedEvent(ctx, h); buf == nil || string(buf.Plaintext) != "plain" {
			t.Fatal("buffered event lost")
		}
		must(t, dev.EventBuffer.ClearBufferedEventPlaintext(ctx, h))
		if buf, _ := dev.EventBuffer.GetBufferedEvent(ctx, h); buf == nil || buf.Plaintext != nil {
			t.Fatal("plaintext not cleared")
		}

		// A second container on a new pool sees the same device; deleting it
		// takes its state along.
		c2 := newContainer(t, b.Open(t))
		loaded, err := c2.GetDevice(ctx, *dev.ID)
		if err != nil || loaded == nil {
			t.Fatalf("GetDevice = %v, %v", loaded, err)
		}
		if *loaded.NoiseKey.Priv != *dev.NoiseKey.Priv || *loaded.IdentityKey.Priv != *dev.IdentityKey.Priv ||
			loaded.SignedPreKey.KeyID != dev.SignedPreKey.KeyID || *loaded.SignedPreKey.Signature != *dev.SignedPreKey.Signature ||
			loaded.RegistrationID != dev.RegistrationID || loaded.LID != dev.LID || loaded.PushName != "Alice" {
			t.Fatal("loaded device differs from saved one")
		}
		if l, _ := loaded.LIDs.GetPNForLID(ctx, bobLID); l != bob {
			t.Fatal("LID map not shared")
		}
		must(t, loaded.Delete(ctx))
		if all, _ := c2.GetAllDevices(ctx); len(all) != 0 {
			t.Fatalf("%d devices after delete", len(all))
		}
		var n int
		if err = db.QueryRow(ctx, "SELECT COUNT(*) FROM whatsapp_pre_keys").Scan(&n); err != nil || n != 0 {
			t.Fatalf("prekeys left after delete: %d %v", n, err)
		}
	})
}

// The clears of handled messages' plaintexts are gathered: one clear is
// answered as done at once (a message sent again is "already processed"),
// is in the database shortly after without anyone asking, and a stop's
// flush writes what waits; a full batch is written by the clear filling it.
func TestBufferedPlaintextClearsGathered(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := b.Open(t)
		c := newContainer(t, db)
		dev := savedDevice(t, c, "15550001111")
		put := func(tag byte, n int) [][32]byte {
			var hashes [][32]byte
			for i := range n {
				h := [32]byte{byte(i), byte(i >> 8), tag}
				hashes = append(hashes, h)
				must(t, dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
					return dev.EventBuffer.PutBufferedEvent(ctx, h, []byte("plain"), time.Now())
				}))
			}
			return hashes
		}
		stored := func() int {
			t.Helper()
			var n int
			must(t, db.QueryRow(ctx, "SELECT COUNT(*) FROM whatsapp_event_buffer WHERE plaintext IS NOT NULL").Scan(&n))
			return n
		}

		// One clear: answered at once, written within the window.
		h := put(1, 1)[0]
		must(t, dev.EventBuffer.ClearBufferedEventPlaintext(ctx, h))
		if buf, err := dev.EventBuffer.GetBufferedEvent(ctx, h); err != nil || buf == nil || buf.Plaintext != nil {
			t.Fatalf("a cleared message's buffer reads %+v, %v; want it known, without its plaintext", buf, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for stored() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("a clear not written 10 s later")
			}
			runtime.Gosched()
		}

		// A batch of 300 in a row: the first 256 written by the 256th.
		// The stop's flush writes the rest.
		hashes := put(2, 300)
		for _, h := range hashes {
			must(t, dev.EventBuffer.ClearBufferedEventPlaintext(ctx, h))
		}
		if n := stored(); n > 300-256 {
			t.Fatalf("%d plaintexts still stored after 300 clears, want at most %d", n, 300-256)
		}
		must(t, c.FlushClears(ctx))
		if n := stored(); n != 0 {
			t.Fatalf("%d plaintexts still stored after the stop's flush", n)
		}
	})
}

// Privacy tokens are looked up for every message sent: the answers are
// kept, absences too, and a token stored (in either of the contact's
// forms, a LID mapping learnt later) is seen at once.
func TestPrivacyTokensCached(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := b.Open(t)
		c := newContainer(t, db)
		dev := savedDevice(t, c, "15550002222")
		bob := types.NewJID("15550003333", types.DefaultUserServer)
		if tok, err := dev.PrivacyTokens.GetPrivacyToken(ctx, bob); err != nil || tok != nil {
			t.Fatalf("a contact without a token: %+v, %v", tok, err)
		}
		// Behind the store's back: the absence is remembered.
		insertToken(t, db, dev, bob, "sneaky", 1)
		if tok, _ := dev.PrivacyTokens.GetPrivacyToken(ctx, bob); tok != nil {
			t.Fatalf("the absence was not kept: read %q", tok.Token)
		}
		// Stored through the store: seen at once; a caller changing its
		// copy does not change the next answer.
		now := time.Unix(time.Now().Unix(), 0)
		must(t, dev.PrivacyTokens.PutPrivacyTokens(ctx, store.PrivacyToken{User: bob, Token: []byte("tok1"), Timestamp: now}))
		tok, _ := dev.PrivacyTokens.GetPrivacyToken(ctx, bob)
		if tok == nil || string(tok.Token) != "tok1" || !tok.Timestamp.Equal(now) {
			t.Fatalf("after a put: %+v", tok)
		}
		tok.Token[0] = 'X'
		if again, _ := dev.PrivacyTokens.GetPrivacyToken(ctx, bob); again == nil || string(again.Token) != "tok1" {
			t.Fatalf("a caller's change reached the cache: %+v", again)
		}
		// A token stored under the LID, and the mapping learnt after the
		// phone number's absence was kept: found.
		carol := types.NewJID("15550004444", types.DefaultUserServer)
		carolLID := types.NewJID("11223344", types.HiddenUserServer)
		if tok, _ := dev.PrivacyTokens.GetPrivacyToken(ctx, carol); tok != nil {
			t.Fatal("carol has no token yet")
		}
		insertToken(t, db, dev, carolLID, "lidtok", 2)
		must(t, c.LIDMap.PutLIDMapping(ctx, carolLID, carol))
		if tok, _ := dev.PrivacyTokens.GetPrivacyToken(ctx, carol); tok == nil || string(tok.Token) != "lidtok" {
			t.Fatalf("a token under the LID, mapping learnt later: %+v", tok)
		}
	})
}

// savedDevice is a device of c, paired as user and saved.
func savedDevice(t testing.TB, c *wastore.Container, user string) *store.Device {
	t.Helper()
	dev := c.NewDevice()
	fakePaired(dev, user)
	must(t, dev.Save(context.Background()))
	return dev
}

// insertToken stores a privacy token of who for dev behind the store's back.
func insertToken(t *testing.T, db *dbutil.Database, dev *store.Device, who types.JID, token string, ts int64) {
	t.Helper()
	_, err := db.Exec(context.Background(), `INSERT INTO whatsapp_privacy_tokens (our_jid, their_jid, token, timestamp) VALUES ($1, $2, $3, $4)`,
		dev.ID.String(), who.String(), []byte(token), ts)
	must(t, err)
}

func TestLIDMapRejectsWrongServers(t *testing.T) {
	c := newContainer(t, dbtest.SQLite(t).Open(t))
	ctx := context.Background()
	pn := types.NewJID("1555", types.DefaultUserServer)
	if err := c.LIDMap.PutLIDMapping(ctx, pn, pn); err == nil {
		t.Fatal("a phone JID was accepted as LID")
	}
	if _, err := c.LIDMap.GetPNForLID(ctx, pn); err == nil {
		t.Fatal("GetPNForLID accepted a phone JID")
	}
	if l, err := c.LIDMap.GetLIDForPN(ctx, pn); err != nil || !l.IsEmpty() {
		t.Fatal("unknown PN should map to nothing")
	}
}

// TestReconnectFromDatabase pairs a real whatsmeow client with the simulator,
// then builds a new client from a fresh container on the same database (as a
// restarted gateway would) and checks it connects and decrypts without
// pairing again.
func TestReconnectFromDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		srv, err := wasim.Start(wasim.Config{StreamErrorCloseDelay: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = srv.CreateAccount("15550001111", "Alice")
		must(t, err)
		_, err = srv.CreateAccount("15550002222", "Bob")
		must(t, err)

		c1 := newContainer(t, b.Open(t))
		cli := whatsmeow.NewClient(c1.NewDevice(), nil)
		wasim.RouteClient(cli, srv.Addr())
		evts := collect(cli)
		qr, err := cli.GetQRChannel(ctx)
		must(t, err)
		must(t, cli.Connect())
		item := <-qr
		if item.Event != whatsmeow.QRChannelEventCode {
			t.Fatalf("QR channel: %s", item.Event)
		}
		must(t, srv.ScanQR(ctx, "15550001111", item.Code))
		waitFor[*events.Connected](t, evts)
		if _, err = srv.SendText(ctx, "15550002222", "15550001111", "before restart"); err != nil {
			t.Fatal(err)
		}
		waitFor[*events.Message](t, evts)
		time.Sleep(200 * time.Millisecond) // let the receipt go out before disconnecting
		// End the connection from the server side, as a crash or restart
		// would (a client-side Disconnect trips a race inside whatsmeow).
		must(t, srv.ReplaceStream("15550001111"))
		waitFor[*events.StreamReplaced](t, evts)

		c2 := newContainer(t, b.Open(t))
		devs, err := c2.GetAllDevices(ctx)
		if err != nil || len(devs) != 1 {
			t.Fatalf("GetAllDevices = %d, %v", len(devs), err)
		}
		cli2 := whatsmeow.NewClient(devs[0], nil)
		wasim.RouteClient(cli2, srv.Addr())
		evts2 := collect(cli2)
		must(t, cli2.Connect())
		waitFor[*events.Connected](t, evts2)
		if _, err = srv.SendText(ctx, "15550002222", "15550001111", "after restart"); err != nil {
			t.Fatal(err)
		}
		msg := waitFor[*events.Message](t, evts2)
		if msg.Message.GetConversation() != "after restart" {
			t.Fatalf("got %q", msg.Message.GetConversation())
		}
		// And the restarted client can still send.
		resp, err := cli2.SendMessage(ctx, types.NewJID("15550002222", types.DefaultUserServer), &waE2E.Message{Conversation: proto.String("reply")})
		must(t, err)
		if _, err = srv.WaitMessage(ctx, "15550001111", "15550002222", func(m wasim.Message) bool { return m.ID == resp.ID }); err != nil {
			t.Fatalf("reply not received: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		must(t, srv.ReplaceStream("15550001111"))
		waitFor[*events.StreamReplaced](t, evts2)
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func collect(cli *whatsmeow.Client) chan any {
	ch := make(chan any, 256)
	cli.AddEventHandler(func(evt any) {
		select {
		case ch <- evt:
		default:
		}
	})
	return ch
}

func waitFor[T any](t *testing.T, ch chan any) T {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case evt := <-ch:
			if typed, ok := evt.(T); ok {
				return typed
			}
		case <-timeout:
			var zero T
			t.Fatalf("timed out waiting for %T", zero)
			return zero
		}
	}
}
