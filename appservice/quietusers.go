package appservice

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/passerelle/passerelle/internal/clock"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/id"
)

// The gateway's own Matrix users never read their notifications, but a
// homeserver computes them: for every event in a room, Dendrite evaluates
// each local member's push rules and, for an encrypted message (which the
// default rules notify), writes a notification row, updates the unread
// counts in the sync database and wakes that user's /sync. In a portal the
// bot and the contact's ghost are such members beside the staff member, so
// each bridged message cost the homeserver two of these chains more than
// the same message between two people. With the master push rule enabled
// (the "mute everything" switch every client has) the evaluation stops at
// the first rule and nothing is written.

// quietVersionTable is the version table of the quiet-users schema.
const quietVersionTable = "passerelle_quiet_version"

//go:embed upgrades/quiet/*.sql
var rawQuietUpgrades embed.FS

var quietUpgradeTable = dbutil.BuildUpgradeTable().WithFSPath(rawQuietUpgrades, "upgrades/quiet").Finish()

// masterRule is the server-default override rule that, enabled, makes
// every event not notify.
const masterRule = ".m.rule.master"

// quietBackfillPage bounds the users read at once by the backfill, and
// quietBackfillEvery paces its requests behind live traffic.
const (
	quietBackfillPage  = 100
	quietBackfillEvery = 20 * time.Millisecond
)

// quietWait bounds one mute request.
const quietWait = 10 * time.Second

// quietUsers switches off the push rules of the gateway's own users.
type quietUsers struct {
	db    *dbutil.Database
	as    *appservice.AppService
	ours  func(id.UserID) bool
	log   zerolog.Logger
	clock clock.Clock
	every time.Duration
}

// openQuietUsers opens the quiet-users schema in the bridge's database.
func openQuietUsers(ctx context.Context, parent *dbutil.Database, as *appservice.AppService, ours func(id.UserID) bool, log zerolog.Logger) (*quietUsers, error) {
	db, err := openSchema(ctx, parent, quietVersionTable, quietUpgradeTable, "quiet-users", nil)
	if err != nil {
		return nil, err
	}
	return &quietUsers{db: db, as: as, ours: ours, log: log, clock: clock.Real{}, every: quietBackfillEvery}, nil
}

// quiet enables userID's master push rule and records it. Only the
// gateway's own users are touched.
func (q *quietUsers) quiet(ctx context.Context, userID id.UserID) error {
	if !q.ours(userID) {
		return nil
	}
	// A client of its own, not the appservice's cached one: the backfill
	// goes through every ghost and must not leave a client behind for each.
	// No retries and a short wait: a registration waits for this, and a
	// user left loud is muted by the next start's backfill.
	cli := q.as.NewMautrixClient(userID)
	cli.DefaultHTTPRetries = 0
	ctx, cancel := context.WithTimeout(ctx, quietWait)
	defer cancel()
	url := cli.BuildClientURL("v3", "pushrules", "global", "override", masterRule, "enabled")
	if _, err := cli.MakeRequest(ctx, http.MethodPut, url, map[string]any{"enabled": true}, nil); err != nil {
		return fmt.Errorf("failed to mute %s's push rules: %w", userID, err)
	}
	if _, err := q.db.Exec(ctx, `INSERT INTO passerelle_quiet_user (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING`, userID); err != nil {
		return fmt.Errorf("failed to record %s as muted: %w", userID, err)
	}
	return nil
}

// backfill mutes the registered users that are not yet, a page at a time,
// paced; it stops at the first failure (the homeserver is down or refuses:
// the next start tries again) or when ctx is done.
func (q *quietUsers) backfill(ctx context.Context) (int, error) {
	done := 0
	var after id.UserID // pages in user ID order: a user that is not ours is read once
	for {
		rows, err := q.db.Query(ctx, `
			SELECT r.user_id FROM mx_registrations r
			LEFT JOIN passerelle_quiet_user q ON q.user_id = r.user_id
			WHERE q.user_id IS NULL AND r.user_id > $1 ORDER BY r.user_id LIMIT $2`, after, quietBackfillPage)
		users, err := dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[id.UserID], err).AsList()
		if err != nil {
			return done, fmt.Errorf("failed to read the users to mute: %w", err)
		}
		if len(users) == 0 {
			return done, nil
		}
		for _, user := range users {
			after = user
			if !q.ours(user) {
				continue
			}
			if err = q.quiet(ctx, user); err != nil {
				return done, err
			}
			done++
			select {
			case <-ctx.Done():
				return done, ctx.Err()
			case <-q.clock.After(q.every):
			}
		}
	}
}

// quietStateStore is the appservice's state store with registration
// followed by muting: a new ghost (or the bot) is muted as soon as it is
// registered. It wraps the store the appservice has, whatever wraps it
// already (governance's encryption keeper: replacing it by the bare SQL
// store let a message leave unencrypted while staff removed a portal's
// encryption).
type quietStateStore struct {
	appservice.StateStore
	q *quietUsers
}

// MarkRegistered records the registration, then mutes the user. A failed
// mute does not fail the registration (the user would then not be able to
// send): it is logged and the next start's backfill tries again.
func (s *quietStateStore) MarkRegistered(ctx context.Context, userID id.UserID) error {
	if err := s.StateStore.MarkRegistered(ctx, userID); err != nil {
		return err
	}
	if err := s.q.quiet(ctx, userID); err != nil {
		s.q.log.Warn().Err(err).Msg("A new gateway user keeps its notifications on the homeserver until the next start")
	}
	return nil
}

// useQuietUsers mutes the bot and each ghost when it is registered, and
// returns the backfill for the users registered before, to run once the
// bridge has started; stop cancels it and waits for it.
func useQuietUsers(ctx context.Context, mc *matrix.Connector, db *dbutil.Database, log zerolog.Logger) (start func(), stop func(), err error) {
	ghosts := mc.Config.MakeUserIDRegex(".+")
	bot := mc.AS.BotMXID()
	ours := func(userID id.UserID) bool {
		return userID == bot || ghosts.MatchString(string(userID))
	}
	q, err := openQuietUsers(ctx, db, mc.AS, ours, log)
	if err != nil {
		return nil, nil, err
	}
	mc.AS.StateStore = &quietStateStore{StateStore: mc.AS.StateStore, q: q}
	runCtx, cancel := context.WithCancel(log.WithContext(context.Background()))
	var wg sync.WaitGroup
	start = func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := q.backfill(runCtx)
			switch {
			case errors.Is(err, context.Canceled):
			case err != nil:
				log.Warn().Err(err).Int("muted", n).Msg("Stopped muting the gateway's earlier users; the next start goes on")
			case n > 0:
				log.Info().Int("muted", n).Msg("Muted the notifications of the gateway's earlier users")
			}
		}()
	}
	stop = func() {
		cancel()
		wg.Wait()
	}
	return start, stop, nil
}

// openSchema opens one of the gateway's own schemas in the bridge's
// database: its version table, then its upgrades.
func openSchema(ctx context.Context, parent *dbutil.Database, versionTable string, table dbutil.UpgradeTable, what string, log dbutil.DatabaseLogger) (*dbutil.Database, error) {
	db := parent.Child(versionTable, table, log)
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versionTable+` (version INTEGER, compat INTEGER)`); err != nil {
		return nil, fmt.Errorf("failed to create the %s version table: %w", what, err)
	}
	if err := db.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("failed to upgrade the %s tables: %w", what, err)
	}
	return db, nil
}
