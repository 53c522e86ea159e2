package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ModulePath is the gateway's Go module.
const ModulePath = "github.com/passerelle/passerelle"

// RepoRoot finds the root of the passerelle module by walking up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(data)), "module "+ModulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("failed to find the passerelle module root above the working directory")
		}
		dir = parent
	}
}

// BuildGateway builds ./cmd/passerelle with the goolm tag into outDir and
// returns the binary's path. tag is stamped into main.Tag.
func BuildGateway(ctx context.Context, outDir, tag string) (binary string, took time.Duration, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", 0, err
	}
	if _, err = os.Stat(filepath.Join(root, "cmd", "passerelle")); err != nil {
		return "", 0, fmt.Errorf("failed to build the gateway: %w", err)
	}
	if err = os.MkdirAll(outDir, 0o755); err != nil {
		return "", 0, err
	}
	binary = filepath.Join(outDir, "passerelle")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "goolm",
		"-ldflags", "-X main.Tag="+tag, "-o", binary, "./cmd/passerelle")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("failed to build the gateway: %w\n%s", err, out)
	}
	return binary, time.Since(start), nil
}

// WhatsAppTestServer points the WhatsApp connector at a simulated server.
type WhatsAppTestServer struct {
	Address string
	// RootPublicKeyHex is the simulator's certificate root (wasim.RootPublicKeyHex).
	RootPublicKeyHex string
}

// TelegramTestServer points the Telegram connector at a simulated DC.
type TelegramTestServer struct {
	DC           int
	Address      string // host:port on loopback
	PublicKeyPEM string
}

// GatewayOptions configure NewGateway.
type GatewayOptions struct {
	// Binary is the built gateway (BuildGateway).
	Binary string
	// Dir holds config.yaml, registration.yaml, the SQLite database and the
	// logs. Empty means a new temporary directory removed by Close.
	Dir string
	// HomeserverURL and ServerName of the homeserver; ServerName defaults to
	// "localhost". The URL may be set later with SetHomeserverURL.
	HomeserverURL string
	ServerName    string
	// Port for the appservice listener on 127.0.0.1; 0 picks a free one.
	Port int
	// PostgresURI switches the database from SQLite to PostgreSQL.
	PostgresURI string
	// Permissions replaces bridge.permissions; nil gives
	// {ServerName: user, @admin:ServerName: admin}.
	Permissions map[string]string
	// Telegram, if set, enables the Telegram network against a simulated DC.
	Telegram *TelegramTestServer
	// WhatsApp, if set, enables the WhatsApp network against a simulated server.
	WhatsApp *WhatsAppTestServer
	// Patch may change config.yaml further before the registration is made.
	Patch func(doc *YAMLDoc) error
	// ReadyTimeout bounds Start's wait for /_matrix/mau/ready (default 60 s).
	ReadyTimeout time.Duration
}

// Gateway is the passerelle binary with its own config, run as a child
// process. Start, Stop and Restart may be called repeatedly.
type Gateway struct {
	Dir              string
	ConfigPath       string
	RegistrationPath string
	// DoublePuppetRegistrationPath is the second registration (double
	// puppeting, no URL) that -g writes beside the first; "" when the
	// config switches double puppeting off.
	DoublePuppetRegistrationPath string
	// LogPath is the JSON log file the gateway writes at debug level;
	// StdoutPath receives stdout and stderr (readable log lines, panics).
	LogPath    string
	StdoutPath string
	// URL is the appservice address the homeserver sends transactions to.
	URL        string
	Port       int
	ServerName string
	// ReadyDuration is the time the last Start took until ready.
	ReadyDuration time.Duration

	binary       string
	readyTimeout time.Duration
	removeDir    bool

	mu   sync.Mutex
	proc *process
}

// NewGateway writes the example config, patches it for a loopback test
// deployment and generates the appservice registration. It does not start
// the gateway: the homeserver must load the registration first.
func NewGateway(ctx context.Context, opts GatewayOptions) (*Gateway, error) {
	var err error
	if opts.Binary == "" {
		return nil, errors.New("failed to create gateway: no binary given")
	}
	g := &Gateway{binary: opts.Binary, ServerName: opts.ServerName, Port: opts.Port, readyTimeout: opts.ReadyTimeout}
	if g.ServerName == "" {
		g.ServerName = "localhost"
	}
	if g.readyTimeout == 0 {
		g.readyTimeout = 60 * time.Second
	}
	if opts.Dir == "" {
		if g.Dir, err = os.MkdirTemp("", "passerelle-gateway-"); err != nil {
			return nil, err
		}
		g.removeDir = true
	} else {
		if g.Dir, err = filepath.Abs(opts.Dir); err != nil {
			return nil, err
		}
		if err = os.MkdirAll(g.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	if g.Port == 0 {
		if g.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	g.URL = loopbackURL(g.Port)
	g.ConfigPath = filepath.Join(g.Dir, "config.yaml")
	g.RegistrationPath = filepath.Join(g.Dir, "registration.yaml")
	g.LogPath = filepath.Join(g.Dir, "gateway.log")
	g.StdoutPath = filepath.Join(g.Dir, "gateway.stdout.log")

	if out, err := g.run(ctx, "-e", "-c", g.ConfigPath); err != nil {
		return nil, fmt.Errorf("failed to write the example config: %w\n%s", err, out)
	}
	doc, err := LoadYAML(g.ConfigPath)
	if err != nil {
		return nil, err
	}
	if err = g.baseConfig(doc, opts); err != nil {
		return nil, err
	}
	if opts.Patch != nil {
		if err = opts.Patch(doc); err != nil {
			return nil, fmt.Errorf("failed to patch gateway config: %w", err)
		}
	}
	if err = doc.Save(g.ConfigPath); err != nil {
		return nil, err
	}
	if out, err := g.run(ctx, "-g", "-c", g.ConfigPath, "-r", g.RegistrationPath); err != nil {
		return nil, fmt.Errorf("failed to generate the registration: %w\n%s", err, out)
	}
	if g.DoublePuppetRegistrationPath, err = g.doublePuppetRegistration(); err != nil {
		return nil, err
	}
	return g, nil
}

// doublePuppetRegistration finds the double-puppet registration the
// gateway wrote: network.double_puppet.registration, relative to the main
// registration's directory.
func (g *Gateway) doublePuppetRegistration() (string, error) {
	doc, err := g.Config()
	if err != nil {
		return "", err
	}
	if doc.Has("network.double_puppet.enabled") {
		var enabled bool
		if err = doc.Get("network.double_puppet.enabled", &enabled); err == nil && !enabled {
			return "", nil
		}
	}
	name := doc.GetString("network.double_puppet.registration")
	if name == "" {
		return "", nil
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(g.RegistrationPath), name)
	}
	if _, err = os.Stat(name); err != nil {
		return "", fmt.Errorf("the gateway wrote no double-puppet registration: %w", err)
	}
	return name, nil
}

// RegistrationFiles are the appservice registrations the homeserver must
// load: the gateway's and, with double puppeting, the second one.
func (g *Gateway) RegistrationFiles() []string {
	files := []string{g.RegistrationPath}
	if g.DoublePuppetRegistrationPath != "" {
		files = append(files, g.DoublePuppetRegistrationPath)
	}
	return files
}

func (g *Gateway) baseConfig(doc *YAMLDoc, opts GatewayOptions) error {
	perms := opts.Permissions
	if perms == nil {
		perms = map[string]string{g.ServerName: "user", "@admin:" + g.ServerName: "admin"}
	}
	set := map[string]any{
		"homeserver.domain":     g.ServerName,
		"homeserver.software":   "standard",
		"appservice.address":    g.URL,
		"appservice.hostname":   "127.0.0.1",
		"appservice.port":       g.Port,
		"bridge.permissions":    perms,
		"encryption.allow":      true,
		"encryption.default":    true,
		"encryption.require":    false,
		"encryption.appservice": false,
		"encryption.msc4190":    false,
		"encryption.self_sign":  false,
		"logging.min_level":     "debug",
		"logging.writers": []map[string]any{
			{"type": "stdout", "format": "pretty"},
			{"type": "file", "format": "json", "filename": g.LogPath, "max_size": 100, "max_backups": 200},
		},
	}
	if opts.HomeserverURL != "" {
		set["homeserver.address"] = opts.HomeserverURL
	}
	if opts.PostgresURI != "" {
		set["database.type"] = "postgres"
		set["database.uri"] = opts.PostgresURI
	} else {
		set["database.type"] = "sqlite3-fk-wal"
		set["database.uri"] = "file:" + filepath.Join(g.Dir, "passerelle.db") + "?_txlock=immediate"
	}
	if w := opts.WhatsApp; w != nil {
		set["network.whatsapp.enabled"] = true
		set["network.whatsapp.test_server"] = map[string]any{
			"address":         w.Address,
			"root_public_key": w.RootPublicKeyHex,
		}
	} else if doc.Has("network.whatsapp") {
		set["network.whatsapp.enabled"] = false
	}
	if t := opts.Telegram; t != nil {
		set["network.telegram.enabled"] = true
		set["network.telegram.api_id"] = 1
		set["network.telegram.api_hash"] = "sim"
		set["network.telegram.test_server"] = map[string]any{
			"dc":         t.DC,
			"address":    t.Address,
			"public_key": t.PublicKeyPEM,
		}
	} else if doc.Has("network.telegram") {
		set["network.telegram.enabled"] = false
	}
	for k, v := range set {
		if err := doc.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (g *Gateway) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, g.binary, args...)
	cmd.Dir = g.Dir
	return cmd.CombinedOutput()
}

// PatchConfig changes config.yaml; the change applies at the next Start.
// Keys that feed the registration (appservice address, tokens, namespaces)
// must not be changed after NewGateway.
func (g *Gateway) PatchConfig(fn func(doc *YAMLDoc) error) error {
	doc, err := LoadYAML(g.ConfigPath)
	if err != nil {
		return err
	}
	if err = fn(doc); err != nil {
		return err
	}
	return doc.Save(g.ConfigPath)
}

// SetHomeserverURL sets homeserver.address.
func (g *Gateway) SetHomeserverURL(url string) error {
	return g.PatchConfig(func(doc *YAMLDoc) error { return doc.Set("homeserver.address", url) })
}

// Config reads config.yaml as it is now.
func (g *Gateway) Config() (*YAMLDoc, error) { return LoadYAML(g.ConfigPath) }

// BotUserID is the bridge bot's Matrix ID, from appservice.bot.username.
func (g *Gateway) BotUserID() (string, error) {
	doc, err := g.Config()
	if err != nil {
		return "", err
	}
	name := doc.GetString("appservice.bot.username")
	if name == "" {
		return "", errors.New("appservice.bot.username is empty in the gateway config")
	}
	return "@" + name + ":" + g.ServerName, nil
}

// HSToken is the token the homeserver must present on appservice requests.
// For tests that check the gateway refuses anything else; never log it.
func (g *Gateway) HSToken() (string, error) {
	doc, err := g.Config()
	if err != nil {
		return "", err
	}
	tok := doc.GetString("appservice.hs_token")
	if tok == "" {
		return "", errors.New("appservice.hs_token is empty in the gateway config")
	}
	return tok, nil
}

// Start runs the gateway and waits until /_matrix/mau/ready answers 200.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.proc != nil && !g.proc.exited() {
		return errors.New("gateway is already running")
	}
	cmd := exec.Command(g.binary, "-c", g.ConfigPath, "-r", g.RegistrationPath, "--ignore-unsupported-server")
	cmd.Dir = g.Dir
	start := time.Now()
	proc, err := startProcess(cmd, g.StdoutPath)
	if err != nil {
		return err
	}
	g.proc = proc
	waitCtx, cancel := context.WithTimeout(ctx, g.readyTimeout)
	defer cancel()
	if err = waitHTTP(waitCtx, proc, g.URL+"/_matrix/mau/ready", http.StatusOK); err != nil {
		_ = proc.stop(5 * time.Second)
		return fmt.Errorf("failed to start the gateway (logs: %s): %w", g.StdoutPath, err)
	}
	g.ReadyDuration = time.Since(start)
	return nil
}

// Stop sends SIGTERM and waits for the gateway to exit (killing it after 15 s).
func (g *Gateway) Stop() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.proc.stop(15 * time.Second)
	g.proc = nil
	return err
}

// Kill ends the gateway with SIGKILL, as a crash or a power cut would: no
// shutdown code runs, whatever was in flight is lost unless it was committed.
// Start runs it again on the same config and database, with the logins it
// had.
func (g *Gateway) Kill() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.proc.kill()
	g.proc = nil
	return err
}

// Restart is Stop then Start.
func (g *Gateway) Restart(ctx context.Context) error {
	if err := g.Stop(); err != nil {
		return err
	}
	return g.Start(ctx)
}

// Running reports whether the gateway process is alive.
func (g *Gateway) Running() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.proc != nil && !g.proc.exited()
}

// Close stops the gateway and removes a temporary directory.
func (g *Gateway) Close() error {
	err := g.Stop()
	if g.removeDir {
		_ = os.RemoveAll(g.Dir)
	}
	return err
}

// Log returns the readable output of the gateway (stdout and stderr).
func (g *Gateway) Log() string {
	data, _ := os.ReadFile(g.StdoutPath)
	return string(data)
}

// JSONLog returns the gateway's JSON log file.
func (g *Gateway) JSONLog() string {
	data, _ := os.ReadFile(g.LogPath)
	return string(data)
}

// PeakRSS is the most memory the running gateway process has held resident
// since it started (VmHWM in /proc/<pid>/status), in bytes.
func (g *Gateway) PeakRSS() (int64, error) {
	g.mu.Lock()
	proc := g.proc
	g.mu.Unlock()
	if proc == nil || proc.exited() {
		return 0, errors.New("gateway is not running")
	}
	return peakRSS(proc.cmd.Process.Pid)
}
