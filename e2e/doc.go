// Package e2e holds Passerelle's end-to-end tests: the real gateway binary,
// a real Dendrite homeserver and independent Matrix users (matrix-js-sdk with
// Rust crypto, driven through Client), all on loopback.
//
// Run with scripts/test, or `go test -tags goolm ./e2e/` once Dendrite is
// installed (stack.EnsureDendrite) and `npm ci` has run in e2e/client. The
// package is skipped under -short. Set PASSERELLE_E2E_KEEP=1 to keep every
// test's directory (configs, databases, full logs); a failing test keeps
// its directory anyway and prints where it is.
package e2e
