package gate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/policy"
)

// Migration deadlines (config migration.deadlines): an organisation ends a
// network in three steps, each on a date of its own:
//
//   - closed: no new chat is bridged (the network's policy mode becomes
//     closed); the chats already bridged go on;
//   - read_only: nothing more leaves for the network from Matrix (messages,
//     edits, reactions, group changes are refused with a notice); what the
//     contacts send still arrives, so nothing is lost;
//   - logout: every staff login of the network is ended, and a login made
//     afterwards is ended as soon as it appears.
//
// Each step is announced ahead of time (migration.deadline_notices, e.g. 30
// days, 7 days and 1 day before) in the management room of every staff
// member with a login on the network and in the admin room, once each, and
// again when it takes effect; every announcement and every step is an
// audit entry. A later step implies the earlier ones.

// DeadlineStep is one step of a network's migration deadline.
type DeadlineStep int

const (
	stepNone DeadlineStep = iota
	// StepClosed: no new chats.
	StepClosed
	// StepReadOnly: nothing leaves for the network.
	StepReadOnly
	// StepLogout: the network's logins are ended.
	StepLogout
)

var stepNames = map[DeadlineStep]string{StepClosed: "closed", StepReadOnly: "read_only", StepLogout: "logout"}

func (s DeadlineStep) String() string { return stepNames[s] }

// DefaultDeadlineNotices is migration.deadline_notices of a config that sets
// none: 30 days, 7 days and 1 day before each step.
var DefaultDeadlineNotices = []Duration{Duration(30 * 24 * time.Hour), Duration(7 * 24 * time.Hour), Duration(24 * time.Hour)}

// MaxDeadlineNotices caps migration.deadline_notices.
const MaxDeadlineNotices = 10

// Date is a day ("2027-03-01", midnight UTC) or an instant (RFC 3339) of a
// deadline.
type Date struct{ time.Time }

var _ yaml.Unmarshaler = (*Date)(nil)

// UnmarshalYAML accepts "2006-01-02" or RFC 3339; empty is no date.
func (d *Date) UnmarshalYAML(node *yaml.Node) error {
	t, err := ParseDate(node.Value)
	if err != nil {
		return err
	}
	d.Time = t
	return nil
}

// MarshalYAML writes the date as RFC 3339 (or nothing).
func (d Date) MarshalYAML() (any, error) {
	if d.IsZero() {
		return "", nil
	}
	return d.UTC().Format(time.RFC3339), nil
}

// ParseDate parses a deadline date: "2006-01-02" (midnight UTC) or RFC 3339.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2006-01-02) or a time (RFC 3339)", s)
	}
	return t.UTC(), nil
}

// NetworkDeadlines are the dates of one network's steps; a zero date is no
// such step.
type NetworkDeadlines struct {
	Closed   Date `yaml:"closed"`
	ReadOnly Date `yaml:"read_only"`
	Logout   Date `yaml:"logout"`
}

// stepDate is one dated step.
type stepDate struct {
	step DeadlineStep
	at   time.Time
}

// steps are the dated steps in order.
func (n NetworkDeadlines) steps() []stepDate {
	var out []stepDate
	for _, s := range []stepDate{{StepClosed, n.Closed.Time}, {StepReadOnly, n.ReadOnly.Time}, {StepLogout, n.Logout.Time}} {
		if !s.at.IsZero() {
			out = append(out, s)
		}
	}
	return out
}

// validateDeadlines checks migration.deadlines and deadline_notices.
func (m *MigrationConfig) validateDeadlines() error {
	for network, n := range m.Deadlines {
		if !slices.Contains(policy.Networks, network) {
			return fmt.Errorf("%w: migration.deadlines: unknown network %q (one of %s)", ErrInvalidConfig, network, strings.Join(policy.Networks, ", "))
		}
		var prev stepDate
		for _, s := range n.steps() {
			if prev.step != stepNone && s.at.Before(prev.at) {
				return fmt.Errorf("%w: migration.deadlines.%s: %s (%s) comes before %s (%s)", ErrInvalidConfig, network,
					s.step, s.at.Format(time.RFC3339), prev.step, prev.at.Format(time.RFC3339))
			}
			prev = s
		}
	}
	if len(m.DeadlineNotices) > MaxDeadlineNotices {
		return fmt.Errorf("%w: migration.deadline_notices has %d periods, at most %d", ErrInvalidConfig, len(m.DeadlineNotices), MaxDeadlineNotices)
	}
	for i, d := range m.DeadlineNotices {
		if d <= 0 {
			return fmt.Errorf("%w: migration.deadline_notices[%d] must be positive", ErrInvalidConfig, i)
		}
	}
	return nil
}

// deadlineStep is the last step of network's deadline that has taken
// effect at now.
func (g *Gate) deadlineStep(network string, now time.Time) DeadlineStep {
	reached := stepNone
	for _, s := range g.cfg.Migration.Deadlines[network].steps() {
		if !now.Before(s.at) {
			reached = s.step
		}
	}
	return reached
}

// closeIfDue puts network in closed mode once its deadline has passed
// (any step implies closed). Cheap when nothing is due: it is called for
// every event.
func (g *Gate) closeIfDue(ctx context.Context, network string) {
	if g.deadlineStep(network, g.now()) == stepNone || g.Policy.Policy().Mode(network) == policy.ModeClosed {
		return
	}
	if _, err := g.Policy.Close(ctx, network); err != nil {
		zerolog.Ctx(ctx).Err(err).Str("network", network).Msg("Failed to close network at its migration deadline")
	}
}

// readOnlyRefusal refuses what would leave for a network whose read-only
// deadline has passed; signals (receipts, typing, presence) still go.
func (g *Gate) readOnlyRefusal(out remote.Outbound) *remote.Refusal {
	if out.Kind.IsSignal() {
		return nil
	}
	network := networkOf(string(out.PortalKey.ID))
	if g.deadlineStep(network, g.now()) < StepReadOnly {
		return nil
	}
	at := g.cfg.Migration.Deadlines[network].ReadOnly.Time
	if at.IsZero() {
		at = g.cfg.Migration.Deadlines[network].Logout.Time
	}
	return &remote.Refusal{Reason: fmt.Sprintf("%s chats are read-only since %s (the organisation's migration deadline): nothing was sent. Reach this contact on Matrix.",
		networkName(network), at.UTC().Format("2 January 2006"))}
}

// deadlineNotices are the configured notice periods, longest first.
func (g *Gate) deadlineNotices() []time.Duration {
	src := g.cfg.Migration.DeadlineNotices
	if src == nil {
		src = DefaultDeadlineNotices
	}
	out := make([]time.Duration, len(src))
	for i, d := range src {
		out[i] = time.Duration(d)
	}
	slices.SortFunc(out, func(a, b time.Duration) int { return int(b - a) })
	return out
}

// ApplyDeadlines is the deadline job (every DeadlineInterval, and at
// start): it announces the steps that come within a notice period, makes
// the steps that are due take effect, and ends the logins of networks past
// their logout date.
func (g *Gate) ApplyDeadlines(ctx context.Context) error {
	now := g.now()
	networks := make([]string, 0, len(g.cfg.Migration.Deadlines))
	for n := range g.cfg.Migration.Deadlines {
		networks = append(networks, n)
	}
	slices.Sort(networks)
	for _, network := range networks {
		for _, s := range g.cfg.Migration.Deadlines[network].steps() {
			var err error
			if now.Before(s.at) {
				err = g.announceUpcoming(ctx, network, s, now)
			} else {
				err = g.takeEffect(ctx, network, s)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func deadlineKey(network string, step DeadlineStep, what string) string {
	return "deadline/" + network + "/" + step.String() + "/" + what
}

// announceUpcoming announces s if it falls within a notice period whose
// announcement was not made yet. When several periods are due at once (the
// date was set late, or the gateway was down), only the nearest is
// announced and the longer ones are marked done.
func (g *Gate) announceUpcoming(ctx context.Context, network string, s stepDate, now time.Time) error {
	left := s.at.Sub(now)
	notices := g.deadlineNotices()
	due := -1
	for i, p := range notices {
		if left <= p {
			due = i
		}
	}
	if due < 0 {
		return nil
	}
	key := deadlineKey(network, s.step, notices[due].String())
	if done, err := g.state.getKV(ctx, key); err != nil {
		return fmt.Errorf("failed to read deadline notice state: %w", err)
	} else if done != "" {
		return nil
	}
	text := fmt.Sprintf("Migration deadline: %s %s. %s", upcomingWhen(left, s.at), stepAnnouncement(network, s.step, true), stepAdvice(s.step))
	g.announce(ctx, network, text)
	if _, err := g.Audit.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionDeadlineAnnounced, Network: network,
		Details: audit.Details(map[string]any{"step": s.step.String(), "at": s.at.UTC().Format(time.RFC3339), "notice": notices[due].String()})}); err != nil {
		return err
	}
	for _, p := range notices[:due+1] {
		if err := g.state.setKV(ctx, deadlineKey(network, s.step, p.String()), now.UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("failed to store deadline notice state: %w", err)
		}
	}
	return nil
}

// takeEffect makes a due step take effect, and announces it once.
func (g *Gate) takeEffect(ctx context.Context, network string, s stepDate) error {
	g.closeIfDue(ctx, network)
	key := deadlineKey(network, s.step, "reached")
	done, err := g.state.getKV(ctx, key)
	if err != nil {
		return fmt.Errorf("failed to read deadline state: %w", err)
	}
	var ended int
	if s.step == StepLogout {
		ended = g.endLogins(ctx, network)
	}
	if done != "" {
		return nil
	}
	g.announce(ctx, network, fmt.Sprintf("Migration deadline reached: %s. %s", stepAnnouncement(network, s.step, false), stepAdvice(s.step)))
	details := map[string]any{"step": s.step.String(), "at": s.at.UTC().Format(time.RFC3339)}
	if s.step == StepLogout {
		details["logins_ended"] = ended
	}
	if _, err = g.Audit.Append(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionDeadlineReached, Network: network,
		Details: audit.Details(details)}); err != nil {
		return err
	}
	return g.state.setKV(ctx, key, g.now().UTC().Format(time.RFC3339))
}

// endLogins logs out every login of network (the logout is audited by the
// login reconciliation, as any logout). It returns how many it ended.
func (g *Gate) endLogins(ctx context.Context, network string) int {
	n := 0
	for _, login := range g.br.GetAllCachedUserLogins() {
		if networkOf(string(login.ID)) != network {
			continue
		}
		if err := remote.ManagementNotice(ctx, login, fmt.Sprintf("Your %s account (%s) is being logged out of the gateway: the organisation's migration deadline for %s has passed.",
			networkName(network), login.RemoteName, networkName(network))); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to tell staff member of the logout")
		}
		login.Logout(ctx)
		n++
	}
	if n > 0 {
		zerolog.Ctx(ctx).Info().Str("network", network).Int("logins", n).Msg("Ended logins at the network's migration deadline")
		if err := g.reconcileLogins(ctx); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Failed to log deadline logouts")
		}
	}
	return n
}

// announce posts text in the management room of every staff member with a
// login on network, and in the admin room.
func (g *Gate) announce(ctx context.Context, network, text string) {
	told := map[id.UserID]bool{}
	for _, login := range g.br.GetAllCachedUserLogins() {
		if networkOf(string(login.ID)) != network || told[login.UserMXID] {
			continue
		}
		told[login.UserMXID] = true
		if err := remote.ManagementNotice(ctx, login, text); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("staff", login.UserMXID).Msg("Failed to announce a migration deadline")
		}
	}
	if room, err := g.AdminRoom(ctx); err == nil && room != "" {
		if err = g.Notice(ctx, room, "%s (Told %d staff member(s) with a %s login.)", text, len(told), networkName(network)); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Failed to announce a migration deadline in the admin room")
		}
	}
}

// LoginLoaded's check: a login of a network past its logout date is ended
// at once.
func (g *Gate) endIfPastLogout(ctx context.Context, login *bridgev2.UserLogin) bool {
	network := networkOf(string(login.ID))
	if g.deadlineStep(network, g.now()) < StepLogout {
		return false
	}
	g.endLogins(ctx, network)
	return true
}

func upcomingWhen(left time.Duration, at time.Time) string {
	day := at.UTC().Format("Monday 2 January 2006")
	if at.UTC().Hour() != 0 || at.UTC().Minute() != 0 {
		day += at.UTC().Format(" 15:04 UTC")
	}
	switch days := int(left.Hours() / 24); {
	case days >= 2:
		return fmt.Sprintf("in %d days (%s),", days, day)
	case days == 1:
		return fmt.Sprintf("tomorrow (%s),", day)
	default:
		return fmt.Sprintf("within a day (%s),", day)
	}
}

func stepAnnouncement(network string, step DeadlineStep, future bool) string {
	net := networkName(network)
	switch {
	case step == StepClosed && future:
		return net + " will close to new chats: a chat not bridged by then will not be"
	case step == StepClosed:
		return net + " is closed to new chats: a chat not bridged yet will not be"
	case step == StepReadOnly && future:
		return net + " chats will become read-only: messages from Matrix will no longer be sent there; what contacts send will still arrive"
	case step == StepReadOnly:
		return net + " chats are read-only: messages from Matrix are no longer sent there; what contacts send still arrives"
	case future:
		return net + " logins will be ended"
	default:
		return net + " logins are ended"
	}
}

func stepAdvice(step DeadlineStep) string {
	switch step {
	case StepClosed:
		return "Invite your contacts to Matrix (`invite-to-matrix`) and cut your chats over."
	case StepReadOnly:
		return "Cut your chats over to Matrix rooms before then."
	default:
		return "Your contacts must be reachable on Matrix by then."
	}
}

// DeadlineInfo is one step of a network's deadline, for commands and the
// API.
type DeadlineInfo struct {
	Network string    `json:"network"`
	Step    string    `json:"step"`
	At      time.Time `json:"at"`
	Reached bool      `json:"reached"`
}

// Deadlines lists the configured deadline steps, by network then date.
func (g *Gate) Deadlines() []DeadlineInfo {
	now := g.now()
	var out []DeadlineInfo
	for network, n := range g.cfg.Migration.Deadlines {
		for _, s := range n.steps() {
			out = append(out, DeadlineInfo{Network: network, Step: s.step.String(), At: s.at.UTC(), Reached: !now.Before(s.at)})
		}
	}
	slices.SortFunc(out, func(a, b DeadlineInfo) int {
		if c := strings.Compare(a.Network, b.Network); c != 0 {
			return c
		}
		return a.At.Compare(b.At)
	})
	return out
}
