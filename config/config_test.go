package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `# Config for the bridge's database.
database:
    # The database type.
    type: postgres
    uri: postgres://user:password@host/database?sslmode=disable
encryption:
    # Whether to enable encryption at all.
    allow: false
    default: false
    pickle_key: generate
`

func TestApplyDefaults(t *testing.T) {
	out, err := ApplyDefaults([]byte(sample), "/etc/passerelle/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var dbType, uri string
	var allow, def bool
	for path, dst := range map[string]any{"database.type": &dbType, "database.uri": &uri, "encryption.allow": &allow, "encryption.default": &def} {
		if err := doc.Get(path, dst); err != nil {
			t.Fatal(err)
		}
	}
	if dbType != "sqlite3-fk-wal" || uri != SQLiteURI(filepath.Join("/etc/passerelle", DatabaseFile)) {
		t.Errorf("database = %s %s", dbType, uri)
	}
	if !allow || !def {
		t.Errorf("encryption allow=%v default=%v", allow, def)
	}
	var dedup bool
	var reconnectWait string
	if err := doc.Get("bridge.deduplicate_matrix_messages", &dedup); err != nil || !dedup {
		t.Errorf("bridge.deduplicate_matrix_messages = %v, %v; want true", dedup, err)
	}
	if err := doc.Get("bridge.send_reconnect_wait", &reconnectWait); err != nil || reconnectWait != "20s" {
		t.Errorf("bridge.send_reconnect_wait = %q, %v; want 20s", reconnectWait, err)
	}
	var secrets map[string]string
	if err := doc.Get("double_puppet.secrets", &secrets); err != nil || len(secrets) != 0 {
		t.Errorf("double_puppet.secrets = %v, %v; want empty (-g fills it)", secrets, err)
	}
	for _, comment := range []string{"# The database type.", "# Whether to enable encryption at all."} {
		if !strings.Contains(string(out), comment) {
			t.Errorf("comment %q was lost:\n%s", comment, out)
		}
	}
}

func TestDocSetCreatesAndGetFails(t *testing.T) {
	doc, err := Parse([]byte("a:\n    b: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err = doc.Set("a.c.d", "x"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err = doc.Get("a.c.d", &got); err != nil || got != "x" {
		t.Fatalf("a.c.d = %q, %v", got, err)
	}
	if err = doc.Set("a.b.c", 1); err == nil {
		t.Error("setting below a scalar succeeded")
	}
	if err = doc.Get("a.zzz", &got); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("missing key: err = %v", err)
	}
	if _, err = Parse([]byte("- just\n- a list\n")); err == nil {
		t.Error("a list parsed as a config")
	}
}
