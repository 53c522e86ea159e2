package telegram

import (
	"context"
	"fmt"
	stdhtml "html"
	"runtime/debug"
	"strconv"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Forum topics. A forum supergroup stays one portal; each of its topics is
// a Matrix thread in it. The topic's creation message (its ID is the
// topic's ID) is the thread's root, "Topic: <name>"; a message in the
// topic is sent as an m.thread relation to that root (a reply inside the
// topic also keeps its reply); the General topic (ID 1) is the main
// timeline. A renamed, closed or reopened topic is a notice in its thread.
// Topics that exist before the portal, or whose creation was missed, get
// their root when the portal is made (messages.getForumTopics) or before
// their first message (messages.getForumTopicsByID). From Matrix, a
// message in a thread whose root is a topic goes to that topic (reply_to
// the topic; a reply inside it names the topic as top_msg_id).

const (
	generalTopicID = 1
	// topicCacheSize caps the topics remembered per login.
	topicCacheSize = 2048
	// maxTopicsSynced bounds the topics whose roots are made with a portal.
	maxTopicsSynced = 100
)

// topicKey names a topic of a forum (topic 0: the forum's topics were
// synced).
type topicKey struct {
	channel int64
	topic   int
}

var (
	_ remote.Holdable        = (*topicEvent)(nil)
	_ remote.Described       = (*topicEvent)(nil)
	_ bridgev2.RemoteMessage = (*topicEvent)(nil)
)

// topicOfHeader is the topic a message's reply header puts it in (0: no
// topic, or the header is not a forum's), and the message it answers
// inside the topic (0: it only names the topic).
func topicOfHeader(h tg.MessageReplyHeaderClass) (topic, replyTo int) {
	reply, ok := h.(*tg.MessageReplyHeader)
	if !ok || !reply.ForumTopic {
		return 0, 0
	}
	if top, ok := reply.GetReplyToTopID(); ok && top != 0 {
		return top, reply.ReplyToMsgID
	}
	return reply.ReplyToMsgID, 0
}

// applyTopic puts a converted channel message in its topic's thread.
func (c *Client) applyTopic(cm *bridgev2.ConvertedMessage, peer tgid.Peer, msg *tg.Message) {
	if peer.Type != tgid.PeerChannel {
		return
	}
	topic, replyTo := topicOfHeader(msg.ReplyTo)
	if topic == 0 {
		return
	}
	if replyTo == 0 {
		// The header only names the topic: not a reply.
		cm.ReplyTo = nil
	}
	if topic == generalTopicID {
		return
	}
	root := c.messageID(peer, topic)
	cm.ThreadRoot = &root
}

// ensureTopicRoot makes sure the root of a channel message's topic is in
// the portal before the message: a topic created before the portal, or
// whose creation message was missed, gets its root now.
func (c *Client) ensureTopicRoot(ctx context.Context, msg *tg.Message) {
	p, ok := msg.PeerID.(*tg.PeerChannel)
	if !ok {
		return
	}
	topic, _ := topicOfHeader(msg.ReplyTo)
	if topic == 0 || topic == generalTopicID || topic == msg.ID {
		return
	}
	peer := tgid.Peer{Type: tgid.PeerChannel, ID: p.ChannelID}
	root := c.messageID(peer, topic)
	if known, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, "", root); err != nil || known != nil {
		return
	}
	c.syncTopics(ctx, p.ChannelID, []int{topic})
}

// syncTopics gives the topics of a forum (ids; nil: its latest ones) their
// root in the portal, where they have none.
func (c *Client) syncTopics(ctx context.Context, channelID int64, ids []int) {
	log := zerolog.Ctx(ctx).With().Int64("tg_channel_id", channelID).Logger()
	input, err := c.inputChannel(ctx, channelID)
	if err != nil {
		return
	}
	inputPeer := &tg.InputPeerChannel{ChannelID: input.ChannelID, AccessHash: input.AccessHash}
	res, err := callWhenConnected(ctx, c, "get forum topics", func(ctx context.Context, api *tg.Client) (*tg.MessagesForumTopics, error) {
		if ids != nil {
			return api.MessagesGetForumTopicsByID(ctx, &tg.MessagesGetForumTopicsByIDRequest{Peer: inputPeer, Topics: ids})
		}
		return api.MessagesGetForumTopics(ctx, &tg.MessagesGetForumTopicsRequest{Peer: inputPeer, Limit: maxTopicsSynced})
	})
	if err != nil {
		log.Warn().Err(err).Msg("Failed to get the topics of a forum")
		return
	}
	c.rememberEntities(ctx, tg.Entities{Users: usersOf(res.Users)})
	peer := tgid.Peer{Type: tgid.PeerChannel, ID: channelID}
	// Oldest first, so that the roots are in creation order.
	for i := len(res.Topics) - 1; i >= 0; i-- {
		t, ok := res.Topics[i].(*tg.ForumTopic)
		if !ok || t.ID == generalTopicID {
			continue
		}
		c.rememberTopic(channelID, t.ID, t.Title)
		if known, err := c.main.Bridge.DB.Message.GetFirstPartByID(ctx, "", c.messageID(peer, t.ID)); err != nil || known != nil {
			continue
		}
		svc := &tg.MessageService{ID: t.ID, PeerID: &tg.PeerChannel{ChannelID: channelID}, Date: t.Date,
			Action: &tg.MessageActionTopicCreate{Title: t.Title, IconColor: t.IconColor}}
		if t.FromID != nil {
			svc.SetFromID(t.FromID)
		}
		c.deliverSignal(ctx, c.topicEvent(svc), "topic_root")
	}
}

// topicsUpdater is the ChatInfo.ExtraUpdates of a forum: once the portal
// exists, its topics get their roots (in the background: the portal's
// event loop is busy with the creation).
func (c *Client) topicsUpdater(channelID int64) bridgev2.ExtraUpdater[*bridgev2.Portal] {
	return func(ctx context.Context, portal *bridgev2.Portal) bool {
		if portal.MXID == "" {
			return false
		}
		// Once per forum while the login runs: a topic made since gets its
		// root with its first message (ensureTopicRoot).
		synced := topicKey{channelID, 0}
		if _, done := c.topics.Get(synced); done {
			return false
		}
		c.topics.Put(synced, "synced")
		ctx = zerolog.Ctx(ctx).With().Str("action", "sync forum topics").Logger().WithContext(context.WithoutCancel(ctx))
		go func() {
			defer func() {
				if p := recover(); p != nil {
					zerolog.Ctx(ctx).Error().Any("panic", p).Str("stack", string(debug.Stack())).Msg("Panic while syncing forum topics")
				}
			}()
			c.syncTopics(ctx, channelID, nil)
		}()
		return false
	}
}

// handleTopicService bridges a topic's creation (its thread's root) or
// edit (a notice in its thread).
func (c *Client) handleTopicService(ctx context.Context, svc *tg.MessageService, channelID int64) {
	switch a := svc.Action.(type) {
	case *tg.MessageActionTopicCreate:
		c.rememberTopic(channelID, svc.ID, a.Title)
	case *tg.MessageActionTopicEdit:
		if title, ok := a.GetTitle(); ok {
			if topic, _ := topicOfHeader(svc.ReplyTo); topic != 0 {
				c.rememberTopic(channelID, topic, title)
			}
		}
	}
	c.deliverSignal(ctx, c.topicEvent(svc), "topic")
}

// topicEvent is the remote event of a topic's service message.
type topicEvent struct {
	*simplevent.Message[*tg.MessageService]
	description
}

// HoldPayload implements remote.Holdable.
func (e *topicEvent) HoldPayload() ([]byte, error) {
	var buf bin.Buffer
	if err := e.Data.Encode(&buf); err != nil {
		return nil, fmt.Errorf("failed to encode telegram service message: %w", err)
	}
	return heldEventPayload(heldPayload{Kind: heldKindTopic, Message: append([]byte(nil), buf.Buf...)})
}

// heldKindTopic is a held topic service message.
const heldKindTopic = "topic"

// decodeHeldTopic rebuilds a held topic service message.
func (c *Client) decodeHeldTopic(p heldPayload) (bridgev2.RemoteEvent, error) {
	var svc tg.MessageService
	if err := svc.Decode(&bin.Buffer{Buf: p.Message}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeldPayload, err)
	}
	if _, ok := svc.PeerID.(*tg.PeerChannel); !ok {
		return nil, fmt.Errorf("%w: a topic outside a forum", ErrBadHeldPayload)
	}
	return c.topicEvent(&svc), nil
}

func (c *Client) topicEvent(svc *tg.MessageService) *topicEvent {
	channelID := svc.PeerID.(*tg.PeerChannel).ChannelID
	peer := tgid.Peer{Type: tgid.PeerChannel, ID: channelID}
	sender := c.channelSender(svc.FromID, channelID)
	evt := &topicEvent{
		Message: &simplevent.Message[*tg.MessageService]{
			EventMeta:          messageMeta(bridgev2.RemoteEventMessage, tgid.MakePortalKey(peer, c.login.ID), peer, sender, svc.ID, svc.Date).WithCreatePortal(true),
			Data:               svc,
			ID:                 c.messageID(peer, svc.ID),
			ConvertMessageFunc: c.convertTopicService,
		},
		description: description{chat: c.channelChat(channelID)},
	}
	if !sender.IsFromMe {
		if id, err := tgid.ParseUserID(sender.Sender); err == nil {
			evt.sender = c.cachedIdentity(id)
		}
	}
	return evt
}

// convertTopicService converts a topic's creation into its thread's root
// and an edit into a notice in the thread.
func (c *Client) convertTopicService(_ context.Context, portal *bridgev2.Portal, _ bridgev2.MatrixAPI, svc *tg.MessageService) (*bridgev2.ConvertedMessage, error) {
	switch a := svc.Action.(type) {
	case *tg.MessageActionTopicCreate:
		return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: &event.MessageEventContent{
			MsgType: event.MsgText, Body: "Topic: " + a.Title,
			Format: event.FormatHTML, FormattedBody: "<strong>Topic:</strong> " + stdhtml.EscapeString(a.Title),
		}}}}, nil
	case *tg.MessageActionTopicEdit:
		cm := &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{Type: event.EventMessage, Content: &event.MessageEventContent{
			MsgType: event.MsgNotice, Body: topicEditText(a),
		}}}}
		if peer, err := tgid.ParsePortalID(portal.ID); err == nil {
			if topic, _ := topicOfHeader(svc.ReplyTo); topic != 0 && topic != generalTopicID {
				root := c.messageID(peer, topic)
				cm.ThreadRoot = &root
			}
		}
		return cm, nil
	}
	return nil, fmt.Errorf("%w: not a topic service message", bridgev2.ErrIgnoringRemoteEvent)
}

// topicEditText says what a topic edit changed.
func topicEditText(a *tg.MessageActionTopicEdit) string {
	if title, ok := a.GetTitle(); ok {
		return "The topic was renamed to: " + title
	}
	if closed, ok := a.GetClosed(); ok {
		if closed {
			return "The topic was closed"
		}
		return "The topic was reopened"
	}
	if hidden, ok := a.GetHidden(); ok {
		if hidden {
			return "The topic was hidden"
		}
		return "The topic is shown again"
	}
	return "The topic was edited"
}

// isTopic tells whether a message of a forum is a topic's root (its
// creation message), from the topics seen or else from Telegram.
func (c *Client) isTopic(ctx context.Context, channelID int64, id int) bool {
	if id == generalTopicID {
		return false
	}
	if ch, ok := c.channels.Get(channelID); !ok || !ch.Forum {
		return false
	}
	if title, ok := c.topics.Get(topicKey{channelID, id}); ok {
		// "" marks a message known not to be a topic's root (a topic
		// always has a title).
		return title != ""
	}
	input, err := c.inputChannel(ctx, channelID)
	if err != nil {
		return false
	}
	res, err := callWhenConnected(ctx, c, "get forum topic", func(ctx context.Context, api *tg.Client) (*tg.MessagesForumTopics, error) {
		return api.MessagesGetForumTopicsByID(ctx, &tg.MessagesGetForumTopicsByIDRequest{
			Peer: &tg.InputPeerChannel{ChannelID: input.ChannelID, AccessHash: input.AccessHash}, Topics: []int{id},
		})
	})
	if err != nil {
		return false
	}
	for _, t := range res.Topics {
		if ft, ok := t.(*tg.ForumTopic); ok && ft.ID == id {
			c.rememberTopic(channelID, id, ft.Title)
			return true
		}
	}
	c.topics.Put(topicKey{channelID, id}, "")
	return false
}

// rememberTopic caches a topic's title (never "", which marks a message
// known not to be a topic).
func (c *Client) rememberTopic(channelID int64, topic int, title string) {
	if title == "" {
		title = "#" + strconv.Itoa(topic)
	}
	c.topics.Put(topicKey{channelID, topic}, title)
}

// placeInTopic routes a Matrix message of a forum portal: in a thread
// whose root is a topic, it goes to that topic (as an answer to the
// topic's root when it answers nothing else); a reply whose target is in a
// Matrix thread that is not a topic answers it without a topic.
func (c *Client) placeInTopic(ctx context.Context, msg *bridgev2.MatrixMessage, peer tgid.Peer) {
	if peer.Type != tgid.PeerChannel {
		return
	}
	if ch, ok := c.channels.Get(peer.ID); !ok || !ch.Forum {
		return
	}
	if msg.ReplyTo != nil && msg.ReplyTo.ThreadRoot != "" {
		if key, err := tgid.ParseMessageID(msg.ReplyTo.ThreadRoot); err != nil || !c.isTopic(ctx, peer.ID, key.ID) {
			reply := *msg.ReplyTo
			reply.ThreadRoot = ""
			msg.ReplyTo = &reply
		}
	}
	if msg.ReplyTo == nil && msg.ThreadRoot != nil {
		if key, err := tgid.ParseMessageID(msg.ThreadRoot.ID); err == nil && c.isTopic(ctx, peer.ID, key.ID) {
			msg.ReplyTo = msg.ThreadRoot
		}
	}
}

// inputReplyTo is the reply_to of a message sent from Matrix that answers
// replyTo: inside a topic, the topic is named as top_msg_id.
func inputReplyTo(replyTo *database.Message) (*tg.InputReplyToMessage, bool) {
	key, err := tgid.ParseMessageID(replyTo.ID)
	if err != nil {
		return nil, false
	}
	r := &tg.InputReplyToMessage{ReplyToMsgID: key.ID}
	if replyTo.ThreadRoot != "" {
		if top, err := tgid.ParseMessageID(replyTo.ThreadRoot); err == nil && top.ID != key.ID && top.ID != generalTopicID {
			r.SetTopMsgID(top.ID)
		}
	}
	return r, true
}

// isForumPortal tells whether a portal is a forum's, from the channels
// this login saw.
func (c *Client) isForumPortal(portal *bridgev2.Portal) bool {
	if portal == nil {
		return false
	}
	peer, err := tgid.ParsePortalID(portal.ID)
	if err != nil || peer.Type != tgid.PeerChannel {
		return false
	}
	ch, ok := c.channels.Get(peer.ID)
	return ok && ch.Forum
}

// forumFeatures are a forum portal's features: threads are its topics.
func forumFeatures(f *event.RoomFeatures) *event.RoomFeatures {
	out := *f
	out.Thread = event.CapLevelFullySupported
	out.ID += "_forum"
	return &out
}
