package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
)

// GuardedEventTypes are the Matrix state events Guard watches in portals.
var GuardedEventTypes = []event.Type{
	event.StateEncryption, event.StateBridge, event.StateHalfShotBridge, event.StatePowerLevels, event.StateMember,
}

// Guard undoes the room changes staff may not make in a portal: changing or
// removing encryption, editing the bridge state event, changing power levels
// (only admins may), and removing the bot. It says so in the room and logs
// state_reverted. The appservice registers it for GuardedEventTypes.
func (g *Gate) Guard(ctx context.Context, evt *event.Event) {
	if !g.started.Load() || evt.StateKey == nil {
		return
	}
	bot := g.br.Bot.GetMXID()
	if evt.Sender == bot || g.br.IsGhostMXID(evt.Sender) {
		return
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && evt.Content.Parsed == nil {
		return
	}
	portal, err := g.br.GetPortalByMXID(ctx, evt.RoomID)
	if err != nil || portal == nil {
		return
	}
	log := zerolog.Ctx(ctx).With().Stringer("room_id", evt.RoomID).Stringer("event_id", evt.ID).Stringer("event_type", evt.Type).Logger()
	ctx = log.WithContext(ctx)
	var what string
	switch evt.Type {
	case event.StateEncryption:
		content, _ := evt.Content.Parsed.(*event.EncryptionEventContent)
		prev := &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}
		if evt.Unsigned.PrevContent != nil {
			if err := evt.Unsigned.PrevContent.ParseRaw(evt.Type); err == nil {
				if p, ok := evt.Unsigned.PrevContent.Parsed.(*event.EncryptionEventContent); ok && p.Algorithm != "" {
					prev = p
				}
			}
		}
		if content != nil && content.Algorithm == prev.Algorithm && content.RotationPeriodMillis == prev.RotationPeriodMillis &&
			content.RotationPeriodMessages == prev.RotationPeriodMessages {
			return
		}
		what = "Changing or removing this room's encryption"
		_, err = g.br.Bot.SendState(ctx, evt.RoomID, event.StateEncryption, "", &event.Content{Parsed: prev}, time.Time{})
	case event.StateBridge, event.StateHalfShotBridge:
		what = "Editing this room's bridge information"
		portal.UpdateBridgeInfo(ctx)
	case event.StatePowerLevels:
		if g.IsAdmin(evt.Sender) || evt.Unsigned.PrevContent == nil {
			return
		}
		if err = evt.Unsigned.PrevContent.ParseRaw(evt.Type); err != nil {
			return
		}
		prev, ok := evt.Unsigned.PrevContent.Parsed.(*event.PowerLevelsEventContent)
		if !ok {
			return
		}
		what = "Changing power levels (only the organisation's admins may)"
		_, err = g.br.Bot.SendState(ctx, evt.RoomID, event.StatePowerLevels, "", &event.Content{Parsed: prev}, time.Time{})
	case event.StateMember:
		member, _ := evt.Content.Parsed.(*event.MemberEventContent)
		if id.UserID(*evt.StateKey) != bot || member == nil ||
			(member.Membership != event.MembershipLeave && member.Membership != event.MembershipBan) {
			return
		}
		what = "Removing the bridge bot"
		err = g.br.Bot.EnsureJoined(ctx, evt.RoomID)
	default:
		return
	}
	g.reverted(ctx, portal, evt, what, err)
}

func (g *Gate) reverted(ctx context.Context, portal *bridgev2.Portal, evt *event.Event, what string, err error) {
	undone := err == nil
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to undo forbidden room change")
	}
	_, aerr := g.Audit.Append(ctx, audit.Entry{
		Actor: audit.ActorSystem, Action: audit.ActionStateReverted, Network: networkOf(string(portal.ID)),
		Staff: evt.Sender, Login: portal.Receiver, Portal: portal.ID,
		Details: audit.Details(map[string]any{"event_type": evt.Type.Type, "event_id": evt.ID, "room_id": evt.RoomID, "undone": undone}),
	})
	if aerr != nil {
		zerolog.Ctx(ctx).Err(aerr).Msg("Failed to log reverted room change")
	}
	msg := fmt.Sprintf("⚠️ %s is not allowed in bridged rooms: the gateway undid it.", what)
	if !undone {
		msg = fmt.Sprintf("⚠️ %s is not allowed in bridged rooms, and the gateway could not undo it; the admins were told.", what)
		g.sendAdminNotice(ctx, fmt.Sprintf("%s could not undo a forbidden change by %s in %s (%s).", what, evt.Sender, portal.MXID, evt.Type.Type))
	}
	if evt.Type != event.StateMember {
		if _, err := g.sendNotice(ctx, evt.RoomID, msg); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to explain reverted room change")
		}
	}
}
