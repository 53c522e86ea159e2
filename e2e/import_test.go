package e2e

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // the sqlite3-fk-wal driver
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/oldwhatsapp"
	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// TestImportAdoptsRooms: an organisation switches from mautrix-whatsapp. Its
// bot made a group's room on the homeserver; the bridge is stopped, its
// database imported with `passerelle import`, and at the gateway's next
// start the gateway's bot is in that room with the old bot's power, the old
// message mapped to its WhatsApp ID. Dendrite has both registrations loaded,
// as during a real switch.
func TestImportAdoptsRooms(t *testing.T) {
	ob := newOldBridge(t, "whatsapp", StackOptions{Users: []string{"alice"}})
	s, ctx, old, oldBot := ob.s, ob.s.Ctx(), ob.client, ob.bot
	created := ob.room(ctx, "Ministry partners", id.UserID(s.Dendrite.UserID("alice")))
	sent, err := old.SendText(ctx, created.RoomID, "bridged by the old bridge")
	if err != nil {
		t.Fatal(err)
	}

	oldDBPath, oldDB, closeDB := ob.database(ctx)
	group := networkid.PortalKey{ID: "120363000000000001@g.us"}
	for _, step := range []func() error{
		func() error {
			return oldDB.Portal.Insert(ctx, &database.Portal{PortalKey: group, MXID: created.RoomID, Name: "Ministry partners", NameSet: true})
		},
		func() error { return oldDB.Ghost.Insert(ctx, &database.Ghost{ID: "15550002222", Name: "Bob"}) },
		func() error {
			return oldDB.Message.Insert(ctx, &database.Message{ID: "120363000000000001@g.us:15550002222@s.whatsapp.net:3EB0AAAA",
				MXID: sent.EventID, Room: group, SenderID: "15550002222", SenderMXID: oldBot, Timestamp: time.Now()})
		},
	} {
		if err = step(); err != nil {
			t.Fatal(err)
		}
	}
	closeDB()

	out := ob.importDB(ctx, oldDBPath)
	if !strings.Contains(out, "portals:  1 imported") || !strings.Contains(out, "messages: 1 imported") {
		t.Fatal("the import did not import the portal and its message")
	}

	if err = s.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ob.waitTakeover(ctx, created)
}

// oldBridge is a stopped mautrix bridge of the given network: its
// registration loaded in Dendrite next to the gateway's (as during a real
// switch), its bot able to act; the gateway is stopped.
type oldBridge struct {
	t       *testing.T
	s       *Stack
	network string
	dir     string
	regPath string
	bot     id.UserID
	client  *mautrix.Client
}

func newOldBridge(t *testing.T, network string, opts StackOptions) *oldBridge {
	t.Helper()
	ob := &oldBridge{t: t, network: network, dir: t.TempDir()}
	ob.regPath = filepath.Join(ob.dir, network+"-registration.yaml")
	reg := &appservice.Registration{
		ID: network, URL: "http://127.0.0.1:9", AppToken: randomString(32), ServerToken: randomString(32),
		SenderLocalpart: network + "bot",
		Namespaces: appservice.Namespaces{UserIDs: appservice.NamespaceList{
			{Regex: "^@" + network + "bot:localhost$", Exclusive: true},
			{Regex: "^@" + network + "_.*:localhost$", Exclusive: true},
		}},
	}
	if err := reg.Save(ob.regPath); err != nil {
		t.Fatal(err)
	}
	opts.DendritePatch = func(doc *stack.YAMLDoc) error {
		var files []string
		if err := doc.Get("app_service_api.config_files", &files); err != nil {
			return err
		}
		return doc.Set("app_service_api.config_files", append(files, ob.regPath))
	}
	ob.s = NewStack(t, opts)
	ctx := ob.s.Ctx()
	if err := ob.s.Gateway.Stop(); err != nil {
		t.Fatal(err)
	}
	ob.bot = id.NewUserID(network+"bot", ob.s.Dendrite.ServerName)
	var err error
	if ob.client, err = mautrix.NewClient(ob.s.Dendrite.URL, ob.bot, reg.AppToken); err != nil {
		t.Fatal(err)
	}
	ob.client.SetAppServiceUserID = true
	_, _, err = ob.client.Register(ctx, &mautrix.ReqRegister[any]{Username: network + "bot", Type: mautrix.AuthTypeAppservice, InhibitLogin: true})
	if err != nil && !errors.Is(err, mautrix.MUserInUse) {
		t.Logf("registering the old bot: %v (Dendrite may have made it already)", err)
	}
	return ob
}

// room is a portal room as the old bridge made it: its bot is the admin,
// the staff member invited.
func (ob *oldBridge) room(ctx context.Context, name string, staff id.UserID) *mautrix.RespCreateRoom {
	ob.t.Helper()
	created, err := ob.client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Name: name, Invite: []id.UserID{staff},
		PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{ob.bot: 100, staff: 50}},
	})
	if err != nil {
		ob.t.Fatalf("the old bot could not make its room: %v", err)
	}
	return created
}

// database makes the old bridge's database the way it does: bridgev2's own
// schema upgrades on a SQLite file.
func (ob *oldBridge) database(ctx context.Context) (path string, db *database.Database, closeDB func()) {
	ob.t.Helper()
	path = filepath.Join(ob.dir, "mautrix-"+ob.network+".db")
	raw, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		ob.t.Fatal(err)
	}
	db = database.New("", database.MetaTypes{}, raw)
	if err = db.Upgrade(ctx); err != nil {
		ob.t.Fatal(err)
	}
	return path, db, func() { _ = raw.Close() }
}

// importDB runs `passerelle import` on the old bridge's database.
func (ob *oldBridge) importDB(ctx context.Context, dbPath string) string {
	ob.t.Helper()
	out, err := exec.CommandContext(ctx, needGateway(ob.t), "import", "--network", ob.network, "--from-db", dbPath,
		"--from-registration", ob.regPath, "-c", ob.s.Gateway.ConfigPath, "-r", ob.s.Gateway.RegistrationPath).CombinedOutput()
	ob.t.Logf("passerelle import:\n%s", out)
	if err != nil {
		ob.t.Fatalf("passerelle import: %v", err)
	}
	return string(out)
}

// waitTakeover waits until the gateway's bot is in the room with the old
// bot's power.
func (ob *oldBridge) waitTakeover(ctx context.Context, room *mautrix.RespCreateRoom) {
	ob.t.Helper()
	bot := id.UserID(ob.s.BotID)
	eventually(ctx, ob.t, "the gateway's bot in the imported room with the old bot's power", func() bool {
		members, err := ob.client.JoinedMembers(ctx, room.RoomID)
		if err != nil {
			return false
		}
		if _, in := members.Joined[bot]; !in {
			return false
		}
		var pl event.PowerLevelsEventContent
		return ob.client.StateEvent(ctx, room.RoomID, event.StatePowerLevels, "", &pl) == nil && pl.GetUserLevel(bot) == 100
	})
}

// TestImportTelegramSession: a staff member's Telegram session comes along
// from mautrix-telegram: without logging in again, a contact's message
// arrives in the old direct-chat room (now the gateway's), and the staff
// member's answer from that room reaches Telegram.
func TestImportTelegramSession(t *testing.T) {
	sim := NewTelegramSim(t, tgsim.Options{})
	staff, contact := telegramWorld(t, sim, "+15550071", "")
	ob := newOldBridge(t, "telegram", StackOptions{TelegramSim: sim, Users: []string{"sam"}})
	s, ctx := ob.s, ob.s.Ctx()
	sam := s.User("sam")
	samID := id.UserID(s.Dendrite.UserID("sam"))
	data := oldTelegramSession(ctx, t, sim, staff.Phone)

	dm := ob.room(ctx, "Alice Outside", samID)
	if err := sam.Join(ctx, dm.RoomID.String()); err != nil {
		t.Fatal(err)
	}
	dbPath, db, closeDB := ob.database(ctx)
	staffID, contactID := strconv.FormatInt(staff.ID, 10), strconv.FormatInt(contact.ID, 10)
	key := networkid.PortalKey{ID: networkid.PortalID("user:" + contactID), Receiver: networkid.UserLoginID(staffID)}
	for _, step := range []func() error{
		func() error { return db.User.Insert(ctx, &database.User{MXID: samID}) },
		func() error {
			// mautrix-telegram keeps the MTProto session in the login's metadata.
			return db.UserLogin.Insert(ctx, &database.UserLogin{UserMXID: samID, ID: networkid.UserLoginID(staffID), RemoteName: "Sam Staff",
				Metadata: &map[string]any{"phone": staff.Phone, "session": map[string]any{
					"auth_key": data.AuthKey, "dc_id": data.DC, "server_address": data.Addr, "salt": data.Salt}}})
		},
		func() error {
			return db.Ghost.Insert(ctx, &database.Ghost{ID: networkid.UserID(contactID), Name: "Alice Outside"})
		},
		func() error {
			return db.Portal.Insert(ctx, &database.Portal{PortalKey: key, MXID: dm.RoomID, OtherUserID: networkid.UserID(contactID),
				RoomType: database.RoomTypeDM, Name: "Alice Outside", NameSet: true})
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	closeDB()
	out := ob.importDB(ctx, dbPath)
	if !strings.Contains(out, "login telegram."+staffID+" of "+samID.String()+": session carried") {
		t.Fatal("the import did not bring the session along")
	}
	if err := s.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ob.waitTakeover(ctx, dm)

	if _, err := sim.SendMessage(contact.ID, staff.ID, "after the switch", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sam.WaitMessage(ctx, dm.RoomID.String(), MessageFilter{BodyContains: "after the switch"}); err != nil {
		t.Fatalf("the contact's message did not arrive in the imported room: %v", err)
	}
	if _, err := sam.Send(ctx, dm.RoomID.String(), "answer from Matrix"); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := sim.WaitMessage(waitCtx, staff.ID, contact.ID, func(m tgsim.Message) bool { return m.Text == "answer from Matrix" }); err != nil {
		t.Fatalf("the answer from the imported room never reached Telegram: %v", err)
	}
}

// oldTelegramSession logs a gotd client in to the simulator by phone, as
// mautrix-telegram did, and returns its session.
func oldTelegramSession(ctx context.Context, t *testing.T, sim *tgsim.Server, phone string) *session.Data {
	t.Helper()
	storage := new(session.StorageMemory)
	opts := sim.ClientOptions()
	opts.SessionStorage = storage
	client := telegram.NewClient(1, "old-bridge", opts)
	err := client.Run(ctx, func(ctx context.Context) error {
		sent, err := client.Auth().SendCode(ctx, phone, auth.SendCodeOptions{})
		if err != nil {
			return err
		}
		code, ok := sim.LastCode(phone)
		sentCode, isCode := sent.(*tg.AuthSentCode)
		if !ok || !isCode {
			return errors.New("the simulator issued no login code")
		}
		_, err = client.Auth().SignIn(ctx, phone, code, sentCode.PhoneCodeHash)
		return err
	})
	if err != nil {
		t.Fatalf("the old bridge's Telegram login: %v", err)
	}
	data, err := (&session.Loader{Storage: storage}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestImportWhatsAppRelink: a WhatsApp login whose device is not in the old
// database (here it has no whatsmeow device tables at all) does not come
// along and is reported "re-link needed", but once the staff member links
// the same phone again, the imported direct chat is theirs: a contact's
// message arrives in the old room, and the answer from it reaches WhatsApp.
func TestImportWhatsAppRelink(t *testing.T) {
	wa := NewWhatsAppSim(t)
	const staffPhone, contactPhone = "+33600000071", "+33600000072"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", contactPhone: "Alice Outside"})
	ob := newOldBridge(t, "whatsapp", StackOptions{WhatsAppSim: wa, Users: []string{"sam"}})
	s, ctx := ob.s, ob.s.Ctx()
	sam := s.User("sam")
	samID := id.UserID(s.Dendrite.UserID("sam"))
	dm := ob.room(ctx, "Alice Outside", samID)
	if err := sam.Join(ctx, dm.RoomID.String()); err != nil {
		t.Fatal(err)
	}

	// mautrix-whatsapp's rows: login and receiver are the phone number,
	// the chat its JID.
	dbPath, db, closeDB := ob.database(ctx)
	insertOldWhatsAppDM(t, ctx, db, samID, staffPhone, contactPhone, dm.RoomID, nil)
	closeDB()
	if out := ob.importDB(ctx, dbPath); !strings.Contains(out, "session re-link needed") || !strings.Contains(out, "portals:  1 imported") {
		t.Fatal("the import did not keep the chat and ask for a new link")
	}
	if err := s.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ob.waitTakeover(ctx, dm)

	mgmt, _ := s.BotRoom(sam)
	s.LinkWhatsAppQR(sam, mgmt, wa, staffPhone)
	if _, err := wa.SendText(ctx, contactPhone, staffPhone, "after linking again"); err != nil {
		t.Fatal(err)
	}
	if _, err := sam.WaitMessage(ctx, dm.RoomID.String(), MessageFilter{BodyContains: "after linking again"}); err != nil {
		t.Fatalf("the contact's message did not arrive in the imported room: %v", err)
	}
	answerReachesWhatsApp(t, ctx, sam, wa, dm.RoomID, staffPhone, contactPhone)
}

// TestImportWhatsAppSession: mautrix-whatsapp's linked device comes along.
// Its device had talked with a contact; after `passerelle import` the
// gateway connects as that device (no QR code), the contact's next message
// (decrypted with the carried Signal session) arrives in the old room, and
// the answer from it reaches WhatsApp.
func TestImportWhatsAppSession(t *testing.T) {
	wa := NewWhatsAppSim(t)
	wasim.UseRootPublicKey(wasim.RootPublicKeyFromSeed(whatsAppSeed))
	const staffPhone, contactPhone = "+33600000081", "+33600000082"
	createWAAccounts(t, wa, map[string]string{staffPhone: "Sam Staff", contactPhone: "Alice Outside"})
	ob := newOldBridge(t, "whatsapp", StackOptions{WhatsAppSim: wa, Users: []string{"sam"}})
	s, ctx := ob.s, ob.s.Ctx()
	sam := s.User("sam")
	samID := id.UserID(s.Dendrite.UserID("sam"))
	dm := ob.room(ctx, "Alice Outside", samID)
	if err := sam.Join(ctx, dm.RoomID.String()); err != nil {
		t.Fatal(err)
	}

	// mautrix-whatsapp's rows, and its whatsmeow device store: a device
	// linked to Sam's phone that exchanged a message each way with Alice.
	dbPath, db, closeDB := ob.database(ctx)
	if err := oldwhatsapp.Schema(ctx, db.Database); err != nil {
		t.Fatal(err)
	}
	scratch, err := dbutil.NewWithDialect("file:"+filepath.Join(ob.dir, "scratch.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := oldwhatsapp.Link(ctx, wa, staffPhone, contactPhone, scratch, db.Database)
	_ = scratch.Close()
	if err != nil {
		t.Fatal(err)
	}
	staffNumber := strings.TrimPrefix(staffPhone, "+")
	insertOldWhatsAppDM(t, ctx, db, samID, staffPhone, contactPhone, dm.RoomID, map[string]any{"wa_device_id": dev.JID.Device, "wa_lid": dev.LID.User})
	closeDB()
	if out := ob.importDB(ctx, dbPath); !strings.Contains(out, "login whatsapp."+staffNumber+" of "+samID.String()+": session carried") {
		t.Fatal("the import did not carry the WhatsApp device")
	}
	if err := s.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ob.waitTakeover(ctx, dm)

	if _, err := wa.SendText(ctx, contactPhone, staffPhone, "still there after the switch?"); err != nil {
		t.Fatal(err)
	}
	if _, err := sam.WaitMessage(ctx, dm.RoomID.String(), MessageFilter{BodyContains: "still there after the switch?"}); err != nil {
		t.Fatalf("the contact's message did not arrive in the imported room: %v", err)
	}
	acc, _ := wa.Account(staffPhone)
	if devices := acc.Devices(); len(devices) != 1 || devices[0] != dev.JID {
		t.Fatalf("Sam's linked devices %v, want only the carried %s: the gateway paired anew", devices, dev.JID)
	}
	answerReachesWhatsApp(t, ctx, sam, wa, dm.RoomID, staffPhone, contactPhone)
}

// insertOldWhatsAppDM writes mautrix-whatsapp's rows of a staff member's
// direct chat: login and receiver are the phone number, the chat its JID;
// loginMeta is the login's metadata (nil: none).
func insertOldWhatsAppDM(t *testing.T, ctx context.Context, db *database.Database, staff id.UserID, staffPhone, contactPhone string, room id.RoomID, loginMeta map[string]any) {
	t.Helper()
	staffNumber, contactNumber := strings.TrimPrefix(staffPhone, "+"), strings.TrimPrefix(contactPhone, "+")
	key := networkid.PortalKey{ID: networkid.PortalID(contactNumber + "@s.whatsapp.net"), Receiver: networkid.UserLoginID(staffNumber)}
	login := &database.UserLogin{UserMXID: staff, ID: networkid.UserLoginID(staffNumber), RemoteName: "Sam Staff"}
	if loginMeta != nil {
		login.Metadata = &loginMeta
	}
	for _, step := range []func() error{
		func() error { return db.User.Insert(ctx, &database.User{MXID: staff}) },
		func() error { return db.UserLogin.Insert(ctx, login) },
		func() error {
			return db.Ghost.Insert(ctx, &database.Ghost{ID: networkid.UserID(contactNumber), Name: "Alice Outside"})
		},
		func() error {
			return db.Portal.Insert(ctx, &database.Portal{PortalKey: key, MXID: room, OtherUserID: networkid.UserID(contactNumber),
				RoomType: database.RoomTypeDM, Name: "Alice Outside", NameSet: true})
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

// answerReachesWhatsApp sends an answer from the imported room and waits
// for the contact to get it on WhatsApp.
func answerReachesWhatsApp(t *testing.T, ctx context.Context, sam *Client, wa *wasim.Server, room id.RoomID, staffPhone, contactPhone string) {
	t.Helper()
	if _, err := sam.Send(ctx, room.String(), "answer from Matrix"); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := wa.WaitMessage(waitCtx, staffPhone, contactPhone, func(m wasim.Message) bool {
		return m.Message.GetConversation() == "answer from Matrix" || m.Message.GetExtendedTextMessage().GetText() == "answer from Matrix"
	}); err != nil {
		t.Fatalf("the answer from the imported room never reached WhatsApp: %v", err)
	}
}
