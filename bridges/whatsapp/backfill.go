package whatsapp

import (
	"context"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/clock"
)

var _ bridgev2.BackfillingNetworkAPI = (*Client)(nil)

// History at linking: WhatsApp's phone sends the new device its chats'
// history (history sync: push names, the latest messages of every chat,
// then older ones). The connector keeps, per chat, the latest
// backfill.initial_messages (none older than max_age_days) and the chats'
// last activity (historystore.go). The chats_at_login most recent chats
// get their portal at once, through the gate (a chat resync that creates
// the portal); bridgev2 then backfills each new portal forward, and
// FetchMessages replays the chat's stored messages with the live
// converter, through the gate's backfill filter, marked read, and deletes
// them. Other chats keep theirs until their portal is made (when they next
// speak). Push names update the ghosts that exist.

// canBackfill tells whether new portals get history.
func (cl *Client) canBackfill() bool {
	return cl.main.Config.Backfill.InitialMessages > 0
}

// maxHistoryChatsPerSync caps the chats taken from one history sync.
const maxHistoryChatsPerSync = 1000

// onHistorySync handles one history sync blob.
func (cl *Client) onHistorySync(ctx context.Context, hs *waHistorySync.HistorySync) {
	log := zerolog.Ctx(ctx).With().Str("sync_type", hs.GetSyncType().String()).Uint32("chunk", hs.GetChunkOrder()).Logger()
	switch hs.GetSyncType() {
	case waHistorySync.HistorySync_PUSH_NAME:
		for _, pn := range hs.GetPushnames() {
			jid, err := types.ParseJID(pn.GetID())
			if err != nil || pn.GetPushname() == "" || pn.GetPushname() == "-" {
				continue
			}
			cl.pushNames.Put(jid.ToNonAD(), pn.GetPushname())
			cl.refreshGhost(ctx, jid, types.EmptyJID)
		}
		log.Debug().Int("push_names", len(hs.GetPushnames())).Msg("History sync: push names")
		return
	case waHistorySync.HistorySync_INITIAL_BOOTSTRAP, waHistorySync.HistorySync_RECENT, waHistorySync.HistorySync_FULL,
		waHistorySync.HistorySync_ON_DEMAND:
	default:
		return
	}
	if !cl.canBackfill() {
		return
	}
	stored, chats := 0, 0
	for i, conv := range hs.GetConversations() {
		if i >= maxHistoryChatsPerSync {
			break
		}
		if hs.GetSyncType() == waHistorySync.HistorySync_ON_DEMAND && cl.takeOnDemandConv(ctx, conv) {
			continue
		}
		n, err := cl.storeConversation(ctx, conv)
		if err != nil {
			log.Err(err).Msg("Failed to store a chat's history")
			continue
		}
		stored += n
		chats++
	}
	log.Info().Int("chats", chats).Int("messages", stored).Msg("History sync stored")
	cl.createPortalsAtLogin(ctx)
}

// storeConversation keeps what the connector may backfill of one chat of
// a history sync, and the chat's last activity. A chat whose portal has a
// room already takes nothing: bridgev2 backfills forward only.
func (cl *Client) storeConversation(ctx context.Context, conv *waHistorySync.Conversation) (int, error) {
	wa := cl.client()
	if wa == nil {
		return 0, ErrNotConnected
	}
	convJID, err := types.ParseJID(conv.GetID())
	if err != nil || cl.ignoredChat(convJID) || convJID.Server == types.NewsletterServer {
		return 0, nil
	}
	limits := cl.main.Config.Backfill
	cutoff := limits.Cutoff(clock.Or(cl.main.Clock).Now())
	var chat types.JID
	var last time.Time
	var msgs []storedHistory
	// The newest unread_count messages of the contact were unread on the
	// phone; a chat marked unread has its newest message unread.
	unread := int(conv.GetUnreadCount())
	if conv.GetMarkedAsUnread() {
		unread = max(unread, 1)
	}
	for _, hm := range conv.GetMessages() {
		wmi := hm.GetMessage()
		if wmi == nil {
			continue
		}
		evt, err := wa.ParseWebMessage(convJID, wmi)
		if err != nil {
			continue
		}
		chat = cl.chatOf(ctx, &evt.Info)
		if evt.Info.Timestamp.After(last) {
			last = evt.Info.Timestamp
		}
		if classify(evt.Message) != kindMessage || (!cutoff.IsZero() && evt.Info.Timestamp.Before(cutoff)) {
			continue
		}
		msg := storedHistory{ID: evt.Info.ID, Timestamp: evt.Info.Timestamp, Info: wmi}
		if unread > 0 && (!evt.Info.IsFromMe || conv.GetMarkedAsUnread()) {
			msg.Unread = true
			unread--
		}
		msgs = append(msgs, msg)
	}
	if chat.IsEmpty() {
		chat = cl.preferPN(ctx, convJID, types.EmptyJID)
	}
	if ts := conv.GetConversationTimestamp(); ts > 0 && time.Unix(int64(ts), 0).After(last) {
		last = time.Unix(int64(ts), 0)
	}
	if last.IsZero() {
		return 0, nil
	}
	if err = cl.main.history.touchChat(ctx, cl.login.ID, chat.String(), last); err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if key, err := waid.MakePortalKey(chat, cl.login.ID); err == nil {
		// RoomCreated, not MXID: the portal's loop writes MXID while it
		// makes the room.
		if portal, err := cl.main.Bridge.GetExistingPortalByKey(ctx, key); err == nil && portal != nil && portal.RoomCreated.IsSet() {
			return 0, nil
		}
	}
	if len(msgs) > limits.InitialMessages {
		// The history sync gives the newest first.
		msgs = msgs[:limits.InitialMessages]
	}
	return len(msgs), cl.main.history.put(ctx, cl.login.ID, chat.String(), msgs, limits.InitialMessages, cutoff)
}

// createPortalsAtLogin makes the portals of the chats_at_login most recent
// chats that have none yet, each through the gate.
func (cl *Client) createPortalsAtLogin(ctx context.Context) {
	n := cl.main.Config.Backfill.ChatsAtLogin
	if n <= 0 {
		return
	}
	chats, err := cl.main.history.recentChats(ctx, cl.login.ID, n)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to list the chats to make portals for")
		return
	}
	for _, c := range chats {
		chat, err := types.ParseJID(c)
		if err != nil {
			continue
		}
		key, err := waid.MakePortalKey(chat, cl.login.ID)
		if err != nil {
			continue
		}
		if portal, err := cl.main.Bridge.GetExistingPortalByKey(ctx, key); err == nil && portal != nil && portal.RoomCreated.IsSet() {
			continue
		}
		cl.resyncChat(ctx, chat, true)
	}
}

// FetchMessages implements bridgev2.BackfillingNetworkAPI. Backward, it
// asks the phone for older messages (ondemand.go). Forward (the only way
// on the homeservers Passerelle targets, which have no batch sending), it
// replays the chat's stored history after the anchor (all of it for a new
// portal), converted as live messages are, pinging nobody, with the
// reactions it had, through the gateway's backfill filter, marked read.
// A message the portal already has (bridged live) is left out.
func (cl *Client) FetchMessages(ctx context.Context, params bridgev2.FetchMessagesParams) (*bridgev2.FetchMessagesResponse, error) {
	if !cl.canBackfill() {
		return &bridgev2.FetchMessagesResponse{Forward: params.Forward}, nil
	}
	if !params.Forward {
		return cl.fetchOlder(ctx, params)
	}
	wa := cl.client()
	if wa == nil {
		return nil, ErrNotConnected
	}
	chat, err := waid.ParsePortalID(params.Portal.ID)
	if err != nil {
		return nil, err
	}
	// Nothing older than max_age_days now (the history may have waited
	// for the chat's portal).
	after := cl.main.Config.Backfill.Cutoff(clock.Or(cl.main.Clock).Now())
	if params.AnchorMessage != nil && params.AnchorMessage.Timestamp.After(after) {
		after = params.AnchorMessage.Timestamp
	}
	stored, err := cl.main.history.messages(ctx, cl.login.ID, chat.String(), after)
	if err != nil {
		return nil, err
	}
	if len(stored) == 0 {
		return &bridgev2.FetchMessagesResponse{Forward: true}, nil
	}
	limit := cl.main.Config.Backfill.InitialMessages
	if params.Count > 0 {
		limit = min(limit, params.Count)
	}
	if len(stored) > limit {
		stored = stored[len(stored)-limit:]
	}
	hist := cl.historyOf(ctx, params.Portal, chat, stored)
	last := stored[len(stored)-1].Timestamp
	out := cl.main.FilterBackfill(ctx, hist)
	zerolog.Ctx(ctx).Info().Int("stored", len(stored)).Int("bridged", len(out)).Msg("Replaying a WhatsApp chat's history")
	login, chatKey := cl.login.ID, chat.String()
	forget := func() {
		if err := cl.main.history.forget(context.WithoutCancel(ctx), login, chatKey, last); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to delete a chat's replayed history")
		}
	}
	if len(out) == 0 {
		forget()
		return &bridgev2.FetchMessagesResponse{Forward: true}, nil
	}
	// The staff member's Matrix read marker moves past the history only
	// when the phone had read all of it.
	markRead := !slices.ContainsFunc(stored, func(m storedHistory) bool { return m.Unread })
	return &bridgev2.FetchMessagesResponse{Messages: out, Forward: true, MarkRead: markRead, CompleteCallback: forget}, nil
}

// historyOf converts stored, oldest first, into the history of chat for
// the backfill of portal.
func (cl *Client) historyOf(ctx context.Context, portal *bridgev2.Portal, chat types.JID, stored []storedHistory) remote.History {
	hist := remote.History{Login: cl.login, Portal: portal, Chat: cl.cachedChat(ctx, chat)}
	if chat.Server == types.DefaultUserServer || chat.Server == types.HiddenUserServer {
		hist.Remote, _ = waid.MakeUserID(chat)
		hist.Identity, _ = cl.DescribeRemoteUser(ctx, hist.Remote)
	}
	// IDs of the batch's messages: a reply to one of them points at it
	// (bridgev2 sends them in order, each before the next is resolved).
	batch := map[string]networkid.MessageID{}
	for _, sm := range stored {
		if hm, ok := cl.historyMessage(ctx, portal, chat, sm, batch); ok {
			hist.Messages = append(hist.Messages, hm)
		}
	}
	return hist
}

// historyMessage converts one stored message for the backfill of portal.
func (cl *Client) historyMessage(ctx context.Context, portal *bridgev2.Portal, chat types.JID, sm storedHistory, batch map[string]networkid.MessageID) (remote.HistoryMessage, bool) {
	log := zerolog.Ctx(ctx).With().Str("wa_message_id", sm.ID).Logger()
	wa := cl.client()
	if wa == nil {
		return remote.HistoryMessage{}, false
	}
	evt, err := wa.ParseWebMessage(chat, sm.Info)
	if err != nil {
		log.Debug().Err(err).Msg("Left out a history message that does not parse")
		return remote.HistoryMessage{}, false
	}
	_, senderJID := cl.sender(ctx, &evt.Info)
	msgID, err := waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: senderJID, ID: evt.Info.ID})
	if err != nil {
		return remote.HistoryMessage{}, false
	}
	if existing, err := cl.main.Bridge.DB.Message.GetFirstPartByID(ctx, portal.Receiver, msgID); err == nil && existing != nil {
		return remote.HistoryMessage{}, false // bridged live already
	}
	var replyTo *networkid.MessageOptionalPartID
	if ci := contextInfoOf(evt.Message); ci.GetStanzaID() != "" {
		if target, ok := batch[ci.GetStanzaID()]; ok {
			replyTo = &networkid.MessageOptionalPartID{MessageID: target}
			// No quote fallback: the reply points at its message.
			evt.Message = proto.Clone(evt.Message).(*waE2E.Message)
			contextInfoOf(evt.Message).QuotedMessage = nil
		}
	}
	me, err := cl.messageEvent(ctx, evt, chat, senderJID)
	if err != nil {
		return remote.HistoryMessage{}, false
	}
	sender := me.GetSender()
	intent, ok := portal.GetIntentFor(ctx, sender, cl.login, bridgev2.RemoteEventBackfill)
	if !ok {
		return remote.HistoryMessage{}, false
	}
	conv, err := me.ConvertMessage(ctx, portal, intent)
	if err != nil {
		log.Warn().Err(err).Msg("Failed to convert a message of the history; left out")
		return remote.HistoryMessage{}, false
	}
	if replyTo != nil {
		conv.ReplyTo = replyTo
	}
	for _, part := range conv.Parts {
		if part.Content != nil {
			// History pings nobody: its mentions stay links.
			part.Content.Mentions = &event.Mentions{}
		}
	}
	batch[evt.Info.ID] = msgID
	bm := &bridgev2.BackfillMessage{ConvertedMessage: conv, Sender: sender, ID: msgID, Timestamp: evt.Info.Timestamp,
		StreamOrder: evt.Info.Timestamp.UnixMilli()}
	for _, r := range sm.Info.GetReactions() {
		if r.GetText() == "" {
			continue
		}
		var rsender bridgev2.EventSender
		if r.GetKey().GetFromMe() {
			rsender = cl.eventSender(&types.MessageInfo{MessageSource: types.MessageSource{IsFromMe: true}}, cl.jid)
		} else {
			jid, err := types.ParseJID(r.GetKey().GetParticipant())
			if err != nil {
				jid = chat
			}
			rsender = cl.eventSender(&types.MessageInfo{}, cl.preferPN(ctx, jid, types.EmptyJID))
		}
		bm.Reactions = append(bm.Reactions, &bridgev2.BackfillReaction{
			Sender: rsender, Emoji: r.GetText(), Timestamp: time.UnixMilli(r.GetSenderTimestampMS()),
		})
	}
	return remote.HistoryMessage{Message: bm, Sender: me.RemoteSender(), FromMe: sender.IsFromMe, HasMedia: len(me.RemoteMedia()) > 0}, true
}
