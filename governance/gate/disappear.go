package gate

import (
	"context"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
)

var _ remote.DisappearingPolicy = (*Gate)(nil).KeepDisappearing

// KeepDisappearing is the gateway's disappearing policy: true when the
// organisation keeps disappearing messages in Matrix (disappearing_messages:
// keep), false when their timers are honoured.
func (g *Gate) KeepDisappearing() bool {
	return g.cfg.DisappearingMessages == DisappearingKeep
}

// logTimerChange writes a bridged change of a chat's disappearing-message
// timer in the audit log: the new timer ("off" or a duration), who set it
// (contact or staff), and whether the organisation keeps the messages
// anyway.
func (g *Gate) logTimerChange(ctx context.Context, login *bridgev2.UserLogin, key networkid.PortalKey, ident remote.Identity, tc remote.TimerChange) {
	timer, byStaff := tc.DisappearingTimer()
	details := map[string]any{"timer": "off", "by": "contact", "kept": g.KeepDisappearing()}
	if timer > 0 {
		details["timer"] = timer.String()
	}
	if byStaff {
		details["by"] = "staff"
	}
	e := audit.Entry{
		Actor: audit.ActorSystem, Action: audit.ActionTimerChanged, Network: networkOf(string(key.ID)),
		Staff: login.UserMXID, Login: login.ID, Portal: key.ID, Details: audit.Details(details),
	}
	if ident.ID != "" {
		e.Contact = g.Contacts.Key(ident.ID)
	}
	if _, err := g.Audit.Append(ctx, e); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log a disappearing timer change")
	}
}
