package migration

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/governance/audit"
)

// DefaultBorderWeeks is how many ISO weeks of border counts are kept when
// no other number is configured (two years).
const DefaultBorderWeeks = 104

const (
	countBorderQuery = `
		INSERT INTO governance_border_count (week, network, contact, messages_in, messages_out) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (week, network, contact) DO UPDATE SET
			messages_in = governance_border_count.messages_in + excluded.messages_in,
			messages_out = governance_border_count.messages_out + excluded.messages_out
	`
	addBorderQuery = `
		UPDATE governance_border_count SET messages_in = messages_in + $4, messages_out = messages_out + $5
		WHERE week = $1 AND network = $2 AND contact = $3
	`
	pruneBorderQuery = `DELETE FROM governance_border_count WHERE week < $1`
)

// WeekStart returns Monday 00:00 UTC of the ISO week of t.
func WeekStart(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	offset := (int(day.Weekday()) + 6) % 7 // Monday 0 … Sunday 6
	return day.AddDate(0, 0, -offset)
}

// WeekLabel is the ISO week of t, as "2026-W09".
func WeekLabel(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%d-W%02d", y, w)
}

// BorderMessage is one message that crossed the border between a network
// and Matrix.
type BorderMessage struct {
	Network string
	// Contact is Registry.Key of the outside contact's remote ID.
	Contact   string
	Direction audit.Direction
	Kind      audit.Kind
	// KeepWeeks is how many ISO weeks of counts are kept (config
	// migration.border_weeks); DefaultBorderWeeks when 0.
	KeepWeeks int
}

func keepWeeks(n int) int {
	if n > 0 {
		return n
	}
	return DefaultBorderWeeks
}

// oldestBorderWeek is the start of the oldest week kept at now.
func oldestBorderWeek(now time.Time, weeks int) time.Time {
	return WeekStart(now).AddDate(0, 0, -7*(keepWeeks(weeks)-1))
}

// CountBorder counts a message (with media or not) that crossed the border
// between a network and Matrix, for its contact in this ISO week; activity
// (edits, reactions) and sightings are not messages and are not counted.
// The gate calls it where it counts messages in the contact registry; a
// failure is logged, never returned, so the message goes on. The first
// count of a contact in a week deletes the weeks older than KeepWeeks, so
// the table holds at most KeepWeeks weeks.
func (d *Directory) CountBorder(ctx context.Context, m BorderMessage) {
	if m.Kind != audit.KindMessage && m.Kind != audit.KindMedia || m.Network == "" || m.Contact == "" {
		return
	}
	var in, out int64
	switch m.Direction {
	case audit.Inbound:
		in = 1
	case audit.Outbound:
		out = 1
	default:
		return
	}
	now := d.now()
	week := WeekStart(now).Format(time.DateOnly)
	res, err := d.db.Exec(ctx, addBorderQuery, week, m.Network, m.Contact, in, out)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to count border message")
		return
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return
	}
	if _, err = d.db.Exec(ctx, countBorderQuery, week, m.Network, m.Contact, in, out); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to count border message")
		return
	}
	if _, err = d.db.Exec(ctx, pruneBorderQuery, oldestBorderWeek(now, m.KeepWeeks).Format(time.DateOnly)); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to delete old border counts")
	}
}
