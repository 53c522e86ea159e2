package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/e164"
	"github.com/passerelle/passerelle/governance/seal"
	"github.com/passerelle/passerelle/internal/lru"
)

// Direction is the way a message went.
type Direction string

const (
	Inbound  Direction = "inbound"  // from the outside contact to Matrix
	Outbound Direction = "outbound" // from a staff member to the outside contact
)

// Kind is what an Observation saw.
type Kind string

const (
	// KindMessage is a message without media; it counts as a message.
	KindMessage Kind = "message"
	// KindMedia is a message with media; it counts as a message and as media.
	KindMedia Kind = "media"
	// KindSeen is a sighting without a message (a member list, a profile).
	KindSeen Kind = "seen"
	// KindActivity is an edit, a reaction or a deletion: a sign of life
	// in the conversation, counted as activity, never as a message.
	KindActivity Kind = "activity"
)

// Observation is one sighting of an outside identity. Never message content.
type Observation struct {
	Network string
	// RemoteID is the identity's ID on the network (the ghost's user ID).
	RemoteID networkid.UserID
	// Phone, Username and DisplayName are recorded when not empty.
	Phone       string
	Username    string
	DisplayName string
	// Staff, Login and Portal are who talked with it, through which account,
	// in which chat.
	Staff  id.UserID
	Login  networkid.UserLoginID
	Portal networkid.PortalID
	// Direction is required for KindMessage, KindMedia and KindActivity.
	Direction Direction
	Kind      Kind
	// Time is when; the registry's clock when zero.
	Time time.Time
}

// Contact is one row of the registry.
type Contact struct {
	Network string `json:"network"`
	// RemoteID, Phone and Username are pseudonyms (seal.Pseudonym,
	// "hmac-sha256:" and letters) in a registry with a hash key.
	RemoteID string `json:"remote_id"`
	Phone    string `json:"phone"`
	Username string `json:"username"`
	// DisplayNames are the names seen, first seen first.
	DisplayNames []string  `json:"display_names"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	MessagesIn   int64     `json:"messages_in"`
	MessagesOut  int64     `json:"messages_out"`
	MediaIn      int64     `json:"media_in"`
	MediaOut     int64     `json:"media_out"`
	// ActivityIn and ActivityOut count edits, reactions and deletions.
	ActivityIn  int64 `json:"activity_in"`
	ActivityOut int64 `json:"activity_out"`
	// Links are the staff members, accounts and portals that talked with it.
	Links []Link `json:"links"`
}

// Link is one staff account and portal that talked with a contact.
type Link struct {
	Staff     id.UserID             `json:"staff"`
	Login     networkid.UserLoginID `json:"login"`
	Portal    networkid.PortalID    `json:"portal"`
	FirstSeen time.Time             `json:"first_seen"`
	LastSeen  time.Time             `json:"last_seen"`
}

// Registry is the registry of outside contacts.
type Registry struct {
	db       *dbutil.Database
	log      *Log
	seal     *seal.Sealer
	contacts *dbutil.QueryHelper[*Contact]
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// What Record already wrote, so that a message of a known contact costs
	// one statement, not three: contacts known to be stored (the registry
	// never deletes one), and when each link's last sighting was last
	// written (rewritten at most once per linkRefresh).
	known  *lru.Cache[contactRef, struct{}]
	linked *lru.Cache[linkRef, int64]
}

// contactRef and linkRef name a stored contact and link.
type contactRef struct{ network, key string }

type linkRef struct {
	contactRef
	login, portal string
	staff         id.UserID
}

// knownKept bounds the caches of Record; linkRefresh is how stale a link's
// last_seen may get (a contact's own last_seen and counts are exact).
const (
	knownKept   = 10000
	linkRefresh = time.Minute
)

// MinHashKeyLength is the shortest hash key NewRegistry accepts.
const MinHashKeyLength = seal.MinKeyLength

// HashPrefix starts every keyed hash stored in place of a value.
const HashPrefix = seal.PseudonymPrefix

// ErrInvalidObservation is returned (wrapped) by Record for an observation it
// refuses.
var ErrInvalidObservation = errors.New("invalid contact observation")

// NewRegistry returns the contact registry stored in db (store.Open). If log
// is not nil, the first sighting of each identity is logged as first_contact
// in the same transaction. If hashKey is not nil, remote IDs, numbers and
// usernames are stored only as HMAC-SHA256 under it (and display names that
// look like a phone number are not stored), and so are the logins and
// portals of links: the registry can still count, link and look up an
// identity by its number, but never shows it.
func NewRegistry(db *dbutil.Database, log *Log, hashKey []byte) (*Registry, error) {
	s, err := seal.New(hashKey)
	if err != nil {
		return nil, err
	}
	return NewSealedRegistry(db, log, s), nil
}

// NewSealedRegistry is NewRegistry with the sealer of the hash key (nil: no
// key).
func NewSealedRegistry(db *dbutil.Database, log *Log, s *seal.Sealer) *Registry {
	return &Registry{
		db: db, log: log, seal: s,
		contacts: dbutil.MakeQueryHelper(db, func(*dbutil.QueryHelper[*Contact]) *Contact { return &Contact{} }),
		known:    lru.New[contactRef, struct{}](knownKept),
		linked:   lru.New[linkRef, int64](knownKept),
	}
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Hashed reports whether the registry stores keyed hashes instead of values.
func (r *Registry) Hashed() bool { return r.seal.On() }

func (r *Registry) hash(kind, value string) string { return r.seal.Pseudonym(kind, value) }

// Key is the stored form of a remote ID: the ID itself, or its keyed hash.
// Audit entries name a contact by it (Entry.Contact).
func (r *Registry) Key(remoteID networkid.UserID) string {
	return r.hash(seal.KindRemoteID, string(remoteID))
}

func (r *Registry) storedPhone(phone string) string {
	phone = strings.TrimSpace(phone)
	if phone == "" {
		return ""
	}
	if norm, err := e164.Normalize(phone); err == nil {
		phone = norm
	}
	return r.hash(seal.KindPhone, phone)
}

func (r *Registry) storedUsername(username string) string {
	username = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(username), "@"))
	return r.hash(seal.KindUsername, username)
}

// looksLikeNumber reports whether s holds 7 or more digits, ignoring the
// separators people write in numbers.
func looksLikeNumber(s string) bool {
	digits := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune(" +-.()/\u00a0", c):
		default:
			if digits >= 7 {
				return true
			}
			digits = 0
		}
	}
	return digits >= 7
}

const contactColumns = "network, remote_id, phone, username, display_names, first_seen, last_seen, messages_in, messages_out, media_in, media_out, activity_in, activity_out"

const (
	insertContactQuery = `
		INSERT INTO governance_contact (network, remote_id, phone, username, display_names, first_seen, last_seen)
		VALUES ($1, $2, '', '', '[]', $3, $3)
		ON CONFLICT (network, remote_id) DO NOTHING
	`
	updateContactQuery = `
		UPDATE governance_contact SET
			first_seen = CASE WHEN $3 < first_seen THEN $3 ELSE first_seen END,
			last_seen = CASE WHEN $3 > last_seen THEN $3 ELSE last_seen END,
			phone = CASE WHEN $4 <> '' THEN $4 ELSE phone END,
			username = CASE WHEN $5 <> '' THEN $5 ELSE username END,
			messages_in = messages_in + $6,
			messages_out = messages_out + $7,
			media_in = media_in + $8,
			media_out = media_out + $9,
			activity_in = activity_in + $10,
			activity_out = activity_out + $11
		WHERE network = $1 AND remote_id = $2
		RETURNING display_names
	`
	setDisplayNamesQuery = `UPDATE governance_contact SET display_names = $3 WHERE network = $1 AND remote_id = $2`
	upsertLinkQuery      = `
		INSERT INTO governance_contact_link (network, remote_id, login, portal, staff, first_seen, last_seen)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (network, remote_id, login, portal) DO UPDATE SET
			staff = CASE WHEN excluded.staff <> '' THEN excluded.staff ELSE governance_contact_link.staff END,
			first_seen = CASE WHEN excluded.first_seen < governance_contact_link.first_seen
				THEN excluded.first_seen ELSE governance_contact_link.first_seen END,
			last_seen = CASE WHEN excluded.last_seen > governance_contact_link.last_seen
				THEN excluded.last_seen ELSE governance_contact_link.last_seen END
	`
	getContactQuery = `SELECT ` + contactColumns + ` FROM governance_contact WHERE network = $1 AND remote_id = $2`
	getLinksQuery   = `
		SELECT staff, login, portal, first_seen, last_seen FROM governance_contact_link
		WHERE network = $1 AND remote_id = $2 ORDER BY first_seen, login, portal
	`
)

// Scan implements dbutil.DataStruct.
func (c *Contact) Scan(row dbutil.Scannable) (*Contact, error) {
	var names string
	var first, last int64
	err := row.Scan(&c.Network, &c.RemoteID, &c.Phone, &c.Username, &names, &first, &last, &c.MessagesIn, &c.MessagesOut, &c.MediaIn, &c.MediaOut, &c.ActivityIn, &c.ActivityOut)
	if err != nil {
		return nil, err
	}
	if err = json.Unmarshal([]byte(names), &c.DisplayNames); err != nil {
		return nil, fmt.Errorf("failed to parse display names of contact: %w", err)
	}
	c.DisplayNames = nonNil(c.DisplayNames)
	c.FirstSeen, c.LastSeen = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	return c, nil
}

// Record adds an observation to the registry: it creates the contact on its
// first sighting (and logs first_contact), updates what is known of it, its
// counts, and the link to the staff account and portal. first tells whether
// the identity was new.
func (r *Registry) Record(ctx context.Context, obs Observation) (first bool, err error) {
	if obs.Network == "" || obs.RemoteID == "" {
		return false, fmt.Errorf("%w: network and remote ID are required", ErrInvalidObservation)
	}
	var counts [6]int64 // messages in, out, media in, out, activity in, out
	switch obs.Kind {
	case KindMessage, KindMedia, KindActivity:
		var dir int
		switch obs.Direction {
		case Inbound:
			dir = 0
		case Outbound:
			dir = 1
		default:
			return false, fmt.Errorf("%w: a message needs a direction (inbound or outbound), not %q", ErrInvalidObservation, obs.Direction)
		}
		switch obs.Kind {
		case KindActivity:
			counts[4+dir] = 1
		case KindMedia:
			counts[dir], counts[2+dir] = 1, 1
		default:
			counts[dir] = 1
		}
	case KindSeen:
	default:
		return false, fmt.Errorf("%w: unknown kind %q", ErrInvalidObservation, obs.Kind)
	}
	if obs.Time.IsZero() {
		obs.Time = r.now()
	}
	ts := obs.Time.UnixMilli()
	key := r.Key(obs.RemoteID)
	phone, username := r.storedPhone(obs.Phone), r.storedUsername(obs.Username)
	name := strings.TrimSpace(obs.DisplayName)
	if r.Hashed() && looksLikeNumber(name) {
		name = ""
	}
	login, portal := r.seal.Pseudonym(seal.KindLogin, string(obs.Login)), r.seal.Pseudonym(seal.KindPortal, string(obs.Portal))
	ref := contactRef{network: obs.Network, key: key}
	lref := linkRef{contactRef: ref, login: login, portal: portal, staff: obs.Staff}
	_, known := r.known.Get(ref)
	wantLink := obs.Staff != "" || obs.Login != "" || obs.Portal != ""
	if written, ok := r.linked.Get(lref); ok && ts >= written && ts-written < linkRefresh.Milliseconds() {
		wantLink = false
	}
	err = r.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if !known {
			res, err := r.db.Exec(ctx, insertContactQuery, obs.Network, key, ts)
			if err != nil {
				return fmt.Errorf("failed to insert contact: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("failed to insert contact: %w", err)
			}
			first = n == 1
		}
		var namesJSON string
		err = r.db.QueryRow(ctx, updateContactQuery, obs.Network, key, ts, phone, username,
			counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]).Scan(&namesJSON)
		if err != nil {
			return fmt.Errorf("failed to update contact: %w", err)
		}
		if name != "" {
			var names []string
			if err = json.Unmarshal([]byte(namesJSON), &names); err != nil {
				return fmt.Errorf("failed to parse display names of contact: %w", err)
			}
			if !contains(names, name) {
				data, _ := json.Marshal(append(names, name))
				if _, err = r.db.Exec(ctx, setDisplayNamesQuery, obs.Network, key, string(data)); err != nil {
					return fmt.Errorf("failed to update display names of contact: %w", err)
				}
			}
		}
		if wantLink {
			if _, err = r.db.Exec(ctx, upsertLinkQuery, obs.Network, key, login, portal, obs.Staff, ts); err != nil {
				return fmt.Errorf("failed to link contact: %w", err)
			}
		}
		if first && r.log != nil {
			_, err = r.log.Append(ctx, Entry{
				Time: obs.Time, Actor: ActorSystem, Action: ActionFirstContact, Network: obs.Network,
				Staff: obs.Staff, Login: networkid.UserLoginID(login), Portal: networkid.PortalID(portal), Contact: key,
				Details: Details(map[string]any{"kind": obs.Kind, "direction": obs.Direction}),
			})
		}
		return err
	})
	if known && errors.Is(err, sql.ErrNoRows) {
		// The row is gone (the database was replaced under the registry):
		// record it afresh.
		r.known.Remove(ref)
		r.linked.Remove(lref)
		return r.Record(ctx, obs)
	}
	if err != nil {
		return false, fmt.Errorf("failed to record contact: %w", err)
	}
	r.known.Put(ref, struct{}{})
	if wantLink {
		r.linked.Put(lref, ts)
	}
	return first, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Get returns the contact with a remote ID (as the network knows it; the
// registry hashes it if it must), or nil.
func (r *Registry) Get(ctx context.Context, network string, remoteID networkid.UserID) (*Contact, error) {
	c, err := r.contacts.QueryOne(ctx, getContactQuery, network, r.Key(remoteID))
	if err != nil {
		return nil, fmt.Errorf("failed to get contact: %w", err)
	} else if c == nil {
		return nil, nil
	}
	if err = r.loadLinks(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *Registry) loadLinks(ctx context.Context, c *Contact) error {
	rows, err := r.db.Query(ctx, getLinksQuery, c.Network, c.RemoteID)
	c.Links, err = dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (Link, error) {
		var l Link
		var first, last int64
		err := row.Scan(&l.Staff, &l.Login, &l.Portal, &first, &last)
		l.FirstSeen, l.LastSeen = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
		return l, err
	}, err).AsList()
	if err != nil {
		return fmt.Errorf("failed to get links of contact: %w", err)
	}
	c.Links = nonNil(c.Links)
	return nil
}

// ContactFilter selects contacts for List and Export. Zero fields select
// everything.
type ContactFilter struct {
	Network string
	// Staff and Portal select contacts that talked with this staff member,
	// or in this portal.
	Staff  id.UserID
	Portal networkid.PortalID
	// Query matches a remote ID, number or username (a substring, or in a
	// hashed registry the exact value), or a substring of a display name;
	// case-insensitive.
	Query string
	// SeenSince selects contacts last seen at or after it.
	SeenSince time.Time
	Limit     int
	Offset    int
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (r *Registry) listQuery(f ContactFilter) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Network != "" {
		where = append(where, "network = "+arg(f.Network))
	}
	const linkExists = "EXISTS (SELECT 1 FROM governance_contact_link l WHERE l.network = governance_contact.network AND l.remote_id = governance_contact.remote_id AND l.%s = %s)"
	if f.Staff != "" {
		where = append(where, fmt.Sprintf(linkExists, "staff", arg(string(f.Staff))))
	}
	if f.Portal != "" {
		where = append(where, fmt.Sprintf(linkExists, "portal", arg(r.seal.Pseudonym(seal.KindPortal, string(f.Portal)))))
	}
	if !f.SeenSince.IsZero() {
		where = append(where, "last_seen >= "+arg(f.SeenSince.UnixMilli()))
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		like := arg("%" + escapeLike(strings.ToLower(q)) + "%")
		or := []string{`LOWER(display_names) LIKE ` + like + ` ESCAPE '\'`}
		if !r.Hashed() {
			or = append(or,
				`LOWER(remote_id) LIKE `+like+` ESCAPE '\'`,
				`phone LIKE `+like+` ESCAPE '\'`,
				`LOWER(username) LIKE `+like+` ESCAPE '\'`)
			if norm, err := e164.Normalize(q); err == nil {
				or = append(or, "phone = "+arg(norm))
			}
		} else {
			or = append(or,
				"remote_id = "+arg(r.Key(networkid.UserID(q))),
				"phone = "+arg(r.storedPhone(q)),
				"username = "+arg(r.storedUsername(q)))
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	q := "SELECT " + contactColumns + " FROM governance_contact"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY network, remote_id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	if f.Offset > 0 {
		if f.Limit <= 0 {
			q += " LIMIT 1000000000" // SQLite needs a LIMIT before OFFSET
		}
		q += fmt.Sprintf(" OFFSET %d", f.Offset)
	}
	return q, args
}

// List returns the contacts that f selects, with their links, ordered by
// network and remote ID.
func (r *Registry) List(ctx context.Context, f ContactFilter) ([]Contact, error) {
	q, args := r.listQuery(f)
	ptrs, err := r.contacts.QueryMany(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to list contacts: %w", err)
	}
	out := make([]Contact, len(ptrs))
	for i, c := range ptrs {
		if err = r.loadLinks(ctx, c); err != nil {
			return nil, err
		}
		out[i] = *c
	}
	return out, nil
}
