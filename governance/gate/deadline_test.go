package gate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/passerelle/passerelle/governance/gate"
)

// TestDeadlineConfig reads migration.deadlines as an admin writes it, and
// refuses what would make the steps meaningless.
func TestDeadlineConfig(t *testing.T) {
	parse := func(doc string) (*gate.Config, error) {
		cfg := gate.New().Config()
		if err := yaml.Unmarshal([]byte(doc), cfg); err != nil {
			return nil, err
		}
		return cfg, cfg.Validate()
	}
	cfg, err := parse(`
migration:
    deadlines:
        telegram: {closed: 2027-03-01, read_only: "2027-04-01T12:00:00+02:00", logout: 2027-05-01}
        whatsapp: {logout: 2027-06-01}
    deadline_notices: [14d, 48h]
`)
	if err != nil {
		t.Fatal(err)
	}
	tg := cfg.Migration.Deadlines["telegram"]
	if !tg.Closed.Equal(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)) || !tg.ReadOnly.Equal(time.Date(2027, 4, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("telegram deadlines: %+v", tg)
	}
	if wa := cfg.Migration.Deadlines["whatsapp"]; !wa.Closed.IsZero() || wa.Logout.IsZero() {
		t.Errorf("whatsapp deadlines: %+v", wa)
	}
	if len(cfg.Migration.DeadlineNotices) != 2 || time.Duration(cfg.Migration.DeadlineNotices[0]) != 14*24*time.Hour {
		t.Errorf("deadline_notices: %v", cfg.Migration.DeadlineNotices)
	}
	for _, tc := range []struct{ doc, want string }{
		{"migration: {deadlines: {telegram: {closed: 2027-05-01, read_only: 2027-04-01}}}", "read_only (2027-04-01T00:00:00Z) comes before closed"},
		{"migration: {deadlines: {signal: {closed: 2027-05-01}}}", `unknown network "signal"`},
		{"migration: {deadline_notices: [0]}", "deadline_notices[0] must be positive"},
	} {
		if _, err := parse(tc.doc); !errors.Is(err, gate.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
	if _, err := parse("migration: {deadlines: {telegram: {closed: next-monday}}}"); err == nil || !strings.Contains(err.Error(), `"next-monday" is not a date`) {
		t.Errorf("a malformed date: %v", err)
	}
}
