package tgsim

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
)

// AccountSpec describes an account to create.
type AccountSpec struct {
	Phone     string // E.164 digits, e.g. "15550001"; a leading "+" is accepted
	FirstName string
	LastName  string
	Username  string // optional, without "@"
	Password  string // non-empty enables two-step verification (2FA)
	Premium   bool   // Telegram Premium: 3 reactions per message, custom emoji
}

// Account is a simulated Telegram user.
type Account struct {
	ID         int64
	Phone      string // digits only
	FirstName  string
	LastName   string
	Username   string
	AccessHash int64 // the same for every viewer
	Premium    bool
	Bot        bool // a bot account (CreateBot); it logs in with its token
}

// Message is a private message between two accounts.
//
// Telegram numbers private messages per user, so a message has two IDs: ID,
// the ID in the recipient's (To) history, and SenderMsgID, the ID in the
// sender's (From) history. They are equal only by coincidence (or in the
// "Saved Messages" chat, where From == To).
type Message struct {
	ID          int // as seen by To
	SenderMsgID int // as seen by From
	From, To    int64
	Text        string
	Entities    []tg.MessageEntityClass // a copy: safe to modify
	// Media is the message's photo, document, location, contact or poll
	// (Text is then its caption); nil for a text message.
	Media *MediaInfo
	Date  time.Time // whole seconds
	// ReplyToID and ReplyToSenderMsgID are the IDs of the message this one
	// answers, in To's and From's histories (0: not a reply).
	ReplyToID, ReplyToSenderMsgID int
	Quote                         string    // the quoted part of the replied message
	Edited                        time.Time // when last edited; zero if never
	// Deleted: the message was deleted for the viewer (History only).
	Deleted   bool
	Reactions []Reaction // in the order they were made
}

// IDFor returns the message ID as userID sees it, or 0 if userID is neither
// the sender nor the recipient.
func (m Message) IDFor(userID int64) int {
	switch userID {
	case m.To:
		return m.ID
	case m.From:
		return m.SenderMsgID
	default:
		return 0
	}
}

// Errors returned by the world API.
var (
	ErrNoAccount    = errors.New("tgsim: no such account")
	ErrPhoneTaken   = errors.New("tgsim: phone number already registered")
	ErrUsernameUsed = errors.New("tgsim: username already taken")
)

// NormalizePhone strips "+", spaces, dashes, dots and parentheses from a
// phone number.
func NormalizePhone(phone string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '+', ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, phone)
}

func validPhone(p string) bool {
	if len(p) < 4 || len(p) > 15 {
		return false
	}
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func randInt64() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	v := int64(binary.LittleEndian.Uint64(b[:]) >> 1)
	if v == 0 {
		v = 1
	}
	return v
}

// CreateAccount registers an account. The phone number must be unique.
func (s *Server) CreateAccount(spec AccountSpec) (*Account, error) {
	phone := NormalizePhone(spec.Phone)
	if !validPhone(phone) {
		return nil, fmt.Errorf("tgsim: invalid phone number %q", spec.Phone)
	}
	username := strings.TrimPrefix(spec.Username, "@")
	var secret *srpSecret
	if spec.Password != "" {
		// PBKDF2 is slow: compute the verifier outside the lock.
		var err error
		if secret, err = newSRPSecret(spec.Password); err != nil {
			return nil, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.st.byPhone[phone]; ok {
		return nil, ErrPhoneTaken
	}
	if username != "" {
		if _, ok := s.st.byUsername[strings.ToLower(username)]; ok {
			return nil, ErrUsernameUsed
		}
	}
	s.st.nextUserID++
	u := &user{
		acc: Account{
			ID:         s.st.nextUserID,
			Phone:      phone,
			FirstName:  spec.FirstName,
			LastName:   spec.LastName,
			Username:   username,
			AccessHash: randInt64(),
			Premium:    spec.Premium,
		},
		password:   secret,
		pts:        1, // Telegram accounts never have pts 0
		contacts:   map[int64]bool{},
		sent:       map[int64]*boxEntry{},
		readInbox:  map[int64]int{},
		readOutbox: map[int64]int{},
	}
	s.st.users[u.acc.ID] = u
	s.st.byPhone[phone] = u
	if username != "" {
		s.st.byUsername[strings.ToLower(username)] = u
	}
	acc := u.acc
	return &acc, nil
}

// Account returns an account by ID.
func (s *Server) Account(id int64) (*Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[id]
	if !ok {
		return nil, false
	}
	acc := u.acc
	return &acc, true
}

// AccountByPhone returns an account by phone number ("+" and separators are
// ignored).
func (s *Server) AccountByPhone(phone string) (*Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.byPhone[NormalizePhone(phone)]
	if !ok {
		return nil, false
	}
	acc := u.acc
	return &acc, true
}

// Accounts returns every account, in creation order.
func (s *Server) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Account, 0, len(s.st.users))
	for id := int64(1000001); id <= s.st.nextUserID; id++ {
		if u, ok := s.st.users[id]; ok {
			out = append(out, u.acc)
		}
	}
	return out
}

// AddContact adds contact to owner's contact list (one way; call it twice for
// a mutual contact).
func (s *Server) AddContact(owner, contact int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.st.users[owner]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, owner)
	}
	if _, ok := s.st.users[contact]; !ok {
		return fmt.Errorf("%w: %d", ErrNoAccount, contact)
	}
	o.contacts[contact] = true
	return nil
}

// LastCode returns the login code most recently issued by auth.sendCode for a
// phone number.
func (s *Server) LastCode(phone string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.lastCode[NormalizePhone(phone)]
	return c, ok
}

// SetCodeTTL sets how long login codes issued from now on stay valid
// (5 minutes by default).
func (s *Server) SetCodeTTL(d time.Duration) {
	s.mu.Lock()
	s.st.codeTTL = d
	s.mu.Unlock()
}

// SetQRTokenTTL sets how long QR login tokens exported from now on stay valid
// (30 seconds by default). The client sees the expiry in whole seconds,
// rounded up.
func (s *Server) SetQRTokenTTL(d time.Duration) {
	s.mu.Lock()
	s.st.qrTTL = d
	s.mu.Unlock()
}

// SendMessage makes from send a private message to to, as if from's phone
// sent it: it is stored in both histories (each user's pts bumped) and pushed
// to the online sessions of both users. Auto-replies are not triggered.
func (s *Server) SendMessage(from, to int64, text string, entities []tg.MessageEntityClass) (Message, error) {
	if s.isClosed() {
		return Message{}, ErrClosed
	}
	ents, err := cloneEntities(entities)
	if err != nil {
		return Message{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fu, ok := s.st.users[from]
	if !ok {
		return Message{}, fmt.Errorf("%w: %d", ErrNoAccount, from)
	}
	tu, ok := s.st.users[to]
	if !ok {
		return Message{}, fmt.Errorf("%w: %d", ErrNoAccount, to)
	}
	m := s.deliverLocked(fu, tu, text, ents, false)
	s.pushNewMessageLocked(m, 0)
	return s.messageLocked(m), nil
}

// Messages returns the private history between a and b as a sees it, oldest
// first.
func (s *Server) Messages(a, b int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[a]
	if !ok {
		return nil
	}
	var out []Message
	for _, e := range u.box {
		if peerOf(e.msg, a) == b && !e.msg.goneFor(a) {
			out = append(out, s.messageLocked(e.msg))
		}
	}
	return out
}

// WaitMessage waits until from has sent to a message that pred accepts (nil
// accepts any), and returns it. It looks at the whole history first, oldest
// message first, so a message sent before the call is found too: make pred
// specific enough.
func (s *Server) WaitMessage(ctx context.Context, from, to int64, pred func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		u, ok := s.st.users[from]
		if !ok {
			s.mu.Unlock()
			return Message{}, fmt.Errorf("%w: %d", ErrNoAccount, from)
		}
		var candidates []Message
		for _, e := range u.box {
			if e.msg.from == from && e.msg.to == to {
				candidates = append(candidates, s.messageLocked(e.msg))
			}
		}
		ch := s.st.messageCh
		s.mu.Unlock()
		// pred runs unlocked: it may call back into the server.
		for _, m := range candidates {
			if pred == nil || pred(m) {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-s.closed:
			return Message{}, ErrClosed
		case <-ch:
		}
	}
}

// SetAutoReply makes account answer every message a client sends it: reply
// gets the incoming message and returns the answer text, or false for no
// answer. It runs on its own goroutine after the sender got its response.
// Messages sent with SendMessage or the control API never trigger it, so two
// auto-replying accounts cannot loop. A nil reply removes it.
func (s *Server) SetAutoReply(account int64, reply func(in Message) (string, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.st.users[account]; ok {
		u.autoReply = reply
	}
}

// Sessions returns how many client sessions logged in as account are online
// and receive updates (connections that use invokeWithoutUpdates are not
// counted). A gotd client has one such session while connected.
func (s *Server) Sessions(account int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.onlineSessionsLocked(account)
}

// Authorizations returns how many auth keys are logged in as account.
// auth.logOut drops one.
func (s *Server) Authorizations(account int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.st.keys {
		if a.userID == account {
			n++
		}
	}
	return n
}

// Disconnect closes every connection that carries a session logged in as
// account, as a network failure would. gotd clients reconnect by themselves.
// It returns how many connections were closed.
func (s *Server) Disconnect(account int64) int {
	s.mu.Lock()
	conns := map[*conn]struct{}{}
	for _, sess := range s.st.sessions {
		if a, ok := s.st.keys[sess.keyID]; ok && a.userID == account && sess.conn != nil {
			conns[sess.conn] = struct{}{}
		}
	}
	s.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// DisconnectAll closes every client connection, logged in or not, as a
// network failure or a restart of the data centre would. Clients reconnect by
// themselves with their auth keys. It returns how many were closed.
func (s *Server) DisconnectAll() int {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.st.conns))
	for c := range s.st.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// DuplicateSends returns how many messages.sendMessage calls repeated the
// random_id of an earlier message of the same sender: Telegram answers them
// with that message and stores nothing new.
func (s *Server) DuplicateSends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.duplicateSends
}

// deliverLocked stores a message in both histories and bumps both users'
// pts. ents must already be a private copy.
func (s *Server) deliverLocked(from, to *user, text string, ents []tg.MessageEntityClass, fromClient bool) *stored {
	m := &stored{
		from:       from.acc.ID,
		to:         to.acc.ID,
		text:       text,
		entities:   ents,
		date:       s.nowLocked(),
		fromClient: fromClient,
		ttl:        s.st.historyTTL[userPair(from.acc.ID, to.acc.ID)],
	}
	from.pts++
	fe := &boxEntry{id: len(from.box) + 1, pts: from.pts, msg: m}
	from.box = append(from.box, fe)
	m.fromID, m.senderEntry = fe.id, fe
	if to != from {
		to.pts++
		te := &boxEntry{id: len(to.box) + 1, pts: to.pts, msg: m}
		to.box = append(to.box, te)
		m.toID, m.recipientEntry = te.id, te
	} else {
		m.toID, m.recipientEntry = fe.id, fe
	}
	s.changedLocked()
	return m
}

// pushNewMessageLocked pushes a stored message to the recipient's sessions and
// to the sender's sessions except exceptSession.
func (s *Server) pushNewMessageLocked(m *stored, exceptSession int64) {
	if m.to != m.from {
		s.pushToUserLocked(m.to, 0, s.newMessageUpdatesLocked(m, m.to))
	}
	s.pushToUserLocked(m.from, exceptSession, s.newMessageUpdatesLocked(m, m.from))
}

func (s *Server) newMessageUpdatesLocked(m *stored, viewer int64) *tg.Updates {
	entry := m.senderEntry
	if viewer == m.to && m.to != m.from {
		entry = m.recipientEntry
	}
	return &tg.Updates{
		Updates: []tg.UpdateClass{&tg.UpdateNewMessage{
			Message:  s.tgMessageClassLocked(m, viewer),
			Pts:      entry.pts,
			PtsCount: 1,
		}},
		Users: s.tgUsersLocked(viewer, m.from, m.to),
		Date:  int(time.Now().Unix()),
	}
}

func (s *Server) messageLocked(m *stored) Message {
	ents, _ := cloneEntities(m.entities)
	out := Message{
		ID:          m.toID,
		SenderMsgID: m.fromID,
		From:        m.from,
		To:          m.to,
		Text:        m.text,
		Entities:    ents,
		Date:        m.date,
		Media:       m.mediaInfo(),
		Quote:       m.quote,
		Edited:      m.editDate,
		Deleted:     m.goneFrom || m.goneTo,
	}
	if m.replyTo != nil {
		out.ReplyToID, out.ReplyToSenderMsgID = m.replyTo.IDForUser(m.to), m.replyTo.IDForUser(m.from)
	}
	for _, r := range m.reactions {
		rr := Reaction{User: r.user, Emoji: r.emoticon, CustomEmojiID: r.customID}
		if r.customID != 0 {
			rr.Emoji = s.st.customEmoji[r.customID]
		}
		out.Reactions = append(out.Reactions, rr)
	}
	return out
}

func (m *stored) mediaInfo() *MediaInfo {
	if m.media == nil {
		return nil
	}
	return m.media.snapshot(m.to)
}

// peerOf returns the other side of a private message, as viewer sees it.
// For a basic-group message it is the sender.
func peerOf(m *stored, viewer int64) int64 {
	if m.chat != 0 {
		return m.from
	}
	if viewer == m.from {
		return m.to
	}
	return m.from
}

// tgMessageLocked renders a stored message as viewer sees it.
func (s *Server) tgMessageLocked(m *stored, viewer int64) *tg.Message {
	id := m.fromID
	if viewer == m.to {
		id = m.toID
	}
	var peer tg.PeerClass = &tg.PeerUser{UserID: peerOf(m, viewer)}
	if m.chat != 0 {
		id, peer = m.entries[viewer].id, &tg.PeerChat{ChatID: m.chat}
	}
	msg := &tg.Message{
		ID:      id,
		PeerID:  peer,
		Date:    int(m.date.Unix()),
		Message: m.text,
	}
	msg.SetFromID(&tg.PeerUser{UserID: m.from})
	if m.media != nil {
		msg.SetMedia(m.media.renderFor(viewer))
	}
	msg.SetOut(viewer == m.from)
	if m.replyTo != nil {
		h := &tg.MessageReplyHeader{ReplyToMsgID: m.replyTo.IDForUser(viewer)}
		if m.quote != "" {
			h.SetQuote(true)
			h.SetQuoteText(m.quote)
		}
		h.SetFlags()
		msg.SetReplyTo(h)
	}
	if !m.editDate.IsZero() {
		msg.SetEditDate(int(m.editDate.Unix()))
	}
	if len(m.reactions) > 0 {
		msg.SetReactions(s.tgReactionsLocked(m, viewer))
	}
	if m.ttl > 0 {
		msg.SetTTLPeriod(m.ttl)
	}
	if len(m.entities) > 0 {
		ents, err := cloneEntities(m.entities)
		if err == nil {
			msg.SetEntities(ents)
		}
	}
	return msg
}

// tgUserLocked renders u as viewer sees it.
func (s *Server) tgUserLocked(u *user, viewer int64) *tg.User {
	out := &tg.User{
		ID:         u.acc.ID,
		AccessHash: u.acc.AccessHash,
		FirstName:  u.acc.FirstName,
		LastName:   u.acc.LastName,
		Username:   u.acc.Username,
		Phone:      u.acc.Phone,
	}
	out.SetSelf(u.acc.ID == viewer)
	if v, ok := s.st.users[viewer]; ok && v.contacts[u.acc.ID] {
		out.SetContact(true)
		out.SetMutualContact(u.contacts[viewer])
	}
	out.SetStatus(userStatusLocked(u))
	out.SetPremium(u.acc.Premium)
	out.Bot = u.acc.Bot
	if p := s.tgUserPhotoLocked(u.acc.ID); p != nil {
		out.SetPhoto(p)
	}
	return out
}

// tgUsersLocked renders the given users (duplicates and unknown IDs skipped).
func (s *Server) tgUsersLocked(viewer int64, ids ...int64) []tg.UserClass {
	seen := map[int64]bool{}
	var out []tg.UserClass
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if u, ok := s.st.users[id]; ok {
			out = append(out, s.tgUserLocked(u, viewer))
		}
	}
	return out
}

// cloneEntities deep-copies message entities through their TL encoding:
// generated Encode methods write to the flags field, so stored objects must
// never be handed out.
func cloneEntities(in []tg.MessageEntityClass) ([]tg.MessageEntityClass, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]tg.MessageEntityClass, 0, len(in))
	var b bin.Buffer
	for _, e := range in {
		if e == nil {
			continue
		}
		b.Reset()
		if err := e.Encode(&b); err != nil {
			return nil, fmt.Errorf("failed to encode message entity: %w", err)
		}
		c, err := tg.DecodeMessageEntity(&b)
		if err != nil {
			return nil, fmt.Errorf("failed to decode message entity: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}
