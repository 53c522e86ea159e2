package gate

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/approval"
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
	unlock := g.lockChat(cur.Portal)
	defer unlock()
	req, err := g.Approvals.Approve(ctx, reqID, admin, "")
	if err != nil {
		return approval.Request{}, err
	}
	if err = g.deliver(ctx, req); err != nil {
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
	unlock := g.lockChat(cur.Portal)
	defer unlock()
	req, err := g.Approvals.Deny(ctx, reqID, admin, reason)
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

// deliver replays the held events of an approved request through the next
// queue, then marks it delivered. The caller holds the chat lock.
func (g *Gate) deliver(ctx context.Context, req approval.Request) error {
	held, err := g.Approvals.Held(ctx, req.ID)
	if err != nil {
		return err
	}
	login, err := g.br.GetExistingUserLoginByID(ctx, req.Login)
	if err != nil {
		return fmt.Errorf("failed to get login: %w", err)
	} else if login == nil {
		return fmt.Errorf("%w: %s", ErrLoginGone, req.Login)
	}
	if len(held) > 0 {
		decoder, ok := login.Client.(remote.HeldEventDecoder)
		if !ok {
			return fmt.Errorf("the %s connector cannot decode held events", req.Network)
		}
		for _, m := range held {
			evt, err := decoder.DecodeHeldEvent(ctx, login, m.Payload)
			if err != nil {
				zerolog.Ctx(ctx).Err(err).Int64("request_id", req.ID).Int64("order", m.Order).Msg("Dropping held event that cannot be decoded")
				continue
			}
			res := g.Next(login, evt)
			if !res.Success {
				return fmt.Errorf("failed to deliver held event %d: %w", m.Order, res.Error)
			}
			sender := evt.GetSender()
			var remoteUser = sender.Sender
			if sender.IsFromMe {
				remoteUser = ""
			}
			_, ident := g.describe(ctx, login, evt.GetPortalKey(), remoteUser)
			g.record(ctx, login, evt.GetPortalKey(), ident, sender.IsFromMe)
			g.ensureControlled(ctx, login, evt.GetPortalKey())
		}
	}
	return g.Approvals.MarkDelivered(ctx, req.ID)
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
		unlock := g.lockChat(req.Portal)
		// Another path may have delivered it meanwhile.
		if cur, err := g.Approvals.Get(ctx, req.ID); err == nil && !cur.Delivered {
			if err = g.deliver(ctx, cur); err != nil {
				zerolog.Ctx(ctx).Err(err).Int64("request_id", req.ID).Msg("Failed to replay held events")
			}
		}
		unlock()
	}
}
