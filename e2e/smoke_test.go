package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestSmokeBotCommands: a Matrix user opens an encrypted DM with the bridge
// bot and uses it; the bot's answers are decrypted by the user's own client
// while the homeserver only ever holds ciphertext. Runs on SQLite and on
// PostgreSQL.
func TestSmokeBotCommands(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			s := NewStack(t, StackOptions{Users: []string{"alice"}, Postgres: db == "postgres"})
			alice := s.User("alice")
			ctx := s.Ctx()
			room, welcome := s.BotRoom(alice)
			if !strings.Contains(welcome.Body(), "management room") || welcome.Type != "m.room.encrypted" {
				t.Fatalf("welcome message: %s %q", welcome.Type, welcome.Body())
			}
			if err := alice.RequireEncryptedOnServer(ctx, room, welcome.EventID); err != nil {
				t.Fatalf("homeserver copy of the welcome message: %v", err)
			}

			start := time.Now()
			help := s.Command(alice, room, "help")
			t.Logf("help answered in %s: %.80q…", time.Since(start).Round(time.Millisecond), help.Body())
			if help.Type != "m.room.encrypted" || help.DecryptionError != "" {
				t.Fatalf("bot answer to help: wire type %q, decryption error %q; want a decrypted m.room.encrypted event", help.Type, help.DecryptionError)
			}
			if !strings.Contains(help.Body(), "login") || !strings.Contains(help.Body(), "help") {
				t.Fatalf("bot answer to help is not a help text: %s %q", help.MsgType(), help.Body())
			}
			if err := alice.RequireEncryptedOnServer(ctx, room, help.EventID); err != nil {
				t.Fatalf("homeserver copy of the bot's answer: %v", err)
			}

			unknown := s.Command(alice, room, "unknown-command-xyz")
			if !strings.Contains(unknown.Body(), "Unknown command") {
				t.Fatalf("answer to an unknown command: %q; want it to say Unknown command", unknown.Body())
			}
			if err := alice.RequireEncryptedOnServer(ctx, room, unknown.EventID); err != nil {
				t.Fatalf("homeserver copy of the bot's answer: %v", err)
			}
		})
	}
}
