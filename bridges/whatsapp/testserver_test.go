package whatsapp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// The config's test_server gives the connector a server that receives every
// request, whatever host the URL names, and the root key to trust.
func TestConfigTestServerRoutesEverything(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "sim saw "+r.URL.Path)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	c := NewConnector()
	c.Config = Config{TestServer: TestServerConfig{Address: addr, RootPublicKey: wasim.RootPublicKeyHex("seed")}}
	if err := c.ValidateConfig(); err != nil {
		t.Fatal(err)
	}
	ts := c.testServer()
	if ts == nil || ts.RootPublicKey != wasim.RootPublicKeyFromSeed("seed") {
		t.Fatalf("test server %+v, want the simulator's root key", ts)
	}
	resp, err := ts.HTTPClient.Get("http://mmg.whatsapp.net/media/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "sim saw /media/x" {
		t.Fatalf("got %q from the test server", body)
	}

	// A server set in code wins over the config's.
	own := &TestServer{HTTPClient: http.DefaultClient}
	c.TestServer = own
	if c.testServer() != own {
		t.Fatal("the connector's own TestServer was ignored")
	}

	// No test server: the real WhatsApp.
	prod := NewConnector()
	if err := prod.ValidateConfig(); err != nil {
		t.Fatal(err)
	}
	if prod.testServer() != nil {
		t.Fatal("an empty config dials a test server")
	}
}
