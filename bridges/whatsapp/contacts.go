package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

var (
	_ bridgev2.ContactListingNetworkAPI = (*Client)(nil)
	_ bridgev2.UserSearchingNetworkAPI  = (*Client)(nil)
)

// GetContactList implements bridgev2.ContactListingNetworkAPI
// (provisioning API GET /v3/contacts): the people in the linked
// device's contact store (the phone's address book as WhatsApp syncs it, and
// everyone whose push name it has seen), each with its ghost, under their
// phone number when the store knows it. Starting a chat with one still goes
// through ResolveIdentifier and its outbound check.
func (cl *Client) GetContactList(ctx context.Context) ([]*bridgev2.ResolveIdentifierResponse, error) {
	return cl.contactsMatching(ctx, func(types.JID, types.ContactInfo) bool { return true })
}

// SearchUsers implements bridgev2.UserSearchingNetworkAPI (`search`
// command, provisioning API POST /v3/search_users): the contacts whose name
// or phone number contains the query, and the WhatsApp user of the query
// when it is a phone number (as ResolveIdentifier finds them).
func (cl *Client) SearchUsers(ctx context.Context, query string) ([]*bridgev2.ResolveIdentifierResponse, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return nil, nil
	}
	q := strings.ToLower(query)
	digits := strings.TrimPrefix(strings.NewReplacer(" ", "", "-", "").Replace(q), "+")
	out, err := cl.contactsMatching(ctx, func(jid types.JID, c types.ContactInfo) bool {
		for _, name := range []string{c.FullName, c.FirstName, c.PushName, c.BusinessName} {
			if name != "" && strings.Contains(strings.ToLower(name), q) {
				return true
			}
		}
		return jid.Server == types.DefaultUserServer && digits != "" && strings.Contains(jid.User, digits)
	})
	if err != nil {
		return nil, err
	}
	if _, perr := waid.ParsePhone(query); perr == nil && strings.HasPrefix(query, "+") {
		named, err := cl.ResolveIdentifier(ctx, query, false)
		var respErr bridgev2.RespError
		switch {
		case errors.Is(err, errNotOnWhatsApp), errors.Is(err, errInvalidPhone), errors.As(err, &respErr) && respErr.StatusCode < 500:
			// Nobody on WhatsApp with that number.
		case err != nil:
			return nil, err
		default:
			if !slices.ContainsFunc(out, func(r *bridgev2.ResolveIdentifierResponse) bool { return r.UserID == named.UserID }) {
				out = append(out, named)
			}
		}
	}
	return out, nil
}

// contactsMatching lists the stored contacts that keep says to keep, one
// per person (a LID with a known phone number is listed under the number).
func (cl *Client) contactsMatching(ctx context.Context, keep func(types.JID, types.ContactInfo) bool) ([]*bridgev2.ResolveIdentifierResponse, error) {
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() || wa.Store == nil || wa.Store.Contacts == nil {
		return nil, ErrNotConnected
	}
	all, err := wa.Store.Contacts.GetAllContacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read the contact store: %w", err)
	}
	own := map[types.JID]bool{wa.Store.LID.ToNonAD(): true}
	if wa.Store.ID != nil {
		own[wa.Store.ID.ToNonAD()] = true
	}
	jids := make([]types.JID, 0, len(all))
	for jid := range all {
		jids = append(jids, jid)
	}
	// Phone numbers first, so that a LID of the same person is dropped.
	slices.SortFunc(jids, func(a, b types.JID) int {
		if (a.Server == types.DefaultUserServer) != (b.Server == types.DefaultUserServer) {
			if a.Server == types.DefaultUserServer {
				return -1
			}
			return 1
		}
		return strings.Compare(a.String(), b.String())
	})
	seen := make(map[networkid.UserID]bool, len(jids))
	var out []*bridgev2.ResolveIdentifierResponse
	for _, stored := range jids {
		info, jid := all[stored], stored.ToNonAD()
		if own[jid] {
			continue
		}
		if jid.Server == types.HiddenUserServer {
			if pn, err := wa.Store.GetAltJID(ctx, jid); err == nil && !pn.IsEmpty() {
				jid = pn.ToNonAD()
			}
		}
		if (jid.Server != types.DefaultUserServer && jid.Server != types.HiddenUserServer) || own[jid] || !keep(jid, info) {
			continue
		}
		userID, err := waid.MakeUserID(jid)
		if err != nil || seen[userID] {
			continue
		}
		seen[userID] = true
		ghost, err := cl.main.Bridge.GetGhostByID(ctx, userID)
		if err != nil {
			return nil, fmt.Errorf("failed to get ghost: %w", err)
		}
		userInfo, err := cl.GetUserInfo(ctx, ghost)
		if err != nil {
			return nil, err
		}
		out = append(out, &bridgev2.ResolveIdentifierResponse{Ghost: ghost, UserID: userID, UserInfo: userInfo})
	}
	return out, nil
}
