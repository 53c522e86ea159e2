package tgsim

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// The conversation around messages: replies, edits (within an edit window),
// deletions for both sides, reactions (custom emoji included), read history
// both ways, typing and presence.

// DefaultEditWindow is how long the sender of a private message may edit
// it: 48 hours, Telegram's edit_time_limit.
const DefaultEditWindow = 48 * time.Hour

// Reaction limits per user and message: 1 for an account without Telegram
// Premium, 3 with it (Telegram's reactions_user_max_default and
// reactions_user_max_premium).
const (
	MaxReactionsPerUser        = 1
	MaxReactionsPerUserPremium = 3
)

const (
	maxPtsEvents  = 10000 // pts-numbered updates kept per user for updates.getDifference
	maxTypingSeen = 100   // typing notifications kept per user for the control API
	maxReactions  = 100   // reactions kept per message (every user together)
)

var (
	errMessageIDInvalid   = tgerr.New(400, "MESSAGE_ID_INVALID")
	errMessageNotModified = tgerr.New(400, "MESSAGE_NOT_MODIFIED")
	errEditTimeExpired    = tgerr.New(400, "MESSAGE_EDIT_TIME_EXPIRED")
	errMessageAuthor      = tgerr.New(403, "MESSAGE_AUTHOR_REQUIRED")
	errReactionInvalid    = tgerr.New(400, "REACTION_INVALID")
	errReactionsTooMany   = tgerr.New(400, "REACTIONS_TOO_MANY")
)

// AllowedReactions is the set of standard emoji a private chat accepts as
// reactions (Telegram's messages.getAvailableReactions at the time of
// writing, without variation selectors, as Telegram writes them).
var AllowedReactions = []string{
	"👍", "👎", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🤬", "😢", "🎉", "🤩", "🤮", "💩",
	"🙏", "👌", "🕊", "🤡", "🥱", "🥴", "😍", "🐳", "❤‍🔥", "🌚", "🌭", "💯", "🤣", "⚡", "🍌", "🏆",
	"💔", "🤨", "😐", "🍓", "🍾", "💋", "🖕", "😈", "😴", "😭", "🤓", "👻", "👨‍💻", "👀", "🎃", "🙈",
	"😇", "😨", "🤝", "✍", "🤗", "🫡", "🎅", "🎄", "☃", "💅", "🤪", "🗿", "🆒", "💘", "🙉", "🦄",
	"😘", "💊", "🙊", "😎", "👾", "🤷‍♂", "🤷", "🤷‍♀", "😡",
}

// Reaction is one user's reaction to a message: a standard emoji, or a
// custom emoji (CustomEmojiID, with Emoji its fallback when it is known).
type Reaction struct {
	User          int64
	Emoji         string
	CustomEmojiID int64
}

// reaction is a stored reaction.
type reaction struct {
	user     int64
	emoticon string
	customID int64
	date     time.Time
}

// Typing is a typing notification a user was shown.
type Typing struct {
	From    int64
	Channel int64  // the group typed in; 0 for a private chat
	Chat    int64  // the basic group typed in; 0 for a private chat
	Action  string // the TL name of the action, e.g. "sendMessageTypingAction"
	At      time.Time
}

// ReadState is how far a private chat was read, in a's history: ReadInbox
// is the highest ID of a's history up to which a read b's messages;
// ReadOutbox the highest ID of a's history up to which b read a's messages.
type ReadState struct {
	ReadInbox  int
	ReadOutbox int
}

// Presence is a user's status.
type Presence struct {
	Online   bool
	LastSeen time.Time // when the user went offline
}

type ptsKind int

const (
	ptsEdit ptsKind = iota + 1
	ptsDelete
	ptsReadInbox
	ptsReadOutbox
)

// ptsEvent is a pts-numbered update other than a new message.
type ptsEvent struct {
	pts   int
	count int
	kind  ptsKind
	msg   *stored // edit
	ids   []int   // delete
	peer  int64   // read history
	maxID int     // read history
}

// SetEditWindow sets how long a sender may edit a message (0: no limit).
func (s *Server) SetEditWindow(d time.Duration) {
	s.mu.Lock()
	s.st.editWindow = d
	s.mu.Unlock()
}

// AddCustomEmoji makes a custom emoji known, with its fallback emoji, as
// messages.getCustomEmojiDocuments answers it.
func (s *Server) AddCustomEmoji(documentID int64, fallback string) {
	s.mu.Lock()
	s.st.customEmoji[documentID] = fallback
	s.mu.Unlock()
}

// changedLocked wakes the waiters of WaitMessage and WaitFor.
func (s *Server) changedLocked() {
	close(s.st.messageCh)
	s.st.messageCh = make(chan struct{})
}

// WaitFor waits until cond (called without the server's lock) holds; it is
// checked again after every change of the world.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.st.messageCh
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return ErrClosed
		case <-ch:
		}
	}
}

// addEventLocked numbers ev in u's pts sequence, keeps it for
// updates.getDifference and pushes it to u's sessions but exceptSession.
func (s *Server) addEventLocked(u *user, ev ptsEvent, exceptSession int64) ptsEvent {
	if ev.count == 0 {
		ev.count = 1
	}
	u.pts += ev.count
	ev.pts = u.pts
	u.events = append(u.events, ev)
	if len(u.events) > maxPtsEvents {
		u.events = slices.Delete(u.events, 0, len(u.events)-maxPtsEvents)
	}
	s.pushToUserLocked(u.acc.ID, exceptSession, &tg.Updates{
		Updates: []tg.UpdateClass{s.renderEventLocked(u, ev)},
		Users:   s.tgUsersLocked(u.acc.ID, s.eventUsers(u, ev)...),
		Date:    int(time.Now().Unix()),
	})
	return ev
}

func (s *Server) eventUsers(u *user, ev ptsEvent) []int64 {
	ids := []int64{u.acc.ID}
	if ev.msg != nil {
		ids = append(ids, ev.msg.from, ev.msg.to)
	}
	if ev.peer != 0 {
		ids = append(ids, ev.peer)
	}
	return ids
}

// renderEventLocked is ev as u's client gets it.
func (s *Server) renderEventLocked(u *user, ev ptsEvent) tg.UpdateClass {
	switch ev.kind {
	case ptsEdit:
		return &tg.UpdateEditMessage{Message: s.tgMessageLocked(ev.msg, u.acc.ID), Pts: ev.pts, PtsCount: ev.count}
	case ptsDelete:
		return &tg.UpdateDeleteMessages{Messages: slices.Clone(ev.ids), Pts: ev.pts, PtsCount: ev.count}
	case ptsReadInbox:
		if _, chat := s.st.chats[ev.peer]; chat {
			return &tg.UpdateReadHistoryInbox{Peer: &tg.PeerChat{ChatID: ev.peer}, MaxID: ev.maxID, Pts: ev.pts, PtsCount: ev.count}
		}
		return &tg.UpdateReadHistoryInbox{Peer: &tg.PeerUser{UserID: ev.peer}, MaxID: ev.maxID, Pts: ev.pts, PtsCount: ev.count}
	default:
		return &tg.UpdateReadHistoryOutbox{Peer: &tg.PeerUser{UserID: ev.peer}, MaxID: ev.maxID, Pts: ev.pts, PtsCount: ev.count}
	}
}

// entryLocked is message id of u's history, if it is there and not deleted.
func entryLocked(u *user, id int) (*boxEntry, bool) {
	if id <= 0 || id > len(u.box) {
		return nil, false
	}
	e := u.box[id-1]
	return e, !e.msg.goneFor(u.acc.ID)
}

// goneFor reports whether viewer deleted the message or saw it revoked.
func (m *stored) goneFor(viewer int64) bool {
	if m.chat != 0 {
		return m.chatGone[viewer]
	}
	if viewer == m.from && m.goneFrom {
		return true
	}
	return viewer == m.to && m.goneTo
}

func (m *stored) hide(viewer int64) {
	if m.chat != 0 {
		if m.chatGone == nil {
			m.chatGone = map[int64]bool{}
		}
		m.chatGone[viewer] = true
		return
	}
	if viewer == m.from {
		m.goneFrom = true
	}
	if viewer == m.to {
		m.goneTo = true
	}
}

// editLocked edits a message of editor's history (id as editor sees it).
func (s *Server) editLocked(editor *user, peer int64, id int, text string, ents []tg.MessageEntityClass, exceptSession int64) (*stored, error) {
	e, ok := entryLocked(editor, id)
	if !ok || peerOf(e.msg, editor.acc.ID) != peer {
		return nil, errMessageIDInvalid
	}
	m := e.msg
	if m.from != editor.acc.ID {
		return nil, errMessageAuthor
	}
	if w := s.st.editWindow; w > 0 && time.Since(m.date) > w {
		return nil, errEditTimeExpired
	}
	limit := maxMessageLength
	if m.media != nil {
		limit = captionLengthMax
	} else if text == "" {
		return nil, errMessageEmpty
	}
	if len([]rune(text)) > limit {
		return nil, errMessageTooLong
	}
	if text == m.text && len(ents) == 0 && len(m.entities) == 0 {
		return nil, errMessageNotModified
	}
	m.text, m.entities, m.editDate = text, ents, time.Now().Truncate(time.Second)
	s.addEventLocked(editor, ptsEvent{kind: ptsEdit, msg: m}, exceptSession)
	if other := s.st.users[peer]; other != nil && other != editor {
		s.addEventLocked(other, ptsEvent{kind: ptsEdit, msg: m}, 0)
	}
	s.changedLocked()
	return m, nil
}

// deleteLocked deletes messages of by's history (ids as by sees them); with
// revoke they go for the other side too.
func (s *Server) deleteLocked(by *user, ids []int, revoke bool, exceptSession int64) (ptsEvent, bool) {
	var mine []int
	others := map[int64][]int{}
	for _, id := range ids {
		e, ok := entryLocked(by, id)
		if !ok {
			continue
		}
		mine = append(mine, id)
		m := e.msg
		if m.chat != 0 {
			s.chatDeleteLocked(by, m, revoke, others)
			continue
		}
		m.hide(by.acc.ID)
		peer := peerOf(m, by.acc.ID)
		if revoke && peer != by.acc.ID {
			m.hide(peer)
			others[peer] = append(others[peer], m.IDForUser(peer))
		}
	}
	if len(mine) == 0 {
		return ptsEvent{}, false
	}
	ev := s.addEventLocked(by, ptsEvent{kind: ptsDelete, ids: mine, count: len(mine)}, exceptSession)
	for peer, pids := range others {
		if u := s.st.users[peer]; u != nil {
			s.addEventLocked(u, ptsEvent{kind: ptsDelete, ids: pids, count: len(pids)}, 0)
		}
	}
	s.changedLocked()
	return ev, true
}

// replyTargetLocked is the message of self's chat with peer that a client's
// reply_to names, and the quote; nil when there is none (Telegram sends a
// reply to a deleted message as a plain one).
func replyTargetLocked(self, peer *user, in tg.InputReplyToClass) (*stored, string) {
	r, ok := in.(*tg.InputReplyToMessage)
	if !ok {
		return nil, ""
	}
	e, ok := entryLocked(self, r.ReplyToMsgID)
	if !ok || peerOf(e.msg, self.acc.ID) != peer.acc.ID {
		return nil, ""
	}
	return e.msg, r.QuoteText
}

// IDForUser is the ID of the message in userID's history.
func (m *stored) IDForUser(userID int64) int {
	if m.chat != 0 {
		if e := m.entries[userID]; e != nil {
			return e.id
		}
		return 0
	}
	if userID == m.to {
		return m.toID
	}
	return m.fromID
}

// reactLocked sets by's reactions to message id of by's history.
func (s *Server) reactLocked(by *user, peer int64, id int, list []tg.ReactionClass, exceptSession int64) (*stored, error) {
	e, ok := entryLocked(by, id)
	if !ok || peerOf(e.msg, by.acc.ID) != peer {
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
		switch v := r.(type) {
		case *tg.ReactionEmoji:
			if !slices.Contains(AllowedReactions, v.Emoticon) {
				return nil, errReactionInvalid
			}
			mine = append(mine, reaction{user: by.acc.ID, emoticon: v.Emoticon, date: now})
		case *tg.ReactionCustomEmoji:
			if _, known := s.st.customEmoji[v.DocumentID]; !known || !by.acc.Premium {
				return nil, errReactionInvalid
			}
			mine = append(mine, reaction{user: by.acc.ID, customID: v.DocumentID, date: now})
		default:
			return nil, errReactionInvalid
		}
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
	for _, viewer := range []int64{m.from, m.to} {
		except := int64(0)
		if viewer == by.acc.ID {
			except = exceptSession
		}
		s.pushToUserLocked(viewer, except, &tg.Updates{
			Updates: []tg.UpdateClass{s.reactionsUpdateLocked(m, viewer)},
			Users:   s.tgUsersLocked(viewer, m.from, m.to),
			Date:    int(now.Unix()),
		})
		if m.from == m.to {
			break
		}
	}
	s.changedLocked()
	return m, nil
}

func (s *Server) reactionsUpdateLocked(m *stored, viewer int64) *tg.UpdateMessageReactions {
	return &tg.UpdateMessageReactions{
		Peer:      &tg.PeerUser{UserID: peerOf(m, viewer)},
		MsgID:     m.IDForUser(viewer),
		Reactions: s.tgReactionsLocked(m, viewer),
	}
}

func (r reaction) tg() tg.ReactionClass {
	if r.customID != 0 {
		return &tg.ReactionCustomEmoji{DocumentID: r.customID}
	}
	return &tg.ReactionEmoji{Emoticon: r.emoticon}
}

func (r reaction) key() string {
	if r.customID != 0 {
		return fmt.Sprintf("custom:%d", r.customID)
	}
	return r.emoticon
}

// tgReactionsLocked renders a message's reactions as viewer sees them: the
// counts, with viewer's own in chosen order, and the list of who reacted
// (a private chat shows it).
func (s *Server) tgReactionsLocked(m *stored, viewer int64) tg.MessageReactions {
	out := tg.MessageReactions{CanSeeList: true}
	index := map[string]int{}
	chosen := 0
	for _, r := range m.reactions {
		i, ok := index[r.key()]
		if !ok {
			i = len(out.Results)
			index[r.key()] = i
			out.Results = append(out.Results, tg.ReactionCount{Reaction: r.tg()})
		}
		out.Results[i].Count++
		if r.user == viewer {
			out.Results[i].SetChosenOrder(chosen)
			chosen++
		}
		pr := tg.MessagePeerReaction{PeerID: &tg.PeerUser{UserID: r.user}, Reaction: r.tg(), Date: int(r.date.Unix()), My: r.user == viewer}
		out.RecentReactions = append(out.RecentReactions, pr)
	}
	out.SetFlags()
	return out
}

// readLocked marks reader's history with peer read up to maxID (as reader
// sees it; 0: everything) and tells peer how far its messages were read.
func (s *Server) readLocked(reader, peer *user, maxID int, exceptSession int64) (ptsEvent, bool) {
	top := 0
	var lastIncoming *stored
	for _, e := range reader.box {
		if maxID > 0 && e.id > maxID {
			break
		}
		if peerOf(e.msg, reader.acc.ID) != peer.acc.ID {
			continue
		}
		top = e.id
		if e.msg.from == peer.acc.ID && peer != reader {
			lastIncoming = e.msg
		}
	}
	if top == 0 || top <= reader.readInbox[peer.acc.ID] {
		return ptsEvent{}, false
	}
	reader.readInbox[peer.acc.ID] = top
	ev := s.addEventLocked(reader, ptsEvent{kind: ptsReadInbox, peer: peer.acc.ID, maxID: top}, exceptSession)
	if lastIncoming != nil && lastIncoming.fromID > peer.readOutbox[reader.acc.ID] {
		peer.readOutbox[reader.acc.ID] = lastIncoming.fromID
		s.addEventLocked(peer, ptsEvent{kind: ptsReadOutbox, peer: reader.acc.ID, maxID: lastIncoming.fromID}, 0)
	}
	s.changedLocked()
	return ev, true
}

// typingLocked shows to's sessions that from is typing.
func (s *Server) typingLocked(from, to *user, action tg.SendMessageActionClass) {
	to.typingSeen = append(to.typingSeen, Typing{From: from.acc.ID, Action: action.TypeName(), At: time.Now()})
	if len(to.typingSeen) > maxTypingSeen {
		to.typingSeen = slices.Delete(to.typingSeen, 0, len(to.typingSeen)-maxTypingSeen)
	}
	s.pushToUserLocked(to.acc.ID, 0, &tg.UpdateShort{
		Update: &tg.UpdateUserTyping{UserID: from.acc.ID, Action: action},
		Date:   int(time.Now().Unix()),
	})
	s.changedLocked()
}

// setStatusLocked sets u's presence and tells the users who have a chat
// with u or u in their contacts.
func (s *Server) setStatusLocked(u *user, online bool) {
	now := time.Now()
	u.online = online
	var st tg.UserStatusClass = &tg.UserStatusOnline{Expires: int(now.Add(5 * time.Minute).Unix())}
	if !online {
		u.lastSeen = now.Truncate(time.Second)
		st = &tg.UserStatusOffline{WasOnline: int(u.lastSeen.Unix())}
	}
	for _, other := range s.st.users {
		if other == u || !(other.contacts[u.acc.ID] || hasChatWith(other, u.acc.ID)) {
			continue
		}
		s.pushToUserLocked(other.acc.ID, 0, &tg.UpdateShort{
			Update: &tg.UpdateUserStatus{UserID: u.acc.ID, Status: st},
			Date:   int(now.Unix()),
		})
	}
	s.changedLocked()
}

func hasChatWith(u *user, peer int64) bool {
	for _, e := range u.box {
		if peerOf(e.msg, u.acc.ID) == peer {
			return true
		}
	}
	return false
}

// userStatusLocked is u's status as others see it.
func userStatusLocked(u *user) tg.UserStatusClass {
	switch {
	case u.online:
		return &tg.UserStatusOnline{Expires: int(time.Now().Add(5 * time.Minute).Unix())}
	case !u.lastSeen.IsZero():
		return &tg.UserStatusOffline{WasOnline: int(u.lastSeen.Unix())}
	}
	return &tg.UserStatusRecently{}
}

// --- RPC handlers ---

func (s *Server) messagesEditMessage(ctx context.Context, req *tg.MessagesEditMessageRequest) (tg.UpdatesClass, error) {
	if _, ok := req.Peer.(*tg.InputPeerChat); ok {
		return s.chatEditMessage(ctx, req)
	}
	return withPeer(s, ctx, req.Peer, func(r *request, self, peer *user) (tg.UpdatesClass, error) {
		if req.Media != nil {
			return nil, tgerr.New(400, "MEDIA_INVALID") // replacing media is not simulated
		}
		ents, err := cloneEntities(req.Entities)
		if err != nil {
			return nil, err
		}
		m, err := s.editLocked(self, peer.acc.ID, req.ID, req.Message, ents, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		ev := self.events[len(self.events)-1]
		return &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateEditMessage{Message: s.tgMessageLocked(m, self.acc.ID), Pts: ev.pts, PtsCount: ev.count}},
			Users:   s.tgUsersLocked(self.acc.ID, m.from, m.to),
			Date:    int(time.Now().Unix()),
		}, nil
	})
}

func (s *Server) messagesDeleteMessages(ctx context.Context, req *tg.MessagesDeleteMessagesRequest) (*tg.MessagesAffectedMessages, error) {
	return withSelf(s, ctx, func(r *request, self *user) (*tg.MessagesAffectedMessages, error) {
		ev, ok := s.deleteLocked(self, req.ID, req.Revoke, r.sess.mt.ID)
		if !ok {
			return &tg.MessagesAffectedMessages{Pts: self.pts}, nil
		}
		return &tg.MessagesAffectedMessages{Pts: ev.pts, PtsCount: ev.count}, nil
	})
}

func (s *Server) messagesSendReaction(ctx context.Context, req *tg.MessagesSendReactionRequest) (tg.UpdatesClass, error) {
	if _, ok := req.Peer.(*tg.InputPeerChat); ok {
		return s.chatSendReaction(ctx, req)
	}
	return withPeer(s, ctx, req.Peer, func(r *request, self, peer *user) (tg.UpdatesClass, error) {
		m, err := s.reactLocked(self, peer.acc.ID, req.MsgID, req.Reaction, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return &tg.Updates{
			Updates: []tg.UpdateClass{s.reactionsUpdateLocked(m, self.acc.ID)},
			Users:   s.tgUsersLocked(self.acc.ID, m.from, m.to),
			Date:    int(time.Now().Unix()),
		}, nil
	})
}

func (s *Server) messagesGetCustomEmojiDocuments(ctx context.Context, ids []int64) ([]tg.DocumentClass, error) {
	return withSelf(s, ctx, func(_ *request, _ *user) ([]tg.DocumentClass, error) {
		var out []tg.DocumentClass
		for _, id := range ids {
			alt, ok := s.st.customEmoji[id]
			if !ok {
				continue
			}
			out = append(out, &tg.Document{
				ID: id, AccessHash: id ^ 0x5eed, FileReference: []byte{1}, MimeType: "application/x-tgsticker", Size: 1, DCID: s.dc,
				Attributes: []tg.DocumentAttributeClass{&tg.DocumentAttributeCustomEmoji{Alt: alt, Stickerset: &tg.InputStickerSetEmpty{}}},
			})
		}
		return out, nil
	})
}

func (s *Server) messagesReadHistory(ctx context.Context, req *tg.MessagesReadHistoryRequest) (*tg.MessagesAffectedMessages, error) {
	if _, ok := req.Peer.(*tg.InputPeerChat); ok {
		return s.chatReadHistory(ctx, req)
	}
	return withPeer(s, ctx, req.Peer, func(r *request, self, peer *user) (*tg.MessagesAffectedMessages, error) {
		ev, ok := s.readLocked(self, peer, req.MaxID, r.sess.mt.ID)
		if !ok {
			return &tg.MessagesAffectedMessages{Pts: self.pts}, nil
		}
		return &tg.MessagesAffectedMessages{Pts: ev.pts, PtsCount: ev.count}, nil
	})
}

func (s *Server) messagesSetTyping(ctx context.Context, req *tg.MessagesSetTypingRequest) (bool, error) {
	if _, ok := req.Peer.(*tg.InputPeerChat); ok {
		return s.chatSetTyping(ctx, req)
	}
	return withPeer(s, ctx, req.Peer, func(_ *request, self, peer *user) (bool, error) {
		if peer != self && req.Action != nil {
			s.typingLocked(self, peer, req.Action)
		}
		return true, nil
	})
}

func (s *Server) accountUpdateStatus(ctx context.Context, offline bool) (bool, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (bool, error) {
		s.setStatusLocked(self, !offline)
		return true, nil
	})
}

// --- the world API: what a contact's phone does, and what it saw ---

func (s *Server) userPairLocked(a, b int64) (*user, *user, error) {
	au, ok := s.st.users[a]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %d", ErrNoAccount, a)
	}
	bu, ok := s.st.users[b]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %d", ErrNoAccount, b)
	}
	return au, bu, nil
}

// SendReply makes from answer message replyTo of its history with to (the
// ID as from sees it), quoting quote of it when quote is not empty, as if
// from's phone sent it.
func (s *Server) SendReply(from, to int64, text string, replyTo int, quote string) (Message, error) {
	if s.isClosed() {
		return Message{}, ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fu, tu, err := s.userPairLocked(from, to)
	if err != nil {
		return Message{}, err
	}
	var target *stored
	if e, ok := entryLocked(fu, replyTo); ok && peerOf(e.msg, from) == to {
		target = e.msg
	} else if replyTo != 0 {
		return Message{}, errMessageIDInvalid
	}
	m := s.deliverLocked(fu, tu, text, nil, false)
	m.replyTo, m.quote = target, quote
	s.pushNewMessageLocked(m, 0)
	return s.messageLocked(m), nil
}

// EditMessage makes from edit its message id (as from sees it) in its chat
// with to, as if from's phone did; the edit window applies.
func (s *Server) EditMessage(from, to int64, id int, text string) (Message, error) {
	if s.isClosed() {
		return Message{}, ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fu, _, err := s.userPairLocked(from, to)
	if err != nil {
		return Message{}, err
	}
	m, err := s.editLocked(fu, to, id, text, nil, 0)
	if err != nil {
		return Message{}, err
	}
	return s.messageLocked(m), nil
}

// DeleteMessages makes by delete messages of its history (IDs as by sees
// them), for both sides when revoke is set, as if by's phone did.
func (s *Server) DeleteMessages(by int64, ids []int, revoke bool) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[by]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, by)
	}
	if _, ok := s.deleteLocked(u, ids, revoke, 0); !ok {
		return errMessageIDInvalid
	}
	return nil
}

// React sets by's reactions to message id of its chat with peer (the ID as
// by sees it); none removes them. A Reaction's User is ignored.
func (s *Server) React(by, peer int64, id int, reactions ...Reaction) error {
	if s.isClosed() {
		return ErrClosed
	}
	list := make([]tg.ReactionClass, 0, len(reactions))
	for _, r := range reactions {
		if r.CustomEmojiID != 0 {
			list = append(list, &tg.ReactionCustomEmoji{DocumentID: r.CustomEmojiID})
		} else {
			list = append(list, &tg.ReactionEmoji{Emoticon: r.Emoji})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, _, err := s.userPairLocked(by, peer)
	if err != nil {
		return err
	}
	_, err = s.reactLocked(u, peer, id, list, 0)
	return err
}

// ReadHistory makes reader read its chat with peer up to maxID (as reader
// sees it; 0: everything), as if reader's phone showed it.
func (s *Server) ReadHistory(reader, peer int64, maxID int) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ru, pu, err := s.userPairLocked(reader, peer)
	if err != nil {
		return err
	}
	s.readLocked(ru, pu, maxID, 0)
	return nil
}

// SetTyping shows to that from is typing a message.
func (s *Server) SetTyping(from, to int64) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fu, tu, err := s.userPairLocked(from, to)
	if err != nil {
		return err
	}
	s.typingLocked(fu, tu, &tg.SendMessageTypingAction{})
	return nil
}

// SetOnline sets an account's presence, as its app going to the foreground
// or the background would.
func (s *Server) SetOnline(account int64, online bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[account]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, account)
	}
	s.setStatusLocked(u, online)
	return nil
}

// Presence returns an account's presence (account.updateStatus or
// SetOnline).
func (s *Server) Presence(account int64) Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[account]
	if !ok {
		return Presence{}
	}
	return Presence{Online: u.online, LastSeen: u.lastSeen}
}

// ReadState returns how far the chat between a and b was read, in a's
// history.
func (s *Server) ReadState(a, b int64) ReadState {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[a]
	if !ok {
		return ReadState{}
	}
	return ReadState{ReadInbox: u.readInbox[b], ReadOutbox: u.readOutbox[b]}
}

// TypingSeen returns the typing notifications account was shown, oldest
// first (the last 100).
func (s *Server) TypingSeen(account int64) []Typing {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.st.users[account]; ok {
		return slices.Clone(u.typingSeen)
	}
	return nil
}

// History is Messages with the deleted messages (Deleted set) in place.
func (s *Server) History(a, b int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[a]
	if !ok {
		return nil
	}
	var out []Message
	for _, e := range u.box {
		if peerOf(e.msg, a) == b {
			out = append(out, s.messageLocked(e.msg))
		}
	}
	return out
}
