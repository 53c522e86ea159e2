package whatsapp

import (
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

func TestConfigUpgrade(t *testing.T) {
	var base, old yaml.Node
	if err := yaml.Unmarshal([]byte(ExampleConfig), &base); err != nil {
		t.Fatalf("example config does not parse: %v", err)
	}
	oldConfig := "os_name: Ministry\ntest_server:\n    address: 127.0.0.1:4431\n    root_public_key: abc\nobsolete_key: true\n"
	if err := yaml.Unmarshal([]byte(oldConfig), &old); err != nil {
		t.Fatal(err)
	}
	_, _, upgrader := NewConnector().GetConfig()
	upgrader.DoUpgrade(configupgrade.NewHelper(&base, &old))
	out, err := yaml.Marshal(&base)
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err = yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OSName != "Ministry" || cfg.TestServer.Address != "127.0.0.1:4431" || cfg.TestServer.RootPublicKey != "abc" {
		t.Errorf("user values not kept: %+v", cfg)
	}
	if b := cfg.Backfill; b.InitialMessages != 50 || b.MaxAgeDays != 30 || b.ChatsAtLogin != 20 {
		t.Errorf("backfill defaults not filled in: %+v", b)
	}
	if cfg.BrowserName != "chrome" || !strings.Contains(cfg.DisplaynameTemplate, ".PushName") {
		t.Errorf("defaults not filled in: %+v", cfg)
	}
	if strings.Contains(string(out), "obsolete_key") {
		t.Error("unknown key survived the upgrade")
	}
}

func TestValidateConfig(t *testing.T) {
	key := wasim.RootPublicKeyHex("seed")
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{name: "empty is the real WhatsApp", cfg: Config{}},
		{name: "test server", cfg: Config{TestServer: TestServerConfig{Address: "127.0.0.1:9000", RootPublicKey: key}}},
		{name: "bad address", cfg: Config{TestServer: TestServerConfig{Address: "localhost", RootPublicKey: key}}, err: "test_server.address"},
		{name: "bad port", cfg: Config{TestServer: TestServerConfig{Address: "127.0.0.1:99999", RootPublicKey: key}}, err: "bad port"},
		{name: "missing key", cfg: Config{TestServer: TestServerConfig{Address: "127.0.0.1:9000"}}, err: "root_public_key"},
		{name: "bad key", cfg: Config{TestServer: TestServerConfig{Address: "127.0.0.1:9000", RootPublicKey: "zz"}}, err: "root_public_key"},
		{name: "key without address", cfg: Config{TestServer: TestServerConfig{RootPublicKey: key}}, err: "without test_server.address"},
		{name: "bad browser", cfg: Config{BrowserName: "netscape"}, err: "browser_name"},
		{name: "bad template", cfg: Config{DisplaynameTemplate: "{{.Nope"}, err: "displayname_template"},
		{name: "file size cap", cfg: Config{MaxFileSize: 10 << 20}},
		{name: "negative file size cap", cfg: Config{MaxFileSize: -1}, err: "max_file_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConnector()
			c.Config = tc.cfg
			err := c.ValidateConfig()
			if tc.err == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			} else if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.err)
			}
		})
	}
}

func TestFormatDisplayname(t *testing.T) {
	var cfg Config
	if err := cfg.prepare(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    DisplaynameParams
		want string
	}{
		{DisplaynameParams{PushName: "Bob", ContactName: "Robert Smith", Phone: "+1555"}, "Robert Smith"},
		{DisplaynameParams{PushName: "Bob", Phone: "+1555"}, "Bob"},
		{DisplaynameParams{BusinessName: "Shop", PushName: "x"}, "Shop"},
		{DisplaynameParams{Phone: "+1555"}, "+1555"},
		{DisplaynameParams{}, "WhatsApp user"},
	} {
		if got := cfg.FormatDisplayname(tc.p); got != tc.want {
			t.Errorf("FormatDisplayname(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if Backoff(0) != 2*time.Second || Backoff(1000) != 5*time.Minute {
		t.Error("Backoff out of range")
	}
}

func TestMaskDigits(t *testing.T) {
	for in, want := range map[string]string{
		"from 15550001111@s.whatsapp.net": "from …11@s.whatsapp.net",
		"message 3EB0 id 12345":           "message 3EB0 id 12345",
		"lid 123456789012:3@lid":          "lid …12:3@lid",
	} {
		if got := MaskDigits(in); got != want {
			t.Errorf("MaskDigits(%q) = %q, want %q", in, got, want)
		}
	}
}
