package migration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
)

// ActionInvitationSent is the audit action of an invitation to Matrix sent
// to a contact (listed in audit.Actions); the entry never holds its text.
const ActionInvitationSent = audit.ActionInvitationSent

// DefaultInvitePeriod is the migration.invite_period of a config that sets
// none: a contact gets at most one invitation in it.
const DefaultInvitePeriod = 30 * 24 * time.Hour

// Errors a caller branches on.
var (
	// ErrAlreadyOnMatrix: the contact is linked, cut over or retired.
	ErrAlreadyOnMatrix = errors.New("already has a Matrix account in the directory")
	// ErrInvitedRecently is wrapped by *InvitedRecentlyError.
	ErrInvitedRecently = errors.New("was invited recently")
)

// InvitedRecentlyError says when a contact was last invited and when the
// next invitation is allowed.
type InvitedRecentlyError struct {
	Last, Next time.Time
}

func (e *InvitedRecentlyError) Error() string {
	return fmt.Sprintf("%s (%s UTC): the next invitation is allowed from %s UTC", ErrInvitedRecently,
		e.Last.UTC().Format("2006-01-02 15:04"), e.Next.UTC().Format("2006-01-02 15:04"))
}

func (e *InvitedRecentlyError) Unwrap() error { return ErrInvitedRecently }

// The placeholders of an invitation's text.
const (
	PlaceholderContactName = "{contact_name}"
	PlaceholderStaffName   = "{staff_name}"
	PlaceholderJoinLink    = "{join_link}"
)

// DefaultInvitationText is the invitation of a config that sets none.
const DefaultInvitationText = "Hello {contact_name}, this is {staff_name}. Our organisation is moving its conversations to Matrix, " +
	"an open and secure messaging network. You can reach me there: {join_link}"

// MaxInvitationLength bounds the text of an invitation (after filling in).
const MaxInvitationLength = 2000

// InvitationTemplate is the organisation's invitation
// (migration.invitation).
type InvitationTemplate struct {
	// Language is the text's language (a tag such as "en"), for admins.
	Language string `yaml:"language" json:"language"`
	// Text is the invitation with placeholders {contact_name},
	// {staff_name} and {join_link}; DefaultInvitationText when empty.
	Text string `yaml:"text" json:"text"`
	// JoinLink is where a contact registers (e.g. the organisation's
	// registration page); empty: a matrix.to link to the staff member.
	JoinLink string `yaml:"join_link" json:"join_link"`
}

var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// Validate checks the template: only known placeholders, {join_link}
// present, a bounded text and an https (or http) join link.
func (t InvitationTemplate) Validate() error {
	text := t.text()
	for _, p := range placeholderRE.FindAllString(text, -1) {
		switch p {
		case PlaceholderContactName, PlaceholderStaffName, PlaceholderJoinLink:
		default:
			return fmt.Errorf("migration.invitation.text has an unknown placeholder %s (known: %s, %s, %s)", p,
				PlaceholderContactName, PlaceholderStaffName, PlaceholderJoinLink)
		}
	}
	if !strings.Contains(text, PlaceholderJoinLink) {
		return fmt.Errorf("migration.invitation.text must hold %s: the contact needs to know where to join", PlaceholderJoinLink)
	}
	if len(text) > MaxInvitationLength/2 {
		return fmt.Errorf("migration.invitation.text is longer than %d bytes", MaxInvitationLength/2)
	}
	if t.JoinLink != "" {
		u, err := url.Parse(t.JoinLink)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(t.JoinLink, " \n\t") {
			return fmt.Errorf("migration.invitation.join_link %q is not an http(s) URL", t.JoinLink)
		}
	}
	return nil
}

func (t InvitationTemplate) text() string {
	if strings.TrimSpace(t.Text) == "" {
		return DefaultInvitationText
	}
	return t.Text
}

// Link is the join link of an invitation sent by staff: the configured
// one, or a matrix.to link to the staff member.
func (t InvitationTemplate) Link(staff id.UserID) string {
	if t.JoinLink != "" {
		return t.JoinLink
	}
	return staff.URI().MatrixToURL()
}

// Render fills the template in for a contact called contactName, from the
// staff member staff called staffName. Names are cut to one line of at
// most 100 bytes.
func (t InvitationTemplate) Render(contactName, staffName string, staff id.UserID) string {
	clean := func(s, def string) string {
		s = strings.Join(strings.Fields(s), " ")
		if len(s) > 100 {
			s = strings.ToValidUTF8(s[:100], "")
		}
		if s == "" {
			return def
		}
		return s
	}
	r := strings.NewReplacer(PlaceholderContactName, clean(contactName, "there"), PlaceholderStaffName, clean(staffName, staff.Localpart()),
		PlaceholderJoinLink, t.Link(staff))
	return r.Replace(t.text())
}

// Invitation is the last invitation sent to a contact.
type Invitation struct {
	Identity
	Staff  id.UserID `json:"staff"`
	SentBy string    `json:"sent_by"`
	SentAt time.Time `json:"sent_at"`
	// Count is how many invitations the contact got in all.
	Count int64 `json:"count"`
}

const (
	getInvitationQuery    = `SELECT staff, sent_by, sent_at, sent_count FROM governance_invitation WHERE network = $1 AND contact = $2`
	upsertInvitationQuery = `
		INSERT INTO governance_invitation (network, contact, staff, sent_by, sent_at, sent_count) VALUES ($1, $2, $3, $4, $5, 1)
		ON CONFLICT (network, contact) DO UPDATE SET staff = excluded.staff, sent_by = excluded.sent_by,
			sent_at = excluded.sent_at, sent_count = governance_invitation.sent_count + 1
	`
)

// LastInvitation returns the last invitation sent to ident, or nil.
func (d *Directory) LastInvitation(ctx context.Context, ident Identity) (*Invitation, error) {
	inv := Invitation{Identity: ident}
	var staff string
	var at int64
	err := d.db.QueryRow(ctx, getInvitationQuery, ident.Network, ident.Contact).Scan(&staff, &inv.SentBy, &at, &inv.Count)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get invitation: %w", err)
	}
	inv.Staff, inv.SentAt = id.UserID(staff), time.UnixMilli(at).UTC()
	return &inv, nil
}

// CanInvite checks that ident may be invited now: it is not on Matrix yet
// (ErrAlreadyOnMatrix) and was not invited within period
// (*InvitedRecentlyError; DefaultInvitePeriod when period is 0).
func (d *Directory) CanInvite(ctx context.Context, ident Identity, period time.Duration) error {
	st, _, err := d.Status(ctx, ident)
	if err != nil {
		return err
	}
	if st != StatusBridged && st != StatusInvited {
		return fmt.Errorf("the contact %w (status %s)", ErrAlreadyOnMatrix, st)
	}
	if e, err := d.Get(ctx, ident); err != nil {
		return err
	} else if e != nil && e.State == StateConfirmed {
		return fmt.Errorf("the contact %w (%s)", ErrAlreadyOnMatrix, e.MatrixID)
	}
	last, err := d.LastInvitation(ctx, ident)
	if err != nil || last == nil {
		return err
	}
	if period <= 0 {
		period = DefaultInvitePeriod
	}
	if next := last.SentAt.Add(period); d.now().Before(next) {
		return &InvitedRecentlyError{Last: last.SentAt, Next: next}
	}
	return nil
}

// RecordInvitation records that ident was sent an invitation through
// staff's chat, at actor's request (bulk: as part of a department's run):
// it is stored, audited (never the text) and the contact becomes
// "invited" (unless it is further on).
func (d *Directory) RecordInvitation(ctx context.Context, actor string, ident Identity, staff id.UserID, bulk bool) error {
	return d.inTxn(ctx, func(ctx context.Context) error {
		if _, err := d.db.Exec(ctx, upsertInvitationQuery, ident.Network, ident.Contact, string(staff), actor, d.now().UnixMilli()); err != nil {
			return fmt.Errorf("failed to store invitation: %w", err)
		}
		if d.log != nil {
			_, err := d.log.Append(ctx, audit.Entry{Actor: actor, Action: ActionInvitationSent, Network: ident.Network, Contact: ident.Contact,
				Staff: staff, Details: audit.Details(map[string]any{"bulk": bulk})})
			if err != nil {
				return fmt.Errorf("failed to audit %s: %w", ActionInvitationSent, err)
			}
		}
		return d.setStatus(ctx, actor, ident, StatusInvited, StatusBridged)
	})
}

// Pacer spaces invitations: at most one per login every PerLogin, and one
// across all logins every Global. Not safe for concurrent use; it keeps
// one time per login it saw (a run's logins).
type Pacer struct {
	PerLogin, Global time.Duration
	last             map[string]time.Time
	lastAny          time.Time
}

// Next returns when login may send next (now or later).
func (p *Pacer) Next(login string, now time.Time) time.Time {
	next := now
	if !p.lastAny.IsZero() {
		next = laterOf(next, p.lastAny.Add(p.Global))
	}
	if t, ok := p.last[login]; ok {
		next = laterOf(next, t.Add(p.PerLogin))
	}
	return next
}

// Sent notes that login sent at at.
func (p *Pacer) Sent(login string, at time.Time) {
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	p.last[login], p.lastAny = at, at
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
