package telegram

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

// A change a staff member makes to a group portal in Matrix (its name,
// topic, avatar, members or power levels) that Telegram or the gateway
// refuses is undone in the room, and a notice says why: the room keeps
// showing the group as it is on Telegram.

// revertState puts back a room's state that was refused and tells the room
// why. bridgev2 puts back names, topics and avatars itself when
// revert_failed_state_changes is on; power levels are always put back here.
func (c *Client) revertState(ctx context.Context, portal *bridgev2.Portal, typ event.Type, content any, why error) {
	bot := c.main.Bridge.Bot
	if !c.main.Bridge.Config.RevertFailedStateChanges || typ == event.StatePowerLevels {
		if _, err := bot.SendState(ctx, portal.MXID, typ, "", &event.Content{Parsed: content}, time.Now()); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("event_type", typ.Type).Msg("Failed to revert a refused room change")
		}
	}
	c.refusalNotice(ctx, portal, why)
}

// revertMember puts a member's previous membership back.
func (c *Client) revertMember(ctx context.Context, portal *bridgev2.Portal, userID string, prev *event.MemberEventContent, why error) {
	// Without the previous membership (the homeserver did not say), only
	// the notice is sent.
	if prev != nil && !c.main.Bridge.Config.RevertFailedStateChanges {
		if _, err := c.main.Bridge.Bot.SendState(ctx, portal.MXID, event.StateMember, userID, &event.Content{Parsed: prev}, time.Now()); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to revert a refused membership change")
		}
	}
	c.refusalNotice(ctx, portal, why)
}

// refusalNotice tells the room that a change was refused and undone.
func (c *Client) refusalNotice(ctx context.Context, portal *bridgev2.Portal, why error) {
	_, err := c.main.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgNotice, Body: "The change was refused, so it was undone: " + why.Error(),
	}}, nil)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to send the notice of a refused room change")
	}
}
