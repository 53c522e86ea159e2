package whatsapp

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.mau.fi/whatsmeow"
)

// TestServer sends the connector's connections to a server other than
// WhatsApp's: the simulator, in tests and in the local stack. The connector
// gets one either from the code that builds it (WhatsAppConnector.TestServer,
// filled in by a test from the simulator's side) or from the config
// (test_server.address and root_public_key). Production leaves both empty.
type TestServer struct {
	// HTTPClient carries the websocket and pre-login requests (and media
	// requests when MediaHTTPClient is nil), whatever host they name.
	HTTPClient *http.Client
	// MediaHTTPClient, when set, carries the media uploads and downloads:
	// the simulator's HTTPS media server, trusted through its test CA.
	MediaHTTPClient *http.Client
	// RootPublicKey is the server's certificate root, trusted instead of
	// WhatsApp's.
	RootPublicKey [32]byte
}

// FixedAddressClient returns an HTTP client that sends every request,
// whatever its host or scheme, to addr (host:port). "https" and "wss" URLs are
// carried in clear text: Go's transport takes a connection from
// DialTLSContext as already secured. Only meant for a test server on a
// trusted network.
func FixedAddressClient(addr string) *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:         dial,
		DialTLSContext:      dial,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// ParseRootPublicKey parses a root public key written as 64 hex characters.
func ParseRootPublicKey(s string) ([32]byte, error) {
	var out [32]byte
	raw, err := hex.DecodeString(s)
	if err != nil {
		return out, fmt.Errorf("failed to decode root public key: %w", err)
	} else if len(raw) != len(out) {
		return out, fmt.Errorf("root public key has %d bytes, expected %d", len(raw), len(out))
	}
	copy(out[:], raw)
	return out, nil
}

// testServer is the server the connector dials instead of WhatsApp, if any:
// the one set in code wins over the config's.
func (c *WhatsAppConnector) testServer() *TestServer {
	if c.TestServer != nil {
		return c.TestServer
	}
	return c.Config.testServer
}

// trustTestServer makes whatsmeow (process-wide) trust the test server's
// root key. It only writes when the key changes, so that a second start in
// the same process does not race with running clients.
func (c *WhatsAppConnector) trustTestServer() {
	if ts := c.testServer(); ts != nil && whatsmeow.WACertPubKey != ts.RootPublicKey {
		whatsmeow.WACertPubKey = ts.RootPublicKey
	}
}

// route points a whatsmeow client at the test server, if there is one.
func (c *WhatsAppConnector) route(cli *whatsmeow.Client) {
	if ts := c.testServer(); ts != nil && ts.HTTPClient != nil {
		cli.SetWebsocketHTTPClient(ts.HTTPClient)
		cli.SetPreLoginHTTPClient(ts.HTTPClient)
		cli.SetMediaHTTPClient(ts.HTTPClient)
	}
	if ts := c.testServer(); ts != nil && ts.MediaHTTPClient != nil {
		cli.SetMediaHTTPClient(ts.MediaHTTPClient)
	}
}
