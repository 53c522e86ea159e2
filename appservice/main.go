// Package appservice is the Matrix side of Passerelle: it wires the gateway
// connector into mautrix-go's bridgev2 (appservice, registration, end-to-end
// encryption, bot commands) and writes Passerelle's defaults into the example
// config.
package appservice

import (
	"context"
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/whatsapp"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/memtrim"
)

// Version is the release that a tagged build reports.
const Version = "0.1.0"

// NewGateway returns the gateway with every network Passerelle knows, behind
// the governance gate.
func NewGateway() (*gateway.Gateway, error) {
	gw, _, _, _, err := newGateway()
	return gw, err
}

func newGateway() (*gateway.Gateway, *storage, *puppeting, *metricsComponent, error) {
	gw, err := gateway.New(
		&gateway.Network{ID: tgid.Network, Connector: telegram.NewConnector(), EnabledByDefault: true},
		&gateway.Network{ID: waid.Network, Connector: whatsapp.NewConnector(), EnabledByDefault: true},
	)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	gov, err := addGovernance(gw)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	// Metrics count what passes the one door: the governance hooks,
	// wrapped (the section only decides whether they are served).
	mx := newMetrics(gw, gov)
	if err = gw.AddComponent(mx); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("failed to add metrics: %w", err)
	}
	gw.SetRemoteQueue(mx.m.WrapQueue(gov.Queue))
	gw.SetOutboundCheck(mx.m.WrapCheck(gov.CheckOutbound))
	gw.SetSentRecorder(mx.m.WrapSent(gov.RecordSent))
	gw.SetBackfillFilter(mx.m.WrapBackfill(gov.FilterBackfill))
	store := newStorage()
	if err = gw.AddComponent(store); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("failed to add storage settings: %w", err)
	}
	pup := newPuppeting()
	if err = gw.AddComponent(pup); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("failed to add double puppeting: %w", err)
	}
	gw.SetPresenceSink(func(ctx context.Context, login *bridgev2.UserLogin, p remote.Presence) {
		pup.presence.Sink(ctx, login, p)
	})
	return gw, store, pup, mx, nil
}

// Main runs the gateway binary. It never returns.
//
// It runs bridgev2's steps one by one (mxmain's Run) so that, between loading
// the config and opening the database, it can apply the storage section and
// make the SQLite files private.
func Main(tag, commit, buildTime string) {
	restrictNewFiles()
	registerRedactingWriters()
	gw, store, pup, mx, err := newGateway()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to set up the gateway:", err)
		os.Exit(1)
	}
	if handled := maybeWriteExampleConfig(os.Args); handled {
		return
	}
	if err = restrictRegistration(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "Failed to protect the registration file:", err)
		os.Exit(1)
	}
	if wantsRegistration(os.Args[1:]) {
		if err = writeDoublePuppetRegistration(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "Failed to write the double-puppet registration:", err)
			os.Exit(1)
		}
	}
	m := &mxmain.BridgeMain{
		Name:        "passerelle",
		URL:         "https://github.com/passerelle/passerelle",
		Description: "A Matrix gateway to WhatsApp and Telegram for organisations moving to Matrix.",
		Version:     Version,
		Connector:   gw,
	}
	m.InitVersion(tag, commit, buildTime)
	m.PreInit()
	applyStorage(&m.Config.Database, store.cfg)
	usePrettyWriters(&m.Config.Logging)
	looseDir, err := prepareDatabase(m.Config.Database)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to prepare the database:", err)
		os.Exit(14)
	}
	// One active instance per database: a second one on SQLite refuses
	// to start; on PostgreSQL it waits as a standby (awaitLease).
	sqliteLock, err := lockSQLite(m.Config.Database)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Refusing to start:", err)
		os.Exit(exitSQLiteInUse)
	}
	m.Init()
	releaseLease := awaitLease(m)
	// Ghosts send remote messages with transaction IDs derived from them,
	// so that a gateway killed between a send and its record does not
	// bridge the redelivered message twice.
	if err = useIdempotentSends(context.Background(), m.Bridge, m.Matrix, pup); err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Failed to set up idempotent sends")
		os.Exit(14)
	}
	// The bot and the ghosts get no notifications on the homeserver.
	startQuiet, stopQuiet, err := useQuietUsers(context.Background(), m.Matrix, m.Bridge.DB.Database, m.Log.With().Str("component", "quiet_users").Logger())
	if err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Failed to set up the muting of the gateway's users")
		os.Exit(14)
	}
	pup.useMatrix(m.Matrix)
	ignoreOwnTombstones(m.Matrix)
	usePacedCryptoSync(m.Matrix, cryptoSyncEvery)
	// Answer the homeserver's transactions once their events are stored
	// in the gateway's database, so that a crash never loses a Matrix
	// message the homeserver thinks was delivered, and handle them room by
	// room, so that a slow portal does not hold the others back.
	started := make(chan struct{})
	inbox, err := openMatrixInbox(context.Background(), m.Bridge.DB.Database, m.Matrix.AS, m.Matrix.EventProcessor, started,
		func(u id.UserID) bool { return u == m.Matrix.Bot.UserID || m.Bridge.IsGhostMXID(u) },
		func(ctx context.Context, evtID id.EventID) (bool, error) {
			part, err := m.Bridge.DB.Message.GetPartByMXID(ctx, evtID)
			return part != nil, err
		},
		m.Log.With().Str("component", "matrix_inbox").Logger())
	if err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Failed to open the Matrix inbox")
		os.Exit(14)
	}
	m.Matrix.AS.Middleware = append(m.Matrix.AS.Middleware, handledTransactions(m.Matrix.AS, m.Matrix.EventProcessor, inbox))
	if m.Matrix.EventProcessor.ExecMode == appservice.Sync {
		// Every room event goes through the inbox, which recognises one
		// handled before at a fraction of bridgev2's cost (see inbox.go).
		m.Bridge.Config.DeduplicateMatrixMessages = false
	}
	mx.useInbox(inbox)
	if looseDir != "" {
		m.Log.Warn().Str("directory", looseDir).Msg("Other users can enter the database directory; chmod 700 it")
	}
	mx.useMatrix(m.Matrix)
	hs := newHomeserverCaps(m.Matrix, pup)
	mx.useCapabilities(hs.reportJSON)
	if err = mx.listen(); err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Failed to start the metrics listener")
		os.Exit(14)
	}
	asListener, err := openAppServiceListener(m.Matrix, m.Log.With().Str("component", "appservice_listener").Logger())
	if err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Failed to start the appservice listener")
		os.Exit(14)
	}
	asListener.serve()
	m.Start()
	close(started)
	startQuiet()
	// bridgev2 has fetched /versions: say what the homeserver can do.
	go func() {
		log := m.Log.With().Str("component", "homeserver_capabilities").Logger()
		defer func() {
			if p := recover(); p != nil {
				log.Error().Any("panic", p).Msg("Panic in the homeserver capability detection")
			}
		}()
		hs.detect(log.WithContext(context.Background()))
	}()
	mx.setRunning(true)
	stopTakeover := startTakeover(m)
	// An idle gateway gives back the heap its last peak left free.
	trimCtx, stopTrim := context.WithCancel(context.Background())
	go (&memtrim.Trimmer{Log: m.Log.With().Str("component", "memtrim").Logger()}).Run(trimCtx)
	exitCode := m.WaitForInterrupt()
	stopTrim()
	inbox.stop()
	stopTakeover()
	stopQuiet()
	mx.setRunning(false)
	m.Stop()
	asListener.stop()
	mx.close()
	releaseLease()
	_ = sqliteLock.Close()
	os.Exit(exitCode)
}
