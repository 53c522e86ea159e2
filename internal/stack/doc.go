// Package stack starts the real components of a local Passerelle deployment on
// loopback: the Dendrite homeserver and the gateway binary. The end-to-end
// tests (package e2e) and the demo stack (cmd/devstack) share it.
//
// Everything listens on 127.0.0.1 with ports picked free at start, and every
// process writes its log to a file in its own directory, so a failing test can
// show what happened. Secrets (appservice tokens, the registration shared
// secret, passwords) are kept in memory and in the files the components read;
// nothing here prints them.
package stack
