package appservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/exhttp"
	"maunium.net/go/mautrix/bridgev2/matrix"
)

// appServiceListener is the appservice's HTTP listener, bound by the
// gateway before bridgev2 starts. bridgev2 binds it itself in a goroutine
// and only logs a failure, so a gateway whose address was taken (a second
// instance, another program, a port reused between two probes) kept
// running with no listener: the homeserver's transactions never arrived
// and /_matrix/mau/ready never answered. Bound here, an address in use
// stops the gateway at start with an error that names it.
type appServiceListener struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	log  zerolog.Logger
}

// openAppServiceListener binds the appservice's TCP address and tells
// bridgev2 not to start its own server. It returns nil and no error when
// bridgev2 keeps the listener: a websocket to the homeserver, a unix
// socket, or no listener configured.
func openAppServiceListener(mx *matrix.Connector, log zerolog.Logger) (*appServiceListener, error) {
	cfg := &mx.Config.AppService
	if mx.Config.Homeserver.Websocket || len(mx.Config.Homeserver.WSProxy) > 0 || cfg.NoServer ||
		!mx.AS.Host.IsConfigured() || mx.AS.Host.IsUnixSocket() {
		return nil, nil
	}
	addr := mx.AS.Host.Address()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the appservice address %s (appservice.hostname and appservice.port) cannot be used: %w", addr, err)
	}
	srv := &http.Server{
		// The router and middleware are read when the server is made, as
		// bridgev2's own server does: every route and middleware is set by
		// then (Main opens the listener just before the bridge starts).
		Handler:           exhttp.ApplyMiddleware(mx.AS.Router, mx.AS.Middleware...),
		Protocols:         &http.Protocols{},
		ReadHeaderTimeout: time.Minute,
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	cfg.NoServer = true
	return &appServiceListener{srv: srv, ln: ln, done: make(chan struct{}), log: log}, nil
}

// serve answers requests until stop; it returns at once.
func (l *appServiceListener) serve() {
	if l == nil {
		return
	}
	l.log.Info().Str("address", l.ln.Addr().String()).Msg("Serving the appservice API")
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error().Err(err).Msg("The appservice listener stopped")
		}
	}()
}

// stop lets requests in progress finish (up to 5 s) and closes the
// listener.
func (l *appServiceListener) stop() {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.srv.Shutdown(ctx)
	_ = l.ln.Close()
	select {
	case <-l.done:
	case <-ctx.Done():
	}
}
