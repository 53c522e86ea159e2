package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/governance/policy"
)

// Invitations to Matrix: a staff member (or an admin, for a staff member)
// sends a contact the organisation's invitation over the network, through
// the staff member's chat with the contact; an admin invites a whole
// department, paced. A department's run lives in memory only: a restart
// ends it, and running the command again skips the contacts already
// invited in the period.

// ActiveWindow is how recent a contact's last message must be for a
// department's invitation run.
const ActiveWindow = 30 * 24 * time.Hour

// Bounds of a department's run.
const (
	// pacePoll is the longest real wait between two looks at the clock
	// while a run waits for its pace: a manual clock advanced by a test
	// is noticed within it.
	pacePoll = 250 * time.Millisecond
	// maxListed is how many contacts a dry run names per group.
	maxListed = 20
	// describeTimeout bounds asking a connector who a contact is.
	describeTimeout = 10 * time.Second
	// endNoticeTimeout bounds posting a run's end notice.
	endNoticeTimeout = 10 * time.Second
	// inviteTimeout bounds one invitation of a department's run: once
	// started it runs to its end (sent and recorded), a stop takes effect
	// between two invitations.
	inviteTimeout = time.Minute
)

// progressEvery is how many invitations between progress notices (a
// variable for the tests).
var progressEvery = 10

// Errors of the invitations a caller branches on.
var (
	ErrNoChat         = errors.New("no direct chat with that contact")
	ErrNotYourChat    = errors.New("this is not your chat")
	ErrRefusedInvite  = errors.New("the organisation's policy refuses this contact")
	ErrInviteRunning  = errors.New("a department's invitations are already being sent")
	ErrNoInviteRun    = errors.New("no department's invitations are being sent")
	ErrInviteInFlight = errors.New("an invitation to this contact is being sent")
)

// inviter is the invitations' state of one Governance.
type inviter struct {
	mu       sync.Mutex
	inFlight map[migration.Identity]bool // guarded by mu
	run      *inviteRun                  // guarded by mu
	// pacer spaces the runs' invitations, across runs: only the running
	// run uses it.
	pacer migration.Pacer
}

type inviteRun struct {
	dept    string
	actor   string
	cancel  context.CancelFunc
	stopped string // who stopped it; guarded by inviter.mu
	done    chan struct{}
}

// inviters holds each Governance's inviter: Governance (admin.go) has no
// field for it.
var inviters sync.Map // *Governance → *inviter

func (gv *Governance) inviter() *inviter {
	v, _ := inviters.LoadOrStore(gv, &inviter{inFlight: map[migration.Identity]bool{}})
	return v.(*inviter)
}

// Start starts the gate, then applies the config file's departments
// (migration.departments) and starts the weekly progress summary.
func (gv *Governance) Start(ctx context.Context) error {
	if err := gv.Gate.Start(ctx); err != nil {
		return err
	}
	n, err := gv.Migration.ApplyConfigDepartments(ctx, gv.Config().Migration.Departments)
	if err != nil {
		gv.Gate.Stop()
		return fmt.Errorf("failed to apply migration.departments: %w", err)
	}
	if n > 0 {
		zerolog.Ctx(ctx).Info().Int("staff", n).Msg("Applied the config file's departments")
	}
	if err = gv.startProgress(ctx); err != nil {
		gv.Gate.Stop()
		return err
	}
	return nil
}

// Stop ends a department's run (it is not resumed at the next start) and
// stops the gate.
func (gv *Governance) Stop() {
	inv := gv.inviter()
	inv.mu.Lock()
	run := inv.run
	inv.mu.Unlock()
	if run != nil {
		run.cancel()
		<-run.done
	}
	gv.stopProgress()
	gv.Gate.Stop()
	inviters.Delete(gv)
}

func (gv *Governance) now() time.Time {
	if gv.Now != nil {
		return gv.Now()
	}
	return time.Now()
}

// inviteTarget is a contact and the staff member's chat it is invited
// through.
type inviteTarget struct {
	ident  migration.Identity
	portal *bridgev2.Portal
	login  *bridgev2.UserLogin
}

func (t inviteTarget) network() string { return t.ident.Network }

// InviteResult is an invitation sent.
type InviteResult struct {
	Network string    `json:"network"`
	Contact string    `json:"contact"`
	Name    string    `json:"name"`
	Staff   id.UserID `json:"staff"`
	RoomID  id.RoomID `json:"room_id"`
	// Next is when the contact may be invited again.
	Next time.Time `json:"next"`
}

func (gv *Governance) invitePeriod() time.Duration {
	return time.Duration(gv.Config().Migration.InvitePeriod)
}

// dmPortals lists the direct-chat portals with a room, by contact.
func (gv *Governance) dmPortals(ctx context.Context) (map[migration.Identity][]*bridgev2.Portal, error) {
	portals, err := gv.Bridge().GetAllPortalsWithMXID(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to list portals: %w", err)
	}
	out := map[migration.Identity][]*bridgev2.Portal{}
	for _, p := range portals {
		if p.OtherUserID == "" || p.Receiver == "" {
			continue
		}
		ident := migration.Identity{Network: netid.Network(string(p.ID)), Contact: gv.Contacts.Key(p.OtherUserID)}
		out[ident] = append(out[ident], p)
	}
	return out, nil
}

// targetIn finds staff's chat with ident among portals: a portal whose
// login is staff's and is logged in.
func (gv *Governance) targetIn(ctx context.Context, portals []*bridgev2.Portal, ident migration.Identity, staff id.UserID) (inviteTarget, error) {
	for _, p := range portals {
		login, err := gv.Bridge().GetExistingUserLoginByID(ctx, p.Receiver)
		if err != nil {
			return inviteTarget{}, fmt.Errorf("failed to get login: %w", err)
		}
		if login != nil && login.UserMXID == staff && login.Client != nil && login.Client.IsLoggedIn() {
			return inviteTarget{ident: ident, portal: p, login: login}, nil
		}
	}
	return inviteTarget{}, fmt.Errorf("%w: %s has no logged-in %s chat with them", ErrNoChat, staff, networkName(ident.Network))
}

// portalTarget is the target of an invitation asked for in a portal room
// by user: a direct chat whose login is user's (or any, for an admin).
func (gv *Governance) portalTarget(ctx context.Context, portal *bridgev2.Portal, user id.UserID) (inviteTarget, error) {
	if portal.OtherUserID == "" {
		return inviteTarget{}, fmt.Errorf("%w: invitations go to one contact, from your direct chat with them", ErrNoChat)
	}
	login, err := gv.Bridge().GetExistingUserLoginByID(ctx, portal.Receiver)
	if err != nil {
		return inviteTarget{}, fmt.Errorf("failed to get login: %w", err)
	}
	if login == nil || (login.UserMXID != user && !gv.IsAdmin(user)) {
		return inviteTarget{}, ErrNotYourChat
	}
	if login.Client == nil || !login.Client.IsLoggedIn() {
		return inviteTarget{}, fmt.Errorf("%w: the %s account of this chat is not logged in", ErrNoChat, networkName(netid.Network(string(portal.ID))))
	}
	ident := migration.Identity{Network: netid.Network(string(portal.ID)), Contact: gv.Contacts.Key(portal.OtherUserID)}
	return inviteTarget{ident: ident, portal: portal, login: login}, nil
}

// contactName is the contact's name as the staff member's chat shows it.
func (gv *Governance) contactName(ctx context.Context, t inviteTarget) string {
	if ghost, err := gv.Bridge().GetExistingGhostByID(ctx, t.portal.OtherUserID); err == nil && ghost != nil && ghost.Name != "" {
		return ghost.Name
	}
	return t.portal.Name
}

// policyRefusal asks the policy, without side effects, whether t's
// contact may get a message from the staff member: the reason of a deny,
// or "".
func (gv *Governance) policyRefusal(ctx context.Context, t inviteTarget) string {
	ident := remote.Identity{ID: t.portal.OtherUserID}
	if d, ok := t.login.Client.(remote.Describer); ok {
		dctx, cancel := context.WithTimeout(ctx, describeTimeout)
		if described, err := d.DescribeRemoteUser(dctx, t.portal.OtherUserID); err == nil {
			ident = described
		} else {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Connector could not describe the contact to invite")
		}
		cancel()
	}
	r := policy.Remote{Phone: ident.Phone}
	if t.network() == policy.NetworkTelegram {
		r.TelegramUserID, r.TelegramUsername = ident.Number, ident.Username
	}
	dec := gv.Policy.Evaluate(policy.Request{Network: t.network(), Direction: policy.Outbound, Staff: t.login.UserMXID, Remote: r, ChatID: t.portal.ID})
	if dec.Verdict == policy.Deny {
		return dec.Reason
	}
	return ""
}

// check tells whether t may be invited now: on Matrix already, invited
// recently, refused by the policy.
func (gv *Governance) checkInvite(ctx context.Context, t inviteTarget) error {
	if err := gv.Migration.CanInvite(ctx, t.ident, gv.invitePeriod()); err != nil {
		return err
	}
	if reason := gv.policyRefusal(ctx, t); reason != "" {
		return fmt.Errorf("%w: %s", ErrRefusedInvite, reason)
	}
	return nil
}

// invite sends the invitation to t's contact through its chat, at actor's
// request, records it and tells the staff member in the chat.
func (gv *Governance) invite(ctx context.Context, actor string, t inviteTarget, bulk bool) (*InviteResult, error) {
	inv := gv.inviter()
	inv.mu.Lock()
	if inv.inFlight[t.ident] {
		inv.mu.Unlock()
		return nil, ErrInviteInFlight
	}
	inv.inFlight[t.ident] = true
	inv.mu.Unlock()
	defer func() {
		inv.mu.Lock()
		delete(inv.inFlight, t.ident)
		inv.mu.Unlock()
	}()
	if err := gv.checkInvite(ctx, t); err != nil {
		return nil, err
	}
	staff := t.login.UserMXID
	name := gv.contactName(ctx, t)
	text := gv.Config().Migration.Invitation.Render(name, t.login.RemoteName, staff)
	if err := gv.sendInvitation(ctx, t, text); err != nil {
		return nil, err
	}
	// The invitation is out: it is recorded even if the caller gave up
	// meanwhile, so that the contact is not invited again in the period.
	if err := gv.Migration.RecordInvitation(context.WithoutCancel(ctx), actor, t.ident, staff, bulk); err != nil {
		return nil, err
	}
	asked := ""
	if actor != string(staff) {
		asked = fmt.Sprintf(" at %s's request", actor)
	}
	// Plain text: the name comes from the network, the text from the
	// config file; neither is read as markdown.
	body := fmt.Sprintf("An invitation to Matrix was sent to %s on %s%s:\n\n%s", name, networkName(t.network()), asked, text)
	if _, err := gv.Bridge().Bot.SendMessage(ctx, t.portal.MXID, event.EventMessage,
		&event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: body}}, nil); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to tell the staff member of the invitation")
	}
	return &InviteResult{Network: t.network(), Contact: t.ident.Contact, Name: gv.ShownName(name), Staff: staff, RoomID: t.portal.MXID,
		Next: gv.now().Add(gv.invitePeriod())}, nil
}

// sendInvitation sends text to the contact as the staff member would from
// the portal: a Matrix message handed to the login's connector, so that its
// send path and the outbound check apply.
func (gv *Governance) sendInvitation(ctx context.Context, t inviteTarget, text string) error {
	raw := make([]byte, 12)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("failed to make invitation ID: %w", err)
	}
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
	evt := &event.Event{
		Type: event.EventMessage, RoomID: t.portal.MXID, Sender: t.login.UserMXID,
		ID: id.EventID("$passerelle-invitation-" + hex.EncodeToString(raw)), Timestamp: gv.now().UnixMilli(),
		Content: event.Content{Parsed: content},
	}
	msg := &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{Event: evt, Content: content, Portal: t.portal}}
	if _, err := t.login.Client.HandleMatrixMessage(ctx, msg); err != nil {
		var refusal *remote.Refusal
		if errors.As(err, &refusal) {
			return fmt.Errorf("%w: %s", ErrRefusedInvite, refusal.Reason)
		}
		return fmt.Errorf("failed to send the invitation: %w", err)
	}
	return nil
}

// networkName is the human name of a network.
func networkName(network string) string { return gate.NetworkName(network) }

// inviteContact invites the contact that identity names through staff's
// chat with them, at actor's request.
func (gv *Governance) inviteContact(ctx context.Context, actor string, identity string, staff id.UserID) (*InviteResult, error) {
	ident, err := gv.Migration.Resolve(ctx, identity)
	if err != nil {
		return nil, err
	}
	portals, err := gv.dmPortals(ctx)
	if err != nil {
		return nil, err
	}
	t, err := gv.targetIn(ctx, portals[ident], ident, staff)
	if err != nil {
		return nil, err
	}
	return gv.invite(ctx, actor, t, false)
}

// invitePlan is what a department's run would do.
type invitePlan struct {
	Department string          `json:"department"`
	Invite     []planned       `json:"invite"`
	Skipped    []plannedReason `json:"skipped"`
	Refused    []plannedReason `json:"refused"`
	targets    []inviteTarget
}

type planned struct {
	Network string    `json:"network"`
	Contact string    `json:"contact"`
	Name    string    `json:"name"`
	Staff   id.UserID `json:"staff"`
}

type plannedReason struct {
	planned
	Reason string `json:"reason"`
}

// planDepartment lists the department's active contacts (last
// ActiveWindow) and what a run would do with each: invite it through the
// chat of the most recent staff member who has one, skip it (on Matrix,
// invited recently, no chat), or not invite it (the policy refuses it).
func (gv *Governance) planDepartment(ctx context.Context, dept string) (*invitePlan, error) {
	dept, err := migration.CleanDepartment(dept)
	if err != nil {
		return nil, err
	}
	if dept == "" {
		return nil, errors.New("name a department")
	}
	if ok, err := gv.Migration.DepartmentExists(ctx, dept); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%q: %w", dept, migration.ErrUnknownDepartment)
	}
	contacts, err := gv.Migration.ActiveContacts(ctx, gv.now().Add(-ActiveWindow), dept)
	if err != nil {
		return nil, err
	}
	portals, err := gv.dmPortals(ctx)
	if err != nil {
		return nil, err
	}
	plan := &invitePlan{Department: dept, Invite: []planned{}, Skipped: []plannedReason{}, Refused: []plannedReason{}}
	for _, c := range contacts {
		p := planned{Network: c.Network, Contact: c.Contact}
		var t inviteTarget
		err := fmt.Errorf("%w: no staff member talked with them in a direct chat", ErrNoChat)
		for _, staff := range c.Staff {
			if t, err = gv.targetIn(ctx, portals[c.Identity], c.Identity, staff); err == nil {
				break
			}
		}
		if err == nil {
			p.Name, p.Staff = gv.ShownName(gv.contactName(ctx, t)), t.login.UserMXID
			err = gv.checkInvite(ctx, t)
		} else if len(c.Staff) > 0 {
			p.Staff = c.Staff[0]
		}
		switch {
		case err == nil:
			plan.Invite = append(plan.Invite, p)
			plan.targets = append(plan.targets, t)
		case errors.Is(err, ErrRefusedInvite):
			plan.Refused = append(plan.Refused, plannedReason{p, err.Error()})
		case errors.Is(err, migration.ErrAlreadyOnMatrix), errors.Is(err, migration.ErrInvitedRecently), errors.Is(err, ErrNoChat):
			plan.Skipped = append(plan.Skipped, plannedReason{p, err.Error()})
		default:
			return nil, err
		}
	}
	return plan, nil
}

// startDepartment starts a department's run in the background, at
// actor's request: one run at a time.
func (gv *Governance) startDepartment(ctx context.Context, actor string, plan *invitePlan) error {
	inv := gv.inviter()
	inv.mu.Lock()
	if inv.run != nil {
		dept := inv.run.dept
		inv.mu.Unlock()
		return fmt.Errorf("%w (department %q): stop it with `gov-migration invite-stop`", ErrInviteRunning, dept)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	run := &inviteRun{dept: plan.Department, actor: actor, cancel: cancel, done: make(chan struct{})}
	inv.run = run
	inv.mu.Unlock()
	go func() {
		defer close(run.done)
		defer func() {
			inv.mu.Lock()
			inv.run = nil
			inv.mu.Unlock()
			cancel()
		}()
		defer func() {
			if p := recover(); p != nil {
				zerolog.Ctx(runCtx).Error().Any("panic", p).Msg("Panic in a department's invitations")
				gv.adminNotice(runCtx, "The invitations to department %s stopped on an internal error.", gate.EscapeName(plan.Department))
			}
		}()
		gv.runDepartment(runCtx, run, plan)
	}()
	return nil
}

// runDepartment sends the plan's invitations, paced, with notices in the
// admin room.
func (gv *Governance) runDepartment(ctx context.Context, run *inviteRun, plan *invitePlan) {
	rate := gv.Config().Migration.InviteRate
	pacer := &gv.inviter().pacer
	pacer.PerLogin, pacer.Global = time.Duration(rate.PerLogin), time.Duration(rate.Global)
	dept := gate.EscapeName(plan.Department)
	total := len(plan.targets)
	skipped, refused := len(plan.Skipped), len(plan.Refused)
	failed, sent := 0, 0
	gv.adminNotice(ctx, "Inviting %d contact(s) of department %s to Matrix (%d skipped, %d refused by the policy), at most one per staff account every %s. Stop with `gov-migration invite-stop`.",
		total, dept, skipped, refused, time.Duration(rate.PerLogin))
	for i, t := range plan.targets {
		if !gv.waitPace(ctx, pacer, string(t.login.ID)) {
			break
		}
		one, cancel := context.WithTimeout(context.WithoutCancel(ctx), inviteTimeout)
		_, err := gv.invite(one, run.actor, t, true)
		cancel()
		switch {
		case err == nil:
			sent++
			pacer.Sent(string(t.login.ID), gv.now())
			if sent%progressEvery == 0 {
				gv.adminNotice(ctx, "Department %s: %d of %d invitation(s) sent.", dept, sent, total)
			}
		case errors.Is(err, ErrRefusedInvite):
			refused++
		case errors.Is(err, migration.ErrAlreadyOnMatrix), errors.Is(err, migration.ErrInvitedRecently), errors.Is(err, ErrInviteInFlight):
			skipped++
		default:
			failed++
			zerolog.Ctx(ctx).Err(err).Int("contact_index", i).Msg("Failed to send a department's invitation")
		}
		if ctx.Err() != nil {
			break
		}
	}
	inv := gv.inviter()
	inv.mu.Lock()
	stoppedBy := run.stopped
	inv.mu.Unlock()
	how := "finished"
	if stoppedBy != "" {
		how = "stopped by " + stoppedBy
	} else if ctx.Err() != nil {
		how = "stopped (the gateway is stopping; run the command again after the restart: contacts already invited are skipped)"
	}
	// The end notice is posted even when the gateway stops, but never
	// holds the stop up for long.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endNoticeTimeout)
	defer cancel()
	gv.adminNotice(endCtx, "Invitations to department %s %s: %d sent, %d skipped, %d refused, %d failed.", dept, how, sent, skipped, refused, failed)
}

// waitPace waits until login may send, on the gate's clock; false when
// the run was stopped.
func (gv *Governance) waitPace(ctx context.Context, p *migration.Pacer, login string) bool {
	for {
		now := gv.now()
		next := p.Next(login, now)
		if !next.After(now) {
			return ctx.Err() == nil
		}
		timer := time.NewTimer(min(next.Sub(now), pacePoll))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// stopDepartment stops the running department's run, as actor, and waits
// for its end notice.
func (gv *Governance) stopDepartment(actor string) (string, error) {
	inv := gv.inviter()
	inv.mu.Lock()
	run := inv.run
	if run != nil {
		run.stopped = actor
	}
	inv.mu.Unlock()
	if run == nil {
		return "", ErrNoInviteRun
	}
	run.cancel()
	<-run.done
	return run.dept, nil
}

func (gv *Governance) adminNotice(ctx context.Context, format string, args ...any) {
	room, err := gv.AdminRoom(ctx)
	if err == nil {
		err = gv.Notice(ctx, room, format, args...)
	}
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to post an invitation notice in the admin room")
	}
}
