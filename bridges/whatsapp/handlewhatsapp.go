package whatsapp

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/wafmt"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

var (
	_ bridgev2.RemoteMessage       = (*simplevent.Message[*events.Message])(nil)
	_ bridgev2.RemoteMessageUpsert = (*simplevent.Message[*events.Message])(nil)
	_ bridgev2.RemoteEdit          = (*simplevent.Message[*events.Message])(nil)
	_ bridgev2.RemoteChatResync    = (*simplevent.ChatResync)(nil)
)

// PlaceholderText is shown for a message that could not be decrypted yet;
// it is edited into the real message when a retry decrypts it.
const PlaceholderText = "⏳ Waiting for this message. Check your phone."

// handleEvent is whatsmeow's event handler. It returns false when an event
// could not be handled, so that whatsmeow does not acknowledge it.
func (cl *Client) handleEvent(rawEvt any) (ok bool) {
	ctx := cl.eventContext()
	cl.main.handling.Add(1)
	defer cl.main.handling.Add(-1)
	defer func() {
		if logPanic(ctx, rawEvt, recover()) {
			ok = false
		}
	}()
	switch evt := rawEvt.(type) {
	case *events.Connected:
		cl.onConnected(ctx)
	case *events.Disconnected:
		cl.onDisconnected(ctx)
	case *events.LoggedOut:
		cl.onFatal(ctx, StateErrLoggedOut,
			"WhatsApp: the phone unlinked this device (logged out). Log in again to keep bridging "+cl.accountName()+".", true)
	case *events.StreamReplaced:
		cl.onStreamReplaced(ctx)
	case *events.ConnectFailure:
		cl.onFatal(ctx, StateErrConnectFailed, fmt.Sprintf("WhatsApp refused the connection (%s)", evt.Reason), false)
	case *events.ClientOutdated:
		cl.onFatal(ctx, StateErrConnectFailed, "WhatsApp says this client is outdated; the gateway needs an update", false)
	case *events.TemporaryBan:
		cl.onFatal(ctx, StateErrConnectFailed, "WhatsApp temporarily banned this account: "+evt.String(), false)
	case *events.OfflineSyncPreview:
		cl.onOfflinePreview(ctx, evt)
	case *events.OfflineSyncCompleted:
		// Reported once the lanes have bridged the queue.
		if !cl.afterChats(ctx) {
			return false
		}
		cl.onOfflineCompleted(ctx, evt)
	case *events.HistorySync:
		if !cl.afterChats(ctx) {
			return false
		}
		cl.onHistorySync(ctx, evt.Data)
	case *events.Message:
		// In its chat's lane (lanes.go); a message's handling reads its
		// sender's ghost without the ghost's lock, so profile changes (which
		// whatsmeow sends from other goroutines too: a push name from its
		// own, beside the message that carried it) refresh ghosts while no
		// message is being handled.
		return cl.onMessage(ctx, evt)
	case *events.UndecryptableMessage:
		return cl.handleInChat(ctx, cl.laneOf(ctx, evt.Info.MessageSource), evt, func() bool {
			ctx, done := cl.reading(ctx)
			defer done()
			return cl.handleUndecryptable(ctx, evt)
		})
	case *events.Receipt:
		// After the messages of its chat handed over before it; a receipt
		// is not worth holding the receive loop for.
		cl.laterInChat(ctx, evt.MessageSource, evt, func(ctx context.Context) { cl.handleReceipt(ctx, evt) })
	case *events.ChatPresence:
		cl.laterInChat(ctx, evt.MessageSource, evt, func(ctx context.Context) { cl.handleChatPresence(ctx, evt) })
	case *events.Presence:
		cl.handlePresence(ctx, evt)
	case *events.PushNameSetting:
		cl.announcePresence(ctx)
	case *events.DeleteForMe:
		// Deleted on the staff member's own phone for themselves only:
		// the message stays for everyone else, and in the portal.
		zerolog.Ctx(ctx).Debug().Str("wa_message_id", evt.MessageID).Msg("Ignoring a delete-for-me from another device")
	case *events.MediaRetry:
		cl.onMediaRetry(ctx, evt)
	case *events.PushName:
		// A changed name, or the first name seen for a ghost that already
		// exists (a group member made before they wrote). A ghost that does
		// not exist yet reads its info itself when bridgev2 makes it.
		var chat types.JID
		if evt.Message != nil {
			chat = cl.chatOf(ctx, evt.Message)
		}
		cl.queueRefresh(ctx, evt.JID, chat, false)
	case *events.Contact:
		cl.queueRefresh(ctx, evt.JID, types.EmptyJID, false)
	case *events.Picture:
		cl.queueRefresh(ctx, evt.JID, types.EmptyJID, evt.JID.Server == types.GroupServer)
	case *events.NewsletterJoin, *events.NewsletterLeave:
		if !cl.afterChats(ctx) {
			return false
		}
		cl.handleNewsletterEvent(ctx, evt)
	case *events.JoinedGroup:
		// A community's parent group becomes its space (communityChatInfo).
		return cl.groupChange(ctx, evt.JID, evt, evt.DeferAck, func(ctx context.Context) { cl.resyncChat(ctx, evt.JID, true) })
	case *events.GroupInfo:
		return cl.groupChange(ctx, evt.JID, evt, evt.DeferAck, func(ctx context.Context) { cl.onGroupInfo(ctx, evt) })
	}
	return true
}

func (cl *Client) onGroupInfo(ctx context.Context, evt *events.GroupInfo) {
	if evt.Name != nil {
		cl.rememberGroupName(evt.JID, evt.Name.Name)
	}
	if slices.ContainsFunc(evt.Leave, cl.isMe) {
		cl.leftGroup(ctx, evt.JID, evt.Timestamp)
		return
	}
	if evt.Ephemeral != nil {
		cl.groupTimerChange(ctx, evt)
	}
	cl.memberChanges(ctx, evt)
	// Added to a group (or joined it from a link): its portal is made.
	cl.resyncChat(ctx, evt.JID, cl.joinedSelf(evt.Join))
}

func (cl *Client) onConnected(ctx context.Context) {
	cl.mu.Lock()
	wasNoticed := cl.noticed
	cl.attempts, cl.noticed = 0, false
	cl.mu.Unlock()
	cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnected})
	cl.resetPresenceSubscriptions()
	cl.announcePresence(ctx)
	go cl.subscribeDirectChats(ctx)
	if wasNoticed {
		cl.sendNotice(ctx, "Reconnected to WhatsApp for "+cl.accountName()+".")
	}
	cl.syncNewsletters(ctx)
}

func (cl *Client) onDisconnected(ctx context.Context) {
	cl.mu.Lock()
	stopped, noticed := cl.stopped, cl.noticed
	cl.noticed = true
	cl.mu.Unlock()
	if stopped {
		return
	}
	zerolog.Ctx(ctx).Warn().Msg("Disconnected from WhatsApp, reconnecting")
	cl.login.BridgeState.Send(status.BridgeState{
		StateEvent: status.StateTransientDisconnect,
		Error:      StateErrDisconnected,
		Message:    "Disconnected from WhatsApp, reconnecting",
	})
	if !noticed {
		cl.sendNotice(ctx, "The WhatsApp connection of "+cl.accountName()+" was lost; reconnecting.")
	}
	cl.reconnect()
}

// streamReplacedState is the bridge state's message for a login whose
// session another connection took over; the admins see it too, so it does
// not name the account.
const streamReplacedState = "another connection took over this WhatsApp session (stream replaced); `" +
	remote.ReconnectCommand + "` takes it back without a new pairing"

// streamReplacedNotice is the staff member's notice for it.
func streamReplacedNotice(account string) string {
	return "WhatsApp: another connection took over the session of " + account + " (stream replaced), so the bridge stopped using it. " +
		"Send `" + remote.ReconnectCommand + "` to take it back; no new pairing is needed."
}

// onStreamReplaced: another client connected with this device's keys and
// WhatsApp ended this connection. whatsmeow does not reconnect (the two
// would take the session from each other in turn); the keys stay valid, so
// the reconnect command brings the login back without pairing. The state is
// UNKNOWN_ERROR with a restart action: not bad credentials, and not a
// disconnection that ends by itself.
func (cl *Client) onStreamReplaced(ctx context.Context) {
	if cl.stop(false) {
		return
	}
	cl.mu.Lock()
	cl.noticed = true // the next connection says "Reconnected"
	cl.mu.Unlock()
	zerolog.Ctx(ctx).Warn().Str("reason", string(StateErrStreamReplaced)).Msg("WhatsApp connection ended")
	cl.login.BridgeState.Send(status.BridgeState{
		StateEvent: status.StateUnknownError,
		Error:      StateErrStreamReplaced,
		Message:    streamReplacedState,
		UserAction: status.UserActionRestart,
	})
	cl.sendNotice(ctx, streamReplacedNotice(cl.accountName()))
}

// stop ends the connection loop after an event after which the connection
// is not retried. It reports whether the login was already logged out (the
// event then needs no new state or notice).
func (cl *Client) stop(loggedOut bool) (already bool) {
	cl.mu.Lock()
	already = cl.stopped && cl.loggedOut
	cl.stopped = true
	if loggedOut {
		cl.loggedOut = true
	}
	cancel := cl.stopLoop
	cl.stopLoop = nil
	cl.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return already
}

// onFatal handles an event after which the connection is not retried.
func (cl *Client) onFatal(ctx context.Context, code status.BridgeStateErrorCode, message string, loggedOut bool) {
	if cl.stop(loggedOut) {
		return
	}
	if loggedOut {
		// whatsmeow deletes the device too, in the background; make sure
		// no keys of an unlinked device stay behind.
		cl.deleteDevice(ctx)
	}
	zerolog.Ctx(ctx).Warn().Str("reason", string(code)).Msg("WhatsApp connection ended")
	cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateBadCredentials, Error: code, Message: message})
	cl.sendNotice(ctx, message)
}

// preferPN returns the phone-number form of a user JID when it is known.
func (cl *Client) preferPN(ctx context.Context, jid, alt types.JID) types.JID {
	jid = jid.ToNonAD()
	if jid.Server != types.HiddenUserServer {
		return jid
	}
	if alt.Server == types.DefaultUserServer {
		return alt.ToNonAD()
	}
	if wa := cl.client(); wa != nil && wa.Store != nil && wa.Store.LIDs != nil {
		if pn, err := wa.Store.LIDs.GetPNForLID(ctx, jid); err == nil && !pn.IsEmpty() {
			return pn.ToNonAD()
		}
	}
	return jid
}

// sender is the bridgev2 sender of a message.
func (cl *Client) sender(ctx context.Context, info *types.MessageInfo) (bridgev2.EventSender, types.JID) {
	if info.IsFromMe {
		return cl.eventSender(info, cl.jid), cl.jid
	}
	jid := cl.preferPN(ctx, info.Sender, info.SenderAlt)
	return cl.eventSender(info, jid), jid
}

// eventSender is the bridgev2 sender of a message sent by senderJID (the
// account itself when the message is from me).
func (cl *Client) eventSender(info *types.MessageInfo, senderJID types.JID) bridgev2.EventSender {
	if info.IsFromMe {
		self, _ := waid.MakeUserID(cl.jid)
		return bridgev2.EventSender{IsFromMe: true, SenderLogin: cl.login.ID, Sender: self}
	}
	userID, _ := waid.MakeUserID(senderJID)
	return bridgev2.EventSender{Sender: userID}
}

// chatOf is the chat of a message as the portal sees it: the group, or the
// other user of a direct chat (phone form when known).
func (cl *Client) chatOf(ctx context.Context, info *types.MessageInfo) types.JID {
	if waid.IsSharedChat(info.Chat) || info.Chat == types.StatusBroadcastJID {
		return info.Chat
	}
	alt := info.SenderAlt
	if info.IsFromMe {
		alt = info.RecipientAlt
	}
	return cl.preferPN(ctx, info.Chat, alt)
}

// messageText returns the text and mentions of a message, and whether it
// carries anything that a user would see.
func messageText(msg *waE2E.Message) (text string, mentioned []string, visible bool) {
	if msg == nil {
		return "", nil, false
	}
	if m := msg.GetEphemeralMessage().GetMessage(); m != nil {
		return messageText(m)
	}
	if m := msg.GetViewOnceMessage().GetMessage(); m != nil {
		return messageText(m)
	}
	if t := msg.GetConversation(); t != "" {
		return t, nil, true
	}
	if ext := msg.GetExtendedTextMessage(); ext != nil {
		return ext.GetText(), ext.GetContextInfo().GetMentionedJID(), true
	}
	// What is left is either invisible plumbing (sender key distribution,
	// protocol messages, message context) or a kind not bridged yet.
	clone := proto.Clone(msg).(*waE2E.Message)
	clone.SenderKeyDistributionMessage = nil
	clone.MessageContextInfo = nil
	clone.ProtocolMessage = nil
	return "", nil, !isEmptyMessage(clone)
}

func isEmptyMessage(msg *waE2E.Message) bool {
	return proto.Size(msg) == 0
}

func (cl *Client) handleMessage(ctx context.Context, evt *events.Message) bool {
	info := &evt.Info
	if cl.ignoredChat(info.Chat) {
		return true
	}
	log := zerolog.Ctx(ctx).With().Str("wa_message_id", info.ID).Logger()
	cl.rememberPushName(info)
	_, senderJID := cl.sender(ctx, info)
	chat := cl.chatOf(ctx, info)
	remoteEvt, err := cl.remoteEvent(ctx, evt, chat, senderJID)
	if err != nil {
		log.Warn().Err(err).Msg("Dropping message the bridge cannot address")
		return true
	} else if remoteEvt == nil {
		return true
	}
	if !info.IsFromMe && chat.Server == types.DefaultUserServer {
		cl.subscribePresence(ctx, chat)
	}
	if !waid.IsSharedChat(chat) {
		return cl.deliver(ctx, remoteEvt)
	}
	// A group or a channel: one portal for every login in it; the first
	// login's copy is bridged, the others' recognised.
	key := groupMessageKey(chat, senderJID, info.ID)
	if isNewsletterEdit(evt) {
		key += "|" + evt.NewsletterMeta.EditTS.String()
	}
	if !cl.main.seen.claim(key, cl.login.ID, 0) {
		log.Debug().Msg("Group message already bridged through another login")
		return true
	}
	endTurn := cl.creationTurn(ctx, remoteEvt)
	unlock := cl.main.lockGroup(chat)
	res := cl.main.Deliver(ctx, cl.login, remoteEvt)
	unlock()
	endTurn()
	if res.Success || res.Ignored {
		return true
	}
	cl.main.seen.release(key, cl.login.ID)
	if ctx.Err() != nil {
		log.Warn().Err(res.Error).Msg("Event not bridged before the client stopped; not acknowledging it")
		return false
	}
	log.Error().Err(res.Error).Msg("Failed to bridge event")
	return true
}

// deliver bridges one remote event, trying again while the failure passes
// (see remote.Hooks.Deliver). It reports whether whatsmeow may acknowledge
// the event: not when the client stopped before it was bridged, so that the
// server sends it again on the next connection (whatsmeow keeps its
// decrypted form in the event buffer).
func (cl *Client) deliver(ctx context.Context, evt bridgev2.RemoteEvent) bool {
	endTurn := cl.creationTurn(ctx, evt)
	defer endTurn()
	return cl.deliverInTurn(ctx, evt)
}

// deliverInTurn is deliver for a caller that holds the creation turn
// already (a portal's creation asking for its community's space).
func (cl *Client) deliverInTurn(ctx context.Context, evt bridgev2.RemoteEvent) bool {
	res := cl.main.Deliver(ctx, cl.login, evt)
	if res.Success || res.Ignored {
		return true
	}
	if ctx.Err() != nil {
		zerolog.Ctx(ctx).Warn().Err(res.Error).Msg("Event not bridged before the client stopped; not acknowledging it")
		return false
	}
	zerolog.Ctx(ctx).Error().Err(res.Error).Msg("Failed to bridge event")
	return true
}

// messageEvent builds the remote event of a message in chat (the portal's
// chat: the group, or the other user in phone form when known) from sender
// (in the same form). It is holdable: the gate can keep it while its chat
// waits for approval, and DecodeHeldEvent rebuilds it from its payload.
func (cl *Client) messageEvent(ctx context.Context, evt *events.Message, chat, senderJID types.JID) (*messageEvent, error) {
	return cl.messageEventWith(ctx, evt, chat, senderJID, mediaState{})
}

// messageEventWith is messageEvent for a message whose file is in the
// expired-media retry (st).
func (cl *Client) messageEventWith(ctx context.Context, evt *events.Message, chat, senderJID types.JID, st mediaState) (*messageEvent, error) {
	info := &evt.Info
	text, mentioned, _ := messageText(evt.Message)
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return nil, err
	}
	msgID, err := waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: senderJID, ID: info.ID})
	if err != nil {
		return nil, err
	}
	sender := cl.eventSender(info, senderJID)
	convertBody := func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, data *events.Message) (*bridgev2.ConvertedMessage, error) {
		reply := cl.replyOf(ctx, portal, chat, data)
		if parts, ok := cl.convertMedia(ctx, portal, intent, data, sender, st); ok {
			return &bridgev2.ConvertedMessage{Parts: parts, ReplyTo: reply.target}, nil
		}
		var content *event.MessageEventContent
		if text == "" {
			content = &event.MessageEventContent{MsgType: event.MsgNotice,
				Body: "This kind of WhatsApp message is not bridged yet; see it on your phone."}
		} else {
			content = wafmt.ToMatrix(ctx, cl.fmtDeps(portal), text, mentioned)
		}
		if reply.target == nil && reply.quote != "" {
			addQuoteFallback(content, reply.quote)
		}
		return &bridgev2.ConvertedMessage{ReplyTo: reply.target, Parts: []*bridgev2.ConvertedMessagePart{{
			Type: event.EventMessage, Content: content,
			DBMetadata: &waid.MessageMetadata{SenderJID: info.Sender.ToNonAD().String()},
		}}}, nil
	}
	convert := func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, data *events.Message) (*bridgev2.ConvertedMessage, error) {
		conv, err := convertBody(ctx, portal, intent, data)
		if conv != nil {
			conv.Disappear = cl.disappearOf(data.Message)
		}
		return conv, err
	}
	msg := &simplevent.Message[*events.Message]{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventMessageUpsert,
			PortalKey:    portalKey,
			Sender:       sender,
			CreatePortal: true,
			Timestamp:    info.Timestamp,
			LogContext: func(c zerolog.Context) zerolog.Context {
				return c.Str("wa_message_id", info.ID)
			},
		},
		Data:               evt,
		ID:                 msgID,
		ConvertMessageFunc: convert,
		HandleExistingFunc: func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, data *events.Message) (bridgev2.UpsertResult, error) {
			if !meta.Get[waid.MessageMetadata](existing[0].Metadata).Placeholder && !isNewsletterEdit(data) {
				return bridgev2.UpsertResult{}, nil // a duplicate
			}
			return bridgev2.UpsertResult{SubEvents: []bridgev2.RemoteEvent{&simplevent.Message[*events.Message]{
				EventMeta: simplevent.EventMeta{
					Type: bridgev2.RemoteEventEdit, PortalKey: portalKey, Sender: sender, Timestamp: info.Timestamp,
				},
				Data:          data,
				ID:            msgID,
				TargetMessage: msgID,
				ConvertEditFunc: func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, data *events.Message) (*bridgev2.ConvertedEdit, error) {
					converted, err := convert(ctx, portal, intent, data)
					if err != nil {
						return nil, err
					}
					meta.Get[waid.MessageMetadata](existing[0].Metadata).Placeholder = false
					part := converted.Parts[0]
					part.DBMetadata = nil
					return &bridgev2.ConvertedEdit{ModifiedParts: []*bridgev2.ConvertedEditPart{part.ToEditPart(existing[0])}}, nil
				},
			}}}, nil
		},
	}
	me := &messageEvent{Message: msg, heldBase: heldBase{client: cl, data: evt, chat: chat, sender: senderJID}}
	me.describe(ctx, sender)
	return me, nil
}

func (cl *Client) handleUndecryptable(ctx context.Context, evt *events.UndecryptableMessage) bool {
	info := &evt.Info
	if cl.ignoredChat(info.Chat) {
		return true
	}
	chat := cl.chatOf(ctx, info)
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return true
	}
	sender, senderJID := cl.sender(ctx, info)
	msgID, err := waid.MakeMessageID(waid.MessageKey{Chat: chat, Sender: senderJID, ID: info.ID})
	if err != nil {
		return true
	}
	zerolog.Ctx(ctx).Debug().Str("wa_message_id", info.ID).Bool("unavailable", evt.IsUnavailable).
		Msg("Bridging a placeholder for an undecryptable message")
	return cl.deliver(ctx, &simplevent.Message[*events.UndecryptableMessage]{
		EventMeta: simplevent.EventMeta{
			Type: bridgev2.RemoteEventMessage, PortalKey: portalKey, Sender: sender, CreatePortal: true, Timestamp: info.Timestamp,
		},
		Data: evt,
		ID:   msgID,
		ConvertMessageFunc: func(context.Context, *bridgev2.Portal, bridgev2.MatrixAPI, *events.UndecryptableMessage) (*bridgev2.ConvertedMessage, error) {
			return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
				Type:       event.EventMessage,
				Content:    &event.MessageEventContent{MsgType: event.MsgNotice, Body: PlaceholderText},
				DBMetadata: &waid.MessageMetadata{SenderJID: info.Sender.ToNonAD().String(), Placeholder: true},
			}}}, nil
		},
	})
}

// refreshGhost updates the name and picture of a ghost that exists after a
// push name, contact or picture change: a ghost is made only when a message
// of its user passed the governance gate. A change noticed with a group
// message runs in that group portal's loop, as a member change: bridgev2's
// portal loops read a ghost's fields without its lock, so an update from
// whatsmeow's goroutine races with the group's loop that is handling the
// very message. Other changes (and a group without a room) update the
// ghost here.
func (cl *Client) refreshGhost(ctx context.Context, jid, chat types.JID) {
	pn := cl.preferPN(ctx, jid, types.EmptyJID)
	userID, err := waid.MakeUserID(pn)
	if err != nil {
		return
	}
	ghost, err := cl.main.Bridge.GetExistingGhostByID(ctx, userID)
	if err != nil || ghost == nil {
		return
	}
	info, err := cl.GetUserInfo(ctx, ghost)
	if err != nil || info == nil {
		return
	}
	if chat.Server != types.GroupServer {
		ghost.UpdateInfo(ctx, info)
		return
	}
	if key, err := waid.MakePortalKey(chat, cl.login.ID); err == nil {
		if portal, err := cl.main.Bridge.GetExistingPortalByKey(ctx, key); err == nil && portal != nil && portal.RoomCreated.IsSet() {
			member := bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: userID}, Membership: event.MembershipJoin, UserInfo: info}
			cl.deliver(ctx, &simplevent.ChatInfoChange{
				EventMeta: simplevent.EventMeta{
					Type: bridgev2.RemoteEventChatInfoChange, PortalKey: key, Sender: member.EventSender, Timestamp: time.Now(),
				},
				ChatInfoChange: &bridgev2.ChatInfoChange{MemberChanges: &bridgev2.ChatMemberList{
					MemberMap: bridgev2.ChatMemberMap{userID: member},
				}},
			})
			return
		}
	}
	ghost.UpdateInfo(ctx, info)
}

// resyncChat brings a group portal up to date (and creates it when the
// account was added to a group).
func (cl *Client) resyncChat(ctx context.Context, chat types.JID, create bool) {
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return
	}
	defer cl.main.lockGroup(chat)()
	cl.deliver(ctx, &simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type: bridgev2.RemoteEventChatResync, PortalKey: portalKey, CreatePortal: create, Timestamp: time.Now(),
		},
		GetChatInfoFunc: func(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
			return cl.GetChatInfo(ctx, portal)
		},
	})
}

// leftGroup takes the staff member out of a group portal when their
// account left (or was removed from) the group on WhatsApp: their Matrix
// user leaves the room and their login is no longer in the portal, so that
// Matrix → WhatsApp in it no longer goes through them.
func (cl *Client) leftGroup(ctx context.Context, chat types.JID, ts time.Time) {
	portalKey, err := waid.MakePortalKey(chat, cl.login.ID)
	if err != nil {
		return
	}
	self, member := cl.selfMember()
	member.Membership = event.MembershipLeave
	unlock := cl.main.lockGroup(chat)
	defer unlock()
	cl.deliver(ctx, &simplevent.ChatInfoChange{
		EventMeta: simplevent.EventMeta{
			Type: bridgev2.RemoteEventChatInfoChange, PortalKey: portalKey, Sender: member.EventSender, Timestamp: ts,
		},
		ChatInfoChange: &bridgev2.ChatInfoChange{MemberChanges: &bridgev2.ChatMemberList{
			MemberMap: bridgev2.ChatMemberMap{self: member},
		}},
	})
	up, err := cl.main.Bridge.DB.UserPortal.Get(ctx, cl.login.UserLogin, portalKey)
	if err == nil && up != nil {
		err = cl.main.Bridge.DB.UserPortal.Delete(ctx, up)
	}
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to take the login out of a group portal it left")
	}
}

// ignoredChat tells the chats whose messages are not bridged: broadcast
// lists, and status updates unless the config bridges them.
func (cl *Client) ignoredChat(chat types.JID) bool {
	if chat == types.StatusBroadcastJID {
		return !cl.main.Config.StatusBroadcasts
	}
	return chat.Server == types.BroadcastServer
}

// isNewsletterEdit tells a channel post edited by its admins: the new
// content under the post's ID, with the edit's time (not an edit message).
func isNewsletterEdit(evt *events.Message) bool {
	return evt.Info.Chat.Server == types.NewsletterServer && evt.NewsletterMeta != nil && !evt.NewsletterMeta.EditTS.IsZero()
}
