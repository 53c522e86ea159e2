package whatsapp

import (
	"context"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/passerelle/passerelle/bridges/remote"
)

// What WhatsApp kept for this device while it was away (its offline queue)
// comes at login, before anything live: a preview of its size, the
// messages, receipts and notifications in order (each bridged once, through
// the usual handlers: edits, revokes and reactions included), then the end
// of the offline sync. A gap of remote.CatchUpNoticeFrom messages or more
// is reported in the management room as it is caught up.

// onOfflinePreview starts the report of the offline queue's catching up.
func (cl *Client) onOfflinePreview(ctx context.Context, evt *events.OfflineSyncPreview) {
	zerolog.Ctx(ctx).Info().Int("total", evt.Total).Int("messages", evt.Messages).
		Int("notifications", evt.Notifications).Int("receipts", evt.Receipts).Msg("WhatsApp offline queue")
	cu := remote.NewCatchUp(cl.accountName(), evt.Messages, cl.sendNotice)
	cl.mu.Lock()
	cl.catchUp = cu
	cl.mu.Unlock()
}

// offlineMessageHandled counts a message of the offline queue bridged.
func (cl *Client) offlineMessageHandled(ctx context.Context) {
	cl.mu.Lock()
	cu := cl.catchUp
	cl.mu.Unlock()
	cu.Add(ctx, 1)
}

// onOfflineCompleted ends the report of the offline queue.
func (cl *Client) onOfflineCompleted(ctx context.Context, evt *events.OfflineSyncCompleted) {
	zerolog.Ctx(ctx).Info().Int("count", evt.Count).Msg("WhatsApp offline queue delivered")
	cl.mu.Lock()
	cu := cl.catchUp
	cl.catchUp = nil
	cl.mu.Unlock()
	cu.Done(ctx)
}
