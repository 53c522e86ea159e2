package telegram

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// Promoting and demoting from Matrix. Telegram admins have the power level
// powerAdmin in the portal (the creator powerCreator): raising a member (a
// contact's ghost or a staff member) to powerAdmin or above makes them an
// admin of the Telegram group, lowering them below it takes the admin
// rights away, through the staff member's own account. Telegram decides
// who may (the creator, or an admin with the right to add admins); a
// refusal puts the previous power levels back and says why.

var _ bridgev2.PowerLevelHandlingNetworkAPI = (*Client)(nil)

// HandleMatrixPowerLevels promotes and demotes the members whose power
// level crossed the admin level. Other power level changes stay on Matrix.
func (c *Client) HandleMatrixPowerLevels(ctx context.Context, msg *bridgev2.MatrixPowerLevelChange) (bool, error) {
	peer, err := tgid.ParsePortalID(msg.Portal.ID)
	if err != nil || (peer.Type != tgid.PeerChannel && peer.Type != tgid.PeerChat) {
		return false, nil
	}
	changed := false
	for _, u := range msg.Users {
		was, is := u.OrigLevel >= powerAdmin, u.NewLevel >= powerAdmin
		if was == is || u.Target == nil {
			continue
		}
		userID, ok := targetUserID(u.Target)
		if !ok {
			continue
		}
		if err = c.editAdmin(ctx, msg.Portal, peer, userID, is); err != nil {
			break
		}
		changed = true
	}
	if err != nil {
		if msg.Event != nil && msg.Event.Unsigned.PrevContent != nil && msg.PrevContent != nil {
			c.revertState(ctx, msg.Portal, event.StatePowerLevels, msg.PrevContent, err)
		} else {
			c.refusalNotice(ctx, msg.Portal, err)
		}
		return false, err
	}
	return changed, nil
}

// targetUserID is the Telegram account of a power level target: a
// contact's ghost or a staff member's login.
func targetUserID(target bridgev2.GhostOrUserLogin) (int64, bool) {
	var (
		id  int64
		err error
	)
	switch t := target.(type) {
	case *bridgev2.Ghost:
		id, err = tgid.ParseUserID(t.ID)
	case *bridgev2.UserLogin:
		id, err = tgid.ParseUserLoginID(t.ID)
	default:
		return 0, false
	}
	return id, err == nil
}

// adminRightsFor are the rights given to a member promoted from Matrix:
// what an admin of the group does day to day, without the right to add
// admins (only the creator gives that, on Telegram).
func (c *Client) adminRightsFor(channelID int64) tg.ChatAdminRights {
	rights := tg.ChatAdminRights{
		ChangeInfo: true, DeleteMessages: true, BanUsers: true, InviteUsers: true,
		PinMessages: true, ManageCall: true, Other: true,
	}
	if ch, ok := c.channels.Get(channelID); ok {
		if ch.Broadcast {
			rights.PostMessages, rights.EditMessages = true, true
		}
		if ch.Forum {
			rights.ManageTopics = true
		}
	}
	return rights
}

// editAdmin makes a member of a group an admin (or no longer one).
func (c *Client) editAdmin(ctx context.Context, portal *bridgev2.Portal, peer tgid.Peer, userID int64, admin bool) error {
	out := c.outbound(remote.OutboundGroupChange, portal, peer)
	out.Remote, out.Identity = tgid.MakeUserID(userID), c.cachedIdentity(userID)
	if err := c.main.CheckOutbound(ctx, out); err != nil {
		return err
	}
	user, err := c.inputUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("cannot reach this Telegram user: %w", err)
	}
	var input *tg.InputChannel
	if peer.Type == tgid.PeerChannel {
		if input, err = c.inputChannel(ctx, peer.ID); err != nil {
			return err
		}
	}
	what := "promote members"
	if !admin {
		what = "demote admins"
	}
	resp, err := callWhenConnected(ctx, c, what, func(ctx context.Context, api *tg.Client) (tg.UpdatesClass, error) {
		if input == nil {
			_, err := api.MessagesEditChatAdmin(ctx, &tg.MessagesEditChatAdminRequest{ChatID: peer.ID, UserID: user, IsAdmin: admin})
			return nil, err
		}
		var rights tg.ChatAdminRights
		if admin {
			rights = c.adminRightsFor(peer.ID)
		}
		return api.ChannelsEditAdmin(ctx, &tg.ChannelsEditAdminRequest{Channel: input, UserID: user, AdminRights: rights})
	})
	switch {
	case err == nil:
	case tgerr.Is(err, "USER_NOT_PARTICIPANT"):
		return errors.New("this person is not a member of the Telegram group")
	case tgerr.Is(err, "USER_CREATOR"):
		return errors.New("the creator of a Telegram group stays its admin")
	case tgerr.Is(err, "ADMINS_TOO_MUCH"):
		return errors.New("the Telegram group has as many admins as it may")
	default:
		if rerr := groupRightsError(err, what); rerr != nil {
			return rerr
		}
	}
	c.main.Sent(ctx, out)
	if resp != nil {
		c.feedUpdates(resp)
	}
	return nil
}
