package whatsapp

import (
	"context"
	"fmt"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// tombstoneMergedRooms finishes the upgrade to one shared portal per group
// (whatsapp_version 2): each room of a per-login group portal that was
// merged gets an m.room.tombstone pointing to the shared room, and the
// staff members in the shared portal are invited to it. A row is removed
// once done; one that fails stays for the next start.
func (c *WhatsAppConnector) tombstoneMergedRooms(ctx context.Context) error {
	type merged struct {
		oldRoom, newRoom id.RoomID
		portalID         string
	}
	rows, err := c.Bridge.DB.Query(ctx, `
		SELECT m.old_mxid, COALESCE(p.mxid, ''), m.portal_id
		FROM whatsapp_merged_room m
		LEFT JOIN portal p ON p.bridge_id = m.bridge_id AND p.id = m.portal_id AND p.receiver = ''
		WHERE m.bridge_id = $1`, c.Bridge.ID)
	if err != nil {
		return fmt.Errorf("failed to read merged group rooms: %w", err)
	}
	var pending []merged
	for rows.Next() {
		var m merged
		if err = rows.Scan(&m.oldRoom, &m.newRoom, &m.portalID); err != nil {
			_ = rows.Close()
			return err
		}
		pending = append(pending, m)
	}
	if err = rows.Close(); err != nil {
		return err
	}
	log := c.Bridge.Log.With().Str("action", "tombstone merged group rooms").Logger()
	for _, m := range pending {
		if m.newRoom != "" {
			_, err = c.Bridge.Bot.SendState(ctx, m.oldRoom, event.StateTombstone, "", &event.Content{Parsed: &event.TombstoneEventContent{
				Body:            "This WhatsApp group is now one room shared by every staff member in it",
				ReplacementRoom: m.newRoom,
			}}, time.Now())
			if err != nil {
				log.Warn().Err(err).Stringer("room_id", m.oldRoom).Msg("Failed to tombstone a merged group room; trying again at the next start")
				continue
			}
			c.inviteStaff(ctx, m.newRoom, m.portalID)
		}
		if _, err = c.Bridge.DB.Exec(ctx, `DELETE FROM whatsapp_merged_room WHERE bridge_id = $1 AND old_mxid = $2`, c.Bridge.ID, m.oldRoom); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		log.Info().Int("rooms", len(pending)).Msg("Tombstoned per-login group rooms to their shared rooms")
	}
	return nil
}

// inviteStaff invites the staff members marked in a shared group portal.
func (c *WhatsAppConnector) inviteStaff(ctx context.Context, roomID id.RoomID, portalID string) {
	rows, err := c.Bridge.DB.Query(ctx, `SELECT DISTINCT user_mxid FROM user_portal WHERE bridge_id = $1 AND portal_id = $2 AND portal_receiver = ''`,
		c.Bridge.ID, portalID)
	if err != nil {
		return
	}
	var users []id.UserID
	for rows.Next() {
		var u id.UserID
		if rows.Scan(&u) == nil {
			users = append(users, u)
		}
	}
	_ = rows.Close()
	for _, u := range users {
		if err = c.Bridge.Bot.EnsureInvited(ctx, roomID, u); err != nil {
			c.Bridge.Log.Warn().Err(err).Msg("Failed to invite a staff member to a shared group room")
		}
	}
}
