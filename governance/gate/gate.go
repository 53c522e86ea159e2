// Package gate enforces the organisation's governance between the network
// connectors and the bridge core (DESIGN.md, decision 6).
//
// The gateway hands the Gate every remote event (Queue, as its remote queue)
// and asks it before anything leaves for a remote network (CheckOutbound, as
// its outbound check). The gate evaluates the policy, records outside
// contacts, holds the events of chats that wait for an admin's approval,
// delivers them once approved, keeps portals under the admins' control
// (power level, revocation, forbidden room changes undone) and writes every
// decision to the audit log. Admin commands and the HTTP API (package
// governance/admin) drive it through its exported methods.
package gate

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	up "go.mau.fi/util/configupgrade"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/governance/store"
)

// ErrNotStarted is returned while the gate has not started (or has
// stopped): nothing passes then, and a connector tries again later.
var ErrNotStarted = fmt.Errorf("governance gate is %w", remote.ErrNotReady)

// Gate is the governance between the connectors and the bridge core. It is a
// gateway.Component (its config is `network.governance`).
type Gate struct {
	// Next is where the gate hands the events it lets through; remote.Direct
	// unless a test says otherwise.
	Next remote.Queue
	// Now is the clock of the gate and of the stores; time.Now when nil.
	Now func() time.Time
	// ExpiryInterval is how often pending requests are checked for expiry,
	// RetentionInterval how often the audit log is purged, LoginInterval how
	// often logins are compared for logouts, AnchorInterval how often the
	// audit chain's head is checked for being due for publication.
	// DeadlineInterval how often migration deadlines are checked.
	ExpiryInterval, RetentionInterval, LoginInterval, AnchorInterval, DeadlineInterval time.Duration
	// EncryptAdminRoom makes the admin room the gate creates encrypted.
	EncryptAdminRoom bool
	// CountWindow is how long routine messages' counts are gathered before
	// they are written together (counts.go); 0 writes each at once.
	CountWindow time.Duration

	cfg Config
	br  *bridgev2.Bridge

	// Set by Start.
	DB        *dbutil.Database
	Audit     *audit.Log
	Contacts  *audit.Registry
	Policy    *policy.Engine
	Approvals *approval.Store
	// Migration is the migration directory: links, claim codes, statuses.
	Migration *migration.Directory
	// Seal is the sealer of contact_hash_key (nil without one: hashed mode
	// off); Start hands it to every store.
	Seal  *seal.Sealer
	state *stateStore

	started atomic.Bool
	cancel  context.CancelFunc
	bg      context.Context
	wg      sync.WaitGroup

	chats  chatTable
	idents identityCache
	// notices is held for reading from a request notice's send until its
	// event is remembered: a reaction on a notice not found yet waits for
	// the notices in flight (RequestForNotice).
	notices sync.RWMutex
	counts  atomic.Pointer[counter] // nil: each count written at once

	roomMu      sync.Mutex
	adminRoom   id.RoomID    // guarded by roomMu
	adminRoomID atomic.Value // id.RoomID, for IsAdminRoom

	loginMu       sync.Mutex
	pendingLogins []*bridgev2.UserLogin
}

// New returns a gate with the default config; the gateway decodes the
// `network.governance` section into it.
func New() *Gate {
	return &Gate{Next: remote.Direct, cfg: defaultConfig(),
		ExpiryInterval: time.Minute, RetentionInterval: time.Hour, LoginInterval: time.Minute, AnchorInterval: time.Hour, DeadlineInterval: time.Minute,
		CountWindow: DefaultCountWindow}
}

// Config returns the gate's config (for the admin package and tests).
func (g *Gate) Config() *Config { return &g.cfg }

// Bridge returns the bridge the gate runs in.
func (g *Gate) Bridge() *bridgev2.Bridge { return g.br }

// IsAdmin reports whether userID is a configured admin.
func (g *Gate) IsAdmin(userID id.UserID) bool { return g.cfg.IsAdmin(userID) }

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// ConfigKey implements gateway.Component.
func (g *Gate) ConfigKey() string { return ConfigKey }

// GetConfig implements gateway.Component.
func (g *Gate) GetConfig() (example string, data any, upgrader up.Upgrader) {
	return ExampleConfig, &g.cfg, up.SimpleUpgrader(upgradeConfig)
}

// ValidateConfig implements gateway.Component: an invalid rule stops the
// gateway with a message naming it.
func (g *Gate) ValidateConfig() error { return g.cfg.Validate() }

// Init implements gateway.Component. No I/O.
func (g *Gate) Init(br *bridgev2.Bridge) { g.br = br }

// Start implements gateway.Component: it opens the governance tables, loads
// the policy (an invalid stored rule is an error: the gateway does not start)
// and starts the background jobs.
func (g *Gate) Start(ctx context.Context) error {
	if err := g.cfg.Validate(); err != nil {
		return err
	}
	db, err := store.Open(ctx, g.br.DB.Database)
	if err != nil {
		return err
	}
	g.DB = db
	if g.Seal, err = seal.New([]byte(g.cfg.ContactHashKey)); err != nil {
		return err
	}
	g.Audit = audit.NewLog(db)
	g.Audit.Now = g.now
	g.Audit.Seal = g.Seal
	g.Contacts = audit.NewSealedRegistry(db, g.Audit, g.Seal)
	g.Contacts.Now = g.now
	if g.Policy, err = policy.NewEngine(ctx, g.cfg.Policy, db, g.Audit); err != nil {
		return err
	}
	g.Policy.Now = g.now
	g.Approvals = approval.NewStore(db, g.Audit, time.Duration(g.cfg.ApprovalTTL))
	g.Approvals.Now = g.now
	g.Approvals.Seal = g.Seal
	g.Migration = migration.New(db, g.Audit, g.Contacts, g.Seal)
	g.Migration.Now = g.now
	g.Migration.StaffLinks = migration.StaffLinks(g.cfg.Migration.StaffLinks)
	g.Migration.ClaimTTL = time.Duration(g.cfg.Migration.ClaimTTL)
	if g.state, err = openStore(ctx, g.br.DB.Database, g.Seal); err != nil {
		return err
	}
	if err = g.sealExisting(ctx); err != nil {
		return err
	}
	for network := range g.cfg.Migration.Deadlines {
		g.closeIfDue(ctx, network)
	}
	bg, cancel := context.WithCancel(zerolog.Ctx(ctx).With().Str("component", "governance").Logger().WithContext(context.Background()))
	g.bg, g.cancel = bg, cancel
	if g.CountWindow > 0 {
		c := newCounter(g.CountWindow, g.writeCounts)
		g.counts.Store(c)
		g.Contacts.Pending = c.flush
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			c.run(bg)
		}()
	}
	g.started.Store(true)

	g.loginMu.Lock()
	pending := g.pendingLogins
	g.pendingLogins = nil
	g.loginMu.Unlock()
	for _, login := range pending {
		g.noteLogin(bg, login)
	}
	g.goLoop(expiryInterval(g.ExpiryInterval, time.Duration(g.cfg.ApprovalTTL)), g.ExpireDue)
	if g.cfg.Retention > 0 {
		g.goLoop(g.RetentionInterval, g.purge)
	}
	g.goLoop(g.LoginInterval, g.reconcileLogins)
	g.goLoop(g.anchorCheckInterval(), g.publishHeadIfDue)
	if len(g.cfg.Migration.Deadlines) > 0 {
		g.goLoop(g.DeadlineInterval, g.ApplyDeadlines)
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.recoverJob("start-up")
		if len(g.cfg.Admins) == 0 && g.cfg.AdminRoom == "" {
			zerolog.Ctx(bg).Info().Msg("No governance admins configured: no admin room")
		} else if _, err := g.AdminRoom(bg); err != nil && bg.Err() == nil {
			zerolog.Ctx(bg).Err(err).Msg("Failed to set up the governance admin room")
		}
		g.ReplayUndelivered(bg)
	}()
	return nil
}

// sealExisting, in hashed mode, seals what the gate and the approval store
// kept before hashed mode was turned on (see README: the audit log and the
// contact registry keep what they wrote).
func (g *Gate) sealExisting(ctx context.Context) error {
	if !g.Seal.On() {
		return nil
	}
	n, err := g.state.sealExisting(ctx)
	if err != nil {
		return fmt.Errorf("failed to seal the gate's tables: %w", err)
	}
	m, err := g.Approvals.SealExisting(ctx)
	if err != nil {
		return fmt.Errorf("failed to seal approval requests: %w", err)
	}
	if n+m > 0 {
		zerolog.Ctx(ctx).Info().Int("rows", n+m).Msg("Sealed governance rows stored before contact_hash_key was set")
	}
	return nil
}

// goLoop runs job now and then every interval until Stop.
func (g *Gate) goLoop(interval time.Duration, job func(ctx context.Context) error) {
	if interval <= 0 {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			if err := g.runJob(job); err != nil && g.bg.Err() == nil {
				zerolog.Ctx(g.bg).Err(err).Msg("Governance background job failed")
			}
			select {
			case <-g.bg.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

// runJob runs one background job; a panic in it is logged and becomes its
// error, and the loop goes on.
func (g *Gate) runJob(job func(ctx context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in governance background job: %v", p)
			zerolog.Ctx(g.bg).Error().Str("stack", string(debug.Stack())).Msg("Panic in governance background job")
		}
	}()
	return job(g.bg)
}

// recoverJob logs a panic of a one-off background goroutine instead of
// ending the process. Call it deferred.
func (g *Gate) recoverJob(what string) {
	if p := recover(); p != nil {
		zerolog.Ctx(g.bg).Error().Any("panic", p).Str("job", what).Str("stack", string(debug.Stack())).
			Msg("Panic in governance background job")
	}
}

// expiryInterval is how often pending requests are checked for expiry:
// every interval, or more often when approval_ttl is short (a quarter of it,
// at least a second), so that a request expires close to its time and not up
// to a whole interval late. An interval of 0 (tests) switches the check off.
func expiryInterval(interval, ttl time.Duration) time.Duration {
	if interval <= 0 || ttl <= 0 {
		return interval
	}
	if quarter := ttl / 4; quarter < interval {
		return max(quarter, time.Second)
	}
	return interval
}

// Stop implements gateway.Component: it stops the background jobs.
func (g *Gate) Stop() {
	if !g.started.Swap(false) {
		return
	}
	g.cancel()
	g.wg.Wait()
}

// networkOf returns the network of a prefixed ID.
func networkOf(id string) string { return netid.Network(id) }

// networkName is the human name of a network.
func networkName(network string) string { return NetworkName(network) }

// NetworkName is the human name of a network ("Telegram", "WhatsApp").
func NetworkName(network string) string {
	switch network {
	case policy.NetworkTelegram:
		return "Telegram"
	case policy.NetworkWhatsApp:
		return "WhatsApp"
	default:
		return network
	}
}

func (g *Gate) purge(ctx context.Context) error {
	res, err := g.Audit.Purge(ctx, g.now().Add(-time.Duration(g.cfg.Retention)), audit.ActorSystem)
	if err != nil {
		return fmt.Errorf("failed to purge audit log: %w", err)
	}
	if res.Purged > 0 {
		zerolog.Ctx(ctx).Info().Int64("purged", res.Purged).Msg("Purged old audit log entries")
	}
	return nil
}

// PurgeNow runs the retention purge once (for tests and admins).
func (g *Gate) PurgeNow(ctx context.Context) error { return g.purge(ctx) }
