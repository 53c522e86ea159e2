// Package appservice is the Matrix side of Passerelle: it wires the gateway
// connector into mautrix-go's bridgev2 (appservice, registration, end-to-end
// encryption, bot commands) and writes Passerelle's defaults into the example
// config.
package appservice

import (
	"fmt"
	"os"

	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/whatsapp"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// Version is the release that a tagged build reports.
const Version = "0.1.0"

// NewGateway returns the gateway with every network Passerelle knows, behind
// the governance gate.
func NewGateway() (*gateway.Gateway, error) {
	gw, err := gateway.New(
		&gateway.Network{ID: tgid.Network, Connector: telegram.NewConnector(), EnabledByDefault: true},
		&gateway.Network{ID: waid.Network, Connector: whatsapp.NewConnector(), EnabledByDefault: true},
	)
	if err != nil {
		return nil, err
	}
	if _, err = addGovernance(gw); err != nil {
		return nil, err
	}
	return gw, nil
}

// Main runs the gateway binary. It never returns.
func Main(tag, commit, buildTime string) {
	registerRedactingWriters()
	gw, err := NewGateway()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to set up the gateway:", err)
		os.Exit(1)
	}
	if handled := maybeWriteExampleConfig(os.Args); handled {
		return
	}
	m := &mxmain.BridgeMain{
		Name:        "passerelle",
		URL:         "https://github.com/passerelle/passerelle",
		Description: "A Matrix gateway to WhatsApp and Telegram for organisations moving to Matrix.",
		Version:     Version,
		Connector:   gw,
	}
	m.InitVersion(tag, commit, buildTime)
	m.Run()
}
