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
	// Pending, when set, is called before the registry is read (Flush): it
	// writes what its caller gathered to record together later
	// (RecordAll), so that a read shows every message counted before it.
	Pending func(ctx context.Context) error

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
			last_seen = CASE WHEN $4 > last_seen THEN $4 ELSE last_seen END,
			phone = CASE WHEN $5 <> '' THEN $5 ELSE phone END,
			username = CASE WHEN $6 <> '' THEN $6 ELSE username END,
			messages_in = messages_in + $7,
			messages_out = messages_out + $8,
			media_in = media_in + $9,
			media_out = media_out + $10,
			activity_in = activity_in + $11,
			activity_out = activity_out + $12
		WHERE network = $1 AND remote_id = $2
		RETURNING display_names
	`
	setDisplayNamesQuery = `UPDATE governance_contact SET display_names = $3 WHERE network = $1 AND remote_id = $2`
	upsertLinkQuery      = `
		INSERT INTO governance_contact_link (network, remote_id, login, portal, staff, first_seen, last_seen)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
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

// tally is what the registry writes for one contact in one transaction:
// one observation, or several of the same contact merged (RecordAll).
type tally struct {
	ref contactRef
	// from is the first observation, for the first_contact entry.
	from            Observation
	login, portal   string // from's, as stored
	firstTS, lastTS int64
	phone, username string // stored form; empty: unchanged
	names           []string
	counts          [6]int64 // messages in, out, media in, out, activity in, out
	links           []linkWrite
}

// linkWrite is a link's sightings in a tally; written tells that write
// stored them (a link written lately is not written again).
type linkWrite struct {
	ref             linkRef
	firstTS, lastTS int64
	written         bool
}

// tallyOf checks an observation and makes its tally.
func (r *Registry) tallyOf(obs Observation) (*tally, error) {
	if obs.Network == "" || obs.RemoteID == "" {
		return nil, fmt.Errorf("%w: network and remote ID are required", ErrInvalidObservation)
	}
	t := &tally{from: obs}
	switch obs.Kind {
	case KindMessage, KindMedia, KindActivity:
		var dir int
		switch obs.Direction {
		case Inbound:
			dir = 0
		case Outbound:
			dir = 1
		default:
			return nil, fmt.Errorf("%w: a message needs a direction (inbound or outbound), not %q", ErrInvalidObservation, obs.Direction)
		}
		switch obs.Kind {
		case KindActivity:
			t.counts[4+dir] = 1
		case KindMedia:
			t.counts[dir], t.counts[2+dir] = 1, 1
		default:
			t.counts[dir] = 1
		}
	case KindSeen:
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidObservation, obs.Kind)
	}
	if obs.Time.IsZero() {
		t.from.Time = r.now()
	}
	t.firstTS = t.from.Time.UnixMilli()
	t.lastTS = t.firstTS
	t.ref = contactRef{network: obs.Network, key: r.Key(obs.RemoteID)}
	t.phone, t.username = r.storedPhone(obs.Phone), r.storedUsername(obs.Username)
	if name := strings.TrimSpace(obs.DisplayName); name != "" && !(r.Hashed() && looksLikeNumber(name)) {
		t.names = []string{name}
	}
	if lref, ok := r.linkOf(t.ref, obs); ok {
		t.login, t.portal = lref.login, lref.portal
		t.links = []linkWrite{{ref: lref, firstTS: t.firstTS, lastTS: t.firstTS}}
	}
	return t, nil
}

// linkOf is the stored link of an observation of the contact ref; false
// when it names no staff member, login or portal.
func (r *Registry) linkOf(ref contactRef, obs Observation) (linkRef, bool) {
	if obs.Staff == "" && obs.Login == "" && obs.Portal == "" {
		return linkRef{}, false
	}
	return linkRef{contactRef: ref, staff: obs.Staff,
		login: r.seal.Pseudonym(seal.KindLogin, string(obs.Login)), portal: r.seal.Pseudonym(seal.KindPortal, string(obs.Portal))}, true
}

// linkFresh tells whether a link's sightings from first to last need no
// write: it was written before them, less than linkRefresh before the last.
func (r *Registry) linkFresh(ref linkRef, first, last int64) bool {
	written, ok := r.linked.Get(ref)
	return ok && first >= written && last-written < linkRefresh.Milliseconds()
}

// merge adds u, a later tally of the same contact, to t.
func (t *tally) merge(u *tally) {
	t.firstTS, t.lastTS = min(t.firstTS, u.firstTS), max(t.lastTS, u.lastTS)
	if u.phone != "" {
		t.phone = u.phone
	}
	if u.username != "" {
		t.username = u.username
	}
	for _, name := range u.names {
		if !contains(t.names, name) {
			t.names = append(t.names, name)
		}
	}
	for i := range t.counts {
		t.counts[i] += u.counts[i]
	}
next:
	for _, l := range u.links {
		for i := range t.links {
			if t.links[i].ref == l.ref {
				t.links[i].firstTS, t.links[i].lastTS = min(t.links[i].firstTS, l.firstTS), max(t.links[i].lastTS, l.lastTS)
				continue next
			}
		}
		t.links = append(t.links, l)
	}
}

// Record adds an observation to the registry: it creates the contact on its
// first sighting (and logs first_contact), updates what is known of it, its
// counts, and the link to the staff account and portal. first tells whether
// the identity was new.
func (r *Registry) Record(ctx context.Context, obs Observation) (first bool, err error) {
	t, err := r.tallyOf(obs)
	if err != nil {
		return false, err
	}
	firsts, err := r.write(ctx, []*tally{t})
	if err != nil {
		return false, err
	}
	return firsts[0], nil
}

// RecordAll records observations in one transaction, those of one contact
// merged into one update: what Record of each would have stored, at the
// cost of one write per contact. The observations are all checked before
// anything is written.
func (r *Registry) RecordAll(ctx context.Context, obs []Observation) error {
	var tallies []*tally
	byRef := make(map[contactRef]*tally)
	for _, o := range obs {
		t, err := r.tallyOf(o)
		if err != nil {
			return err
		}
		if prev, ok := byRef[t.ref]; ok {
			prev.merge(t)
			continue
		}
		byRef[t.ref] = t
		tallies = append(tallies, t)
	}
	if len(tallies) == 0 {
		return nil
	}
	_, err := r.write(ctx, tallies)
	return err
}

// Routine reports whether recording obs now would only add to a stored
// contact: the registry knows the contact is stored and wrote its link
// lately, so no first_contact can come of it and nothing but counts, the
// last sighting and names changes. A caller may gather routine
// observations and record them together (RecordAll).
func (r *Registry) Routine(obs Observation) bool {
	ref := contactRef{network: obs.Network, key: r.Key(obs.RemoteID)}
	if _, known := r.known.Get(ref); !known {
		return false
	}
	lref, ok := r.linkOf(ref, obs)
	if !ok {
		return true
	}
	ts := obs.Time
	if ts.IsZero() {
		ts = r.now()
	}
	return r.linkFresh(lref, ts.UnixMilli(), ts.UnixMilli())
}

// write stores tallies in one transaction and tells, for each, whether its
// contact was new.
func (r *Registry) write(ctx context.Context, tallies []*tally) ([]bool, error) {
	firsts := make([]bool, len(tallies))
	anyKnown := false
	err := r.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for i, t := range tallies {
			_, known := r.known.Get(t.ref)
			anyKnown = anyKnown || known
			first, err := r.writeOne(ctx, t, known)
			if err != nil {
				return err
			}
			firsts[i] = first
		}
		return nil
	})
	if anyKnown && errors.Is(err, sql.ErrNoRows) {
		// A row is gone (the database was replaced under the registry):
		// record afresh.
		for _, t := range tallies {
			r.known.Remove(t.ref)
			for _, l := range t.links {
				r.linked.Remove(l.ref)
			}
		}
		return r.write(ctx, tallies)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to record contact: %w", err)
	}
	for _, t := range tallies {
		r.known.Put(t.ref, struct{}{})
		for _, l := range t.links {
			if l.written {
				r.linked.Put(l.ref, l.lastTS)
			}
		}
	}
	return firsts, nil
}

// writeOne writes one tally inside write's transaction.
func (r *Registry) writeOne(ctx context.Context, t *tally, known bool) (first bool, err error) {
	network, key := t.ref.network, t.ref.key
	if !known {
		res, err := r.db.Exec(ctx, insertContactQuery, network, key, t.firstTS)
		if err != nil {
			return false, fmt.Errorf("failed to insert contact: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, fmt.Errorf("failed to insert contact: %w", err)
		}
		first = n == 1
	}
	var namesJSON string
	err = r.db.QueryRow(ctx, updateContactQuery, network, key, t.firstTS, t.lastTS, t.phone, t.username,
		t.counts[0], t.counts[1], t.counts[2], t.counts[3], t.counts[4], t.counts[5]).Scan(&namesJSON)
	if err != nil {
		return false, fmt.Errorf("failed to update contact: %w", err)
	}
	if len(t.names) > 0 {
		var names []string
		if err = json.Unmarshal([]byte(namesJSON), &names); err != nil {
			return false, fmt.Errorf("failed to parse display names of contact: %w", err)
		}
		added := false
		for _, name := range t.names {
			if !contains(names, name) {
				names, added = append(names, name), true
			}
		}
		if added {
			data, _ := json.Marshal(names)
			if _, err = r.db.Exec(ctx, setDisplayNamesQuery, network, key, string(data)); err != nil {
				return false, fmt.Errorf("failed to update display names of contact: %w", err)
			}
		}
	}
	for i := range t.links {
		l := &t.links[i]
		if known && r.linkFresh(l.ref, l.firstTS, l.lastTS) {
			continue
		}
		if _, err = r.db.Exec(ctx, upsertLinkQuery, network, key, l.ref.login, l.ref.portal, l.ref.staff, l.firstTS, l.lastTS); err != nil {
			return false, fmt.Errorf("failed to link contact: %w", err)
		}
		l.written = true
	}
	if first && r.log != nil {
		obs := t.from
		_, err = r.log.Append(ctx, Entry{
			Time: obs.Time, Actor: ActorSystem, Action: ActionFirstContact, Network: network,
			Staff: obs.Staff, Login: networkid.UserLoginID(t.login), Portal: networkid.PortalID(t.portal), Contact: key,
			Details: Details(map[string]any{"kind": obs.Kind, "direction": obs.Direction}),
		})
	}
	return first, err
}

// Flush writes what is pending (Pending), if anything: the registry's
// readers, and others that read its tables, call it first.
func (r *Registry) Flush(ctx context.Context) error {
	if r == nil || r.Pending == nil {
		return nil
	}
	if err := r.Pending(ctx); err != nil {
		return fmt.Errorf("failed to write the counts still to record: %w", err)
	}
	return nil
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
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
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
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
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
