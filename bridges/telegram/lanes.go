package telegram

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// An account's private chats and basic groups share one update sequence
// (pts), which gotd hands over one update after the other. Handled in that
// goroutine, a contact's flood or a new chat's portal creation held back
// every other chat of the account. Their updates now go to one lane per
// chat (remote.Lanes): in order within a chat, chats side by side. A
// deletion names message IDs only: found bridged, each goes to its chat's
// lane (deletionLanes); otherwise, like an update that names no chat (a
// poll names its ID), it waits until the lanes have handled what came
// before it. Channels
// have their own sequences, which gotd already runs side by side.

// chatLaneKey is the lane of a chat of the common sequence; "" (handled in
// the caller) for a channel or anything else.
func chatLaneKey(p tg.PeerClass) string {
	switch p := p.(type) {
	case *tg.PeerUser:
		return "u" + strconv.FormatInt(p.UserID, 10)
	case *tg.PeerChat:
		return "c" + strconv.FormatInt(p.ChatID, 10)
	}
	return ""
}

// messageLaneKey is the lane of a message's chat.
func messageLaneKey(m tg.MessageClass) string {
	switch m := m.(type) {
	case *tg.Message:
		return chatLaneKey(m.PeerID)
	case *tg.MessageService:
		return chatLaneKey(m.PeerID)
	}
	return ""
}

// peerLaneKey is the lane of a chat of the common sequence named by its
// portal's peer; "" for a channel.
func peerLaneKey(p tgid.Peer) string {
	switch p.Type {
	case tgid.PeerUser:
		return chatLaneKey(&tg.PeerUser{UserID: p.ID})
	case tgid.PeerChat:
		return chatLaneKey(&tg.PeerChat{ChatID: p.ID})
	}
	return ""
}

// deletionLane is the lane of the chat of a message of the account's box
// that a deletion names: found among the bridged messages (a basic group's
// through its canonical ID) or the ones held for approval. "" when it is
// neither: it may still be queued in a lane, unbridged.
func (c *Client) deletionLane(ctx context.Context, id int) string {
	if _, chatID, ok := c.basicCanonical(ctx, id); ok {
		return chatLaneKey(&tg.PeerChat{ChatID: chatID})
	}
	box := tgid.Peer{Type: tgid.PeerUser, ID: c.userID}
	msgID := tgid.MakeMessageID(tgid.MessageKey{Box: box, ID: id})
	msg, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, c.receiverOf(box), msgID)
	if err == nil && msg != nil {
		if peer, err := tgid.ParsePortalID(msg.Room.ID); err == nil {
			return peerLaneKey(peer)
		}
		return ""
	}
	if d, ok := c.deliveredMessage(msgID); ok {
		return peerLaneKey(d.peer)
	}
	return ""
}

// laneIDs are the message IDs of a deletion that belong to one lane.
type laneIDs struct {
	key string
	ids []int
}

// deletionLanes sorts a deletion's message IDs by their chat's lane, so
// that each chat's part follows that chat's earlier updates without
// waiting for the other chats' (a deletion names message IDs only, not
// chats). False when one of them is not found bridged: the deletion then
// waits for every lane, as it may be deleting a message still queued.
// Bounded: Telegram sends at most 100 IDs per deletion.
func (c *Client) deletionLanes(ctx context.Context, lanes *remote.Lanes, ids []int) ([]laneIDs, bool) {
	if lanes == nil {
		return nil, false
	}
	var out []laneIDs
	for _, id := range ids {
		key := c.deletionLane(ctx, id)
		if key == "" {
			return nil, false
		}
		i := slices.IndexFunc(out, func(l laneIDs) bool { return l.key == key })
		if i < 0 {
			out = append(out, laneIDs{key: key})
			i = len(out) - 1
		}
		out[i].ids = append(out[i].ids, id)
	}
	return out, len(out) > 0
}

// inChat hands an update's handling to its chat's lane (with no lanes or
// no key, it runs now). handle reports whether the update was done: false
// when the connection ended before it was bridged, and the stored state
// must stay before it. When the lanes refuse it (the connection is
// ending), the stored state is frozen: the next connection gets the update
// again.
func (c *Client) inChat(ctx context.Context, lanes *remote.Lanes, key, update string, handle func(context.Context) bool) {
	run := func() (done bool) {
		done = true // a panic is logged and the update counted as handled, as before lanes
		defer c.recoverHandler(ctx, update)
		return handle(ctx)
	}
	if lanes == nil || key == "" {
		run()
		return
	}
	if err := lanes.Go(ctx, key, run); err != nil {
		c.freezeState()
		zerolog.Ctx(ctx).Warn().Err(err).Str("update", update).Msg("Update not handled before the connection ended; it will be fetched again")
	}
}

// afterChats waits until the lanes handled every update handed over
// before; false (and the stored state frozen) when the connection ended
// first.
func (c *Client) afterChats(ctx context.Context, lanes *remote.Lanes) bool {
	if lanes == nil {
		return true
	}
	if err := lanes.Wait(ctx); err != nil {
		c.freezeState()
		return false
	}
	return true
}

// chatsSettled is afterChats for the current connection's lanes.
func (c *Client) chatsSettled(ctx context.Context) bool {
	if guard := c.state.Load(); guard != nil {
		return c.afterChats(ctx, guard.moves.lanes)
	}
	return true
}

func (c *Client) freezeState() {
	if guard := c.state.Load(); guard != nil {
		guard.freeze()
	}
}

// heldState is the moves of the common state made while updates handed to
// the lanes before them had not all been handled: written once they have.
type heldState struct {
	after uint64 // the lanes' Next when the moves were made
	st    pendingState
	full  bool // a SetState among them: every field is set
}

// commonMoves holds the moves of a connection's common state behind its
// lanes. Bounded by construction: one entry per lane task number at most
// (moves made between two tasks merge), and the lanes let at most their
// span of tasks run ahead of the oldest.
type commonMoves struct {
	mu    sync.Mutex // held while moves are passed on, so they keep their order
	lanes *remote.Lanes
	user  int64
	held  []heldState
}

// move records a move, passed on through pass at once if nothing is held
// and the lanes have handled every update before it.
func (m *commonMoves) move(ctx context.Context, userID int64, apply func(*heldState), pass func(context.Context, int64, heldState) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	after := m.lanes.Next()
	if len(m.held) == 0 && m.lanes.Low() >= after {
		var h heldState
		apply(&h)
		return pass(ctx, userID, h)
	}
	m.user = userID
	if n := len(m.held); n > 0 && m.held[n-1].after == after {
		apply(&m.held[n-1])
		return nil
	}
	h := heldState{after: after}
	apply(&h)
	m.held = append(m.held, h)
	return nil
}

// release passes on, merged and in order, the held moves the lanes have
// caught up with (low is their Low).
func (m *commonMoves) release(low uint64, pass func(context.Context, int64, heldState) error, log *zerolog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	var merged heldState
	for n < len(m.held) && m.held[n].after <= low {
		merged.merge(m.held[n])
		n++
	}
	if n == 0 {
		return
	}
	clear(m.held[:n])
	m.held = m.held[n:]
	if err := pass(context.Background(), m.user, merged); err != nil {
		log.Warn().Err(err).Msg("Failed to record the Telegram update state; the next start asks for the difference from an older one")
	}
}

// merge applies the later moves of o over h.
func (h *heldState) merge(o heldState) {
	if o.full {
		h.full = true
	}
	for i, has := range o.st.has {
		if !has {
			continue
		}
		h.st.has[i] = true
		switch i {
		case 0:
			h.st.pts = o.st.pts
		case 1:
			h.st.qts = o.st.qts
		case 2:
			h.st.date = o.st.date
		case 3:
			h.st.seq = o.st.seq
		}
	}
}

// passMoves writes h's moves to store, the whole state when a SetState is
// among them.
func passMoves(ctx context.Context, store updates.StateStorage, userID int64, h heldState) error {
	p := h.st
	if h.full {
		return store.SetState(ctx, userID, updates.State{Pts: p.pts, Qts: p.qts, Date: p.date, Seq: p.seq})
	}
	var err error
	set := func(ok bool, write func() error) {
		if ok && err == nil {
			err = write()
		}
	}
	switch {
	case p.has[2] && p.has[3]:
		set(true, func() error { return store.SetDateSeq(ctx, userID, p.date, p.seq) })
	default:
		set(p.has[2], func() error { return store.SetDate(ctx, userID, p.date) })
		set(p.has[3], func() error { return store.SetSeq(ctx, userID, p.seq) })
	}
	set(p.has[0], func() error { return store.SetPts(ctx, userID, p.pts) })
	set(p.has[1], func() error { return store.SetQts(ctx, userID, p.qts) })
	return err
}

// settleLanesWithin bounds how long a connection's end waits for its lanes.
const settleLanesWithin = 2 * time.Minute

// settleLanes waits, at a connection's end, until its lanes have handled
// what they were given (bridging gives up soon once the connection's
// context is done): the next connection's updates of a chat then come
// after them, and the last moves they allow are written.
func (c *Client) settleLanes(ctx context.Context, lanes *remote.Lanes) {
	if !lanes.Settle(c.main.Clock, settleLanesWithin) {
		zerolog.Ctx(ctx).Warn().Dur("waited", settleLanesWithin).Msg("Chats still being bridged when the connection ended; going on without them")
	}
}
