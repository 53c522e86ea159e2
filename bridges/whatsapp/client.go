package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/lru"
)

// nameCacheSize caps the push names and the group names an account
// remembers.
const nameCacheSize = 10000

// groupMembersCacheSize caps the groups whose members are remembered.
const groupMembersCacheSize = 1000

var (
	_ bridgev2.NetworkAPI           = (*Client)(nil)
	_ bridgev2.NetworkAPIWithUserID = (*Client)(nil)
)

// Bridge state error codes sent by the connector.
const (
	StateErrDisconnected   status.BridgeStateErrorCode = "wa-disconnected"
	StateErrConnectFailed  status.BridgeStateErrorCode = "wa-connect-failed"
	StateErrLoggedOut      status.BridgeStateErrorCode = "wa-logged-out"
	StateErrStreamReplaced status.BridgeStateErrorCode = "wa-stream-replaced"
	StateErrNotPaired      status.BridgeStateErrorCode = "wa-not-paired"
)

// ErrNotConnected is returned by calls that need a connected client.
var ErrNotConnected = errors.New("not connected to WhatsApp")

// Client is the NetworkAPI of one linked WhatsApp account.
type Client struct {
	main  *WhatsAppConnector
	login *bridgev2.UserLogin
	jid   types.JID // the account's phone-number JID
	log   zerolog.Logger

	// lanes run the login's chats side by side (lanes.go).
	lanes *remote.Lanes
	// refreshes are the profile changes waiting for their refresh, by
	// user (or group); refreshing while a goroutine runs them.
	refreshes  map[types.JID]pendingRefresh
	refreshing bool

	mu        sync.Mutex
	wa        *whatsmeow.Client
	stopLoop  context.CancelFunc
	attempts  int  // failed connection attempts since the last success
	stopped   bool // Disconnect or a fatal event ended the connection
	noticed   bool // a disconnect notice was sent for the current outage
	loggedOut bool
	// catchUp reports the delivery of a big offline queue (offline.go).
	catchUp *remote.CatchUp
	// onDemand are the backward fetches waiting for the phone's answer,
	// by chat (ondemand.go; at most maxOnDemandWaits).
	onDemand map[string]chan *waHistorySync.Conversation
	// retries are the expired files waiting for their phone, by message.
	retries map[types.MessageID]*pendingRetry

	// events is the context of event handling: it ends with Disconnect or
	// a fatal event, not with a reconnection, so that a message being
	// bridged while the homeserver is away keeps being tried.
	events    context.Context
	endEvents context.CancelFunc

	// subscribed are the contacts whose presence this connection follows.
	subscribed map[types.JID]bool

	pushNames  *lru.Cache[types.JID, string] // push names seen on messages, by user
	groupNames *lru.Cache[types.JID, string] // group names seen, by group
	// groupMembers are the participants of groups, for the gate's rules.
	groupMembers *lru.Cache[types.JID, groupMembers]
	// communitiesTried are the communities whose space this login asked
	// for (communityParent).
	communitiesTried *lru.Cache[types.JID, struct{}]
}

func newClient(main *WhatsAppConnector, login *bridgev2.UserLogin, jid types.JID) *Client {
	return &Client{main: main, login: login, jid: jid, log: login.Log.With().Str("component", "whatsapp").Logger(),
		pushNames: lru.New[types.JID, string](nameCacheSize), groupNames: lru.New[types.JID, string](nameCacheSize),
		groupMembers: lru.New[types.JID, groupMembers](groupMembersCacheSize), communitiesTried: newCommunitiesTried()}
}

// GetUserID implements bridgev2.NetworkAPIWithUserID.
func (cl *Client) GetUserID() networkid.UserID {
	id, _ := waid.MakeUserID(cl.jid)
	return id
}

// IsThisUser implements bridgev2.NetworkAPI: the account's phone number or
// its LID.
func (cl *Client) IsThisUser(_ context.Context, userID networkid.UserID) bool {
	jid, err := waid.ParseUserID(userID)
	if err != nil {
		return false
	}
	if jid == cl.jid {
		return true
	}
	md := meta.Get[waid.UserLoginMetadata](cl.login.Metadata)
	return md.LID != "" && jid.Server == types.HiddenUserServer && jid.String() == md.LID
}

// IsLoggedIn implements bridgev2.NetworkAPI.
func (cl *Client) IsLoggedIn() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.wa != nil && cl.wa.IsLoggedIn()
}

func (cl *Client) client() *whatsmeow.Client {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.wa
}

// Connect implements bridgev2.NetworkAPI: it loads the device from the store
// and connects, retrying with backoff in the background.
func (cl *Client) Connect(ctx context.Context) {
	md := meta.Get[waid.UserLoginMetadata](cl.login.Metadata)
	dev := cl.loadDevice(ctx, md.DeviceJID)
	if dev == nil {
		cl.login.BridgeState.Send(status.BridgeState{
			StateEvent: status.StateBadCredentials,
			Error:      StateErrNotPaired,
			Message:    "This WhatsApp login has no linked device any more; log in again",
		})
		return
	}
	wa := cl.main.newWAClient(dev, cl.login.Log)
	wa.AddEventHandlerWithSuccessStatus(cl.handleEvent)

	loopCtx, cancel := context.WithCancel(context.WithoutCancel(cl.log.WithContext(ctx)))
	cl.mu.Lock()
	if cl.stopLoop != nil {
		cl.stopLoop()
	}
	cl.wa, cl.stopLoop, cl.stopped, cl.attempts, cl.loggedOut = wa, cancel, false, 0, false
	cl.startEventsLocked()
	cl.mu.Unlock()
	go cl.connectLoop(loopCtx, wa)
}

// newWAClient makes a whatsmeow client with the connector's settings: the
// connector reconnects by itself (with backoff), acknowledges a message only
// once it is handled, and buffers decrypted events so that a crash does not
// lose them.
func (c *WhatsAppConnector) newWAClient(dev *store.Device, log zerolog.Logger) *whatsmeow.Client {
	wa := whatsmeow.NewClient(dev, newWALogger(log.With().Str("component", "whatsmeow").Logger()))
	wa.EnableAutoReconnect = false
	wa.EnableDecryptedEventBuffer = true
	wa.SynchronousAck = true
	wa.DeferrableAcks = true
	wa.AutomaticMessageRerequestFromPhone = true
	c.route(wa)
	return wa
}

// adopt takes over the connection of a client that has just been paired;
// cancel ends that connection's context.
func (cl *Client) adopt(wa *whatsmeow.Client, cancel context.CancelFunc) {
	cl.mu.Lock()
	if cl.stopLoop != nil {
		cl.stopLoop()
	}
	cl.wa, cl.stopLoop, cl.stopped, cl.attempts, cl.loggedOut = wa, cancel, false, 0, false
	cl.startEventsLocked()
	cl.mu.Unlock()
	if wa.IsLoggedIn() {
		cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnected})
	}
}

// startEventsLocked starts a new event-handling context if there is none
// running. The caller holds cl.mu.
func (cl *Client) startEventsLocked() {
	if cl.events != nil && cl.events.Err() == nil {
		return
	}
	cl.events, cl.endEvents = context.WithCancel(cl.log.WithContext(context.Background()))
}

// endEventsLocked ends event handling. The caller holds cl.mu.
func (cl *Client) endEventsLocked() {
	if cl.endEvents != nil {
		cl.endEvents()
	}
}

// eventContext is the context events are handled in.
func (cl *Client) eventContext() context.Context {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.events == nil {
		cl.startEventsLocked()
	}
	return cl.events
}

func (cl *Client) loadDevice(ctx context.Context, deviceJID string) *store.Device {
	if deviceJID == "" {
		return nil
	}
	jid, err := types.ParseJID(deviceJID)
	if err != nil {
		cl.log.Err(err).Msg("Stored device JID is invalid")
		return nil
	}
	dev, err := cl.main.Store.GetDevice(ctx, jid)
	if err != nil {
		cl.log.Err(err).Msg("Failed to load the WhatsApp device")
		return nil
	}
	return dev
}

// connectLoop connects, waiting Backoff(n) between failed attempts, until
// it succeeds, ctx ends or the client is stopped.
func (cl *Client) connectLoop(ctx context.Context, wa *whatsmeow.Client) {
	for {
		cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnecting})
		// A slot among the logins connecting at once (see
		// remote.ConnectLimiter), given back once the handshake is done.
		release, err := cl.main.connects.Acquire(ctx)
		if err != nil {
			return
		}
		slotTimer := time.AfterFunc(remote.ConnectSlotTimeout, release)
		err = wa.ConnectContext(libraryContext(ctx, cl.log))
		slotTimer.Stop()
		release()
		if err == nil || errors.Is(err, whatsmeow.ErrAlreadyConnected) {
			return
		}
		cl.mu.Lock()
		cl.attempts++
		attempt, stopped := cl.attempts, cl.stopped
		cl.mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		wait := Backoff(attempt)
		cl.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).Msg("Failed to connect to WhatsApp")
		cl.login.BridgeState.Send(status.BridgeState{
			StateEvent: status.StateTransientDisconnect,
			Error:      StateErrConnectFailed,
			Message:    fmt.Sprintf("Failed to connect to WhatsApp, retrying in %s", wait),
		})
		select {
		case <-ctx.Done():
			return
		case <-cl.main.Clock.After(wait):
		}
	}
}

// reconnect starts a new connection loop after an unexpected disconnect.
func (cl *Client) reconnect() {
	cl.mu.Lock()
	wa, stopped := cl.wa, cl.stopped
	var ctx context.Context
	if !stopped && wa != nil {
		cl.attempts++
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(cl.log.WithContext(context.Background()))
		if cl.stopLoop != nil {
			cl.stopLoop()
		}
		cl.stopLoop = cancel
	}
	attempt := cl.attempts
	cl.mu.Unlock()
	if ctx == nil {
		return
	}
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-cl.main.Clock.After(Backoff(attempt)):
		}
		cl.connectLoop(ctx, wa)
	}()
}

// Disconnect implements bridgev2.NetworkAPI.
func (cl *Client) Disconnect() {
	cl.mu.Lock()
	wa, cancel, live := cl.wa, cl.stopLoop, !cl.stopped
	cl.stopped, cl.stopLoop = true, nil
	cl.endEventsLocked()
	cl.mu.Unlock()
	// The lanes skip what they have not begun; the messages being bridged
	// finish (and are acknowledged) before the connection closes.
	cl.settleLanes()
	closeClient(wa, cancel, live)
}

// closeClient ends a whatsmeow connection. With live set, it cancels the
// connection's context and lets the socket wind down from its read loop
// (whatsmeow then emits Disconnected) before calling Disconnect: a
// Disconnect that races the read loop trips unsynchronised field accesses
// inside whatsmeow's socket package.
func closeClient(wa *whatsmeow.Client, cancel context.CancelFunc, live bool) {
	if wa == nil {
		if cancel != nil {
			cancel()
		}
		return
	}
	gone := make(chan struct{})
	var once sync.Once
	handlerID := wa.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Disconnected); ok {
			once.Do(func() { close(gone) })
		}
	})
	if cancel != nil {
		cancel()
	}
	if live && cancel != nil {
		select {
		case <-gone:
		case <-time.After(time.Second):
		}
	}
	wa.RemoveEventHandler(handlerID)
	wa.Disconnect()
}

// LogoutRemote implements bridgev2.NetworkAPI: it unlinks the device from
// the phone and deletes its keys.
func (cl *Client) LogoutRemote(ctx context.Context) {
	wa := cl.client()
	if wa != nil && wa.IsLoggedIn() {
		if err := wa.Logout(ctx); err != nil {
			cl.log.Warn().Err(err).Msg("Failed to log out from WhatsApp; deleting the device locally")
		}
	}
	cl.Disconnect()
	cl.deleteDevice(ctx)
}

func (cl *Client) deleteDevice(ctx context.Context) {
	// The history kept for backfill goes with the device.
	if cl.main.history != nil {
		if err := cl.main.history.forgetLogin(ctx, cl.login.ID); err != nil {
			cl.log.Err(err).Msg("Failed to delete the login's stored history")
		}
	}
	md := meta.Get[waid.UserLoginMetadata](cl.login.Metadata)
	dev := cl.loadDevice(ctx, md.DeviceJID)
	if dev == nil {
		return
	}
	if err := dev.Delete(ctx); err != nil {
		cl.log.Err(err).Msg("Failed to delete the WhatsApp device from the store")
	}
}

// sendNotice posts a notice to the user's management room.
func (cl *Client) sendNotice(ctx context.Context, text string) {
	if err := remote.ManagementNotice(ctx, cl.login, text); err != nil {
		cl.log.Err(err).Msg("Failed to post a notice to the management room")
	}
}

// accountName is how notices name the account (never the full number).
func (cl *Client) accountName() string {
	if cl.login.RemoteName != "" {
		return cl.login.RemoteName
	}
	return "your WhatsApp account"
}
