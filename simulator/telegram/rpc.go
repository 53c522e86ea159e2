package tgsim

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

var (
	errUserIDInvalid   = tgerr.New(400, "USER_ID_INVALID")
	errPeerIDInvalid   = tgerr.New(400, "PEER_ID_INVALID")
	errMessageEmpty    = tgerr.New(400, "MESSAGE_EMPTY")
	errMessageTooLong  = tgerr.New(400, "MESSAGE_TOO_LONG")
	errPhoneNotUsed    = tgerr.New(400, "PHONE_NOT_OCCUPIED")
	errUsernameNotUsed = tgerr.New(400, "USERNAME_NOT_OCCUPIED")
)

const (
	maxMessageLength = 4096
	captionLengthMax = 1024
	differenceLimit  = 1000
)

func (s *Server) newDispatcher() *tg.ServerDispatcher {
	d := tg.NewServerDispatcher(s.unknownMethod)
	d.OnHelpGetConfig(s.helpGetConfig)
	d.OnHelpGetNearestDC(s.helpGetNearestDC)

	d.OnAuthSendCode(s.authSendCode)
	d.OnAuthSignIn(s.authSignIn)
	d.OnAccountGetPassword(s.accountGetPassword)
	d.OnAuthCheckPassword(s.authCheckPassword)
	d.OnAuthLogOut(s.authLogOut)
	d.OnAuthExportLoginToken(s.authExportLoginToken)
	d.OnAuthAcceptLoginToken(s.authAcceptLoginToken)

	d.OnUsersGetUsers(s.usersGetUsers)
	d.OnUsersGetFullUser(s.usersGetFullUser)
	d.OnContactsGetContacts(s.contactsGetContacts)
	d.OnContactsImportContacts(s.contactsImportContacts)
	d.OnContactsResolvePhone(s.contactsResolvePhone)
	d.OnContactsResolveUsername(s.contactsResolveUsername)

	d.OnMessagesSendMessage(s.messagesSendMessage)
	d.OnMessagesSendMedia(s.messagesSendMedia)
	d.OnMessagesUploadMedia(s.messagesUploadMedia)
	d.OnMessagesGetMessages(s.messagesGetMessages)
	d.OnMessagesSendVote(s.messagesSendVote)
	d.OnUploadSaveFilePart(s.uploadSaveFilePart)
	d.OnUploadSaveBigFilePart(s.uploadSaveBigFilePart)
	d.OnUploadGetFile(s.uploadGetFile)
	d.OnMessagesGetHistory(s.messagesGetHistory)
	d.OnMessagesGetDialogs(s.messagesGetDialogs)
	d.OnMessagesGetPeerDialogs(s.messagesGetPeerDialogs)
	d.OnMessagesReadHistory(s.messagesReadHistory)
	d.OnMessagesEditMessage(s.messagesEditMessage)
	d.OnMessagesDeleteMessages(s.messagesDeleteMessages)
	d.OnMessagesSendReaction(s.messagesSendReaction)
	d.OnMessagesGetCustomEmojiDocuments(s.messagesGetCustomEmojiDocuments)
	d.OnMessagesSetTyping(s.messagesSetTyping)
	d.OnAccountUpdateStatus(s.accountUpdateStatus)

	d.OnUpdatesGetState(s.updatesGetState)
	d.OnUpdatesGetDifference(s.updatesGetDifference)
	d.OnMessagesSetHistoryTTL(s.messagesSetHistoryTTL)
	s.registerChannels(d)
	s.registerBasicGroups(d)
	s.registerPhotos(d)
	s.registerTopics(d)
	return d
}

func (s *Server) helpGetConfig(context.Context) (*tg.Config, error) {
	now := time.Now()
	return &tg.Config{
		Date:                    int(now.Unix()),
		Expires:                 int(now.Add(time.Hour).Unix()),
		ThisDC:                  s.dc,
		DCOptions:               []tg.DCOption{s.DCOption()},
		DCTxtDomainName:         "localhost",
		ChatSizeMax:             200,
		MegagroupSizeMax:        200000,
		ForwardedCountMax:       100,
		OnlineUpdatePeriodMs:    210000,
		OfflineBlurTimeoutMs:    5000,
		OfflineIdleTimeoutMs:    30000,
		OnlineCloudTimeoutMs:    300000,
		NotifyCloudDelayMs:      30000,
		NotifyDefaultDelayMs:    1500,
		PushChatPeriodMs:        60000,
		PushChatLimit:           2,
		EditTimeLimit:           172800,
		RevokeTimeLimit:         172800,
		RevokePmTimeLimit:       2147483647,
		RatingEDecay:            2419200,
		StickersRecentLimit:     200,
		ChannelsReadMediaPeriod: 604800,
		CallReceiveTimeoutMs:    20000,
		CallRingTimeoutMs:       90000,
		CallConnectTimeoutMs:    30000,
		CallPacketTimeoutMs:     10000,
		MeURLPrefix:             "https://t.me/",
		CaptionLengthMax:        captionLengthMax,
		MessageLengthMax:        maxMessageLength,
		WebfileDCID:             s.dc,
	}, nil
}

func (s *Server) helpGetNearestDC(context.Context) (*tg.NearestDC, error) {
	return &tg.NearestDC{Country: "XX", ThisDC: s.dc, NearestDC: s.dc}, nil
}

// inputUserLocked resolves an InputUser, checking access hashes.
func (s *Server) inputUserLocked(self *user, in tg.InputUserClass) (*user, error) {
	switch v := in.(type) {
	case *tg.InputUserSelf:
		return self, nil
	case *tg.InputUser:
		if u, ok := s.st.users[v.UserID]; ok && u.acc.AccessHash == v.AccessHash {
			return u, nil
		}
	case *tg.InputUserFromMessage:
		if u, ok := s.st.users[v.UserID]; ok {
			return u, nil
		}
	}
	return nil, errUserIDInvalid
}

// inputPeerLocked resolves an InputPeer; only users exist here.
func (s *Server) inputPeerLocked(self *user, in tg.InputPeerClass) (*user, error) {
	switch v := in.(type) {
	case *tg.InputPeerSelf:
		return self, nil
	case *tg.InputPeerUser:
		if u, ok := s.st.users[v.UserID]; ok && u.acc.AccessHash == v.AccessHash {
			return u, nil
		}
	case *tg.InputPeerUserFromMessage:
		if u, ok := s.st.users[v.UserID]; ok {
			return u, nil
		}
	}
	return nil, errPeerIDInvalid
}

func (s *Server) usersGetUsers(ctx context.Context, ids []tg.InputUserClass) ([]tg.UserClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) ([]tg.UserClass, error) {
		out := make([]tg.UserClass, 0, len(ids))
		for _, id := range ids {
			if u, err := s.inputUserLocked(self, id); err == nil {
				out = append(out, s.tgUserLocked(u, self.acc.ID))
			}
		}
		return out, nil
	})
}

func (s *Server) usersGetFullUser(ctx context.Context, id tg.InputUserClass) (*tg.UsersUserFull, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (*tg.UsersUserFull, error) {
		u, err := s.inputUserLocked(self, id)
		if err != nil {
			return nil, err
		}
		full := tg.UserFull{ID: u.acc.ID}
		if p := tgPhotoOf(s.profilePhotoLocked(u.acc.ID)); p != nil {
			full.SetProfilePhoto(p)
		}
		return &tg.UsersUserFull{
			FullUser: full,
			Users:    []tg.UserClass{s.tgUserLocked(u, self.acc.ID)},
		}, nil
	})
}

func (s *Server) contactsGetContacts(ctx context.Context, _ int64) (tg.ContactsContactsClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (tg.ContactsContactsClass, error) {
		ids := make([]int64, 0, len(self.contacts))
		for id := range self.contacts {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		out := &tg.ContactsContacts{SavedCount: len(ids)}
		for _, id := range ids {
			c, ok := s.st.users[id]
			if !ok {
				continue
			}
			out.Contacts = append(out.Contacts, tg.Contact{UserID: id, Mutual: c.contacts[self.acc.ID]})
			out.Users = append(out.Users, s.tgUserLocked(c, self.acc.ID))
		}
		return out, nil
	})
}

func (s *Server) contactsImportContacts(ctx context.Context, contacts []tg.InputPhoneContact) (*tg.ContactsImportedContacts, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (*tg.ContactsImportedContacts, error) {
		out := &tg.ContactsImportedContacts{}
		for _, c := range contacts {
			u, ok := s.st.byPhone[NormalizePhone(c.Phone)]
			if !ok {
				continue
			}
			if u != self {
				self.contacts[u.acc.ID] = true
			}
			out.Imported = append(out.Imported, tg.ImportedContact{UserID: u.acc.ID, ClientID: c.ClientID})
			out.Users = append(out.Users, s.tgUserLocked(u, self.acc.ID))
		}
		return out, nil
	})
}

// resolvedLocked is the answer to a contacts.resolve* of self that found u.
func (s *Server) resolvedLocked(self, u *user) *tg.ContactsResolvedPeer {
	return &tg.ContactsResolvedPeer{
		Peer:  &tg.PeerUser{UserID: u.acc.ID},
		Users: []tg.UserClass{s.tgUserLocked(u, self.acc.ID)},
	}
}

func (s *Server) contactsResolvePhone(ctx context.Context, phone string) (*tg.ContactsResolvedPeer, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (*tg.ContactsResolvedPeer, error) {
		u, ok := s.st.byPhone[NormalizePhone(phone)]
		if !ok {
			return nil, errPhoneNotUsed
		}
		return s.resolvedLocked(self, u), nil
	})
}

func (s *Server) contactsResolveUsername(ctx context.Context, req *tg.ContactsResolveUsernameRequest) (*tg.ContactsResolvedPeer, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (*tg.ContactsResolvedPeer, error) {
		u, ok := s.st.byUsername[strings.ToLower(strings.TrimPrefix(req.Username, "@"))]
		if !ok {
			return nil, errUsernameNotUsed
		}
		return s.resolvedLocked(self, u), nil
	})
}

func (s *Server) messagesSendMessage(ctx context.Context, req *tg.MessagesSendMessageRequest) (tg.UpdatesClass, error) {
	if _, ok := req.Peer.(*tg.InputPeerChat); ok {
		return s.chatSendMessage(ctx, req)
	}
	return withPeer(s, ctx, req.Peer, func(r *request, self, peer *user) (tg.UpdatesClass, error) {
		switch {
		case strings.TrimSpace(req.Message) == "":
			return nil, errMessageEmpty
		case utf8.RuneCountInString(req.Message) > maxMessageLength:
			return nil, errMessageTooLong
		}
		// The request was decoded for this call only: its entities can be
		// stored as they are.
		entry, m, err := s.sendOnceLocked(self, r, req.RandomID, func() (*stored, error) {
			m := s.deliverLocked(self, peer, req.Message, req.Entities, true)
			m.replyTo, m.quote = replyTargetLocked(self, peer, req.ReplyTo)
			return m, nil
		})
		if err != nil {
			return nil, err
		}
		if m != nil {
			if reply := peer.autoReply; reply != nil && peer != self {
				in := s.messageLocked(m)
				r.after = append(r.after, func() {
					go func() {
						if text, ok := reply(in); ok {
							_, _ = s.SendMessage(in.To, in.From, text, nil)
						}
					}()
				})
			}
		}
		return shortSent(entry), nil
	})
}

// shortSent is the answer to the client that sent entry's message: its
// ID, pts, date and entities in the sender's history.
func shortSent(entry *boxEntry) *tg.UpdateShortSentMessage {
	out := &tg.UpdateShortSentMessage{
		Out:      true,
		ID:       entry.id,
		Pts:      entry.pts,
		PtsCount: 1,
		Date:     int(entry.msg.date.Unix()),
	}
	if ents, _ := cloneEntities(entry.msg.entities); len(ents) > 0 {
		out.SetEntities(ents)
	}
	return out
}

// sendOnceLocked delivers a message sent by a client once per sender and
// random_id, as Telegram does: a resend (a client that did not see the
// answer, a bridge that crashed before recording it) gets the message it
// already sent, and m is nil. A new message is pushed to the sender's other
// sessions and to the recipient.
func (s *Server) sendOnceLocked(self *user, r *request, randomID int64, deliver func() (*stored, error)) (entry *boxEntry, m *stored, err error) {
	entry, dup := self.sent[randomID]
	if dup && randomID != 0 {
		s.st.duplicateSends++
		return entry, nil, nil
	}
	if m, err = deliver(); err != nil {
		return nil, nil, err
	}
	if randomID != 0 {
		self.sent[randomID] = m.senderEntry
	}
	s.pushNewMessageLocked(m, r.sess.mt.ID)
	return m.senderEntry, m, nil
}

func (s *Server) messagesGetHistory(ctx context.Context, req *tg.MessagesGetHistoryRequest) (tg.MessagesMessagesClass, error) {
	switch in := req.Peer.(type) {
	case *tg.InputPeerChannel:
		return s.channelHistory(ctx, req, in)
	case *tg.InputPeerChat:
		return s.chatHistory(ctx, req, in.ChatID)
	}
	return withPeer(s, ctx, req.Peer, func(_ *request, self, peer *user) (tg.MessagesMessagesClass, error) {
		var list []*boxEntry
		for i := len(self.box) - 1; i >= 0; i-- {
			e := self.box[i]
			if e.msg.chat == 0 && peerOf(e.msg, self.acc.ID) == peer.acc.ID && !e.msg.goneFor(self.acc.ID) {
				list = append(list, e)
			}
		}
		out := &tg.MessagesMessages{Users: s.tgUsersLocked(self.acc.ID, self.acc.ID, peer.acc.ID)}
		for _, e := range historyWindow(req, list, func(e *boxEntry) int { return e.id }) {
			out.Messages = append(out.Messages, s.tgMessageClassLocked(e.msg, self.acc.ID))
		}
		return out, nil
	})
}

// channelHistory is messages.getHistory of a supergroup or channel.
func (s *Server) channelHistory(ctx context.Context, req *tg.MessagesGetHistoryRequest, in *tg.InputPeerChannel) (tg.MessagesMessagesClass, error) {
	input := &tg.InputChannel{ChannelID: in.ChannelID, AccessHash: in.AccessHash}
	return withChannel(s, ctx, input, true, func(_ *request, self *user, ch *channel) (tg.MessagesMessagesClass, error) {
		viewer := self.acc.ID
		var list []*channelMsg
		for i := len(ch.msgs) - 1; i >= 0; i-- {
			if !ch.msgs[i].Deleted {
				list = append(list, ch.msgs[i])
			}
		}
		out := &tg.MessagesMessages{Chats: []tg.ChatClass{s.tgChannelLocked(ch, viewer)}}
		ids := []int64{viewer}
		for _, m := range historyWindow(req, list, func(m *channelMsg) int { return m.ID }) {
			out.Messages = append(out.Messages, s.tgChannelMsgLocked(ch, m, viewer))
			ids = append(ids, m.usersOf()...)
		}
		out.Users = s.tgUsersLocked(viewer, ids...)
		return out, nil
	})
}

// chatHistory is messages.getHistory of a basic group: the caller's copies
// of its messages, in the caller's numbering.
func (s *Server) chatHistory(ctx context.Context, req *tg.MessagesGetHistoryRequest, chatID int64) (tg.MessagesMessagesClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (tg.MessagesMessagesClass, error) {
		c, ok := s.st.chats[chatID]
		if !ok || !c.isMember(self.acc.ID) {
			return nil, errPeerIDInvalid
		}
		var list []*boxEntry
		for i := len(self.box) - 1; i >= 0; i-- {
			if e := self.box[i]; e.msg.chat == chatID && !e.msg.goneFor(self.acc.ID) {
				list = append(list, e)
			}
		}
		out := &tg.MessagesMessages{Chats: []tg.ChatClass{s.tgChatLocked(c)}}
		ids := []int64{self.acc.ID}
		for _, e := range historyWindow(req, list, func(e *boxEntry) int { return e.id }) {
			out.Messages = append(out.Messages, s.tgMessageClassLocked(e.msg, self.acc.ID))
			ids = append(ids, e.msg.from)
		}
		out.Users = s.tgUsersLocked(self.acc.ID, ids...)
		return out, nil
	})
}

// historyWindow is Telegram's window of a chat's messages (list, newest
// first): within min_id and max_id, from the first one older than offset_id
// (the newest when 0), moved by add_offset (negative: towards newer
// messages, how a client pages forward), limit of them (at most 100).
func historyWindow[M any](req *tg.MessagesGetHistoryRequest, list []M, idOf func(M) int) []M {
	limit := req.Limit
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	list = slices.DeleteFunc(list, func(m M) bool {
		id := idOf(m)
		return (req.MaxID > 0 && id >= req.MaxID) || (req.MinID > 0 && id <= req.MinID)
	})
	start := 0
	if req.OffsetID > 0 {
		start = len(list)
		for i, m := range list {
			if idOf(m) < req.OffsetID {
				start = i
				break
			}
		}
	}
	start += req.AddOffset
	end := min(start+limit, len(list))
	start = max(start, 0)
	if start >= end {
		return nil
	}
	return list[start:end]
}

// simDialog is one chat of an account's dialog list.
type simDialog struct {
	peer  tg.PeerClass
	key   int64 // orders dialogs of the same second; dialogKey's key
	date  int
	top   int
	entry *boxEntry
	ch    *channel
}

// dialogsLocked lists every chat of self (private chats, basic groups,
// supergroups and channels) by last activity: the newest top message
// first.
func (s *Server) dialogsLocked(self *user) []simDialog {
	var list []simDialog
	seen := map[int64]bool{}
	for i := len(self.box) - 1; i >= 0; i-- {
		e := self.box[i]
		if e.msg.goneFor(self.acc.ID) {
			continue
		}
		d := simDialog{date: int(e.msg.date.Unix()), top: e.id, entry: e}
		if e.msg.chat != 0 {
			if seen[-e.msg.chat] {
				continue
			}
			seen[-e.msg.chat] = true
			d.peer, d.key = &tg.PeerChat{ChatID: e.msg.chat}, -e.msg.chat
		} else {
			peer := peerOf(e.msg, self.acc.ID)
			if seen[peer] {
				continue
			}
			seen[peer] = true
			d.peer, d.key = &tg.PeerUser{UserID: peer}, peer
		}
		list = append(list, d)
	}
	for _, ch := range s.st.channels {
		if !ch.member[self.acc.ID] {
			continue
		}
		for i := len(ch.msgs) - 1; i >= 0; i-- {
			if m := ch.msgs[i]; !m.Deleted {
				list = append(list, simDialog{peer: &tg.PeerChannel{ChannelID: ch.id}, key: ch.id, date: int(m.Date.Unix()), top: m.ID, ch: ch})
				break
			}
		}
	}
	slices.SortStableFunc(list, func(a, b simDialog) int {
		if a.date != b.date {
			return b.date - a.date
		}
		if a.entry != nil && b.entry != nil {
			return b.top - a.top
		}
		return cmp.Compare(b.key, a.key)
	})
	return list
}

// dialogPageLocked is what a page of dialogs carries: the dialogs (with
// how far self read each), their top messages, chats and users.
func (s *Server) dialogPageLocked(self *user, page []simDialog) (dialogs []tg.DialogClass, msgs []tg.MessageClass, chats []tg.ChatClass, users []tg.UserClass) {
	ids := []int64{self.acc.ID}
	var chatIDs []int64
	for _, d := range page {
		dialog := &tg.Dialog{Peer: d.peer, TopMessage: d.top}
		switch p := d.peer.(type) {
		case *tg.PeerChannel:
			m := d.ch.msgs[d.top-1]
			dialog.ReadInboxMaxID = d.ch.readInbox[self.acc.ID]
			msgs = append(msgs, s.tgChannelMsgLocked(d.ch, m, self.acc.ID))
			chats = append(chats, s.tgChannelLocked(d.ch, self.acc.ID))
			ids = append(ids, m.usersOf()...)
		case *tg.PeerChat:
			dialog.ReadInboxMaxID = self.readInbox[p.ChatID]
			msgs = append(msgs, s.tgMessageClassLocked(d.entry.msg, self.acc.ID))
			chatIDs = append(chatIDs, p.ChatID)
			ids = append(ids, d.entry.msg.from)
		case *tg.PeerUser:
			dialog.ReadInboxMaxID = self.readInbox[p.UserID]
			msgs = append(msgs, s.tgMessageClassLocked(d.entry.msg, self.acc.ID))
			ids = append(ids, p.UserID)
		}
		dialogs = append(dialogs, dialog)
	}
	chats = append(chats, s.tgChatsLocked(chatIDs...)...)
	return dialogs, msgs, chats, s.tgUsersLocked(self.acc.ID, ids...)
}

func (s *Server) messagesGetDialogs(ctx context.Context, req *tg.MessagesGetDialogsRequest) (tg.MessagesDialogsClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (tg.MessagesDialogsClass, error) {
		limit := req.Limit
		if limit <= 0 || limit > 100 {
			limit = 100
		}
		// A page starts after offset_peer when it is one of the chats, else
		// after offset_date and offset_id.
		list := s.dialogsLocked(self)
		start := 0
		if offsetKey, ok := dialogKey(req.OffsetPeer); ok {
			for i, d := range list {
				if d.key == offsetKey {
					start = i + 1
					break
				}
			}
		} else if req.OffsetDate > 0 || req.OffsetID > 0 {
			start = len(list)
			for i, d := range list {
				if (req.OffsetDate == 0 || d.date <= req.OffsetDate) && (req.OffsetID == 0 || d.entry == nil || d.top < req.OffsetID) {
					start = i
					break
				}
			}
		}
		out := &tg.MessagesDialogs{}
		out.Dialogs, out.Messages, out.Chats, out.Users = s.dialogPageLocked(self, list[start:min(start+limit, len(list))])
		return out, nil
	})
}

// messagesGetPeerDialogs gives the dialogs of the chats asked for (those
// self has), with how far self read each.
func (s *Server) messagesGetPeerDialogs(ctx context.Context, peers []tg.InputDialogPeerClass) (*tg.MessagesPeerDialogs, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (*tg.MessagesPeerDialogs, error) {
		if len(peers) > 100 {
			return nil, tgerr.New(400, "LIMIT_INVALID")
		}
		want := map[int64]bool{}
		for _, p := range peers {
			in, ok := p.(*tg.InputDialogPeer)
			if !ok {
				return nil, tgerr.New(400, "PEER_ID_INVALID")
			}
			key, ok := dialogKey(in.Peer)
			if !ok {
				return nil, tgerr.New(400, "PEER_ID_INVALID")
			}
			want[key] = true
		}
		var page []simDialog
		for _, d := range s.dialogsLocked(self) {
			if want[d.key] {
				page = append(page, d)
			}
		}
		out := &tg.MessagesPeerDialogs{State: tg.UpdatesState{Pts: self.pts, Date: int(s.nowLocked().Unix())}}
		out.Dialogs, out.Messages, out.Chats, out.Users = s.dialogPageLocked(self, page)
		return out, nil
	})
}

// dialogKey is the key a dialog of messages.getDialogs has for an input
// peer (false: none, or the empty peer).
func dialogKey(in tg.InputPeerClass) (int64, bool) {
	switch v := in.(type) {
	case *tg.InputPeerUser:
		return v.UserID, true
	case *tg.InputPeerChat:
		return -v.ChatID, true
	case *tg.InputPeerChannel:
		return v.ChannelID, true
	}
	return 0, false
}

func (s *Server) updatesGetState(ctx context.Context) (*tg.UpdatesState, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (*tg.UpdatesState, error) {
		return &tg.UpdatesState{Pts: self.pts, Date: int(s.nowLocked().Unix())}, nil
	})
}

func (s *Server) updatesGetDifference(ctx context.Context, req *tg.UpdatesGetDifferenceRequest) (tg.UpdatesDifferenceClass, error) {
	return withSelf(s, ctx, func(_ *request, self *user) (tg.UpdatesDifferenceClass, error) {
		now := int(s.nowLocked().Unix())
		if req.Pts >= self.pts {
			return &tg.UpdatesDifferenceEmpty{Date: now}, nil
		}
		if n := s.st.differenceTooLong; n > 0 && self.pts-req.Pts > n {
			// Too far behind: the client fetches the history of its chats
			// itself and goes on from the current pts.
			return &tg.UpdatesDifferenceTooLong{Pts: self.pts}, nil
		}
		sliceLimit := differenceLimit
		if s.st.differenceSlice > 0 {
			sliceLimit = s.st.differenceSlice
		}
		// The pts log is the history (new messages) merged with the other
		// pts updates (edits, deletions, read history), in pts order.
		var (
			msgs  []tg.MessageClass
			other []tg.UpdateClass
			ids   = []int64{self.acc.ID}
			chats []int64
			last  int
		)
		i, j := 0, 0
		for i < len(self.box) || j < len(self.events) {
			takeMsg := j >= len(self.events) || (i < len(self.box) && self.box[i].pts < self.events[j].pts)
			var pts int
			if takeMsg {
				pts = self.box[i].pts
			} else {
				pts = self.events[j].pts
			}
			if pts <= req.Pts {
				if takeMsg {
					i++
				} else {
					j++
				}
				continue
			}
			if len(msgs)+len(other) == sliceLimit {
				return &tg.UpdatesDifferenceSlice{
					NewMessages:       msgs,
					OtherUpdates:      other,
					Users:             s.tgUsersLocked(self.acc.ID, ids...),
					Chats:             s.tgChatsLocked(chats...),
					IntermediateState: tg.UpdatesState{Pts: last, Date: now},
				}, nil
			}
			if takeMsg {
				e := self.box[i]
				i++
				if !e.msg.goneFor(self.acc.ID) {
					msgs = append(msgs, s.tgMessageClassLocked(e.msg, self.acc.ID))
					ids = append(ids, peerOf(e.msg, self.acc.ID))
					if e.msg.chat != 0 && !slices.Contains(chats, e.msg.chat) {
						chats = append(chats, e.msg.chat)
					}
				}
			} else {
				ev := self.events[j]
				j++
				other = append(other, s.renderEventLocked(self, ev))
				ids = append(ids, s.eventUsers(self, ev)...)
			}
			last = pts
		}
		return &tg.UpdatesDifference{
			NewMessages:  msgs,
			OtherUpdates: other,
			Users:        s.tgUsersLocked(self.acc.ID, ids...),
			Chats:        s.tgChatsLocked(chats...),
			State:        tg.UpdatesState{Pts: self.pts, Date: now},
		}, nil
	})
}
