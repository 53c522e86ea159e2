package whatsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/appservice/importer"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
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
// tables by whatsmeow's own sqlstore upgrade files (from the module cache:
// the sqlstore package itself does not build against the go.mau.fi/util
// that mautrix-go pins), filled with the state of a real whatsmeow client.
func oldWhatsAppBridge(t *testing.T, srv *wasim.Server, b dbtest.Backend) *dbutil.Database {
	ctx := ctxFor(t)
	src := b.Open(t)
	bridgeDB := database.New("", database.MetaTypes{
		Portal: rawMapMeta, Ghost: rawMapMeta, Message: rawMapMeta, Reaction: rawMapMeta, UserLogin: rawMapMeta,
	}, src)
	if err := bridgeDB.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Child("whatsmeow_version", sqlstoreUpgrades(t), nil).Upgrade(ctx); err != nil {
		t.Fatalf("whatsmeow's sqlstore upgrades: %v", err)
	}

	// The client runs on a scratch store; its rows are then written into
	// whatsmeow's tables, column for column.
	scratch := dbtest.SQLite(t).Open(t)
	store := wastore.NewChild(scratch, nil, nil)
	if err := store.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	cli := whatsmeow.NewClient(store.NewDevice(), nil)
	srv.RouteClient(cli)
	msgs := make(chan *events.Message, 16)
	connected := make(chan struct{}, 4)
	cli.AddEventHandler(func(evt any) {
		switch e := evt.(type) {
		case *events.Message:
			msgs <- e
		case *events.Connected:
			connected <- struct{}{}
		}
	})
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err = cli.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case item := <-qr:
		if err = srv.ScanQR(ctx, alicePh, item.Code); err != nil {
			t.Fatalf("ScanQR: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no QR code")
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("the old bridge's client never connected")
	}
	if _, err = srv.SendText(ctx, bobPh, alicePh, "hello old bridge"); err != nil {
		t.Fatalf("Bob's first message: %v", err)
	}
	select {
	case m := <-msgs:
		if m.Message.GetConversation() != "hello old bridge" {
			t.Fatalf("old client got %q", m.Message.GetConversation())
		}
	case <-ctx.Done():
		t.Fatal("the old client never got Bob's message")
	}
	sent, err := cli.SendMessage(ctx, types.NewJID(bobPh, types.DefaultUserServer), &waE2E.Message{Conversation: proto.String("hello Bob")})
	if err != nil {
		t.Fatalf("the old client's answer: %v", err)
	}
	if _, err = srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool { return m.ID == sent.ID }); err != nil {
		t.Fatalf("Bob never got the old client's answer: %v", err)
	}
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatalf("the old client's receipts: %v", err)
	}
	// whatsmeow acks from goroutines that race Disconnect: let the
	// server see the acks first (as the simulator's own tests do).
	acked, deadline := time.NewTicker(10*time.Millisecond), time.Now().Add(2*time.Second)
	for srv.Unacked() > 0 && time.Now().Before(deadline) {
		<-acked.C
	}
	acked.Stop()
	devJID := *cli.Store.ID
	cli.Disconnect()

	copyDeviceStore(ctx, t, scratch, src)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(bridgeDB.User.Insert(ctx, &database.User{MXID: testUser}))
	md := map[string]any{"wa_device_id": devJID.Device, "wa_lid": cli.Store.GetLID().User, "phone_last_seen": 0}
	raw, _ := json.Marshal(md)
	var loginMeta map[string]any
	must(json.Unmarshal(raw, &loginMeta))
	must(bridgeDB.UserLogin.Insert(ctx, &database.UserLogin{UserMXID: testUser, ID: alicePh, RemoteName: "+" + alicePh, Metadata: &loginMeta}))
	return src
}

func rawMapMeta() any { return &map[string]any{} }

// sqlstoreUpgrades is whatsmeow's sqlstore upgrade table, read from the
// whatsmeow module Passerelle builds with.
func sqlstoreUpgrades(t *testing.T) dbutil.UpgradeTable {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.mau.fi/whatsmeow").Output()
	if err != nil {
		t.Fatalf("failed to find the whatsmeow module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "store", "sqlstore", "upgrades")
	fsys, ok := os.DirFS(dir).(interface {
		fs.ReadFileFS
		fs.ReadDirFS
	})
	if !ok {
		t.Fatal("os.DirFS cannot list and read")
	}
	return dbutil.BuildUpgradeTable().WithFS(fsys).Finish()
}

// copyDeviceStore writes every row of wastore's tables into the matching
// whatsmeow_* table of sqlstore's schema (the same columns; "" becomes NULL
// where sqlstore keeps NULL).
func copyDeviceStore(ctx context.Context, t *testing.T, from, to *dbutil.Database) {
	for _, table := range []string{"device", "identity_keys", "pre_keys", "sessions", "sender_keys", "app_state_sync_keys",
		"app_state_version", "app_state_mutation_macs", "contacts", "chat_settings", "message_secrets", "privacy_tokens",
		"lid_map", "event_buffer"} {
		rows, err := from.Query(ctx, "SELECT * FROM whatsapp_"+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		var all [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err = rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, c := range cols {
				if s, ok := vals[i].(string); ok && s == "" && table == "device" && (c == "lid" || c == "facebook_uuid") {
					vals[i] = nil
				}
			}
			all = append(all, vals)
		}
		_ = rows.Close()
		placeholders := make([]string, len(cols))
		for i := range cols {
			placeholders[i] = fmt.Sprintf("$%d", i+1)
		}
		q := fmt.Sprintf("INSERT INTO whatsmeow_%s (%s) VALUES (%s)", table, strings.Join(cols, ", "), strings.Join(placeholders, ", "))
		for _, vals := range all {
			if _, err = to.Exec(ctx, q, vals...); err != nil {
				t.Fatalf("copy into whatsmeow_%s: %v", table, err)
			}
		}
		t.Logf("old bridge: %d rows in whatsmeow_%s", len(all), table)
	}
}
