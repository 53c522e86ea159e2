package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// ErrAnnounceOnly is returned for a message to an announce-only group from
// a staff member who is not one of its admins.
var ErrAnnounceOnly = errors.New("only admins can send messages to this WhatsApp group")

// groupRefusal explains a send to a group that WhatsApp refused: in an
// announce-only group, only admins send.
func (cl *Client) groupRefusal(ctx context.Context, chat types.JID, err error) error {
	if chat.Server != types.GroupServer || !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		return err
	}
	wa := cl.client()
	if wa == nil {
		return err
	}
	infoCtx, cancel := context.WithTimeout(ctx, groupInfoTimeout)
	defer cancel()
	info, ierr := wa.GetGroupInfo(infoCtx, chat)
	if ierr != nil || !info.IsAnnounce || cl.isGroupAdmin(ctx, chat) {
		return err
	}
	return certain(fmt.Errorf("%w (%w)", ErrAnnounceOnly, err), event.MessageStatusNoPermission)
}

var (
	_ bridgev2.RoomNameHandlingNetworkAPI  = (*Client)(nil)
	_ bridgev2.RoomTopicHandlingNetworkAPI = (*Client)(nil)
)

// groupOf is the group of a portal whose metadata a staff member changes in
// Matrix, when their login is in it.
func (cl *Client) groupOf(ctx context.Context, portal *bridgev2.Portal) (types.JID, error) {
	chat, err := waid.ParsePortalID(portal.ID)
	if err != nil {
		return chat, err
	}
	if chat.Server != types.GroupServer {
		return chat, certain(fmt.Errorf("a direct chat has no name or topic on WhatsApp"), event.MessageStatusUnsupported)
	}
	up, err := cl.main.Bridge.DB.UserPortal.Get(ctx, cl.login.UserLogin, portal.PortalKey)
	if err != nil {
		return chat, err
	} else if up == nil {
		return chat, certain(fmt.Errorf("%w (%s)", ErrNotInGroup, cl.accountName()), event.MessageStatusNoPermission)
	}
	if cl.client() == nil {
		return chat, certain(ErrNotConnected, event.MessageStatusNetworkError)
	}
	return chat, nil
}

// revertState puts back a room's state that WhatsApp refused, and tells
// the room why.
func (cl *Client) revertState(ctx context.Context, portal *bridgev2.Portal, typ event.Type, content any, why error) {
	bot := cl.main.Bridge.Bot
	if _, err := bot.SendState(ctx, portal.MXID, typ, "", &event.Content{Parsed: content}, time.Now()); err != nil {
		cl.log.Warn().Err(err).Str("event_type", typ.Type).Msg("Failed to revert a refused room change")
	}
	_, _ = bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgNotice, Body: "WhatsApp refused the change, so it was undone: " + why.Error(),
	}}, nil)
}

// HandleMatrixRoomName implements bridgev2.RoomNameHandlingNetworkAPI: a
// staff member renames the group on WhatsApp through their own account;
// when WhatsApp refuses (not an admin of a locked group, not in it), the
// room's name is put back.
func (cl *Client) HandleMatrixRoomName(ctx context.Context, msg *bridgev2.MatrixRoomName) (bool, error) {
	chat, err := cl.groupOf(ctx, msg.Portal)
	if err == nil {
		if wa := cl.client(); wa != nil {
			err = wa.SetGroupName(ctx, chat, msg.Content.Name)
		}
	}
	if err != nil {
		cl.revertState(ctx, msg.Portal, event.StateRoomName, &event.RoomNameEventContent{Name: msg.Portal.Name}, err)
		return false, err
	}
	cl.rememberGroupName(chat, msg.Content.Name)
	msg.Portal.Name, msg.Portal.NameSet = msg.Content.Name, true
	return true, nil
}

// HandleMatrixRoomTopic implements bridgev2.RoomTopicHandlingNetworkAPI:
// the group's description, as for the name.
func (cl *Client) HandleMatrixRoomTopic(ctx context.Context, msg *bridgev2.MatrixRoomTopic) (bool, error) {
	chat, err := cl.groupOf(ctx, msg.Portal)
	if err == nil {
		if wa := cl.client(); wa != nil {
			err = wa.SetGroupTopic(ctx, chat, "", "", msg.Content.Topic)
		}
	}
	if err != nil {
		cl.revertState(ctx, msg.Portal, event.StateTopic, &event.TopicEventContent{Topic: msg.Portal.Topic}, err)
		return false, err
	}
	msg.Portal.Topic, msg.Portal.TopicSet = msg.Content.Topic, true
	return true, nil
}
