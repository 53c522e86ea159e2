package whatsapp

import (
	"context"
	"fmt"
	"net/http"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

var _ bridgev2.IdentifierResolvingNetworkAPI = (*Client)(nil)

var (
	errInvalidPhone = bridgev2.RespError{ErrCode: "NET.PASSERELLE.WHATSAPP.INVALID_PHONE",
		Err: "That is not a phone number in international format (e.g. +33612345678)", StatusCode: http.StatusBadRequest}
	errNotOnWhatsApp = bridgev2.RespError{ErrCode: "NET.PASSERELLE.WHATSAPP.NOT_ON_WHATSAPP",
		Err: "This phone number is not on WhatsApp", StatusCode: http.StatusNotFound}
)

// ResolveIdentifier implements bridgev2.IdentifierResolvingNetworkAPI: a
// phone number is looked up on WhatsApp and, with createChat, its direct
// chat portal is made (start-chat).
func (cl *Client) ResolveIdentifier(ctx context.Context, identifier string, createChat bool) (*bridgev2.ResolveIdentifierResponse, error) {
	phone, err := waid.ParsePhone(identifier)
	if err != nil {
		return nil, errInvalidPhone
	}
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return nil, ErrNotConnected
	}
	found, err := wa.IsOnWhatsApp(ctx, []string{"+" + phone.User})
	if err != nil {
		return nil, fmt.Errorf("failed to look up the phone number on WhatsApp: %w", err)
	}
	if len(found) == 0 || !found[0].IsIn {
		return nil, errNotOnWhatsApp
	}
	jid := found[0].JID.ToNonAD()
	userID, err := waid.MakeUserID(jid)
	if err != nil {
		return nil, err
	}
	var key networkid.PortalKey
	if createChat {
		// Asked before the ghost is made: no profile for a refused contact.
		if key, err = waid.MakePortalKey(jid, cl.login.ID); err != nil {
			return nil, err
		}
		out := remote.Outbound{Kind: remote.OutboundNewChat, Login: cl.login, PortalKey: key, Remote: userID, Chat: cl.cachedChat(ctx, jid)}
		if out.Identity, err = cl.DescribeRemoteUser(ctx, userID); err != nil {
			return nil, err
		}
		if err = cl.main.CheckOutbound(ctx, out); err != nil {
			return nil, remote.RespError(err)
		}
	}
	ghost, err := cl.main.Bridge.GetGhostByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("failed to get ghost: %w", err)
	}
	info, err := cl.GetUserInfo(ctx, ghost)
	if err != nil {
		return nil, err
	}
	resp := &bridgev2.ResolveIdentifierResponse{Ghost: ghost, UserID: userID, UserInfo: info}
	if createChat {
		resp.Chat = &bridgev2.CreateChatResponse{PortalKey: key, PortalInfo: cl.dmChatInfo(jid)}
	}
	return resp, nil
}
