package gate

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/governance/audit"
)

// LoginLoaded implements gateway.LoginObserver: a login bridgev2 loaded (at
// start-up, or a new one) is logged as a staff login once. No I/O here.
func (g *Gate) LoginLoaded(login *bridgev2.UserLogin) {
	if !g.started.Load() {
		g.loginMu.Lock()
		g.pendingLogins = append(g.pendingLogins, login)
		g.loginMu.Unlock()
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.recoverJob("login")
		g.noteLogin(g.bg, login)
		g.endIfPastLogout(g.bg, login)
	}()
}

func (g *Gate) noteLogin(ctx context.Context, login *bridgev2.UserLogin) {
	kl := knownLogin{ID: login.ID, Staff: login.UserMXID, Network: networkOf(string(login.ID))}
	isNew, err := g.state.putLogin(ctx, kl, g.now())
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to remember login")
		return
	} else if !isNew {
		return
	}
	_, err = g.Audit.Append(ctx, audit.Entry{
		Actor: string(kl.Staff), Action: audit.ActionLogin, Network: kl.Network, Staff: kl.Staff, Login: kl.ID,
		Details: audit.Details(map[string]any{"remote_name": login.RemoteName}),
	})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log staff login")
	}
}

// reconcileLogins logs as logged out every login the gate saw that bridgev2
// no longer has (logout command, provisioning API, bad credentials).
func (g *Gate) reconcileLogins(ctx context.Context) error {
	known, err := g.state.logins(ctx)
	if err != nil {
		return fmt.Errorf("failed to list known logins: %w", err)
	}
	for _, kl := range known {
		existing, err := g.br.DB.UserLogin.GetByID(ctx, kl.ID)
		if err != nil {
			return fmt.Errorf("failed to get login: %w", err)
		} else if existing != nil {
			continue
		}
		err = g.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
			if err := g.state.deleteLogin(ctx, kl.ID); err != nil {
				return err
			}
			_, err := g.Audit.Append(ctx, audit.Entry{
				Actor: string(kl.Staff), Action: audit.ActionLogout, Network: kl.Network, Staff: kl.Staff, Login: kl.ID,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("failed to log staff logout: %w", err)
		}
	}
	return nil
}

// ReconcileLogins runs the logout check now (after a logout command).
func (g *Gate) ReconcileLogins(ctx context.Context) error { return g.reconcileLogins(ctx) }
