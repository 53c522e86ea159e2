package wasim_test

import (
	"testing"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

func TestRootKeyFromSeed(t *testing.T) {
	a, b := wasim.RootPublicKeyFromSeed("demo"), wasim.RootPublicKeyFromSeed("demo")
	if a != b {
		t.Fatal("root key is not deterministic")
	}
	if a == wasim.RootPublicKeyFromSeed("other") {
		t.Fatal("different seeds give the same key")
	}
	if wasim.RootPublicKeyFromSeed("") != wasim.RootPublicKeyFromSeed(wasim.DefaultRootSeed) {
		t.Fatal("empty seed is not the default seed")
	}
	parsed, err := wasim.ParseRootPublicKey(wasim.RootPublicKeyHex("demo"))
	if err != nil || parsed != a {
		t.Fatalf("hex round trip: %x %v", parsed, err)
	}
	if _, err = wasim.ParseRootPublicKey("abcd"); err == nil {
		t.Fatal("short key accepted")
	}
	srv := startServer(t)
	if srv.RootPublicKey() != wasim.RootPublicKeyFromSeed("") {
		t.Fatal("server root key does not match its seed")
	}
}
