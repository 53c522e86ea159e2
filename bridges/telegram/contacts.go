package telegram

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

var (
	_ bridgev2.ContactListingNetworkAPI = (*Client)(nil)
	_ bridgev2.UserSearchingNetworkAPI  = (*Client)(nil)
)

// GetContactList implements bridgev2.ContactListingNetworkAPI
// (provisioning API GET /v3/contacts): the account's Telegram
// contacts, each with its ghost. Starting a chat with one still goes through
// ResolveIdentifier and its outbound check.
func (c *Client) GetContactList(ctx context.Context) ([]*bridgev2.ResolveIdentifierResponse, error) {
	users, err := c.contactUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*bridgev2.ResolveIdentifierResponse, 0, len(users))
	for _, u := range users {
		resp, err := c.contactResponse(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, resp)
	}
	return out, nil
}

// SearchUsers implements bridgev2.UserSearchingNetworkAPI (`search`
// command, provisioning API POST /v3/search_users): the contacts whose name,
// @username or phone number contains the query, and the user the query names
// when it is a @username or a phone number (as ResolveIdentifier finds them).
func (c *Client) SearchUsers(ctx context.Context, query string) ([]*bridgev2.ResolveIdentifierResponse, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return nil, nil
	}
	users, err := c.contactUsers(ctx)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(query)
	digits := strings.TrimPrefix(q, "+")
	var out []*bridgev2.ResolveIdentifierResponse
	seen := make(map[int64]bool)
	for _, u := range users {
		name := strings.ToLower(strings.TrimSpace(u.FirstName + " " + u.LastName))
		if strings.Contains(name, q) || (u.Username != "" && strings.Contains("@"+strings.ToLower(u.Username), q)) ||
			(digits != "" && u.Phone != "" && strings.Contains(u.Phone, digits)) {
			resp, err := c.contactResponse(ctx, u)
			if err != nil {
				return nil, err
			}
			seen[u.ID] = true
			out = append(out, resp)
		}
	}
	if strings.HasPrefix(query, "@") || strings.HasPrefix(query, "+") {
		named, err := c.ResolveIdentifier(ctx, query, false)
		var respErr bridgev2.RespError
		switch {
		case errors.As(err, &respErr) && respErr.StatusCode < 500:
			// Nobody by that name: the contacts found are the answer.
		case err != nil:
			return nil, err
		default:
			if id, perr := tgid.ParseUserID(named.UserID); perr != nil || !seen[id] {
				out = append(out, named)
			}
		}
	}
	return out, nil
}

// contactUsers asks Telegram for the account's contacts.
func (c *Client) contactUsers(ctx context.Context) ([]*tg.User, error) {
	api := c.api.Load()
	if api == nil {
		return nil, bridgev2.WrapRespErrManual(ErrNotConnected, "FI.MAU.NOT_CONNECTED", 503)
	}
	res, err := api.ContactsGetContacts(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to get the contact list: %w", err)
	}
	list, ok := res.(*tg.ContactsContacts)
	if !ok {
		// contacts.contactsNotModified answers a hash we never send.
		return nil, nil
	}
	users := make([]*tg.User, 0, len(list.Users))
	for _, raw := range list.Users {
		if u, ok := raw.(*tg.User); ok && !u.Deleted && !u.Self {
			users = append(users, u)
		}
	}
	return users, nil
}

// contactResponse remembers u (as ResolveIdentifier does) and describes it
// with its ghost.
func (c *Client) contactResponse(ctx context.Context, u *tg.User) (*bridgev2.ResolveIdentifierResponse, error) {
	c.users.put(u)
	if u.AccessHash != 0 {
		if err := c.main.Store.PutUser(ctx, c.userID, u.ID, u.AccessHash, u.Username); err != nil {
			return nil, err
		}
	}
	userID := tgid.MakeUserID(u.ID)
	ghost, err := c.main.Bridge.GetGhostByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("failed to get ghost: %w", err)
	}
	return &bridgev2.ResolveIdentifierResponse{Ghost: ghost, UserID: userID, UserInfo: c.userInfo(u)}, nil
}
