package admin

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.mau.fi/util/exstrings"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/governance/policy"
)

// HelpSection groups the governance commands in `help`.
var HelpSection = commands.HelpSection{Name: "Governance (admins only)", Order: 60}

// maxInlineExport is the largest export sent as a message; larger exports
// are for the HTTP admin API.
const maxInlineExport = 30000

// Commands returns the gov-* command handlers. Every one of them is limited
// to the configured admins and logged.
func (gv *Governance) Commands() []commands.CommandHandler {
	cmd := func(name, args, desc string, run func(ce *commands.Event) error) commands.CommandHandler {
		return &commands.FullHandler{
			Name: name,
			Help: commands.HelpMeta{Section: HelpSection, Description: desc, Args: args},
			Func: func(ce *commands.Event) { gv.run(ce, run) },
		}
	}
	return []commands.CommandHandler{
		cmd("gov-requests", "", "List the chats waiting for approval.", gv.cmdRequests),
		cmd("gov-approve", "<_request ID_>", "Approve a request: the chat is bridged and its held messages delivered.", gv.cmdApprove),
		cmd("gov-deny", "<_request ID_> [_reason_]", "Deny a request: held messages are discarded, the chat is not bridged.", gv.cmdDeny),
		cmd("gov-rules", "", "Show the policy: modes, rules and media rules.", gv.cmdRules),
		cmd("gov-allow", "<_key=value_>...", "Add a runtime allow rule, e.g. `telegram_username=press_office`.", gv.cmdAddRule(policy.ActionAllow)),
		cmd("gov-deny-rule", "<_key=value_>...", "Add a runtime deny rule, e.g. `phone_prefix=+7`.", gv.cmdAddRule(policy.ActionDeny)),
		cmd("gov-remove-rule", "<_rule ID_>", "Remove a runtime rule.", gv.cmdRemoveRule),
		cmd("gov-portals", "[_filter_]", "List portals (filter by network, staff member, room or outside contact).", gv.cmdPortals),
		cmd("gov-revoke", "<_room ID or portal ID_> [_reason_]", "Take a portal back: the bridge stops relaying it.", gv.cmdRevoke),
		cmd("gov-restore", "<_room ID or portal ID_>", "Allow a revoked portal again.", gv.cmdRestore),
		cmd("gov-contacts", "[_search_]", "List or search the registry of outside contacts.", gv.cmdContacts),
		cmd("gov-log", "[_count_] [before _seq_]", "Show the newest audit log entries (or those before entry _seq_).", gv.cmdLog),
		cmd("gov-verify", "[_seq_ _hash_]", "Verify the audit log's hash chain (and that it still holds a published head).", gv.cmdVerify),
		cmd("gov-head", "", "Publish the audit log's head (newest entry and hash) in the admin room.", gv.cmdHead),
		cmd("gov-export", "<contacts|log> <csv|json>", "Export the contact registry or the audit log.", gv.cmdExport),
		cmd("gov-directory", "<add|import|unlink|confirm|list> ...", "Link outside contacts to Matrix accounts: add, import a CSV, unlink, confirm a staff member's link, list.", gv.cmdDirectory),
		cmd("gov-migration", "<summary|contact _identity_|deadlines|chat _portal_|staff _@matrix:id_|cut-over _identity or portal_ [_@staff_]|department _@staff_ _dept_|departments|invite-department _dept_ [--dry-run]|invite-stop|progress|progress-link>", "Show how far the move to Matrix has come: counts per status and network, one contact, one chat or one staff member's contacts, the deadlines; cut a chat over to a native room; staff departments and a department's invitations; the progress figures, or a login link to the progress page.", gv.cmdMigration),
	}
}

// errUsage is an error whose message is the usage to show.
type errUsage string

func (e errUsage) Error() string { return string(e) }

func (gv *Governance) run(ce *commands.Event, fn func(ce *commands.Event) error) {
	if !gv.IsAdmin(ce.User.MXID) {
		ce.Reply("`%s` is limited to the organisation's governance admins (network.governance.admins).", ce.Command)
		return
	}
	if gv.Audit == nil {
		ce.Reply("Governance is not running yet.")
		return
	}
	err := fn(ce)
	var usage errUsage
	switch {
	case errors.As(err, &usage):
		ce.Reply("Usage: `$cmdprefix %s %s`", ce.Command, string(usage))
	case err != nil:
		ce.Reply("%s failed: %v", ce.Command, err)
	}
}

func (gv *Governance) logCommand(ce *commands.Event) {
	gv.logAction(ce.Ctx, string(ce.User.MXID), map[string]any{"command": ce.Command, "args": ce.Args, "room_id": ce.RoomID})
}

func parseID(ce *commands.Event, usage string) (int64, error) {
	if len(ce.Args) < 1 {
		return 0, errUsage(usage)
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(ce.Args[0], "#"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a request or rule ID", ce.Args[0])
	}
	return n, nil
}

func (gv *Governance) cmdRequests(ce *commands.Event) error {
	gv.logCommand(ce)
	reqs, err := gv.Approvals.Pending(ce.Ctx)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		ce.Reply("No chat is waiting for approval.")
		return nil
	}
	var b strings.Builder
	for _, r := range reqs {
		b.WriteString(gv.RequestNotice(r))
		b.WriteString("\n\n")
	}
	ce.Reply("%s", b.String())
	return nil
}

func (gv *Governance) cmdApprove(ce *commands.Event) error {
	reqID, err := parseID(ce, "<request ID>")
	if err != nil {
		return err
	}
	req, err := gv.Approve(ce.Ctx, ce.User.MXID, reqID)
	if err != nil {
		return err
	}
	ce.Reply("Request #%d approved: %d held message(s) delivered.", req.ID, req.HeldCount)
	return nil
}

func (gv *Governance) cmdDeny(ce *commands.Event) error {
	reqID, err := parseID(ce, "<request ID> [reason]")
	if err != nil {
		return err
	}
	req, err := gv.Deny(ce.Ctx, ce.User.MXID, reqID, strings.Join(ce.Args[1:], " "))
	if err != nil {
		return err
	}
	ce.Reply("Request #%d denied: %d held message(s) discarded; the staff member was told.", req.ID, req.HeldCount)
	return nil
}

func (gv *Governance) cmdRules(ce *commands.Event) error {
	gv.logCommand(ce)
	p := gv.Policy.Policy()
	var b strings.Builder
	b.WriteString("**Modes:** ")
	for i, n := range policy.Networks {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", n, p.Mode(n))
	}
	b.WriteString("\n\n**Rules** (a matching deny wins):\n\n")
	rules := p.Rules()
	if len(rules) == 0 {
		b.WriteString("none\n")
	}
	for _, r := range rules {
		fmt.Fprintf(&b, "* %s", r.String())
		if r.Rule.Comment != "" {
			fmt.Fprintf(&b, " — %s", r.Rule.Comment)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n**Media** (network.governance.media):\n\n")
	b.WriteString(MediaRulesText(gv.Config().Media))
	ce.Reply("%s", b.String())
	return nil
}

// MediaRulesText lists the media rules in markdown, one line per network
// (or "*") and direction that has any; "no limit, every type" when none.
func MediaRulesText(media policy.MediaConfig) string {
	var b strings.Builder
	for _, network := range append([]string{policy.AnyNetwork}, policy.Networks...) {
		d, ok := media[network]
		if !ok {
			continue
		}
		for _, dr := range []struct {
			name string
			r    policy.MediaRules
		}{{"inbound", d.Inbound}, {"outbound", d.Outbound}} {
			var parts []string
			if dr.r.MaxSize > 0 {
				parts = append(parts, "up to "+dr.r.MaxSize.String())
			}
			if len(dr.r.AllowedTypes) > 0 {
				parts = append(parts, "only "+format.SafeMarkdownCode(strings.Join(dr.r.AllowedTypes, ", ")))
			}
			if len(dr.r.RefusedTypes) > 0 {
				parts = append(parts, "never "+format.SafeMarkdownCode(strings.Join(dr.r.RefusedTypes, ", ")))
			}
			if len(parts) > 0 {
				fmt.Fprintf(&b, "* %s %s: %s\n", format.SafeMarkdownCode(network), dr.name, strings.Join(parts, "; "))
			}
		}
	}
	if b.Len() == 0 {
		return "no limit beyond the gateway's, every type\n"
	}
	return b.String()
}

// ParseRule reads a rule from key=value arguments, with the keys of the
// config file: phone, phone_prefix, telegram_user_id, telegram_username,
// chat, network, direction, matrix_user, matrix_server, comment. A comment
// takes the rest of the line, so it comes last and may hold spaces.
func ParseRule(action policy.Action, args []string) (policy.Rule, error) {
	r := policy.Rule{Action: action}
	if len(args) == 0 {
		return r, errUsage("<key=value>... [comment=...] (keys: phone, phone_prefix, telegram_user_id, telegram_username, chat, network, direction, matrix_user, matrix_server, comment)")
	}
	for i, arg := range args {
		key, val, ok := strings.Cut(arg, "=")
		if !ok {
			return r, fmt.Errorf("%q is not key=value", arg)
		}
		switch key {
		case "phone":
			r.Phone = val
		case "phone_prefix":
			r.PhonePrefix = val
		case "telegram_user_id":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return r, fmt.Errorf("telegram_user_id %q is not a number", val)
			}
			r.TelegramUserID = n
		case "telegram_username":
			r.TelegramUsername = val
		case "chat":
			r.Chat = networkid.PortalID(val)
		case "network":
			r.Network = val
		case "direction":
			r.Direction = policy.Direction(val)
		case "matrix_user":
			r.MatrixUser = id.UserID(val)
		case "matrix_server":
			r.MatrixServer = val
		case "comment":
			r.Comment = strings.Join(append([]string{val}, args[i+1:]...), " ")
			return r, nil
		default:
			return r, fmt.Errorf("unknown rule key %q", key)
		}
	}
	return r, nil
}

func (gv *Governance) cmdAddRule(action policy.Action) func(ce *commands.Event) error {
	return func(ce *commands.Event) error {
		r, err := ParseRule(action, ce.Args)
		if err != nil {
			return err
		}
		rr, err := gv.Policy.AddRule(ce.Ctx, ce.User.MXID, r)
		if err != nil {
			return err
		}
		ce.Reply("Added %s.", rr.Ref().String())
		return nil
	}
}

func (gv *Governance) cmdRemoveRule(ce *commands.Event) error {
	ruleID, err := parseID(ce, "<rule ID>")
	if err != nil {
		return err
	}
	rr, err := gv.Policy.RemoveRule(ce.Ctx, ce.User.MXID, ruleID)
	if err != nil {
		return err
	}
	ce.Reply("Removed %s.", rr.Ref().String())
	return nil
}

func (gv *Governance) cmdPortals(ce *commands.Event) error {
	gv.logCommand(ce)
	portals, err := gv.Portals(ce.Ctx)
	if err != nil {
		return err
	}
	filter := strings.ToLower(strings.Join(ce.Args, " "))
	var b strings.Builder
	n := 0
	for _, p := range portals {
		line := fmt.Sprintf("%s %s %s %s %s %s", p.Network, p.Key.ID, p.Key.Receiver, p.RoomID, p.Staff, p.Other)
		if filter != "" && !strings.Contains(strings.ToLower(line+" "+p.Name), filter) {
			continue
		}
		n++
		state := "bridged"
		if p.Revoked {
			state = "**revoked**"
		}
		fmt.Fprintf(&b, "* %s %s (%s) — %s, staff %s, room %s\n", p.Network, format.SafeMarkdownCode(p.Key.ID), gate.EscapeName(p.Name), state, p.Staff, p.RoomID)
	}
	if n == 0 {
		ce.Reply("No portal matches.")
		return nil
	}
	ce.Reply("%d portal(s):\n\n%s", n, b.String())
	return nil
}

func (gv *Governance) cmdRevoke(ce *commands.Event) error {
	if len(ce.Args) < 1 {
		return errUsage("<room ID or portal ID> [reason]")
	}
	portal, err := gv.FindPortal(ce.Ctx, ce.Args[0])
	if err != nil {
		return err
	}
	if err = gv.Revoke(ce.Ctx, ce.User.MXID, portal, strings.Join(ce.Args[1:], " ")); err != nil {
		return err
	}
	ce.Reply("Revoked `%s` (%s): the bridge no longer relays it.", gv.ShownPortal(portal.ID), portal.MXID)
	return nil
}

func (gv *Governance) cmdRestore(ce *commands.Event) error {
	if len(ce.Args) < 1 {
		return errUsage("<room ID or portal ID>")
	}
	portal, err := gv.FindPortal(ce.Ctx, ce.Args[0])
	if err != nil {
		return err
	}
	if err = gv.Restore(ce.Ctx, ce.User.MXID, portal); err != nil {
		return err
	}
	ce.Reply("Restored `%s` (%s): it is bridged again.", gv.ShownPortal(portal.ID), portal.MXID)
	return nil
}

func (gv *Governance) cmdContacts(ce *commands.Event) error {
	gv.logCommand(ce)
	contacts, err := gv.Contacts.List(ce.Ctx, audit.ContactFilter{Query: strings.Join(ce.Args, " "), Limit: 50})
	if err != nil {
		return err
	}
	if len(contacts) == 0 {
		ce.Reply("No contact matches.")
		return nil
	}
	var b strings.Builder
	for _, c := range contacts {
		names := make([]string, len(c.DisplayNames))
		for i, name := range c.DisplayNames {
			names[i] = gate.EscapeName(name)
		}
		fmt.Fprintf(&b, "* %s %s %s %s %s — in %d (media %d) / out %d (media %d), edits, reactions and deletions %d in / %d out, last seen %s, %d link(s)\n", c.Network, format.SafeMarkdownCode(c.RemoteID),
			strings.Join(names, ", "), gate.EscapeName(c.Phone), gate.EscapeName(c.Username), c.MessagesIn, c.MediaIn, c.MessagesOut, c.MediaOut,
			c.ActivityIn, c.ActivityOut, c.LastSeen.Format("2006-01-02 15:04"), len(c.Links))
	}
	ce.Reply("%d contact(s):\n\n%s", len(contacts), b.String())
	return nil
}

// Paging of gov-log.
const (
	defaultLogCount = 20
	maxLogCount     = 100
)

func (gv *Governance) cmdLog(ce *commands.Event) error {
	usage := errUsage(fmt.Sprintf("[count, 1 to %d] [before <seq>]", maxLogCount))
	f := audit.Filter{Descending: true, Limit: defaultLogCount}
	args := ce.Args
	if len(args) > 0 && args[0] != "before" {
		n, err := strconv.Atoi(args[0])
		if err != nil || n <= 0 || n > maxLogCount {
			return usage
		}
		f.Limit, args = n, args[1:]
	}
	if len(args) > 0 {
		if len(args) != 2 || args[0] != "before" {
			return usage
		}
		seq, err := strconv.ParseInt(strings.TrimPrefix(args[1], "#"), 10, 64)
		if err != nil || seq <= 0 {
			return usage
		}
		f.BeforeSeq = seq
	}
	gv.logCommand(ce)
	entries, err := gv.Audit.List(ce.Ctx, f)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		ce.Reply("No audit log entries there.")
		return nil
	}
	var b strings.Builder
	for i := len(entries) - 1; i >= 0; i-- { // oldest first
		e := entries[i]
		fmt.Fprintf(&b, "* #%d %s %s by %s %s %s %s\n", e.Seq, e.Time.Format("2006-01-02 15:04:05"), e.Action, e.Actor, e.Network,
			portalCode(e.Portal), e.Request)
	}
	if oldest := entries[len(entries)-1].Seq; len(entries) == f.Limit && oldest > 1 {
		fmt.Fprintf(&b, "\nOlder entries: `$cmdprefix gov-log %d before %d`", f.Limit, oldest)
	}
	ce.Reply("%s", b.String())
	return nil
}

// portalCode shows a portal ID (empty: nothing) as code: it is what
// gov-revoke takes, and a remote network may have a say in it.
func portalCode(id networkid.PortalID) string {
	if id == "" {
		return ""
	}
	return format.SafeMarkdownCode(id)
}

func (gv *Governance) cmdVerify(ce *commands.Event) error {
	var published *audit.Anchor
	switch len(ce.Args) {
	case 0:
	case 2:
		seq, err := strconv.ParseInt(strings.TrimPrefix(ce.Args[0], "#"), 10, 64)
		hash := strings.ToLower(strings.Trim(ce.Args[1], "`"))
		if err != nil || seq <= 0 || len(hash) != 64 {
			return errUsage("[seq hash] (a head posted by gov-head)")
		}
		published = &audit.Anchor{Seq: seq, Hash: hash}
	default:
		return errUsage("[seq hash] (a head posted by gov-head)")
	}
	gv.logCommand(ce)
	report, err := gv.verify(ce.Ctx, published)
	if err != nil {
		return err
	}
	if report.OK() {
		msg := fmt.Sprintf("The audit log verifies: %d entries, %d to %d, anchored at %d.", report.Entries, report.FirstSeq, report.LastSeq, report.Anchor.Seq)
		if published != nil {
			msg += fmt.Sprintf(" It still holds the published head, entry %d.", published.Seq)
		}
		ce.Reply("%s", msg)
		return nil
	}
	var b strings.Builder
	for _, p := range report.Problems {
		fmt.Fprintf(&b, "* %s\n", p.String())
	}
	ce.Reply("**The audit log does not verify:**\n\n%s", b.String())
	return nil
}

func (gv *Governance) cmdHead(ce *commands.Event) error {
	gv.logCommand(ce)
	published, err := gv.PublishHead(ce.Ctx, string(ce.User.MXID))
	if err != nil {
		return err
	}
	if ce.RoomID != published.RoomID {
		ce.Reply("Published the audit log's head (entry %d, hash `%s`) in the admin room.", published.Head.Seq, published.Head.Hash)
	}
	return nil
}

func (gv *Governance) cmdExport(ce *commands.Event) error {
	if len(ce.Args) != 2 {
		return errUsage("<contacts|log> <csv|json>")
	}
	format, err := audit.ParseFormat(ce.Args[1])
	if err != nil {
		return err
	}
	gv.logCommand(ce)
	var buf bytes.Buffer
	switch ce.Args[0] {
	case "contacts":
		err = gv.Contacts.Export(ce.Ctx, &buf, format, audit.ContactFilter{})
	case "log":
		err = gv.Audit.Export(ce.Ctx, &buf, format, audit.Filter{})
	default:
		return errUsage("<contacts|log> <csv|json>")
	}
	if err != nil {
		return err
	}
	if buf.Len() > maxInlineExport {
		ce.Reply("The export has %d bytes, too many for a message; use the HTTP admin API (%sexport/%s?format=%s).", buf.Len(), APIPrefix, ce.Args[0], format)
		return nil
	}
	// A fence longer than any run of backticks in the export (details can
	// hold remote names), so that nothing in it ends the code block.
	fence := strings.Repeat("`", max(3, exstrings.LongestSequenceOf(buf.String(), '`')+1))
	ce.ReplyAdvanced(fence+"\n"+buf.String()+"\n"+fence, true, false)
	return nil
}

// MigrationSection groups the migration commands any user may run.
var MigrationSection = commands.HelpSection{Name: "Migration to Matrix", Order: 61}

// migrationCommands are the commands of the migration that any Matrix
// user may run: they are not admin commands.
func (gv *Governance) migrationCommands() []commands.CommandHandler {
	return []commands.CommandHandler{
		&commands.FullHandler{
			Name: "claim-code", Func: gv.cmdClaimCode,
			Help: commands.HelpMeta{Section: MigrationSection, Description: "Get a code to send from your WhatsApp or Telegram to a staff member: it links that account to this Matrix account."},
		},
		&commands.FullHandler{
			Name: "link-contact", Func: gv.cmdLinkContact,
			Help: commands.HelpMeta{Section: MigrationSection, Args: "<_phone, @username or ID_> <_@matrix:id_>", Description: "Tell the directory the Matrix account of an outside contact you talk with."},
		},
		gv.inviteCommand(),
		gv.cutOverCommand(),
	}
}

func (gv *Governance) cmdClaimCode(ce *commands.Event) {
	if gv.Migration == nil {
		ce.Reply("Governance is not running yet.")
		return
	}
	if ce.Portal != nil || ce.User.ManagementRoom != ce.RoomID {
		ce.Reply("Ask for a claim code in your direct chat with the bridge bot.")
		return
	}
	code, expires, err := gv.Migration.IssueClaim(ce.Ctx, ce.User.MXID, ce.RoomID)
	if err != nil {
		ce.Reply("Could not make a claim code: %v", err)
		return
	}
	ce.Reply("Your claim code is `%s`. Send it, as the only text of a message, from your WhatsApp or Telegram account to any staff member of the organisation, before %s UTC. It works once; asking again replaces it.",
		code, expires.UTC().Format("2006-01-02 15:04"))
}

func (gv *Governance) cmdLinkContact(ce *commands.Event) {
	if gv.Migration == nil {
		ce.Reply("Governance is not running yet.")
		return
	}
	if len(ce.Args) != 2 {
		ce.Reply("Usage: `$cmdprefix link-contact <phone, @username or ID> <@matrix:id>`")
		return
	}
	ident, err := gv.Migration.Resolve(ce.Ctx, ce.Args[0])
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	if ok, err := gv.Migration.Knows(ce.Ctx, ident, ce.User.MXID); err != nil {
		ce.Reply("link-contact failed: %v", err)
		return
	} else if !ok && !gv.IsAdmin(ce.User.MXID) {
		ce.Reply("You can only link contacts you talk with.")
		return
	}
	e, err := gv.Migration.Link(ce.Ctx, string(ce.User.MXID), migration.LinkRequest{Identity: ident, MatrixID: id.UserID(ce.Args[1]), Source: migration.SourceStaff})
	if err != nil {
		ce.Reply("link-contact failed: %v", err)
		return
	}
	if e.State == migration.StatePending {
		ce.Reply("Noted: %s is pending until the contact (with a claim code) or an admin confirms it.", e.MatrixID)
	} else {
		ce.Reply("Linked to %s.", e.MatrixID)
	}
}

const directoryUsage = "add <identity> <@matrix:id> [department=…] [label=…] | import (CSV on the next lines) | unlink <identity> | confirm <identity> | list [pending|confirmed] [network] [@matrix:id]"

func (gv *Governance) cmdDirectory(ce *commands.Event) error {
	if len(ce.Args) == 0 {
		return errUsage(directoryUsage)
	}
	actor := string(ce.User.MXID)
	switch sub, args := strings.ToLower(ce.Args[0]), ce.Args[1:]; sub {
	case "add":
		if len(args) < 2 {
			return errUsage(directoryUsage)
		}
		req := migration.LinkRequest{MatrixID: id.UserID(args[1]), Source: migration.SourceAdmin}
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "department":
				req.Department = v
			case "label":
				req.Label = v
			default:
				return errUsage(directoryUsage)
			}
		}
		ident, err := gv.Migration.Resolve(ce.Ctx, args[0])
		if err != nil {
			return err
		}
		req.Identity = ident
		e, err := gv.Migration.Link(ce.Ctx, actor, req)
		if err != nil {
			return err
		}
		ce.Reply("%s %s is linked to %s.", e.Network, format.SafeMarkdownCode(e.Contact), e.MatrixID)
	case "import":
		_, csvText, _ := strings.Cut(ce.RawArgs, "\n")
		if strings.TrimSpace(csvText) == "" {
			return errUsage("import, then the CSV (identity,matrix_id,department,label) on the next lines of the same message")
		}
		res, err := gv.Migration.Import(ce.Ctx, actor, strings.NewReader(csvText))
		if err != nil {
			return err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Import: %d linked, %d unchanged, %d refused.", res.Linked, res.Unchanged, res.Failed)
		for _, re := range res.Errors {
			fmt.Fprintf(&b, "\n* line %d: %s", re.Line, gate.EscapeName(re.Error))
		}
		ce.Reply("%s", b.String())
	case "unlink", "confirm":
		if len(args) != 1 {
			return errUsage(directoryUsage)
		}
		ident, err := gv.Migration.Resolve(ce.Ctx, args[0])
		if err != nil {
			return err
		}
		if sub == "unlink" {
			e, err := gv.Migration.Unlink(ce.Ctx, actor, ident)
			if err != nil {
				return err
			}
			ce.Reply("%s %s is no longer linked to %s.", e.Network, format.SafeMarkdownCode(e.Contact), e.MatrixID)
		} else {
			e, err := gv.Migration.Confirm(ce.Ctx, actor, ident)
			if err != nil {
				return err
			}
			ce.Reply("Confirmed: %s %s is linked to %s.", e.Network, format.SafeMarkdownCode(e.Contact), e.MatrixID)
		}
	case "list":
		gv.logCommand(ce)
		f := migration.ListFilter{Limit: 100}
		for _, a := range args {
			switch {
			case a == string(migration.StatePending) || a == string(migration.StateConfirmed):
				f.State = migration.State(a)
			case strings.HasPrefix(a, "@"):
				f.MatrixID = id.UserID(a)
			default:
				f.Network = a
			}
		}
		list, err := gv.Migration.List(ce.Ctx, f)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			ce.Reply("No directory entry matches.")
			return nil
		}
		var b strings.Builder
		for _, e := range list {
			fmt.Fprintf(&b, "* %s %s → %s (%s, %s by %s)", e.Network, format.SafeMarkdownCode(e.Contact), e.MatrixID, e.State, e.Source, e.LinkedBy)
			if e.Department != "" || e.Label != "" {
				fmt.Fprintf(&b, " — %s %s", gate.EscapeName(e.Department), gate.EscapeName(e.Label))
			}
			b.WriteByte('\n')
		}
		ce.Reply("%d entr(ies):\n\n%s", len(list), b.String())
	default:
		return errUsage(directoryUsage)
	}
	return nil
}

func (gv *Governance) cmdMigration(ce *commands.Event) error {
	const usage = errUsage("summary | contact <identity> | deadlines | " + migrationCutOverUsage + " | department <@staff> <dept|--clear> | departments | invite-department <dept> [--dry-run] | invite-stop | progress | progress-link")
	if len(ce.Args) == 0 {
		return usage
	}
	gv.logCommand(ce)
	switch strings.ToLower(ce.Args[0]) {
	case "progress", "progress-link":
		return gv.cmdProgress(ce)
	case "department", "departments", "invite-department", "invite-stop":
		return gv.cmdMigrationInvite(ce)
	case "summary":
		counts, err := gv.Migration.Summary(ce.Ctx)
		if err != nil {
			return err
		}
		if len(counts) == 0 {
			ce.Reply("No outside contact yet.")
			return nil
		}
		var b strings.Builder
		b.WriteString("Outside contacts by migration status:\n\n")
		for _, network := range sortedKeys(counts) {
			parts := make([]string, len(migration.Statuses))
			for i, s := range migration.Statuses {
				parts[i] = fmt.Sprintf("%s %d", s, counts[network][s])
			}
			fmt.Fprintf(&b, "* %s: %s\n", network, strings.Join(parts, ", "))
		}
		ce.Reply("%s", b.String())
	case "contact":
		if len(ce.Args) != 2 {
			return usage
		}
		rep, err := gv.Migration.Contact(ce.Ctx, ce.Args[1])
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s: **%s**", rep.Network, format.SafeMarkdownCode(rep.Contact), rep.Status)
		if !rep.StatusChanged.IsZero() {
			line += " since " + rep.StatusChanged.Format("2006-01-02 15:04")
		}
		if rep.Link != nil {
			line += fmt.Sprintf("; Matrix account %s (%s, %s by %s)", rep.Link.MatrixID, rep.Link.State, rep.Link.Source, rep.Link.LinkedBy)
		} else {
			line += "; no Matrix account in the directory"
		}
		ce.Reply("%s", line)
	case "deadlines":
		steps := gv.Deadlines()
		if len(steps) == 0 {
			ce.Reply("No migration deadline is set (migration.deadlines in the config).")
			return nil
		}
		var b strings.Builder
		b.WriteString("Migration deadlines:\n\n")
		for _, s := range steps {
			state := "upcoming"
			if s.Reached {
				state = "in effect"
			}
			fmt.Fprintf(&b, "* %s %s: %s (%s)\n", s.Network, s.Step, s.At.Format("2006-01-02 15:04 UTC"), state)
		}
		ce.Reply("%s", b.String())
	case "chat", "staff", "cut-over":
		return gv.cmdMigrationCutOver(ce)
	default:
		return usage
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
