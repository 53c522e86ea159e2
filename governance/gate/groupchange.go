package gate

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/policy"
)

// checkGroupChange decides for a change a staff member makes to a group
// from Matrix (its name, topic, picture or settings, a member's rights, a
// member added or removed). The change goes only to a group bridged now: a
// revoked group, one the policy refuses or one waiting for an admin's
// approval stays as the network has it, and asking never creates an
// approval request. A contact added to a group must pass the policy as a
// member would: a deny rule that names them refuses the addition, and the
// refusal is in the audit log as any policy denial. The same holds for the
// contacts of a group being created (an empty PortalKey: no chat yet).
func (g *Gate) checkGroupChange(ctx context.Context, out remote.Outbound) error {
	key := out.PortalKey
	network := networkOf(string(key.ID))
	if key.ID == "" {
		// A contact added to a group being created: there is no chat yet.
		if out.Kind != remote.OutboundMemberAdd {
			return fmt.Errorf("a group change without its chat")
		}
		network = networkOf(string(out.Remote))
	}
	net := networkName(network)
	if key.ID != "" {
		// The group is judged as a group (its ID, its members), not by the
		// contact being added: that contact is judged next.
		chat := out
		chat.Remote, chat.Identity = "", remote.Identity{}
		why, _, err := g.notBridgedNow(ctx, chat, policy.Outbound)
		if err != nil {
			return err
		} else if why != "" {
			return &remote.Refusal{Reason: fmt.Sprintf("%s, so nothing was changed on %s.", why, net)}
		}
	}
	if out.Kind != remote.OutboundMemberAdd {
		return nil
	}
	ident := out.Identity
	if ident.ID == "" {
		ident = g.identityOf(ctx, out.Login, out.Remote)
	} else {
		g.idents.put(ident)
	}
	req := policy.Request{
		Network: network, Direction: policy.Outbound, Staff: out.Login.UserMXID,
		Remote: policyRemote(network, ident), ChatID: key.ID, IsGroup: true,
		// The group is bridged: adding someone is no new chat (closed mode).
		Approved: true,
	}
	chat := out.Chat
	chat.IsGroup = true
	chat.Members = []remote.Identity{ident}
	d := g.evaluate(req, chat)
	if d.Verdict != policy.Deny {
		return nil
	}
	g.logDenied(ctx, out.Login, key, ident, policy.Outbound, d)
	zerolog.Ctx(ctx).Info().Str("reason", d.Reason).Msg("Refused adding a contact to a group by policy")
	return &remote.Refusal{Reason: fmt.Sprintf("The organisation's policy does not allow adding this contact to a group on %s: %s.", net, d.Reason)}
}
