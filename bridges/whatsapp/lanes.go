package whatsapp

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// whatsmeow hands a connection's events over one after the other, and
// acknowledged a message to WhatsApp's server only once its handler
// returned (SynchronousAck: a crash loses nothing, the server sends an
// unacknowledged message again). Handled in that goroutine, a contact's
// flood or a new chat's portal creation held back every other chat of the
// login. A message now goes to its chat's lane (remote.Lanes): in order
// within a chat, chats side by side, and its acknowledgement is deferred
// until its lane has bridged it (whatsmeow's DeferAck, patched in
// third_party/whatsmeow): the server still sends again whatever was not
// bridged when the gateway stopped or died. Receipts and typing go to
// their chat's lane too; a group's changes wait in the group's lane until
// its earlier messages are bridged; the offline queue's end and a history
// sync wait until every lane has handled what came before them.

// chatLanes is the login's lanes, made at first use.
func (cl *Client) chatLanes() *remote.Lanes {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.lanes == nil {
		cl.lanes = remote.NewLanes(0, nil)
	}
	return cl.lanes
}

// laneOf is the lane of a message's (or receipt's, or typing's) chat: its
// portal's chat.
func (cl *Client) laneOf(ctx context.Context, src types.MessageSource) string {
	return cl.chatOf(ctx, &types.MessageInfo{MessageSource: src}).String()
}

// runInChat hands handle to the lane of key; finish gets its result: false
// when it failed, panicked or the lanes refused it (the client is
// stopping). Lane tasks always count as done for the lanes: a WhatsApp
// login keeps no stored position behind them, each message is
// acknowledged on its own (finish).
func (cl *Client) runInChat(ctx context.Context, key string, what any, handle func() bool, finish func(ok bool)) {
	cl.main.handling.Add(1)
	run := func() bool {
		defer cl.main.handling.Add(-1)
		if ctx.Err() != nil {
			// The client stopped before it began: not acknowledged, the
			// server sends it again on the next connection.
			finish(false)
			return true
		}
		ok := false
		func() {
			defer func() { logPanic(ctx, what, recover()) }()
			ok = handle()
		}()
		finish(ok)
		return true
	}
	if err := cl.chatLanes().Go(ctx, key, run); err != nil {
		cl.main.handling.Add(-1)
		zerolog.Ctx(ctx).Warn().Err(err).Type("event_type", what).Msg("WhatsApp event not handled before the client stopped; not acknowledging it")
		finish(false)
	}
}

// logPanic logs p, what recover returned in a handler of what (an event
// or a task), with its stack; it reports whether there was a panic.
func logPanic(ctx context.Context, what, p any) bool {
	if p == nil {
		return false
	}
	zerolog.Ctx(ctx).Error().Any("panic", p).Str("stack", string(debug.Stack())).Type("event_type", what).
		Msg("Panic in WhatsApp event handler")
	return true
}

// laterInChat runs handle in the lane of src's chat, after the events of
// that chat handed over before it, without the caller waiting (a receipt
// or a typing notice is not worth holding the receive loop for); like a
// message, while no group change writes the ghosts (its sender's ghost is
// primed on the way).
func (cl *Client) laterInChat(ctx context.Context, src types.MessageSource, what any, handle func(ctx context.Context)) {
	cl.runInChat(ctx, cl.laneOf(ctx, src), what, func() bool {
		ctx, done := cl.reading(ctx)
		defer done()
		handle(ctx)
		return true
	}, func(bool) {})
}

// reading and writing hold the connector's profile gate for a handler, as
// a reader (a message: it reads its sender's ghost) or a writer (a change
// that writes the members' ghosts); the returned context, which the
// handler runs with, lets creationTurn let the gate go while the handler
// waits for the creation turn.
func (cl *Client) reading(ctx context.Context) (context.Context, func()) {
	return remote.HoldGate(ctx, &cl.main.profiles, false)
}

func (cl *Client) writing(ctx context.Context) (context.Context, func()) {
	return remote.HoldGate(ctx, &cl.main.profiles, true)
}

// groupChange runs handle, a change of group, in the group's lane after
// its earlier messages. When the group's room exists, it runs while no
// message is being handled (bridgev2 writes the members' ghosts as it
// applies the change); a group without its room yet (the staff member was
// just added to it) is created as a message's chat is: beside the
// messages, its members' ghosts primed under their locks (remote.
// PrimeMembers), one room created at a time (creationTurn), so that a
// room being made holds no other chat. When whatsmeow lets the
// notification's acknowledgement be deferred (deferAck not nil), the
// receive loop goes on at once and the notification is acknowledged once
// handled (a flood in the group, or its room being made, does not hold the
// login's other chats); otherwise the caller waits for it.
func (cl *Client) groupChange(ctx context.Context, group types.JID, what any, deferAck func() func(ok bool), handle func(ctx context.Context)) bool {
	run := func() bool {
		hold := cl.reading
		if cl.groupRoomExists(ctx, group) {
			hold = cl.writing
		}
		ctx, done := hold(ctx)
		defer done()
		handle(ctx)
		return true
	}
	if deferAck == nil {
		return cl.handleInChat(ctx, group.String(), what, run)
	}
	cl.runInChat(ctx, group.String(), what, run, deferAck())
	return true
}

// groupRoomExists reports whether the group's portal has its room (or is
// having it made by another login); true when that cannot be told.
func (cl *Client) groupRoomExists(ctx context.Context, group types.JID) bool {
	key, err := waid.MakePortalKey(group, cl.login.ID)
	if err != nil {
		return true
	}
	exists, err := remote.RoomExists(ctx, cl.main.Bridge, key)
	return err != nil || exists
}

// handleInChat runs handle in the lane of key and waits for it: the
// event's acknowledgement (sent when whatsmeow's handler returns) then
// still follows its handling.
func (cl *Client) handleInChat(ctx context.Context, key string, what any, handle func() bool) bool {
	res := make(chan bool, 1)
	cl.runInChat(ctx, key, what, handle, func(ok bool) { res <- ok })
	select {
	case ok := <-res:
		return ok
	case <-ctx.Done():
		return false
	}
}

// settleLanesWithin bounds how long a client's end waits for the messages
// its lanes are bridging.
const settleLanesWithin = 30 * time.Second

// settleLanes waits, once event handling ended, until the lanes have
// finished what they were doing (what they had not begun is skipped): a
// message bridged is then recorded and acknowledged before the connection
// and the database close, and not bridged again from the server's next
// delivery.
func (cl *Client) settleLanes() {
	cl.mu.Lock()
	lanes := cl.lanes
	cl.mu.Unlock()
	if lanes != nil && !lanes.Settle(cl.main.Clock, settleLanesWithin) {
		cl.log.Warn().Dur("waited", settleLanesWithin).Msg("WhatsApp messages still being bridged when the client stopped; going on without them")
	}
}

// afterChats waits until the lanes have handled every event handed to
// them before; false when the client stopped first.
func (cl *Client) afterChats(ctx context.Context) bool {
	return cl.chatLanes().Wait(ctx) == nil
}

// onMessage hands a message to its chat's lane. A live message's
// acknowledgement waits for its bridging there; one that whatsmeow cannot
// defer (a channel's plaintext post) is handled in its lane while the
// caller waits.
func (cl *Client) onMessage(ctx context.Context, evt *events.Message) bool {
	key := cl.laneOf(ctx, evt.Info.MessageSource)
	handle := func() bool {
		ctx, done := cl.reading(ctx)
		defer done()
		defer cl.offlineMessageHandled(ctx)
		return cl.handleMessage(ctx, evt)
	}
	if evt.DeferAck == nil {
		return cl.handleInChat(ctx, key, evt, handle)
	}
	cl.runInChat(ctx, key, evt, handle, evt.DeferAck())
	return true
}

// maxPendingRefreshes bounds the ghosts waiting for their refresh; past it
// a change is dropped (the ghost is refreshed at its next change, or by
// bridgev2's own periodic check).
const maxPendingRefreshes = 1024

// queueRefresh refreshes a ghost after a profile change in the
// background, once no message is being handled: the receive loop does not
// wait for a moment without messages. A ghost queued twice is refreshed
// once. One goroutine runs while refreshes wait.
func (cl *Client) queueRefresh(ctx context.Context, jid, chat types.JID, group bool) {
	cl.mu.Lock()
	if cl.refreshes == nil {
		cl.refreshes = map[types.JID]pendingRefresh{}
	}
	if _, dup := cl.refreshes[jid]; !dup && len(cl.refreshes) >= maxPendingRefreshes {
		cl.mu.Unlock()
		zerolog.Ctx(ctx).Warn().Msg("Too many profile refreshes waiting; dropping one")
		return
	}
	cl.refreshes[jid] = pendingRefresh{chat: chat, group: group}
	start := !cl.refreshing
	cl.refreshing = true
	cl.mu.Unlock()
	if start {
		cl.main.handling.Add(1)
		go cl.runRefreshes(ctx)
	}
}

type pendingRefresh struct {
	chat  types.JID
	group bool // a group's picture: the group is resynced
}

func (cl *Client) runRefreshes(ctx context.Context) {
	defer cl.main.handling.Add(-1)
	for {
		cl.mu.Lock()
		var jid types.JID
		var p pendingRefresh
		found := false
		for jid, p = range cl.refreshes {
			found = true
			break
		}
		if !found {
			cl.refreshing = false
			cl.mu.Unlock()
			return
		}
		delete(cl.refreshes, jid)
		cl.mu.Unlock()
		cl.refreshNow(ctx, jid, p)
	}
}

func (cl *Client) refreshNow(ctx context.Context, jid types.JID, p pendingRefresh) {
	defer func() { logPanic(ctx, p, recover()) }()
	ctx, done := cl.writing(ctx)
	defer done()
	if p.group {
		cl.resyncChat(ctx, jid, false)
		return
	}
	cl.refreshGhost(ctx, jid, p.chat)
}

// creationTurn takes the connector's portal-creation turn when evt may
// create its room, and returns its release: one room created at a time
// (bridgev2 reads the members' ghosts without their lock while it creates
// a room, and two rooms made at once, a direct chat and a group with the
// same contact, would write and read one ghost together). Events of chats
// whose room exists do not wait. Taken before a group's lock. A handler
// that waits for it lets the profile gate go meanwhile (remote.WaitTurn:
// ctx carries its hold), so that chats in line for their rooms hold no
// group change or profile refresh, and through them no other chat.
func (cl *Client) creationTurn(ctx context.Context, evt bridgev2.RemoteEvent) func() {
	if !remote.CreatesPortal(ctx, cl.main.Bridge, evt) {
		return func() {}
	}
	return remote.WaitTurn(ctx, &cl.main.portalCreation)
}
