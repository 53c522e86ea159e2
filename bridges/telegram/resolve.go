package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

var _ bridgev2.IdentifierResolvingNetworkAPI = (*Client)(nil)

// ErrUnknownUser is returned when an identifier does not lead to a user.
var ErrUnknownUser = errors.New("telegram user not found")

// ResolveIdentifier implements bridgev2.IdentifierResolvingNetworkAPI. It
// accepts a phone number (+33612345678), a @username (or t.me link), a
// numeric Telegram user ID the account has seen, or a ghost ID
// (telegram.123456).
func (c *Client) ResolveIdentifier(ctx context.Context, identifier string, createChat bool) (*bridgev2.ResolveIdentifierResponse, error) {
	api := c.api.Load()
	if api == nil {
		return nil, bridgev2.WrapRespErrManual(ErrNotConnected, "FI.MAU.NOT_CONNECTED", 503)
	}
	user, err := c.resolveUser(ctx, api, strings.TrimSpace(identifier))
	if err != nil {
		return nil, err
	}
	c.users.put(user)
	if user.AccessHash != 0 {
		if err = c.main.Store.PutUser(ctx, c.userID, user.ID, user.AccessHash, user.Username); err != nil {
			return nil, err
		}
	}
	userID := tgid.MakeUserID(user.ID)
	if createChat {
		// Asked before the ghost is made: no profile for a refused contact.
		out := remote.Outbound{Kind: remote.OutboundNewChat, Login: c.login, PortalKey: c.portalKeyForUser(user.ID), Remote: userID,
			Identity: c.cachedIdentity(user.ID), Chat: chatOf(tgid.Peer{Type: tgid.PeerUser, ID: user.ID})}
		if err = c.main.CheckOutbound(ctx, out); err != nil {
			return nil, remote.RespError(err)
		}
	}
	ghost, err := c.main.Bridge.GetGhostByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("failed to get ghost: %w", err)
	}
	resp := &bridgev2.ResolveIdentifierResponse{Ghost: ghost, UserID: userID, UserInfo: c.userInfo(user)}
	if createChat {
		resp.Chat = &bridgev2.CreateChatResponse{
			PortalKey:  c.portalKeyForUser(user.ID),
			PortalInfo: c.dmChatInfo(user.ID),
		}
	}
	return resp, nil
}

func notFound(identifier string) error {
	return bridgev2.RespError{
		ErrCode:    "M_NOT_FOUND",
		Err:        fmt.Sprintf("No Telegram user found for %q", identifier),
		StatusCode: 404,
	}
}

func (c *Client) resolveUser(ctx context.Context, api *tg.Client, identifier string) (*tg.User, error) {
	switch {
	case identifier == "":
		return nil, notFound(identifier)
	case strings.HasPrefix(identifier, "+"):
		phone, err := bridgev2.CleanPhoneNumber(identifier)
		if err != nil {
			return nil, bridgev2.RespError{ErrCode: "M_INVALID_PARAM", Err: "Invalid phone number: " + err.Error(), StatusCode: 400}
		}
		res, err := api.ContactsResolvePhone(ctx, strings.TrimPrefix(phone, "+"))
		if tgerr.Is(err, "PHONE_NOT_OCCUPIED", "PHONE_NUMBER_INVALID") || tgerr.IsCode(err, 400) {
			return nil, notFound(identifier)
		} else if err != nil {
			return nil, fmt.Errorf("failed to resolve phone number: %w", err)
		}
		return resolvedUser(res, identifier)
	}
	if rest, err := tgid.ParseUserID(networkid.UserID(identifier)); err == nil {
		return c.userByID(ctx, rest, identifier)
	}
	if id, err := strconv.ParseInt(identifier, 10, 64); err == nil && id > 0 {
		return c.userByID(ctx, id, identifier)
	}
	username := strings.TrimPrefix(identifier, "@")
	for _, prefix := range []string{"https://t.me/", "http://t.me/", "t.me/"} {
		username = strings.TrimPrefix(username, prefix)
	}
	if !validUsername(username) {
		return nil, bridgev2.RespError{ErrCode: "M_INVALID_PARAM", Err: "Not a phone number (+…), @username or Telegram user ID: " + identifier, StatusCode: 400}
	}
	res, err := api.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: username})
	if tgerr.Is(err, "USERNAME_NOT_OCCUPIED", "USERNAME_INVALID") || tgerr.IsCode(err, 400) {
		return nil, notFound(identifier)
	} else if err != nil {
		return nil, fmt.Errorf("failed to resolve username: %w", err)
	}
	return resolvedUser(res, identifier)
}

func (c *Client) userByID(ctx context.Context, userID int64, identifier string) (*tg.User, error) {
	user, err := c.getUser(ctx, userID)
	if errors.Is(err, ErrUnknownUser) {
		return nil, bridgev2.RespError{
			ErrCode:    "M_NOT_FOUND",
			Err:        fmt.Sprintf("Telegram user %s is unknown to this account; use their phone number or @username", identifier),
			StatusCode: 404,
		}
	}
	return user, err
}

func resolvedUser(res *tg.ContactsResolvedPeer, identifier string) (*tg.User, error) {
	peer, ok := res.Peer.(*tg.PeerUser)
	if !ok {
		return nil, bridgev2.RespError{ErrCode: "M_INVALID_PARAM", Err: identifier + " is a group or channel, not a user", StatusCode: 400}
	}
	for _, raw := range res.Users {
		if u, ok := raw.(*tg.User); ok && u.ID == peer.UserID {
			return u, nil
		}
	}
	return nil, notFound(identifier)
}

func validUsername(u string) bool {
	if len(u) < 3 || len(u) > 32 {
		return false
	}
	for i, r := range u {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_' && i > 0:
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
