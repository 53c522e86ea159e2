package tgsim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

// Chat photos. A supergroup's, channel's or basic group's photo is a photo
// stored like a message's (upload.getFile serves it), with a photo ID that
// changes with every new photo. A channel's members see a new photo as a
// messageActionChatEditPhoto service message (messageActionChatDeletePhoto
// when it is removed); the photo also shows in the chat (chatPhoto) and in
// its full info (chat_photo).

var errPhotoInvalid = tgerr.New(400, "PHOTO_INVALID")

// chatPhotoLocked is a chat's photo (nil: none).
func (s *Server) chatPhotoLocked(chatID int64) *mediaObj {
	return s.st.chatPhotos[chatID]
}

// setChatPhotoLocked stores b (nil: removes the photo) as the photo of a
// channel or basic group.
func (s *Server) setChatPhotoLocked(chatID int64, b *blob) *mediaObj {
	if s.st.chatPhotos == nil {
		s.st.chatPhotos = map[int64]*mediaObj{}
	}
	if b == nil {
		delete(s.st.chatPhotos, chatID)
		return nil
	}
	o := s.newPhotoLocked(b)
	s.st.chatPhotos[chatID] = o
	return o
}

// tgPhotoOf renders a stored photo with its current file reference.
func tgPhotoOf(o *mediaObj) *tg.Photo {
	if o == nil {
		return nil
	}
	if mm, ok := o.render().(*tg.MessageMediaPhoto); ok {
		if p, ok := mm.Photo.(*tg.Photo); ok {
			return p
		}
	}
	return nil
}

// tgChatPhotoLocked is a chat's photo as tg.Chat / tg.Channel show it.
func (s *Server) tgChatPhotoLocked(chatID int64) tg.ChatPhotoClass {
	o := s.chatPhotoLocked(chatID)
	if o == nil {
		return &tg.ChatPhotoEmpty{}
	}
	return &tg.ChatPhoto{PhotoID: o.id, DCID: s.dc}
}

// tgFullPhotoLocked is a chat's photo as its full info shows it.
func (s *Server) tgFullPhotoLocked(chatID int64) tg.PhotoClass {
	if p := tgPhotoOf(s.chatPhotoLocked(chatID)); p != nil {
		return p
	}
	return &tg.PhotoEmpty{}
}

// SetChannelPhoto makes by (an admin) set a channel's photo to data (an
// image; nil removes the photo). Its members get the service message. It
// returns the new photo's ID (0 when removed).
func (s *Server) SetChannelPhoto(channelID, by int64, data []byte) (int64, error) {
	var b *blob
	if data != nil {
		var err error
		if b, err = s.files.put(bytes.NewReader(data)); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.st.channels[channelID]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrNoChannel, channelID)
	}
	m, err := s.editChannelPhotoLocked(ch, by, b, 0)
	if err != nil {
		return 0, err
	}
	if p, ok := m.action.(*tg.MessageActionChatEditPhoto); ok {
		return p.Photo.GetID(), nil
	}
	return 0, nil
}

// ChannelPhoto returns the ID and bytes of a channel's photo (ok false:
// none).
func (s *Server) ChannelPhoto(channelID int64) (id int64, data []byte, ok bool) {
	return s.ChatPhoto(channelID)
}

// ChatPhoto returns the ID and bytes of a channel's or basic group's photo
// (ok false: none).
func (s *Server) ChatPhoto(chatID int64) (id int64, data []byte, ok bool) {
	s.mu.Lock()
	o := s.chatPhotoLocked(chatID)
	s.mu.Unlock()
	if o == nil || o.blob == nil {
		return 0, nil, false
	}
	data, err := os.ReadFile(o.blob.path)
	if err != nil {
		return 0, nil, false
	}
	return o.id, data, true
}

func (s *Server) editChannelPhotoLocked(ch *channel, by int64, b *blob, exceptSession int64) (*channelMsg, error) {
	switch {
	case !ch.member[by]:
		return nil, errChannelPrivate
	case !ch.isAdmin(by):
		return nil, errChatAdminRequired
	case b == nil && s.chatPhotoLocked(ch.id) == nil:
		return nil, errChatNotModified
	}
	o := s.setChatPhotoLocked(ch.id, b)
	from := by
	if ch.broadcast {
		from = 0
	}
	m := &channelMsg{ChannelMessage: ChannelMessage{From: from, Action: "photo"}}
	if o != nil {
		m.action = &tg.MessageActionChatEditPhoto{Photo: tgPhotoOf(o)}
	} else {
		m.action = &tg.MessageActionChatDeletePhoto{}
	}
	s.addChannelMsgLocked(ch, m, exceptSession)
	return m, nil
}

// chatPhotoBlob turns what a client sends as a chat photo into a blob (nil
// for inputChatPhotoEmpty): an uploaded file must be an image.
func (s *Server) chatPhotoBlob(ctx context.Context, in tg.InputChatPhotoClass) (*blob, error) {
	switch v := in.(type) {
	case *tg.InputChatPhotoEmpty:
		return nil, nil
	case *tg.InputChatUploadedPhoto:
		f, ok := v.GetFile()
		if !ok {
			return nil, errPhotoInvalid
		}
		self, err := s.self(ctx)
		if err != nil {
			return nil, err
		}
		b, _, err := s.files.finish(self.acc.ID, f)
		if err != nil {
			return nil, err
		}
		if w, h := imageSize(b); w == 0 || h == 0 {
			return nil, tgerr.New(400, "IMAGE_PROCESS_FAILED")
		}
		return b, nil
	}
	return nil, errPhotoInvalid
}

func (s *Server) channelsEditPhoto(ctx context.Context, req *tg.ChannelsEditPhotoRequest) (tg.UpdatesClass, error) {
	b, err := s.chatPhotoBlob(ctx, req.Photo)
	if err != nil {
		return nil, err
	}
	return withChannel(s, ctx, req.Channel, true, func(r *request, self *user, ch *channel) (tg.UpdatesClass, error) {
		m, err := s.editChannelPhotoLocked(ch, self.acc.ID, b, r.sess.mt.ID)
		if err != nil {
			return nil, err
		}
		return s.channelMsgUpdatesLocked(ch, m, self.acc.ID), nil
	})
}

// SetChatPhoto sets a basic group's photo (nil data removes it); its
// members are told with updateChat.
func (s *Server) SetChatPhoto(chatID int64, data []byte) (int64, error) {
	var b *blob
	if data != nil {
		var err error
		if b, err = s.files.put(bytes.NewReader(data)); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.chats[chatID]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrNoChat, chatID)
	}
	o := s.setChatPhotoLocked(c.id, b)
	s.pushChatUpdateLocked(c, 0)
	if o == nil {
		return 0, nil
	}
	return o.id, nil
}

func (s *Server) pushChatUpdateLocked(c *basicChat, exceptSession int64) *tg.Updates {
	upd := &tg.Updates{
		Updates: []tg.UpdateClass{&tg.UpdateChat{ChatID: c.id}},
		Chats:   []tg.ChatClass{s.tgChatLocked(c)},
		Date:    int(time.Now().Unix()),
	}
	for _, m := range c.members {
		s.pushToUserLocked(m, exceptSession, upd)
	}
	s.changedLocked()
	return upd
}

// messagesEditChatPhoto changes a basic group's photo. Every member of a
// basic group may, unless it is restricted (not simulated).
func (s *Server) messagesEditChatPhoto(ctx context.Context, req *tg.MessagesEditChatPhotoRequest) (tg.UpdatesClass, error) {
	b, err := s.chatPhotoBlob(ctx, req.Photo)
	if err != nil {
		return nil, err
	}
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	self, err := s.selfLocked(r)
	if err != nil {
		return nil, err
	}
	c, ok := s.st.chats[req.ChatID]
	if !ok || !c.isMember(self.acc.ID) {
		return nil, errChatIDInvalid
	}
	if b == nil && s.chatPhotoLocked(c.id) == nil {
		return nil, errChatNotModified
	}
	return s.editChatPhotoLocked(c, self.acc.ID, b, r.sess.mt.ID), nil
}

// EditChatPhoto makes by (a member) change a basic group's photo to data
// (an image; nil removes it), as a Telegram app does: the members get the
// service message (messageActionChatEditPhoto, or
// messageActionChatDeletePhoto). It returns the new photo's ID (0 when
// removed).
func (s *Server) EditChatPhoto(chatID, by int64, data []byte) (int64, error) {
	var b *blob
	if data != nil {
		var err error
		if b, err = s.files.put(bytes.NewReader(data)); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.chats[chatID]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrNoChat, chatID)
	}
	if !c.isMember(by) {
		return 0, errChatWriteForbidden
	}
	if b == nil && s.chatPhotoLocked(c.id) == nil {
		return 0, errChatNotModified
	}
	s.editChatPhotoLocked(c, by, b, 0)
	if o := s.chatPhotoLocked(c.id); o != nil {
		return o.id, nil
	}
	return 0, nil
}

// editChatPhotoLocked changes a basic group's photo with its service
// message; the updates carry the chat as it is now.
func (s *Server) editChatPhotoLocked(c *basicChat, by int64, b *blob, exceptSession int64) *tg.Updates {
	o := s.setChatPhotoLocked(c.id, b)
	upd := s.chatServiceLocked(c, by, func() tg.MessageActionClass {
		if o == nil {
			return &tg.MessageActionChatDeletePhoto{}
		}
		return &tg.MessageActionChatEditPhoto{Photo: tgPhotoOf(o)}
	}, exceptSession)
	s.changedLocked()
	return upd
}

func (s *Server) registerPhotos(d *tg.ServerDispatcher) {
	d.OnChannelsEditPhoto(s.channelsEditPhoto)
	d.OnPhotosUploadProfilePhoto(s.photosUploadProfilePhoto)
	d.OnMessagesEditChatPhoto(s.messagesEditChatPhoto)
	d.OnMessagesEditChatAdmin(s.messagesEditChatAdmin)
}
