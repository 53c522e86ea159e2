package gate

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/approval"
	"github.com/passerelle/passerelle/governance/policy"
)

// ErrLoginGone is returned (wrapped) when the login of an approved request
// no longer exists, so its held events cannot be delivered.
var ErrLoginGone = errors.New("the staff member's login no longer exists")

// Approve approves request reqID on behalf of admin and delivers the events
// it held, in order and with their original timestamps.
func (g *Gate) Approve(ctx context.Context, admin id.UserID, reqID int64) (approval.Request, error) {
	if !g.started.Load() {
		return approval.Request{}, ErrNotStarted
	}
	cur, err := g.Approvals.Get(ctx, reqID)
	if err != nil {
		return approval.Request{}, err
	}
	lock := g.lockChat(cur.Portal)
	req, err := g.Approvals.Approve(ctx, reqID, admin, "")
	if err != nil {
		lock.unlock()
		return approval.Request{}, err
	}
	t := lock.takeTurn()
	lock.unlock()
	if err = g.deliverInTurn(ctx, t, req.ID); err != nil {
		zerolog.Ctx(ctx).Err(err).Int64("request_id", reqID).Msg("Failed to deliver held events")
		return req, fmt.Errorf("request %d was approved, but its held messages could not be delivered yet: %w", reqID, err)
	}
	g.tellStaff(ctx, req, fmt.Sprintf("An admin approved your %s chat with %s (request #%d): it is now bridged.",
		networkName(req.Network), contactLabel(req), req.ID))
	return req, nil
}

// Deny denies request reqID on behalf of admin: the held events are dropped
// (their count is kept), later events of the chat are dropped too, and the
// staff member is told, without the content.
func (g *Gate) Deny(ctx context.Context, admin id.UserID, reqID int64, reason string) (approval.Request, error) {
	if !g.started.Load() {
		return approval.Request{}, ErrNotStarted
	}
	cur, err := g.Approvals.Get(ctx, reqID)
	if err != nil {
		return approval.Request{}, err
	}
	lock := g.lockChat(cur.Portal)
	req, err := g.Approvals.Deny(ctx, reqID, admin, reason)
	lock.unlock()
	if err != nil {
		return approval.Request{}, err
	}
	g.tellStaffDenied(ctx, req, "An admin denied")
	return req, nil
}

// ExpireDue expires the pending requests whose time is up, as denied.
func (g *Gate) ExpireDue(ctx context.Context) error {
	expired, err := g.Approvals.ExpireDue(ctx)
	for _, req := range expired {
		g.tellStaffDenied(ctx, req, "Nobody approved in time")
		g.sendAdminNotice(ctx, fmt.Sprintf("Request #%d expired unanswered: %d held message(s) discarded.", req.ID, req.HeldCount))
	}
	return err
}

func (g *Gate) tellStaffDenied(ctx context.Context, req approval.Request, who string) {
	g.tellStaff(ctx, req, fmt.Sprintf("%s bridging your %s chat with %s (request #%d). %d held message(s) were discarded, and later messages from that chat will not be bridged.",
		who, networkName(req.Network), contactLabel(req), req.ID, req.HeldCount))
}

// contactLabel names the outside person of a request for the staff member,
// escaped for a markdown notice (EscapeName).
func contactLabel(req approval.Request) string {
	switch {
	case req.ContactName != "":
		return EscapeName(req.ContactName)
	case req.ContactIdent != "":
		return EscapeName(req.ContactIdent)
	default:
		return "an outside contact"
	}
}

// deliverInTurn delivers the held events of request reqID in turn t (taken
// under the chat's lock when the request was approved), then ends the turn.
func (g *Gate) deliverInTurn(ctx context.Context, t *turn, reqID int64) error {
	defer t.done()
	if err := t.wait(ctx); err != nil {
		return err
	}
	return g.deliverHeld(ctx, reqID)
}

// deliverHeld replays the held events of an approved request through the
// next queue, in order, then marks it delivered. It runs in the chat's turn,
// without the chat's lock. Each held event must belong to the request's
// login and chat, and is checked against the rules again: a rule added
// while it waited still refuses it.
func (g *Gate) deliverHeld(ctx context.Context, reqID int64) error {
	req, err := g.Approvals.Get(ctx, reqID)
	if err != nil {
		return fmt.Errorf("%w: %w", remote.ErrTransient, err)
	} else if req.State != approval.StateApproved || req.Delivered {
		return nil // delivered by an earlier turn
	}
	log := zerolog.Ctx(ctx).With().Int64("request_id", req.ID).Logger()
	held, err := g.Approvals.Held(ctx, req.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", remote.ErrTransient, err)
	}
	login, err := g.br.GetExistingUserLoginByID(ctx, req.Login)
	if err != nil {
		return fmt.Errorf("%w: failed to get login: %w", remote.ErrTransient, err)
	} else if login == nil {
		return fmt.Errorf("%w: %s", ErrLoginGone, req.Login)
	}
	if len(held) > 0 {
		decoder, ok := login.Client.(remote.HeldEventDecoder)
		if !ok {
			return fmt.Errorf("the %s connector cannot decode held events", req.Network)
		}
		for _, m := range held {
			if m.Login != req.Login {
				log.Error().Int64("order", m.Order).Str("held_login", g.ShownLogin(m.Login)).Msg("Refusing held event of another login")
				continue
			}
			evt, err := decoder.DecodeHeldEvent(ctx, login, m.Payload)
			if err != nil {
				log.Err(err).Int64("order", m.Order).Msg("Dropping held event that cannot be decoded")
				continue
			}
			key := evt.GetPortalKey()
			if key != req.Portal {
				log.Error().Int64("order", m.Order).Str("event_portal", g.ShownPortal(key.ID)).Str("event_receiver", g.ShownLogin(key.Receiver)).
					Msg("Refusing held event of another chat")
				continue
			}
			sender := evt.GetSender()
			var remoteUser networkid.UserID
			if !sender.IsFromMe {
				remoteUser = sender.Sender
			}
			chat, ident := g.identify(ctx, login, key, remoteUser, evt)
			if decision := g.evaluate(policy.Request{
				Network: req.Network, Direction: policy.Inbound, Staff: login.UserMXID,
				Remote: policyRemote(req.Network, ident), ChatID: key.ID, IsGroup: chat.IsGroup, Approved: true,
			}, chat); decision.Verdict == policy.Deny {
				g.logDenied(ctx, login, key, ident, policy.Inbound, decision)
				log.Info().Int64("order", m.Order).Str("reason", decision.Reason).Msg("Dropping held event refused by a rule")
				continue
			}
			res := g.Next(login, evt)
			if !res.Success && !res.Ignored {
				return fmt.Errorf("failed to deliver held event %d: %w", m.Order, res.Error)
			}
			if res.Success {
				g.afterInbound(ctx, login, evt, key, ident)
			}
			g.ensureControlled(ctx, login, key)
		}
	}
	if err = g.Approvals.MarkDelivered(ctx, req.ID); err != nil {
		return fmt.Errorf("%w: %w", remote.ErrTransient, err)
	}
	return nil
}

// ReplayUndelivered delivers the held events of requests approved before a
// restart that were not delivered yet.
func (g *Gate) ReplayUndelivered(ctx context.Context) {
	reqs, err := g.Approvals.Undelivered(ctx)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to list undelivered approved requests")
		return
	}
	for _, req := range reqs {
		lock := g.lockChat(req.Portal)
		t := lock.takeTurn()
		lock.unlock()
		if err = g.deliverInTurn(ctx, t, req.ID); err != nil {
			zerolog.Ctx(ctx).Err(err).Int64("request_id", req.ID).Msg("Failed to replay held events")
		}
	}
}
