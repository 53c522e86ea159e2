package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
)

var (
	// ErrUnknownPortal: no portal with a room matches.
	ErrUnknownPortal = errors.New("unknown portal")
	// ErrAlreadyRevoked / ErrNotRevoked: revoking twice, restoring a portal
	// that is not revoked.
	ErrAlreadyRevoked = errors.New("portal is already revoked")
	ErrNotRevoked     = errors.New("portal is not revoked")
)

// PortalInfo is one portal as admins see it: in hashed mode, its key and
// other user are pseudonyms (ShownPortal, ShownLogin, ShownUser) and a name
// that looks like a number is left out.
type PortalInfo struct {
	Key     networkid.PortalKey `json:"key"`
	Network string              `json:"network"`
	RoomID  id.RoomID           `json:"room_id"`
	Name    string              `json:"name"`
	Staff   id.UserID           `json:"staff"`
	Other   networkid.UserID    `json:"other_user,omitempty"`
	Revoked bool                `json:"revoked"`
}

// Portals lists the portals with a room, with their governance state.
func (g *Gate) Portals(ctx context.Context) ([]PortalInfo, error) {
	portals, err := g.br.GetAllPortalsWithMXID(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to list portals: %w", err)
	}
	states, err := g.state.listPortals(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to list portal states: %w", err)
	}
	byKey := make(map[networkid.PortalKey]*PortalState, len(states))
	for _, st := range states {
		byKey[st.Key] = st
	}
	out := make([]PortalInfo, 0, len(portals))
	for _, p := range portals {
		info := PortalInfo{Key: p.PortalKey, Network: networkOf(string(p.ID)), RoomID: p.MXID, Name: p.Name, Other: p.OtherUserID}
		if st := byKey[p.PortalKey]; st != nil {
			info.Staff, info.Revoked = st.Staff, st.Revoked
		}
		if info.Staff == "" && p.Receiver != "" {
			if login, _ := g.br.GetExistingUserLoginByID(ctx, p.Receiver); login != nil {
				info.Staff = login.UserMXID
			}
		}
		if g.Seal.On() {
			info.Key = networkid.PortalKey{ID: networkid.PortalID(g.ShownPortal(info.Key.ID)), Receiver: networkid.UserLoginID(g.ShownLogin(info.Key.Receiver))}
			info.Other, info.Name = networkid.UserID(g.ShownUser(info.Other)), g.ShownName(info.Name)
		}
		out = append(out, info)
	}
	return out, nil
}

// FindPortal finds a portal by room ID, or by portal ID (with its receiver
// when several logins share it: "telegram.u123/telegram.456"), or in hashed
// mode by their pseudonyms as gov-portals shows them.
func (g *Gate) FindPortal(ctx context.Context, ref string) (*bridgev2.Portal, error) {
	if len(ref) > 0 && ref[0] == '!' {
		p, err := g.br.GetPortalByMXID(ctx, id.RoomID(ref))
		if err != nil {
			return nil, err
		} else if p == nil {
			return nil, fmt.Errorf("%w: %s is not a portal room", ErrUnknownPortal, ref)
		}
		return p, nil
	}
	portals, err := g.br.GetAllPortalsWithMXID(ctx)
	if err != nil {
		return nil, err
	}
	var found []*bridgev2.Portal
	for _, p := range portals {
		shown := g.ShownPortal(p.ID)
		if string(p.ID) == ref || string(p.ID)+"/"+string(p.Receiver) == ref ||
			(g.Seal.On() && (shown == ref || shown+"/"+g.ShownLogin(p.Receiver) == ref)) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w %q", ErrUnknownPortal, g.Seal.Scrub(ref))
	case 1:
		return found[0], nil
	default:
		return nil, fmt.Errorf("%w: %q names %d portals; write <portal ID>/<login ID>", ErrUnknownPortal, g.Seal.Scrub(ref), len(found))
	}
}

func (g *Gate) ensureState(ctx context.Context, portal *bridgev2.Portal) error {
	st, err := g.state.portal(ctx, portal.PortalKey)
	if err != nil || st != nil {
		return err
	}
	var staff id.UserID
	if login, _ := g.br.GetExistingUserLoginByID(ctx, portal.Receiver); login != nil {
		staff = login.UserMXID
	}
	return g.state.putControlled(ctx, &PortalState{Key: portal.PortalKey, Network: networkOf(string(portal.ID)), Staff: staff, RoomID: portal.MXID, ControlledAt: g.now()})
}

// Revoke takes a portal back: a notice in the room, the ghosts leave, and
// nothing is relayed any more in either direction. The remote chat is
// untouched.
func (g *Gate) Revoke(ctx context.Context, admin id.UserID, portal *bridgev2.Portal, reason string) error {
	if err := g.ensureState(ctx, portal); err != nil {
		return fmt.Errorf("failed to store portal state: %w", err)
	}
	lock := g.lockChat(portal.PortalKey)
	err := g.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		changed, err := g.state.setRevoked(ctx, portal.PortalKey, true, g.now(), admin)
		if err != nil {
			return err
		} else if !changed {
			return ErrAlreadyRevoked
		}
		_, err = g.Audit.Append(ctx, audit.Entry{
			Actor: string(admin), Action: audit.ActionPortalRevoked, Network: networkOf(string(portal.ID)), Portal: portal.ID,
			Login: portal.Receiver, Details: audit.Details(map[string]any{"room_id": portal.MXID, "reason": reason}),
		})
		return err
	})
	g.state.forgetPortal(portal.PortalKey)
	lock.unlock()
	if err != nil {
		return fmt.Errorf("failed to revoke portal: %w", err)
	}
	net := networkName(networkOf(string(portal.ID)))
	if _, err = g.sendNotice(ctx, portal.MXID, fmt.Sprintf("An admin revoked this chat: it is no longer bridged to %s. The chat on %s itself is untouched.", net, net)); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to post revocation notice")
	}
	for _, ghost := range g.ghostsIn(ctx, portal) {
		_, err := g.br.Matrix.GhostIntent(ghost).SendState(ctx, portal.MXID, event.StateMember, string(g.br.Matrix.FormatGhostMXID(ghost)),
			&event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipLeave, Reason: "Chat revoked by an admin"}}, time.Time{})
		if err != nil {
			zerolog.Ctx(ctx).Err(err).Str("ghost_id", string(ghost)).Msg("Failed to make ghost leave revoked portal")
		}
	}
	return nil
}

// Restore allows a revoked portal again: the ghost of a direct chat comes
// back and events are relayed again.
func (g *Gate) Restore(ctx context.Context, admin id.UserID, portal *bridgev2.Portal) error {
	lock := g.lockChat(portal.PortalKey)
	err := g.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		changed, err := g.state.setRevoked(ctx, portal.PortalKey, false, time.UnixMilli(0), "")
		if err != nil {
			return err
		} else if !changed {
			return ErrNotRevoked
		}
		_, err = g.Audit.Append(ctx, audit.Entry{
			Actor: string(admin), Action: audit.ActionPortalAllowed, Network: networkOf(string(portal.ID)), Portal: portal.ID,
			Login: portal.Receiver, Details: audit.Details(map[string]any{"room_id": portal.MXID}),
		})
		return err
	})
	g.state.forgetPortal(portal.PortalKey)
	lock.unlock()
	if err != nil {
		return fmt.Errorf("failed to restore portal: %w", err)
	}
	if portal.OtherUserID != "" {
		mxid := g.br.Matrix.FormatGhostMXID(portal.OtherUserID)
		if err := g.br.Bot.EnsureInvited(ctx, portal.MXID, mxid); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to invite ghost back")
		} else if err = g.br.Matrix.GhostIntent(portal.OtherUserID).EnsureJoined(ctx, portal.MXID); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to make ghost rejoin")
		}
	}
	net := networkName(networkOf(string(portal.ID)))
	if _, err = g.sendNotice(ctx, portal.MXID, fmt.Sprintf("An admin allowed this chat again: it is bridged to %s again.", net)); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to post restore notice")
	}
	return nil
}

// ghostsIn lists the ghosts joined to a portal room (and the other user of
// a direct chat).
func (g *Gate) ghostsIn(ctx context.Context, portal *bridgev2.Portal) []networkid.UserID {
	seen := map[networkid.UserID]bool{}
	var out []networkid.UserID
	add := func(u networkid.UserID) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	add(portal.OtherUserID)
	members, err := g.br.Matrix.GetMembers(ctx, portal.MXID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to get portal members")
		return out
	}
	for mxid, m := range members {
		if ghost, ok := g.br.Matrix.ParseGhostMXID(mxid); ok && m.Membership == event.MembershipJoin {
			add(ghost)
		}
	}
	return out
}

// PortalRevoked reports whether the portal of a room is revoked.
func (g *Gate) PortalRevoked(ctx context.Context, key networkid.PortalKey) (bool, error) {
	st, err := g.state.portal(ctx, key)
	return st != nil && st.Revoked, err
}
