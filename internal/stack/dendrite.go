package stack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// DendriteOptions configure StartDendrite. The zero value is usable.
type DendriteOptions struct {
	// BinDir holds the Dendrite commands; empty means EnsureDendrite.
	BinDir string
	// DataDir is the directory for keys, config, databases and the log. Empty
	// means a new temporary directory, removed by Stop unless KeepData is set.
	// A given directory is used as it is: a rerun on it keeps the users.
	DataDir  string
	KeepData bool
	// ServerName defaults to "localhost".
	ServerName string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// AppServiceConfigFiles are registration files Dendrite loads at start.
	AppServiceConfigFiles []string
	// LogLevel defaults to "info".
	LogLevel string
	// StartTimeout bounds the wait for /_matrix/client/versions (default 60 s).
	StartTimeout time.Duration
	// Patch, if set, may change the generated dendrite.yaml before the start.
	Patch func(doc *YAMLDoc) error
	// CPUs, if set, pins Dendrite to these cores (a taskset(1) CPU list such
	// as "0" or "0-1"): the benchmark keeps it apart from the load it
	// measures. It needs taskset in PATH.
	CPUs string
}

// Dendrite is a running Dendrite homeserver on loopback.
type Dendrite struct {
	// URL is the client-server API base, http://127.0.0.1:PORT.
	URL        string
	Port       int
	ServerName string
	DataDir    string
	ConfigPath string
	// LogPath is the file that receives Dendrite's stdout and stderr.
	LogPath string
	// StartDuration is the time from exec to the first answer of /versions.
	StartDuration time.Duration

	binDir       string
	cpus         string
	startTimeout time.Duration
	sharedSecret string
	removeData   bool
	proc         *process
}

// StartDendrite creates a fresh configuration and starts Dendrite with it,
// waiting until /_matrix/client/versions answers.
func StartDendrite(ctx context.Context, opts DendriteOptions) (*Dendrite, error) {
	var err error
	d := &Dendrite{ServerName: opts.ServerName, Port: opts.Port, binDir: opts.BinDir, cpus: opts.CPUs}
	if d.ServerName == "" {
		d.ServerName = "localhost"
	}
	if d.binDir == "" {
		if d.binDir, err = EnsureDendrite(ctx); err != nil {
			return nil, err
		}
	}
	if missing := MissingDendriteTools(d.binDir); len(missing) > 0 {
		return nil, fmt.Errorf("failed to start Dendrite: %v missing from %s (run scripts/test or stack.EnsureDendrite)", missing, d.binDir)
	}
	if opts.DataDir == "" {
		if d.DataDir, err = os.MkdirTemp("", "passerelle-dendrite-"); err != nil {
			return nil, fmt.Errorf("failed to create Dendrite data directory: %w", err)
		}
		d.removeData = !opts.KeepData
	} else if d.DataDir, err = filepath.Abs(opts.DataDir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok && d.removeData {
			_ = os.RemoveAll(d.DataDir)
		}
	}()
	if d.Port == 0 {
		if d.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	d.URL = loopbackURL(d.Port)
	d.ConfigPath = filepath.Join(d.DataDir, "dendrite.yaml")
	d.LogPath = filepath.Join(d.DataDir, "dendrite.log")
	if err = d.configure(ctx, opts); err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	d.startTimeout = timeout
	if err = d.run(ctx); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// run starts the Dendrite process on the configuration and waits until it
// answers.
func (d *Dendrite) run(ctx context.Context) error {
	args := []string{filepath.Join(d.binDir, "dendrite"),
		"-config", d.ConfigPath,
		"-http-bind-address", "127.0.0.1:" + strconv.Itoa(d.Port)}
	if d.cpus != "" {
		// taskset execs Dendrite in its own process: the PID stays Dendrite's.
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			return fmt.Errorf("failed to pin Dendrite to CPUs %s: %w", d.cpus, err)
		}
		args = append([]string{taskset, "-c", d.cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = d.DataDir
	start := time.Now()
	proc, err := startProcess(cmd, d.LogPath)
	if err != nil {
		return err
	}
	d.proc = proc
	waitCtx, cancel := context.WithTimeout(ctx, d.startTimeout)
	defer cancel()
	if err = waitHTTP(waitCtx, d.proc, d.URL+"/_matrix/client/versions", http.StatusOK); err != nil {
		_ = d.proc.stop(5 * time.Second)
		return fmt.Errorf("failed to start Dendrite (log: %s): %w", d.LogPath, err)
	}
	d.StartDuration = time.Since(start)
	return nil
}

// Pause stops the Dendrite process and keeps its data: the homeserver is
// away until Resume (an outage, a restart).
func (d *Dendrite) Pause() error {
	return d.proc.stop(10 * time.Second)
}

// Resume starts Dendrite again on the same data, port and config after
// Pause, and waits until it answers.
func (d *Dendrite) Resume(ctx context.Context) error {
	return d.run(ctx)
}

func (d *Dendrite) configure(ctx context.Context, opts DendriteOptions) error {
	for _, dir := range []string{"data", "jetstream"} {
		if err := os.MkdirAll(filepath.Join(d.DataDir, dir), 0o700); err != nil {
			return fmt.Errorf("failed to create Dendrite data directory: %w", err)
		}
	}
	keyPath := filepath.Join(d.DataDir, "matrix_key.pem")
	if _, err := os.Stat(keyPath); os.IsNotExist(err) {
		cmd := exec.CommandContext(ctx, filepath.Join(d.binDir, "generate-keys"), "--private-key", "matrix_key.pem")
		cmd.Dir = d.DataDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("failed to generate Dendrite keys: %w\n%s", err, out)
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(d.binDir, "generate-config"), "-ci", "-dir", "./data", "-server", d.ServerName)
	cmd.Dir = d.DataDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	generated, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("failed to generate Dendrite config: %w\n%s", err, stderr.Bytes())
	}
	doc, err := ParseYAML(generated)
	if err != nil {
		return err
	}
	d.sharedSecret = randomHex(24)
	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	asFiles := make([]string, 0, len(opts.AppServiceConfigFiles))
	for _, f := range opts.AppServiceConfigFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return err
		}
		asFiles = append(asFiles, abs)
	}
	for path, value := range map[string]any{
		"client_api.registration_disabled":      true,
		"client_api.registration_shared_secret": d.sharedSecret,
		"global.disable_federation":             true,
		// generate-config -ci keeps JetStream in memory: a restart of
		// Dendrite then drops every event it accepted but had not yet
		// delivered to an appservice (a gateway that was down).
		"global.jetstream.in_memory":    false,
		"global.jetstream.storage_path": filepath.Join(d.DataDir, "jetstream"),
		"app_service_api.config_files":  asFiles,
		// Ghost presence: clients see what the gateway sets for ghosts.
		"global.presence.enable_inbound":  true,
		"global.presence.enable_outbound": true,
		"logging":                         []map[string]any{{"type": "std", "level": level}},
	} {
		if err = doc.Set(path, value); err != nil {
			return err
		}
	}
	if opts.Patch != nil {
		if err = opts.Patch(doc); err != nil {
			return fmt.Errorf("failed to patch Dendrite config: %w", err)
		}
	}
	return doc.Save(d.ConfigPath)
}

// Stop terminates Dendrite and, for a temporary data directory, removes it.
func (d *Dendrite) Stop() error {
	if d == nil {
		return nil
	}
	err := d.proc.stop(10 * time.Second)
	if d.removeData {
		_ = os.RemoveAll(d.DataDir)
	}
	return err
}

// Exited reports whether the Dendrite process has ended.
func (d *Dendrite) Exited() bool { return d.proc.exited() }

// Log returns the content of Dendrite's log file.
func (d *Dendrite) Log() string {
	data, _ := os.ReadFile(d.LogPath)
	return string(data)
}

// UserID makes a full Matrix user ID on this server.
func (d *Dendrite) UserID(localpart string) string {
	return "@" + localpart + ":" + d.ServerName
}

// RegisteredUser is the answer of the shared-secret registration API.
type RegisteredUser struct {
	UserID      string `json:"user_id"`
	AccessToken string `json:"access_token"`
	DeviceID    string `json:"device_id"`
}

// RegisterUser creates a user through the shared-secret admin API
// (/_synapse/admin/v1/register). Every user made this way gets the same
// device ID; clients that need their own device log in with the password.
func (d *Dendrite) RegisterUser(ctx context.Context, localpart, password string, admin bool) (*RegisteredUser, error) {
	endpoint := d.URL + "/_synapse/admin/v1/register"
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	if err := doJSON(ctx, http.MethodGet, endpoint, nil, &nonce); err != nil {
		return nil, fmt.Errorf("failed to get registration nonce: %w", err)
	}
	adminStr := "notadmin"
	if admin {
		adminStr = "admin"
	}
	mac := hmac.New(sha1.New, []byte(d.sharedSecret))
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00" + adminStr))
	body := map[string]any{
		"nonce":    nonce.Nonce,
		"username": localpart,
		"password": password,
		"admin":    admin,
		"mac":      hex.EncodeToString(mac.Sum(nil)),
	}
	var out RegisteredUser
	if err := doJSON(ctx, http.MethodPost, endpoint, body, &out); err != nil {
		return nil, fmt.Errorf("failed to register %s: %w", localpart, err)
	}
	return &out, nil
}

// HTTPError is a non-2xx answer from a JSON API.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

func doJSON(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		if err = json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("failed to decode answer: %w", err)
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
