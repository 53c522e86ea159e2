package telegram

import (
	"context"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
)

// sendWait bounds how long a Matrix message waits for a connection to
// Telegram that is being re-established (after a restart or a drop). It
// stays under the homeserver's 30 s transaction timeout.
const sendWait = 20 * time.Second

// sendPoll is how often a waiting send looks at the connection again.
const sendPoll = 100 * time.Millisecond

// waitAPI returns the connection's API, waiting up to sendWait for a
// connection being re-established.
func (c *Client) waitAPI(ctx context.Context) (*tg.Client, error) {
	if api := c.api.Load(); api != nil {
		return api, nil
	}
	ctx, cancel := context.WithTimeout(ctx, sendWait)
	defer cancel()
	tick := time.NewTicker(sendPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ErrNotConnected
		case <-tick.C:
			if api := c.api.Load(); api != nil {
				return api, nil
			}
		}
	}
}

// sendMessage calls messages.sendMessage, waiting for the connection while
// there is none and calling again when the connection failed under the
// call. Calling again is safe because the random_id is the same: Telegram
// answers with the message already sent. An error that is Telegram's answer
// is returned at once.
func (c *Client) sendMessage(ctx context.Context, req *tg.MessagesSendMessageRequest) (tg.UpdatesClass, error) {
	return callWhenConnected(ctx, c, "Sending to Telegram", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		return api.MessagesSendMessage(ctx, req)
	})
}

// sendMedia calls messages.sendMedia like sendMessage. The file was uploaded
// before: a re-sent request uses the same parts only on the same
// connection's server, which keeps them.
func (c *Client) sendMedia(ctx context.Context, req *tg.MessagesSendMediaRequest) (tg.UpdatesClass, error) {
	return callWhenConnected(ctx, c, "Sending media to Telegram", func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		return api.MessagesSendMedia(ctx, req)
	})
}

// callWhenConnected calls call with the connection's API, waiting up to
// sendWait for a connection while there is none and calling again when the
// connection failed under the call (what names the call in the log). An
// error that is Telegram's answer is returned at once.
func callWhenConnected[R any](ctx context.Context, c *Client, what string, call func(context.Context, *tg.Client) (R, error)) (R, error) {
	ctx, cancel := context.WithTimeout(ctx, sendWait)
	defer cancel()
	tick := time.NewTicker(sendPoll)
	defer tick.Stop()
	var zero R
	var lastErr error = ErrNotConnected
	for attempt := 1; ; attempt++ {
		if api := c.api.Load(); api != nil {
			resp, err := call(ctx, api)
			if _, rpc := tgerr.As(err); err == nil || rpc || ctx.Err() != nil {
				return resp, err
			}
			zerolog.Ctx(ctx).Warn().Err(err).Int("attempt", attempt).
				Msg(what + " failed with the connection, sending again once connected")
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return zero, lastErr
		case <-tick.C:
		}
	}
}
