package admin

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
	_ "time/tzdata" // summary_timezone works on a host without a zone database

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/governance/audit"
)

// SummaryCheckInterval is how often the gateway checks whether the weekly
// summary is due (the decision is the gate's clock's).
const SummaryCheckInterval = time.Minute

// The weekly summary is due on Mondays at this hour, in
// migration.progress.summary_timezone.
const (
	SummaryWeekday = time.Monday
	SummaryHour    = 9
)

const (
	kvLastSummary      = "last_weekly_summary"
	initSummaryQuery   = `INSERT INTO governance_progress_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`
	claimSummaryQuery  = `UPDATE governance_progress_state SET value = $2 WHERE key = $1 AND value < $2`
	revertSummaryQuery = `UPDATE governance_progress_state SET value = $3 WHERE key = $1 AND value = $2`
)

// summaryLoops holds the cancel function and wait group of each running
// Governance's summary loop (the Governance struct is the gate's plus the
// API's; the loop is this file's).
var summaryLoops sync.Map // *Governance → *summaryLoop

type summaryLoop struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startProgress starts the weekly summary loop (from Start, after the
// gate's start).
func (gv *Governance) startProgress(ctx context.Context) error {
	loc, err := gv.Config().Migration.Progress.Location()
	if err != nil || loc == nil {
		return err
	}
	bg, cancel := context.WithCancel(zerolog.Ctx(ctx).With().Str("component", "progress_summary").Logger().WithContext(context.Background()))
	loop := &summaryLoop{cancel: cancel}
	summaryLoops.Store(gv, loop)
	loop.wg.Add(1)
	go func() {
		defer loop.wg.Done()
		ticker := time.NewTicker(SummaryCheckInterval)
		defer ticker.Stop()
		for {
			if _, err := gv.safeSummaryTick(bg); err != nil && bg.Err() == nil {
				zerolog.Ctx(bg).Err(err).Msg("Weekly progress summary failed")
			}
			select {
			case <-bg.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return nil
}

// stopProgress stops the weekly summary loop (from Stop, before the gate
// stops).
func (gv *Governance) stopProgress() {
	if v, ok := summaryLoops.LoadAndDelete(gv); ok {
		loop := v.(*summaryLoop)
		loop.cancel()
		loop.wg.Wait()
	}
}

func (gv *Governance) safeSummaryTick(ctx context.Context) (posted bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in weekly summary: %v", p)
			zerolog.Ctx(ctx).Error().Str("stack", string(debug.Stack())).Msg("Panic in weekly progress summary")
		}
	}()
	return gv.SummaryTick(ctx)
}

// summarySlot is the newest Monday 09:00 in loc at or before now, as a
// sortable key ("2026-03-02").
func summarySlot(now time.Time, loc *time.Location) string {
	local := now.In(loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), SummaryHour, 0, 0, 0, loc)
	day = day.AddDate(0, 0, -((int(day.Weekday()) - int(SummaryWeekday) + 7) % 7))
	if local.Before(day) {
		day = day.AddDate(0, 0, -7)
	}
	return day.Format(time.DateOnly)
}

// SummaryTick posts the weekly summary in the admin room if it is due: the
// newest Monday 09:00 (summary_timezone) has passed and no summary was
// posted for it, by this process or an earlier one. The first tick ever
// only remembers the current week (a new gateway does not post at once); a
// gateway that was down on Monday posts when it is back. posted tells
// whether it posted.
func (gv *Governance) SummaryTick(ctx context.Context) (posted bool, err error) {
	loc, err := gv.Config().Migration.Progress.Location()
	if err != nil || loc == nil {
		return false, err
	}
	slot := summarySlot(gv.now(), loc)
	res, err := gv.DB.Exec(ctx, initSummaryQuery, kvLastSummary, slot)
	if err != nil {
		return false, fmt.Errorf("failed to remember the weekly summary: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return false, nil // first tick ever
	}
	var prev string
	if err = gv.DB.QueryRow(ctx, `SELECT value FROM governance_progress_state WHERE key = $1`, kvLastSummary).Scan(&prev); err != nil {
		return false, fmt.Errorf("failed to read the last weekly summary: %w", err)
	}
	if prev >= slot {
		return false, nil
	}
	// Claim the slot first, so that two ticks never both post.
	res, err = gv.DB.Exec(ctx, claimSummaryQuery, kvLastSummary, slot)
	if err != nil {
		return false, fmt.Errorf("failed to remember the weekly summary: %w", err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	err = gv.postSummary(ctx)
	if err != nil {
		if _, rerr := gv.DB.Exec(ctx, revertSummaryQuery, kvLastSummary, slot, prev); rerr != nil {
			zerolog.Ctx(ctx).Err(rerr).Msg("Failed to forget the unposted weekly summary")
		}
		return false, err
	}
	gv.logAudit(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionProgressSummary, Details: audit.Details(map[string]any{"week_of": slot})})
	return true, nil
}

func (gv *Governance) postSummary(ctx context.Context) error {
	rep, err := gv.Figures().Progress(ctx, gv.now())
	if err != nil {
		return err
	}
	room, err := gv.AdminRoom(ctx)
	if err != nil {
		return err
	}
	text := rep.Text()
	if u, err := gv.progressPageURL(); err == nil {
		text += "\nCharts and exports: " + u + " (log in with `gov-migration progress-link`)."
	}
	return gv.Notice(ctx, room, "%s", text)
}
