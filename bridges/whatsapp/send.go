package whatsapp

import (
	"context"
	"errors"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// sendWait bounds how long a Matrix message waits for a connection to
// WhatsApp that is being re-established (after a restart or a drop). It
// stays under the homeserver's 30 s transaction timeout.
const sendWait = 20 * time.Second

// sendPoll is how often a waiting send looks at the connection again.
const sendPoll = 100 * time.Millisecond

// sendMessage sends msg to chat with the ID in extra, waiting for the
// connection while there is none and sending again when the connection
// failed under the send. Sending again is safe because the ID is the same:
// recipients keep one message per sender and ID. A failure that is
// WhatsApp's answer is returned at once.
func (cl *Client) sendMessage(ctx context.Context, chat types.JID, msg *waE2E.Message, extra whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, sendWait)
	defer cancel()
	tick := time.NewTicker(sendPoll)
	defer tick.Stop()
	lastErr := ErrNotConnected
	if chat.Server == types.GroupServer && extra.ID != "" {
		// Another login in the group gets this message too: it is ours.
		cl.main.seen.claim(groupMessageKey(chat, cl.jid, extra.ID), cl.login.ID, 0)
	}
	for attempt := 1; ; attempt++ {
		if wa := cl.client(); wa != nil && wa.IsConnected() && wa.IsLoggedIn() {
			resp, err := wa.SendMessage(ctx, chat, msg, extra)
			if err == nil || !connectionFailure(wa, err) || ctx.Err() != nil {
				return resp, err
			}
			cl.log.Warn().Err(err).Int("attempt", attempt).Str("message_id", extra.ID).
				Msg("Sending to WhatsApp failed with the connection, sending again once connected")
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return whatsmeow.SendResponse{}, lastErr
		case <-tick.C:
		}
	}
}

// connectionFailure tells a send that failed because the connection went
// away (worth sending again) from WhatsApp refusing it.
func connectionFailure(wa *whatsmeow.Client, err error) bool {
	return !wa.IsConnected() || errors.Is(err, whatsmeow.ErrNotConnected) ||
		errors.Is(err, whatsmeow.ErrMessageTimedOut) || errors.Is(err, whatsmeow.ErrIQTimedOut)
}
