package appservice

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/config"
)

// buildGateway builds the real binary once per test binary run, with a
// version stamped in the way scripts and packagers do.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "passerelle")
	cmd := exec.Command("go", "build", "-tags", "goolm",
		"-ldflags", "-X main.Tag=v9.8.7 -X main.Commit=0123456789abcdef -X main.BuildTime=2026-11-28T00:00:00Z",
		"-o", bin, "github.com/passerelle/passerelle/cmd/passerelle")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the gateway: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestBinaryConfigAndRegistration follows an administrator's first steps:
// -e writes a config with Passerelle's defaults, -g writes the registration,
// and the registration claims the gateway's own users and nobody else.
func TestBinaryConfigAndRegistration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	bin := buildGateway(t)
	dir := filepath.Dir(bin)
	// The files the gateway writes are private whatever umask it starts with.
	permissiveUmask(t)

	// An untagged build reports the release it comes after, plus the commit
	// and build time that the build stamped in.
	if out := run(t, bin, "--version"); !strings.Contains(out, Version) || !strings.Contains(out, "01234567") || !strings.Contains(out, "28 Nov 2026") {
		t.Errorf("--version printed %q, want the version, commit and build time from the build", out)
	}

	cfgPath := filepath.Join(dir, "config.yaml")
	run(t, bin, "-e", "-c", cfgPath)
	assertMode(t, cfgPath, privateFile)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := config.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var dbType, dbURI string
	var encDefault, tgEnabled, waEnabled bool
	for path, dst := range map[string]any{
		"database.type": &dbType, "database.uri": &dbURI, "encryption.default": &encDefault,
		"network.telegram.enabled": &tgEnabled, "network.whatsapp.enabled": &waEnabled,
	} {
		if err = doc.Get(path, dst); err != nil {
			t.Fatal(err)
		}
	}
	if dbType != "sqlite3-fk-wal" || dbURI != config.SQLiteURI(filepath.Join(dir, config.DatabaseFile)) {
		t.Errorf("default database = %s %s, want SQLite next to the config", dbType, dbURI)
	}
	if !encDefault || !tgEnabled || !waEnabled {
		t.Errorf("encryption.default=%v network.telegram.enabled=%v network.whatsapp.enabled=%v", encDefault, tgEnabled, waEnabled)
	}
	if out, err := exec.Command(bin, "-e", "-c", cfgPath).CombinedOutput(); err == nil {
		t.Errorf("-e overwrote an existing config: %s", out)
	}

	if err = doc.Set("homeserver.domain", "example.org"); err != nil {
		t.Fatal(err)
	}
	if raw, err = doc.Bytes(); err != nil {
		t.Fatal(err)
	}
	if err = os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	regPath := filepath.Join(dir, "registration.yaml")
	run(t, bin, "-g", "-c", cfgPath, "-r", regPath)
	assertMode(t, regPath, privateFile)
	assertMode(t, cfgPath, privateFile) // -g writes the tokens into it
	reg, err := appservice.LoadRegistration(regPath)
	if err != nil {
		t.Fatal(err)
	}
	if reg.AppToken == "" || reg.ServerToken == "" || reg.AppToken == reg.ServerToken {
		t.Error("registration tokens were not generated")
	}

	// The example registration in the repository shows what -g writes.
	example, err := appservice.LoadRegistration(filepath.Join("..", "registration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(example.Namespaces.UserIDs) != len(reg.Namespaces.UserIDs) {
		t.Fatalf("example registration has %d user namespaces, -g wrote %d", len(example.Namespaces.UserIDs), len(reg.Namespaces.UserIDs))
	}
	for i, ns := range reg.Namespaces.UserIDs {
		if example.Namespaces.UserIDs[i] != ns {
			t.Errorf("example registration namespace %d = %+v, -g wrote %+v", i, example.Namespaces.UserIDs[i], ns)
		}
	}
	if example.ID != reg.ID || example.SenderLocalpart == reg.SenderLocalpart {
		t.Errorf("example registration id=%q sender=%q; -g wrote id=%q", example.ID, example.SenderLocalpart, reg.ID)
	}

	var cfg bridgeconfig.Config
	if err = doc.Get("appservice", &cfg.AppService); err != nil {
		t.Fatal(err)
	}
	cfg.Homeserver.Domain = "example.org"
	ghost := func(u networkid.UserID) id.UserID {
		return id.NewUserID(cfg.AppService.FormatUsername(id.EncodeUserLocalpart(string(u))), cfg.Homeserver.Domain)
	}
	claimed := func(u id.UserID) bool {
		for _, ns := range reg.Namespaces.UserIDs {
			if regexp.MustCompile(ns.Regex).MatchString(string(u)) {
				if !ns.Exclusive {
					t.Errorf("namespace %s is not exclusive", ns.Regex)
				}
				return true
			}
		}
		return false
	}

	ghosts := map[networkid.UserID]string{
		tgid.MakeUserID(1): "telegram", tgid.MakeUserID(123456789): "telegram", tgid.MakeUserID(9007199254740991): "telegram",
	}
	for _, jid := range []types.JID{
		types.NewJID("33612345678", types.DefaultUserServer), types.NewJID("15550001", types.DefaultUserServer),
		types.NewJID("123456789012345", types.HiddenUserServer),
	} {
		u, err := waid.MakeUserID(jid)
		if err != nil {
			t.Fatal(err)
		}
		ghosts[u] = "whatsapp"
	}
	for u, network := range ghosts {
		mxid := ghost(u)
		if !strings.Contains(string(mxid), network) {
			t.Errorf("ghost %s does not show its network", mxid)
		}
		if !claimed(mxid) {
			t.Errorf("ghost %s is not claimed by the registration", mxid)
		}
	}
	if bot := id.NewUserID(cfg.AppService.Bot.Username, "example.org"); !claimed(bot) {
		t.Errorf("bot %s is not claimed", bot)
	}
	for _, u := range []id.UserID{
		"@alice:example.org", "@admin:example.org", "@telegram_123:example.org", "@passerelle:example.org",
		"@passerelle_telegram.1:evil.example", "@bob.passerelle_telegram.1:example.org",
	} {
		if claimed(u) {
			t.Errorf("the registration claims the ordinary user %s", u)
		}
	}
}

// TestBinaryDataFilesArePrivate starts the binary on a fresh install until
// it has created and upgraded its database (the homeserver then refuses its
// token and it exits): the database, its directory and the log file are
// private, under umask 0.
func TestBinaryDataFilesArePrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	bin := buildGateway(t)
	dir := filepath.Dir(bin)
	permissiveUmask(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"unknown token"}`)
	}))
	defer hs.Close()

	cfgPath := filepath.Join(dir, "config.yaml")
	run(t, bin, "-e", "-c", cfgPath)
	dataDir := filepath.Join(dir, "data")
	dbPath := filepath.Join(dataDir, config.DatabaseFile)
	logPath := filepath.Join(dir, "logs", "passerelle.log")
	if err := config.PatchFile(cfgPath, map[string]any{
		"homeserver.domain":                  "example.org",
		"homeserver.address":                 hs.URL,
		"bridge.permissions":                 map[string]string{"example.org": "user"},
		"network.telegram.enabled":           false,
		"network.storage.sqlite_synchronous": "full",
		"database.uri":                       config.SQLiteURI(dbPath),
		"logging.writers":                    []map[string]any{{"type": "file", "format": "json", "filename": logPath}},
	}); err != nil {
		t.Fatal(err)
	}
	run(t, bin, "-g", "-c", cfgPath, "-r", filepath.Join(dir, "registration.yaml"))

	cmd := exec.Command(bin, "-c", cfgPath, "--ignore-unsupported-server")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the gateway started against a homeserver that refuses its token:\n%s", out)
	}
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("no log file: %v\n%s", err, out)
	}
	if !strings.Contains(string(logged), "as_token was not accepted") {
		t.Fatalf("the gateway did not get as far as the homeserver:\n%s\n%s", out, logged)
	}
	assertMode(t, dataDir, privateDir)
	assertMode(t, dbPath, privateFile)
	for _, name := range []string{dbPath + "-wal", dbPath + "-shm"} {
		if _, err := os.Stat(name); err == nil {
			assertMode(t, name, privateFile)
		}
	}
	assertMode(t, logPath, privateFile)
	assertMode(t, filepath.Dir(logPath), privateDir)
	assertMode(t, cfgPath, privateFile)
	assertMode(t, filepath.Join(dir, DefaultDoublePuppetRegistration), privateFile)
}
