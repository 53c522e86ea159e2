package gate

import (
	"context"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// movePortal carries a chat's governance state to the new key of its portal
// (remote.PortalMove): its revocation (revoked if either key was) and its
// requests with their decisions, under both chats' locks so that no
// decision on either runs meanwhile. It runs again harmlessly when the same
// move is told twice.
func (g *Gate) movePortal(ctx context.Context, from, to networkid.PortalKey) error {
	first, second := from, to
	if string(to.ID)+"\x00"+string(to.Receiver) < string(from.ID)+"\x00"+string(from.Receiver) {
		first, second = to, from
	}
	l1 := g.lockChat(first)
	defer l1.unlock()
	l2 := g.lockChat(second)
	defer l2.unlock()
	if err := g.state.movePortal(ctx, from, to); err != nil {
		return err
	}
	if err := g.Approvals.MoveChat(ctx, from, to); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str("to_portal_id", g.ShownPortal(to.ID)).Msg("Carried a chat's governance state to its portal's new key")
	return nil
}
