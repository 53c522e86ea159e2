// Package telegram is Passerelle's Telegram connector: a complete bridgev2
// NetworkConnector on top of gotd/td. Every ID it makes starts with
// "telegram." (see package tgid).
package telegram

import (
	"context"
	"fmt"
	"sync"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/lru"
)

var (
	_ bridgev2.NetworkConnector            = (*TelegramConnector)(nil)
	_ bridgev2.IdentifierValidatingNetwork = (*TelegramConnector)(nil)
)

// TelegramConnector is the bridgev2 network connector for Telegram.
type TelegramConnector struct {
	Bridge *bridgev2.Bridge
	Config Config
	Store  *Store

	// Hooks is the connector's side of the gateway's door: the queue its
	// remote events go through, the outbound check and the sent recorder.
	remote.Hooks

	// Limits are the file size limits: max_file_size and the homeserver's
	// upload limit.
	Limits *media.Limits

	// connects bounds the logins connecting at once (nil: no bound).
	connects *remote.ConnectLimiter

	// photoSets is held (read) by each group photo being set from Matrix,
	// and photoSent keeps the photos set that way by Telegram photo ID: a
	// login that meets the change's echo (another staff member's, or the
	// sender's own) gives bridgev2 the room's avatar as it is instead of
	// downloading the picture back. photoEcho waits for the sets in flight
	// first.
	photoSets sync.RWMutex
	photoSent *lru.Cache[int64, sentPhoto]

	// groupEdits are the edits of shared (channel) messages already
	// handed to the bridge by one login, by message and edit date: the
	// other logins in the group receive the same edit and skip it.
	groupEdits   *lru.Cache[string, bool]
	groupEditsMu sync.Mutex
	// basicTitles caches basic-group titles; basicDeleted are the
	// basic-group messages deleted from Matrix (the other logins' copies
	// of the deletion are not bridged back); basicClaims paces the
	// pruning of the basic-group tables. basicMu guards the three.
	basicTitles  *lru.Cache[int64, string]
	basicDeleted *lru.Cache[networkid.MessageID, bool]
	basicClaims  int
	// basicMigrated maps the basic groups that became supergroups to them.
	basicMigrated *lru.Cache[int64, int64]
	// basicMigratedFrom maps those supergroups back to their groups.
	basicMigratedFrom *lru.Cache[int64, int64]
	// basicMoved maps the groups whose portal moved to their supergroup;
	// basicMoving holds the moves in progress (closed when done).
	basicMoved  *lru.Cache[int64, int64]
	basicMoving map[int64]chan struct{}
	// basicCopyCh is closed at the next basic-group copy recorded.
	basicCopyCh chan struct{}
	basicMu     sync.Mutex
	// sharedPortalLocks serialize the logins' deliveries to shared portals.
	sharedPortalLocks [sharedPortalStripes]sync.Mutex
	// portalCreation: one portal's room created at a time, whatever the
	// login (deliver): two logins' rooms can share a contact too.
	portalCreation sync.Mutex
	// profiles: the logins' messages are delivered side by side; a chat's
	// resync or info change, which writes its members' ghosts in
	// bridgev2, while none is (remote.ProfileGate). Ghosts are shared by
	// the logins.
	profiles remote.ProfileGate
	// ghostUpdates applies users' profile changes to their ghosts, one at
	// a time, as writers of profiles (every login in a group sees its
	// members' changes: the first applies it, the others find it done).
	ghostUpdates remote.ProfileUpdates
}

var (
	_ remote.QueueSetter         = (*TelegramConnector)(nil)
	_ remote.OutboundCheckSetter = (*TelegramConnector)(nil)
	_ remote.SentRecorderSetter  = (*TelegramConnector)(nil)
)

// NewConnector returns a Telegram connector; bridgev2 calls Init and Start.
func NewConnector() *TelegramConnector {
	c := &TelegramConnector{
		Limits:            media.NewLimits(0),
		groupEdits:        lru.New[string, bool](groupEditsCacheSize),
		basicTitles:       lru.New[int64, string](basicCacheSize),
		basicDeleted:      lru.New[networkid.MessageID, bool](basicCacheSize),
		basicMigrated:     lru.New[int64, int64](basicCacheSize),
		basicMigratedFrom: lru.New[int64, int64](basicCacheSize),
		basicMoved:        lru.New[int64, int64](basicCacheSize),
		basicMoving:       map[int64]chan struct{}{},
		photoSent:         lru.New[int64, sentPhoto](photoSentKept),
	}
	c.ghostUpdates.Gate = &c.profiles
	return c
}

var _ bridgev2.MaxFileSizeingNetwork = (*TelegramConnector)(nil)

// SetMaxFileSize implements bridgev2.MaxFileSizeingNetwork: the
// homeserver's upload limit.
func (c *TelegramConnector) SetMaxFileSize(maxSize int64) {
	c.Limits.SetHomeserver(maxSize)
}

// Init implements bridgev2.NetworkConnector. It does no I/O.
func (c *TelegramConnector) Init(br *bridgev2.Bridge) {
	c.Bridge = br
	remote.RegisterReconnect(br)
	log := br.Log.With().Str("db_section", "telegram").Logger()
	c.Store = NewChildStore(br.DB.Database, dbutil.ZeroLogger(log))
	c.connects = remote.NewConnectLimiter(remote.DefaultConnectConcurrency)
}

// Start creates or upgrades the connector's tables.
func (c *TelegramConnector) Start(ctx context.Context) error {
	if c.Config.displaynameTemplate == nil {
		if err := c.Config.prepare(); err != nil {
			return err
		}
	}
	c.Limits.SetGateway(c.Config.MaxFileSize)
	return c.Store.Upgrade(ctx)
}

// GetName implements bridgev2.NetworkConnector.
func (c *TelegramConnector) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:          "Telegram",
		NetworkURL:           "https://telegram.org",
		NetworkID:            tgid.Network,
		BeeperBridgeType:     "github.com/passerelle/passerelle/bridges/telegram",
		DefaultPort:          29317,
		DefaultCommandPrefix: "!tg",
	}
}

// GetBridgeInfoVersion implements bridgev2.NetworkConnector.
func (c *TelegramConnector) GetBridgeInfoVersion() (info, capabilities int) {
	return 1, 1
}

// ValidateUserID reports whether id is a Telegram ghost ID.
func (c *TelegramConnector) ValidateUserID(id networkid.UserID) bool {
	_, err := tgid.ParseUserID(id)
	return err == nil
}

// LoadUserLogin implements bridgev2.NetworkConnector. It does no I/O.
func (c *TelegramConnector) LoadUserLogin(_ context.Context, login *bridgev2.UserLogin) error {
	userID, err := tgid.ParseUserLoginID(login.ID)
	if err != nil {
		return fmt.Errorf("failed to load telegram login: %w", err)
	}
	if err = remote.GivePortalCache(login); err != nil {
		login.Log.Warn().Err(err).Msg("Each remote event will look up the login's portal membership again")
	}
	login.Client = newClient(c, login, userID)
	return nil
}
