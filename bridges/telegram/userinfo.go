package telegram

import (
	"context"
	"fmt"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// GetUserInfo implements bridgev2.NetworkAPI.
func (c *Client) GetUserInfo(ctx context.Context, ghost *bridgev2.Ghost) (*bridgev2.UserInfo, error) {
	userID, err := tgid.ParseUserID(ghost.ID)
	if err != nil {
		if channelID, cerr := tgid.ParseChannelGhostID(ghost.ID); cerr == nil {
			return c.channelGhostInfo(channelID), nil
		}
		return nil, err
	}
	user, err := c.getUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	info := c.userInfo(user)
	username := user.Username
	// The ghost's metadata is written under the ghost's own lock (bridgev2
	// runs ExtraUpdates inside UpdateInfo), never here: two portal loops may
	// ask for the same ghost's info at once.
	info.ExtraUpdates = func(_ context.Context, g *bridgev2.Ghost) bool {
		md := meta.Get[tgid.GhostMetadata](g.Metadata)
		if md.Username == username {
			return false
		}
		md.Username = username
		return true
	}
	return info, nil
}

func (c *Client) userInfo(u *tg.User) *bridgev2.UserInfo {
	name := c.main.Config.FormatDisplayname(u)
	isBot := u.Bot
	info := &bridgev2.UserInfo{Name: &name, IsBot: &isBot, Avatar: c.userAvatar(u)}
	if u.Username != "" {
		info.Identifiers = append(info.Identifiers, "telegram:@"+u.Username)
	}
	if u.Phone != "" {
		info.Identifiers = append(info.Identifiers, "tel:+"+u.Phone)
	}
	return info
}

// getUser returns a Telegram user from the cache, else from the server using
// the stored access hash.
func (c *Client) getUser(ctx context.Context, userID int64) (*tg.User, error) {
	if u, ok := c.users.get(userID); ok {
		return u, nil
	}
	return c.fetchUser(ctx, userID)
}

// fetchUser asks Telegram for a user as it is now, and caches it.
func (c *Client) fetchUser(ctx context.Context, userID int64) (*tg.User, error) {
	api := c.api.Load()
	if api == nil {
		return nil, ErrNotConnected
	}
	input, err := c.inputUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	users, err := api.UsersGetUsers(ctx, []tg.InputUserClass{input})
	if err != nil {
		return nil, fmt.Errorf("failed to get telegram user: %w", err)
	}
	for _, raw := range users {
		if u, ok := raw.(*tg.User); ok && u.ID == userID {
			c.users.put(u)
			return u, nil
		}
	}
	return nil, fmt.Errorf("telegram user %d not found", userID)
}

// inputUser returns the InputUser of a Telegram user the account has seen.
func (c *Client) inputUser(ctx context.Context, userID int64) (tg.InputUserClass, error) {
	if userID == c.userID {
		return &tg.InputUserSelf{}, nil
	}
	hash, found, err := c.main.Store.UserAccessHasher().GetUserAccessHash(ctx, c.userID, userID)
	if err != nil {
		return nil, err
	} else if !found {
		return nil, fmt.Errorf("%w: telegram user %d has not been seen by this account", ErrUnknownUser, userID)
	}
	return &tg.InputUser{UserID: userID, AccessHash: hash}, nil
}

// userMXID is tgfmt's lookup of a Telegram user's Matrix ID.
func (c *Client) userMXID(_ context.Context, userID int64) (id.UserID, string, bool) {
	if userID == c.userID {
		return c.login.UserMXID, c.login.RemoteName, true
	}
	var name string
	if u, ok := c.users.get(userID); ok {
		name = c.main.Config.FormatDisplayname(u)
	}
	intent := c.main.Bridge.Matrix.GhostIntent(tgid.MakeUserID(userID))
	if intent == nil {
		return "", "", false
	}
	return intent.GetMXID(), name, true
}

// usernameMXID is tgfmt's lookup of an @username's Matrix ID.
func (c *Client) usernameMXID(ctx context.Context, username string) (id.UserID, bool) {
	typ, peerID, _, found, err := c.main.Store.PeerByUsername(ctx, c.userID, username)
	if err != nil || !found || typ != peerTypeUser {
		return "", false
	}
	mxid, _, ok := c.userMXID(ctx, peerID)
	return mxid, ok
}

// telegramUserID is tgfmt's lookup of the Telegram user behind a Matrix ID:
// a Telegram ghost, or a Matrix user logged in to Telegram.
func (c *Client) telegramUserID(ctx context.Context, mxid id.UserID) (int64, bool) {
	br := c.main.Bridge
	if ghostID, ok := br.Matrix.ParseGhostMXID(mxid); ok {
		userID, err := tgid.ParseUserID(ghostID)
		return userID, err == nil
	}
	if mxid == c.login.UserMXID {
		return c.userID, true
	}
	user, err := br.GetExistingUserByMXID(ctx, mxid)
	if err != nil || user == nil {
		return 0, false
	}
	for _, loginID := range user.GetUserLoginIDs() {
		if userID, err := tgid.ParseUserLoginID(loginID); err == nil {
			return userID, true
		}
	}
	return 0, false
}
