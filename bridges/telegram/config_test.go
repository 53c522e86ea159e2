package telegram

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/gotd/td/tg"
	"go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
)

func TestConfigUpgrade(t *testing.T) {
	var base, old yaml.Node
	if err := yaml.Unmarshal([]byte(ExampleConfig), &base); err != nil {
		t.Fatalf("example config does not parse: %v", err)
	}
	oldConfig := "api_id: 12345\napi_hash: abcdef\ntest_server:\n    address: 127.0.0.1:4430\nobsolete_key: true\nbackfill:\n    initial_messages: 7\n"
	if err := yaml.Unmarshal([]byte(oldConfig), &old); err != nil {
		t.Fatal(err)
	}
	helper := configupgrade.NewHelper(&base, &old)
	_, _, upgrader := NewConnector().GetConfig()
	upgrader.DoUpgrade(helper)
	out, err := yaml.Marshal(&base)
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err = yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.APIID != 12345 || cfg.APIHash != "abcdef" || cfg.TestServer.Address != "127.0.0.1:4430" {
		t.Errorf("user values not kept: %+v", cfg)
	}
	if cfg.DeviceModel != "Passerelle" || cfg.TestServer.DC != 2 || !strings.Contains(cfg.DisplaynameTemplate, ".FirstName") {
		t.Errorf("defaults not filled in: %+v", cfg)
	}
	if cfg.Backfill.InitialMessages != 7 || cfg.Backfill.ChatsAtLogin != 20 || cfg.Backfill.MaxAgeDays != 30 {
		t.Errorf("backfill section %+v, want the kept initial_messages 7 and the defaults chats_at_login 20, max_age_days 30", cfg.Backfill)
	}
	if strings.Contains(string(out), "obsolete_key") {
		t.Error("unknown key survived the upgrade")
	}
}

// testPEM is an RSA public key in the PEM form test_server.public_key takes.
var testPEM = func() string {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)}))
}()

func TestValidateConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"production", Config{APIID: 1, APIHash: "x"}, ""},
		{"missing api id", Config{APIHash: "x"}, "api_id and api_hash are required"},
		{"missing api hash", Config{APIID: 1}, "api_id and api_hash are required"},
		{"test server", Config{TestServer: TestServerConfig{DC: 2, Address: "127.0.0.1:1234", PublicKey: testPEM}}, ""},
		{"test server bad address", Config{TestServer: TestServerConfig{Address: "localhost", PublicKey: testPEM}}, "test_server.address"},
		{"test server bad port", Config{TestServer: TestServerConfig{Address: "127.0.0.1:99999", PublicKey: testPEM}}, "test_server.address"},
		{"test server no key", Config{TestServer: TestServerConfig{Address: "127.0.0.1:1234"}}, "test_server.public_key"},
		{"bad template", Config{APIID: 1, APIHash: "x", DisplaynameTemplate: "{{.FirstName"}, "displayname_template"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := NewConnector()
			conn.Config = c.cfg
			err := conn.ValidateConfig()
			if c.err == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			} else if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("error %v, want one mentioning %q", err, c.err)
			}
		})
	}
	conn := NewConnector()
	conn.Config = Config{TestServer: TestServerConfig{Address: "127.0.0.1:1234", PublicKey: testPEM}}
	if err := conn.ValidateConfig(); err != nil {
		t.Fatal(err)
	}
	opts := conn.Config.clientOptions()
	if opts.DC != 2 || len(opts.DCList.Options) != 1 || opts.DCList.Options[0].Port != 1234 || len(opts.PublicKeys) != 1 {
		t.Errorf("test server options not applied: DC %d, %+v", opts.DC, opts.DCList.Options)
	}
}

func TestFormatDisplayname(t *testing.T) {
	var cfg Config
	if err := yaml.Unmarshal([]byte(ExampleConfig), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.TestServer = TestServerConfig{Address: "127.0.0.1:1", PublicKey: testPEM}
	if err := cfg.prepare(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user tg.User
		want string
	}{
		{tg.User{ID: 1, FirstName: "Ada", LastName: "Lovelace", Username: "ada"}, "Ada Lovelace"},
		{tg.User{ID: 1, FirstName: "Ada"}, "Ada"},
		{tg.User{ID: 1, LastName: "Lovelace"}, "Lovelace"},
		{tg.User{ID: 1, Username: "ada"}, "@ada"},
		{tg.User{ID: 1, Phone: "15550001"}, "+15550001"},
		{tg.User{ID: 7}, "Telegram user 7"},
	}
	for _, c := range cases {
		if got := cfg.FormatDisplayname(&c.user); got != c.want {
			t.Errorf("FormatDisplayname(%+v) = %q, want %q", c.user, got, c.want)
		}
	}
}
