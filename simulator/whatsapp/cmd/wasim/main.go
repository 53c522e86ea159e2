// Command wasim runs the fake WhatsApp server on its own, for the local demo
// stack: it prints the root public key the gateway must trust, and serves
// the control API (see wasim.Server.ControlHandler).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

type accountFlags []string

func (a *accountFlags) String() string     { return strings.Join(*a, ",") }
func (a *accountFlags) Set(v string) error { *a = append(*a, v); return nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:29330", "address of the WhatsApp websocket endpoint")
	control := flag.String("control", "127.0.0.1:29331", "address of the control API")
	seed := flag.String("seed", wasim.DefaultRootSeed, "seed of the root key")
	var accounts accountFlags
	flag.Var(&accounts, "account", "account to create, phone:push name (repeatable)")
	flag.Parse()

	log := zerolog.New(zerolog.NewConsoleWriter()).With().Timestamp().Logger()
	srv, err := wasim.Start(wasim.Config{Addr: *listen, RootSeed: *seed, Log: &log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, a := range accounts {
		phone, name, _ := strings.Cut(a, ":")
		if _, err = srv.CreateAccount(phone, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	hs := &http.Server{Addr: *control, Handler: srv.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Error().Err(err).Msg("Control API stopped")
		}
	}()
	log.Info().
		Str("websocket", srv.Addr()).
		Str("control", *control).
		Str("root_public_key", wasim.RootPublicKeyHex(*seed)).
		Msg("WhatsApp simulator running")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
	_ = srv.Close()
}
