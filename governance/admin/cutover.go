package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
)

// cutOverCommand is `cut-over`, run by a staff member (or an admin) in a
// portal room.
func (gv *Governance) cutOverCommand() commands.CommandHandler {
	return &commands.FullHandler{
		Name: "cut-over", Func: gv.cmdCutOver,
		Help: commands.HelpMeta{Section: MigrationSection,
			Description: "In a chat's portal room: move the chat to a native encrypted Matrix room (the contact, or every member of a group, must be linked in the directory)."},
	}
}

func (gv *Governance) cmdCutOver(ce *commands.Event) {
	if gv.Migration == nil {
		ce.Reply("Governance is not running yet.")
		return
	}
	if ce.Portal == nil {
		ce.Reply("Run `cut-over` in the portal room of the chat to move (admins: `gov-migration cut-over <identity or portal>`).")
		return
	}
	if !gv.IsAdmin(ce.User.MXID) && !gv.hasLoginIn(ce.Ctx, ce.User, ce.Portal) {
		ce.Reply("Only a staff member of this chat or a governance admin can cut it over.")
		return
	}
	ce.Reply("%s", gv.cutOverText(ce.Ctx, ce.Portal, ce.User.MXID))
}

// hasLoginIn reports whether one of user's logins is in the portal.
func (gv *Governance) hasLoginIn(ctx context.Context, user *bridgev2.User, portal *bridgev2.Portal) bool {
	if portal.Receiver != "" {
		login := gv.Bridge().GetCachedUserLoginByID(portal.Receiver)
		return login != nil && login.UserMXID == user.MXID
	}
	ups, err := gv.Bridge().DB.UserPortal.GetAllForUserInPortal(ctx, user.MXID, portal.PortalKey)
	return err == nil && len(ups) > 0
}

// cutOverText runs a cut-over and says what happened.
func (gv *Governance) cutOverText(ctx context.Context, portal *bridgev2.Portal, actor id.UserID) string {
	res, err := gv.CutOverPortal(ctx, portal, actor)
	if err != nil {
		return "Cut-over refused: " + err.Error()
	}
	if res.CutOver == nil {
		return fmt.Sprintf("Not yet: %d member(s) still need a Matrix account: %s. The list is pinned in the chat.",
			len(res.Missing), strings.Join(res.Missing, ", "))
	}
	c := res.CutOver
	how := "created by the bridge bot (double puppeting is off), which made you admins and left"
	if c.CreatedAs == migration.CreatedAsStaff {
		how = "created as you (double puppeting)"
	}
	return fmt.Sprintf("Cut over: this chat moved to %s (%s, encrypted, %s). Final message sent: %q. New messages in this room are no longer sent.",
		gate.RoomLink(c.NewRoom), c.NewRoom, how, res.Final)
}

const migrationCutOverUsage = "chat <room ID or portal ID> | staff <@matrix:id> | cut-over <identity or portal> [@staff] | cut-over --all-linked <@staff>"

// cmdMigrationCutOver is the cut-over part of gov-migration: chat, staff
// and cut-over.
func (gv *Governance) cmdMigrationCutOver(ce *commands.Event) error {
	const usage = errUsage(migrationCutOverUsage)
	args := ce.Args[1:]
	switch strings.ToLower(ce.Args[0]) {
	case "chat":
		if len(args) != 1 {
			return usage
		}
		portal, err := gv.FindPortal(ce.Ctx, args[0])
		if err != nil {
			return err
		}
		rep, err := gv.Migration.Chat(ce.Ctx, portal.PortalKey)
		if err != nil {
			return err
		}
		ce.Reply("%s", gv.chatText(ce.Ctx, portal, rep))
	case "staff":
		if len(args) != 1 {
			return usage
		}
		staff, err := migration.ValidateMatrixID(args[0])
		if err != nil {
			return err
		}
		rows, err := gv.Migration.StaffContacts(ce.Ctx, staff)
		if err != nil {
			return err
		}
		ce.Reply("%s", gv.staffText(ce.Ctx, staff, rows))
	case "cut-over":
		if len(args) == 2 && args[0] == "--all-linked" {
			staff, err := migration.ValidateMatrixID(args[1])
			if err != nil {
				return err
			}
			ce.Reply("%s", gv.cutOverAllLinked(ce.Ctx, staff, ce.User.MXID))
			return nil
		}
		if len(args) < 1 || len(args) > 2 {
			return usage
		}
		var staff id.UserID
		if len(args) == 2 {
			var err error
			if staff, err = migration.ValidateMatrixID(args[1]); err != nil {
				return err
			}
		}
		portal, err := gv.portalToCutOver(ce.Ctx, args[0], staff)
		if err != nil {
			return err
		}
		ce.Reply("%s", gv.cutOverText(ce.Ctx, portal, ce.User.MXID))
	default:
		return usage
	}
	return nil
}

// ErrAmbiguousChat is returned when an identity names several chats.
var ErrAmbiguousChat = errors.New("talks with several staff members")

// portalToCutOver finds the portal that ref names: a room ID or portal ID,
// or an outside identity (its direct chat with staff, who may be omitted
// when only one staff member talks with the contact).
func (gv *Governance) portalToCutOver(ctx context.Context, ref string, staff id.UserID) (*bridgev2.Portal, error) {
	if strings.HasPrefix(ref, "!") {
		return gv.FindPortal(ctx, ref)
	}
	ident, err := gv.Migration.Resolve(ctx, ref)
	if err != nil {
		if portal, perr := gv.FindPortal(ctx, ref); perr == nil {
			return portal, nil
		}
		return nil, err
	}
	var found []*bridgev2.Portal
	var staffSeen []string
	for _, pc := range gv.contactChats(ctx, ident) {
		if staff != "" && pc.Staff != staff {
			continue
		}
		portal := gv.dmPortalOf(ctx, pc)
		if portal == nil {
			continue
		}
		found = append(found, portal)
		staffSeen = append(staffSeen, string(pc.Staff))
	}
	switch len(found) {
	case 0:
		if staff != "" {
			return nil, fmt.Errorf("%s has no direct chat with %s", ref, staff)
		}
		return nil, fmt.Errorf("%s has no direct chat with a staff member", ref)
	case 1:
		return found[0], nil
	default:
		return nil, fmt.Errorf("%s %w (%s): name one after the identity", ref, ErrAmbiguousChat, strings.Join(staffSeen, ", "))
	}
}

// dmPortalOf returns the direct chat portal of a registry row, or nil (a
// group, or a chat without a room). The registry keeps the portal and login
// IDs (pseudonyms in hashed mode, which FindPortal knows).
func (gv *Governance) dmPortalOf(ctx context.Context, pc migration.PortalContact) *bridgev2.Portal {
	var portal *bridgev2.Portal
	if gv.Seal.On() {
		portal, _ = gv.FindPortal(ctx, string(pc.Portal)+"/"+string(pc.Login))
	} else {
		portal, _ = gv.Bridge().GetExistingPortalByKey(ctx, networkid.PortalKey{ID: pc.Portal, Receiver: pc.Login})
	}
	if remote.RoomOf(portal) == "" || portal.Receiver == "" {
		return nil
	}
	return portal
}

// contactChats lists the chats of a contact (every staff member's).
func (gv *Governance) contactChats(ctx context.Context, ident migration.Identity) []migration.PortalContact {
	rows, err := gv.Migration.IdentityChats(ctx, ident)
	if err != nil {
		return nil
	}
	return rows
}

// MaxCutOverBatch is the most chats one --all-linked run cuts over: each
// sends a final message on the network, so a large batch is spread over
// several runs.
const MaxCutOverBatch = 20

// cutOverAllLinked cuts over the direct chats of staff whose contact is
// linked and that are not cut over yet, MaxCutOverBatch at most.
func (gv *Governance) cutOverAllLinked(ctx context.Context, staff, actor id.UserID) string {
	rows, err := gv.Migration.StaffContacts(ctx, staff)
	if err != nil {
		return "Cut-over failed: " + err.Error()
	}
	var b strings.Builder
	n, left := 0, 0
	for _, pc := range rows {
		if !pc.Linked() || pc.NewRoom != "" {
			continue
		}
		portal := gv.dmPortalOf(ctx, pc)
		if portal == nil {
			continue
		}
		if n == MaxCutOverBatch {
			left++
			continue
		}
		n++
		fmt.Fprintf(&b, "* %s: %s\n", gv.Migration.ContactName(ctx, pc.Identity), gv.cutOverText(ctx, portal, actor))
	}
	if n == 0 {
		return fmt.Sprintf("%s has no direct chat with a linked contact left to cut over.", staff)
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n%d more chat(s) with linked contacts wait: run it again.\n", left)
	}
	return fmt.Sprintf("%d chat(s) of %s:\n\n%s", n, staff, b.String())
}

func (gv *Governance) chatText(ctx context.Context, portal *bridgev2.Portal, rep *migration.ChatReport) string {
	var b strings.Builder
	kind := "group"
	if portal.Receiver != "" {
		kind = "direct chat"
	}
	fmt.Fprintf(&b, "%s %s (%s): ", kind, format.SafeMarkdownCode(gv.ShownPortal(portal.ID)), portal.MXID)
	if rep.CutOver != nil {
		fmt.Fprintf(&b, "**cut over** to %s on %s by %s\n\n", rep.CutOver.NewRoom, rep.CutOver.At.Format("2006-01-02 15:04"), rep.CutOver.Actor)
	} else {
		b.WriteString("**bridged**\n\n")
	}
	for _, pc := range migration.DistinctContacts(rep.Contacts) {
		b.WriteString("* " + gv.contactLine(ctx, pc) + "\n")
	}
	return b.String()
}

func (gv *Governance) staffText(ctx context.Context, staff id.UserID, rows []migration.PortalContact) string {
	if len(rows) == 0 {
		return fmt.Sprintf("%s talks with no outside contact.", staff)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Outside contacts of %s (%d chat(s)):\n\n", staff, len(rows))
	for _, pc := range rows {
		fmt.Fprintf(&b, "* %s in %s\n", gv.contactLine(ctx, pc), format.SafeMarkdownCode(string(pc.Portal)))
	}
	return b.String()
}

func (gv *Governance) contactLine(ctx context.Context, pc migration.PortalContact) string {
	line := fmt.Sprintf("%s %s: **%s**", pc.Network, gv.Migration.ContactName(ctx, pc.Identity), pc.Status)
	switch {
	case pc.Linked():
		line += "; Matrix account " + string(pc.MatrixID)
	case pc.MatrixID != "":
		line += fmt.Sprintf("; Matrix account %s (%s)", pc.MatrixID, pc.LinkState)
	default:
		line += "; not linked"
	}
	if pc.NewRoom != "" {
		line += "; chat cut over to " + string(pc.NewRoom)
	}
	return line
}
