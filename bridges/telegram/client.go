package telegram

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/lru"
)

var (
	_ bridgev2.NetworkAPI           = (*Client)(nil)
	_ bridgev2.NetworkAPIWithUserID = (*Client)(nil)
)

// Bridge state error codes sent by the connector.
const (
	stateErrDisconnected status.BridgeStateErrorCode = "tg-disconnected"
	stateErrLoggedOut    status.BridgeStateErrorCode = "tg-logged-out"
	// stateErrSessionRevoked: Telegram answered 401 (AUTH_KEY_UNREGISTERED,
	// SESSION_REVOKED…) to a session that worked: the user ended it from
	// another device, or Telegram did.
	stateErrSessionRevoked status.BridgeStateErrorCode = "tg-session-revoked"
)

// ErrLoggedOut means Telegram no longer accepts the stored session.
var ErrLoggedOut = errors.New("telegram session is no longer valid")

// ErrNotConnected is returned by calls that need a running connection.
var ErrNotConnected = errors.New("not connected to Telegram")

// Client is the NetworkAPI of one logged-in Telegram account.
type Client struct {
	main   *TelegramConnector
	login  *bridgev2.UserLogin
	userID int64

	loggedIn atomic.Bool
	api      atomic.Pointer[tg.Client]
	mgr      atomic.Pointer[runningManager]
	// state is the update state storage of the current connection.
	state atomic.Pointer[stateGuard]

	runLock sync.Mutex
	// creating is held while a group is created from Matrix, from the
	// request to the login's marking in the new portal: the group's own
	// updates wait for it (see deliver).
	creating sync.RWMutex
	// newGroups are the groups created from Matrix whose room may still
	// be in creation: their first updates wait for it (see deliver).
	newGroups *lru.Cache[networkid.PortalID, *newGroup]
	cancel    context.CancelFunc
	done      chan struct{}

	users userCache
	votes pollVotes
	// customEmoji caches the fallback emoji of custom emoji.
	customEmoji *lru.Cache[int64, string]
	// sentEdits are the edits sent from Matrix, by message, with their
	// edit date: Telegram's echo of them is not bridged back.
	sentEdits *lru.Cache[networkid.MessageID, int]
	// pendingReactions are reactions that arrived before their message
	// was bridged; pendingLock orders the lookup and the hand-over.
	pendingReactions *lru.Cache[networkid.MessageID, *tg.UpdateMessageReactions]
	pendingLock      sync.Mutex
	// delivered are the recent messages the gate took (bridged, or held
	// while their chat waits for approval, when they are not in the
	// message table): a deletion names only IDs, and a reaction's target
	// must be known, also for a held message.
	delivered *lru.Cache[networkid.MessageID, deliveredMessage]
	// channels caches the supergroups and channels this account saw.
	channels *lru.Cache[int64, *tg.Channel]
	// channelMembers are the members of each group the connector saw
	// (bounded per group by remote.MaxChatMembers), for the gate.
	channelMembers *lru.Cache[int64, []int64]
	// topics are the titles of the forum topics seen.
	topics *lru.Cache[topicKey, string]
	// leftFromMatrix are the groups this account left because its staff
	// member left the portal: Telegram's echo of the leave is dropped.
	leftFromMatrix *lru.Cache[tgid.Peer, bool]

	// catchUpMu guards the catch-up recorded in the login's metadata.
	catchUpMu sync.Mutex

	// connected gives back the connection slot of the attempt under way
	// (see ConnectLimiter).
	connected atomic.Pointer[func()]

	// backoff between reconnection attempts; tests shorten it.
	minBackoff, maxBackoff time.Duration
}

func newClient(main *TelegramConnector, login *bridgev2.UserLogin, userID int64) *Client {
	c := &Client{main: main, login: login, userID: userID, minBackoff: 2 * time.Second, maxBackoff: 2 * time.Minute}
	c.users.users = lru.New[int64, *tg.User](userCacheSize)
	c.votes.polls = lru.New[networkid.MessageID, *pollVoteState](pollVoteCacheSize)
	c.customEmoji = lru.New[int64, string](customEmojiCacheSize)
	c.sentEdits = lru.New[networkid.MessageID, int](sentEditsCacheSize)
	c.pendingReactions = lru.New[networkid.MessageID, *tg.UpdateMessageReactions](pendingReactionsCacheSize)
	c.delivered = lru.New[networkid.MessageID, deliveredMessage](deliveredCacheSize)
	c.channels = lru.New[int64, *tg.Channel](channelCacheSize)
	c.channelMembers = lru.New[int64, []int64](channelMembersCacheSize)
	c.topics = lru.New[topicKey, string](topicCacheSize)
	c.leftFromMatrix = lru.New[tgid.Peer, bool](leftFromMatrixCacheSize)
	c.newGroups = lru.New[networkid.PortalID, *newGroup](newGroupsCacheSize)
	c.loggedIn.Store(!meta.Get[tgid.UserLoginMetadata](login.Metadata).LoggedOut)
	return c
}

// GetUserID implements bridgev2.NetworkAPIWithUserID.
func (c *Client) GetUserID() networkid.UserID {
	return tgid.MakeUserID(c.userID)
}

// IsThisUser implements bridgev2.NetworkAPI.
func (c *Client) IsThisUser(_ context.Context, userID networkid.UserID) bool {
	return userID == tgid.MakeUserID(c.userID)
}

// IsLoggedIn reports whether the stored session is believed valid. No I/O.
func (c *Client) IsLoggedIn() bool {
	return c.loggedIn.Load()
}

// Connect starts the connection loop in the background. It never fails:
// problems are reported through bridge states.
func (c *Client) Connect(ctx context.Context) {
	c.runLock.Lock()
	defer c.runLock.Unlock()
	if c.cancel != nil {
		return
	}
	runCtx, cancel := context.WithCancel(c.login.Log.WithContext(context.WithoutCancel(ctx)))
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.runLoop(runCtx, c.done)
}

// Disconnect stops the connection loop and waits (briefly) for it to end.
func (c *Client) Disconnect() {
	c.runLock.Lock()
	cancel, done := c.cancel, c.done
	c.cancel, c.done = nil, nil
	c.runLock.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.login.Log.Warn().Msg("Telegram client did not stop in time")
	}
}

func (c *Client) runLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	log := zerolog.Ctx(ctx)
	backoff := c.minBackoff
	for ctx.Err() == nil {
		c.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnecting})
		// A slot among the logins connecting at once, held until this
		// one is connected or its attempt ends.
		release, err := c.main.connects.Acquire(ctx)
		if err != nil {
			return
		}
		c.connected.Store(&release)
		// An attempt that hangs gives its slot back after a while.
		slotTimer := time.AfterFunc(remote.ConnectSlotTimeout, release)
		started := time.Now()
		err = c.runOnceRecovered(ctx)
		slotTimer.Stop()
		release()
		c.api.Store(nil)
		c.mgr.Store(nil)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrLoggedOut) {
			log.Warn().Err(err).Msg("Telegram session is no longer valid")
			c.markLoggedOut(ctx, err)
			return
		}
		wait := remote.Jitter(backoff)
		log.Warn().Err(err).Dur("retry_in", wait).Msg("Telegram connection ended, reconnecting")
		c.login.BridgeState.Send(status.BridgeState{
			StateEvent: status.StateTransientDisconnect,
			Error:      stateErrDisconnected,
			Message:    fmt.Sprintf("Disconnected from Telegram: %v", err),
		})
		if time.Since(started) > c.maxBackoff {
			backoff = c.minBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.maxBackoff)
	}
}

// markLoggedOut records that Telegram no longer accepts the session
// (cause: why) and tells the staff member; the admins hear of it from the
// BAD_CREDENTIALS state.
func (c *Client) markLoggedOut(ctx context.Context, cause error) {
	c.loggedIn.Store(false)
	md := meta.Get[tgid.UserLoginMetadata](c.login.Metadata)
	if !md.LoggedOut {
		md.LoggedOut = true
		if err := c.login.Save(ctx); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to save logged-out flag")
		}
	}
	code, message := loggedOutState(cause)
	c.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateBadCredentials, Error: code, Message: message})
	if err := remote.ManagementNotice(ctx, c.login, "Telegram: "+message+" (account "+c.accountName()+")."); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to post a notice to the management room")
	}
}

// loggedOutState is the bridge state's error code and message for a
// session Telegram ended.
func loggedOutState(cause error) (status.BridgeStateErrorCode, string) {
	if rpcErr, ok := tgerr.As(cause); ok && rpcErr.Code == 401 {
		return stateErrSessionRevoked, "Telegram ended this session (" + rpcErr.Type + "): it was terminated from another device " +
			"(Settings → Devices) or logged out; log in again to keep bridging"
	}
	return stateErrLoggedOut, "Telegram ended this session; log in again"
}

// accountName is how notices name the account.
func (c *Client) accountName() string {
	if c.login.RemoteName != "" {
		return c.login.RemoteName
	}
	return strconv.FormatInt(c.userID, 10)
}

// newTelegramClient builds a gotd client on the account's stored session.
func (c *Client) newTelegramClient(ctx context.Context, handler telegram.UpdateHandler) *telegram.Client {
	return telegram.NewClient(c.clientOptions(ctx, handler))
}

// clientOptions are the options of a gotd client on the account's stored
// session.
func (c *Client) clientOptions(ctx context.Context, handler telegram.UpdateHandler) (int, string, telegram.Options) {
	opts := c.main.Config.clientOptions()
	opts.SessionStorage = c.main.Store.Session(c.userID)
	opts.Logger = gotdLogger(zerolog.Ctx(ctx).With().Str("component", "gotd").Logger())
	if handler != nil {
		opts.UpdateHandler = handler
	}
	opts.OnConnectionState = func(s telegram.ConnectionState) {
		switch s {
		case telegram.ConnectionStateReady:
			if c.api.Load() != nil {
				c.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnected})
			}
		case telegram.ConnectionStateDisconnected:
			c.login.BridgeState.Send(status.BridgeState{
				StateEvent: status.StateTransientDisconnect,
				Error:      stateErrDisconnected,
				Message:    "Connection to Telegram lost, reconnecting",
			})
		}
	}
	apiID, apiHash := c.main.Config.apiCredentials()
	return apiID, apiHash, opts
}

// runOnceRecovered is runOnce; a panic ends the connection with an error, and
// the loop reconnects.
func (c *Client) runOnceRecovered(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			zerolog.Ctx(ctx).Error().Any("panic", p).Str("stack", string(debug.Stack())).Msg("Panic in the Telegram connection")
			err = fmt.Errorf("panic in the Telegram connection: %v", p)
		}
	}()
	return c.runOnce(ctx)
}

func (c *Client) runOnce(ctx context.Context) error {
	if ok, err := c.main.Store.HasSession(ctx, c.userID); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: no session stored", ErrLoggedOut)
	}
	// The state's moves are written at most every second, and when the
	// connection ends; those of the common sequence once the chats' lanes
	// have handled the updates before them.
	buffer := newStateBuffer(c.main.Store.UpdateState(), c.main.Clock, zerolog.Ctx(ctx).With().Str("component", "telegram_state").Logger())
	defer buffer.flushOrWarn(ctx)
	var guard *stateGuard
	lanes := remote.NewLanes(0, func(low uint64) { guard.caughtUp(low) })
	guard = newStateGuard(buffer, lanes)
	defer c.settleLanes(ctx, lanes)
	c.state.Store(guard)
	dispatcher := tg.NewUpdateDispatcher()
	c.registerHandlers(&dispatcher, lanes)
	mgr := updates.New(updates.Config{
		Handler:          dispatcher,
		Storage:          guard,
		AccessHasher:     c.main.Store.ChannelAccessHasher(),
		UserAccessHasher: c.main.Store.UserAccessHasher(),
		Logger:           gotdLogger(zerolog.Ctx(ctx).With().Str("component", "gotd_updates").Logger()),
		// The gap was recorded by differenceAPI; both run in the manager,
		// so that live updates come after the history they follow.
		OnTooLong: func() { c.catchUpAll(ctx) },
		OnChannelTooLong: func(channelID int64) {
			c.catchUpChannel(ctx, channelID)
		},
	})
	early := &startGate{mgr: mgr, seed: c.newChannelSeeder(guard)}
	apiID, apiHash, opts := c.clientOptions(ctx, early)
	// A session ended from another device gets 401 at its next call that
	// needs the authorization. gotd calls users.getUsers(self) on every
	// (re)connection, to subscribe to updates, and ignores a 401 there
	// unless told otherwise: returned here, the error is permanent for gotd
	// and ends Run. So a revocation that drops the connection (as the
	// simulator's does) is reported within a second of the reconnection;
	// one that leaves it open, at the updates manager's next fetch (after
	// at most 15 idle minutes) or the next call, as before.
	opts.OnSelfError = func(_ context.Context, err error) error {
		if auth.IsUnauthorized(err) {
			return fmt.Errorf("%w: %w", ErrLoggedOut, err)
		}
		return nil
	}
	client := telegram.NewClient(apiID, apiHash, opts)
	err := client.Run(ctx, func(ctx context.Context) error {
		st, err := client.Auth().Status(ctx)
		if err != nil {
			return fmt.Errorf("failed to check authorization: %w", err)
		}
		if !st.Authorized {
			return ErrLoggedOut
		}
		if st.User.ID != c.userID {
			return fmt.Errorf("%w: session belongs to user %d", ErrLoggedOut, st.User.ID)
		}
		c.users.put(st.User)
		c.api.Store(client.API())
		c.mgr.Store(&runningManager{mgr: early, ctx: ctx})
		err = mgr.Run(ctx, &differenceAPI{Client: client.API(), handler: dispatcher, tooLong: c.noteTooLong, channelTooLong: c.noteChannelTooLong}, c.userID, updates.AuthOptions{
			OnStart: func(ctx context.Context) {
				if release := c.connected.Load(); release != nil {
					(*release)() // connected: the next login may connect
				}
				early.open(ctx)
				c.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnected})
				go c.announcePresence(ctx)
				// A catch-up a restart interrupted goes on first: the
				// stored state is already past its gap.
				c.runPendingCatchUp(ctx)
				go c.chatsAtLogin(ctx)
			},
		})
		if auth.IsUnauthorized(err) {
			return fmt.Errorf("%w: %w", ErrLoggedOut, err)
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrLoggedOut) && auth.IsUnauthorized(err) {
		return fmt.Errorf("%w: %w", ErrLoggedOut, err)
	}
	return err
}

// LogoutRemote ends the Telegram session (auth.logOut) and forgets everything
// stored for the account.
func (c *Client) LogoutRemote(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	if api := c.api.Load(); api != nil {
		if _, err := api.AuthLogOut(ctx); err != nil {
			log.Warn().Err(err).Msg("Failed to log out of Telegram")
		}
		c.Disconnect()
	} else if ok, _ := c.main.Store.HasSession(ctx, c.userID); ok {
		c.Disconnect()
		client := c.newTelegramClient(ctx, nil)
		err := client.Run(ctx, func(ctx context.Context) error {
			_, err := client.API().AuthLogOut(ctx)
			return err
		})
		if err != nil {
			log.Warn().Err(err).Msg("Failed to log out of Telegram")
		}
	}
	c.loggedIn.Store(false)
	if err := c.main.Store.DeleteAccount(ctx, c.userID); err != nil {
		log.Err(err).Msg("Failed to delete stored Telegram session")
	}
}

// startGate holds the updates that arrive between the connection and the
// start of the updates manager. gotd's manager hands an update it gets
// before Run has loaded the stored state to the handler at once, unordered:
// after a restart, a message sent live in that window was bridged before
// the ones the manager then fetched from the server's difference. Held
// here, they go through the manager once it has its state, which puts them
// after the difference (or drops them as already seen).
type startGate struct {
	mgr *updates.Manager
	// seed runs on every update before the manager sees it (nil: none).
	seed func(ctx context.Context, u tg.UpdatesClass)

	mu     sync.Mutex
	opened bool
	held   []tg.UpdatesClass
}

// maxHeldAtStart bounds the updates held before the manager starts. Past
// it, an update is dropped: the manager's difference fetches it again from
// the stored state, as for any update a client missed.
const maxHeldAtStart = 1000

// Handle is the client's update handler.
func (g *startGate) Handle(ctx context.Context, u tg.UpdatesClass) error {
	if g.seed != nil {
		g.seed(ctx, u)
	}
	g.mu.Lock()
	if !g.opened {
		if len(g.held) < maxHeldAtStart {
			g.held = append(g.held, u)
		}
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	return g.mgr.Handle(ctx, u)
}

// open runs in the manager's OnStart, once its state is loaded: the held
// updates go to the manager from a goroutine (the manager's queue is short
// and starts draining only after OnStart returns), and updates that arrive
// meanwhile queue behind them, so that the manager gets everything in the
// order the server sent it. Order matters for channels: the first update
// of a channel the manager has no state for sets its pts, and an earlier
// one handed over later would be dropped as outdated.
func (g *startGate) open(ctx context.Context) {
	go func() {
		defer func() {
			if p := recover(); p != nil {
				zerolog.Ctx(ctx).Error().Any("panic", p).Msg("Panic while handing over updates held at start")
			}
		}()
		for {
			g.mu.Lock()
			held := g.held
			g.held = nil
			if len(held) == 0 {
				g.opened = true
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
			for _, u := range held {
				if err := g.mgr.Handle(ctx, u); err != nil {
					// The connection is ending; its difference comes
					// next time.
					g.mu.Lock()
					g.held = nil
					g.mu.Unlock()
					return
				}
			}
		}
	}()
}

// runningManager is the updates manager of the current connection, behind
// its start gate (updates fed before the manager has its state wait like
// the server's), and the context it runs in.
type runningManager struct {
	mgr *startGate
	ctx context.Context
}

// userCacheSize caps the Telegram users an account remembers.
const userCacheSize = 10000

// userCache keeps the Telegram users seen in updates, to name ghosts without
// asking the server again; the least recently used are forgotten first.
type userCache struct {
	users *lru.Cache[int64, *tg.User]
}

func (uc *userCache) put(u *tg.User) {
	if u == nil || u.Min {
		return
	}
	uc.users.Put(u.ID, u)
}

func (uc *userCache) get(id int64) (*tg.User, bool) {
	return uc.users.Get(id)
}

// stateGuard is the update state storage of one connection. Once an update
// could not be bridged (the connection ended while bridging kept failing),
// it stops moving the stored state: the next connection asks Telegram for
// the difference from before that update, and nothing is lost. The moves
// of the common state (pts, qts, date, seq) also wait behind the
// connection's lanes (lanes.go): a move is passed on once every update
// handed to them before it has been handled.
type stateGuard struct {
	updates.StateStorage
	frozen atomic.Bool
	moves  commonMoves // its lanes nil: moves pass at once
}

// newStateGuard guards store; lanes, if not nil, are the connection's.
func newStateGuard(store updates.StateStorage, lanes *remote.Lanes) *stateGuard {
	g := &stateGuard{StateStorage: store}
	g.moves.lanes = lanes
	return g
}

// caughtUp is the lanes' advance callback: the held moves they caught up
// with are passed on.
func (g *stateGuard) caughtUp(low uint64) {
	log := zerolog.Nop()
	if b, ok := g.StateStorage.(*stateBuffer); ok {
		log = b.log
	}
	g.moves.release(low, g.pass, &log)
}

func (g *stateGuard) pass(ctx context.Context, userID int64, h heldState) error {
	return passMoves(ctx, g.StateStorage, userID, h)
}

// common passes a move of the common state on, or holds it behind the
// lanes.
func (g *stateGuard) common(ctx context.Context, userID int64, apply func(*heldState)) error {
	if g.frozen.Load() {
		return nil
	}
	if g.moves.lanes == nil {
		var h heldState
		apply(&h)
		return g.pass(ctx, userID, h)
	}
	return g.moves.move(ctx, userID, apply, g.pass)
}

// freeze stops the stored state where it is, for this connection: the
// moves already passed on (of updates that were handled) are written, no
// later one is.
func (g *stateGuard) freeze() {
	g.frozen.Store(true)
	if b, ok := g.StateStorage.(*stateBuffer); ok {
		b.flushOrWarn(context.Background())
	}
}

func (g *stateGuard) SetState(ctx context.Context, userID int64, st updates.State) error {
	return g.common(ctx, userID, func(h *heldState) {
		h.full = true
		h.st = pendingState{pts: st.Pts, qts: st.Qts, date: st.Date, seq: st.Seq, has: [4]bool{true, true, true, true}}
	})
}

func (g *stateGuard) SetPts(ctx context.Context, userID int64, pts int) error {
	return g.common(ctx, userID, func(h *heldState) { h.st.pts, h.st.has[0] = pts, true })
}

func (g *stateGuard) SetQts(ctx context.Context, userID int64, qts int) error {
	return g.common(ctx, userID, func(h *heldState) { h.st.qts, h.st.has[1] = qts, true })
}

func (g *stateGuard) SetDate(ctx context.Context, userID int64, date int) error {
	return g.common(ctx, userID, func(h *heldState) { h.st.date, h.st.has[2] = date, true })
}

func (g *stateGuard) SetSeq(ctx context.Context, userID int64, seq int) error {
	return g.common(ctx, userID, func(h *heldState) { h.st.seq, h.st.has[3] = seq, true })
}

func (g *stateGuard) SetDateSeq(ctx context.Context, userID int64, date, seq int) error {
	return g.common(ctx, userID, func(h *heldState) {
		h.st.date, h.st.seq = date, seq
		h.st.has[2], h.st.has[3] = true, true
	})
}

func (g *stateGuard) SetChannelPts(ctx context.Context, userID, channelID int64, pts int) error {
	if g.frozen.Load() {
		return nil
	}
	return g.StateStorage.SetChannelPts(ctx, userID, channelID, pts)
}
