// Command passerelle is the Passerelle gateway: one Matrix application
// service bridging WhatsApp and Telegram. See appservice.Main.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/passerelle/passerelle/appservice"
)

// Filled in by the build with -ldflags "-X main.Tag=... -X main.Commit=... -X main.BuildTime=..."
// (packaging/build.sh stamps them from git).
var (
	Tag       = "unknown"
	Commit    = "unknown"
	BuildTime = "unknown"
)

func main() {
	if appservice.WantsVersion(os.Args[1:]) {
		if err := appservice.WriteVersion(os.Stdout, Tag, Commit, BuildTime); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if appservice.WantsImport(os.Args[1:]) {
		os.Exit(appservice.Import(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if wantsHealthcheck(os.Args[1:]) {
		os.Exit(healthcheck(context.Background(), os.Args[1:], os.Stdout))
	}
	appservice.Main(Tag, Commit, BuildTime)
}
