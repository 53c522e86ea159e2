package importer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/clock"
)

const (
	upsertSourceQuery = `
		INSERT INTO passerelle_import_source (old_bot, as_token) VALUES ($1, $2)
		ON CONFLICT (old_bot) DO UPDATE SET as_token=excluded.as_token`
	insertRoomQuery = `
		INSERT INTO passerelle_import_room (portal_id, portal_receiver, room_id, old_bot, imported_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (portal_id, portal_receiver) DO NOTHING`
	getPendingRoomsQuery = `
		SELECT r.portal_id, r.portal_receiver, r.room_id, r.old_bot, COALESCE(s.as_token, '')
		FROM passerelle_import_room r LEFT JOIN passerelle_import_source s ON s.old_bot=r.old_bot
		WHERE r.taken_over_at IS NULL ORDER BY r.imported_at, r.portal_id, r.portal_receiver`
	markRoomDoneQuery = `
		UPDATE passerelle_import_room SET taken_over_at=$3, last_error=NULL
		WHERE portal_id=$1 AND portal_receiver=$2`
	markRoomFailedQuery = `
		UPDATE passerelle_import_room SET last_error=$3 WHERE portal_id=$1 AND portal_receiver=$2`
	// A source's token is kept only while one of its rooms waits.
	deleteFinishedSourcesQuery = `
		DELETE FROM passerelle_import_source WHERE NOT EXISTS (
			SELECT 1 FROM passerelle_import_room r
			WHERE r.old_bot=passerelle_import_source.old_bot AND r.taken_over_at IS NULL)`
)

// markTakeovers records the imported rooms for the gateway's next start.
func (r *run) markTakeovers(ctx context.Context) error {
	r.report.Takeovers = len(r.takeover)
	if r.opts.DryRun || len(r.takeover) == 0 {
		return nil
	}
	db := markerDB(r.opts.Target)
	if _, err := db.Exec(ctx, upsertSourceQuery, r.report.OldBot, r.opts.OldRegistration.AppToken); err != nil {
		return fmt.Errorf("failed to record the old bot: %w", err)
	}
	now := clock.Or(r.opts.Clock).Now().UnixMilli()
	for _, p := range r.takeover {
		if _, err := db.Exec(ctx, insertRoomQuery, p.ID, p.Receiver, p.MXID, r.report.OldBot, now); err != nil {
			return fmt.Errorf("failed to mark room %s for takeover: %w", p.MXID, err)
		}
	}
	return nil
}

// Takeover hands the imported rooms to the gateway's bot: acting as the old
// bridge's bot (an admin there), it raises the gateway's bot to the old
// bot's power level and invites it, and the gateway's bot joins. The old
// bot acts with the old registration's token, or, once that registration
// is gone, with the gateway's own token (its registration claims the old
// bot's namespace after an import). A room that fails stays pending (its
// error recorded) and is tried again at the next start.
type Takeover struct {
	DB            *dbutil.Database
	HomeserverURL string
	// Bot is the gateway's bot; ASToken the gateway's own as_token.
	Bot     id.UserID
	ASToken string
	// Join makes the gateway's bot join a room (the bridge's bot intent,
	// so that bridgev2 knows it is in).
	Join       func(ctx context.Context, roomID id.RoomID) error
	Clock      clock.Clock
	HTTPClient *http.Client
}

// TakeoverResult counts what one pass did.
type TakeoverResult struct {
	Done, Failed int
}

type pendingRoom struct {
	portalID, receiver, roomID, oldBot, oldToken string
}

// Run takes over every pending room once.
func (t *Takeover) Run(ctx context.Context) (TakeoverResult, error) {
	var res TakeoverResult
	db := markerDB(t.DB)
	if err := db.Upgrade(ctx); err != nil {
		return res, fmt.Errorf("failed to prepare the import tables: %w", err)
	}
	rows, err := db.Query(ctx, getPendingRoomsQuery)
	if err != nil {
		return res, fmt.Errorf("failed to list imported rooms: %w", err)
	}
	var pending []pendingRoom
	for rows.Next() {
		var p pendingRoom
		if err = rows.Scan(&p.portalID, &p.receiver, &p.roomID, &p.oldBot, &p.oldToken); err != nil {
			_ = rows.Close()
			return res, fmt.Errorf("failed to read imported rooms: %w", err)
		}
		pending = append(pending, p)
	}
	if err = errors.Join(rows.Err(), rows.Close()); err != nil {
		return res, fmt.Errorf("failed to read imported rooms: %w", err)
	}
	log := zerolog.Ctx(ctx)
	for _, p := range pending {
		if err = t.takeOver(ctx, p); err != nil {
			res.Failed++
			log.Warn().Err(err).Str("room_id", p.roomID).Str("old_bot", p.oldBot).Msg("Failed to take over an imported room; will retry at next start")
			if _, dbErr := db.Exec(ctx, markRoomFailedQuery, p.portalID, p.receiver, err.Error()); dbErr != nil {
				return res, fmt.Errorf("failed to record a takeover error: %w", dbErr)
			}
			continue
		}
		res.Done++
		log.Info().Str("room_id", p.roomID).Msg("Took over an imported room")
		now := clock.Or(t.Clock).Now().UnixMilli()
		if _, err = db.Exec(ctx, markRoomDoneQuery, p.portalID, p.receiver, now); err != nil {
			return res, fmt.Errorf("failed to record a takeover: %w", err)
		}
	}
	if _, err = db.Exec(ctx, deleteFinishedSourcesQuery); err != nil {
		return res, fmt.Errorf("failed to forget the old bot's token: %w", err)
	}
	return res, nil
}

// oldBotClient returns a client acting as the old bot with the first token
// the homeserver accepts for it, and the room's power levels it read.
func (t *Takeover) oldBotClient(ctx context.Context, p pendingRoom) (*mautrix.Client, *event.PowerLevelsEventContent, error) {
	var errs []error
	for _, token := range []string{p.oldToken, t.ASToken} {
		if token == "" {
			continue
		}
		client, err := mautrix.NewClient(t.HomeserverURL, id.UserID(p.oldBot), token)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to make a client: %w", err)
		}
		client.SetAppServiceUserID = true
		if t.HTTPClient != nil {
			client.Client = t.HTTPClient
		}
		var pl event.PowerLevelsEventContent
		if err = client.StateEvent(ctx, id.RoomID(p.roomID), event.StatePowerLevels, "", &pl); err != nil {
			errs = append(errs, err)
			continue
		}
		return client, &pl, nil
	}
	if len(errs) == 0 {
		return nil, nil, errors.New("no token to act as the old bot")
	}
	return nil, nil, fmt.Errorf("failed to act as the old bot: %w", errors.Join(errs...))
}

func (t *Takeover) takeOver(ctx context.Context, p pendingRoom) error {
	client, pl, err := t.oldBotClient(ctx, p)
	if err != nil {
		return err
	}
	roomID := id.RoomID(p.roomID)
	want := pl.GetUserLevel(id.UserID(p.oldBot))
	if pl.GetUserLevel(t.Bot) < want {
		pl.SetUserLevel(t.Bot, want)
		if _, err = client.SendStateEvent(ctx, roomID, event.StatePowerLevels, "", pl); err != nil {
			return fmt.Errorf("failed to give the gateway's bot power: %w", err)
		}
	}
	var member event.MemberEventContent
	err = client.StateEvent(ctx, roomID, event.StateMember, t.Bot.String(), &member)
	if err != nil && !errors.Is(err, mautrix.MNotFound) {
		return fmt.Errorf("failed to read the gateway bot's membership: %w", err)
	}
	if err != nil || (member.Membership != event.MembershipJoin && member.Membership != event.MembershipInvite) {
		if _, err = client.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: t.Bot}); err != nil {
			return fmt.Errorf("failed to invite the gateway's bot: %w", err)
		}
	}
	if err = t.Join(ctx, roomID); err != nil {
		return fmt.Errorf("failed to join as the gateway's bot: %w", err)
	}
	return nil
}
