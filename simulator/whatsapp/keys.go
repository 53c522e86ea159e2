package wasim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.mau.fi/libsignal/ecc"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
)

// DefaultRootSeed is the seed of the root key when Config.RootSeed is empty.
const DefaultRootSeed = "passerelle-wasim-root"

// derivePrivate turns a seed and a purpose label into a clamped X25519
// private key, so every key of the certificate chain is reproducible.
func derivePrivate(seed, label string) [32]byte {
	priv := sha256.Sum256([]byte("wasim/" + label + "\x00" + seed))
	priv[0] &= 248
	priv[31] &= 127
	priv[31] |= 64
	return priv
}

// RootKeyFromSeed derives the simulator's root key pair from a seed. The same
// seed always gives the same key, so a gateway running in another process can
// be configured with the seed (or with [RootPublicKeyHex] of it) instead of
// the key itself.
func RootKeyFromSeed(seed string) *keys.KeyPair {
	if seed == "" {
		seed = DefaultRootSeed
	}
	return keys.NewKeyPairFromPrivateKey(derivePrivate(seed, "root"))
}

// RootPublicKeyFromSeed returns the public root key for a seed: the value a
// client must put in whatsmeow.WACertPubKey to accept the simulator.
func RootPublicKeyFromSeed(seed string) [32]byte {
	return *RootKeyFromSeed(seed).Pub
}

// RootPublicKeyHex returns the public root key for a seed as lower-case hex.
func RootPublicKeyHex(seed string) string {
	pub := RootPublicKeyFromSeed(seed)
	return hex.EncodeToString(pub[:])
}

// ParseRootPublicKey parses a 64-character hex root public key.
func ParseRootPublicKey(s string) ([32]byte, error) {
	var out [32]byte
	raw, err := hex.DecodeString(s)
	if err != nil {
		return out, fmt.Errorf("failed to decode root public key: %w", err)
	} else if len(raw) != 32 {
		return out, fmt.Errorf("root public key has %d bytes, expected 32", len(raw))
	}
	copy(out[:], raw)
	return out, nil
}

// UseRootPublicKey makes every whatsmeow client in this process trust the
// simulator whose root public key is pub, by replacing whatsmeow.WACertPubKey
// (a package variable: call it before any client connects, and never while
// clients run, or the race detector will complain).
func UseRootPublicKey(pub [32]byte) {
	whatsmeow.WACertPubKey = pub
}

// ClientHTTP returns an HTTP client that sends every request, whatever its
// host or scheme, to the simulator listening on addr (host:port). "https" and
// "wss" URLs are carried in clear text: Go's transport treats a connection
// from DialTLSContext as already secured.
func ClientHTTP(addr string) *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         dial,
			DialTLSContext:      dial,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: 0,
	}
}

// RouteClient points a whatsmeow client at the simulator on addr: the
// websocket, pre-login and media HTTP clients all dial addr (media in clear
// text; Server.RouteClient uses the HTTPS media server). The root key must
// be set separately (UseRootPublicKey).
func RouteClient(cli *whatsmeow.Client, addr string) {
	cli.SetWebsocketHTTPClient(ClientHTTP(addr))
	cli.SetPreLoginHTTPClient(ClientHTTP(addr))
	cli.SetMediaHTTPClient(ClientHTTP(addr))
}

// certChain is the server's Noise certificate chain: root → intermediate →
// leaf, the leaf certifying the static Noise key.
type certChain struct {
	static  *keys.KeyPair
	payload []byte // marshalled waCert.CertChain
}

func newCertChain(seed string) (*certChain, error) {
	root := RootKeyFromSeed(seed)
	if seed == "" {
		seed = DefaultRootSeed
	}
	intermediate := keys.NewKeyPairFromPrivateKey(derivePrivate(seed, "intermediate"))
	static := keys.NewKeyPairFromPrivateKey(derivePrivate(seed, "static"))
	now := uint64(time.Now().Unix())
	sign := func(signer *keys.KeyPair, details *waCert.CertChain_NoiseCertificate_Details) (*waCert.CertChain_NoiseCertificate, error) {
		raw, err := proto.Marshal(details)
		if err != nil {
			return nil, err
		}
		sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*signer.Priv), raw)
		return &waCert.CertChain_NoiseCertificate{Details: raw, Signature: sig[:]}, nil
	}
	interCert, err := sign(root, &waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(1),
		IssuerSerial: proto.Uint32(whatsmeow.WACertIssuerSerial),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(now - 3600),
		NotAfter:     proto.Uint64(now + 10*365*24*3600),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to sign intermediate certificate: %w", err)
	}
	leafCert, err := sign(intermediate, &waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(2),
		IssuerSerial: proto.Uint32(1),
		Key:          static.Pub[:],
		NotBefore:    proto.Uint64(now - 3600),
		NotAfter:     proto.Uint64(now + 10*365*24*3600),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to sign leaf certificate: %w", err)
	}
	payload, err := proto.Marshal(&waCert.CertChain{Intermediate: interCert, Leaf: leafCert})
	if err != nil {
		return nil, fmt.Errorf("failed to marshal certificate chain: %w", err)
	}
	return &certChain{static: static, payload: payload}, nil
}

// RouteClient points a whatsmeow client at this simulator: websocket and
// pre-login requests to its address, media to its HTTPS media server
// (MediaHTTPClient). The root key must be set separately (UseRootPublicKey).
func (s *Server) RouteClient(cli *whatsmeow.Client) {
	RouteClient(cli, s.Addr())
	cli.SetMediaHTTPClient(s.MediaHTTPClient())
}
