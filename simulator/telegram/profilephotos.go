package tgsim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gotd/td/tg"
)

// Profile photos. A user's photo shows in the user objects the server
// hands out (userProfilePhoto with the photo's ID), in users.getFullUser
// (profile_photo), and downloads with upload.getFile of an
// inputPeerPhotoFileLocation naming the user and the photo ID. When it
// changes (SetProfilePhoto, or photos.uploadProfilePhoto by the account
// itself), the users who know the account (its contacts, those who share a
// private chat or a group with it) get updateUser with the new user object.

// ErrNoUser: no such account.
var ErrNoUser = fmt.Errorf("no such user")

// profilePhotoLocked is a user's profile photo (nil: none).
func (s *Server) profilePhotoLocked(userID int64) *mediaObj {
	return s.st.profilePhotos[userID]
}

// tgUserPhotoLocked is a user's photo as user objects show it.
func (s *Server) tgUserPhotoLocked(userID int64) tg.UserProfilePhotoClass {
	o := s.profilePhotoLocked(userID)
	if o == nil {
		return nil
	}
	return &tg.UserProfilePhoto{PhotoID: o.id, DCID: s.dc}
}

// SetProfilePhoto sets an account's profile photo to data (an image; nil
// removes it) and tells the users who know the account. It returns the
// new photo's ID (0 when removed).
func (s *Server) SetProfilePhoto(account int64, data []byte) (int64, error) {
	var b *blob
	if data != nil {
		var err error
		if b, err = s.files.put(bytes.NewReader(data)); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[account]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrNoUser, account)
	}
	o := s.setProfilePhotoLocked(u, b, 0)
	if o == nil {
		return 0, nil
	}
	return o.id, nil
}

// ProfilePhoto returns the ID and bytes of an account's profile photo (ok
// false: none).
func (s *Server) ProfilePhoto(account int64) (id int64, data []byte, ok bool) {
	s.mu.Lock()
	o := s.profilePhotoLocked(account)
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

func (s *Server) setProfilePhotoLocked(u *user, b *blob, exceptSession int64) *mediaObj {
	if s.st.profilePhotos == nil {
		s.st.profilePhotos = map[int64]*mediaObj{}
	}
	var o *mediaObj
	if b == nil {
		delete(s.st.profilePhotos, u.acc.ID)
	} else {
		o = s.newPhotoLocked(b)
		s.st.profilePhotos[u.acc.ID] = o
	}
	for _, viewer := range s.acquaintancesLocked(u) {
		s.pushToUserLocked(viewer, exceptSession, &tg.Updates{
			Updates: []tg.UpdateClass{&tg.UpdateUser{UserID: u.acc.ID}},
			Users:   []tg.UserClass{s.tgUserLocked(u, viewer)},
			Date:    int(time.Now().Unix()),
		})
	}
	s.changedLocked()
	return o
}

// acquaintancesLocked are the users who know u: u itself, its contacts,
// those with a private chat with it, and the members of its groups.
func (s *Server) acquaintancesLocked(u *user) []int64 {
	seen := map[int64]bool{u.acc.ID: true}
	out := []int64{u.acc.ID}
	add := func(id int64) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for id := range u.contacts {
		add(id)
	}
	for _, e := range u.box {
		add(e.msg.from)
		add(e.msg.to)
	}
	for _, ch := range s.st.channels {
		if ch.member[u.acc.ID] {
			for id := range ch.member {
				add(id)
			}
		}
	}
	for _, c := range s.st.chats {
		if c.isMember(u.acc.ID) {
			for _, id := range c.members {
				add(id)
			}
		}
	}
	return out
}

// photosUploadProfilePhoto sets the caller's profile photo.
func (s *Server) photosUploadProfilePhoto(ctx context.Context, req *tg.PhotosUploadProfilePhotoRequest) (*tg.PhotosPhoto, error) {
	f, ok := req.GetFile()
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
		return nil, errPhotoInvalid
	}
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.setProfilePhotoLocked(self, b, r.sess.mt.ID)
	return &tg.PhotosPhoto{Photo: tgPhotoOf(o), Users: []tg.UserClass{s.tgUserLocked(self, self.acc.ID)}}, nil
}

// profilePhotoFileLocked finds the photo an inputPeerPhotoFileLocation
// names: a user's current profile photo, or a chat's photo.
func (s *Server) peerPhotoLocked(self *user, loc *tg.InputPeerPhotoFileLocation) (*mediaObj, error) {
	var o *mediaObj
	switch p := loc.Peer.(type) {
	case *tg.InputPeerSelf:
		o = s.profilePhotoLocked(self.acc.ID)
	case *tg.InputPeerUser:
		u, err := s.inputUserLocked(self, &tg.InputUser{UserID: p.UserID, AccessHash: p.AccessHash})
		if err != nil {
			return nil, err
		}
		o = s.profilePhotoLocked(u.acc.ID)
	case *tg.InputPeerChat:
		o = s.chatPhotoLocked(p.ChatID)
	case *tg.InputPeerChannel:
		o = s.chatPhotoLocked(p.ChannelID)
	}
	if o == nil || o.id != loc.PhotoID {
		return nil, errLocationInvalid
	}
	return o, nil
}
