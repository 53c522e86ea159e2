// Package netid joins and splits the network prefix that every ID of the
// gateway carries (user, login, portal, message, media), so that the gateway
// connector can route an ID to the network connector that made it.
//
// An ID is "<network>.<rest>", for example "telegram.123456789". The network
// name is lowercase ASCII letters only; the rest is opaque to this package and
// must not be empty.
package netid

import (
	"errors"
	"fmt"
	"strings"
)

// Sep separates the network prefix from the rest of an ID. A dot survives
// Matrix localpart encoding unchanged, so ghost IDs stay readable.
const Sep = "."

// ErrMalformed is returned (wrapped) for an ID that has no valid network prefix.
var ErrMalformed = errors.New("malformed network-prefixed ID")

// Join returns "<network>.<rest>".
func Join(network, rest string) string {
	return network + Sep + rest
}

// Split returns the network prefix and the rest of a prefixed ID.
func Split(id string) (network, rest string, err error) {
	network, rest, ok := strings.Cut(id, Sep)
	if !ok {
		return "", "", fmt.Errorf("%w: %q has no network prefix", ErrMalformed, id)
	}
	if !ValidNetwork(network) {
		return "", "", fmt.Errorf("%w: %q has an invalid network prefix", ErrMalformed, id)
	}
	if rest == "" {
		return "", "", fmt.Errorf("%w: %q has nothing after its network prefix", ErrMalformed, id)
	}
	return network, rest, nil
}

// Network returns the network prefix of id, or "" when id is malformed.
func Network(id string) string {
	network, _, err := Split(id)
	if err != nil {
		return ""
	}
	return network
}

// Strip returns the rest of id after the expected network prefix.
func Strip(network, id string) (string, error) {
	gotNetwork, rest, err := Split(id)
	if err != nil {
		return "", err
	}
	if gotNetwork != network {
		return "", fmt.Errorf("%w: %q belongs to network %q, not %q", ErrMalformed, id, gotNetwork, network)
	}
	return rest, nil
}

// ValidNetwork reports whether name can be used as a network prefix.
func ValidNetwork(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for _, c := range name {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
