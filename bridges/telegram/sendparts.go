package telegram

import (
	"context"
	"fmt"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgfmt"
)

// sendTextParts sends the parts of one Matrix message (tgfmt.Split) in order
// and returns the ID and date of the first, which stands for the Matrix
// event; only the first replies to replyTo. When a later part fails, the
// error says how many parts went through.
func (c *Client) sendTextParts(ctx context.Context, evtID id.EventID, peer tg.InputPeerClass, parts []tgfmt.Part, replyTo *database.Message) (msgID, date int, err error) {
	return c.sendTextPartsFrom(ctx, evtID, 0, peer, parts, replyTo)
}

// sendTextPartsFrom is sendTextParts for parts that follow first earlier
// ones of the same Matrix event (a media message's caption): their
// random_ids continue from first.
func (c *Client) sendTextPartsFrom(ctx context.Context, evtID id.EventID, first int, peer tg.InputPeerClass, parts []tgfmt.Part, replyTo *database.Message) (msgID, date int, err error) {
	for i, part := range parts {
		req := &tg.MessagesSendMessageRequest{
			Peer:      peer,
			Message:   part.Text,
			RandomID:  matrixRandomID(evtID, first+i),
			Entities:  c.toInputEntities(ctx, part.Entities),
			NoWebpage: true,
		}
		if i == 0 && replyTo != nil {
			if r, ok := c.ownInputReplyTo(ctx, replyTo); ok {
				req.SetReplyTo(r)
			}
		}
		if len(req.Entities) > 0 {
			req.SetEntities(req.Entities)
		}
		resp, err := c.sendMessage(ctx, req)
		if err != nil {
			if i > 0 {
				err = fmt.Errorf("%w (only %d of the %d parts of this long message were sent)", err, i, len(parts))
			}
			return 0, 0, bridgev2.WrapErrorInStatus(fmt.Errorf("failed to send message to Telegram: %w", err)).
				WithErrorAsMessage().WithSendNotice(true)
		}
		id, d := sentMessageID(resp, req.RandomID)
		if id == 0 {
			return 0, 0, bridgev2.WrapErrorInStatus(fmt.Errorf("telegram did not return the sent message's ID")).WithSendNotice(true)
		}
		c.feedUpdates(resp)
		if i == 0 {
			msgID, date = id, d
		}
	}
	return msgID, date, nil
}
