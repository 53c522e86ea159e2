package importer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// eachBackend runs fn with an old bridge's database and Passerelle's on
// the same kind of backend (two databases).
func eachBackend(t *testing.T, fn func(t *testing.T, old, target dbtest.Backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, dbtest.SQLite(t), dbtest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, dbtest.Postgres(t), dbtest.Postgres(t)) })
}

func target(db *dbutil.Database) *database.Database {
	return database.New("", database.MetaTypes{Portal: rawMeta, Ghost: rawMeta, Message: rawMeta, Reaction: rawMeta, UserLogin: rawMeta}, db)
}

type importCase struct {
	fx       fixture
	dst      *dbutil.Database
	regPath  string
	reg      *appservice.Registration
	network  string
	fakeTime manualClock
}

func (c importCase) run(t *testing.T, dryRun bool) *Report {
	t.Helper()
	// Passerelle reads its registration afresh for every run.
	reg, err := appservice.LoadRegistration(c.regPath)
	must(t, err)
	report, err := Run(context.Background(), Options{
		Network: c.network, Source: c.fx.db, OldRegistration: c.fx.reg, HomeserverDomain: domain,
		Target: c.dst, Registration: reg, RegistrationPath: c.regPath, DryRun: dryRun, Clock: c.fakeTime,
	})
	if err != nil {
		t.Fatalf("import failed: %v", err)
	}
	return report
}

func newCase(t *testing.T, fx fixture, dst dbtest.Backend, network string) importCase {
	regPath, reg := passerelleRegistration(t)
	return importCase{fx: fx, dst: dst.Open(t), regPath: regPath, reg: reg, network: network,
		fakeTime: manualClock{clocktest.New(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))}}
}

// manualClock is the test clock as a clock.Clock; the import never waits.
type manualClock struct{ *clocktest.Manual }

func (manualClock) After(time.Duration) <-chan time.Time { return nil }

func summary(r *Report) string {
	var b bytes.Buffer
	r.Print(&b)
	return b.String()
}

func TestImportWhatsApp(t *testing.T) {
	eachBackend(t, func(t *testing.T, oldB, dstB dbtest.Backend) {
		ctx := context.Background()
		c := newCase(t, whatsappFixture(t, oldB), dstB, "whatsapp")
		oldBefore := dump(t, c.fx.db)
		dstBefore := dump(t, c.dst)
		regBefore := fileBytes(t, c.regPath)

		// A dry run reports and changes nothing: not Passerelle's
		// database (not even a table), not its registration.
		dry := c.run(t, true)
		if got := dump(t, c.dst); got != dstBefore {
			t.Errorf("dry run changed Passerelle's database:\n%s", got)
		}
		if fileBytes(t, c.regPath) != regBefore {
			t.Error("dry run rewrote the registration")
		}
		out := summary(dry)
		t.Logf("dry run:\n%s", out)
		for _, want := range []string{"Dry run: nothing was written", "portals:  2 would import, 2 skipped",
			"messages: 4 would import, 2 skipped", "skipped 1: placeholder message (no real remote ID)\n",
			`skipped 1: ID format not recognised (first: ID format not recognised: chat "12345@bot"`, "its room was not imported", "no Matrix room",
			"session re-link needed: the old database has no whatsmeow device tables", "reactions: 1 not imported", "2 would be taken over from @whatsappbot:example.org"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry-run summary lacks %q", want)
			}
		}

		report := c.run(t, false)
		t.Logf("import:\n%s", summary(report))
		for _, tbl := range []*Table{report.Portals, report.Ghosts, report.Messages, report.Logins} {
			dryTbl := map[string]*Table{"portals": dry.Portals, "ghosts": dry.Ghosts, "messages": dry.Messages, "logins": dry.Logins}[tbl.Name]
			if tbl.Imported != dryTbl.Imported || tbl.SkippedTotal() != dryTbl.SkippedTotal() {
				t.Errorf("%s: import did %d/%d, the dry run announced %d/%d", tbl.Name, tbl.Imported, tbl.SkippedTotal(), dryTbl.Imported, dryTbl.SkippedTotal())
			}
		}
		if got := dump(t, c.fx.db); got != oldBefore {
			t.Error("the import wrote to the old bridge's database")
		}

		db := target(c.dst)
		// Staff keep their rooms: the DM is the same room, now a
		// Passerelle portal of the same login; the group is shared.
		dm, err := db.Portal.GetByMXID(ctx, "!dm:example.org")
		must(t, err)
		if dm == nil || dm.PortalKey != (networkid.PortalKey{ID: "whatsapp.15550002222", Receiver: "whatsapp.15550001111"}) ||
			dm.OtherUserID != "whatsapp.15550002222" || dm.Name != "Bob" || dm.RoomType != database.RoomTypeDM {
			t.Errorf("direct chat portal = %+v", dm)
		}
		group, err := db.Portal.GetByKey(ctx, networkid.PortalKey{ID: "whatsapp.g-120363000000000001"})
		must(t, err)
		if group == nil || group.MXID != "!group:example.org" || group.Topic != "weekly" {
			t.Errorf("group portal = %+v", group)
		}
		for _, room := range []id.RoomID{"!bot:example.org"} {
			if p, err := db.Portal.GetByMXID(ctx, room); err != nil || p != nil {
				t.Errorf("room %s was imported though its chat cannot be translated: %+v %v", room, p, err)
			}
		}
		// Messages keep their Matrix events, under Passerelle's IDs:
		// replies and edits to them find them.
		msg, err := db.Message.GetPartByMXID(ctx, "$g1")
		must(t, err)
		if msg == nil || msg.ID != "whatsapp.g-120363000000000001.lid-98765.3EB0BBBB" || msg.SenderID != "whatsapp.lid-98765" || msg.Room != group.PortalKey {
			t.Errorf("group message = %+v", msg)
		} else if m := *msg.Metadata.(*map[string]any); m["sender_jid"] != "98765@lid" {
			t.Errorf("message metadata = %v, want the sender JID", m)
		}
		reply, err := db.Message.GetPartByMXID(ctx, "$g2")
		must(t, err)
		if reply == nil || reply.ReplyTo.MessageID != msg.ID {
			t.Errorf("reply = %+v, want it to point at %s", reply, msg.ID)
		}
		own, err := db.Message.GetPartByID(ctx, "whatsapp.15550001111", "whatsapp.15550002222.15550001111.3EB0AAAB", "")
		must(t, err)
		if own == nil || own.MXID != "$dm2" || !own.IsDoublePuppeted || own.SenderMXID != "@alice:example.org" {
			t.Errorf("own message = %+v", own)
		}
		// Ghosts get Passerelle's Matrix IDs: their profile is to be set
		// there (name_set false), from the name kept.
		bob, err := db.Ghost.GetByID(ctx, "whatsapp.15550002222")
		must(t, err)
		if bob == nil || bob.Name != "Bob" || bob.NameSet || bob.AvatarSet || bob.AvatarMXC != "mxc://example.org/15550002222" {
			t.Errorf("ghost = %+v", bob)
		}
		// This old database has no whatsmeow tables (its device store
		// elsewhere): no login, so nothing tries to connect with a
		// device it does not have.
		if l, err := db.UserLogin.GetByID(ctx, "whatsapp.15550001111"); err != nil || l != nil {
			t.Errorf("login imported without its session: %+v %v", l, err)
		}
		if len(report.LoginDetails) != 1 || !strings.Contains(report.LoginDetails[0].Session, "link the device again") {
			t.Errorf("login details = %+v", report.LoginDetails)
		}

		// The registration now also claims the old namespaces
		// (non-exclusively) and still claims Passerelle's own.
		reg, err := appservice.LoadRegistration(c.regPath)
		must(t, err)
		want := append(appservice.NamespaceList{}, c.reg.Namespaces.UserIDs...)
		want = append(want, appservice.Namespace{Regex: `^@whatsappbot:example\.org$`}, appservice.Namespace{Regex: `^@whatsapp_.*:example\.org$`})
		if len(reg.Namespaces.UserIDs) != len(want) {
			t.Fatalf("registration namespaces = %+v, want %+v", reg.Namespaces.UserIDs, want)
		}
		for i := range want {
			if reg.Namespaces.UserIDs[i] != want[i] {
				t.Errorf("registration namespace %d = %+v, want %+v", i, reg.Namespaces.UserIDs[i], want[i])
			}
		}
		if reg.AppToken != c.reg.AppToken || reg.ServerToken != c.reg.ServerToken {
			t.Error("the registration's tokens changed")
		}

		// Running it again imports nothing twice and changes nothing.
		afterFirst := dump(t, c.dst)
		again := c.run(t, false)
		if again.Portals.Imported+again.Ghosts.Imported+again.Messages.Imported != 0 || len(again.Namespaces) != 0 {
			t.Errorf("second import did something:\n%s", summary(again))
		}
		if dump(t, c.dst) != afterFirst {
			t.Error("second import changed Passerelle's database")
		}
	})
}

func TestImportTelegram(t *testing.T) {
	eachBackend(t, func(t *testing.T, oldB, dstB dbtest.Backend) {
		ctx := context.Background()
		c := newCase(t, telegramFixture(t, oldB), dstB, "telegram")
		report := c.run(t, false)
		out := summary(report)
		t.Logf("import:\n%s", out)
		db := target(c.dst)

		private, err := db.Portal.GetByMXID(ctx, "!tgdm:example.org")
		must(t, err)
		if private == nil || private.PortalKey != (networkid.PortalKey{ID: "telegram.u2000001", Receiver: "telegram.1000001"}) {
			t.Errorf("private chat portal = %+v", private)
		}
		// A basic group is one shared room in Passerelle: the first
		// login's room is kept, the other is reported.
		basic, err := db.Portal.GetByKey(ctx, networkid.PortalKey{ID: "telegram.c4000001"})
		must(t, err)
		if basic == nil || basic.MXID != "!basic-bob:example.org" {
			t.Errorf("basic group portal = %+v", basic)
		}
		if !strings.Contains(out, "same chat as another imported room: Passerelle has one room for a chat shared by several logins (first: !basic-carol:example.org, kept !basic-bob:example.org)") {
			t.Errorf("summary does not report the second basic group room:\n%s", out)
		}
		for mxid, want := range map[id.EventID]networkid.MessageID{
			"$t1": "telegram.u1000001.17", "$t3": "telegram.u1000001.20", "$t5": "telegram.ch3000001.55",
		} {
			msg, err := db.Message.GetPartByMXID(ctx, mxid)
			must(t, err)
			if msg == nil || msg.ID != want {
				t.Errorf("message %s = %+v, want ID %s", mxid, msg, want)
			}
		}
		reply, err := db.Message.GetPartByMXID(ctx, "$t2")
		must(t, err)
		if reply == nil || reply.ReplyTo.MessageID != "telegram.u1000001.17" {
			t.Errorf("reply = %+v", reply)
		}
		if ch, err := db.Ghost.GetByID(ctx, "telegram.ch3000001"); err != nil || ch == nil || ch.Name != "News" {
			t.Errorf("channel ghost = %+v %v", ch, err)
		}

		// Bob's session comes along, byte for byte (auth key, data
		// centre, 64-bit salt); Carol, logged out, must log in again.
		login, err := db.UserLogin.GetByID(ctx, "telegram.1000001")
		must(t, err)
		if login == nil || login.UserMXID != "@bob:example.org" || login.RemoteName != "Bob" {
			t.Fatalf("login = %+v", login)
		}
		if m := *login.Metadata.(*map[string]any); m["phone"] != "15550003333" {
			t.Errorf("login metadata = %v", m)
		}
		store := telegram.NewChildStore(c.dst, nil)
		data, err := (&session.Loader{Storage: store.Session(1000001)}).Load(ctx)
		must(t, err)
		if !bytes.Equal(data.AuthKey, tgAuthKey()) || data.DC != 2 || data.Salt != tgSalt || data.Addr != "149.154.167.50:443" || len(data.AuthKeyID) != 8 {
			t.Errorf("session = dc %d addr %s salt %d key id %x", data.DC, data.Addr, data.Salt, data.AuthKeyID)
		}
		if l, err := db.UserLogin.GetByID(ctx, "telegram.1000002"); err != nil || l != nil {
			t.Errorf("logged-out login imported: %+v %v", l, err)
		}
		if report.Logins.Imported != 1 || report.Logins.Skipped["re-login needed: "+whyNoAuthKey] != 1 {
			t.Errorf("logins = %+v", report.Logins)
		}
		user, err := db.User.GetByMXID(ctx, "@bob:example.org")
		must(t, err)
		if user == nil || user.ManagementRoom != "" {
			t.Errorf("user = %+v, want no management room (the old one is the old bot's)", user)
		}
	})
}

// A database that is not a bridgev2 one, or whose schema this build does
// not read, is refused before anything is written.
func TestImportRefusesUnknownDatabases(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, db *dbutil.Database)
		want  string
	}{
		{"empty", func(*testing.T, *dbutil.Database) {}, "no \"version\" table"},
		{"older schema", func(t *testing.T, db *dbutil.Database) {
			_, bdb := oldDB(t, dbtest.Backend{Open: func(testing.TB) *dbutil.Database { return db }})
			_, err := bdb.Exec(ctx, "UPDATE version SET version=20, compat=9")
			must(t, err)
		}, "older than"},
		{"newer incompatible schema", func(t *testing.T, db *dbutil.Database) {
			_, bdb := oldDB(t, dbtest.Backend{Open: func(testing.TB) *dbutil.Database { return db }})
			_, err := bdb.Exec(ctx, "UPDATE version SET version=99, compat=90")
			must(t, err)
		}, "newer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := dbtest.SQLite(t).Open(t)
			tc.setup(t, src)
			dst := dbtest.SQLite(t).Open(t)
			before := dump(t, dst)
			_, err := Run(ctx, Options{Network: "whatsapp", Source: src, OldRegistration: oldRegistration("wa", "whatsappbot", "whatsapp"),
				HomeserverDomain: domain, Target: dst})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if dump(t, dst) != before {
				t.Error("a refused import wrote to Passerelle's database")
			}
		})
	}
}

// --from-db takes a postgres:// URI or a SQLite path; a mistyped path is an
// error, not a new empty database.
func TestOpenSource(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "mautrix-whatsapp.db")
	if _, err := OpenSource(missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing SQLite file: err = %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("opening a missing source created %s", missing)
	}
	for _, b := range []dbtest.Backend{dbtest.SQLite(t), dbtest.Postgres(t)} {
		whatsappFixture(t, b)
		uri := b.URI
		if b.Name == "sqlite" {
			// The path an administrator types, without file: or options.
			uri = strings.TrimPrefix(strings.SplitN(b.URI, "?", 2)[0], "file:")
		}
		src, err := OpenSource(uri)
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		s, err := openSource(ctx, src, "")
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		portals, err := s.db.Portal.GetAll(ctx)
		if err != nil || len(portals) != 4 {
			t.Errorf("%s: read %d portals, %v; want the fixture's 4", b.Name, len(portals), err)
		}
		_ = src.Close()
	}
}
