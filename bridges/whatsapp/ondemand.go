package whatsapp

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/clock"
)

// Older history on demand: a backward FetchMessages asks the staff
// member's phone for the messages before the portal's oldest (an
// on-demand history sync request, a peer message to the phone) and waits
// for its answer (an ON_DEMAND history sync). bridgev2 only runs backward
// backfill with batch sending, which the homeservers Passerelle targets do
// not offer (config/defaults.go: forward only); this serves a homeserver
// that has it.

// onDemandTimeout bounds the wait for the phone's answer.
const onDemandTimeout = 60 * time.Second

// maxOnDemandWaits caps the chats waiting for an answer at once.
const maxOnDemandWaits = 16

// errOnDemandBusy is returned when too many requests wait already.
var errOnDemandBusy = fmt.Errorf("too many history requests are waiting for the phone")

// takeOnDemand hands an ON_DEMAND conversation to the request waiting for
// its chat; false when none waits (then it is stored like other history).
func (cl *Client) takeOnDemand(chat string, conv *waHistorySync.Conversation) bool {
	cl.mu.Lock()
	ch, ok := cl.onDemand[chat]
	if ok {
		delete(cl.onDemand, chat)
	}
	cl.mu.Unlock()
	if ok {
		ch <- conv // buffered, one answer per wait
	}
	return ok
}

// fetchOlder is FetchMessages backward: the count messages before the
// anchor, from the phone.
func (cl *Client) fetchOlder(ctx context.Context, params bridgev2.FetchMessagesParams) (*bridgev2.FetchMessagesResponse, error) {
	if params.AnchorMessage == nil {
		return &bridgev2.FetchMessagesResponse{}, nil
	}
	wa := cl.client()
	if wa == nil {
		return nil, ErrNotConnected
	}
	chat, err := waid.ParsePortalID(params.Portal.ID)
	if err != nil {
		return nil, err
	}
	key, err := waid.ParseMessageID(params.AnchorMessage.ID)
	if err != nil {
		return nil, err
	}
	count := min(max(params.Count, 1), 100)
	ch := make(chan *waHistorySync.Conversation, 1)
	chatKey := chat.String()
	cl.mu.Lock()
	if cl.onDemand == nil {
		cl.onDemand = map[string]chan *waHistorySync.Conversation{}
	}
	if _, busy := cl.onDemand[chatKey]; busy || len(cl.onDemand) >= maxOnDemandWaits {
		cl.mu.Unlock()
		return nil, errOnDemandBusy
	}
	cl.onDemand[chatKey] = ch
	cl.mu.Unlock()
	defer func() {
		cl.mu.Lock()
		if cl.onDemand[chatKey] == ch {
			delete(cl.onDemand, chatKey)
		}
		cl.mu.Unlock()
	}()
	info := &types.MessageInfo{
		MessageSource: types.MessageSource{Chat: chat, Sender: key.Sender, IsFromMe: key.Sender.ToNonAD() == cl.jid},
		ID:            key.ID, Timestamp: params.AnchorMessage.Timestamp,
	}
	if _, err = wa.SendMessage(ctx, cl.jid.ToNonAD(), wa.BuildHistorySyncRequest(info, count), whatsmeow.SendRequestExtra{Peer: true}); err != nil {
		return nil, fmt.Errorf("failed to ask the phone for older messages: %w", err)
	}
	var conv *waHistorySync.Conversation
	select {
	case conv = <-ch:
	case <-clock.Or(cl.main.Clock).After(onDemandTimeout):
		return nil, fmt.Errorf("the phone did not send older messages within %s", onDemandTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var stored []storedHistory
	for _, hm := range conv.GetMessages() {
		wmi := hm.GetMessage()
		ts := time.Unix(int64(wmi.GetMessageTimestamp()), 0)
		if wmi == nil || !ts.Before(params.AnchorMessage.Timestamp) {
			continue
		}
		stored = append(stored, storedHistory{ID: wmi.GetKey().GetID(), Timestamp: ts, Info: wmi})
	}
	// The phone gives the newest first; bridgev2 takes them oldest first.
	slices.Reverse(stored)
	hist := cl.historyOf(ctx, params.Portal, chat, stored)
	out := cl.main.FilterBackfill(ctx, hist)
	zerolog.Ctx(ctx).Info().Int("fetched", len(stored)).Int("bridged", len(out)).Msg("Fetched older WhatsApp history from the phone")
	return &bridgev2.FetchMessagesResponse{Messages: out, HasMore: len(stored) >= count, Forward: false}, nil
}

// takeOnDemandConv hands an ON_DEMAND conversation to its waiting fetch.
func (cl *Client) takeOnDemandConv(ctx context.Context, conv *waHistorySync.Conversation) bool {
	jid, err := types.ParseJID(conv.GetID())
	if err != nil {
		return false
	}
	return cl.takeOnDemand(cl.preferPN(ctx, jid, types.EmptyJID).String(), conv)
}
