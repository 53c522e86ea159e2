package appservice

import (
	"context"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// ownTombstoneKey is the state key a tombstone the gateway's own bot sent
// is handed to bridgev2 with: bridgev2 then ignores it.
const ownTombstoneKey = "passerelle.own_tombstone"

// ignoreOwnTombstones keeps bridgev2 from following the tombstones the
// gateway's bot sends itself. bridgev2 follows a tombstone by joining the
// replacement room and moving the portal into it, deleting the old room
// (everyone kicked). The gateway tombstones a portal when a chat is cut
// over to a native room: the portal must stay (messages still arriving
// from the network are delivered there with a reminder), and the native
// room belongs to the people in it, never a portal. The other tombstones a
// bot sends (bridgev2's own when it moves a portal, the merge of per-login
// group portals) point at a portal and are ignored by bridgev2 anyway.
// The state store has the tombstone already: clients and the gate see it.
func ignoreOwnTombstones(mc *matrix.Connector) {
	mc.EventProcessor.PrependHandler(event.StateTombstone, func(ctx context.Context, evt *event.Event) {
		neutraliseOwnTombstone(mc.Bot.UserID, evt, zerolog.Ctx(ctx))
	})
}

// neutraliseOwnTombstone gives evt, when bot sent it as the room's
// tombstone, a state key bridgev2 ignores.
func neutraliseOwnTombstone(bot id.UserID, evt *event.Event, log *zerolog.Logger) {
	if evt.Sender != bot || evt.StateKey == nil || *evt.StateKey != "" {
		return
	}
	key := ownTombstoneKey
	evt.StateKey = &key
	log.Debug().Stringer("room_id", evt.RoomID).Stringer("event_id", evt.ID).Msg("Not following the bot's own tombstone")
}
