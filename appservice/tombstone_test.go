package appservice

import (
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// TestNeutraliseOwnTombstone: only the room tombstone the bot itself sent
// gets the state key bridgev2 ignores; a staff member's or an admin's
// tombstone is handed to bridgev2 as it came.
func TestNeutraliseOwnTombstone(t *testing.T) {
	const bot = id.UserID("@passerellebot:example.org")
	log := zerolog.Nop()
	for _, c := range []struct {
		name     string
		sender   id.UserID
		stateKey *string
		want     *string
	}{
		{"bot's cut-over tombstone", bot, ptr(""), ptr(ownTombstoneKey)},
		{"a person's tombstone", "@admin:example.org", ptr(""), ptr("")},
		{"not the room's tombstone", bot, ptr("other"), ptr("other")},
		{"no state key", bot, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			evt := &event.Event{Type: event.StateTombstone, Sender: c.sender, StateKey: c.stateKey, RoomID: "!portal:example.org"}
			neutraliseOwnTombstone(bot, evt, &log)
			if (evt.StateKey == nil) != (c.want == nil) || (evt.StateKey != nil && *evt.StateKey != *c.want) {
				t.Errorf("state key %v, want %v", deref(evt.StateKey), deref(c.want))
			}
		})
	}
}

func ptr(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
