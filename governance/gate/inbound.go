package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/governance/policy"
)

var _ remote.Queue = (*Gate)(nil).Queue

func policyRemote(network string, ident remote.Identity) policy.Remote {
	r := policy.Remote{Phone: ident.Phone}
	if network == policy.NetworkTelegram {
		r.TelegramUserID = ident.Number
		r.TelegramUsername = ident.Username
	}
	return r
}

// Queue is the gateway's remote queue: every remote event of every network
// passes here before it can create or update a portal. The gate decides
// under the chat's lock, releases it, and only then hands the event on, in
// the chat's order (see chats.go).
func (g *Gate) Queue(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
	if !g.started.Load() {
		return bridgev2.EventHandlingResultFailed.WithError(ErrNotStarted)
	}
	key := evt.GetPortalKey()
	log := login.Log.With().Str("portal_id", g.ShownPortal(key.ID)).Str("portal_receiver", g.ShownLogin(key.Receiver)).
		Stringer("event_type", evt.GetType()).Logger()
	ctx := log.WithContext(g.bg)
	if mv, ok := evt.(remote.PortalMove); ok {
		if from, to := mv.MovesPortal(); to.ID != "" {
			if err := g.movePortal(ctx, from, to); err != nil {
				return bridgev2.EventHandlingResultFailed.WithError(err)
			}
		}
	}

	sender := evt.GetSender()
	var remoteUser networkid.UserID
	if !sender.IsFromMe && sender.Sender != "" {
		remoteUser = sender.Sender
	}
	chat, ident := g.identify(ctx, login, key, remoteUser, evt)
	if g.redeemClaim(ctx, evt, key, chat, ident) {
		return bridgev2.EventHandlingResultIgnored
	}
	g.closeIfDue(ctx, networkOf(string(key.ID)))
	hasRoom := g.hasRoomInApprovalMode(ctx, key)

	lock := g.lockChat(key)
	d := g.decideInbound(ctx, login, evt, key, chat, ident, hasRoom)
	var t *turn
	if d.pass {
		t = lock.takeTurn()
	}
	lock.unlock()

	if d.created != nil {
		g.notifyRequest(ctx, *d.created)
	}
	if !d.pass {
		return d.result
	}
	defer t.done()
	if err := t.wait(ctx); err != nil {
		return bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("%w: %w", remote.ErrTransient, err))
	}
	if d.deliverFirst != 0 {
		// Approved before a restart, or its delivery failed: what was held
		// goes first, or nothing goes.
		if err := g.deliverHeld(ctx, d.deliverFirst); err != nil {
			return bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("held events of request %d must be delivered first: %w", d.deliverFirst, err))
		}
	}
	res := g.Next(login, evt)
	if res.Success {
		g.afterInbound(ctx, login, evt, key, ident)
		g.remindAfterCutOver(ctx, login, evt, key, ident)
	}
	if res.Success {
		g.ensureControlled(ctx, login, key)
	}
	return res
}

// inboundDecision is what the gate decided for a remote event.
type inboundDecision struct {
	// pass: hand the event on (after delivering request deliverFirst, if
	// not 0).
	pass         bool
	deliverFirst int64
	// result is the answer when the event does not pass.
	result bridgev2.EventHandlingResult
	// created is a request that this event created: admins are told.
	created *approval.Request
}

// decideInbound decides for one remote event. The caller holds the chat's
// lock: only the gate's own state is read and written here.
func (g *Gate) decideInbound(ctx context.Context, login *bridgev2.UserLogin, evt bridgev2.RemoteEvent, key networkid.PortalKey,
	chat remote.Chat, ident remote.Identity, hasRoom bool) inboundDecision {
	log := zerolog.Ctx(ctx)
	network := networkOf(string(key.ID))
	st, err := g.state.portal(ctx, key)
	if err != nil {
		return failed(fmt.Errorf("failed to get portal state: %w", err))
	} else if st != nil && st.Revoked {
		log.Debug().Msg("Dropping remote event of a revoked portal")
		return inboundDecision{result: bridgev2.EventHandlingResultIgnored}
	}
	req := policy.Request{
		Network: network, Direction: policy.Inbound, Staff: login.UserMXID,
		Remote: policyRemote(network, ident), ChatID: key.ID, IsGroup: chat.IsGroup,
	}
	var last *approval.Request
	if g.Policy.Policy().Mode(network).KnowsApprovals() {
		if last, err = g.Approvals.LastForChat(ctx, key); err != nil {
			return failed(err)
		}
		req.Approved = approved(last, hasRoom)
	}
	decision := g.evaluate(req, chat)
	switch decision.Verdict {
	case policy.Allow:
		d := inboundDecision{pass: true}
		if last != nil && last.State == approval.StateApproved && !last.Delivered {
			d.deliverFirst = last.ID
		}
		return d
	case policy.Deny:
		if isContent(evt.GetType()) {
			g.logDenied(ctx, login, key, ident, policy.Inbound, decision)
		}
		log.Debug().Str("reason", decision.Reason).Msg("Dropping remote event refused by policy")
		return inboundDecision{result: bridgev2.EventHandlingResultIgnored}
	default:
		return g.hold(ctx, login, evt, key, chat, ident)
	}
}

// failed is the decision for an event the gate could not decide on because
// its own database failed: the connector tries again.
func failed(err error) inboundDecision {
	return inboundDecision{result: bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("%w: %w", remote.ErrTransient, err))}
}

// approved tells whether a chat counts as approved in approval mode: its last
// request was approved, or it was bridged before any request (a portal with
// a room that the gate did not hold).
func approved(last *approval.Request, hasRoom bool) bool {
	if last != nil {
		return last.State == approval.StateApproved
	}
	return hasRoom
}

// hasRoomInApprovalMode tells, in approval and closed modes only, whether the chat's
// portal has a room. It is read before the chat's lock is taken.
func (g *Gate) hasRoomInApprovalMode(ctx context.Context, key networkid.PortalKey) bool {
	if !g.Policy.Policy().Mode(networkOf(string(key.ID))).KnowsApprovals() {
		return false
	}
	portal, err := g.br.GetExistingPortalByKey(ctx, key)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to get portal")
		return false
	}
	return remote.RoomOf(portal) != "" && (portal.Receiver == key.Receiver || portal.Receiver == "")
}

func (g *Gate) logDenied(ctx context.Context, login *bridgev2.UserLogin, key networkid.PortalKey, ident remote.Identity, dir policy.Direction, d policy.Decision) {
	details := map[string]any{"direction": dir, "reason": d.Reason, "mode": d.Mode}
	if d.Rule != nil {
		details["rule"] = d.Rule.String()
	}
	e := audit.Entry{
		Actor: audit.ActorSystem, Action: audit.ActionPolicyDenied, Network: networkOf(string(key.ID)),
		Staff: login.UserMXID, Login: login.ID, Portal: key.ID, Details: audit.Details(details),
	}
	if ident.ID != "" {
		e.Contact = g.Contacts.Key(ident.ID)
	}
	if _, err := g.Audit.Append(ctx, e); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log policy denial")
	}
}

// record counts a message, with media or not, or an activity in the
// registry of outside contacts.
func (g *Gate) record(ctx context.Context, login *bridgev2.UserLogin, key networkid.PortalKey, ident remote.Identity, outbound bool, kind audit.Kind) {
	if ident.ID == "" {
		return
	}
	dir := audit.Inbound
	if outbound {
		dir = audit.Outbound
	}
	network := networkOf(string(key.ID))
	obs := audit.Observation{
		Network: network, RemoteID: ident.ID, Phone: ident.Phone, Username: ident.Username,
		DisplayName: ident.DisplayName, Staff: login.UserMXID, Login: login.ID, Portal: key.ID,
		Direction: dir, Kind: kind, Time: g.now(),
	}
	border := migration.BorderMessage{Network: network, Contact: g.Contacts.Key(ident.ID), Direction: dir, Kind: kind,
		KeepWeeks: g.cfg.Migration.Progress.BorderWeeks, Time: obs.Time}
	if c := g.counts.Load(); c != nil && g.Contacts.Routine(obs) && c.add(ctx, obs, border) {
		return
	}
	// One transaction for the registry and the border count.
	err := g.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := g.Contacts.Record(ctx, obs); err != nil {
			return err
		}
		g.Migration.CountBorder(ctx, border)
		return nil
	})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to record outside contact")
	}
}

// contactIdent is the number or username admins see in a request; nothing
// in a registry that must not keep numbers.
func (g *Gate) contactIdent(ident remote.Identity) string {
	if g.Contacts.Hashed() {
		return ""
	}
	var parts []string
	if ident.Username != "" {
		parts = append(parts, "@"+ident.Username)
	}
	if ident.Phone != "" {
		parts = append(parts, ident.Phone)
	}
	return strings.Join(parts, " / ")
}

func (g *Gate) newRequest(login *bridgev2.UserLogin, key networkid.PortalKey, chat remote.Chat, ident remote.Identity, dir audit.Direction) approval.NewRequest {
	nr := approval.NewRequest{
		Network: networkOf(string(key.ID)), Direction: dir, Staff: login.UserMXID, Login: login.ID, Portal: key,
		IsGroup: chat.IsGroup, ContactName: ident.DisplayName, ContactIdent: g.contactIdent(ident),
	}
	if ident.ID != "" {
		nr.Contact = g.Contacts.Key(ident.ID)
	}
	if chat.IsGroup {
		nr.ChatName = g.ShownName(chat.Name)
		nr.Members = g.membersLabel(chat.Members)
	}
	return nr
}

// maxMembersShown bounds the members a group's request names.
const maxMembersShown = 20

// membersLabel names a group's outside members for admins: their names and
// numbers or usernames (none in hashed mode), the first maxMembersShown.
func (g *Gate) membersLabel(members []remote.Identity) string {
	labels := make([]string, 0, min(len(members), maxMembersShown))
	for _, m := range members {
		if len(labels) == maxMembersShown {
			break
		}
		label := g.ShownName(m.DisplayName)
		if ident := g.contactIdent(m); ident != "" {
			if label != "" {
				label += " (" + ident + ")"
			} else {
				label = ident
			}
		}
		if label != "" {
			labels = append(labels, label)
		}
	}
	out := strings.Join(labels, ", ")
	if more := len(members) - len(labels); more > 0 && out != "" {
		out += fmt.Sprintf(" and %d more", more)
	} else if more > 0 {
		out = fmt.Sprintf("%d members", len(members))
	}
	return out
}

// MaxHeldPayload is the largest payload of a held event. A held event is
// the connector's own record of the message (Telegram: the raw tg.Message;
// WhatsApp: the message proto with its media keys and direct path), from
// which the connector downloads the media when the event is delivered after
// approval: never the file itself, so a payload is a few kilobytes (a
// thumbnail at most). A larger one is refused rather than stored.
const MaxHeldPayload = 256 << 10

// ErrHeldPayloadTooLarge is returned (wrapped) for an event of a chat that
// waits for approval whose payload is over MaxHeldPayload: it is neither
// held nor bridged, and the connector is told it failed.
var ErrHeldPayloadTooLarge = errors.New("the message is too large to be held for approval")

// hold keeps a message, an edit, a reaction or a deletion of a chat that
// waits for approval, in the order they came; other events of such a chat
// (typing, receipts) are dropped. The caller holds the chat's lock.
func (g *Gate) hold(ctx context.Context, login *bridgev2.UserLogin, evt bridgev2.RemoteEvent, key networkid.PortalKey, chat remote.Chat, ident remote.Identity) inboundDecision {
	log := zerolog.Ctx(ctx)
	holdable, ok := evt.(remote.Holdable)
	if !isContent(evt.GetType()) || !ok {
		log.Debug().Msg("Dropping remote event of a chat waiting for approval")
		return inboundDecision{result: bridgev2.EventHandlingResultIgnored}
	}
	payload, err := holdable.HoldPayload()
	if err != nil {
		return inboundDecision{result: bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("failed to serialize event to hold: %w", err))}
	}
	if len(payload) > MaxHeldPayload {
		log.Error().Int("payload_size", len(payload)).Int("max_held_payload", MaxHeldPayload).Msg("Refusing to hold a remote event whose payload is too large")
		return inboundDecision{result: bridgev2.EventHandlingResultFailed.WithError(fmt.Errorf("%w: %d bytes, the limit is %d",
			ErrHeldPayloadTooLarge, len(payload), MaxHeldPayload))}
	}
	ts := g.now()
	if withTS, ok := evt.(bridgev2.RemoteEventWithTimestamp); ok && !withTS.GetTimestamp().IsZero() {
		ts = withTS.GetTimestamp()
	}
	req, created, err := g.Approvals.Hold(ctx, g.newRequest(login, key, chat, ident, audit.Inbound),
		approval.HeldMessage{Time: ts, Login: login.ID, Payload: payload})
	switch {
	case errors.Is(err, approval.ErrChatDenied):
		log.Debug().Msg("Dropping remote event of a denied chat")
		return inboundDecision{result: bridgev2.EventHandlingResultIgnored}
	case err != nil:
		return failed(err)
	}
	log.Info().Int64("request_id", req.ID).Int64("held", req.HeldCount).Msg("Held remote event for approval")
	d := inboundDecision{result: bridgev2.EventHandlingResultSuccess}
	if created {
		d.created = &req
	}
	return d
}

// ensureControlled puts a portal that has a room under the admins' control
// once: the admins get power level 100, and portal_created is logged.
func (g *Gate) ensureControlled(ctx context.Context, login *bridgev2.UserLogin, key networkid.PortalKey) {
	portal, err := g.br.GetExistingPortalByKey(ctx, key)
	room := remote.RoomOf(portal)
	if err != nil || room == "" {
		return
	}
	st, err := g.state.portal(ctx, key)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to get portal state")
		return
	} else if st != nil && st.RoomID == room {
		return
	}
	if err = g.applyAdminPowerLevels(ctx, portal); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to give admins their power level in portal")
	}
	staff := login.UserMXID
	ps := &PortalState{Key: key, Network: networkOf(string(key.ID)), Staff: staff, RoomID: room, ControlledAt: g.now()}
	if err = g.state.putControlled(ctx, ps); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to store portal state")
		return
	}
	_, err = g.Audit.Append(ctx, audit.Entry{
		Actor: audit.ActorSystem, Action: audit.ActionPortalCreated, Network: ps.Network, Staff: staff,
		Login: login.ID, Portal: key.ID,
		Details: audit.Details(map[string]any{"room_id": room, "receiver": key.Receiver}),
	})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log portal creation")
	}
}

// applyAdminPowerLevels gives every configured admin power level 100.
func (g *Gate) applyAdminPowerLevels(ctx context.Context, portal *bridgev2.Portal) error {
	if len(g.cfg.Admins) == 0 {
		return nil
	}
	pl, err := g.br.Matrix.GetPowerLevels(ctx, portal.MXID)
	if err != nil {
		return fmt.Errorf("failed to get power levels: %w", err)
	}
	changed := false
	for _, admin := range g.cfg.Admins {
		if pl.GetUserLevel(admin) < AdminPowerLevel {
			pl.SetUserLevel(admin, AdminPowerLevel)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	_, err = g.br.Bot.SendState(ctx, portal.MXID, eventPowerLevels, "", contentOf(pl), time.Time{})
	return err
}

// AdminPowerLevel is the power level of configured admins in every portal.
const AdminPowerLevel = 100
