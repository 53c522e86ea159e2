package gate

import (
	"context"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
)

// redeemClaim recognises a claim code that an outside contact sent in a
// direct chat: the code's Matrix user is linked to the contact, told in
// their DM with the bot, and the message is swallowed (never bridged,
// held or counted); the staff member sees nothing. Anything else (not a
// code, a wrong or expired code) is just a message: handled is false.
func (g *Gate) redeemClaim(ctx context.Context, evt bridgev2.RemoteEvent, key networkid.PortalKey, chat remote.Chat, ident remote.Identity) (handled bool) {
	if g.Migration == nil || (evt.GetType() != bridgev2.RemoteEventMessage && evt.GetType() != bridgev2.RemoteEventMessageUpsert) || chat.IsGroup || ident.ID == "" || evt.GetSender().IsFromMe {
		return false
	}
	tc, ok := evt.(remote.TextCarrier)
	if !ok {
		return false
	}
	text := tc.PlainText()
	if !migration.LooksLikeClaim(text) {
		return false
	}
	log := zerolog.Ctx(ctx)
	network := networkOf(string(key.ID))
	claim, ok, err := g.Migration.Redeem(ctx, migration.Identity{Network: network, Contact: g.Contacts.Key(ident.ID)}, text)
	if err != nil {
		log.Err(err).Msg("Failed to redeem claim code")
		return false
	} else if !ok {
		return false
	}
	if _, err = g.Contacts.Record(ctx, audit.Observation{Network: network, RemoteID: ident.ID, Phone: ident.Phone,
		Username: ident.Username, DisplayName: ident.DisplayName, Kind: audit.KindSeen}); err != nil {
		log.Err(err).Msg("Failed to record claiming contact")
	}
	log.Info().Stringer("matrix_id", claim.MatrixID).Msg("Outside contact claimed a Matrix account")
	if claim.RoomID != "" {
		if err = g.Notice(ctx, claim.RoomID, "Linked: the %s account that sent your code is now linked to %s in the organisation's directory.", networkName(network), claim.MatrixID); err != nil {
			log.Err(err).Msg("Failed to confirm claim to the claimant")
		}
	}
	return true
}
