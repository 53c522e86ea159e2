package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// JoinCommand is the bot command that joins a WhatsApp group from an
// invite link: wa-join <link> [phone of the account to join with].
const JoinCommand = "wa-join"

func (c *WhatsAppConnector) joinCommand() *commands.FullHandler {
	return &commands.FullHandler{
		Name: JoinCommand,
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionChats,
			Description: "Join a WhatsApp group from an invite link with your WhatsApp account; the group's room follows.",
			Args:        "<https://chat.whatsapp.com/…> [_phone of your account, if you linked several_]",
		},
		RequiresLogin: true,
		Func:          c.cmdJoin,
	}
}

// whatsAppLogin is the user's WhatsApp login (the one with phone, when
// given).
func whatsAppLogin(user *bridgev2.User, phone string) *Client {
	for _, ul := range user.GetUserLogins() {
		cl, ok := ul.Client.(*Client)
		if !ok {
			continue
		}
		if phone == "" || strings.TrimPrefix(string(ul.ID), waid.Network+".") == strings.TrimPrefix(phone, "+") {
			return cl
		}
	}
	return nil
}

func (c *WhatsAppConnector) cmdJoin(ce *commands.Event) {
	if len(ce.Args) == 0 || !strings.HasPrefix(ce.Args[0], whatsmeow.InviteLinkPrefix) {
		ce.Reply("Usage: `%s %s`", JoinCommand, "https://chat.whatsapp.com/<code> [phone]")
		return
	}
	phone := ""
	if len(ce.Args) > 1 {
		phone = ce.Args[1]
	}
	cl := whatsAppLogin(ce.User, phone)
	if cl == nil {
		ce.Reply("You have no linked WhatsApp account%s.", map[bool]string{true: " with that number", false: ""}[phone != ""])
		return
	}
	name, err := cl.joinGroupLink(ce.Ctx, ce.Args[0])
	if err != nil {
		ce.Reply("Could not join the group: %s", err)
		return
	}
	ce.Reply("Joined the WhatsApp group %q; its room is on its way.", name)
}

// joinGroupLink joins the group of an invite link (after the outbound
// check, which sees the group) and brings its portal in.
func (cl *Client) joinGroupLink(ctx context.Context, link string) (string, error) {
	wa := cl.client()
	if wa == nil {
		return "", ErrNotConnected
	}
	code := strings.TrimPrefix(link, whatsmeow.InviteLinkPrefix)
	info, err := wa.GetGroupInfoFromLink(ctx, code)
	switch {
	case errors.Is(err, whatsmeow.ErrInviteLinkInvalid), errors.Is(err, whatsmeow.ErrInviteLinkRevoked):
		return "", fmt.Errorf("the link is not valid (any more)")
	case err != nil:
		return "", fmt.Errorf("WhatsApp did not answer: %w", err)
	}
	key, err := waid.MakePortalKey(info.JID, cl.login.ID)
	if err != nil {
		return "", err
	}
	out := remote.Outbound{Kind: remote.OutboundNewChat, Login: cl.login, PortalKey: key, Chat: remote.Chat{IsGroup: true, Name: info.Name}}
	if err = cl.main.CheckOutbound(ctx, out); err != nil {
		return "", err
	}
	jid, err := wa.JoinGroupWithLink(ctx, code)
	if err != nil {
		return "", fmt.Errorf("WhatsApp refused: %w", err)
	}
	cl.rememberGroupName(jid, info.Name)
	cl.main.Sent(ctx, out)
	cl.resyncChat(ctx, jid, true)
	return info.Name, nil
}

// joinedSelf tells whether a group change added the account itself.
func (cl *Client) joinedSelf(joined []types.JID) bool {
	for _, j := range joined {
		if cl.isMe(j) {
			return true
		}
	}
	return false
}
