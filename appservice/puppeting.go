package appservice

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
	up "go.mau.fi/util/configupgrade"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/internal/clock"
)

var (
	_ gateway.Component     = (*puppeting)(nil)
	_ gateway.LoginObserver = (*puppeting)(nil)
)

//go:embed puppeting-example.yaml
var puppetingExample string

// puppetingVersionTable is the version table of the double-puppeting schema.
const puppetingVersionTable = "passerelle_puppeting_version"

//go:embed upgrades/puppeting/*.sql
var rawPuppetingUpgrades embed.FS

var puppetingUpgradeTable = dbutil.BuildUpgradeTable().WithFSPath(rawPuppetingUpgrades, "upgrades/puppeting").Finish()

// How staff read receipts and typing reach the gateway (PuppetingConfig.Ephemeral).
const (
	ephemeralAuto = "auto"
	ephemeralSync = "sync"
	ephemeralPush = "push"
)

// DefaultDoublePuppetRegistration is the second registration's file name,
// next to the main registration.
const DefaultDoublePuppetRegistration = "doublepuppet-registration.yaml"

// PuppetingConfig is the `network.double_puppet` section.
type PuppetingConfig struct {
	Enabled      bool   `yaml:"enabled"`
	Registration string `yaml:"registration"`
	UsersRegex   string `yaml:"users_regex"`
	Ephemeral    string `yaml:"ephemeral"`
}

func (cfg PuppetingConfig) ephemeral() string {
	if e := strings.ToLower(strings.TrimSpace(cfg.Ephemeral)); e != "" {
		return e
	}
	return ephemeralAuto
}

// puppeting is the gateway component of the Matrix side of a staff
// member's own account: automatic double puppeting through a second
// appservice registration (the as_token method of bridgev2), a per-user
// switch that survives restarts, the receipt-and-typing sync on homeservers
// that do not push ephemeral events, and the ghosts' presence.
type puppeting struct {
	cfg   PuppetingConfig
	br    *bridgev2.Bridge
	db    *dbutil.Database
	log   zerolog.Logger
	clock clock.Clock
	own   *ownReceipts

	// dispatch hands an event to bridgev2 as if the homeserver had pushed
	// it (the Matrix connector's event processor); set by useMatrix.
	dispatch func(ctx context.Context, evt *event.Event)
	// pushed is set once the homeserver was seen pushing ephemeral events.
	pushed atomic.Bool

	presence *ghostPresence

	mu      sync.Mutex
	runCtx  context.Context
	stopAll context.CancelFunc
	loops   map[id.UserID]*syncLoop
	wg      sync.WaitGroup
}

type syncLoop struct{ cancel context.CancelFunc }

func newPuppeting() *puppeting {
	return &puppeting{
		cfg:   PuppetingConfig{Enabled: true, Registration: DefaultDoublePuppetRegistration, Ephemeral: ephemeralAuto},
		clock: clock.Real{},
		own:   newOwnReceipts(),
		loops: map[id.UserID]*syncLoop{},
	}
}

func (p *puppeting) ConfigKey() string { return "double_puppet" }

func (p *puppeting) GetConfig() (example string, data any, upgrader up.Upgrader) {
	return puppetingExample, &p.cfg, up.SimpleUpgrader(func(helper up.Helper) {
		helper.Copy(up.Bool, "enabled")
		helper.Copy(up.Str, "registration")
		helper.Copy(up.Str, "users_regex")
		helper.Copy(up.Str, "ephemeral")
	})
}

func (p *puppeting) ValidateConfig() error {
	switch p.cfg.ephemeral() {
	case ephemeralAuto, ephemeralSync, ephemeralPush:
	default:
		return fmt.Errorf("invalid ephemeral %q (use auto, sync or push)", p.cfg.Ephemeral)
	}
	if p.cfg.UsersRegex != "" {
		if _, err := regexp.Compile(p.cfg.UsersRegex); err != nil {
			return fmt.Errorf("invalid users_regex: %w", err)
		}
	}
	return nil
}

func (p *puppeting) Init(br *bridgev2.Bridge) {
	p.br = br
	if br == nil {
		return
	}
	p.log = br.Log.With().Str("component", "double_puppet").Logger()
	if proc, ok := br.Commands.(*commands.Processor); ok {
		proc.AddHandlers(p.command())
	}
	p.presence = newGhostPresence(br, p.log.With().Str("part", "presence").Logger())
}

// useMatrix connects the component to bridgev2's Matrix connector: synced
// events go to its event processor, and pushed ones tell that the
// homeserver pushes.
func (p *puppeting) useMatrix(mc *matrix.Connector) {
	p.dispatch = mc.EventProcessor.Dispatch
	mc.EventProcessor.On(event.EphemeralEventReceipt, p.sawEphemeral)
	mc.EventProcessor.On(event.EphemeralEventTyping, p.sawEphemeral)
}

// sawEphemeral notices ephemeral events the homeserver pushed to the
// appservice (the sync's own carry SourceJoin as well).
func (p *puppeting) sawEphemeral(_ context.Context, evt *event.Event) {
	if evt.Mautrix.EventSource != event.SourceEphemeral || p.pushed.Swap(true) {
		return
	}
	if p.cfg.ephemeral() == ephemeralAuto {
		p.log.Info().Msg("The homeserver pushes receipts and typing to the appservice; stopping the receipt sync")
		p.stopLoops()
	}
}

func (p *puppeting) Start(ctx context.Context) error {
	if p.br == nil || p.br.DB == nil {
		return nil
	}
	db, err := openSchema(ctx, p.br.DB.Database, puppetingVersionTable, puppetingUpgradeTable, "double-puppeting", dbutil.ZeroLogger(p.log))
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.db = db
	p.runCtx, p.stopAll = context.WithCancel(p.log.WithContext(context.Background()))
	p.mu.Unlock()
	p.presence.start(p.runCtx)
	return nil
}

func (p *puppeting) Stop() {
	p.mu.Lock()
	if p.stopAll != nil {
		p.stopAll()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// LoginLoaded starts the receipt sync of the login's staff member. No I/O
// here: the loop does it. The sync ends when the staff member has no login
// left (checked between two syncs).
func (p *puppeting) LoginLoaded(login *bridgev2.UserLogin) {
	p.startLoop(login.UserMXID)
}

// local reports whether userID is on the gateway's homeserver.
func (p *puppeting) local(userID id.UserID) bool {
	_, server, err := userID.Parse()
	return err == nil && p.br != nil && server == p.br.Matrix.ServerName()
}

// allowed tells whether bridgev2 may make a double puppet for userID: for
// users of other homeservers bridgev2's own rules apply (login-matrix with
// an access token); for local users the config switch and the user's own.
func (p *puppeting) allowed(ctx context.Context, userID id.UserID) bool {
	if !p.local(userID) {
		return true
	}
	if !p.cfg.Enabled {
		return false
	}
	off, err := p.isOff(ctx, userID)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to read the double-puppeting switch; leaving it off")
		return false
	}
	return !off
}

var errNotStarted = errors.New("double puppeting is not started")

func (p *puppeting) database() (*dbutil.Database, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return nil, errNotStarted
	}
	return p.db, nil
}

func (p *puppeting) isOff(ctx context.Context, userID id.UserID) (bool, error) {
	db, err := p.database()
	if err != nil {
		return false, err
	}
	var one int
	err = db.QueryRow(ctx, `SELECT 1 FROM passerelle_double_puppet_off WHERE mxid=$1`, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("failed to read the double-puppeting switch: %w", err)
	}
	return true, nil
}

func (p *puppeting) setOff(ctx context.Context, userID id.UserID, off bool) error {
	db, err := p.database()
	if err != nil {
		return err
	}
	if off {
		_, err = db.Exec(ctx, `INSERT INTO passerelle_double_puppet_off (mxid, since) VALUES ($1, $2) ON CONFLICT (mxid) DO NOTHING`,
			userID, p.clock.Now().UnixMilli())
	} else {
		_, err = db.Exec(ctx, `DELETE FROM passerelle_double_puppet_off WHERE mxid=$1`, userID)
	}
	if err != nil {
		return fmt.Errorf("failed to save the double-puppeting switch: %w", err)
	}
	return nil
}

func (p *puppeting) since(ctx context.Context, userID id.UserID) (string, error) {
	db, err := p.database()
	if err != nil {
		return "", err
	}
	var token string
	err = db.QueryRow(ctx, `SELECT next_batch FROM passerelle_ephemeral_sync WHERE mxid=$1`, userID).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("failed to read the sync position: %w", err)
	}
	return token, nil
}

func (p *puppeting) setSince(ctx context.Context, userID id.UserID, token string) error {
	db, err := p.database()
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `INSERT INTO passerelle_ephemeral_sync (mxid, next_batch) VALUES ($1, $2)
		ON CONFLICT (mxid) DO UPDATE SET next_batch=excluded.next_batch`, userID, token)
	if err != nil {
		return fmt.Errorf("failed to save the sync position: %w", err)
	}
	return nil
}

// syncWanted tells whether receipts and typing must be fetched with /sync.
func (p *puppeting) syncWanted() bool {
	switch p.cfg.ephemeral() {
	case ephemeralSync:
		return true
	case ephemeralPush:
		return false
	default:
		return !p.pushed.Load()
	}
}

// startLoop starts the staff member's receipt sync, unless it runs already
// or is not wanted.
func (p *puppeting) startLoop(userID id.UserID) {
	if !p.cfg.Enabled || !p.local(userID) || !p.syncWanted() || p.dispatch == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runCtx == nil || p.runCtx.Err() != nil || p.loops[userID] != nil {
		return
	}
	ctx, cancel := context.WithCancel(p.runCtx)
	loop := &syncLoop{cancel: cancel}
	p.loops[userID] = loop
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			if p.loops[userID] == loop {
				delete(p.loops, userID)
			}
			p.mu.Unlock()
			cancel()
		}()
		defer func() {
			if r := recover(); r != nil {
				p.log.Error().Any("panic", r).Str("stack", string(debug.Stack())).Msg("Receipt sync panicked")
			}
		}()
		p.runLoop(ctx, userID)
	}()
}

func (p *puppeting) stopLoop(userID id.UserID) {
	p.mu.Lock()
	loop := p.loops[userID]
	delete(p.loops, userID)
	p.mu.Unlock()
	if loop != nil {
		loop.cancel()
	}
}

func (p *puppeting) stopLoops() {
	p.mu.Lock()
	loops := p.loops
	p.loops = map[id.UserID]*syncLoop{}
	p.mu.Unlock()
	for _, loop := range loops {
		loop.cancel()
	}
}

func (p *puppeting) runLoop(ctx context.Context, userID id.UserID) {
	log := p.log.With().Stringer("user_id", userID).Logger()
	ctx = log.WithContext(ctx)
	user, err := p.br.GetExistingUserByMXID(ctx, userID)
	if err != nil || user == nil {
		log.Debug().Err(err).Msg("No user for the receipt sync")
		return
	}
	asIntent, ok := user.DoublePuppet(ctx).(*matrix.ASIntent)
	if !ok || asIntent == nil {
		log.Debug().Msg("No double puppet: no receipt sync")
		return
	}
	log.Debug().Msg("Starting the receipt and typing sync")
	s := &ephemeralSyncer{
		client:   asIntent.Matrix.Client,
		user:     userID,
		store:    p,
		isPortal: p.isPortal,
		own:      p.own,
		deliver:  p.handOn,
		clock:    p.clock,
		log:      log,
		// bridgev2 adds a login to its user under the lock that
		// GetExistingUserByMXID took above, so a new login is there.
		done: func() bool { return !p.syncWanted() || len(user.GetUserLogins()) == 0 },
	}
	s.Run(ctx)
}

// handOn gives a synced receipt or typing notice to bridgev2.
func (p *puppeting) handOn(ctx context.Context, evt *event.Event) {
	log := zerolog.Ctx(ctx).Debug().Stringer("room_id", evt.RoomID).Stringer("event_type", evt.Type)
	switch evt.Type {
	case event.EphemeralEventReceipt:
		ids := make([]string, 0, 1)
		for eventID := range *evt.Content.AsReceipt() {
			ids = append(ids, eventID.String())
		}
		log = log.Strs("receipt_event_ids", ids)
	case event.EphemeralEventTyping:
		log = log.Int("typing_users", len(evt.Content.AsTyping().UserIDs))
	case event.EventRedaction:
		log = log.Stringer("event_id", evt.ID)
	}
	log.Msg("Handing a synced event to the bridge")
	p.dispatch(ctx, evt)
}

func (p *puppeting) isPortal(ctx context.Context, roomID id.RoomID) bool {
	portal, err := p.br.GetPortalByMXID(ctx, roomID)
	return err == nil && portal != nil
}

// wrapIntent records the receipts a staff member's double puppet sets.
func (p *puppeting) wrapIntent(userID id.UserID, intent bridgev2.MatrixAPI) {
	if as, ok := intent.(*matrix.ASIntent); ok && as != nil && as.Matrix != nil {
		as.Matrix.Client.RequestHook = p.own.requestHook(userID)
	}
}

func (p *puppeting) command() *commands.FullHandler {
	return &commands.FullHandler{
		Name: "double-puppet",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionAuth,
			Description: "Show or switch double puppeting: what you send and read on your phone appears from your own Matrix account.",
			Args:        "[on|off]",
		},
		Func: p.cmd,
	}
}

func (p *puppeting) cmd(ce *commands.Event) {
	user := ce.User
	if !p.local(user.MXID) {
		ce.Reply("Automatic double puppeting is for accounts on %s; use `login-matrix` with an access token.", p.br.Matrix.ServerName())
		return
	}
	if !p.cfg.Enabled {
		ce.Reply("Double puppeting is switched off in the gateway's config.")
		return
	}
	arg := ""
	if len(ce.Args) > 0 {
		arg = strings.ToLower(ce.Args[0])
	}
	switch arg {
	case "":
		off, err := p.isOff(ce.Ctx, user.MXID)
		switch {
		case err != nil:
			ce.Log.Err(err).Msg("Failed to read the double-puppeting switch")
			ce.Reply("Failed to read your double-puppeting setting.")
		case off:
			ce.Reply("Double puppeting is **off** for you: messages you send from your phone appear from your own remote account's ghost. `double-puppet on` switches it on.")
		case user.DoublePuppet(ce.Ctx) == nil:
			ce.Reply("Double puppeting is on for you but does not work: the homeserver refused it (is the double-puppet registration installed?).")
		default:
			ce.Reply("Double puppeting is **on** for you: messages you send from your phone appear from your Matrix account. `double-puppet off` switches it off.")
		}
	case "off":
		if err := p.setOff(ce.Ctx, user.MXID, true); err != nil {
			ce.Log.Err(err).Msg("Failed to switch double puppeting off")
			ce.Reply("Failed to switch double puppeting off.")
			return
		}
		p.stopLoop(user.MXID)
		user.LogoutDoublePuppet(ce.Ctx)
		ce.Log.Info().Msg("Double puppeting switched off")
		ce.Reply("Double puppeting is now **off** for you: messages you send from your phone appear from your own remote account's ghost.")
	case "on":
		if err := p.setOff(ce.Ctx, user.MXID, false); err != nil {
			ce.Log.Err(err).Msg("Failed to switch double puppeting on")
			ce.Reply("Failed to switch double puppeting on.")
			return
		}
		// Forget the cached (absent) double puppet, then make it again.
		user.LogoutDoublePuppet(ce.Ctx)
		if user.DoublePuppet(ce.Ctx) == nil {
			ce.Reply("Double puppeting is on for you, but the homeserver refused it (is the double-puppet registration installed?).")
			return
		}
		if len(user.GetUserLogins()) > 0 {
			p.startLoop(user.MXID)
		}
		ce.Log.Info().Msg("Double puppeting switched on")
		ce.Reply("Double puppeting is now **on** for you: messages you send from your phone appear from your Matrix account.")
	default:
		ce.Reply("**Usage:** `double-puppet [on|off]`")
	}
}
