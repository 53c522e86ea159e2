package telegram

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/telegram/tgmedia"
)

var _ bridgev2.PollHandlingNetworkAPI = (*Client)(nil)

// HandleMatrixPollStart sends an MSC3381 poll as a Telegram poll.
func (c *Client) HandleMatrixPollStart(ctx context.Context, msg *bridgev2.MatrixPollStart) (*bridgev2.MatrixMessageResponse, error) {
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return nil, errCannotSend(err)
	}
	out := c.outbound(remote.OutboundMessage, msg.Portal, peer)
	if err = c.main.CheckOutbound(ctx, out); err != nil {
		return nil, remote.MessageStatus(err)
	}
	if err = c.checkOutboundMedia(ctx, remote.Media{Direction: remote.MediaOutbound, Kind: remote.MediaPoll, Login: c.login,
		PortalKey: msg.Portal.PortalKey, Remote: out.Remote, Size: -1}); err != nil {
		return nil, err
	}
	poll, err := tgmedia.InputPoll(msg.Content)
	if err != nil {
		return nil, bridgev2.WrapErrorInStatus(err).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true).
			WithErrorReason(event.MessageStatusUnsupported).WithStatus(event.MessageStatusFail)
	}
	inputPeer, err := c.inputPeer(ctx, peer)
	if err != nil {
		return nil, errCannotSend(err)
	}
	req := &tg.MessagesSendMediaRequest{Peer: inputPeer, Media: poll, RandomID: matrixRandomID(msg.Event.ID, 0)}
	c.setReply(ctx, req, msg.ReplyTo)
	resp, err := c.sendMedia(ctx, req)
	if err != nil {
		return nil, bridgev2.WrapErrorInStatus(fmt.Errorf("failed to send poll to Telegram: %w", err)).WithErrorAsMessage().WithSendNotice(true)
	}
	return c.sentResponse(ctx, peer, resp, req.RandomID, out)
}

// HandleMatrixPollVote sends the Matrix user's vote on a bridged poll.
func (c *Client) HandleMatrixPollVote(ctx context.Context, msg *bridgev2.MatrixPollVote) (*bridgev2.MatrixMessageResponse, error) {
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return nil, errCannotSend(err)
	}
	out := c.outbound(remote.OutboundReaction, msg.Portal, peer)
	if err = c.main.CheckOutbound(ctx, out); err != nil {
		return nil, remote.MessageStatus(err)
	}
	key, err := tgid.ParseMessageID(msg.VoteTo.ID)
	if err != nil {
		return nil, errCannotSend(fmt.Errorf("the poll is not a Telegram message: %w", err))
	}
	var options [][]byte
	for _, id := range msg.Content.Response.Answers {
		opt, ok := tgmedia.OptionBytes(id)
		if !ok {
			return nil, errCannotSend(errors.New("the vote names an answer the Telegram poll does not have"))
		}
		options = append(options, opt)
	}
	inputPeer, err := c.inputPeer(ctx, peer)
	if err != nil {
		return nil, errCannotSend(err)
	}
	api, err := c.waitAPI(ctx)
	if err != nil {
		return nil, errCannotSend(err)
	}
	resp, err := api.MessagesSendVote(ctx, &tg.MessagesSendVoteRequest{Peer: inputPeer, MsgID: key.ID, Options: options})
	if err != nil {
		return nil, bridgev2.WrapErrorInStatus(fmt.Errorf("failed to send vote to Telegram: %w", err)).WithErrorAsMessage().WithSendNotice(true)
	}
	c.feedUpdates(resp)
	c.main.Sent(ctx, out)
	return &bridgev2.MatrixMessageResponse{DB: &database.Message{
		ID:        networkid.MessageID(fmt.Sprintf("%s.myvote.%s", msg.VoteTo.ID, msg.Event.ID)),
		SenderID:  tgid.MakeUserID(c.userID),
		Timestamp: time.Now(),
	}}, nil
}
