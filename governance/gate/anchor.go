package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
)

// PublishedHead is a head of the audit chain as posted in the admin room.
type PublishedHead struct {
	Head    audit.Head
	RoomID  id.RoomID
	EventID id.EventID
	// Entry is the head_published entry that records the post (it follows
	// the published head).
	Entry audit.Entry
}

// HeadNotice is the text that publishes head in the admin room.
func HeadNotice(h audit.Head) string {
	if h.Seq == 0 {
		return "**Audit chain head:** the log is empty."
	}
	return fmt.Sprintf("**Audit chain head:** entry %d, hash `%s` (the chain starts after entry %d, hash `%s`).\n\n"+
		"Keep this message: `gov-verify %d %s` shows later whether the log was truncated or rewritten since.",
		h.Seq, h.Hash, h.Anchor.Seq, h.Anchor.Hash, h.Seq, h.Hash)
}

// PublishHead posts the audit chain's head in the admin room, so that a copy
// of it lives outside the database, and records the post (head_published,
// by actor) in the log.
func (g *Gate) PublishHead(ctx context.Context, actor string) (PublishedHead, error) {
	if !g.started.Load() {
		return PublishedHead{}, ErrNotStarted
	}
	h, err := g.Audit.Head(ctx)
	if err != nil {
		return PublishedHead{}, err
	}
	roomID, err := g.AdminRoom(ctx)
	if err != nil {
		return PublishedHead{}, err
	}
	evtID, err := g.sendNotice(ctx, roomID, HeadNotice(h))
	if err != nil {
		return PublishedHead{}, fmt.Errorf("failed to post audit chain head: %w", err)
	}
	entry, err := g.Audit.Append(ctx, audit.Entry{Actor: actor, Action: audit.ActionHeadPublished, Details: audit.Details(map[string]any{
		"head_seq": h.Seq, "head_hash": h.Hash, "anchor_seq": h.Anchor.Seq, "room_id": roomID, "event_id": evtID,
	})})
	if err != nil {
		return PublishedHead{}, err
	}
	return PublishedHead{Head: h, RoomID: roomID, EventID: evtID, Entry: entry}, nil
}

// publishHeadIfDue publishes the head when audit_anchor_interval has passed
// since the last publication (by the gate's clock; since the oldest entry
// when there was none) and the chain has moved since.
func (g *Gate) publishHeadIfDue(ctx context.Context) error {
	interval := time.Duration(g.cfg.AuditAnchorInterval)
	if interval <= 0 || (len(g.cfg.Admins) == 0 && g.cfg.AdminRoom == "") {
		return nil
	}
	last, err := g.Audit.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionHeadPublished}, Descending: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(last) == 0 {
		// Never published: due an interval after the oldest entry, so
		// that a new gateway does not post at its first start.
		if last, err = g.Audit.List(ctx, audit.Filter{Limit: 1}); err != nil || len(last) == 0 {
			return err
		}
	} else {
		h, err := g.Audit.Head(ctx)
		if err != nil {
			return err
		} else if h.Seq == last[0].Seq {
			return nil // nothing happened since
		}
	}
	if g.now().Sub(last[0].Time) < interval {
		return nil
	}
	published, err := g.PublishHead(ctx, audit.ActorSystem)
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Int64("head_seq", published.Head.Seq).Str("head_hash", published.Head.Hash).Msg("Published audit chain head")
	return nil
}

// anchorCheckInterval is how often the gate looks whether the head is due:
// AnchorInterval, or audit_anchor_interval when that is shorter.
func (g *Gate) anchorCheckInterval() time.Duration {
	interval := time.Duration(g.cfg.AuditAnchorInterval)
	if interval <= 0 || g.AnchorInterval <= 0 {
		return 0
	}
	return min(interval, g.AnchorInterval)
}
