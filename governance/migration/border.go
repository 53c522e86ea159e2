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
	// Time is when it crossed; the directory's clock when zero.
	Time time.Time
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
// between a network and Matrix, for its contact in its ISO week; activity
// (edits, reactions) and sightings are not messages and are not counted.
// The gate calls it where it counts messages in the contact registry; a
// failure is logged, never returned, so the message goes on. The first
// count of a contact in a week deletes the weeks older than KeepWeeks, so
// the table holds at most KeepWeeks weeks.
func (d *Directory) CountBorder(ctx context.Context, m BorderMessage) {
	d.CountBorders(ctx, []BorderMessage{m})
}

// CountBorders is CountBorder for several messages, those of one contact
// in one week added in one statement.
func (d *Directory) CountBorders(ctx context.Context, msgs []BorderMessage) {
	type cell struct{ week, network, contact string }
	var order []cell
	sums := make(map[cell][2]int64)
	keep := 0
	for _, m := range msgs {
		if m.Kind != audit.KindMessage && m.Kind != audit.KindMedia || m.Network == "" || m.Contact == "" {
			continue
		}
		var dir int
		switch m.Direction {
		case audit.Inbound:
		case audit.Outbound:
			dir = 1
		default:
			continue
		}
		at := m.Time
		if at.IsZero() {
			at = d.now()
		}
		c := cell{week: WeekStart(at).Format(time.DateOnly), network: m.Network, contact: m.Contact}
		sum, ok := sums[c]
		if !ok {
			order = append(order, c)
		}
		sum[dir]++
		sums[c] = sum
		keep = max(keep, m.KeepWeeks)
	}
	pruned := false
	for _, c := range order {
		sum := sums[c]
		res, err := d.db.Exec(ctx, addBorderQuery, c.week, c.network, c.contact, sum[0], sum[1])
		if err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to count border message")
			continue
		}
		if n, err := res.RowsAffected(); err == nil && n > 0 {
			continue
		}
		if _, err = d.db.Exec(ctx, countBorderQuery, c.week, c.network, c.contact, sum[0], sum[1]); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to count border message")
			continue
		}
		if pruned {
			continue
		}
		pruned = true
		if _, err = d.db.Exec(ctx, pruneBorderQuery, oldestBorderWeek(d.now(), keep).Format(time.DateOnly)); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to delete old border counts")
		}
	}
}
