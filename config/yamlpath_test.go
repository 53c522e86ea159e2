package config

import (
	"errors"
	"strings"
	"testing"
)

const sampleConfig = `# top comment
homeserver:
    # The address.
    address: http://example.localhost:8008
    domain: example.com
network:
bridge:
    permissions:
        "*": relay
`

func TestYAMLSet(t *testing.T) {
	doc, err := Parse([]byte(sampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		value any
	}{
		{"homeserver.address", "http://127.0.0.1:1234"},
		{"appservice.port", 29318},
		{"network.telegram.test_server.dc", 2},
		{"bridge.permissions", map[string]string{"localhost": "user"}},
		{"app_service_api.config_files", []string{"/a/registration.yaml"}},
	} {
		if err := doc.Set(tc.path, tc.value); err != nil {
			t.Fatalf("Set(%s): %v", tc.path, err)
		}
	}
	out, err := doc.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"# top comment", "# The address.", "address: http://127.0.0.1:1234", "domain: example.com", "dc: 2", "- /a/registration.yaml"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, `"*": relay`) {
		t.Errorf("bridge.permissions was merged, not replaced:\n%s", text)
	}

	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	if err = back.Get("appservice.port", &port); err != nil || port != 29318 {
		t.Fatalf("appservice.port = %d, %v", port, err)
	}
	var perms map[string]string
	if err = back.Get("bridge.permissions", &perms); err != nil || len(perms) != 1 || perms["localhost"] != "user" {
		t.Fatalf("bridge.permissions = %v, %v", perms, err)
	}
	if got := back.GetString("network.telegram.test_server.dc"); got != "2" {
		t.Fatalf("GetString(dc) = %q", got)
	}
	if !back.Has("network.telegram") || back.Has("network.whatsapp") {
		t.Fatal("Has is wrong")
	}
	var s string
	if err = back.Get("nope.nothing", &s); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("Get of a missing path: %v", err)
	}
}

func TestYAMLSetThroughScalarFails(t *testing.T) {
	doc, err := Parse([]byte("list: [1, 2]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err = doc.Set("list.x", 1); err == nil {
		t.Fatal("setting a key inside a sequence should fail")
	}
}
