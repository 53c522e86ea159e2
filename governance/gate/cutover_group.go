package gate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
)

// maxMissingShown bounds the names of the pinned "still missing" notice.
const maxMissingShown = 50

// cutOverGroup cuts a group portal over once every outside member the
// gateway knows in it is linked; until then it pins a notice in the portal
// naming who is missing.
func (g *Gate) cutOverGroup(ctx context.Context, portal *bridgev2.Portal, actor id.UserID) (*CutOverResult, error) {
	g.recordGroupMembers(ctx, portal)
	rows, err := g.Migration.ChatContacts(ctx, portal.PortalKey)
	if err != nil {
		return nil, err
	}
	contacts := migration.DistinctContacts(rows)
	if len(contacts) == 0 {
		return nil, ErrCutOverNoContact
	}
	var missing []string
	var linked []id.UserID
	var idents []migration.Identity
	for _, c := range contacts {
		if !c.Linked() {
			missing = append(missing, g.Migration.ContactName(ctx, c.Identity))
			continue
		}
		idents = append(idents, c.Identity)
		if !slices.Contains(linked, c.MatrixID) {
			linked = append(linked, c.MatrixID)
		}
	}
	staff, login, err := g.portalStaff(ctx, portal, actor)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		evtID, err := g.pinMissing(ctx, portal, missing)
		if err != nil {
			return nil, err
		}
		return &CutOverResult{Missing: missing, PinnedNotice: evtID}, nil
	}
	if login == nil {
		return nil, ErrCutOverNoLogin
	}
	invite := append(slices.Clone(staff), linked...)
	newRoom, err := g.createByBot(ctx, g.portalName(portal), invite, staff, false)
	if err != nil {
		return nil, err
	}
	res := &CutOverResult{}
	if res.Final, err = g.sendFinal(ctx, portal, login, newRoom, login.UserMXID); err != nil {
		return nil, fmt.Errorf("the native room %s is ready, but the final message could not be sent in the group (nothing else changed; run cut-over again to retry): %w", newRoom, err)
	}
	if err = g.tombstone(ctx, portal, newRoom); err != nil {
		return nil, err
	}
	res.CutOver, err = g.Migration.RecordCutOver(ctx, migration.CutOver{
		Portal: portal.PortalKey, Network: networkOf(string(portal.ID)), Kind: migration.KindGroup, OldRoom: portal.MXID,
		NewRoom: newRoom, Staff: login.UserMXID, Actor: string(actor), CreatedAs: migration.CreatedAsBot,
	}, idents)
	if err != nil {
		return nil, err
	}
	zerolog.Ctx(ctx).Info().Stringer("new_room", newRoom).Int("members", len(invite)).Msg("Cut group portal over to a native Matrix room")
	return res, nil
}

// recordGroupMembers records, as seen in the portal, every outside member
// of the group the connector knows (remote.Describer, at most
// remote.MaxChatMembers), so that a member who never wrote counts as
// missing or is invited like the others.
func (g *Gate) recordGroupMembers(ctx context.Context, portal *bridgev2.Portal) {
	ups, err := g.br.DB.UserPortal.GetAllInPortal(ctx, portal.PortalKey)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to get the portal's logins")
		return
	}
	var logins []*bridgev2.UserLogin
	for _, up := range ups {
		if l := g.br.GetCachedUserLoginByID(up.LoginID); l != nil && l.Client != nil {
			logins = append(logins, l)
		}
	}
	for _, login := range logins {
		describer, ok := login.Client.(remote.Describer)
		if !ok {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, describeTimeout)
		chat, err := describer.DescribeChat(dctx, portal.PortalKey)
		cancel()
		if err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Connector could not describe the group")
			continue
		}
		network := networkOf(string(portal.ID))
		for _, m := range chat.Members[:min(len(chat.Members), remote.MaxChatMembers)] {
			if m.ID == "" || slices.ContainsFunc(logins, func(l *bridgev2.UserLogin) bool { return l.Client.IsThisUser(ctx, m.ID) }) {
				continue
			}
			if _, err = g.Contacts.Record(ctx, audit.Observation{Network: network, RemoteID: m.ID, Phone: m.Phone, Username: m.Username,
				DisplayName: m.DisplayName, Staff: login.UserMXID, Login: login.ID, Portal: portal.ID, Kind: audit.KindSeen}); err != nil {
				zerolog.Ctx(ctx).Err(err).Msg("Failed to record a group member")
			}
		}
		return
	}
}

// portalStaff returns the staff members with a login in the portal, and the
// connected login to send with: the actor's if they have one, else the
// first.
func (g *Gate) portalStaff(ctx context.Context, portal *bridgev2.Portal, actor id.UserID) ([]id.UserID, *bridgev2.UserLogin, error) {
	ups, err := g.br.DB.UserPortal.GetAllInPortal(ctx, portal.PortalKey)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to get the portal's logins: %w", err)
	}
	var staff []id.UserID
	var login *bridgev2.UserLogin
	for _, up := range ups {
		l := g.br.GetCachedUserLoginByID(up.LoginID)
		if l == nil {
			continue
		}
		if !slices.Contains(staff, l.UserMXID) {
			staff = append(staff, l.UserMXID)
		}
		if l.Client == nil || !l.Client.IsLoggedIn() {
			continue
		}
		if login == nil || (l.UserMXID == actor && login.UserMXID != actor) {
			login = l
		}
	}
	return staff, login, nil
}

// pinMissing posts the "still missing" notice in the group portal and pins
// it in place of the previous one (other pinned events stay).
func (g *Gate) pinMissing(ctx context.Context, portal *bridgev2.Portal, missing []string) (id.EventID, error) {
	shown := missing
	if len(shown) > maxMissingShown {
		shown = shown[:maxMissingShown]
	}
	text := fmt.Sprintf("**Before this group moves to Matrix**, %d member(s) still need a Matrix account in the organisation's directory: %s",
		len(missing), strings.Join(shown, ", "))
	if more := len(missing) - len(shown); more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	text += ". Once they are linked (claim-code, or an admin's gov-directory add), run `cut-over` again."
	evtID, err := g.sendNotice(ctx, portal.MXID, text)
	if err != nil {
		return "", fmt.Errorf("failed to post the missing members notice: %w", err)
	}
	_, old, err := g.Migration.Pin(ctx, portal.PortalKey)
	if err != nil {
		return "", err
	}
	var pinned []id.EventID
	if rs, ok := g.br.Matrix.(bridgev2.MatrixConnectorWithArbitraryRoomState); ok {
		if evt, err := rs.GetStateEvent(ctx, portal.MXID, event.StatePinnedEvents, ""); err == nil && evt != nil {
			_ = evt.Content.ParseRaw(event.StatePinnedEvents)
			if c, ok := evt.Content.Parsed.(*event.PinnedEventsEventContent); ok {
				pinned = slices.DeleteFunc(slices.Clone(c.Pinned), func(e id.EventID) bool { return e == old })
			}
		}
	}
	pinned = append(pinned, evtID)
	_, err = g.br.Bot.SendState(ctx, portal.MXID, event.StatePinnedEvents, "", &event.Content{Parsed: &event.PinnedEventsEventContent{Pinned: pinned}}, time.Time{})
	if err != nil {
		return "", fmt.Errorf("failed to pin the missing members notice: %w", err)
	}
	if err = g.Migration.SetPin(ctx, portal.PortalKey, portal.MXID, evtID); err != nil {
		return "", err
	}
	return evtID, nil
}
