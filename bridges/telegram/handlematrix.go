package telegram

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgfmt"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// errUnsupportedMsgType tells the Matrix user which message types are bridged.
func errUnsupportedMsgType(msgType event.MessageType) error {
	return bridgev2.WrapErrorInStatus(fmt.Errorf("%s messages cannot be sent to Telegram", msgType)).
		WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true).
		WithErrorReason(event.MessageStatusUnsupported).WithStatus(event.MessageStatusFail)
}

func errCannotSend(err error) error {
	return bridgev2.WrapErrorInStatus(err).WithErrorAsMessage().WithIsCertain(true).WithSendNotice(true)
}

// outbound describes what is about to be sent to a chat, for the outbound
// check, from what the connector knows without I/O.
func (c *Client) outbound(kind remote.OutboundKind, portal *bridgev2.Portal, peer tgid.Peer) remote.Outbound {
	out := remote.Outbound{Kind: kind, Login: c.login, Portal: portal, PortalKey: portal.PortalKey, Chat: chatOf(peer)}
	if peer.Type == tgid.PeerUser {
		out.Remote = tgid.MakeUserID(peer.ID)
		out.Identity = c.cachedIdentity(peer.ID)
	}
	return out
}

// HandleMatrixMessage sends a Matrix message to Telegram: text, notice,
// emote, a file of any kind or a location. The outbound check comes first,
// for every message type.
func (c *Client) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil {
		return nil, errCannotSend(err)
	}
	portalPeer := peer
	peer = c.migratedPeer(peer)
	out := c.outbound(remote.OutboundMessage, msg.Portal, peer)
	out.HasMedia = msg.Content.MsgType.IsMedia()
	if err = c.main.CheckOutbound(ctx, out); err != nil {
		return nil, remote.MessageStatus(err)
	}
	c.placeInTopic(ctx, msg, peer)
	switch msg.Content.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote,
		event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile, event.CapMsgSticker, event.MsgLocation:
	default:
		return nil, errUnsupportedMsgType(msg.Content.MsgType)
	}
	if err = c.canPost(peer); err != nil {
		return nil, errCannotSend(err)
	}
	peer, inputPeer, err := c.sendPeer(ctx, portalPeer, peer)
	if err != nil {
		return nil, errCannotSend(err)
	}
	switch msg.Content.MsgType {
	case event.MsgLocation:
		return c.sendMatrixLocation(ctx, msg, peer, inputPeer, out)
	case event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile, event.CapMsgSticker:
		return c.sendMatrixFile(ctx, msg, peer, inputPeer, out)
	}
	text, entities := tgfmt.FromMatrix(ctx, c.fmtDeps(), msg.Content)
	if text == "" {
		return nil, errCannotSend(fmt.Errorf("empty messages cannot be sent to Telegram"))
	}
	// Over Telegram's limits the message goes as several; the first one
	// stands for the Matrix event. Each part's random_id comes from the
	// event ID, so sending it again after a crash makes no duplicate.
	msgID, date, err := c.sendTextParts(ctx, msg.Event.ID, inputPeer, tgfmt.Split(text, entities, tgfmt.DefaultLimits), msg.ReplyTo)
	if err != nil && peer.Type == tgid.PeerChat {
		// The group may have just become a supergroup: sent there.
		if to, ok := c.checkMigrated(ctx, peer.ID); ok {
			if input, ierr := c.inputPeer(ctx, to); ierr == nil {
				peer = to
				msgID, date, err = c.sendTextParts(ctx, msg.Event.ID, input, tgfmt.Split(text, entities, tgfmt.DefaultLimits), nil)
			}
		}
	}
	if err != nil {
		if tgerr.Is(err, "CHANNEL_PRIVATE", "CHAT_WRITE_FORBIDDEN", "CHAT_ADMIN_REQUIRED") {
			return nil, errCannotSend(groupRightsError(err, "post"))
		}
		return nil, err
	}
	if peer.Type == tgid.PeerChat {
		c.recordBasicSent(ctx, peer.ID, msgID, date, tgfmt.Split(text, entities, tgfmt.DefaultLimits)[0].Text)
	}
	c.main.Sent(ctx, out)
	ts := time.Now()
	if date != 0 {
		ts = time.Unix(int64(date), 0)
	}
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{
			ID:        c.messageID(peer, msgID),
			SenderID:  tgid.MakeUserID(c.userID),
			Timestamp: ts,
		},
	}, nil
}

// feedUpdates hands the updates carried by an RPC result to the updates
// manager, so that pts advances without a gap. It runs in the background: the
// manager may be busy delivering an update to this very portal, which waits
// for the Matrix event being handled now.
func (c *Client) feedUpdates(u tg.UpdatesClass) {
	rm := c.mgr.Load()
	if rm == nil {
		return
	}
	go func() {
		defer c.recoverHandler(rm.ctx, "sent_message_updates")
		if err := rm.mgr.Handle(rm.ctx, u); err != nil && rm.ctx.Err() == nil {
			zerolog.Ctx(rm.ctx).Warn().Err(err).Msg("Failed to handle updates of a sent message")
		}
	}()
}

// sentMessageID finds the ID of the message sent with randomID.
func sentMessageID(resp tg.UpdatesClass, randomID int64) (id, date int) {
	var list []tg.UpdateClass
	switch r := resp.(type) {
	case *tg.UpdateShortSentMessage:
		return r.ID, r.Date
	case *tg.Updates:
		list, date = r.Updates, r.Date
	case *tg.UpdatesCombined:
		list, date = r.Updates, r.Date
	default:
		return 0, 0
	}
	for _, u := range list {
		if m, ok := u.(*tg.UpdateMessageID); ok && m.RandomID == randomID {
			id = m.ID
		}
	}
	if id == 0 {
		for _, u := range list {
			if m, ok := u.(*tg.UpdateNewMessage); ok {
				if msg, ok := m.Message.(*tg.Message); ok && msg.Out {
					id, date = msg.ID, msg.Date
				}
			}
		}
	}
	return id, date
}

// matrixRandomID is the messages.sendMessage random_id of part part (0 for
// the first) of the Matrix event evtID. Telegram keeps one message per
// sender and random_id: a Matrix event handled again after a crash (the
// homeserver retries its transaction) is then not sent twice. It is never 0.
func matrixRandomID(evtID id.EventID, part int) int64 {
	h := sha256.New()
	h.Write([]byte("passerelle/telegram/random_id\x00"))
	h.Write([]byte(evtID))
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], uint64(part))
	h.Write(p[:])
	v := int64(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
	if v == 0 {
		v = 1
	}
	return v
}

// inputPeer returns the InputPeer of a chat.
func (c *Client) inputPeer(ctx context.Context, peer tgid.Peer) (tg.InputPeerClass, error) {
	switch peer.Type {
	case tgid.PeerChannel:
		input, err := c.inputChannel(ctx, peer.ID)
		if err != nil {
			return nil, err
		}
		return &tg.InputPeerChannel{ChannelID: input.ChannelID, AccessHash: input.AccessHash}, nil
	case tgid.PeerUser:
	case tgid.PeerChat:
		return &tg.InputPeerChat{ChatID: peer.ID}, nil
	default:
		return nil, fmt.Errorf("unknown Telegram chat type %s", peer)
	}
	if peer.ID == c.userID {
		return &tg.InputPeerSelf{}, nil
	}
	input, err := c.inputUser(ctx, peer.ID)
	if err != nil {
		return nil, err
	}
	u := input.(*tg.InputUser)
	return &tg.InputPeerUser{UserID: u.UserID, AccessHash: u.AccessHash}, nil
}

// toInputEntities turns mentions into inputMessageEntityMentionName, which
// carries the access hash; a mention of a user the account cannot reach is
// sent as plain text.
func (c *Client) toInputEntities(ctx context.Context, entities []tg.MessageEntityClass) []tg.MessageEntityClass {
	out := entities[:0]
	for _, ent := range entities {
		if m, ok := ent.(*tg.MessageEntityMentionName); ok {
			input, err := c.inputUser(ctx, m.UserID)
			if err != nil {
				continue
			}
			ent = &tg.InputMessageEntityMentionName{Offset: m.Offset, Length: m.Length, UserID: input}
		}
		out = append(out, ent)
	}
	return out
}
