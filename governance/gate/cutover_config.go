package gate

import (
	"fmt"
	"strings"
	"time"
)

// CutOverConfig is the `migration.cutover` part of the section.
type CutOverConfig struct {
	// FinalMessage is sent on the network when a chat is cut over;
	// {new_link} is the new room's matrix.to link, {staff} the staff
	// member's Matrix ID.
	FinalMessage string `yaml:"final_message"`
	// Reminder is sent to a contact who still writes in a chat that was
	// cut over, at most once per ReminderInterval.
	Reminder         string   `yaml:"reminder"`
	ReminderInterval Duration `yaml:"reminder_interval"`
}

// Defaults of migration.cutover.
const (
	DefaultFinalMessage     = "I've moved to Matrix: reach me at {new_link}"
	DefaultReminder         = "This chat has moved to Matrix: reach me at {new_link}. Messages sent here still arrive for now."
	DefaultReminderInterval = 24 * time.Hour
	// MaxCutOverTemplate bounds a template's length.
	MaxCutOverTemplate = 2000
)

func (c CutOverConfig) finalMessage() string {
	if strings.TrimSpace(c.FinalMessage) == "" {
		return DefaultFinalMessage
	}
	return c.FinalMessage
}

func (c CutOverConfig) reminder() string {
	if strings.TrimSpace(c.Reminder) == "" {
		return DefaultReminder
	}
	return c.Reminder
}

func (c CutOverConfig) reminderInterval() time.Duration {
	if c.ReminderInterval <= 0 {
		return DefaultReminderInterval
	}
	return time.Duration(c.ReminderInterval)
}

// validate checks the templates' length.
func (c CutOverConfig) validate() error {
	if len(c.FinalMessage) > MaxCutOverTemplate || len(c.Reminder) > MaxCutOverTemplate {
		return fmt.Errorf("%w: migration.cutover templates are limited to %d bytes", ErrInvalidConfig, MaxCutOverTemplate)
	}
	if c.ReminderInterval < 0 {
		return fmt.Errorf("%w: migration.cutover.reminder_interval must not be negative", ErrInvalidConfig)
	}
	return nil
}
