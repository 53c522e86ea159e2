package gate

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
)

var _ remote.OutboundCheck = (*Gate)(nil).CheckOutbound

// CheckOutbound is the gateway's outbound check: a connector asks it before
// a Matrix message leaves and before a chat is started. A refusal is a
// *remote.Refusal that explains itself to the staff member.
func (g *Gate) CheckOutbound(ctx context.Context, out remote.Outbound) error {
	if !g.started.Load() {
		return ErrNotStarted
	}
	key := out.PortalKey
	network := networkOf(string(key.ID))
	net := networkName(network)
	log := zerolog.Ctx(ctx).With().Str("portal_id", string(key.ID)).Str("outbound", string(out.Kind)).Logger()
	ctx = log.WithContext(ctx)
	unlock := g.lockChat(key.ID)
	defer unlock()

	st, err := g.state.portal(ctx, key)
	if err != nil {
		return fmt.Errorf("failed to get portal state: %w", err)
	} else if st != nil && st.Revoked {
		return &remote.Refusal{Reason: fmt.Sprintf("An admin revoked this chat: it is no longer bridged to %s, so nothing was sent.", net)}
	}
	chat, ident := g.describe(ctx, out.Login, key, out.Remote)
	req := policy.Request{
		Network: network, Direction: policy.Outbound, Staff: out.Login.UserMXID,
		Remote: policyRemote(network, ident), ChatID: key.ID, IsGroup: chat.IsGroup,
	}
	var last *approval.Request
	if g.Policy.Policy().Mode(network) == policy.ModeApproval {
		if last, err = g.Approvals.LastForChat(ctx, key.ID); err != nil {
			return err
		}
		if req.Approved, err = g.approved(ctx, key, last); err != nil {
			return err
		}
	}
	decision := g.Policy.Evaluate(req)
	switch decision.Verdict {
	case policy.Allow:
		if out.Kind == remote.OutboundMessage {
			g.record(ctx, out.Login, key, ident, true)
			g.ensureControlled(ctx, out.Login, key)
		}
		return nil
	case policy.Deny:
		g.logDenied(ctx, out.Login, key, ident, policy.Outbound, decision)
		log.Info().Str("reason", decision.Reason).Msg("Refused outbound event by policy")
		return &remote.Refusal{Reason: fmt.Sprintf("The organisation's policy does not allow this chat on %s: %s.", net, decision.Reason)}
	}
	if last != nil && last.State != approval.StatePending {
		return &remote.Refusal{Reason: fmt.Sprintf("An admin did not approve this chat on %s (request #%d was %s).", net, last.ID, last.State)}
	}
	r, created, err := g.Approvals.Create(ctx, g.newRequest(out.Login, key, chat, ident, audit.Outbound))
	if err != nil {
		return err
	}
	if created {
		g.notifyRequest(ctx, r)
	}
	return &remote.Refusal{Reason: fmt.Sprintf("This chat on %s waits for an admin's approval (request #%d); nothing was sent. Try again once it is approved.", net, r.ID)}
}
