package importer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// The old bridges' databases are made the way the old bridges make them:
// bridgev2's own schema upgrades (database.New(...).Upgrade), then rows
// written through bridgev2's own queries, with each bridge's ID formats
// (mautrix-whatsapp: JIDs; mautrix-telegram: "user:<id>", "<channel>.<msg>").

const domain = "example.org"

// fixture is an old bridge's database and its registration.
type fixture struct {
	db  *dbutil.Database
	reg *appservice.Registration
}

func oldDB(t *testing.T, b dbtest.Backend) (*dbutil.Database, *database.Database) {
	t.Helper()
	raw := b.Open(t)
	db := database.New("", database.MetaTypes{Portal: rawMeta, Ghost: rawMeta, Message: rawMeta, Reaction: rawMeta, UserLogin: rawMeta}, raw)
	if err := db.Upgrade(context.Background()); err != nil {
		t.Fatalf("failed to run bridgev2's schema upgrades: %v", err)
	}
	return raw, db
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func meta(kv ...any) any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return &m
}

var fixtureTime = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func oldRegistration(id, bot, ghostPrefix string) *appservice.Registration {
	return &appservice.Registration{
		ID:              id,
		AppToken:        "old-as-token-" + id,
		ServerToken:     "old-hs-token-" + id,
		SenderLocalpart: bot,
		Namespaces: appservice.Namespaces{UserIDs: appservice.NamespaceList{
			{Regex: "^@" + bot + `:example\.org$`, Exclusive: true},
			{Regex: "^@" + ghostPrefix + `_.*:example\.org$`, Exclusive: true},
		}},
	}
}

// whatsappFixture is a mautrix-whatsapp database: one staff member with one
// linked phone, a direct chat, a group, a group without a room, a chat
// Passerelle cannot bridge, and messages (one a placeholder).
func whatsappFixture(t *testing.T, b dbtest.Backend) fixture {
	ctx := context.Background()
	raw, db := oldDB(t, b)
	must(t, db.User.Insert(ctx, &database.User{MXID: "@alice:example.org", ManagementRoom: "!mgmt-alice:example.org"}))
	must(t, db.UserLogin.Insert(ctx, &database.UserLogin{UserMXID: "@alice:example.org", ID: "15550001111", RemoteName: "+1 555 000 1111",
		Metadata: meta("wa_device_id", 3)}))
	for _, g := range []struct{ id, name string }{{"15550001111", "Alice"}, {"15550002222", "Bob"}, {"lid-98765", "Carla"}} {
		must(t, db.Ghost.Insert(ctx, &database.Ghost{ID: networkid.UserID(g.id), Name: g.name, NameSet: true, AvatarSet: true,
			AvatarID: "old-avatar", AvatarMXC: "mxc://example.org/" + id.ContentURIString(g.id), Metadata: meta("last_sync", 1)}))
	}
	for _, p := range []database.Portal{
		{PortalKey: networkid.PortalKey{ID: "15550002222@s.whatsapp.net", Receiver: "15550001111"}, MXID: "!dm:example.org",
			Name: "Bob", NameSet: true, OtherUserID: "15550002222", RoomType: database.RoomTypeDM},
		{PortalKey: networkid.PortalKey{ID: "120363000000000001@g.us"}, MXID: "!group:example.org", Name: "Ministry partners", NameSet: true, Topic: "weekly"},
		{PortalKey: networkid.PortalKey{ID: "120363000000000002@g.us"}, Name: "Not bridged yet"},
		{PortalKey: networkid.PortalKey{ID: "12345@bot", Receiver: "15550001111"}, MXID: "!bot:example.org"},
	} {
		p.Metadata = meta("last_sync", 2)
		must(t, db.Portal.Insert(ctx, &p))
	}
	dm := networkid.PortalKey{ID: "15550002222@s.whatsapp.net", Receiver: "15550001111"}
	group := networkid.PortalKey{ID: "120363000000000001@g.us"}
	unbridged := networkid.PortalKey{ID: "120363000000000002@g.us"}
	for i, m := range []database.Message{
		{ID: "15550002222@s.whatsapp.net:15550002222@s.whatsapp.net:3EB0AAAA", MXID: "$dm1", Room: dm, SenderID: "15550002222", SenderMXID: "@whatsapp_15550002222:example.org"},
		{ID: "15550002222@s.whatsapp.net:15550001111@s.whatsapp.net:3EB0AAAB", MXID: "$dm2", Room: dm, SenderID: "15550001111", SenderMXID: "@alice:example.org", IsDoublePuppeted: true},
		{ID: "120363000000000001@g.us:98765@lid:3EB0BBBB", MXID: "$g1", Room: group, SenderID: "lid-98765", SenderMXID: "@whatsapp_lid-98765:example.org"},
		{ID: "120363000000000001@g.us:15550002222@s.whatsapp.net:3EB0BBBC", MXID: "$g2", Room: group, SenderID: "15550002222",
			ReplyTo: networkid.MessageOptionalPartID{MessageID: "120363000000000001@g.us:98765@lid:3EB0BBBB"}},
		{ID: "fake:120363000000000001@g.us:15550002222@s.whatsapp.net:notice", MXID: "$fake", Room: group, SenderID: "15550002222"},
		{ID: "120363000000000002@g.us:15550002222@s.whatsapp.net:3EB0CCCC", MXID: "$u1", Room: unbridged, SenderID: "15550002222"},
	} {
		m.Timestamp = fixtureTime.Add(time.Duration(i) * time.Minute)
		m.Metadata = meta("sender_device", 0)
		must(t, db.Message.Insert(ctx, &m))
	}
	must(t, db.Reaction.Upsert(ctx, &database.Reaction{Room: group, MessageID: "120363000000000001@g.us:98765@lid:3EB0BBBB", SenderID: "15550002222",
		EmojiID: "", Emoji: "👍", MXID: "$r1", Timestamp: fixtureTime, Metadata: meta()}))
	return fixture{db: raw, reg: oldRegistration("whatsapp", "whatsappbot", "whatsapp")}
}

// tgAuthKey is a 256-byte auth key with a recognisable pattern.
func tgAuthKey() []byte {
	key := make([]byte, authKeySize)
	for i := range key {
		key[i] = byte(i*7 + 3)
	}
	return key
}

// tgSalt needs all 64 bits: a float64 would round it.
const tgSalt int64 = -7223372036854775807

// telegramFixture is a mautrix-telegram database: two staff members (one
// with a live session, one logged out), a private chat, a basic group both
// of them see (mautrix-telegram gives each their own room), a channel, and
// messages in each.
func telegramFixture(t *testing.T, b dbtest.Backend) fixture {
	ctx := context.Background()
	raw, db := oldDB(t, b)
	must(t, db.User.Insert(ctx, &database.User{MXID: "@bob:example.org"}))
	must(t, db.User.Insert(ctx, &database.User{MXID: "@carol:example.org"}))
	must(t, db.UserLogin.Insert(ctx, &database.UserLogin{UserMXID: "@bob:example.org", ID: "1000001", RemoteName: "Bob",
		Metadata: meta("phone", "15550003333", "login_method", "phone",
			"session", map[string]any{"auth_key": tgAuthKey(), "dc_id": 2, "server_address": "149.154.167.50:443", "salt": tgSalt})}))
	must(t, db.UserLogin.Insert(ctx, &database.UserLogin{UserMXID: "@carol:example.org", ID: "1000002", RemoteName: "Carol",
		Metadata: meta("session", map[string]any{})}))
	for _, g := range []struct{ id, name string }{{"1000001", "Bob"}, {"1000002", "Carol"}, {"2000001", "Dmitri"}, {"channel-3000001", "News"}} {
		must(t, db.Ghost.Insert(ctx, &database.Ghost{ID: networkid.UserID(g.id), Name: g.name, NameSet: true, Metadata: meta("not_min", true)}))
	}
	private := networkid.PortalKey{ID: "user:2000001", Receiver: "1000001"}
	basicBob := networkid.PortalKey{ID: "chat:4000001", Receiver: "1000001"}
	basicCarol := networkid.PortalKey{ID: "chat:4000001", Receiver: "1000002"}
	channel := networkid.PortalKey{ID: "channel:3000001"}
	for _, p := range []database.Portal{
		{PortalKey: private, MXID: "!tgdm:example.org", OtherUserID: "2000001", RoomType: database.RoomTypeDM},
		{PortalKey: basicBob, MXID: "!basic-bob:example.org", Name: "Team"},
		{PortalKey: basicCarol, MXID: "!basic-carol:example.org", Name: "Team"},
		{PortalKey: channel, MXID: "!channel:example.org", Name: "News"},
	} {
		p.Metadata = meta("is_supergroup", false)
		must(t, db.Portal.Insert(ctx, &p))
	}
	for i, m := range []database.Message{
		{ID: "17", MXID: "$t1", Room: private, SenderID: "2000001"},
		{ID: "18", MXID: "$t2", Room: private, SenderID: "1000001", ReplyTo: networkid.MessageOptionalPartID{MessageID: "17"}},
		{ID: "20", MXID: "$t3", Room: basicBob, SenderID: "1000002"},
		{ID: "31", MXID: "$t4", Room: basicCarol, SenderID: "1000001"},
		{ID: "3000001.55", MXID: "$t5", Room: channel, SenderID: "channel-3000001"},
	} {
		m.Timestamp = fixtureTime.Add(time.Duration(i) * time.Minute)
		m.Metadata = meta("content_hash", "aGFzaA==")
		must(t, db.Message.Insert(ctx, &m))
	}
	return fixture{db: raw, reg: oldRegistration("telegram", "telegrambot", "telegram")}
}

// passerelleRegistration writes a registration as `passerelle -g` does.
func passerelleRegistration(t *testing.T) (string, *appservice.Registration) {
	t.Helper()
	reg := &appservice.Registration{
		ID: "passerelle", URL: "http://localhost:29340", AppToken: "passerelle-as", ServerToken: "passerelle-hs",
		SenderLocalpart: "passerellebot",
		Namespaces: appservice.Namespaces{UserIDs: appservice.NamespaceList{
			{Regex: `^@passerellebot:example\.org$`, Exclusive: true},
			{Regex: `^@passerelle_.*:example\.org$`, Exclusive: true},
		}},
	}
	path := filepath.Join(t.TempDir(), "registration.yaml")
	must(t, reg.Save(path))
	return path, reg
}

// dump is every row of every table of db, for "nothing changed" checks.
func dump(t *testing.T, db *dbutil.Database) string {
	t.Helper()
	ctx := context.Background()
	q := "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
	if db.Dialect == dbutil.Postgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema='public' ORDER BY table_name"
	}
	rows, err := db.Query(ctx, q)
	must(t, err)
	var tables []string
	for rows.Next() {
		var name string
		must(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	must(t, rows.Close())
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.Query(ctx, fmt.Sprintf(`SELECT * FROM "%s"`, table))
		must(t, err)
		cols, err := rows.Columns()
		must(t, err)
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			must(t, rows.Scan(ptrs...))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					vals[i] = string(b)
				}
			}
			lines = append(lines, fmt.Sprint(vals...))
		}
		must(t, rows.Close())
		sort.Strings(lines)
		fmt.Fprintf(&out, "%s %v\n%s\n", table, cols, strings.Join(lines, "\n"))
	}
	return out.String()
}

// fileBytes reads a file, for "not rewritten" checks.
func fileBytes(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	return string(data)
}
