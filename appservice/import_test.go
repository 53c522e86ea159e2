package appservice

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"
	mxappservice "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/config"
)

// An administrator's switch from mautrix-whatsapp, by the command line:
// the dry run prints the summary and creates nothing (not even the
// gateway's database file); the import writes a private database with the
// old rooms. (The import itself is tested in package importer.)
func TestImportCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	permissiveUmask(t)

	// The old bridge's database, made by bridgev2's own schema upgrades.
	oldPath := filepath.Join(dir, "mautrix-whatsapp.db")
	raw, err := dbutil.NewWithDialect("file:"+oldPath+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	old := database.New("", database.MetaTypes{}, raw)
	if err = old.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if err = old.Portal.Insert(ctx, &database.Portal{PortalKey: networkid.PortalKey{ID: "120363000000000001@g.us"}, MXID: "!group:example.org", Name: "Partners"}); err != nil {
		t.Fatal(err)
	}
	_ = raw.Close()
	oldReg := filepath.Join(dir, "whatsapp-registration.yaml")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must((&mxappservice.Registration{ID: "whatsapp", AppToken: "old-as", ServerToken: "old-hs", SenderLocalpart: "whatsappbot",
		Namespaces: mxappservice.Namespaces{UserIDs: mxappservice.NamespaceList{{Regex: `^@whatsapp_.*:example\.org$`, Exclusive: true}}}}).Save(oldReg))
	regPath := filepath.Join(dir, "registration.yaml")
	must((&mxappservice.Registration{ID: "passerelle", AppToken: "new-as", ServerToken: "new-hs", SenderLocalpart: "passerellebot"}).Save(regPath))

	dbPath := filepath.Join(dir, "data", "passerelle.db")
	doc, err := config.Parse([]byte("homeserver:\n    domain: example.org\ndatabase:\n    type: sqlite3-fk-wal\n    uri: " + config.SQLiteURI(dbPath) + "\n"))
	must(err)
	cfgPath := filepath.Join(dir, "config.yaml")
	must(doc.Save(cfgPath))

	args := []string{"--from-db", oldPath, "--from-registration", oldReg, "--network", "whatsapp", "-c", cfgPath, "-r", regPath}
	var out, errOut bytes.Buffer
	if code := Import(ctx, append(args, "--dry-run"), &out, &errOut); code != 0 {
		t.Fatalf("dry run exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "portals:  1 would import, 0 skipped") {
		t.Errorf("dry run printed:\n%s", out.String())
	}
	if _, err = os.Stat(dbPath); !os.IsNotExist(err) {
		t.Errorf("dry run created the gateway's database (%v)", err)
	}

	out.Reset()
	if code := Import(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("import exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "portals:  1 imported, 0 skipped") {
		t.Errorf("import printed:\n%s", out.String())
	}
	assertMode(t, dbPath, privateFile)
	assertMode(t, regPath, privateFile)
	gw, err := dbutil.NewWithDialect(config.SQLiteURI(dbPath), "sqlite3-fk-wal")
	must(err)
	defer gw.Close()
	portal, err := database.New("", database.MetaTypes{}, gw).Portal.GetByMXID(ctx, "!group:example.org")
	must(err)
	if portal == nil || portal.ID != "whatsapp.g-120363000000000001" {
		t.Errorf("imported portal = %+v", portal)
	}

	// A command line without its source is refused with the usage.
	errOut.Reset()
	if code := Import(ctx, []string{"--network", "whatsapp"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "Usage: passerelle import") {
		t.Errorf("incomplete command line: exit %d, %q", code, errOut.String())
	}
}
