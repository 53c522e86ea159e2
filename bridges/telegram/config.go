package telegram

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/template"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/transport"
	"go.mau.fi/util/configupgrade"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/remote"
)

var _ bridgev2.ConfigValidatingNetwork = (*TelegramConnector)(nil)

//go:embed example-config.yaml
var ExampleConfig string

// Config is the connector's section of the config file (nested under
// network: telegram: by the gateway).
type Config struct {
	APIID               int              `yaml:"api_id"`
	APIHash             string           `yaml:"api_hash"`
	DeviceModel         string           `yaml:"device_model"`
	TestServer          TestServerConfig `yaml:"test_server"`
	DisplaynameTemplate string           `yaml:"displayname_template"`
	// MaxFileSize is the gateway's limit for one file, both ways, in
	// bytes; 0 leaves Telegram's and the homeserver's limits.
	MaxFileSize int64 `yaml:"max_file_size"`
	// MemberSyncLimit is how many members of a group are synced into its
	// portal when the portal is made (0: DefaultMemberSyncLimit); members
	// who write are added as they write.
	MemberSyncLimit int `yaml:"member_sync_limit"`
	// Backfill is how much of a chat's history goes into its new portal.
	Backfill remote.BackfillLimits `yaml:"backfill"`

	displaynameTemplate *template.Template
	testKey             *telegram.PublicKey
}

// TestServerConfig points the connector at a single test data centre.
type TestServerConfig struct {
	DC        int    `yaml:"dc"`
	Address   string `yaml:"address"`
	PublicKey string `yaml:"public_key"`
}

// DisplaynameParams are the variables of displayname_template.
type DisplaynameParams struct {
	FirstName, LastName, Username, Phone string
}

func upgradeConfig(helper configupgrade.Helper) {
	helper.Copy(configupgrade.Int, "api_id")
	helper.Copy(configupgrade.Str, "api_hash")
	helper.Copy(configupgrade.Str, "device_model")
	helper.Copy(configupgrade.Int, "member_sync_limit")
	helper.Copy(configupgrade.Int, "test_server", "dc")
	helper.Copy(configupgrade.Str, "test_server", "address")
	helper.Copy(configupgrade.Str, "test_server", "public_key")
	helper.Copy(configupgrade.Str, "displayname_template")
	helper.Copy(configupgrade.Int, "max_file_size")
	helper.Copy(configupgrade.Int, "backfill", "initial_messages")
	helper.Copy(configupgrade.Int, "backfill", "max_age_days")
	helper.Copy(configupgrade.Int, "backfill", "chats_at_login")
}

// GetConfig implements bridgev2.NetworkConnector.
func (c *TelegramConnector) GetConfig() (example string, data any, upgrader configupgrade.Upgrader) {
	return ExampleConfig, &c.Config, configupgrade.SimpleUpgrader(upgradeConfig)
}

// ValidateConfig checks the config and prepares the parsed parts.
func (c *TelegramConnector) ValidateConfig() error {
	if err := c.Config.prepare(); err != nil {
		return err
	}
	c.Limits.SetGateway(c.Config.MaxFileSize)
	return nil
}

func (cfg *Config) prepare() error {
	tpl := cfg.DisplaynameTemplate
	if strings.TrimSpace(tpl) == "" {
		tpl = "{{.FirstName}} {{.LastName}}"
	}
	parsed, err := template.New("displayname").Parse(tpl)
	if err != nil {
		return fmt.Errorf("invalid telegram displayname_template: %w", err)
	}
	cfg.displaynameTemplate = parsed
	if cfg.MaxFileSize < 0 {
		return errors.New("invalid telegram max_file_size: must be 0 (no limit of its own) or a number of bytes")
	}
	cfg.testKey = nil
	if cfg.TestServer.Address != "" {
		if _, _, err = splitHostPort(cfg.TestServer.Address); err != nil {
			return fmt.Errorf("invalid telegram test_server.address: %w", err)
		}
		if cfg.TestServer.DC < 0 {
			return errors.New("invalid telegram test_server.dc: must be positive")
		}
		keys, err := crypto.ParseRSAPublicKeys([]byte(cfg.TestServer.PublicKey))
		if err != nil || len(keys) == 0 {
			return fmt.Errorf("invalid telegram test_server.public_key: need a PEM RSA public key (%v)", err)
		}
		cfg.testKey = &telegram.PublicKey{RSA: keys[0]}
	} else if cfg.APIID <= 0 || cfg.APIHash == "" {
		return errors.New("telegram api_id and api_hash are required (get them at https://my.telegram.org/apps)")
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", portStr)
	}
	return host, port, nil
}

// FormatDisplayname renders displayname_template for a Telegram user.
func (cfg *Config) FormatDisplayname(user *tg.User) string {
	params := DisplaynameParams{FirstName: user.FirstName, LastName: user.LastName, Username: user.Username, Phone: user.Phone}
	var sb strings.Builder
	if cfg.displaynameTemplate != nil {
		_ = cfg.displaynameTemplate.Execute(&sb, params)
	}
	name := strings.TrimSpace(sb.String())
	if name == "" {
		name = "Telegram user " + strconv.FormatInt(user.ID, 10)
	}
	return name
}

// clientOptions returns the gotd options common to every client the
// connector makes; the caller adds the session storage and update handler.
func (cfg *Config) clientOptions() telegram.Options {
	opts := telegram.Options{
		Device: telegram.DeviceConfig{
			DeviceModel:    cfg.DeviceModel,
			SystemVersion:  "Passerelle",
			AppVersion:     "1.0",
			SystemLangCode: "en",
			LangCode:       "en",
		},
	}
	if cfg.TestServer.Address != "" && cfg.testKey != nil {
		host, port, _ := splitHostPort(cfg.TestServer.Address)
		dc := cfg.TestServer.DC
		if dc == 0 {
			dc = 2
		}
		opts.DC = dc
		opts.DCList = dcs.List{Options: []tg.DCOption{{ID: dc, IPAddress: host, Port: port, Static: true}}}
		opts.PublicKeys = []telegram.PublicKey{*cfg.testKey}
		opts.Resolver = dcs.Plain(dcs.PlainOptions{Protocol: transport.Intermediate})
	}
	return opts
}

// apiCredentials returns the api_id and api_hash; a test server accepts any.
func (cfg *Config) apiCredentials() (int, string) {
	if cfg.APIID == 0 && cfg.TestServer.Address != "" {
		return 1, "passerelle-test"
	}
	return cfg.APIID, cfg.APIHash
}
