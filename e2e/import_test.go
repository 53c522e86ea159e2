package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // the sqlite3-fk-wal driver
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/stack"
)

// TestImportAdoptsRooms: an organisation switches from mautrix-whatsapp. Its
// bot made a group's room on the homeserver; the bridge is stopped, its
// database imported with `passerelle import`, and at the gateway's next
// start the gateway's bot is in that room with the old bot's power, the old
// message mapped to its WhatsApp ID. Dendrite has both registrations loaded,
// as during a real switch.
func TestImportAdoptsRooms(t *testing.T) {
	dir := t.TempDir()
	oldRegPath := filepath.Join(dir, "whatsapp-registration.yaml")
	oldReg := &appservice.Registration{
		ID: "whatsapp", URL: "http://127.0.0.1:9", AppToken: randomString(32), ServerToken: randomString(32),
		SenderLocalpart: "whatsappbot",
		Namespaces: appservice.Namespaces{UserIDs: appservice.NamespaceList{
			{Regex: `^@whatsappbot:localhost$`, Exclusive: true},
			{Regex: `^@whatsapp_.*:localhost$`, Exclusive: true},
		}},
	}
	if err := oldReg.Save(oldRegPath); err != nil {
		t.Fatal(err)
	}
	s := NewStack(t, StackOptions{Users: []string{"alice"}, DendritePatch: func(doc *stack.YAMLDoc) error {
		var files []string
		if err := doc.Get("app_service_api.config_files", &files); err != nil {
			return err
		}
		return doc.Set("app_service_api.config_files", append(files, oldRegPath))
	}})
	ctx := s.Ctx()
	if err := s.Gateway.Stop(); err != nil {
		t.Fatal(err)
	}

	// The old bridge's room: made by its bot, which is its admin.
	oldBot := id.NewUserID("whatsappbot", s.Dendrite.ServerName)
	alice := id.UserID(s.Dendrite.UserID("alice"))
	old, err := mautrix.NewClient(s.Dendrite.URL, oldBot, oldReg.AppToken)
	if err != nil {
		t.Fatal(err)
	}
	old.SetAppServiceUserID = true
	_, _, err = old.Register(ctx, &mautrix.ReqRegister[any]{Username: "whatsappbot", Type: mautrix.AuthTypeAppservice, InhibitLogin: true})
	if err != nil && !errors.Is(err, mautrix.MUserInUse) {
		t.Logf("registering the old bot: %v (Dendrite may have made it already)", err)
	}
	created, err := old.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Name: "Ministry partners", Invite: []id.UserID{alice},
		PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{oldBot: 100, alice: 50}},
	})
	if err != nil {
		t.Fatalf("the old bot could not make its room: %v", err)
	}
	sent, err := old.SendText(ctx, created.RoomID, "bridged by the old bridge")
	if err != nil {
		t.Fatal(err)
	}

	// Its database, made by bridgev2's own schema upgrades.
	oldDBPath := filepath.Join(dir, "mautrix-whatsapp.db")
	raw, err := dbutil.NewWithDialect("file:"+oldDBPath+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	oldDB := database.New("", database.MetaTypes{}, raw)
	group := networkid.PortalKey{ID: "120363000000000001@g.us"}
	for _, step := range []func() error{
		func() error { return oldDB.Upgrade(ctx) },
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
	_ = raw.Close()

	out, err := exec.CommandContext(ctx, needGateway(t), "import", "--network", "whatsapp", "--from-db", oldDBPath,
		"--from-registration", oldRegPath, "-c", s.Gateway.ConfigPath, "-r", s.Gateway.RegistrationPath).CombinedOutput()
	t.Logf("passerelle import:\n%s", out)
	if err != nil || !strings.Contains(string(out), "portals:  1 imported") || !strings.Contains(string(out), "messages: 1 imported") {
		t.Fatalf("import: %v", err)
	}

	if err = s.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	bot := id.UserID(s.BotID)
	eventually(ctx, t, "the gateway's bot in the imported room with the old bot's power", func() bool {
		members, err := old.JoinedMembers(ctx, created.RoomID)
		if err != nil {
			return false
		}
		if _, in := members.Joined[bot]; !in {
			return false
		}
		var pl event.PowerLevelsEventContent
		return old.StateEvent(ctx, created.RoomID, event.StatePowerLevels, "", &pl) == nil && pl.GetUserLevel(bot) == 100
	})
}
