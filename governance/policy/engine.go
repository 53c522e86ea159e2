package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
)

// ErrUnknownRule is returned (wrapped) for a runtime rule ID that does not
// exist.
var ErrUnknownRule = errors.New("unknown policy rule")

// RuntimeRule is a rule an admin added at runtime; it is stored in the
// database and survives restarts.
type RuntimeRule struct {
	ID      int64
	Rule    Rule
	AddedBy id.UserID
	AddedAt time.Time
}

// Ref returns the reference naming the rule.
func (r RuntimeRule) Ref() RuleRef {
	return RuleRef{Source: SourceRuntime, Index: r.ID, Rule: r.Rule}
}

const ruleColumns = "id, action, network, direction, phone, phone_prefix, telegram_user_id, telegram_username, chat, matrix_user, matrix_server, comment, added_by, added_at"

const (
	getRulesQuery   = `SELECT ` + ruleColumns + ` FROM governance_policy_rule ORDER BY id`
	getRuleQuery    = `SELECT ` + ruleColumns + ` FROM governance_policy_rule WHERE id = $1`
	insertRuleQuery = `
		INSERT INTO governance_policy_rule (action, network, direction, phone, phone_prefix, telegram_user_id,
			telegram_username, chat, matrix_user, matrix_server, comment, added_by, added_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		RETURNING id
	`
	deleteRuleQuery = `DELETE FROM governance_policy_rule WHERE id = $1`
)

// Scan implements dbutil.DataStruct.
func (r *RuntimeRule) Scan(row dbutil.Scannable) (*RuntimeRule, error) {
	var addedAt int64
	err := row.Scan(&r.ID, &r.Rule.Action, &r.Rule.Network, &r.Rule.Direction, &r.Rule.Phone, &r.Rule.PhonePrefix,
		&r.Rule.TelegramUserID, &r.Rule.TelegramUsername, &r.Rule.Chat, &r.Rule.MatrixUser, &r.Rule.MatrixServer,
		&r.Rule.Comment, &r.AddedBy, &addedAt)
	if err != nil {
		return nil, err
	}
	r.AddedAt = time.UnixMilli(addedAt).UTC()
	return r, nil
}

// Engine holds the effective policy (config rules and runtime rules) and
// changes runtime rules. Evaluate is lock-free and safe for concurrent use.
type Engine struct {
	cfg   Config
	db    *dbutil.Database
	rules *dbutil.QueryHelper[*RuntimeRule]
	log   *audit.Log
	mu    sync.Mutex // serialises changes and reloads
	cur   atomic.Pointer[Policy]
	// closed are the networks Close closed (guarded by mu).
	closed map[string]bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// NewEngine validates cfg, loads the runtime rules from db (an upgraded
// governance database, store.Open) and returns the engine. An invalid config
// rule or stored rule is an error naming it: the gateway must not start.
// If log is not nil, every rule change is written to it as policy_changed,
// in the same transaction as the change.
func NewEngine(ctx context.Context, cfg Config, db *dbutil.Database, log *audit.Log) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, db: db, log: log,
		rules: dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*RuntimeRule]) *RuntimeRule { return &RuntimeRule{} })}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Policy returns the current effective policy.
func (e *Engine) Policy() *Policy { return e.cur.Load() }

// Evaluate evaluates req against the current effective policy.
func (e *Engine) Evaluate(req Request) Decision { return e.Policy().Evaluate(req) }

// Reload reads the runtime rules again, e.g. after another gateway instance
// changed them.
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reload(ctx)
}

func (e *Engine) reload(ctx context.Context) error {
	ptrs, err := e.rules.QueryMany(ctx, getRulesQuery)
	if err != nil {
		return fmt.Errorf("failed to load runtime policy rules: %w", err)
	}
	runtime := make([]RuntimeRule, len(ptrs))
	for i, p := range ptrs {
		runtime[i] = *p
	}
	p, err := Compile(e.cfg, runtime)
	if err != nil {
		return err
	}
	if len(e.closed) > 0 {
		p.closed = make(map[string]bool, len(e.closed))
		for n := range e.closed {
			p.closed[n] = true
		}
	}
	e.cur.Store(p)
	return nil
}

// Close puts network in closed mode from now on, whatever its configured
// mode: the gate calls it when the network's migration deadline for new
// chats has passed. It reports whether the network was open before.
func (e *Engine) Close(ctx context.Context, network string) (bool, error) {
	if !knownNetwork(network) {
		return false, fmt.Errorf("%w: unknown network %q", ErrInvalidConfig, network)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed[network] {
		return false, nil
	}
	if e.closed == nil {
		e.closed = map[string]bool{}
	}
	e.closed[network] = true
	if err := e.reload(ctx); err != nil {
		delete(e.closed, network)
		return false, err
	}
	return true, nil
}

// AddRule validates r, stores it as a runtime rule added by actor, logs the
// change and makes it effective. An invalid rule is an error naming it, and
// changes nothing.
func (e *Engine) AddRule(ctx context.Context, actor id.UserID, r Rule) (RuntimeRule, error) {
	if _, err := compileRule(RuleRef{Source: SourceRuntime, Rule: r}); err != nil {
		return RuntimeRule{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rr := RuntimeRule{Rule: r, AddedBy: actor, AddedAt: time.UnixMilli(e.now().UnixMilli()).UTC()}
	err := e.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		err := e.db.QueryRow(ctx, insertRuleQuery, r.Action, r.Network, r.Direction, r.Phone, r.PhonePrefix,
			r.TelegramUserID, r.TelegramUsername, r.Chat, r.MatrixUser, r.MatrixServer, r.Comment, actor, rr.AddedAt.UnixMilli(),
		).Scan(&rr.ID)
		if err != nil {
			return fmt.Errorf("failed to insert policy rule: %w", err)
		}
		return e.logChange(ctx, actor, "add", rr)
	})
	if err != nil {
		return RuntimeRule{}, fmt.Errorf("failed to add policy rule: %w", err)
	}
	return rr, e.reload(ctx)
}

// RemoveRule deletes runtime rule ruleID, logs the change and makes it
// effective. It returns the removed rule, or an error wrapping ErrUnknownRule.
// Rules from the config file cannot be removed at runtime.
func (e *Engine) RemoveRule(ctx context.Context, actor id.UserID, ruleID int64) (RuntimeRule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var removed RuntimeRule
	err := e.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		rr, err := e.rules.QueryOne(ctx, getRuleQuery, ruleID)
		if err != nil {
			return fmt.Errorf("failed to get policy rule: %w", err)
		} else if rr == nil {
			return fmt.Errorf("%w #%d", ErrUnknownRule, ruleID)
		}
		removed = *rr
		if _, err = e.db.Exec(ctx, deleteRuleQuery, ruleID); err != nil {
			return fmt.Errorf("failed to delete policy rule: %w", err)
		}
		return e.logChange(ctx, actor, "remove", removed)
	})
	if err != nil {
		return RuntimeRule{}, fmt.Errorf("failed to remove policy rule: %w", err)
	}
	return removed, e.reload(ctx)
}

func (e *Engine) logChange(ctx context.Context, actor id.UserID, op string, rr RuntimeRule) error {
	if e.log == nil {
		return nil
	}
	_, err := e.log.Append(ctx, audit.Entry{
		Actor: string(actor), Action: audit.ActionPolicyChanged, Network: rr.Rule.Network, Portal: networkid.PortalID(rr.Rule.Chat),
		Details: audit.Details(map[string]any{"op": op, "rule_id": rr.ID, "rule": rr.Rule, "description": rr.Ref().String()}),
	})
	return err
}
