package wasim

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
)

// History sync: after a device is linked, the phone sends it the account's
// chats as WhatsApp does: protocol messages of type
// HISTORY_SYNC_NOTIFICATION from the phone (device 0) to the new device,
// each pointing at a blob on the media server that is the
// waHistorySync.HistorySync protobuf, zlib-compressed and encrypted as
// media of type "WhatsApp History Keys". They come in this order: the push
// names of the people in the chats (PUSH_NAME), the latest messages of
// every chat (INITIAL_BOOTSTRAP, HistoryBootstrapMessages per chat), then
// the older ones (RECENT, progress 100). Each is built from the chat's
// log as the account sees it (Conversation): seeded history (SeedHistory)
// and what was sent before the device was linked, edits applied, revoked
// messages left out, reactions on their messages.

// HistoryBootstrapMessages is how many of a chat's latest messages the
// initial bootstrap sync carries; the older ones come in the recent sync.
const HistoryBootstrapMessages = 100

// maxHistoryMessages caps what one chat's history sync carries.
const maxHistoryMessages = 5000

// HistoryEntry is a message to put in a chat's past (SeedHistory).
type HistoryEntry struct {
	From string // the sender's phone number
	Text string
	// Media, when set, makes the entry a file (its caption is Text).
	Media *MediaSpec
	// ReplyTo is the ID of an earlier message of the chat it answers.
	ReplyTo string
	// Reactions are reactions on the message, by phone number.
	Reactions map[string]string
	Time      time.Time
}

// SeedHistory puts messages in the past of the chat between account phone
// and chat (a contact's phone number or a group JID), as if they had been
// sent at their times: they are in the chat's log (Conversation) and in
// the history sync of a device linked afterwards; no device gets them live.
// It returns their IDs, in order.
func (s *Server) SeedHistory(phone, chat string, entries []HistoryEntry) ([]string, error) {
	phone = normalizePhone(phone)
	group := strings.HasSuffix(chat, "@"+types.GroupServer)
	if !group {
		chat = normalizePhone(chat)
	}
	// Check everything first: a refused call seeds nothing.
	ids := make([]string, len(entries))
	byID := map[string]HistoryEntry{}
	for i, e := range entries {
		if _, err := s.account(e.From); err != nil {
			return nil, err
		}
		if _, ok := byID[e.ReplyTo]; e.ReplyTo != "" && !ok {
			m, found := s.messageByID(e.ReplyTo)
			if !found {
				return nil, fmt.Errorf("%w: %s", ErrNoSuchMessage, e.ReplyTo)
			}
			byID[e.ReplyTo] = HistoryEntry{From: m.From, Text: textOf(unwrapContent(m.Message))}
		}
		ids[i] = NewMessageID()
		byID[ids[i]] = e
	}
	for i, e := range entries {
		from := normalizePhone(e.From)
		to := chat
		if !group && from == chat {
			to = phone
		}
		msg := &waE2E.Message{Conversation: proto.String(e.Text)}
		if e.Media != nil {
			spec := *e.Media
			spec.Caption = e.Text
			m, _, err := s.MediaMessage(spec)
			if err != nil {
				return nil, err
			}
			msg = m
		} else if e.ReplyTo != "" {
			quoted := byID[e.ReplyTo]
			ci := &waE2E.ContextInfo{StanzaID: proto.String(e.ReplyTo),
				Participant:   proto.String(types.NewJID(normalizePhone(quoted.From), types.DefaultUserServer).String()),
				QuotedMessage: &waE2E.Message{Conversation: proto.String(quoted.Text)}}
			if group {
				ci.RemoteJID = proto.String(chat)
			}
			msg = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(e.Text), ContextInfo: ci}}
		}
		id := ids[i]
		s.rec.addSent(Message{ID: id, From: from, To: to, Group: group, Timestamp: e.Time, Message: msg})
		for _, r := range slices.Sorted(mapsKeys(e.Reactions)) {
			reactor := normalizePhone(r)
			key := s.keyFor(reactor, chat, from, id)
			rto := chat
			if !group && reactor == chat {
				rto = phone
			}
			s.rec.addSent(Message{ID: NewMessageID(), From: reactor, To: rto, Group: group, Timestamp: e.Time,
				Message: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: proto.String(e.Reactions[r]),
					SenderTimestampMS: proto.Int64(e.Time.UnixMilli())}}})
		}
	}
	return ids, nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// chatsOf lists the chats of account phone that have messages: contacts'
// phone numbers and group JIDs.
func (s *Server) chatsOf(phone string) []string {
	s.rec.mu.Lock()
	seen := map[string]bool{}
	var out []string
	add := func(chat string) {
		if !seen[chat] {
			seen[chat] = true
			out = append(out, chat)
		}
	}
	var groups []string
	for _, list := range [][]Message{s.rec.sent, s.rec.messages} {
		for _, m := range list {
			switch {
			case strings.HasSuffix(m.To, "@"+types.GroupServer):
				groups = append(groups, m.To)
			case m.From == phone:
				add(m.To)
			case m.To == phone:
				add(m.From)
			}
		}
	}
	s.rec.mu.Unlock()
	for _, g := range groups {
		if !seen[g] {
			if info, ok := s.GroupInfo(g); ok && slices.Contains(info.Members, phone) {
				add(g)
			} else {
				seen[g] = true
			}
		}
	}
	return out
}

// historyConversation is chat's history as account acc has it: at most
// maxHistoryMessages, newest first, and the names of who wrote.
func (s *Server) historyConversation(acc *Account, chat string, names map[string]string) *waHistorySync.Conversation {
	group := strings.HasSuffix(chat, "@"+types.GroupServer)
	chatJID := chat
	if !group {
		chatJID = types.NewJID(chat, types.DefaultUserServer).String()
	}
	entries := s.Conversation(acc.Phone, chat)
	entries = slices.DeleteFunc(entries, func(e ChatEntry) bool { return e.Revoked })
	slices.SortStableFunc(entries, func(a, b ChatEntry) int { return a.Timestamp.Compare(b.Timestamp) })
	if len(entries) > maxHistoryMessages {
		entries = entries[len(entries)-maxHistoryMessages:]
	}
	conv := &waHistorySync.Conversation{ID: proto.String(chatJID)}
	if group {
		if g, ok := s.GroupInfo(chat); ok {
			conv.Name = proto.String(g.Name)
		}
	}
	// Unread: the contact's messages after acc's last own one (writing in
	// a chat reads it, as on the phone).
	unread := uint32(0)
	for i := len(entries) - 1; i >= 0 && entries[i].From != acc.Phone; i-- {
		unread++
	}
	if unread > 0 {
		conv.UnreadCount = proto.Uint32(unread)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		fromMe := e.From == acc.Phone
		msg := e.Message
		if e.Edited {
			msg = &waE2E.Message{Conversation: proto.String(e.Text)}
		}
		info := &waWeb.WebMessageInfo{
			Key:              &waCommon.MessageKey{RemoteJID: proto.String(chatJID), FromMe: proto.Bool(fromMe), ID: proto.String(e.ID)},
			Message:          unwrapContent(msg),
			MessageTimestamp: proto.Uint64(uint64(e.Timestamp.Unix())),
		}
		if sender, ok := s.Account(e.From); ok && !fromMe {
			info.PushName = proto.String(sender.PushName)
			names[sender.JID.String()] = sender.PushName
		}
		if group && !fromMe {
			p := types.NewJID(e.From, types.DefaultUserServer).String()
			info.Key.Participant, info.Participant = proto.String(p), proto.String(p)
		}
		for _, reactor := range slices.Sorted(mapsKeys(e.Reactions)) {
			info.Reactions = append(info.Reactions, &waWeb.Reaction{
				Key: &waCommon.MessageKey{RemoteJID: proto.String(chatJID), FromMe: proto.Bool(reactor == acc.Phone), ID: proto.String(NewMessageID()),
					Participant: proto.String(types.NewJID(reactor, types.DefaultUserServer).String())},
				Text: proto.String(e.Reactions[reactor]), SenderTimestampMS: proto.Int64(e.Timestamp.UnixMilli()),
			})
		}
		conv.Messages = append(conv.Messages, &waHistorySync.HistorySyncMsg{Message: info, MsgOrderID: proto.Uint64(uint64(i + 1))})
		if conv.ConversationTimestamp == nil {
			conv.ConversationTimestamp = proto.Uint64(uint64(e.Timestamp.Unix()))
			conv.LastMsgTimestamp = conv.ConversationTimestamp
		}
	}
	return conv
}

// sendHistorySync sends the account's history to its newly linked device.
func (s *Server) sendHistorySync(ctx context.Context, acc *Account, dev *companion) error {
	chats := s.chatsOf(acc.Phone)
	if len(chats) == 0 {
		return nil
	}
	names := map[string]string{}
	var bootstrap, recent []*waHistorySync.Conversation
	for _, chat := range chats {
		conv := s.historyConversation(acc, chat, names)
		if len(conv.Messages) == 0 {
			continue
		}
		head := proto.Clone(conv).(*waHistorySync.Conversation)
		head.Messages = conv.Messages[:min(len(conv.Messages), HistoryBootstrapMessages)]
		bootstrap = append(bootstrap, head)
		if len(conv.Messages) > HistoryBootstrapMessages {
			tail := &waHistorySync.Conversation{ID: conv.ID, Name: conv.Name, Messages: conv.Messages[HistoryBootstrapMessages:]}
			recent = append(recent, tail)
		}
	}
	// The most recent chats first, as the phone lists them.
	slices.SortStableFunc(bootstrap, func(a, b *waHistorySync.Conversation) int {
		return cmp.Compare(b.GetConversationTimestamp(), a.GetConversationTimestamp())
	})
	pushNames := make([]*waHistorySync.Pushname, 0, len(names))
	for _, jid := range slices.Sorted(mapsKeys(names)) {
		pushNames = append(pushNames, &waHistorySync.Pushname{ID: proto.String(jid), Pushname: proto.String(names[jid])})
	}
	syncs := []*waHistorySync.HistorySync{
		{SyncType: waHistorySync.HistorySync_PUSH_NAME.Enum(), Pushnames: pushNames},
		{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(), Conversations: bootstrap, ChunkOrder: proto.Uint32(1), Progress: proto.Uint32(50)},
		{SyncType: waHistorySync.HistorySync_RECENT.Enum(), Conversations: recent, ChunkOrder: proto.Uint32(2), Progress: proto.Uint32(100)},
	}
	for _, hs := range syncs {
		if err := s.pushHistorySync(ctx, acc, dev, hs); err != nil {
			return err
		}
	}
	return nil
}

// pushHistorySync uploads one history sync blob and sends its notification
// from the phone to dev.
func (s *Server) pushHistorySync(ctx context.Context, acc *Account, dev *companion, hs *waHistorySync.HistorySync) error {
	raw, err := proto.Marshal(hs)
	if err != nil {
		return fmt.Errorf("failed to marshal history sync: %w", err)
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err = zw.Write(raw); err == nil {
		err = zw.Close()
	}
	if err != nil {
		return fmt.Errorf("failed to compress history sync: %w", err)
	}
	up, err := s.UploadMedia(&buf, whatsmeow.MediaHistory)
	if err != nil {
		return fmt.Errorf("failed to upload history sync: %w", err)
	}
	id := NewMessageID()
	msg := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: &waE2E.HistorySyncNotification{
			FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, DirectPath: proto.String(up.DirectPath),
			SyncType:          waE2E.HistorySyncType(hs.GetSyncType()).Enum(),
			ChunkOrder:        hs.ChunkOrder,
			Progress:          hs.Progress,
			OriginalMessageID: proto.String(id),
		},
	}}
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("failed to marshal history sync notification: %w", err)
	}
	encType, ct, err := acc.encryptTo(ctx, acc, dev, plaintext)
	if err != nil {
		return err
	}
	s.pushToDevice(dev, acc.messageNode(id, "protocol", s.now(), encType, ct, waBinary.Attrs{"from": acc.JID, "category": "peer"}))
	s.rec.notify()
	return nil
}

// historyRoutes adds the control API's history route (see ControlHandler).
func (s *Server) historyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /seed-history", func(w http.ResponseWriter, r *http.Request) {
		type entry struct {
			From      string            `json:"from"`
			Text      string            `json:"text"`
			Time      time.Time         `json:"time"`
			ReplyTo   string            `json:"reply_to"`
			Reactions map[string]string `json:"reactions"`
			Media     *struct {
				Kind string `json:"kind"`
				Data []byte `json:"data"`
				MIME string `json:"mime"`
			} `json:"media"`
		}
		var req struct {
			Phone    string  `json:"phone"`
			Chat     string  `json:"chat"`
			Count    int     `json:"count"`
			Messages []entry `json:"messages"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.Count < 0 || req.Count > maxHistoryMessages || len(req.Messages) > maxHistoryMessages {
			writeError(w, fmt.Errorf("%w: at most %d messages", errBadRequest, maxHistoryMessages))
			return
		}
		entries := make([]HistoryEntry, 0, req.Count+len(req.Messages))
		// count: texts from either side, a minute apart, ending an hour ago.
		end := s.now().Add(-time.Hour)
		other := req.Chat
		if g, ok := s.GroupInfo(req.Chat); ok {
			// In a group, the other side is its first other member.
			other = ""
			for _, m := range g.Members {
				if m != normalizePhone(req.Phone) {
					other = m
					break
				}
			}
		}
		for i := range req.Count {
			from := other
			if i%2 == 1 {
				from = req.Phone
			}
			entries = append(entries, HistoryEntry{From: from, Text: fmt.Sprintf("history %d", i+1),
				Time: end.Add(-time.Duration(req.Count-i) * time.Minute)})
		}
		for _, m := range req.Messages {
			e := HistoryEntry{From: m.From, Text: m.Text, Time: m.Time, ReplyTo: m.ReplyTo, Reactions: m.Reactions}
			if m.Media != nil {
				e.Media = &MediaSpec{Kind: m.Media.Kind, Data: m.Media.Data, MIME: m.Media.MIME}
			}
			entries = append(entries, e)
		}
		ids, err := s.SeedHistory(req.Phone, req.Chat, entries)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string][]string{"ids": ids})
	})
}

// handlePeerMessage answers what a linked device asks its phone: an
// on-demand history request gets an ON_DEMAND history sync of the chat's
// messages older than the oldest the device has.
func (s *Server) handlePeerMessage(acc *Account, dev *companion, msg *waE2E.Message) {
	req := msg.GetProtocolMessage().GetPeerDataOperationRequestMessage()
	if msg.GetProtocolMessage().GetType() != waE2E.ProtocolMessage_PEER_DATA_OPERATION_REQUEST_MESSAGE ||
		req.GetPeerDataOperationRequestType() != waE2E.PeerDataOperationRequestType_HISTORY_SYNC_ON_DEMAND {
		return
	}
	od := req.GetHistorySyncOnDemandRequest()
	jid, err := types.ParseJID(od.GetChatJID())
	if err != nil {
		return
	}
	chat := jid.String()
	if jid.Server != types.GroupServer {
		chat = jid.User
		if other := s.accountByJID(jid); other != nil {
			chat = other.Phone
		}
	}
	count := int(min(max(od.GetOnDemandMsgCount(), 1), maxHistoryMessages))
	before := time.UnixMilli(od.GetOldestMsgTimestampMS())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		conv := s.historyConversation(acc, chat, map[string]string{})
		older := conv.Messages[:0]
		for _, hm := range conv.GetMessages() {
			// Newest first: the older messages, up to count.
			if hm.GetMessage().GetKey().GetID() == od.GetOldestMsgID() ||
				!time.Unix(int64(hm.GetMessage().GetMessageTimestamp()), 0).Before(before) {
				continue
			}
			if len(older) < count {
				older = append(older, hm)
			}
		}
		conv.Messages = older
		hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_ON_DEMAND.Enum(),
			Conversations: []*waHistorySync.Conversation{conv}, ChunkOrder: proto.Uint32(1), Progress: proto.Uint32(100)}
		if err := s.pushHistorySync(s.ctx, acc, dev, hs); err != nil {
			s.log.Warn().Err(err).Msg("Failed to answer an on-demand history request")
		}
	}()
}
