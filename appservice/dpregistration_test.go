package appservice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/passerelle/passerelle/config"
)

// TestDoublePuppetRegistration: -g writes a second registration, private,
// with no URL and a non-exclusive namespace over the homeserver's users,
// puts its as_token into double_puppet.secrets, and keeps its tokens when
// run again (the homeserver loaded them).
func TestDoublePuppetRegistration(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("homeserver:\n    domain: example.org\nnetwork:\n    double_puppet:\n        enabled: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-g", "-c", cfgPath, "-r", filepath.Join(dir, "registration.yaml")}
	read := func() (map[string]any, string) {
		path := filepath.Join(dir, DefaultDoublePuppetRegistration)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("registration mode %o, want 600", info.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		var reg map[string]any
		if err = yaml.Unmarshal(data, &reg); err != nil {
			t.Fatal(err)
		}
		doc, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		var secrets map[string]string
		if err = doc.Get("double_puppet.secrets", &secrets); err != nil {
			t.Fatal(err)
		}
		return reg, secrets["example.org"]
	}
	if err := writeDoublePuppetRegistration(args); err != nil {
		t.Fatal(err)
	}
	reg, secret := read()
	if url, present := reg["url"]; !present || url != nil {
		t.Errorf("url = %v (present %v), want null", url, present)
	}
	users := reg["namespaces"].(map[string]any)["users"].([]any)
	ns := users[0].(map[string]any)
	if ns["exclusive"] != false || ns["regex"] != `^@.*:example\.org$` || len(users) != 1 {
		t.Errorf("users namespace %v", users)
	}
	token, _ := reg["as_token"].(string)
	if len(token) < 32 || secret != "as_token:"+token {
		t.Errorf("secret %q does not carry the registration's as_token", secret)
	}
	if reg["hs_token"] == token || !strings.HasPrefix(reg["sender_localpart"].(string), "passerelle-doublepuppet-") {
		t.Errorf("hs_token or sender_localpart: %v", reg)
	}
	if err := writeDoublePuppetRegistration(args); err != nil {
		t.Fatal(err)
	}
	again, secretAgain := read()
	if again["as_token"] != token || secretAgain != secret {
		t.Error("a second -g changed the double-puppet tokens")
	}
}
