package whatsapp

import (
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/appservice/importer"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	"github.com/passerelle/passerelle/internal/oldwhatsapp"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// TestImportCarriesWhatsAppDevice switches a mautrix-whatsapp whose device
// talked with Bob: `passerelle import` carries the linked device and its
// Signal sessions, and the gateway connects as that device (no QR code),
// decrypts Bob's next message with the carried session and answers him.
func TestImportCarriesWhatsAppDevice(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		srv := startSim(t)
		ctx := ctxFor(t)
		old := oldWhatsAppBridge(t, srv, b)
		oldDevices := mustAccount(t, srv, alicePh).Devices()
		if len(oldDevices) != 1 {
			t.Fatalf("old bridge's devices: %v", oldDevices)
		}

		dst := dbtest.SQLite(t)
		if b.Name == "postgres" {
			dst = dbtest.Postgres(t)
		}
		dstDB := dst.Open(t)
		opts := importer.Options{
			Network: waid.Network, Source: old, OldRegistration: &appservice.Registration{SenderLocalpart: "whatsappbot"},
			HomeserverDomain: "test", Target: dstDB, TargetBridgeID: "passerelle-test",
		}
		opts.DryRun = true
		dry, err := importer.Run(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(dry.LoginDetails) != 1 || dry.LoginDetails[0].Session != "carried" || dry.Logins.Imported != 1 {
			t.Fatalf("dry run: %+v", dry.LoginDetails)
		}
		if exists, err := dstDB.TableExists(ctx, "whatsapp_device"); err != nil || exists {
			t.Fatalf("the dry run wrote the device store: %v %v", exists, err)
		}
		opts.DryRun = false
		report, err := importer.Run(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(report.LoginDetails) != 1 || report.LoginDetails[0].Session != "carried" {
			t.Fatalf("import: %+v", report.LoginDetails)
		}
		var sessions int
		if err = dstDB.QueryRow(ctx, "SELECT COUNT(*) FROM whatsapp_sessions").Scan(&sessions); err != nil || sessions == 0 {
			t.Fatalf("carried Signal sessions: %d, %v", sessions, err)
		}
		t.Logf("carried %d Signal sessions of device %s", sessions, oldDevices[0])

		// The gateway starts on the imported database: the login
		// connects as the old device, without any pairing.
		tb := startBridge(t, srv, dstDB)
		if !tb.mx.Eventually(waitLong, func() bool { return tb.mx.HasBridgeState(status.StateConnected, "") }) {
			t.Fatal("the imported login never reached CONNECTED")
		}
		ul := tb.br.GetCachedUserLoginByID("whatsapp." + alicePh)
		if ul == nil || !ul.Client.IsLoggedIn() {
			t.Fatalf("imported login %v is not logged in", ul)
		}
		if devices := mustAccount(t, srv, alicePh).Devices(); len(devices) != 1 || devices[0] != oldDevices[0] {
			t.Fatalf("Alice's linked devices %v, want only the carried %s", devices, oldDevices[0])
		}

		// Bob writes again: his phone's session with the device is an
		// established one (not a prekey message), so only the carried
		// session decrypts it; no retry receipt asks him to re-encrypt.
		receiptsBefore := len(srv.Receipts())
		if _, err = srv.SendText(ctx, bobPh, alicePh, "still there after the switch?"); err != nil {
			t.Fatal(err)
		}
		got := tb.waitMsg(t, "Bob's message", func(m fakematrix.Message) bool { return m.Content.Body == "still there after the switch?" })
		if got.Sender != bobGhost {
			t.Fatalf("bridged as %s", got.Sender)
		}
		for _, r := range srv.Receipts()[receiptsBefore:] {
			if r.Type == types.ReceiptTypeRetry {
				t.Fatalf("the gateway asked Bob to re-encrypt (%+v): the session was not carried", r)
			}
		}

		// The answer from Matrix reaches Bob.
		portal, err := tb.br.GetExistingPortalByKey(ctx, networkid.PortalKey{ID: "whatsapp." + bobPh, Receiver: ul.ID})
		if err != nil || portal == nil || portal.MXID != got.RoomID {
			t.Fatalf("portal %+v, %v", portal, err)
		}
		resp := tb.sendMatrix(t, ul, portal, &event.MessageEventContent{MsgType: event.MsgText, Body: "yes, same device"})
		key, err := waid.ParseMessageID(resp.DB.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool { return m.ID == key.ID }); err != nil || m.Text() != "yes, same device" {
			t.Fatalf("Bob got %+v, %v", m, err)
		}
		if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
			t.Fatal(err)
		}
	})
}

func mustAccount(t *testing.T, srv *wasim.Server, phone string) *wasim.Account {
	t.Helper()
	acc, ok := srv.Account(phone)
	if !ok {
		t.Fatalf("no account %s", phone)
	}
	return acc
}

// oldWhatsAppBridge makes the database of a mautrix-whatsapp whose device
// is linked to Alice's account and has exchanged a message each way with
// Bob: bridgev2's tables by bridgev2's own upgrades, whatsmeow's device
// tables by whatsmeow's own sqlstore upgrades, filled with the state of a
// real whatsmeow client (package oldwhatsapp).
func oldWhatsAppBridge(t *testing.T, srv *wasim.Server, b dbtest.Backend) *dbutil.Database {
	t.Helper()
	ctx := ctxFor(t)
	src := b.Open(t)
	bridgeDB := database.New("", database.MetaTypes{
		Portal: rawMapMeta, Ghost: rawMapMeta, Message: rawMapMeta, Reaction: rawMapMeta, UserLogin: rawMapMeta,
	}, src)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(bridgeDB.Upgrade(ctx))
	must(oldwhatsapp.Schema(ctx, src))
	dev, err := oldwhatsapp.Link(ctx, srv, alicePh, bobPh, dbtest.SQLite(t).Open(t), src)
	must(err)
	must(bridgeDB.User.Insert(ctx, &database.User{MXID: testUser}))
	// mautrix-whatsapp's login: the phone number, and which of its
	// devices is the bridge's.
	loginMeta := map[string]any{"wa_device_id": dev.JID.Device, "wa_lid": dev.LID.User, "phone_last_seen": 0}
	must(bridgeDB.UserLogin.Insert(ctx, &database.UserLogin{UserMXID: testUser, ID: alicePh, RemoteName: "+" + alicePh, Metadata: &loginMeta}))
	return src
}

func rawMapMeta() any { return &map[string]any{} }
