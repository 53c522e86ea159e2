// Package whatsapp is Passerelle's WhatsApp connector: a complete bridgev2
// NetworkConnector on top of go.mau.fi/whatsmeow, with the device keys in the
// bridge's database (package wastore). Every ID it makes starts with
// "whatsapp." (see package waid).
package whatsapp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/upgrades"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/bridges/whatsapp/wastore"
)

var (
	_ bridgev2.NetworkConnector            = (*WhatsAppConnector)(nil)
	_ bridgev2.IdentifierValidatingNetwork = (*WhatsAppConnector)(nil)
	_ bridgev2.StoppableNetwork            = (*WhatsAppConnector)(nil)
	_ remote.QueueSetter                   = (*WhatsAppConnector)(nil)
)

// Timeouts of the login flows; tests shorten them.
const (
	// DefaultQRTimeout is how long a QR login waits to be scanned, over all
	// the codes WhatsApp rotates through.
	DefaultQRTimeout = 3 * time.Minute
	// DefaultPairTimeout is how long a pairing code stays valid.
	DefaultPairTimeout = 3 * time.Minute
)

// WhatsAppConnector is the bridgev2 network connector for WhatsApp.
type WhatsAppConnector struct {
	Bridge *bridgev2.Bridge
	Config Config
	Store  *wastore.Container

	// Clock drives reconnection backoff (RealClock unless a test sets one).
	Clock Clock
	// connects bounds the logins connecting at once (nil: no bound).
	connects *remote.ConnectLimiter
	// QRTimeout and PairTimeout bound the login flows.
	QRTimeout, PairTimeout time.Duration
	// TestServer, when set, replaces WhatsApp's servers (and the config's
	// test_server): tests set it from the simulator's side.
	TestServer *TestServer

	// Limits are the file size limits (the config's, the homeserver's).
	Limits *media.Limits
	// MediaRetryWait bounds how long an expired file waits for the phone to
	// upload it again after a media retry receipt.
	MediaRetryWait time.Duration

	// seen recognises a group event that another login already bridged.
	seen *groupSeen
	// history is the history sync kept for backfill (historystore.go).
	history *historyStore
	// handling counts the WhatsApp events being handled (tests wait for
	// none before stopping).
	handling atomic.Int64
	// groupLocks serialise a group's deliveries across logins (lockGroup).
	groupLocks [groupLockCount]sync.Mutex
	// portalCreation: one portal's room created at a time, whatever the
	// login (creationTurn).
	portalCreation sync.Mutex
	// profiles: the logins' messages are handled side by side; a ghost is
	// refreshed after a profile change, and a group's change handled,
	// while none is (remote.ProfileGate). Ghosts are shared by the logins.
	profiles remote.ProfileGate

	// Hooks is the connector's side of the gateway's door: the queue its
	// remote events go through, the outbound check and the sent recorder.
	remote.Hooks
}

var (
	_ remote.QueueSetter         = (*WhatsAppConnector)(nil)
	_ remote.OutboundCheckSetter = (*WhatsAppConnector)(nil)
	_ remote.SentRecorderSetter  = (*WhatsAppConnector)(nil)
	_ remote.MediaCheckSetter    = (*WhatsAppConnector)(nil)

	_ bridgev2.MaxFileSizeingNetwork = (*WhatsAppConnector)(nil)
)

// NewConnector returns a WhatsApp connector; bridgev2 calls Init and Start.
func NewConnector() *WhatsAppConnector {
	return &WhatsAppConnector{
		Clock:       RealClock{},
		QRTimeout:   DefaultQRTimeout,
		PairTimeout: DefaultPairTimeout,
		Limits:      media.NewLimits(0),

		MediaRetryWait: DefaultMediaRetryWait,
	}
}

// SetMaxFileSize implements bridgev2.MaxFileSizeingNetwork: the homeserver's
// upload limit.
func (c *WhatsAppConnector) SetMaxFileSize(maxSize int64) { c.Limits.SetHomeserver(maxSize) }

// Init implements bridgev2.NetworkConnector. It does no I/O.
func (c *WhatsAppConnector) Init(br *bridgev2.Bridge) {
	c.Bridge = br
	c.Hooks.Clock = c.Clock
	c.seen = newGroupSeen(c.Clock)
	c.history = &historyStore{db: br.DB.Database, bridgeID: br.ID}
	if proc, ok := br.Commands.(*commands.Processor); ok {
		proc.AddHandlers(c.joinCommand())
	}
	remote.RegisterReconnect(br)
	c.connects = remote.NewConnectLimiter(remote.DefaultConnectConcurrency)
	log := br.Log.With().Str("db_section", "whatsapp").Logger()
	c.Store = wastore.NewChild(br.DB.Database, dbutil.ZeroLogger(log), newWALogger(br.Log.With().Str("component", "whatsmeow").Logger()))
}

// Start creates or upgrades the device store's tables and, for a test
// server, trusts its root key.
func (c *WhatsAppConnector) Start(ctx context.Context) error {
	if err := c.Config.prepare(); err != nil {
		return err
	}
	c.Limits.SetGateway(c.Config.MaxFileSize)
	c.Config.applyGlobal()
	c.trustTestServer()
	if err := c.Store.Upgrade(ctx); err != nil {
		return err
	}
	log := c.Bridge.Log.With().Str("db_section", "whatsapp_portal").Logger()
	portals := c.Bridge.DB.Database.Child(upgrades.VersionTable, upgrades.Table, dbutil.ZeroLogger(log))
	if err := portals.Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to upgrade whatsapp portals: %w", err)
	}
	return c.tombstoneMergedRooms(ctx)
}

// Stop implements bridgev2.StoppableNetwork; bridgev2 disconnects the
// logins before, and closes the database after it: the clears of handled
// messages' plaintexts that wait are written now.
func (c *WhatsAppConnector) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Store.FlushClears(ctx); err != nil {
		c.Bridge.Log.Warn().Err(err).Msg("Failed to clear the plaintext of handled WhatsApp messages")
	}
}

// GetName implements bridgev2.NetworkConnector.
func (c *WhatsAppConnector) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:          "WhatsApp",
		NetworkURL:           "https://whatsapp.com",
		NetworkID:            waid.Network,
		BeeperBridgeType:     "github.com/passerelle/passerelle/bridges/whatsapp",
		DefaultPort:          29318,
		DefaultCommandPrefix: "!wa",
	}
}

// GetBridgeInfoVersion implements bridgev2.NetworkConnector.
func (c *WhatsAppConnector) GetBridgeInfoVersion() (info, capabilities int) {
	return 1, 1
}

// ValidateUserID reports whether id is a WhatsApp ghost ID.
func (c *WhatsAppConnector) ValidateUserID(id networkid.UserID) bool {
	_, err := waid.ParseUserID(id)
	return err == nil
}

// LoadUserLogin implements bridgev2.NetworkConnector. It does no I/O: the
// device is read from the store in Connect.
func (c *WhatsAppConnector) LoadUserLogin(_ context.Context, login *bridgev2.UserLogin) error {
	jid, err := waid.ParseUserLoginID(login.ID)
	if err != nil {
		return fmt.Errorf("failed to load whatsapp login: %w", err)
	}
	if err = remote.GivePortalCache(login); err != nil {
		login.Log.Warn().Err(err).Msg("Each remote event will look up the login's portal membership again")
	}
	login.Client = newClient(c, login, jid)
	return nil
}
