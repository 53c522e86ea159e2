package tgsim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// The conversation in basic groups: messages sent by a client
// (messages.sendMessage to an inputPeerChat), replies, edits, deletions,
// reactions, read history and typing. Every member's history holds its own
// copy of a message under its own ID; each change is pushed to every member
// with that member's ID and pts.

var errChatWriteForbidden = tgerr.New(403, "CHAT_WRITE_FORBIDDEN")

// ChatMessage is a basic-group message as one member sees it.
type ChatMessage struct {
	ID        int // in the viewer's history
	From      int64
	Text      string
	Date      time.Time
	ReplyToID int       // in the viewer's history (0: not a reply)
	Edited    time.Time // zero if never edited
	Deleted   bool      // gone from the viewer's history
	Reactions []Reaction
	Media     *MediaInfo // nil for a text message
}

// withChat runs f under the simulator's lock for a request on a basic group
// the caller is a member of (its InputPeerChat).
func withChat[R any](s *Server, ctx context.Context, in tg.InputPeerClass, f func(r *request, self *user, c *basicChat) (R, error)) (R, error) {
	return withResolved(s, ctx, func(self *user) (*basicChat, error) { return s.inputChatLocked(self, in) }, f)
}

// inputChatLocked resolves an inputPeerChat that self is a member of.
func (s *Server) inputChatLocked(self *user, in tg.InputPeerClass) (*basicChat, error) {
	p, ok := in.(*tg.InputPeerChat)
	if !ok {
		return nil, errPeerIDInvalid
	}
	c, ok := s.st.chats[p.ChatID]
	if !ok {
		return nil, errPeerIDInvalid
	}
	if !c.isMember(self.acc.ID) {
		return nil, errChatWriteForbidden
	}
	if c.migratedTo != 0 {
		return nil, errChatMigrated
	}
	return c, nil
}

// chatEntryLocked is message id of u's history if it belongs to chat c and
// is still there.
func chatEntryLocked(u *user, c *basicChat, id int) (*boxEntry, bool) {
	e, ok := entryLocked(u, id)
	if !ok || e.msg.chat != c.id {
		return nil, false
	}
	return e, true
}

// postChatLocked stores a group message from a member and pushes it to
// every member's sessions but exceptSession (the sender's).
func (s *Server) postChatLocked(c *basicChat, from *user, text string, ents []tg.MessageEntityClass, media *mediaObj, replyTo int, quote string, exceptSession int64) *stored {
	var target *stored
	if e, ok := chatEntryLocked(from, c, replyTo); ok {
		target = e.msg
	}
	m := s.deliverChatLocked(c, from.acc.ID, text)
	m.entities, m.replyTo, m.media = ents, target, media
	if target != nil {
		m.quote = quote
	}
	for _, uid := range c.members {
		except := int64(0)
		if uid == from.acc.ID {
			except = exceptSession
		}
		s.pushToUserLocked(uid, except, s.chatMessageUpdatesLocked(m, uid))
	}
	return m
}

func (s *Server) chatSendMessage(ctx context.Context, req *tg.MessagesSendMessageRequest) (tg.UpdatesClass, error) {
	return withChat(s, ctx, req.Peer, func(r *request, self *user, c *basicChat) (tg.UpdatesClass, error) {
		switch {
		case strings.TrimSpace(req.Message) == "":
			return nil, errMessageEmpty
		case utf8.RuneCountInString(req.Message) > maxMessageLength:
			return nil, errMessageTooLong
		}
		entry, dup := self.sent[req.RandomID]
		if dup && req.RandomID != 0 {
			s.st.duplicateSends++
		} else {
			replyTo, quote := 0, ""
			if rt, ok := req.ReplyTo.(*tg.InputReplyToMessage); ok {
				replyTo, quote = rt.ReplyToMsgID, rt.QuoteText
			}
			m := s.postChatLocked(c, self, req.Message, req.Entities, nil, replyTo, quote, r.sess.mt.ID)
			entry = m.entries[self.acc.ID]
			if req.RandomID != 0 {
				self.sent[req.RandomID] = entry
			}
		}
		return shortSent(entry), nil
	})
}

// chatEditLocked edits editor's message id (as editor sees it) of chat c.
func (s *Server) chatEditLocked(editor *user, c *basicChat, id int, text string, ents []tg.MessageEntityClass, exceptSession int64) (*stored, error) {
	e, ok := chatEntryLocked(editor, c, id)
	if !ok {
		return nil, errMessageIDInvalid
	}
	m := e.msg
	if m.from != editor.acc.ID {
		return nil, errMessageAuthor
	}
	if w := s.st.editWindow; w > 0 && time.Since(m.date) > w {
		return nil, errEditTimeExpired
	}
	switch {
	case text == "":
		return nil, errMessageEmpty
	case utf8.RuneCountInString(text) > maxMessageLength:
		return nil, errMessageTooLong
	case text == m.text && len(ents) == 0 && len(m.entities) == 0:
		return nil, errMessageNotModified
	}
	m.text, m.entities, m.editDate = text, ents, time.Now().Truncate(time.Second)
	for _, uid := range c.members {
		if m.entries[uid] == nil || m.goneFor(uid) {
			continue
		}
		except := int64(0)
		if uid == editor.acc.ID {
			except = exceptSession
		}
		s.addEventLocked(s.st.users[uid], ptsEvent{kind: ptsEdit, msg: m}, except)
	}
	s.changedLocked()
	return m, nil
}

// chatDeleteLocked deletes a group message from by's history; with revoke
// (the author or the group's creator) from every member's, each member
// being told its own ID in others.
func (s *Server) chatDeleteLocked(by *user, m *stored, revoke bool, others map[int64][]int) {
	m.hide(by.acc.ID)
	c := s.st.chats[m.chat]
	if !revoke || c == nil || (m.from != by.acc.ID && c.creator != by.acc.ID) {
		return
	}
	for uid, e := range m.entries {
		if uid == by.acc.ID || m.goneFor(uid) {
			continue
		}
		m.hide(uid)
		others[uid] = append(others[uid], e.id)
	}
}

// chatReactLocked sets by's reactions to message id (as by sees it) of
// chat c and shows every member the new list.
func (s *Server) chatReactLocked(by *user, c *basicChat, id int, list []tg.ReactionClass, exceptSession int64) (*stored, error) {
	e, ok := chatEntryLocked(by, c, id)
	if !ok {
		return nil, errMessageIDInvalid
	}
	limit := MaxReactionsPerUser
	if by.acc.Premium {
		limit = MaxReactionsPerUserPremium
	}
	if len(list) > limit {
		return nil, errReactionsTooMany
	}
	now := time.Now().Truncate(time.Second)
	var mine []reaction
	for _, r := range list {
		v, ok := r.(*tg.ReactionEmoji)
		if !ok || !slices.Contains(AllowedReactions, v.Emoticon) {
			return nil, errReactionInvalid
		}
		mine = append(mine, reaction{user: by.acc.ID, emoticon: v.Emoticon, date: now})
	}
	m := e.msg
	kept := m.reactions[:0]
	for _, r := range m.reactions {
		if r.user != by.acc.ID {
			kept = append(kept, r)
		}
	}
	m.reactions = append(kept, mine...)
	if len(m.reactions) > maxReactions {
		m.reactions = slices.Delete(m.reactions, 0, len(m.reactions)-maxReactions)
	}
	for _, uid := range c.members {
		if m.entries[uid] == nil || m.goneFor(uid) {
			continue
		}
		except := int64(0)
		if uid == by.acc.ID {
			except = exceptSession
		}
		s.pushToUserLocked(uid, except, &tg.Updates{
			Updates: []tg.UpdateClass{s.chatReactionsUpdateLocked(m, uid)},
			Users:   s.tgUsersLocked(uid, m.from, by.acc.ID),
			Chats:   s.tgChatsLocked(c.id),
			Date:    int(now.Unix()),
		})
	}
	s.changedLocked()
	return m, nil
}

func (s *Server) chatReactionsUpdateLocked(m *stored, viewer int64) *tg.UpdateMessageReactions {
	return &tg.UpdateMessageReactions{
		Peer:      &tg.PeerChat{ChatID: m.chat},
		MsgID:     m.IDForUser(viewer),
		Reactions: s.tgReactionsLocked(m, viewer),
	}
}

// chatReadLocked marks chat c read in reader's history up to maxID (as
// reader sees it; 0: everything).
func (s *Server) chatReadLocked(reader *user, c *basicChat, maxID int, exceptSession int64) (ptsEvent, bool) {
	top := 0
	for _, e := range reader.box {
		if maxID > 0 && e.id > maxID {
			break
		}
		if e.msg.chat == c.id {
			top = e.id
		}
	}
	if top == 0 || top <= reader.readInbox[c.id] {
		return ptsEvent{}, false
	}
	reader.readInbox[c.id] = top
	ev := s.addEventLocked(reader, ptsEvent{kind: ptsReadInbox, peer: c.id, maxID: top}, exceptSession)
	s.changedLocked()
	return ev, true
}

// chatTypingLocked shows the other members of c that from is typing.
func (s *Server) chatTypingLocked(from *user, c *basicChat, action tg.SendMessageActionClass) {
	for _, uid := range c.members {
		to := s.st.users[uid]
		if to == nil || to == from {
			continue
		}
		to.typingSeen = append(to.typingSeen, Typing{From: from.acc.ID, Chat: c.id, Action: action.TypeName(), At: time.Now()})
		if len(to.typingSeen) > maxTypingSeen {
			to.typingSeen = slices.Delete(to.typingSeen, 0, len(to.typingSeen)-maxTypingSeen)
		}
		s.pushToUserLocked(uid, 0, &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateChatUserTyping{ChatID: c.id, FromID: &tg.PeerUser{UserID: from.acc.ID}, Action: action}},
			Users:   s.tgUsersLocked(uid, from.acc.ID),
			Chats:   s.tgChatsLocked(c.id),
			Date:    int(time.Now().Unix()),
		})
	}
	s.changedLocked()
}

// --- RPC handlers (messages.* with an inputPeerChat) ---

func (s *Server) chatEditMessage(ctx context.Context, req *tg.MessagesEditMessageRequest) (tg.UpdatesClass, error) {
	return withChat(s, ctx, req.Peer, func(r *request, self *user, c *basicChat) (tg.UpdatesClass, error) {
		if req.Media != nil {
			return nil, tgerr.New(400, "MEDIA_INVALID")
		}
		ents, err := cloneEntities(req.Entities)
		if err != nil {
			return nil, err
		}
		m, err := s.chatEditLocked(self, c, req.ID, req.Message, ents, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		ev := self.events[len(self.events)-1]
		return &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateEditMessage{Message: s.tgMessageLocked(m, self.acc.ID), Pts: ev.pts, PtsCount: ev.count}},
			Users:   s.tgUsersLocked(self.acc.ID, m.from),
			Chats:   s.tgChatsLocked(c.id),
			Date:    int(time.Now().Unix()),
		}, nil
	})
}

func (s *Server) chatSendReaction(ctx context.Context, req *tg.MessagesSendReactionRequest) (tg.UpdatesClass, error) {
	return withChat(s, ctx, req.Peer, func(r *request, self *user, c *basicChat) (tg.UpdatesClass, error) {
		m, err := s.chatReactLocked(self, c, req.MsgID, req.Reaction, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return &tg.Updates{
			Updates: []tg.UpdateClass{s.chatReactionsUpdateLocked(m, self.acc.ID)},
			Users:   s.tgUsersLocked(self.acc.ID, m.from),
			Chats:   s.tgChatsLocked(c.id),
			Date:    int(time.Now().Unix()),
		}, nil
	})
}

func (s *Server) chatReadHistory(ctx context.Context, req *tg.MessagesReadHistoryRequest) (*tg.MessagesAffectedMessages, error) {
	return withChat(s, ctx, req.Peer, func(r *request, self *user, c *basicChat) (*tg.MessagesAffectedMessages, error) {
		ev, ok := s.chatReadLocked(self, c, req.MaxID, r.sess.mt.ID)
		if !ok {
			return &tg.MessagesAffectedMessages{Pts: self.pts}, nil
		}
		return &tg.MessagesAffectedMessages{Pts: ev.pts, PtsCount: ev.count}, nil
	})
}

func (s *Server) chatSetTyping(ctx context.Context, req *tg.MessagesSetTypingRequest) (bool, error) {
	return withChat(s, ctx, req.Peer, func(r *request, self *user, c *basicChat) (bool, error) {
		if req.Action != nil {
			s.chatTypingLocked(self, c, req.Action)
		}
		return true, nil
	})
}

// --- the world API: what a member's phone does in a basic group ---

func (s *Server) chatMemberLocked(chatID, member int64) (*basicChat, *user, error) {
	c, ok := s.st.chats[chatID]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %d", ErrNoChat, chatID)
	}
	u, ok := s.st.users[member]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %d", ErrNoAccount, member)
	}
	if !c.isMember(member) {
		return nil, nil, fmt.Errorf("%w: %d", ErrNotChatMember, member)
	}
	return c, u, nil
}

// ChatReply posts text from a member answering message replyTo of the
// member's history (0: no reply); it returns the message's ID per member.
func (s *Server) ChatReply(chatID, from int64, text string, replyTo int) (map[int64]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, u, err := s.chatMemberLocked(chatID, from)
	if err != nil {
		return nil, err
	}
	m := s.postChatLocked(c, u, text, nil, nil, replyTo, "", 0)
	ids := make(map[int64]int, len(m.entries))
	for uid, e := range m.entries {
		ids[uid] = e.id
	}
	return ids, nil
}

// ChatEdit makes a member edit its message id (as it sees it).
func (s *Server) ChatEdit(chatID, from int64, id int, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, u, err := s.chatMemberLocked(chatID, from)
	if err != nil {
		return err
	}
	_, err = s.chatEditLocked(u, c, id, text, nil, 0)
	return err
}

// ChatDelete makes a member delete messages of its history (IDs as it sees
// them), for everyone with revoke.
func (s *Server) ChatDelete(chatID, by int64, ids []int, revoke bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, u, err := s.chatMemberLocked(chatID, by)
	if err != nil {
		return err
	}
	if _, ok := s.deleteLocked(u, ids, revoke, 0); !ok {
		return errMessageIDInvalid
	}
	return nil
}

// ChatReact sets a member's reaction (a standard emoji; "" removes it) to
// message id of its history.
func (s *Server) ChatReact(chatID, by int64, id int, emoji string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, u, err := s.chatMemberLocked(chatID, by)
	if err != nil {
		return err
	}
	list := []tg.ReactionClass{}
	if emoji != "" {
		list = append(list, &tg.ReactionEmoji{Emoticon: emoji})
	}
	_, err = s.chatReactLocked(u, c, id, list, 0)
	return err
}

// ChatRead makes a member read the group up to maxID of its history (0:
// everything), as its phone would.
func (s *Server) ChatRead(chatID, reader int64, maxID int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, u, err := s.chatMemberLocked(chatID, reader)
	if err != nil {
		return err
	}
	s.chatReadLocked(u, c, maxID, 0)
	return nil
}

// ChatTyping shows the other members that from is typing.
func (s *Server) ChatTyping(chatID, from int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, u, err := s.chatMemberLocked(chatID, from)
	if err != nil {
		return err
	}
	s.chatTypingLocked(u, c, &tg.SendMessageTypingAction{})
	return nil
}

// ChatReadInbox is how far reader read the group, in its history.
func (s *Server) ChatReadInbox(chatID, reader int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.st.users[reader]; ok {
		return u.readInbox[chatID]
	}
	return 0
}

// ChatHistory is the group as viewer sees it, deleted messages included
// (Deleted set), oldest first.
func (s *Server) ChatHistory(chatID, viewer int64) []ChatMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[viewer]
	if !ok {
		return nil
	}
	var out []ChatMessage
	for _, e := range u.box {
		m := e.msg
		if m.chat != chatID {
			continue
		}
		cm := ChatMessage{ID: e.id, From: m.from, Text: m.text, Date: m.date, Edited: m.editDate, Deleted: m.goneFor(viewer)}
		if m.replyTo != nil {
			cm.ReplyToID = m.replyTo.IDForUser(viewer)
		}
		for _, r := range m.reactions {
			cm.Reactions = append(cm.Reactions, Reaction{User: r.user, Emoji: r.emoticon, CustomEmojiID: r.customID})
		}
		if m.media != nil {
			cm.Media = m.media.snapshot(viewer)
		}
		out = append(out, cm)
	}
	return out
}

// Pts is an account's pts: how many updates its history has had. A client
// that stored this pts has handled every one of them.
func (s *Server) Pts(account int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.st.users[account]; ok {
		return u.pts
	}
	return 0
}

// chatSendMedia is messages.sendMedia to a basic group.
func (s *Server) chatSendMedia(ctx context.Context, req *tg.MessagesSendMediaRequest) (tg.UpdatesClass, error) {
	b, err := s.finishUpload(ctx, req.Media)
	if err != nil {
		return nil, err
	}
	return withChat(s, ctx, req.Peer, func(r *request, self *user, c *basicChat) (tg.UpdatesClass, error) {
		if utf8.RuneCountInString(req.Message) > captionLengthMax {
			return nil, tgerr.New(400, "MEDIA_CAPTION_TOO_LONG")
		}
		entry, dup := self.sent[req.RandomID]
		if dup && req.RandomID != 0 {
			s.st.duplicateSends++
		} else {
			o, err := s.inputMediaLocked(self, req.Media, b)
			if err != nil {
				return nil, err
			}
			replyTo := 0
			if rt, ok := req.ReplyTo.(*tg.InputReplyToMessage); ok {
				replyTo = rt.ReplyToMsgID
			}
			m := s.postChatLocked(c, self, req.Message, req.Entities, o, replyTo, "", r.sess.mt.ID)
			entry = m.entries[self.acc.ID]
			if req.RandomID != 0 {
				self.sent[req.RandomID] = entry
			}
		}
		return &tg.Updates{
			Updates: []tg.UpdateClass{
				&tg.UpdateMessageID{ID: entry.id, RandomID: req.RandomID},
				&tg.UpdateNewMessage{Message: s.tgMessageLocked(entry.msg, self.acc.ID), Pts: entry.pts, PtsCount: 1},
			},
			Users: s.tgUsersLocked(self.acc.ID, entry.msg.from),
			Chats: s.tgChatsForLocked(self.acc.ID, c.id),
			Date:  int(entry.msg.date.Unix()),
		}, nil
	})
}
