package admin

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
)

// inviteCommand is `invite-to-matrix`, for staff members (and admins).
func (gv *Governance) inviteCommand() commands.CommandHandler {
	return &commands.FullHandler{
		Name: "invite-to-matrix", Func: gv.cmdInviteToMatrix,
		Help: commands.HelpMeta{Section: MigrationSection, Args: "[_phone, @username or ID_] [_@staff:id_]",
			Description: "Send the organisation's invitation to Matrix to a contact: in your direct chat with them, or naming them here (admins may name a staff member's chat)."},
	}
}

func (gv *Governance) cmdInviteToMatrix(ce *commands.Event) {
	if gv.Migration == nil {
		ce.Reply("Governance is not running yet.")
		return
	}
	actor := string(ce.User.MXID)
	var res *InviteResult
	var err error
	switch {
	case ce.Portal != nil:
		if len(ce.Args) != 0 {
			ce.Reply("In a chat, `$cmdprefix invite-to-matrix` takes no arguments: it invites this chat's contact.")
			return
		}
		var t inviteTarget
		if t, err = gv.portalTarget(ce.Ctx, ce.Portal, ce.User.MXID); err == nil {
			res, err = gv.invite(ce.Ctx, actor, t, false)
		}
	case len(ce.Args) == 1 || len(ce.Args) == 2:
		staff := ce.User.MXID
		if len(ce.Args) == 2 {
			if staff, err = migration.ValidateMatrixID(ce.Args[1]); err != nil {
				ce.Reply("invite-to-matrix: %v", err)
				return
			}
			if staff != ce.User.MXID && !gv.IsAdmin(ce.User.MXID) {
				ce.Reply("Only the organisation's governance admins may send an invitation through another staff member's chat.")
				return
			}
		}
		res, err = gv.inviteContact(ce.Ctx, actor, ce.Args[0], staff)
	default:
		ce.Reply("Usage: `$cmdprefix invite-to-matrix` in your direct chat with a contact, or `$cmdprefix invite-to-matrix <phone, @username or ID> [@staff:id]` here.")
		return
	}
	if err != nil {
		ce.Reply("The invitation was not sent: %s", gate.EscapeName(inviteErrorText(err)))
		return
	}
	if ce.Portal == nil || ce.Portal.MXID != res.RoomID {
		ce.Reply("The invitation to Matrix was sent to %s on %s through %s's chat. The next one is possible from %s UTC.",
			gate.EscapeName(res.Name), networkName(res.Network), res.Staff, res.Next.UTC().Format("2006-01-02 15:04"))
	}
}

// inviteErrorText is an invitation's error as the user reads it.
func inviteErrorText(err error) string {
	var recent *migration.InvitedRecentlyError
	switch {
	case errors.As(err, &recent):
		return fmt.Sprintf("this contact was invited on %s UTC; the next invitation is allowed from %s UTC.",
			recent.Last.UTC().Format("2006-01-02 15:04"), recent.Next.UTC().Format("2006-01-02 15:04"))
	case errors.Is(err, ErrNotYourChat):
		return "this is not your chat: only its staff member (or an admin) may invite its contact."
	default:
		return err.Error()
	}
}

const inviteMigrationUsage = "department <@staff:id> <department|--clear> | departments | invite-department <department> [--dry-run] | invite-stop"

// cmdMigrationInvite runs the gov-migration subcommands of departments and
// invitations (admins only, like every gov-* command).
func (gv *Governance) cmdMigrationInvite(ce *commands.Event) error {
	actor := string(ce.User.MXID)
	args := ce.Args[1:]
	switch strings.ToLower(ce.Args[0]) {
	case "department":
		if len(args) < 2 {
			return errUsage(inviteMigrationUsage)
		}
		staff, err := migration.ValidateMatrixID(args[0])
		if err != nil {
			return err
		}
		dept := strings.Join(args[1:], " ")
		if dept == "--clear" {
			dept = ""
		}
		if err = gv.Migration.SetStaffDepartment(ce.Ctx, actor, staff, dept); err != nil {
			return err
		}
		if dept == "" {
			ce.Reply("%s is in no department now.", staff)
		} else {
			ce.Reply("%s is in department %s.", staff, gate.EscapeName(dept))
		}
	case "departments":
		depts, err := gv.Migration.StaffDepartments(ce.Ctx)
		if err != nil {
			return err
		}
		if len(depts) == 0 {
			ce.Reply("No staff member is in a department (`$cmdprefix gov-migration department @staff:id <department>`, or migration.departments in the config file).")
			return nil
		}
		ce.Reply("Departments:\n\n%s", departmentList(depts))
	case "invite-department":
		dryRun := false
		var words []string
		for _, a := range args {
			if a == "--dry-run" {
				dryRun = true
			} else {
				words = append(words, a)
			}
		}
		if len(words) == 0 {
			return errUsage(inviteMigrationUsage)
		}
		plan, err := gv.planDepartment(ce.Ctx, strings.Join(words, " "))
		if err != nil {
			return err
		}
		if dryRun {
			ce.Reply("%s", planText(plan))
			return nil
		}
		if len(plan.targets) == 0 {
			ce.Reply("Nobody to invite in department %s: %d skipped, %d refused by the policy.\n\n%s", gate.EscapeName(plan.Department),
				len(plan.Skipped), len(plan.Refused), planText(plan))
			return nil
		}
		return gv.startDepartment(ce.Ctx, actor, plan)
	case "invite-stop":
		dept, err := gv.stopDepartment(actor)
		if err != nil {
			return err
		}
		if ce.RoomID != gv.adminRoomOrEmpty(ce) {
			ce.Reply("Stopped the invitations to department %s.", gate.EscapeName(dept))
		}
	default:
		return errUsage(inviteMigrationUsage)
	}
	return nil
}

func (gv *Governance) adminRoomOrEmpty(ce *commands.Event) id.RoomID {
	room, _ := gv.AdminRoom(ce.Ctx)
	return room
}

func departmentList(depts map[id.UserID]string) string {
	byDept := map[string][]string{}
	for staff, dept := range depts {
		byDept[dept] = append(byDept[dept], string(staff))
	}
	var b strings.Builder
	for _, dept := range sortedKeys(byDept) {
		staff := byDept[dept]
		sort.Strings(staff)
		fmt.Fprintf(&b, "* %s: %s\n", gate.EscapeName(dept), strings.Join(staff, ", "))
	}
	return b.String()
}

// planText is a dry run's report.
func planText(plan *invitePlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Department %s: %d to invite, %d skipped, %d refused by the policy (dry run: nothing sent).",
		gate.EscapeName(plan.Department), len(plan.Invite), len(plan.Skipped), len(plan.Refused))
	line := func(p planned, reason string) {
		fmt.Fprintf(&b, "\n* %s %s %s", p.Network, format.SafeMarkdownCode(p.Contact), gate.EscapeName(p.Name))
		if p.Staff != "" {
			fmt.Fprintf(&b, " (staff %s)", p.Staff)
		}
		if reason != "" {
			b.WriteString(" — " + gate.EscapeName(reason))
		}
	}
	for _, group := range []struct {
		title string
		list  []plannedReason
	}{{"To invite", plannedOf(plan.Invite)}, {"Skipped", plan.Skipped}, {"Refused", plan.Refused}} {
		if len(group.list) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n\n**%s:**", group.title)
		for i, p := range group.list {
			if i == maxListed {
				fmt.Fprintf(&b, "\n* … and %d more", len(group.list)-maxListed)
				break
			}
			line(p.planned, p.Reason)
		}
	}
	return b.String()
}

func plannedOf(list []planned) []plannedReason {
	out := make([]plannedReason, len(list))
	for i, p := range list {
		out[i] = plannedReason{planned: p}
	}
	return out
}
