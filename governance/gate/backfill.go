package gate

import (
	"context"
	"slices"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
)

var _ remote.BackfillFilter = (*Gate)(nil).FilterBackfill

// FilterBackfill is the gateway's backfill filter. A chat's history is
// bridged only into a chat bridged now, judged as its live messages are: a
// revoked chat, one the policy refuses or one waiting for an admin's
// approval gets none of it (in approval mode the history comes once the
// chat is approved, when its portal is created). In a group every sender of
// the history counts as a member: a deny rule that names one refuses the
// whole history, as it would refuse the group. What is bridged is counted in
// the registry per contact (message or media, in or out) and one
// history_bridged audit entry says how many messages went into which
// portal, never what they said. The connector hands only messages newer
// than the last one bridged (catching up) or the chat's recent history (a
// new portal), so nothing is counted twice.
func (g *Gate) FilterBackfill(ctx context.Context, h remote.History) []*bridgev2.BackfillMessage {
	if !g.started.Load() || h.Portal == nil || h.Login == nil || len(h.Messages) == 0 {
		return nil
	}
	key := h.Portal.PortalKey
	log := zerolog.Ctx(ctx).With().Str("portal_id", g.ShownPortal(key.ID)).Logger()
	ctx = log.WithContext(ctx)
	chat := h.Chat
	if chat.IsGroup {
		seen := make(map[networkid.UserID]bool, len(chat.Members))
		for _, m := range chat.Members {
			seen[m.ID] = true
		}
		chat.Members = slices.Clip(chat.Members)
		for _, m := range h.Messages {
			if m.FromMe || m.Sender.ID == "" || seen[m.Sender.ID] || len(chat.Members) >= remote.MaxChatMembers {
				continue
			}
			seen[m.Sender.ID] = true
			chat.Members = append(chat.Members, m.Sender)
		}
	}
	contact := h.Identity
	if !chat.IsGroup && contact.ID == "" {
		contact = g.identityOf(ctx, h.Login, h.Remote)
	}
	out := remote.Outbound{Login: h.Login, Portal: h.Portal, PortalKey: key, Chat: chat, Remote: h.Remote, Identity: contact}
	why, _, err := g.notBridgedNow(ctx, out, policy.Inbound)
	if err != nil {
		log.Err(err).Int("messages", len(h.Messages)).Msg("Failed to decide on a chat's history: none of it bridged")
		return nil
	} else if why != "" {
		log.Info().Str("reason", why).Int("messages", len(h.Messages)).Msg("History not bridged: the chat is not bridged now")
		return nil
	}
	res := make([]*bridgev2.BackfillMessage, 0, len(h.Messages))
	for _, m := range h.Messages {
		res = append(res, m.Message)
		kind := audit.KindMessage
		if m.HasMedia {
			kind = audit.KindMedia
		}
		switch {
		case !m.FromMe:
			g.record(ctx, h.Login, key, m.Sender, false, kind)
		case !chat.IsGroup:
			g.record(ctx, h.Login, key, contact, true, kind)
		}
	}
	e := audit.Entry{
		Actor: audit.ActorSystem, Action: audit.ActionHistoryBridged, Network: networkOf(string(key.ID)),
		Staff: h.Login.UserMXID, Login: h.Login.ID, Portal: key.ID,
		Details: audit.Details(map[string]any{"messages": len(res)}),
	}
	if !chat.IsGroup && contact.ID != "" {
		e.Contact = g.Contacts.Key(contact.ID)
	}
	if _, err := g.Audit.Append(ctx, e); err != nil {
		log.Err(err).Msg("Failed to log bridged history")
	}
	return res
}
