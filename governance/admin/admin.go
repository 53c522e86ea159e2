// Package admin is the admins' side of governance: the gov-* bot commands,
// approval by reaction in the admin room, and the authenticated HTTP admin
// API. It drives the gate (package governance/gate) and wires it into the
// Matrix connector; Governance is the gateway component that does both.
package admin

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
)

// Governance is the gate with its admin commands, reaction handling and
// HTTP API: the gateway component of governance.
type Governance struct {
	*gate.Gate
	// APIReadTimeout and APIWriteTimeout bound the admin API's requests
	// and responses (each write of a streamed export); 0 takes
	// DefaultAPIReadTimeout and DefaultAPIWriteTimeout.
	APIReadTimeout, APIWriteTimeout time.Duration
}

// New returns the governance component around g.
func New(g *gate.Gate) *Governance {
	return &Governance{Gate: g}
}

// Init registers the commands, and on a real Matrix connector the HTTP API,
// the room guard and the reaction handler. No I/O.
func (gv *Governance) Init(br *bridgev2.Bridge) {
	gv.Gate.Init(br)
	if proc, ok := br.Commands.(*commands.Processor); ok {
		proc.AddHandlers(gv.Commands()...)
		proc.AddHandlers(gv.migrationCommands()...)
	}
	if mc, ok := br.Matrix.(*matrix.Connector); ok {
		gv.EncryptAdminRoom = mc.Crypto != nil
		// The bridge keeps encrypting a portal whose encryption staff try
		// to remove, until Guard has undone it. The bot's client was made
		// before this, with the store it had then.
		keeper := gate.KeepEncryption(mc.AS.StateStore)
		mc.AS.StateStore = keeper
		mc.AS.BotIntent().Client.StateStore = keeper
		mc.AS.Router.Handle(APIPrefix, gv.APIHandler())
		mc.AS.Router.Handle(ProgressPrefix, gv.ProgressHandler())
		for _, t := range gate.GuardedEventTypes {
			mc.EventProcessor.On(t, gv.Guard)
		}
		mc.EventProcessor.On(event.EventReaction, gv.HandleReaction)
	}
}

// HandleReaction decides a request when a configured admin reacts ✅ or ❌
// on its notice in the admin room. Other reactions are left alone.
func (gv *Governance) HandleReaction(ctx context.Context, evt *event.Event) {
	if !gv.IsAdminRoom(evt.RoomID) {
		return
	}
	_ = evt.Content.ParseRaw(evt.Type)
	content, ok := evt.Content.Parsed.(*event.ReactionEventContent)
	if !ok {
		return
	}
	key := content.RelatesTo.Key
	if key != gate.ReactionApprove && key != gate.ReactionDeny {
		return
	}
	log := zerolog.Ctx(ctx).With().Stringer("event_id", evt.ID).Stringer("sender", evt.Sender).Logger()
	ctx = log.WithContext(ctx)
	reqID, found, err := gv.RequestForNotice(ctx, content.RelatesTo.EventID)
	if err != nil {
		log.Err(err).Msg("Failed to look up request notice")
		return
	} else if !found {
		return
	}
	if !gv.IsAdmin(evt.Sender) {
		gv.reply(ctx, evt.RoomID, "%s: only the organisation's governance admins may decide requests.", evt.Sender)
		return
	}
	if key == gate.ReactionApprove {
		req, err := gv.Approve(ctx, evt.Sender, reqID)
		if err != nil {
			gv.reply(ctx, evt.RoomID, "Could not approve request #%d: %v", reqID, err)
			return
		}
		gv.reply(ctx, evt.RoomID, "Request #%d approved by %s: %d held message(s) delivered.", req.ID, evt.Sender, req.HeldCount)
	} else {
		req, err := gv.Deny(ctx, evt.Sender, reqID, "denied by reaction")
		if err != nil {
			gv.reply(ctx, evt.RoomID, "Could not deny request #%d: %v", reqID, err)
			return
		}
		gv.reply(ctx, evt.RoomID, "Request #%d denied by %s: %d held message(s) discarded.", req.ID, evt.Sender, req.HeldCount)
	}
}

func (gv *Governance) reply(ctx context.Context, roomID id.RoomID, format string, args ...any) {
	if err := gv.Notice(ctx, roomID, format, args...); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to reply in admin room")
	}
}

// verify verifies the audit log, and against a published head if one is
// given (a mismatch is one more problem of the report).
func (gv *Governance) verify(ctx context.Context, published *audit.Anchor) (audit.Report, error) {
	report, err := gv.Audit.Verify(ctx)
	if err != nil || published == nil {
		return report, err
	}
	problem, err := gv.Audit.CheckPublished(ctx, *published)
	if err != nil {
		return audit.Report{}, err
	} else if problem != nil {
		report.Problems = append(report.Problems, *problem)
	}
	return report, nil
}

// logAction writes an admin_action entry.
func (gv *Governance) logAction(ctx context.Context, actor string, details map[string]any) {
	if _, err := gv.Audit.Append(ctx, audit.Entry{Actor: actor, Action: audit.ActionAdminAction, Details: audit.Details(details)}); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log admin action")
	}
}
