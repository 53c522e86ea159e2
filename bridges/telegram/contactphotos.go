package telegram

import (
	"context"
	"strconv"

	"github.com/gotd/td/tg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// Contact pictures. A contact's Telegram profile photo is their ghost's
// avatar. Its avatar ID is the photo's ID, so an unchanged photo is not
// downloaded and uploaded again (bridgev2 calls Get only for a new ID). It
// is downloaded through the login that saw the user, by peer and photo ID
// (inputPeerPhotoFileLocation: no file reference to expire). A photo
// changed later shows in the user objects Telegram sends (updateUser,
// messages, member lists): a new photo ID updates the ghost.

// userAvatarID is the avatar ID of a user's profile photo.
func userAvatarID(photoID int64) networkid.AvatarID {
	return networkid.AvatarID("tg.userphoto." + strconv.FormatInt(photoID, 10))
}

// userPhotoID is the ID of a user's profile photo (0: none).
func userPhotoID(u *tg.User) int64 {
	if p, ok := u.Photo.(*tg.UserProfilePhoto); ok {
		return p.PhotoID
	}
	return 0
}

// userAvatar is a user's ghost avatar: removed without a photo, else
// downloaded on demand.
func (c *Client) userAvatar(u *tg.User) *bridgev2.Avatar {
	photoID := userPhotoID(u)
	if photoID == 0 {
		return &bridgev2.Avatar{Remove: true}
	}
	userID, hash := u.ID, u.AccessHash
	return &bridgev2.Avatar{ID: userAvatarID(photoID), Get: func(ctx context.Context) ([]byte, error) {
		if hash == 0 {
			in, err := c.inputUser(ctx, userID)
			if err != nil {
				return nil, err
			}
			if iu, ok := in.(*tg.InputUser); ok {
				hash = iu.AccessHash
			}
		}
		return c.downloadChatPhoto(ctx, &tg.InputPeerPhotoFileLocation{
			Big: true, Peer: &tg.InputPeerUser{UserID: userID, AccessHash: hash}, PhotoID: photoID,
		})
	}}
}

// noticeUserPhoto updates the ghost of a user whose profile photo is not
// the one its avatar shows (only a ghost that exists: a ghost is made when
// a message of its user passed the governance gate). prev is the user as
// the cache had it (nil: not cached).
func (c *Client) noticeUserPhoto(ctx context.Context, prev, u *tg.User) {
	if u.ID == c.userID || u.Min {
		return
	}
	photoID := userPhotoID(u)
	if prev == nil && photoID == 0 {
		// First sight without a photo: the ghost, if any, got its avatar
		// when it was made or will on the next change.
		return
	}
	if prev != nil && userPhotoID(prev) == photoID {
		return
	}
	c.updateGhostLater(ctx, u.ID, func(ctx context.Context, ghost *bridgev2.Ghost) {
		// The user as Telegram has them now: an update's users are as they
		// were when it was sent, and gotd hands a user's change (no pts)
		// over before messages it still buffers, whose older copies of the
		// user then come after it.
		now, err := c.fetchUser(ctx, u.ID)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Int64("tg_user_id", u.ID).Msg("Failed to get a contact's profile: using the update's")
			now = u
		}
		want := networkid.AvatarID("")
		if id := userPhotoID(now); id != 0 {
			want = userAvatarID(id)
		}
		if ghost.AvatarID == want && ghost.AvatarSet {
			return
		}
		zerolog.Ctx(ctx).Debug().Int64("tg_user_id", u.ID).Msg("A contact's profile photo changed")
		ghost.UpdateInfo(ctx, &bridgev2.UserInfo{Avatar: c.userAvatar(now)})
	})
}

// handleUserUpdate: a user changed (updateUser): their ghost is updated
// from the user object the update carries, else from Telegram.
func (c *Client) handleUserUpdate(ctx context.Context, e tg.Entities, userID int64) {
	if _, carried := e.Users[userID]; carried {
		return // rememberEntities noticed it
	}
	in, err := c.inputUser(ctx, userID)
	if err != nil {
		return
	}
	api := c.api.Load()
	if api == nil {
		return
	}
	users, err := api.UsersGetUsers(ctx, []tg.InputUserClass{in})
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Int64("tg_user_id", userID).Msg("Failed to get a changed user")
		return
	}
	for _, raw := range users {
		if u, ok := raw.(*tg.User); ok && u.ID == userID {
			prev, _ := c.users.get(userID)
			c.users.put(u)
			c.noticeUserPhoto(ctx, prev, u)
		}
	}
}
