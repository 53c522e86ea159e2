package admin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestCommandsShowRemoteNamesAsText: a display name chosen on the remote
// side shows in gov-contacts as text, and gov-export keeps an export whose
// details hold backticks inside its code block.
func TestCommandsShowRemoteNamesAsText(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, nil)
		r := e.start()
		hostile := "<a href=\"https://evil.example\">**@room**</a>\n* [x](http://evil.example) ```"
		if _, err := r.gv.Contacts.Record(ctx, audit.Observation{Network: "telegram", RemoteID: "telegram.77", DisplayName: hostile, Kind: audit.KindSeen}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.gv.Audit.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionLogin,
			Details: audit.Details(map[string]any{"remote_name": "```\n@room"})}); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"gov-contacts", "gov-export log json"} {
			before := len(e.mx.Messages())
			r.command(t, e, adminMXID, e.adminRoom(), cmd)
			for _, m := range e.mx.Messages()[before:] {
				html, body := m.Content.FormattedBody, m.Content.Body
				bad := []string{"<a ", "<strong>", "<li>[x]"}
				if cmd == "gov-contacts" {
					// An export stays byte for byte (its hashes cover it);
					// the empty m.mentions keeps its "@room" from notifying.
					bad = append(bad, "@room")
					if strings.Contains(body, "@room") {
						t.Errorf("%s: the plain body has @room: %s", cmd, body)
					}
				}
				for _, bad := range bad {
					if strings.Contains(html, bad) {
						t.Errorf("%s: the reply has %q:\n%s\n---\n%s", cmd, bad, html, body)
					}
				}
				if m.Content.Mentions == nil || m.Content.Mentions.Room {
					t.Errorf("%s: the reply mentions %+v", cmd, m.Content.Mentions)
				}
				if cmd == "gov-export log json" && (strings.Count(html, "<pre>") != 1 || !strings.Contains(html, "remote_name")) {
					t.Errorf("gov-export: the export is not one code block:\n%s", html)
				}
			}
		}
	})
}
