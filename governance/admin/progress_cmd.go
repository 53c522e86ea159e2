package admin

import (
	"net/url"
	"strings"

	"maunium.net/go/mautrix/bridgev2/commands"

	"github.com/passerelle/passerelle/governance/audit"
)

// cmdProgress runs `gov-migration progress` (the weekly summary's text,
// now) and `gov-migration progress-link` (a login link to the progress
// page, sent only to the admin's own DM with the bot).
func (gv *Governance) cmdProgress(ce *commands.Event) error {
	if len(ce.Args) != 1 {
		return errUsage("progress | progress-link")
	}
	if strings.EqualFold(ce.Args[0], "progress") {
		rep, err := gv.Figures().Progress(ce.Ctx, gv.now())
		if err != nil {
			return err
		}
		ce.Reply("%s", rep.Text())
		return nil
	}
	page, err := gv.progressPageURL()
	if err != nil {
		return err
	}
	dm, err := ce.User.GetManagementRoom(ce.Ctx)
	if err != nil {
		return err
	}
	token, expires, err := gv.IssueProgressLink(ce.Ctx, ce.User.MXID)
	if err != nil {
		return err
	}
	gv.logAudit(ce.Ctx, audit.Entry{Actor: string(ce.User.MXID), Action: audit.ActionProgressLink, Details: audit.Details(map[string]any{"room_id": ce.RoomID})})
	link := page + "/login#token=" + url.QueryEscape(token)
	msg := "Your login link to the migration progress page (works once, until " + expires.UTC().Format("15:04") + " UTC; the session lasts 8 hours): " + link
	if dm == ce.RoomID {
		ce.Reply("%s", msg)
		return nil
	}
	if err = gv.Notice(ce.Ctx, dm, "%s", msg); err != nil {
		return err
	}
	ce.Reply("I sent you a login link to the progress page in your direct chat with me.")
	return nil
}
