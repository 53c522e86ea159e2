package whatsapp

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/template"

	"go.mau.fi/util/configupgrade"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/store"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/remote"
)

var _ bridgev2.ConfigValidatingNetwork = (*WhatsAppConnector)(nil)

// ExampleConfig is the connector's section of the example config (nested
// under network: whatsapp: by the gateway).
//
//go:embed example-config.yaml
var ExampleConfig string

// Config is the connector's section of the config file.
type Config struct {
	OSName              string           `yaml:"os_name"`
	BrowserName         string           `yaml:"browser_name"`
	TestServer          TestServerConfig `yaml:"test_server"`
	DisplaynameTemplate string           `yaml:"displayname_template"`
	// MaxFileSize caps the files the gateway bridges either way, in bytes
	// (0: only the homeserver's and WhatsApp's own limits).
	MaxFileSize int64 `yaml:"max_file_size"`
	// StatusBroadcasts bridges contacts' status updates into a read-only
	// room per staff member; off, they are ignored.
	StatusBroadcasts bool `yaml:"status_broadcasts"`
	// Backfill is how much of the history WhatsApp sends at linking goes
	// into portals, and how many chats get theirs at once.
	Backfill remote.BackfillLimits `yaml:"backfill"`

	displaynameTemplate *template.Template
	testServer          *TestServer
}

// TestServerConfig points the connector at a WhatsApp simulator (see
// TestServer); empty for the real WhatsApp.
type TestServerConfig struct {
	Address       string `yaml:"address"`
	RootPublicKey string `yaml:"root_public_key"`
}

// DisplaynameParams are the variables of displayname_template.
type DisplaynameParams struct {
	PushName, ContactName, FirstName, BusinessName, Phone string
}

func upgradeConfig(helper configupgrade.Helper) {
	helper.Copy(configupgrade.Str, "os_name")
	helper.Copy(configupgrade.Str, "browser_name")
	helper.Copy(configupgrade.Str, "test_server", "address")
	helper.Copy(configupgrade.Str, "test_server", "root_public_key")
	helper.Copy(configupgrade.Str, "displayname_template")
	helper.Copy(configupgrade.Int, "max_file_size")
	helper.Copy(configupgrade.Bool, "status_broadcasts")
	helper.Copy(configupgrade.Int, "backfill", "initial_messages")
	helper.Copy(configupgrade.Int, "backfill", "max_age_days")
	helper.Copy(configupgrade.Int, "backfill", "chats_at_login")
}

// GetConfig implements bridgev2.NetworkConnector.
func (c *WhatsAppConnector) GetConfig() (example string, data any, upgrader configupgrade.Upgrader) {
	return ExampleConfig, &c.Config, configupgrade.SimpleUpgrader(upgradeConfig)
}

// ValidateConfig checks the config and prepares its parsed parts.
func (c *WhatsAppConnector) ValidateConfig() error {
	return c.Config.prepare()
}

var browserTypes = map[string]waCompanionReg.DeviceProps_PlatformType{
	"chrome":  waCompanionReg.DeviceProps_CHROME,
	"firefox": waCompanionReg.DeviceProps_FIREFOX,
	"safari":  waCompanionReg.DeviceProps_SAFARI,
	"edge":    waCompanionReg.DeviceProps_EDGE,
	"opera":   waCompanionReg.DeviceProps_OPERA,
	"desktop": waCompanionReg.DeviceProps_DESKTOP,
}

var pairClientTypes = map[string]whatsmeow.PairClientType{
	"chrome": whatsmeow.PairClientChrome, "firefox": whatsmeow.PairClientFirefox,
	"safari": whatsmeow.PairClientSafari, "edge": whatsmeow.PairClientEdge, "opera": whatsmeow.PairClientOpera,
	"desktop": whatsmeow.PairClientChrome,
}

func (cfg *Config) prepare() error {
	tpl := cfg.DisplaynameTemplate
	if strings.TrimSpace(tpl) == "" {
		tpl = `{{or .ContactName .BusinessName .PushName .Phone "WhatsApp user"}}`
	}
	parsed, err := template.New("displayname").Parse(tpl)
	if err != nil {
		return fmt.Errorf("invalid whatsapp displayname_template: %w", err)
	}
	cfg.displaynameTemplate = parsed
	if cfg.BrowserName == "" {
		cfg.BrowserName = "chrome"
	}
	if _, ok := browserTypes[strings.ToLower(cfg.BrowserName)]; !ok {
		return fmt.Errorf("invalid whatsapp browser_name %q (use chrome, firefox, safari, edge, opera or desktop)", cfg.BrowserName)
	}
	if cfg.MaxFileSize < 0 {
		return fmt.Errorf("invalid whatsapp max_file_size %d: use 0 for no limit of the gateway's own", cfg.MaxFileSize)
	}
	if b := cfg.Backfill; b.InitialMessages < 0 || b.MaxAgeDays < 0 || b.ChatsAtLogin < 0 {
		return fmt.Errorf("invalid whatsapp backfill %+v: no negative values", b)
	}
	if cfg.OSName == "" {
		cfg.OSName = "Passerelle"
	}
	cfg.testServer = nil
	if cfg.TestServer.Address != "" {
		host, port, err := net.SplitHostPort(cfg.TestServer.Address)
		if err != nil || host == "" {
			return fmt.Errorf("invalid whatsapp test_server.address %q: need host:port", cfg.TestServer.Address)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("invalid whatsapp test_server.address %q: bad port", cfg.TestServer.Address)
		}
		key, err := ParseRootPublicKey(cfg.TestServer.RootPublicKey)
		if err != nil {
			return fmt.Errorf("invalid whatsapp test_server.root_public_key: %w", err)
		}
		cfg.testServer = &TestServer{HTTPClient: FixedAddressClient(cfg.TestServer.Address), RootPublicKey: key}
	} else if cfg.TestServer.RootPublicKey != "" {
		return errors.New("whatsapp test_server.root_public_key is set without test_server.address")
	}
	return nil
}

// applyGlobal sets whatsmeow's process-wide device name, the one the phone
// shows. It is only written when it changes, so that a second start in the
// same process does not race with running clients.
func (cfg *Config) applyGlobal() {
	platform := browserTypes[strings.ToLower(cfg.BrowserName)]
	if store.DeviceProps.GetOs() != cfg.OSName || store.DeviceProps.GetPlatformType() != platform {
		store.DeviceProps.Os = proto.String(cfg.OSName)
		store.DeviceProps.PlatformType = platform.Enum()
	}
}

func (cfg *Config) pairClient() (whatsmeow.PairClientType, string) {
	browser := strings.ToLower(cfg.BrowserName)
	name := strings.ToUpper(browser[:1]) + browser[1:]
	return pairClientTypes[browser], name + " (Linux)"
}

// FormatDisplayname renders displayname_template.
func (cfg *Config) FormatDisplayname(params DisplaynameParams) string {
	var sb strings.Builder
	if cfg.displaynameTemplate != nil {
		_ = cfg.displaynameTemplate.Execute(&sb, params)
	}
	name := strings.TrimSpace(sb.String())
	if name == "" {
		name = "WhatsApp user"
	}
	return name
}
