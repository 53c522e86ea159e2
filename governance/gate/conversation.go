package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
	"github.com/passerelle/passerelle/governance/seal"
)

// The remote events of a conversation, by what the gate does with them.

// isMessage reports whether an event type is a message: it is counted as a
// message (or media) in the registry.
func isMessage(t bridgev2.RemoteEventType) bool {
	return t == bridgev2.RemoteEventMessage || t == bridgev2.RemoteEventMessageUpsert
}

// isActivity reports whether an event type changes a message (an edit, a
// reaction, a deletion): it is counted as activity, never as a message.
func isActivity(t bridgev2.RemoteEventType) bool {
	switch t {
	case bridgev2.RemoteEventEdit, bridgev2.RemoteEventReaction, bridgev2.RemoteEventReactionRemove,
		bridgev2.RemoteEventMessageRemove:
		return true
	}
	return false
}

// isContent reports whether an event type carries or changes content: these
// are held, in order, while their chat waits for approval, and their refusal
// is logged. Other events (typing, receipts, chat info) follow their chat's
// fate silently.
func isContent(t bridgev2.RemoteEventType) bool {
	return isMessage(t) || isActivity(t)
}

// activityKind is how the registry counts a bridged event.
func activityKind(t bridgev2.RemoteEventType, media bool) audit.Kind {
	switch {
	case isActivity(t):
		return audit.KindActivity
	case media:
		return audit.KindMedia
	default:
		return audit.KindMessage
	}
}

// logDeletion writes that a message was deleted: which one, when, by whom
// and in which direction, never what it said.
func (g *Gate) logDeletion(ctx context.Context, login *bridgev2.UserLogin, key networkid.PortalKey, ident remote.Identity,
	dir audit.Direction, byStaff bool, target networkid.MessageID, ts time.Time) {
	details := map[string]any{"direction": dir, "message": g.Seal.Pseudonym(seal.KindMessage, string(target))}
	e := audit.Entry{
		Actor: audit.ActorSystem, Action: audit.ActionMessageDeleted, Network: networkOf(string(key.ID)),
		Staff: login.UserMXID, Login: login.ID, Portal: key.ID,
	}
	if byStaff {
		details["by"] = "staff"
	} else {
		details["by"] = "contact"
	}
	if !ts.IsZero() {
		details["deleted_at"] = ts.UTC().Format(time.RFC3339Nano)
	}
	if ident.ID != "" {
		e.Contact = g.Contacts.Key(ident.ID)
	}
	e.Details = audit.Details(details)
	if _, err := g.Audit.Append(ctx, e); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log message deletion")
	}
}

// afterInbound counts a bridged remote event in the registry and logs a
// deletion.
func (g *Gate) afterInbound(ctx context.Context, login *bridgev2.UserLogin, evt bridgev2.RemoteEvent, key networkid.PortalKey, ident remote.Identity) {
	if tc, ok := evt.(remote.TimerChange); ok {
		g.logTimerChange(ctx, login, key, ident, tc)
	}
	t := evt.GetType()
	if !isContent(t) {
		return
	}
	fromMe := evt.GetSender().IsFromMe
	g.record(ctx, login, key, ident, fromMe, activityKind(t, isMessage(t) && g.carriesMedia(networkOf(string(key.ID)), evt)))
	if t == bridgev2.RemoteEventMessageRemove {
		var target networkid.MessageID
		if withTarget, ok := evt.(bridgev2.RemoteEventWithTargetMessage); ok {
			target = withTarget.GetTargetMessage()
		}
		var ts time.Time
		if withTS, ok := evt.(bridgev2.RemoteEventWithTimestamp); ok {
			ts = withTS.GetTimestamp()
		}
		dir := audit.Inbound
		if fromMe {
			dir = audit.Outbound
		}
		g.logDeletion(ctx, login, key, ident, dir, fromMe, target, ts)
	}
}

// signalAllowed tells whether the organisation lets a staff signal (read
// receipt, typing, presence) out at all.
func (g *Gate) signalAllowed(kind remote.OutboundKind) bool {
	switch kind {
	case remote.OutboundReadReceipt:
		return g.cfg.StaffSignals.ReadReceipts
	case remote.OutboundTyping:
		return g.cfg.StaffSignals.Typing
	case remote.OutboundPresence:
		return g.cfg.StaffSignals.Presence
	}
	return false
}

// checkSignal decides for a staff signal: it goes only where the
// organisation lets signals out and the chat is bridged now (allowed by the
// policy, approved in approval mode, not revoked). It never creates an
// approval request and logs nothing: a refused signal is dropped by the
// connector.
func (g *Gate) checkSignal(ctx context.Context, out remote.Outbound) error {
	if !g.signalAllowed(out.Kind) {
		return &remote.Refusal{Reason: fmt.Sprintf("The organisation does not send staff %s to the networks.", signalName(out.Kind))}
	}
	if out.PortalKey.ID == "" {
		// Presence is the account's, not a chat's.
		return nil
	}
	why, _, err := g.notBridgedNow(ctx, out, policy.Outbound)
	if err != nil {
		return err
	} else if why != "" {
		return &remote.Refusal{Reason: "This chat is not bridged now."}
	}
	return nil
}

// notBridgedNow tells why the chat of out is not bridged now (revoked,
// refused by the policy, not approved yet in approval mode), or "" when it
// is, with the decision that refused it. It decides without the chat's lock
// and changes nothing: no approval request, no audit entry.
func (g *Gate) notBridgedNow(ctx context.Context, out remote.Outbound, dir policy.Direction) (string, policy.Decision, error) {
	key := out.PortalKey
	network := networkOf(string(key.ID))
	ident := out.Identity
	if ident.ID == "" {
		ident = g.identityOf(ctx, out.Login, out.Remote)
	}
	hasRoom := g.hasRoomInApprovalMode(ctx, key)
	st, err := g.state.portal(ctx, key)
	if err != nil {
		return "", policy.Decision{}, fmt.Errorf("failed to get portal state: %w", err)
	} else if st != nil && st.Revoked {
		return "An admin revoked this chat", policy.Decision{}, nil
	}
	req := policy.Request{
		Network: network, Direction: dir, Staff: out.Login.UserMXID,
		Remote: policyRemote(network, ident), ChatID: key.ID, IsGroup: out.Chat.IsGroup,
	}
	if g.Policy.Policy().Mode(network).KnowsApprovals() {
		last, err := g.Approvals.LastForChat(ctx, key)
		if err != nil {
			return "", policy.Decision{}, err
		}
		req.Approved = approved(last, hasRoom)
	}
	switch d := g.evaluate(req, out.Chat); d.Verdict {
	case policy.Allow:
		return "", d, nil
	case policy.Deny:
		return "The organisation's policy does not allow this chat: " + d.Reason, d, nil
	default:
		return "An admin has not approved this chat", d, nil
	}
}

func signalName(kind remote.OutboundKind) string {
	switch kind {
	case remote.OutboundReadReceipt:
		return "read receipts"
	case remote.OutboundTyping:
		return "typing notifications"
	case remote.OutboundPresence:
		return "presence"
	}
	return string(kind)
}

// evaluate asks the policy about req. For a group it also asks about every
// member the connector knows: a deny rule that names one of them refuses
// the whole group (in every mode), and the decision says so. Members that
// merely lack an allow rule do not: in allowlist mode a group is allowed by
// a rule on the chat or on who writes.
func (g *Gate) evaluate(req policy.Request, chat remote.Chat) policy.Decision {
	d := g.Policy.Evaluate(req)
	if !chat.IsGroup || d.Verdict == policy.Deny {
		return d
	}
	members := chat.Members
	if len(members) > remote.MaxChatMembers {
		members = members[:remote.MaxChatMembers]
	}
	for _, m := range members {
		mreq := req
		mreq.Remote = policyRemote(req.Network, m)
		if md := g.Policy.Evaluate(mreq); md.Verdict == policy.Deny && md.Rule != nil {
			md.Reason = "a member of the group is refused: " + md.Reason
			return md
		}
	}
	return d
}
