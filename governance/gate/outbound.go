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

var (
	_ remote.OutboundCheck = (*Gate)(nil).CheckOutbound
	_ remote.SentRecorder  = (*Gate)(nil).RecordSent
)

// CheckOutbound is the gateway's outbound check: a connector asks it before
// anything leaves for a remote network (messages, edits, reactions,
// deletions) and before a chat is started. A refusal is a *remote.Refusal
// that explains itself to the staff member. It runs while bridgev2 holds the
// portal, so it never waits for an inbound event: the chat's lock is held
// only while deciding.
func (g *Gate) CheckOutbound(ctx context.Context, out remote.Outbound) error {
	if !g.started.Load() {
		return ErrNotStarted
	}
	if r := g.readOnlyRefusal(out); r != nil {
		return r
	}
	g.closeIfDue(ctx, networkOf(string(out.PortalKey.ID)))
	if out.Kind.IsSignal() {
		return g.checkSignal(ctx, out)
	}
	if out.Kind.IsGroupChange() {
		log := zerolog.Ctx(ctx).With().Str("portal_id", g.ShownPortal(out.PortalKey.ID)).Str("outbound", string(out.Kind)).Logger()
		return g.checkGroupChange(log.WithContext(ctx), out)
	}
	key := out.PortalKey
	network := networkOf(string(key.ID))
	net := networkName(network)
	log := zerolog.Ctx(ctx).With().Str("portal_id", g.ShownPortal(key.ID)).Str("outbound", string(out.Kind)).Logger()
	ctx = log.WithContext(ctx)

	if out.Kind == remote.OutboundMessage {
		if err := g.checkCutOver(ctx, key); err != nil {
			return err
		}
	}
	ident := out.Identity
	if ident.ID == "" {
		ident = g.identityOf(ctx, out.Login, out.Remote)
	} else {
		g.idents.put(ident)
	}
	hasRoom := g.hasRoomInApprovalMode(ctx, key)

	lock := g.lockChat(key)
	refusal, created, err := g.decideOutbound(ctx, out, net, ident, hasRoom)
	lock.unlock()

	if created != nil {
		g.notifyRequest(ctx, *created)
	}
	if err != nil || refusal != nil {
		if refusal != nil {
			return refusal
		}
		return err
	}
	if out.Kind == remote.OutboundMessage {
		g.ensureControlled(ctx, out.Login, key)
	}
	return nil
}

// decideOutbound decides under the chat's lock.
func (g *Gate) decideOutbound(ctx context.Context, out remote.Outbound, net string, ident remote.Identity, hasRoom bool) (*remote.Refusal, *approval.Request, error) {
	key := out.PortalKey
	network := networkOf(string(key.ID))
	st, err := g.state.portal(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to get portal state: %w", err)
	} else if st != nil && st.Revoked {
		return &remote.Refusal{Reason: fmt.Sprintf("An admin revoked this chat: it is no longer bridged to %s, so nothing was sent.", net)}, nil, nil
	}
	req := policy.Request{
		Network: network, Direction: policy.Outbound, Staff: out.Login.UserMXID,
		Remote: policyRemote(network, ident), ChatID: key.ID, IsGroup: out.Chat.IsGroup,
	}
	var last *approval.Request
	if g.Policy.Policy().Mode(network).KnowsApprovals() {
		if last, err = g.Approvals.LastForChat(ctx, key); err != nil {
			return nil, nil, err
		}
		req.Approved = approved(last, hasRoom)
	}
	decision := g.evaluate(req, out.Chat)
	switch decision.Verdict {
	case policy.Allow:
		return nil, nil, nil
	case policy.Deny:
		g.logDenied(ctx, out.Login, key, ident, policy.Outbound, decision)
		zerolog.Ctx(ctx).Info().Str("reason", decision.Reason).Msg("Refused outbound event by policy")
		return &remote.Refusal{Reason: fmt.Sprintf("The organisation's policy does not allow this chat on %s: %s.", net, decision.Reason)}, nil, nil
	}
	if last != nil && last.State != approval.StatePending {
		return &remote.Refusal{Reason: fmt.Sprintf("An admin did not approve this chat on %s (request #%d was %s).", net, last.ID, last.State)}, nil, nil
	}
	r, created, err := g.Approvals.Create(ctx, g.newRequest(out.Login, key, out.Chat, ident, audit.Outbound))
	if err != nil {
		return nil, nil, err
	}
	var notify *approval.Request
	if created {
		notify = &r
	}
	return &remote.Refusal{Reason: fmt.Sprintf("This chat on %s waits for an admin's approval (request #%d); nothing was sent. Try again once it is approved.", net, r.ID)}, notify, nil
}

// RecordSent is the gateway's sent recorder: what really left is counted in
// the registry of outside contacts (a message, as media when it had some;
// an edit, a reaction or a deletion as activity), and a deletion is written
// to the audit log.
func (g *Gate) RecordSent(ctx context.Context, out remote.Outbound) {
	if !g.started.Load() || out.Kind.IsSignal() || out.Kind.IsGroupChange() || out.Kind == remote.OutboundNewChat {
		return
	}
	ident := out.Identity
	if ident.ID == "" {
		ident = g.identityOf(ctx, out.Login, out.Remote)
	}
	kind := audit.KindActivity
	switch {
	case out.Kind != remote.OutboundMessage:
	case out.HasMedia:
		kind = audit.KindMedia
	default:
		kind = audit.KindMessage
	}
	g.record(ctx, out.Login, out.PortalKey, ident, true, kind)
	if out.Kind == remote.OutboundRedaction {
		g.logDeletion(ctx, out.Login, out.PortalKey, ident, audit.Outbound, true, out.TargetMessage, g.now())
	}
}
