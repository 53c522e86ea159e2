package gate

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/governance/policy"
)

// ConfigKey is the gate's section under `network:`.
const ConfigKey = "governance"

// Config is the `network.governance` section of the config file.
//
//	network:
//	    governance:
//	        default_mode: approval
//	        modes: {telegram: allowlist}
//	        rules:
//	            - {action: deny, phone_prefix: "+7"}
//	        admins: ["@admin:example.org"]
//	        admin_room: ""
//	        approval_ttl: 72h
//	        retention: 8760h
//	        contact_hash_key: ""
//	        audit_anchor_interval: 24h
//	        api: {token: "", allow_remote: false, trust_forwarded: false}
//	        media:
//	            "*": {outbound: {refused_types: [application/x-msdownload]}}
//	            whatsapp: {inbound: {max_size: 50MB}}
type Config struct {
	// Policy holds default_mode, modes and rules.
	Policy policy.Config `yaml:",inline"`
	// Admins are the Matrix users who decide: they sit in the admin room,
	// get power level 100 in every portal and may use the gov-* commands
	// and the HTTP admin API.
	Admins []id.UserID `yaml:"admins"`
	// AdminRoom is the room where requests go. Empty: the bot creates one
	// (and remembers it) and invites the admins.
	AdminRoom id.RoomID `yaml:"admin_room"`
	// ApprovalTTL is how long a request waits before it expires as denied.
	ApprovalTTL Duration `yaml:"approval_ttl"`
	// Retention is how long audit log entries are kept; 0 keeps them.
	Retention Duration `yaml:"retention"`
	// ContactHashKey, when set (at least 32 bytes), turns on hashed mode
	// (governance/seal): the governance tables, the audit log and admin
	// outputs keep identifiers only as keyed hashes, or encrypted where the
	// gateway needs them back.
	ContactHashKey string `yaml:"contact_hash_key"`
	// AuditAnchorInterval is how often the audit chain's head is posted in
	// the admin room (when it moved), so that a copy lives outside the
	// database; 0 posts it only on demand (gov-head).
	AuditAnchorInterval Duration `yaml:"audit_anchor_interval"`
	// API is the HTTP admin API on the appservice's listener.
	API APIConfig `yaml:"api"`
	// Media limits the files that cross, per network ("*" for all) and
	// direction: a maximum size and allowed or refused MIME types. Empty:
	// no limit beyond the gateway's, and every type crosses.
	Media policy.MediaConfig `yaml:"media"`
	// StaffSignals says which signals of the staff members go out to the
	// networks: read receipts, typing and presence (all on by default).
	StaffSignals StaffSignals `yaml:"staff_signals"`
	// DisappearingMessages is what happens to disappearing messages
	// (WhatsApp timers, Telegram self-destructing messages) in Matrix:
	// "honour" (the default) removes the Matrix copy when the timer runs
	// out, "keep" keeps it for good (legal archiving). Either way each
	// timer change is an audit entry.
	DisappearingMessages string `yaml:"disappearing_messages"`
	// Migration configures the migration directory (governance/migration).
	Migration MigrationConfig `yaml:"migration"`
}

// MigrationConfig is the `migration` part of the section.
type MigrationConfig struct {
	// StaffLinks: "confirm" (a staff member's link waits until the contact
	// or an admin confirms it) or "trust" (confirmed at once).
	StaffLinks string `yaml:"staff_links"`
	// ClaimTTL is how long a claim code stays valid.
	ClaimTTL Duration `yaml:"claim_ttl"`
	// Departments puts staff members in departments (name → Matrix IDs),
	// applied at start; an admin's `gov-migration department` wins.
	Departments map[string][]id.UserID `yaml:"departments"`
	// Invitation is the organisation's invitation to Matrix.
	Invitation migration.InvitationTemplate `yaml:"invitation"`
	// InvitePeriod: a contact gets at most one invitation in it.
	InvitePeriod Duration `yaml:"invite_period"`
	// InviteRate paces a department's invitations.
	InviteRate InviteRate `yaml:"invite_rate"`
	// Progress configures the progress figures, page and weekly summary.
	Progress ProgressConfig `yaml:"progress"`
	// Deadlines are the migration deadlines of each network (deadline.go).
	Deadlines map[string]NetworkDeadlines `yaml:"deadlines"`
	// DeadlineNotices are how long before each deadline step it is
	// announced; DefaultDeadlineNotices when unset.
	DeadlineNotices []Duration `yaml:"deadline_notices"`
	// CutOver configures the cut-over of chats to native Matrix rooms.
	CutOver CutOverConfig `yaml:"cutover"`
}

// InviteRate paces bulk invitations: at most one per staff account every
// PerLogin, and one across all accounts every Global.
type InviteRate struct {
	PerLogin Duration `yaml:"per_login"`
	Global   Duration `yaml:"global"`
}

// Defaults of the invitations.
const (
	DefaultInvitePeriod   = migration.DefaultInvitePeriod
	DefaultInvitePerLogin = 20 * time.Second
	DefaultInviteGlobal   = 5 * time.Second
)

func (m *MigrationConfig) validateInvitations() error {
	if _, err := migration.ConfigDepartments(m.Departments); err != nil {
		return fmt.Errorf("migration.departments: %w", err)
	}
	if err := m.Invitation.Validate(); err != nil {
		return err
	}
	if m.InvitePeriod <= 0 || m.InviteRate.PerLogin <= 0 || m.InviteRate.Global < 0 {
		return fmt.Errorf("migration.invite_period and migration.invite_rate.per_login must be positive, migration.invite_rate.global not negative")
	}
	return nil
}

// ProgressConfig is the `migration.progress` part of the section.
type ProgressConfig struct {
	// BorderWeeks is how many ISO weeks of border message counts are kept.
	BorderWeeks int `yaml:"border_weeks"`
	// PageURL is the address, as an admin's browser reaches it, of the
	// listener that serves the progress page (the appservice's); empty
	// takes appservice.address.
	PageURL string `yaml:"page_url"`
	// SummaryTimezone is the IANA time zone of the weekly summary, posted
	// in the admin room on Mondays at 09:00; "off" posts none.
	SummaryTimezone string `yaml:"summary_timezone"`
}

// SummaryOff is the summary_timezone that switches the weekly summary off.
const SummaryOff = "off"

// Location is the time zone of the weekly summary (nil when off).
func (pc ProgressConfig) Location() (*time.Location, error) {
	switch pc.SummaryTimezone {
	case SummaryOff:
		return nil, nil
	case "":
		return time.UTC, nil
	}
	return time.LoadLocation(pc.SummaryTimezone)
}

// DefaultClaimTTL is the migration.claim_ttl of a config that sets none.
const DefaultClaimTTL = time.Hour

// What DisappearingMessages may say.
const (
	DisappearingHonour = "honour"
	DisappearingKeep   = "keep"
)

// StaffSignals switches what the contacts may learn of the staff members
// beyond their messages.
type StaffSignals struct {
	// ReadReceipts: a staff member's read marker tells the contact that
	// their message was read.
	ReadReceipts bool `yaml:"read_receipts"`
	// Typing: the contact sees that a staff member is typing.
	Typing bool `yaml:"typing"`
	// Presence: the staff member's account shows online on the network
	// while the gateway runs.
	Presence bool `yaml:"presence"`
}

// APIConfig configures the HTTP admin API.
type APIConfig struct {
	// Token is the bearer token of the API; empty switches the API off.
	Token string `yaml:"token"`
	// AllowRemote lets clients other than loopback call the API.
	AllowRemote bool `yaml:"allow_remote"`
	// TrustForwarded accepts requests through a reverse proxy, which carry
	// X-Forwarded-For or Forwarded: the client is then the address the
	// proxy names, and the loopback check applies to it. Off, such requests
	// are refused: a proxy on the same machine makes every client look
	// loopback.
	TrustForwarded bool `yaml:"trust_forwarded"`
}

// MinAPITokenLength is the shortest api.token accepted.
const MinAPITokenLength = 32

// DefaultApprovalTTL is the approval_ttl of a config that sets none.
const DefaultApprovalTTL = 72 * time.Hour

// DefaultAuditAnchorInterval is the audit_anchor_interval of a config that
// sets none.
const DefaultAuditAnchorInterval = 24 * time.Hour

//go:embed example-config.yaml
var ExampleConfig string

func defaultConfig() Config {
	return Config{Policy: policy.Config{DefaultMode: policy.ModeOpen}, ApprovalTTL: Duration(DefaultApprovalTTL),
		AuditAnchorInterval:  Duration(DefaultAuditAnchorInterval),
		StaffSignals:         StaffSignals{ReadReceipts: true, Typing: true, Presence: true},
		DisappearingMessages: DisappearingHonour,
		Migration: MigrationConfig{StaffLinks: string(migration.StaffLinksConfirm), ClaimTTL: Duration(DefaultClaimTTL),
			InvitePeriod: Duration(DefaultInvitePeriod), InviteRate: InviteRate{PerLogin: Duration(DefaultInvitePerLogin), Global: Duration(DefaultInviteGlobal)},
			Progress: ProgressConfig{BorderWeeks: migration.DefaultBorderWeeks, SummaryTimezone: "UTC"}}}
}

func upgradeConfig(helper up.Helper) {
	helper.Copy(up.Str|up.Null, "default_mode")
	helper.Copy(up.Map, "modes")
	helper.Copy(up.List, "rules")
	helper.Copy(up.List, "admins")
	helper.Copy(up.Str|up.Null, "admin_room")
	helper.Copy(up.Str|up.Int, "approval_ttl")
	helper.Copy(up.Str|up.Int, "retention")
	helper.Copy(up.Str|up.Null, "contact_hash_key")
	helper.Copy(up.Str|up.Int, "audit_anchor_interval")
	helper.Copy(up.Str|up.Null, "api", "token")
	helper.Copy(up.Bool, "api", "allow_remote")
	helper.Copy(up.Bool, "api", "trust_forwarded")
	helper.Copy(up.Map, "media")
	helper.Copy(up.Bool, "staff_signals", "read_receipts")
	helper.Copy(up.Bool, "staff_signals", "typing")
	helper.Copy(up.Bool, "staff_signals", "presence")
	helper.Copy(up.Str, "disappearing_messages")
	helper.Copy(up.Str, "migration", "staff_links")
	helper.Copy(up.Str|up.Int, "migration", "claim_ttl")
	helper.Copy(up.Int, "migration", "progress", "border_weeks")
	helper.Copy(up.Str|up.Null, "migration", "progress", "page_url")
	helper.Copy(up.Str, "migration", "progress", "summary_timezone")
	helper.Copy(up.Map, "migration", "departments")
	helper.Copy(up.Str|up.Null, "migration", "invitation", "language")
	helper.Copy(up.Str|up.Null, "migration", "invitation", "text")
	helper.Copy(up.Str|up.Null, "migration", "invitation", "join_link")
	helper.Copy(up.Str|up.Int, "migration", "invite_period")
	helper.Copy(up.Str|up.Int, "migration", "invite_rate", "per_login")
	helper.Copy(up.Str|up.Int, "migration", "invite_rate", "global")
	helper.Copy(up.Map, "migration", "deadlines")
	helper.Copy(up.List, "migration", "deadline_notices")
	helper.Copy(up.Str, "migration", "cutover", "final_message")
	helper.Copy(up.Str, "migration", "cutover", "reminder")
	helper.Copy(up.Str|up.Int, "migration", "cutover", "reminder_interval")
}

// ErrInvalidConfig is returned (wrapped) for a governance section the gateway
// must not start with.
var ErrInvalidConfig = errors.New("invalid governance config")

// Validate checks the whole section. An invalid rule is named by its
// position and content; there is no fallback to open.
func (cfg *Config) Validate() error {
	if err := cfg.Policy.Validate(); err != nil {
		return err
	}
	if err := cfg.Media.Validate(); err != nil {
		return err
	}
	for i, admin := range cfg.Admins {
		if _, _, err := admin.Parse(); err != nil || !strings.HasPrefix(string(admin), "@") {
			return fmt.Errorf("%w: admins[%d] %q is not a Matrix user ID (@user:server)", ErrInvalidConfig, i, admin)
		}
	}
	if len(cfg.Admins) == 0 && cfg.AdminRoom == "" && cfg.usesApproval() {
		return fmt.Errorf("%w: approval mode needs admins (or an admin_room) to decide requests", ErrInvalidConfig)
	}
	if cfg.AdminRoom != "" && !strings.HasPrefix(string(cfg.AdminRoom), "!") {
		return fmt.Errorf("%w: admin_room %q is not a room ID (!room:server)", ErrInvalidConfig, cfg.AdminRoom)
	}
	if cfg.ApprovalTTL <= 0 {
		return fmt.Errorf("%w: approval_ttl must be positive", ErrInvalidConfig)
	}
	if cfg.Retention < 0 {
		return fmt.Errorf("%w: retention must not be negative", ErrInvalidConfig)
	}
	if cfg.AuditAnchorInterval < 0 {
		return fmt.Errorf("%w: audit_anchor_interval must not be negative (0 publishes the head only on demand)", ErrInvalidConfig)
	}
	if n := len(cfg.API.Token); n > 0 && n < MinAPITokenLength {
		return fmt.Errorf("%w: api.token has %d bytes, at least %d are needed (e.g. the output of `openssl rand -hex 32`); empty switches the API off",
			ErrInvalidConfig, n, MinAPITokenLength)
	}
	switch cfg.DisappearingMessages {
	case DisappearingHonour, DisappearingKeep:
	default:
		return fmt.Errorf("%w: disappearing_messages is %q: it must be %q or %q", ErrInvalidConfig, cfg.DisappearingMessages, DisappearingHonour, DisappearingKeep)
	}
	switch migration.StaffLinks(cfg.Migration.StaffLinks) {
	case migration.StaffLinksConfirm, migration.StaffLinksTrust:
	default:
		return fmt.Errorf("%w: migration.staff_links is %q: it must be %q or %q", ErrInvalidConfig, cfg.Migration.StaffLinks, migration.StaffLinksConfirm, migration.StaffLinksTrust)
	}
	if cfg.Migration.ClaimTTL <= 0 {
		return fmt.Errorf("%w: migration.claim_ttl must be positive", ErrInvalidConfig)
	}
	if err := cfg.Migration.validateInvitations(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := cfg.Migration.validateDeadlines(); err != nil {
		return err
	}
	if cfg.Migration.Progress.BorderWeeks < 1 {
		return fmt.Errorf("%w: migration.progress.border_weeks must be at least 1", ErrInvalidConfig)
	}
	if _, err := cfg.Migration.Progress.Location(); err != nil {
		return fmt.Errorf("%w: migration.progress.summary_timezone: %v", ErrInvalidConfig, err)
	}
	if u := cfg.Migration.Progress.PageURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("%w: migration.progress.page_url must start with http:// or https://", ErrInvalidConfig)
	}
	if err := cfg.Migration.CutOver.validate(); err != nil {
		return err
	}
	if cfg.ContactHashKey != "" && len(cfg.ContactHashKey) < audit.MinHashKeyLength {
		return fmt.Errorf("%w: contact_hash_key has %d bytes, at least %d are needed", ErrInvalidConfig, len(cfg.ContactHashKey), audit.MinHashKeyLength)
	}
	return nil
}

// usesApproval reports whether any network is in approval mode.
func (cfg *Config) usesApproval() bool {
	if cfg.Policy.DefaultMode == policy.ModeApproval {
		return true
	}
	for _, m := range cfg.Policy.Modes {
		if m == policy.ModeApproval {
			return true
		}
	}
	return false
}

// IsAdmin reports whether userID is a configured admin.
func (cfg *Config) IsAdmin(userID id.UserID) bool {
	for _, admin := range cfg.Admins {
		if admin == userID {
			return true
		}
	}
	return false
}

// Duration is a time.Duration written as "72h", "30m" or "30d" (days).
type Duration time.Duration

var _ yaml.Unmarshaler = (*Duration)(nil)

// UnmarshalYAML accepts a Go duration, a number of days ("30d") or 0.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	parsed, err := ParseDuration(node.Value)
	if err != nil {
		return err
	}
	*d = Duration(parsed)
	return nil
}

// MarshalYAML writes the duration as Go writes it.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ParseDuration parses "72h", "90m", "30d" or "0".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %w", s, err)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (write e.g. 72h, 90m or 30d)", s)
	}
	return d, nil
}
