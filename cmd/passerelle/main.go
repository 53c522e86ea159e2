// Command passerelle is the Passerelle gateway: one Matrix application
// service bridging WhatsApp and Telegram. See appservice.Main.
package main

import (
	"github.com/passerelle/passerelle/appservice"
)

// Filled in by the build with -ldflags "-X main.Tag=... -X main.Commit=... -X main.BuildTime=...".
var (
	Tag       = "unknown"
	Commit    = "unknown"
	BuildTime = "unknown"
)

func main() {
	appservice.Main(Tag, Commit, BuildTime)
}
