package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/migration"
)

// Cut-over (README "Migrating an organisation"): a portal moves to a native,
// end-to-end encrypted Matrix room. The gate creates the room, says goodbye
// on the network through the portal's login (the connector's own send path,
// with the outbound check), puts a tombstone in the portal and records it.
// From then on, new Matrix messages in the portal are refused with a notice
// naming the new room, and what the contact still sends is delivered as
// before while the contact is reminded, at most once per interval, that the
// chat moved.
//
// A note on the tombstone: bridgev2 handles a tombstone (also the bot's own)
// by moving the portal to the replacement room. The new room is never the
// bot's: the staff member creates it with double puppeting, or the bot
// creates it, hands it over (power 100 to the people) and leaves it, so the
// bot cannot join the replacement room and the portal stays where it is.

// Errors of a cut-over; the admin commands show them to the person who ran
// it.
var (
	ErrCutOverNoRoom    = errors.New("this chat has no Matrix room")
	ErrCutOverNotLinked = errors.New("not linked in the directory")
	ErrCutOverNoLogin   = errors.New("no connected login can send in this chat")
	ErrCutOverNoContact = errors.New("the gateway does not know the outside contact of this chat yet")
)

// CutOverResult is what a cut-over did, or for a group, who is missing.
type CutOverResult struct {
	// CutOver is the recorded cut-over (nil for a group that waits).
	CutOver *migration.CutOver
	// Missing names the group's members who have no confirmed Matrix
	// account (nothing was created); PinnedNotice is the portal's pinned
	// notice listing them.
	Missing      []string
	PinnedNotice id.EventID
	// Final is the final message sent on the network.
	Final string
}

// cutOverSendKey marks the context of the gate's own messages to a
// contact (final message, reminder): the outbound check lets them through a
// cut-over portal (the policy still applies).
type cutOverSendKey struct{}

func isCutOverSend(ctx context.Context) bool { v, _ := ctx.Value(cutOverSendKey{}).(bool); return v }

// RoomLink is the matrix.to link of a room.
func RoomLink(roomID id.RoomID) string {
	link := "https://matrix.to/#/" + string(roomID)
	if server := roomServer(roomID); server != "" {
		link += "?via=" + server
	}
	return link
}

func roomServer(roomID id.RoomID) string {
	_, server, ok := strings.Cut(string(roomID), ":")
	if !ok {
		return ""
	}
	return server
}

// fillTemplate fills {new_link}, {staff} and {room_id} of a template.
func fillTemplate(tpl string, newRoom id.RoomID, staff id.UserID) string {
	return strings.NewReplacer("{new_link}", RoomLink(newRoom), "{room_id}", string(newRoom), "{staff}", string(staff)).Replace(tpl)
}

// CutOverPortal cuts the portal over to a native Matrix room, as actor (the
// staff member of a direct chat, a staff member of the group, or an admin).
// A direct chat needs its contact linked (confirmed) in the directory; a
// group needs every outside member linked, else the portal gets a pinned
// notice of who is missing and the result lists them.
func (g *Gate) CutOverPortal(ctx context.Context, portal *bridgev2.Portal, actor id.UserID) (*CutOverResult, error) {
	if !g.started.Load() {
		return nil, ErrNotStarted
	}
	if remote.RoomOf(portal) == "" {
		return nil, ErrCutOverNoRoom
	}
	if c, err := g.Migration.CutOverOf(ctx, portal.PortalKey); err != nil {
		return nil, err
	} else if c != nil {
		return nil, fmt.Errorf("%w: it moved to %s on %s", migration.ErrAlreadyCutOver, c.NewRoom, c.At.Format("2006-01-02 15:04"))
	}
	log := zerolog.Ctx(ctx).With().Str("portal_id", g.ShownPortal(portal.ID)).Str("action", "cut-over").Logger()
	ctx = log.WithContext(ctx)
	if portal.Receiver != "" {
		return g.cutOverDM(ctx, portal, actor)
	}
	return g.cutOverGroup(ctx, portal, actor)
}

func (g *Gate) cutOverDM(ctx context.Context, portal *bridgev2.Portal, actor id.UserID) (*CutOverResult, error) {
	login := g.br.GetCachedUserLoginByID(portal.Receiver)
	if login == nil || login.Client == nil || !login.Client.IsLoggedIn() {
		return nil, ErrCutOverNoLogin
	}
	contact, err := g.dmContact(ctx, portal)
	if err != nil {
		return nil, err
	}
	if !contact.Linked() {
		name := g.Migration.ContactName(ctx, contact.Identity)
		if contact.MatrixID != "" {
			return nil, fmt.Errorf("%s is %w: the link to %s is still pending (an admin confirms it with gov-directory confirm, or the contact with a claim code)",
				name, ErrCutOverNotLinked, contact.MatrixID)
		}
		return nil, fmt.Errorf("%s is %w: an admin adds the link (gov-directory add), the contact claims it (claim-code), or you propose it (link-contact)",
			name, ErrCutOverNotLinked)
	}
	staff := login.UserMXID
	newRoom, createdAs, err := g.createNativeDM(ctx, login.User, contact.MatrixID, portal)
	if err != nil {
		return nil, err
	}
	res := &CutOverResult{}
	if res.Final, err = g.sendFinal(ctx, portal, login, newRoom, staff); err != nil {
		return nil, fmt.Errorf("the native room %s is ready, but the final message could not be sent on %s (nothing else changed; run cut-over again to retry): %w",
			newRoom, networkName(networkOf(string(portal.ID))), err)
	}
	if err = g.tombstone(ctx, portal, newRoom); err != nil {
		return nil, err
	}
	res.CutOver, err = g.Migration.RecordCutOver(ctx, migration.CutOver{
		Portal: portal.PortalKey, Network: networkOf(string(portal.ID)), Kind: migration.KindDM, OldRoom: portal.MXID,
		NewRoom: newRoom, Staff: staff, Contact: contact.Contact, Actor: string(actor), CreatedAs: createdAs,
	}, []migration.Identity{contact.Identity})
	if err != nil {
		return nil, err
	}
	zerolog.Ctx(ctx).Info().Stringer("new_room", newRoom).Str("created_as", createdAs).Msg("Cut portal over to a native Matrix room")
	return res, nil
}

// dmContact is the outside contact of a direct chat portal: its other user
// (as bridgev2 knows it), else the one contact the registry saw there.
func (g *Gate) dmContact(ctx context.Context, portal *bridgev2.Portal) (migration.PortalContact, error) {
	if portal.OtherUserID != "" {
		ident := migration.Identity{Network: networkOf(string(portal.ID)), Contact: g.Contacts.Key(networkid.UserID(portal.OtherUserID))}
		pc := migration.PortalContact{Identity: ident}
		link, err := g.Migration.Get(ctx, ident)
		if err != nil {
			return pc, err
		} else if link != nil {
			pc.MatrixID, pc.LinkState = link.MatrixID, link.State
		}
		return pc, nil
	}
	rows, err := g.Migration.ChatContacts(ctx, portal.PortalKey)
	if err != nil {
		return migration.PortalContact{}, err
	}
	contacts := migration.DistinctContacts(rows)
	if len(contacts) != 1 {
		return migration.PortalContact{}, ErrCutOverNoContact
	}
	return contacts[0], nil
}

// encryptionState is the initial m.room.encryption of a native room.
func encryptionState() *event.Event {
	return &event.Event{Type: event.StateEncryption, StateKey: new(string),
		Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}
}

// createNativeDM finds or creates the native encrypted DM between the staff
// member and the contact: as the staff member with double puppeting
// (reusing a direct room of theirs with just the two of them), else as the
// bot, which invites both, makes both admins, says so and leaves.
func (g *Gate) createNativeDM(ctx context.Context, user *bridgev2.User, contact id.UserID, portal *bridgev2.Portal) (id.RoomID, string, error) {
	log := zerolog.Ctx(ctx)
	if dp := user.DoublePuppet(ctx); dp != nil {
		if existing := g.existingDirectRoom(ctx, dp, user.MXID, contact); existing != "" {
			return existing, migration.CreatedAsStaff, nil
		}
		roomID, err := dp.CreateRoom(ctx, &mautrix.ReqCreateRoom{
			Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{contact},
			InitialState: []*event.Event{encryptionState()},
		})
		if err == nil {
			g.markDirect(ctx, dp, contact, roomID)
			return roomID, migration.CreatedAsStaff, nil
		}
		log.Warn().Err(err).Msg("Failed to create the native room with double puppeting; the bot creates it")
	}
	name := g.portalName(portal)
	roomID, err := g.createByBot(ctx, name, []id.UserID{user.MXID, contact}, []id.UserID{user.MXID, contact}, true)
	if err != nil {
		return "", "", err
	}
	return roomID, migration.CreatedAsBot, nil
}

func (g *Gate) portalName(portal *bridgev2.Portal) string {
	if portal.Name != "" {
		return portal.Name
	}
	return "Direct chat"
}

// createByBot creates an encrypted room as the bot, inviting invite and
// giving admins power 100; the bot says who made it and leaves, so that the
// room is the people's and never a portal.
func (g *Gate) createByBot(ctx context.Context, name string, invite, admins []id.UserID, direct bool) (id.RoomID, error) {
	bot := g.br.Bot.GetMXID()
	pl := &event.PowerLevelsEventContent{Users: map[id.UserID]int{bot: 100}}
	for _, u := range admins {
		pl.Users[u] = 100
	}
	roomID, err := g.br.Bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: name, IsDirect: direct, Invite: invite,
		InitialState: []*event.Event{encryptionState()}, PowerLevelOverride: pl,
	})
	if err != nil {
		return "", fmt.Errorf("failed to create the native room: %w", err)
	}
	text := fmt.Sprintf("This encrypted room replaces a bridged chat. The bridge bot created it because double puppeting is off; %s are its admins. The bot now leaves: nothing here is bridged.",
		joinUsers(admins))
	if _, err = g.sendNotice(ctx, roomID, text); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to post the hand-over notice in the native room")
	}
	_, err = g.br.Bot.SendState(ctx, roomID, event.StateMember, bot.String(),
		&event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipLeave}}, time.Time{})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to leave the native room")
	}
	return roomID, nil
}

func joinUsers(users []id.UserID) string {
	s := make([]string, len(users))
	for i, u := range users {
		s[i] = string(u)
	}
	return strings.Join(s, ", ")
}

// accountDataClient is what double puppeting gives on a real homeserver
// (a *mautrix.Client inside the intent).
type accountDataClient interface {
	GetAccountData(ctx context.Context, name string, output any) error
	SetAccountData(ctx context.Context, name string, data any) error
	JoinedMembers(ctx context.Context, roomID id.RoomID) (*mautrix.RespJoinedMembers, error)
}

// clientOf returns the client behind a double puppet intent, if it has one.
func clientOf(dp bridgev2.MatrixAPI) accountDataClient {
	if c, ok := dp.(accountDataClient); ok {
		return c
	}
	if as, ok := dp.(*matrix.ASIntent); ok && as.Matrix != nil {
		return as.Matrix
	}
	return nil
}

// existingDirectRoom looks in the staff member's m.direct for a room with
// the contact whose only joined members are the two of them.
func (g *Gate) existingDirectRoom(ctx context.Context, dp bridgev2.MatrixAPI, staff, contact id.UserID) id.RoomID {
	c := clientOf(dp)
	if c == nil {
		return ""
	}
	var direct map[id.UserID][]id.RoomID
	if err := c.GetAccountData(ctx, event.AccountDataDirectChats.Type, &direct); err != nil {
		return ""
	}
	for _, roomID := range direct[contact] {
		members, err := c.JoinedMembers(ctx, roomID)
		if err != nil || members == nil || len(members.Joined) != 2 {
			continue
		}
		if _, ok := members.Joined[staff]; !ok {
			continue
		}
		if _, ok := members.Joined[contact]; ok {
			return roomID
		}
	}
	return ""
}

// markDirect adds the room to the staff member's m.direct.
func (g *Gate) markDirect(ctx context.Context, dp bridgev2.MatrixAPI, contact id.UserID, roomID id.RoomID) {
	c := clientOf(dp)
	if c == nil {
		return
	}
	direct := map[id.UserID][]id.RoomID{}
	_ = c.GetAccountData(ctx, event.AccountDataDirectChats.Type, &direct)
	if !slices.Contains(direct[contact], roomID) {
		direct[contact] = append(direct[contact], roomID)
		if err := c.SetAccountData(ctx, event.AccountDataDirectChats.Type, direct); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to mark the native room as direct")
		}
	}
}

// sendFinal sends the final message on the network through login, as a
// message the staff member sends in the portal: a notice in the portal
// shows it, and the connector sends it with its own send path (the outbound
// check applies).
func (g *Gate) sendFinal(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin, newRoom id.RoomID, staff id.UserID) (string, error) {
	text := fillTemplate(g.cfg.Migration.CutOver.finalMessage(), newRoom, staff)
	return text, g.sendAsStaff(ctx, portal, login, "Final message to the contact", text)
}

// sendAsStaff posts a notice "label: text" in the portal and sends text on
// the network through login, as a Matrix message of the login's user
// standing on that notice (so the network's echo of it is not bridged
// again).
func (g *Gate) sendAsStaff(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin, label, text string) error {
	return g.sendAsStaffReplying(ctx, portal, login, label, text, "")
}

// sendAsStaffReplying is sendAsStaff with the notice a reply to replyTo
// (when not empty).
func (g *Gate) sendAsStaffReplying(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin, label, text string, replyTo id.EventID) error {
	notice := NoticeContent(label + ": " + text)
	if replyTo != "" {
		notice.RelatesTo = (&event.RelatesTo{}).SetReplyTo(replyTo)
	}
	sent, err := g.br.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: notice}, nil)
	if err != nil {
		return fmt.Errorf("failed to post notice in portal: %w", err)
	}
	evtID := sent.EventID
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
	evt := &event.Event{Type: event.EventMessage, RoomID: portal.MXID, Sender: login.UserMXID, ID: evtID,
		Timestamp: g.now().UnixMilli(), Content: event.Content{Parsed: content}}
	msg := &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{Event: evt, Content: content, Portal: portal}}
	resp, err := login.Client.HandleMatrixMessage(context.WithValue(ctx, cutOverSendKey{}, true), msg)
	if err != nil {
		return err
	}
	if resp != nil && resp.DB != nil && !resp.Pending {
		m := resp.DB
		if m.MXID == "" {
			m.MXID = evtID
		}
		if m.Room.ID == "" {
			m.Room = portal.PortalKey
		}
		if m.Timestamp.IsZero() {
			m.Timestamp = g.now()
		}
		if m.SenderMXID == "" {
			m.SenderMXID = login.UserMXID
		}
		if err = g.br.DB.Message.Insert(ctx, m); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to save the gateway's message")
		}
	}
	return nil
}

// tombstone sends m.room.tombstone in the portal, pointing at newRoom.
func (g *Gate) tombstone(ctx context.Context, portal *bridgev2.Portal, newRoom id.RoomID) error {
	body := fmt.Sprintf("This chat moved to a native Matrix room: %s. New messages here are no longer sent.", RoomLink(newRoom))
	_, err := g.br.Bot.SendState(ctx, portal.MXID, event.StateTombstone, "",
		&event.Content{Parsed: &event.TombstoneEventContent{Body: body, ReplacementRoom: newRoom}}, time.Time{})
	if err != nil {
		return fmt.Errorf("failed to send the tombstone in the portal: %w", err)
	}
	return nil
}

// checkCutOver refuses a new Matrix message in a portal that was cut
// over, with a notice naming the new room. The gate's own messages (final
// message, reminders) pass.
func (g *Gate) checkCutOver(ctx context.Context, key networkid.PortalKey) error {
	if g.Migration == nil || isCutOverSend(ctx) {
		return nil
	}
	c, err := g.Migration.CutOverOf(ctx, key)
	if err != nil {
		return err
	} else if c == nil {
		return nil
	}
	return &remote.Refusal{Reason: fmt.Sprintf("This chat moved to a native Matrix room on %s: %s (%s). Nothing was sent; write there.",
		c.At.Format("2006-01-02"), RoomLink(c.NewRoom), c.NewRoom)}
}
