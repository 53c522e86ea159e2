// Package approval is the durable queue of requests to bridge a new outside
// chat, in approval mode: the request, the remote events held while it waits
// (opaque payloads serialized by the caller, with their original time and
// order), and the admin's decision. A restart loses nothing: every state and
// every held event is in the database.
//
// A request goes from pending to approved, denied or expired, once. Approved
// requests keep their held events until the caller has replayed them
// (MarkDelivered); denied and expired requests drop them at once and keep
// only their count.
package approval

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/seal"
)

// State is where a request stands.
type State string

const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateDenied   State = "denied"
	StateExpired  State = "expired"
)

var (
	// ErrUnknownRequest: no request has this ID.
	ErrUnknownRequest = errors.New("unknown approval request")
	// ErrAlreadyDecided: the request was approved, denied or expired before.
	ErrAlreadyDecided = errors.New("approval request already decided")
	// ErrChatApproved: Hold was called for a chat whose last request was
	// approved; the caller should bridge the event instead.
	ErrChatApproved = errors.New("chat was approved")
	// ErrChatDenied: Hold was called for a chat whose last request was
	// denied or expired; the caller should drop the event.
	ErrChatDenied = errors.New("chat was denied")
	// ErrInvalidRequest: a new request lacks what admins need to decide.
	ErrInvalidRequest = errors.New("invalid approval request")
)

// NewRequest describes the chat that waits: what admins see.
type NewRequest struct {
	Network   string
	Direction audit.Direction
	// Staff is the staff member whose account the chat belongs to.
	Staff id.UserID
	Login networkid.UserLoginID
	// Portal is the chat: its network-prefixed ID and its receiver (the
	// staff member's login for a direct chat, so that two staff members who
	// talk to one contact have a request each).
	Portal networkid.PortalKey
	// IsGroup tells a group from a direct chat.
	IsGroup bool
	// Contact is the outside identity (audit.Registry.Key); ContactName its
	// display name and ContactIdent its number or username, as admins should
	// see them (empty in a registry that must not keep numbers).
	Contact      string
	ContactName  string
	ContactIdent string
	// ChatName and Members describe a group: its name and its outside
	// members as admins should see them ("Alice (+33…), Bob and 3 more").
	ChatName string
	Members  string
}

// Request is one request and its state.
type Request struct {
	ID int64
	NewRequest
	State     State
	CreatedAt time.Time
	ExpiresAt time.Time
	// DecidedAt, DecidedBy (an admin, or audit.ActorSystem on expiry) and
	// Reason are set once the request is decided.
	DecidedAt time.Time
	DecidedBy string
	Reason    string
	// HeldCount is how many events were held, also after they are dropped.
	HeldCount int64
	// Delivered tells that the held events of an approved request were
	// replayed and dropped.
	Delivered bool
}

// HeldMessage is one held remote event.
type HeldMessage struct {
	// Order numbers a request's events from 1 in arrival order (set by Hold).
	Order int64
	// Time is the event's original timestamp.
	Time time.Time
	// Login is the login that received the event; delivery refuses an
	// event of another login than the request's.
	Login networkid.UserLoginID
	// Payload is the serialized event, opaque to this package.
	Payload []byte
}

// ErrWrongLogin is returned (wrapped) by Hold for an event received by
// another login than the request's.
var ErrWrongLogin = errors.New("held event belongs to another login")

// Store keeps approval requests in the governance database.
type Store struct {
	db       *dbutil.Database
	log      *audit.Log
	requests *dbutil.QueryHelper[*Request]
	ttl      time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Seal, when set (hashed mode), seals the login and portal key of
	// requests and held events (deterministically, so that a chat is still
	// looked up by them) and the held payloads (they hold message content
	// and remote IDs), and scrubs numbers from contact names and reasons.
	// Requests and held events come back opened: callers see real values.
	Seal *seal.Sealer
}

// NewStore returns the approval store in db (store.Open). A request expires
// ttl after it was created. If log is not nil, creation and every decision
// are logged in the same transaction.
func NewStore(db *dbutil.Database, log *audit.Log, ttl time.Duration) *Store {
	return &Store{db: db, log: log, ttl: ttl,
		requests: dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*Request]) *Request { return &Request{} })}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

const requestColumns = "id, network, direction, staff, login, portal, receiver, is_group, contact, contact_name, contact_ident, state, created_at, expires_at, decided_at, decided_by, reason, held_count, delivered, chat_name, members"

const (
	// A chat whose portal is shared ($4: its key has no receiver, as a
	// group's since portals are shared) also matches the requests made for
	// it per login before: a group waiting, approved or denied stays so.
	bumpPendingQuery = `
		UPDATE governance_approval_request SET held_count = held_count + $3
		WHERE portal = $1 AND (receiver = $2 OR $4) AND state = 'pending'
		RETURNING ` + requestColumns
	insertRequestQuery = `
		INSERT INTO governance_approval_request (network, direction, staff, login, portal, receiver, is_group, contact,
			contact_name, contact_ident, state, created_at, expires_at, held_count, chat_name, members)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $13, $14, $15)
		ON CONFLICT (portal, receiver) WHERE state = 'pending' DO NOTHING
		RETURNING ` + requestColumns
	getRequestQuery  = `SELECT ` + requestColumns + ` FROM governance_approval_request WHERE id = $1`
	lastForChatQuery = `SELECT ` + requestColumns + ` FROM governance_approval_request WHERE portal = $1 AND (receiver = $2 OR $3) ORDER BY id DESC LIMIT 1`
	pendingQuery     = `SELECT ` + requestColumns + ` FROM governance_approval_request WHERE state = 'pending' ORDER BY id`
	dueQuery         = `SELECT id FROM governance_approval_request WHERE state = 'pending' AND expires_at <= $1 ORDER BY id`
	undeliveredQuery = `SELECT ` + requestColumns + ` FROM governance_approval_request WHERE state = 'approved' AND NOT delivered ORDER BY id`
	decideQuery      = `
		UPDATE governance_approval_request SET state = $2, decided_at = $3, decided_by = $4, reason = $5
		WHERE id = $1 AND state = 'pending'
		RETURNING ` + requestColumns
	insertHeldQuery = `INSERT INTO governance_approval_held (request_id, ord, ts, login, payload) VALUES ($1, $2, $3, $4, $5)`
	getHeldQuery    = `SELECT ord, ts, login, payload FROM governance_approval_held WHERE request_id = $1 ORDER BY ord`
	dropHeldQuery   = `DELETE FROM governance_approval_held WHERE request_id = $1`
	deliveredQuery  = `UPDATE governance_approval_request SET delivered = true WHERE id = $1 AND state = 'approved'`
	moveChatQuery   = `UPDATE governance_approval_request SET portal = $3, receiver = $4 WHERE portal = $1 AND receiver = $2`
)

// Scan implements dbutil.DataStruct.
func (r *Request) Scan(row dbutil.Scannable) (*Request, error) {
	var created, expires, decided int64
	err := row.Scan(&r.ID, &r.Network, &r.Direction, &r.Staff, &r.Login, &r.Portal.ID, &r.Portal.Receiver, &r.IsGroup, &r.Contact, &r.ContactName,
		&r.ContactIdent, &r.State, &created, &expires, &decided, &r.DecidedBy, &r.Reason, &r.HeldCount, &r.Delivered, &r.ChatName, &r.Members)
	if err != nil {
		return nil, err
	}
	r.CreatedAt, r.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	if decided != 0 {
		r.DecidedAt = time.UnixMilli(decided).UTC()
	}
	return r, nil
}

// Create returns the pending request of chat nr.Portal, creating it if there is
// none. created tells whether it is new. For a chat whose last request was
// decided, it returns ErrChatApproved or ErrChatDenied (wrapped).
func (s *Store) Create(ctx context.Context, nr NewRequest) (req Request, created bool, err error) {
	return s.hold(ctx, nr, nil)
}

// Hold is Create, and then holds msg in the request, after the events held
// before. The returned request counts it.
func (s *Store) Hold(ctx context.Context, nr NewRequest, msg HeldMessage) (req Request, created bool, err error) {
	return s.hold(ctx, nr, &msg)
}

func (s *Store) hold(ctx context.Context, nr NewRequest, msg *HeldMessage) (req Request, created bool, err error) {
	if nr.Network == "" || nr.Portal.ID == "" || nr.Staff == "" {
		return Request{}, false, fmt.Errorf("%w: network, portal and staff are required", ErrInvalidRequest)
	}
	var add int64
	if msg != nil {
		add = 1
		if msg.Login == "" {
			msg.Login = nr.Login
		} else if msg.Login != nr.Login {
			return Request{}, false, fmt.Errorf("%w: event of %s for a request of %s", ErrWrongLogin, msg.Login, nr.Login)
		}
	}
	portal, receiver := s.sealedKey(nr.Portal)
	var payload []byte
	if msg != nil {
		if payload, err = s.Seal.SealBytes(seal.KindHeld, msg.Payload); err != nil {
			return Request{}, false, fmt.Errorf("failed to seal held message: %w", err)
		}
	}
	err = s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		// Bump first: the write locks a pending request against a
		// concurrent decision, and takes SQLite's write lock.
		for attempt := 0; ; attempt++ {
			if attempt == 3 {
				return errors.New("failed to find or create the pending request: too much contention")
			}
			r, err := s.one(ctx, bumpPendingQuery, portal, receiver, add, nr.Portal.Receiver == "")
			if err != nil {
				return fmt.Errorf("failed to update pending request: %w", err)
			} else if r != nil {
				req = *r
				break
			}
			last, err := s.one(ctx, lastForChatQuery, portal, receiver, nr.Portal.Receiver == "")
			switch {
			case err != nil:
				return fmt.Errorf("failed to get last request of chat: %w", err)
			case last != nil && last.State == StatePending:
				continue // committed by another process since our update: bump it
			case last != nil && last.State == StateApproved:
				return fmt.Errorf("%w (request %d)", ErrChatApproved, last.ID)
			case last != nil:
				return fmt.Errorf("%w (request %d %s)", ErrChatDenied, last.ID, last.State)
			}
			now := time.UnixMilli(s.now().UnixMilli()).UTC()
			r, err = s.one(ctx, insertRequestQuery, nr.Network, nr.Direction, nr.Staff, s.Seal.Seal(seal.KindLogin, string(nr.Login)), portal,
				receiver, nr.IsGroup, s.Seal.Pseudonym(seal.KindRemoteID, nr.Contact), s.Seal.Scrub(nr.ContactName), s.Seal.Scrub(nr.ContactIdent), now.UnixMilli(), now.Add(s.ttl).UnixMilli(), add,
				s.Seal.Scrub(nr.ChatName), s.Seal.Scrub(nr.Members))
			if err != nil {
				return fmt.Errorf("failed to insert request: %w", err)
			} else if r != nil {
				req, created = *r, true
				break
			}
			// Another process created it after our update (ON CONFLICT waited
			// for it to commit): bump it.
		}
		if msg != nil {
			if req.Login != msg.Login {
				return fmt.Errorf("%w: event of %s for request %d of %s", ErrWrongLogin, msg.Login, req.ID, req.Login)
			}
			if _, err := s.db.Exec(ctx, insertHeldQuery, req.ID, req.HeldCount, msg.Time.UnixMilli(),
				s.Seal.Seal(seal.KindLogin, string(msg.Login)), payload); err != nil {
				return fmt.Errorf("failed to hold message: %w", err)
			}
		}
		if created && s.log != nil {
			_, err := s.log.Append(ctx, audit.Entry{
				Time: req.CreatedAt, Actor: audit.ActorSystem, Action: audit.ActionRequestCreated, Network: req.Network,
				Staff: req.Staff, Login: req.Login, Portal: req.Portal.ID, Contact: req.Contact, Request: strconv.FormatInt(req.ID, 10),
				Details: audit.Details(map[string]any{"is_group": req.IsGroup, "direction": req.Direction, "expires_at": req.ExpiresAt,
					"receiver": req.Portal.Receiver}),
			})
			return err
		}
		return nil
	})
	if err != nil {
		return Request{}, false, fmt.Errorf("failed to hold chat for approval: %w", err)
	}
	return req, created, nil
}

// Get returns request id, or an error wrapping ErrUnknownRequest.
func (s *Store) Get(ctx context.Context, id int64) (Request, error) {
	r, err := s.one(ctx, getRequestQuery, id)
	if err != nil {
		return Request{}, fmt.Errorf("failed to get approval request: %w", err)
	} else if r == nil {
		return Request{}, fmt.Errorf("%w %d", ErrUnknownRequest, id)
	}
	return *r, nil
}

// LastForChat returns the newest request of a chat, or nil: the gate asks it
// whether a chat was approved (policy.Request.Approved), denied, or waits.
func (s *Store) LastForChat(ctx context.Context, portal networkid.PortalKey) (*Request, error) {
	sealedID, sealedReceiver := s.sealedKey(portal)
	r, err := s.one(ctx, lastForChatQuery, sealedID, sealedReceiver, portal.Receiver == "")
	if err != nil {
		return nil, fmt.Errorf("failed to get last request of chat: %w", err)
	}
	return r, nil
}

// MoveChat puts the requests of a chat whose portal moved to a new key (a
// Telegram basic group that became a supergroup) under the new key, so that
// the chat's decisions follow it.
func (s *Store) MoveChat(ctx context.Context, from, to networkid.PortalKey) error {
	fromID, fromReceiver := s.sealedKey(from)
	toID, toReceiver := s.sealedKey(to)
	if _, err := s.db.Exec(ctx, moveChatQuery, fromID, fromReceiver, toID, toReceiver); err != nil {
		return fmt.Errorf("failed to move the requests of a chat: %w", err)
	}
	return nil
}

// Pending returns the pending requests, oldest first.
func (s *Store) Pending(ctx context.Context) ([]Request, error) {
	return s.list(ctx, pendingQuery)
}

// Undelivered returns the approved requests whose held events were not
// replayed yet (after a restart, the caller replays them).
func (s *Store) Undelivered(ctx context.Context) ([]Request, error) {
	return s.list(ctx, undeliveredQuery)
}

func (s *Store) list(ctx context.Context, q string, args ...any) ([]Request, error) {
	ptrs, err := s.requests.QueryMany(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list approval requests: %w", err)
	}
	out := make([]Request, len(ptrs))
	for i, p := range ptrs {
		if err = s.open(p); err != nil {
			return nil, err
		}
		out[i] = *p
	}
	return out, nil
}

// sealedKey is a portal key as stored: sealed in hashed mode.
func (s *Store) sealedKey(key networkid.PortalKey) (portalID, receiver string) {
	return s.Seal.Seal(seal.KindPortal, string(key.ID)), s.Seal.Seal(seal.KindLogin, string(key.Receiver))
}

// one runs a query of one request and opens it.
func (s *Store) one(ctx context.Context, q string, args ...any) (*Request, error) {
	r, err := s.requests.QueryOne(ctx, q, args...)
	if err != nil || r == nil {
		return r, err
	}
	return r, s.open(r)
}

// open opens the sealed login and portal key of a request read back.
func (s *Store) open(r *Request) error {
	login, err := s.Seal.Open(seal.KindLogin, string(r.Login))
	if err != nil {
		return fmt.Errorf("failed to open login of request %d: %w", r.ID, err)
	}
	portalID, err := s.Seal.Open(seal.KindPortal, string(r.Portal.ID))
	if err != nil {
		return fmt.Errorf("failed to open portal of request %d: %w", r.ID, err)
	}
	receiver, err := s.Seal.Open(seal.KindLogin, string(r.Portal.Receiver))
	if err != nil {
		return fmt.Errorf("failed to open receiver of request %d: %w", r.ID, err)
	}
	r.Login, r.Portal.ID, r.Portal.Receiver = networkid.UserLoginID(login), networkid.PortalID(portalID), networkid.UserLoginID(receiver)
	return nil
}

// Held returns the events held in request id, in order. It is empty for a
// denied, expired or delivered request.
func (s *Store) Held(ctx context.Context, id int64) ([]HeldMessage, error) {
	rows, err := s.db.Query(ctx, getHeldQuery, id)
	msgs, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (HeldMessage, error) {
		var m HeldMessage
		var ts int64
		var login string
		if err := row.Scan(&m.Order, &ts, &login, &m.Payload); err != nil {
			return m, err
		}
		m.Time = time.UnixMilli(ts).UTC()
		opened, openErr := s.Seal.Open(seal.KindLogin, login)
		if openErr != nil {
			return m, openErr
		}
		m.Login = networkid.UserLoginID(opened)
		m.Payload, openErr = s.Seal.OpenBytes(seal.KindHeld, m.Payload)
		return m, openErr
	}, err).AsList()
	if err != nil {
		return nil, fmt.Errorf("failed to get held messages: %w", err)
	}
	return msgs, nil
}

// Approve approves request id on behalf of admin. The held events stay until
// MarkDelivered.
func (s *Store) Approve(ctx context.Context, id int64, admin id.UserID, reason string) (Request, error) {
	return s.decide(ctx, id, StateApproved, string(admin), reason)
}

// Deny denies request id on behalf of admin and drops its held events,
// keeping their count.
func (s *Store) Deny(ctx context.Context, id int64, admin id.UserID, reason string) (Request, error) {
	return s.decide(ctx, id, StateDenied, string(admin), reason)
}

// ExpireDue expires every pending request whose time is up (by the store's
// clock), dropping their held events, and returns them.
func (s *Store) ExpireDue(ctx context.Context) ([]Request, error) {
	rows, err := s.db.Query(ctx, dueQuery, s.now().UnixMilli())
	ids, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, err).AsList()
	if err != nil {
		return nil, fmt.Errorf("failed to find expired requests: %w", err)
	}
	var expired []Request
	for _, id := range ids {
		r, err := s.decide(ctx, id, StateExpired, audit.ActorSystem, "not answered in time")
		if errors.Is(err, ErrAlreadyDecided) {
			continue // an admin was faster
		} else if err != nil {
			return expired, err
		}
		expired = append(expired, r)
	}
	return expired, nil
}

var decisionActions = map[State]audit.Action{
	StateApproved: audit.ActionRequestApproved,
	StateDenied:   audit.ActionRequestDenied,
	StateExpired:  audit.ActionRequestExpired,
}

func (s *Store) decide(ctx context.Context, id int64, to State, actor, reason string) (Request, error) {
	var req Request
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		now := time.UnixMilli(s.now().UnixMilli()).UTC()
		r, err := s.one(ctx, decideQuery, id, to, now.UnixMilli(), actor, s.Seal.Scrub(reason))
		if err != nil {
			return fmt.Errorf("failed to update request: %w", err)
		} else if r == nil {
			cur, err := s.Get(ctx, id)
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: request %d was %s by %s", ErrAlreadyDecided, id, cur.State, cur.DecidedBy)
		}
		req = *r
		if to != StateApproved {
			if _, err = s.db.Exec(ctx, dropHeldQuery, id); err != nil {
				return fmt.Errorf("failed to drop held messages: %w", err)
			}
		}
		if s.log == nil {
			return nil
		}
		_, err = s.log.Append(ctx, audit.Entry{
			Time: now, Actor: actor, Action: decisionActions[to], Network: req.Network, Staff: req.Staff, Login: req.Login,
			Portal: req.Portal.ID, Contact: req.Contact, Request: strconv.FormatInt(id, 10),
			Details: audit.Details(map[string]any{"held": req.HeldCount, "reason": reason, "receiver": req.Portal.Receiver}),
		})
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("failed to %s approval request: %w", verb[to], err)
	}
	return req, nil
}

var verb = map[State]string{StateApproved: "approve", StateDenied: "deny", StateExpired: "expire"}

// MarkDelivered records that the held events of approved request id were
// replayed, and drops them.
func (s *Store) MarkDelivered(ctx context.Context, id int64) error {
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		res, err := s.db.Exec(ctx, deliveredQuery, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			cur, err := s.Get(ctx, id)
			if err != nil {
				return err
			}
			return fmt.Errorf("request %d is %s, not approved", id, cur.State)
		}
		_, err = s.db.Exec(ctx, dropHeldQuery, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to mark approval request delivered: %w", err)
	}
	return nil
}

const (
	plainRequestsQuery = `
		SELECT id, login, portal, receiver, contact, contact_name, contact_ident, reason, chat_name, members FROM governance_approval_request
		WHERE login NOT LIKE 'sealed:%' OR portal NOT LIKE 'sealed:%'`
	sealRequestQuery = `
		UPDATE governance_approval_request SET login = $2, portal = $3, receiver = $4, contact = $5, contact_name = $6,
			contact_ident = $7, reason = $8, chat_name = $9, members = $10
		WHERE id = $1`
	plainHeldQuery = `SELECT request_id, ord, login, payload FROM governance_approval_held WHERE login NOT LIKE 'sealed:%'`
	sealHeldQuery  = `UPDATE governance_approval_held SET login = $3, payload = $4 WHERE request_id = $1 AND ord = $2`
)

// SealExisting seals, in hashed mode, the requests and held events stored
// before hashed mode was turned on, so that their chats are still found
// (a denied chat stays denied, held events are still delivered). It
// returns how many rows it sealed; without a sealer it does nothing.
func (s *Store) SealExisting(ctx context.Context) (n int, err error) {
	if !s.Seal.On() {
		return 0, nil
	}
	type plainRequest struct {
		id                                                    int64
		login, portal, receiver, contact, name, ident, reason string
		chatName, members                                     string
	}
	type plainHeld struct {
		requestID, order int64
		login            string
		payload          []byte
	}
	err = s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		rows, err := s.db.Query(ctx, plainRequestsQuery)
		reqs, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (r plainRequest, err error) {
			return r, row.Scan(&r.id, &r.login, &r.portal, &r.receiver, &r.contact, &r.name, &r.ident, &r.reason, &r.chatName, &r.members)
		}, err).AsList()
		if err != nil {
			return fmt.Errorf("failed to read requests to seal: %w", err)
		}
		for _, r := range reqs {
			_, err = s.db.Exec(ctx, sealRequestQuery, r.id, s.Seal.Seal(seal.KindLogin, r.login), s.Seal.Seal(seal.KindPortal, r.portal),
				s.Seal.Seal(seal.KindLogin, r.receiver), s.Seal.Pseudonym(seal.KindRemoteID, r.contact), s.Seal.Scrub(r.name), s.Seal.Scrub(r.ident),
				s.Seal.Scrub(r.reason), s.Seal.Scrub(r.chatName), s.Seal.Scrub(r.members))
			if err != nil {
				return fmt.Errorf("failed to seal request %d: %w", r.id, err)
			}
		}
		rows, err = s.db.Query(ctx, plainHeldQuery)
		held, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (h plainHeld, err error) {
			return h, row.Scan(&h.requestID, &h.order, &h.login, &h.payload)
		}, err).AsList()
		if err != nil {
			return fmt.Errorf("failed to read held events to seal: %w", err)
		}
		for _, h := range held {
			payload, err := s.Seal.SealBytes(seal.KindHeld, h.payload)
			if err != nil {
				return err
			}
			if _, err = s.db.Exec(ctx, sealHeldQuery, h.requestID, h.order, s.Seal.Seal(seal.KindLogin, h.login), payload); err != nil {
				return fmt.Errorf("failed to seal held event: %w", err)
			}
		}
		n = len(reqs) + len(held)
		return nil
	})
	return n, err
}
