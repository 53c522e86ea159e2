package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/clock/clocktest"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func newRegistry(t *testing.T, db *dbutil.Database, log *audit.Log, key []byte, clk *clocktest.Manual) *audit.Registry {
	t.Helper()
	r, err := audit.NewRegistry(db, log, key)
	if err != nil {
		t.Fatal(err)
	}
	r.Now = clk.Now
	return r
}

func record(t *testing.T, r *audit.Registry, obs audit.Observation) bool {
	t.Helper()
	first, err := r.Record(context.Background(), obs)
	if err != nil {
		t.Fatal(err)
	}
	return first
}

func TestRecordUpsertsCountsAndLinks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		db := openDB(t, b)
		log := audit.NewLog(db)
		log.Now = clk.Now
		r := newRegistry(t, db, log, nil, clk)
		base := audit.Observation{Network: "whatsapp", RemoteID: "whatsapp.33612345678", Phone: "+33 6 12 34 56 78",
			DisplayName: "Marie", Staff: "@alice:example.org", Login: "whatsapp.alice", Portal: "whatsapp.33612345678"}
		steps := []struct {
			kind      audit.Kind
			dir       audit.Direction
			name      string
			portal    networkid.PortalID
			wantFirst bool
		}{
			{audit.KindMessage, audit.Inbound, "Marie", "", true},
			{audit.KindMedia, audit.Inbound, "Marie D.", "", false},
			{audit.KindMessage, audit.Outbound, "Marie", "", false},
			{audit.KindMedia, audit.Outbound, "", "whatsapp.group1@g.us", false},
			{audit.KindSeen, "", "", "", false},
			// An edit, a reaction or a deletion is activity, not a message.
			{audit.KindActivity, audit.Inbound, "", "", false},
			{audit.KindActivity, audit.Inbound, "", "", false},
			{audit.KindActivity, audit.Outbound, "", "", false},
		}
		for i, s := range steps {
			obs := base
			obs.Kind, obs.Direction, obs.DisplayName = s.kind, s.dir, s.name
			if s.portal != "" {
				obs.Portal = s.portal
			}
			if first := record(t, r, obs); first != s.wantFirst {
				t.Errorf("step %d: first = %v", i, first)
			}
			clk.Advance(time.Hour)
		}
		c, err := r.Get(ctx, "whatsapp", "whatsapp.33612345678")
		if err != nil || c == nil {
			t.Fatalf("Get = %v, %v", c, err)
		}
		start := newClock().Now()
		want := audit.Contact{
			Network: "whatsapp", RemoteID: "whatsapp.33612345678", Phone: "+33612345678",
			DisplayNames: []string{"Marie", "Marie D."},
			FirstSeen:    start, LastSeen: start.Add(7 * time.Hour),
			MessagesIn: 2, MessagesOut: 2, MediaIn: 1, MediaOut: 1, ActivityIn: 2, ActivityOut: 1,
			Links: []audit.Link{
				{Staff: "@alice:example.org", Login: "whatsapp.alice", Portal: "whatsapp.33612345678", FirstSeen: start, LastSeen: start.Add(7 * time.Hour)},
				{Staff: "@alice:example.org", Login: "whatsapp.alice", Portal: "whatsapp.group1@g.us", FirstSeen: start.Add(3 * time.Hour), LastSeen: start.Add(3 * time.Hour)},
			},
		}
		if !reflect.DeepEqual(*c, want) {
			t.Errorf("contact =\n%+v\nwant\n%+v", *c, want)
		}
		// An observation from the past does not move last_seen back.
		old := base
		old.Kind, old.Time = audit.KindSeen, start.Add(-time.Hour)
		record(t, r, old)
		c, _ = r.Get(ctx, "whatsapp", "whatsapp.33612345678")
		if !c.FirstSeen.Equal(start.Add(-time.Hour)) || !c.LastSeen.Equal(start.Add(7*time.Hour)) {
			t.Errorf("first/last seen after an old observation: %v %v", c.FirstSeen, c.LastSeen)
		}
		// Exactly one first_contact entry, naming the contact.
		entries, err := log.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionFirstContact}})
		if err != nil || len(entries) != 1 || entries[0].Contact != "whatsapp.33612345678" || entries[0].Staff != "@alice:example.org" {
			t.Fatalf("first_contact entries = %+v, %v", entries, err)
		}
	})
}

func TestRecordRejectsInvalidObservations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		r := newRegistry(t, openDB(t, b), nil, nil, newClock())
		for _, obs := range []audit.Observation{
			{RemoteID: "telegram.1", Kind: audit.KindSeen},
			{Network: "telegram", Kind: audit.KindSeen},
			{Network: "telegram", RemoteID: "telegram.1", Kind: audit.KindMessage},
			{Network: "telegram", RemoteID: "telegram.1", Kind: audit.KindActivity},
			{Network: "telegram", RemoteID: "telegram.1", Kind: "sticker", Direction: audit.Inbound},
		} {
			if _, err := r.Record(context.Background(), obs); !errors.Is(err, audit.ErrInvalidObservation) {
				t.Errorf("Record(%+v) = %v", obs, err)
			}
		}
		if _, err := audit.NewRegistry(nil, nil, []byte("short")); err == nil {
			t.Error("a 5-byte hash key was accepted")
		}
	})
}

// TestHashedRegistryNeverStoresNumber records a WhatsApp contact (whose
// remote ID is its number) in hashed mode, then searches every governance
// table for the number in any spelling.
func TestHashedRegistryNeverStoresNumber(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		db := openDB(t, b)
		log := audit.NewLog(db)
		key := bytes.Repeat([]byte{7}, 32)
		r := newRegistry(t, db, log, key, clk)
		obs := audit.Observation{Network: "whatsapp", RemoteID: "whatsapp.33612345678", Phone: "+33 6 12 34 56 78",
			Username: "@Marie_D", DisplayName: "+33 6 12 34 56 78", Staff: "@alice:example.org", Login: "whatsapp.alice",
			Portal: "whatsapp.team@g.us", Kind: audit.KindMessage, Direction: audit.Inbound}
		if !record(t, r, obs) {
			t.Fatal("first sighting not reported")
		}
		obs.DisplayName = "Marie"
		record(t, r, obs)

		for _, table := range []string{"governance_contact", "governance_contact_link", "governance_audit_log"} {
			rows, err := db.Query(ctx, "SELECT * FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err = rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					s := fmt.Sprint(v)
					if b, ok := v.([]byte); ok {
						s = string(b)
					}
					for _, needle := range []string{"612345678", "6 12 34", "marie_d", "Marie_D"} {
						if strings.Contains(s, needle) {
							t.Errorf("%s.%s holds %q: %s", table, cols[i], needle, s)
						}
					}
				}
			}
			_ = rows.Close()
		}

		c, err := r.Get(ctx, "whatsapp", "whatsapp.33612345678")
		if err != nil || c == nil {
			t.Fatalf("Get by the real ID = %v, %v", c, err)
		}
		if !strings.HasPrefix(c.RemoteID, audit.HashPrefix) || !strings.HasPrefix(c.Phone, audit.HashPrefix) ||
			!strings.HasPrefix(c.Username, audit.HashPrefix) || !reflect.DeepEqual(c.DisplayNames, []string{"Marie"}) || c.MessagesIn != 2 {
			t.Errorf("hashed contact = %+v", c)
		}
		// The number still finds the contact, in any spelling; another does not.
		for q, want := range map[string]int{"+33612345678": 1, "0033 6-12-34-56-78": 1, "marie_d": 1, "+33612345679": 0, "whatsapp.33612345678": 1} {
			got, err := r.List(ctx, audit.ContactFilter{Query: q})
			if err != nil || len(got) != want {
				t.Errorf("search %q found %d, want %d (%v)", q, len(got), want, err)
			}
		}
		// A second registry with another key cannot recognise the contact.
		other := newRegistry(t, db, nil, bytes.Repeat([]byte{8}, 32), clk)
		if c, _ := other.Get(ctx, "whatsapp", "whatsapp.33612345678"); c != nil {
			t.Error("a different key found the contact")
		}
	})
}

func TestListContactsFilters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		r := newRegistry(t, openDB(t, b), nil, nil, clk)
		for _, obs := range []audit.Observation{
			{Network: "telegram", RemoteID: "telegram.111", Username: "press_office", DisplayName: "Press Office", Staff: "@alice:example.org", Portal: "telegram.111"},
			{Network: "telegram", RemoteID: "telegram.222", DisplayName: "50% Discount_Bot", Staff: "@bob:example.org", Portal: "telegram.-100999"},
			{Network: "whatsapp", RemoteID: "whatsapp.4915112345678", Phone: "+4915112345678", DisplayName: "Jonas", Staff: "@bob:example.org", Portal: "whatsapp.4915112345678"},
		} {
			obs.Kind = audit.KindSeen
			record(t, r, obs)
			clk.Advance(time.Hour)
		}
		for _, tc := range []struct {
			name string
			f    audit.ContactFilter
			want []string
		}{
			{"all", audit.ContactFilter{}, []string{"telegram.111", "telegram.222", "whatsapp.4915112345678"}},
			{"network", audit.ContactFilter{Network: "telegram"}, []string{"telegram.111", "telegram.222"}},
			{"staff", audit.ContactFilter{Staff: "@bob:example.org"}, []string{"telegram.222", "whatsapp.4915112345678"}},
			{"portal", audit.ContactFilter{Portal: "telegram.-100999"}, []string{"telegram.222"}},
			{"name, any case", audit.ContactFilter{Query: "press OFFICE"}, []string{"telegram.111"}},
			{"username", audit.ContactFilter{Query: "@Press_Office"[1:]}, []string{"telegram.111"}},
			{"LIKE characters are literal", audit.ContactFilter{Query: "50%"}, []string{"telegram.222"}},
			{"underscore literal", audit.ContactFilter{Query: "t_b"}, []string{"telegram.222"}},
			{"number, spelled another way", audit.ContactFilter{Query: "0049 151 12345678"}, []string{"whatsapp.4915112345678"}},
			{"number fragment", audit.ContactFilter{Query: "15112"}, []string{"whatsapp.4915112345678"}},
			{"seen since", audit.ContactFilter{SeenSince: newClock().Now().Add(90 * time.Minute)}, []string{"whatsapp.4915112345678"}},
			{"page", audit.ContactFilter{Offset: 1, Limit: 1}, []string{"telegram.222"}},
			{"offset only", audit.ContactFilter{Offset: 2}, []string{"whatsapp.4915112345678"}},
		} {
			got, err := r.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.RemoteID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
			}
		}
	})
}

// TestConcurrentRecordsKeepExactCounts: many messages with one contact at
// once, from several goroutines, lose no count and no display name.
func TestConcurrentRecordsKeepExactCounts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := openDB(t, b)
		r := newRegistry(t, db, audit.NewLog(db), nil, newClock())
		const workers, each = 6, 10
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					_, err := r.Record(context.Background(), audit.Observation{Network: "telegram", RemoteID: "telegram.42",
						DisplayName: fmt.Sprintf("name %d", w), Kind: audit.KindMessage, Direction: audit.Inbound,
						Staff: "@alice:example.org", Portal: "telegram.42"})
					if err != nil {
						t.Error(err)
					}
				}
			}(w)
		}
		wg.Wait()
		c, err := r.Get(context.Background(), "telegram", "telegram.42")
		if err != nil || c == nil {
			t.Fatal(err)
		}
		if c.MessagesIn != workers*each || len(c.DisplayNames) != workers {
			t.Errorf("messages_in = %d, display names = %v", c.MessagesIn, c.DisplayNames)
		}
		entries, _ := audit.NewLog(db).List(context.Background(), audit.Filter{Actions: []audit.Action{audit.ActionFirstContact}})
		if len(entries) != 1 {
			t.Errorf("%d first_contact entries, want 1", len(entries))
		}
	})
}

// TestRecordOfKnownContact: a known contact's messages cost one statement
// (Record skips the insert and rewrites a link's last sighting at most once
// a minute), and still: the contact's counts and last_seen are exact, a new
// link is written at once, a link's last_seen is at most a minute stale, and
// a contact whose row went away (a replaced database) is recorded afresh.
func TestRecordOfKnownContact(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		start := clk.Now()
		db := openDB(t, b)
		log := audit.NewLog(db)
		log.Now = clk.Now
		r := newRegistry(t, db, log, nil, clk)
		obs := audit.Observation{Network: "telegram", RemoteID: "telegram.42", Staff: "@alice:example.org", Login: "telegram.1",
			Portal: "telegram.u42", Kind: audit.KindMessage, Direction: audit.Inbound}
		linkSeen := func(portal networkid.PortalID) time.Time {
			t.Helper()
			c, err := r.Get(ctx, "telegram", "telegram.42")
			if err != nil || c == nil {
				t.Fatalf("Get = %v, %v", c, err)
			}
			for _, l := range c.Links {
				if l.Portal == portal {
					return l.LastSeen
				}
			}
			t.Fatalf("no link to %s in %+v", portal, c.Links)
			return time.Time{}
		}
		for range 3 {
			record(t, r, obs)
			clk.Advance(20 * time.Second)
		}
		c, _ := r.Get(ctx, "telegram", "telegram.42")
		if c.MessagesIn != 3 || !c.LastSeen.Equal(start.Add(40*time.Second)) {
			t.Errorf("after 3 messages: %d in, last seen %v; want 3 and %v", c.MessagesIn, c.LastSeen, start.Add(40*time.Second))
		}
		if seen := linkSeen("telegram.u42"); start.Add(40*time.Second).Sub(seen) > time.Minute {
			t.Errorf("link last seen %v, more than a minute before %v", seen, start.Add(40*time.Second))
		}
		// The same contact in a group: its link is there at once.
		group := obs
		group.Portal = "telegram.c7"
		record(t, r, group)
		if seen := linkSeen("telegram.c7"); !seen.Equal(clk.Now()) {
			t.Errorf("new link last seen %v, want %v", seen, clk.Now())
		}
		clk.Advance(time.Minute)
		record(t, r, obs)
		if seen := linkSeen("telegram.u42"); !seen.Equal(clk.Now()) {
			t.Errorf("link last seen %v a minute later, want %v", seen, clk.Now())
		}
		c, _ = r.Get(ctx, "telegram", "telegram.42")
		if c.MessagesIn != 5 {
			t.Errorf("%d messages in, want 5", c.MessagesIn)
		}

		if _, err := db.Exec(ctx, "DELETE FROM governance_contact_link"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, "DELETE FROM governance_contact"); err != nil {
			t.Fatal(err)
		}
		if first := record(t, r, obs); !first {
			t.Error("a contact whose row went away was not recorded as new")
		}
		c, _ = r.Get(ctx, "telegram", "telegram.42")
		if c == nil || c.MessagesIn != 1 || len(c.Links) != 1 {
			t.Errorf("contact recorded afresh: %+v", c)
		}
	})
}

// TestRecordAllStoresWhatRecordWould: a batch of observations of two
// contacts (messages, media, activity both ways, a new name, a new link, a
// number learnt late) recorded together leaves the registry and the audit
// log as recording them one by one does: same counts, first and last
// sightings, names, links, and one first_contact per new contact. Routine
// tells the observations that need nothing but counting.
func TestRecordAllStoresWhatRecordWould(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		start := clk.Now()
		at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
		marie := audit.Observation{Network: "whatsapp", RemoteID: "whatsapp.33612345678", DisplayName: "Marie",
			Staff: "@alice:example.org", Login: "whatsapp.alice", Portal: "whatsapp.33612345678"}
		bob := audit.Observation{Network: "telegram", RemoteID: "telegram.42", Username: "bob_outside",
			Staff: "@alice:example.org", Login: "telegram.1", Portal: "telegram.u42"}
		with := func(o audit.Observation, s int, kind audit.Kind, dir audit.Direction, edit func(*audit.Observation)) audit.Observation {
			o.Time, o.Kind, o.Direction = at(s), kind, dir
			if edit != nil {
				edit(&o)
			}
			return o
		}
		batch := []audit.Observation{
			with(marie, 1, audit.KindMessage, audit.Inbound, nil),
			with(bob, 2, audit.KindMedia, audit.Outbound, nil),
			with(marie, 3, audit.KindActivity, audit.Outbound, func(o *audit.Observation) { o.DisplayName = "Marie D." }),
			with(marie, 4, audit.KindMedia, audit.Inbound, func(o *audit.Observation) { o.Phone = "+33 6 12 34 56 78" }),
			with(bob, 5, audit.KindMessage, audit.Inbound, func(o *audit.Observation) { o.Staff, o.Login = "@bea:example.org", "telegram.2" }),
			with(marie, 6, audit.KindMessage, audit.Outbound, nil),
		}
		type result struct {
			contacts []*audit.Contact
			firsts   int
		}
		// Each run on its own database of the same kind.
		fresh := func() dbtest.Backend {
			if b.Name == "postgres" {
				return dbtest.Postgres(t)
			}
			return dbtest.SQLite(t)
		}
		run := func(fn func(r *audit.Registry)) result {
			db := openDB(t, fresh())
			log := audit.NewLog(db)
			log.Now = clk.Now
			r := newRegistry(t, db, log, nil, clk)
			fn(r)
			var res result
			for _, o := range []audit.Observation{marie, bob} {
				c, err := r.Get(ctx, o.Network, o.RemoteID)
				if err != nil || c == nil {
					t.Fatalf("Get(%s) = %v, %v", o.RemoteID, c, err)
				}
				res.contacts = append(res.contacts, c)
			}
			entries, err := log.List(ctx, audit.Filter{Actions: []audit.Action{audit.ActionFirstContact}})
			if err != nil {
				t.Fatal(err)
			}
			res.firsts = len(entries)
			return res
		}
		// One by one, a link's last sighting is rewritten at most once a
		// minute; together, it is exact. The rest must be the same.
		linkSeen := func(res result) []time.Time {
			var seen []time.Time
			for _, c := range res.contacts {
				for i := range c.Links {
					seen = append(seen, c.Links[i].LastSeen)
					c.Links[i].LastSeen = time.Time{}
				}
			}
			return seen
		}
		one := run(func(r *audit.Registry) {
			for _, o := range batch {
				record(t, r, o)
			}
		})
		all := run(func(r *audit.Registry) {
			if err := r.RecordAll(ctx, batch); err != nil {
				t.Fatal(err)
			}
		})
		if seen := linkSeen(all); !reflect.DeepEqual(seen, []time.Time{at(6), at(2), at(5)}) {
			t.Errorf("links last seen %v recorded together, want %v", seen, []time.Time{at(6), at(2), at(5)})
		}
		linkSeen(one)
		if !reflect.DeepEqual(one, all) {
			t.Errorf("recorded together:\n%+v\n%+v\none by one:\n%+v\n%+v", *all.contacts[0], *all.contacts[1], *one.contacts[0], *one.contacts[1])
		}
		m := all.contacts[0]
		if m.MessagesIn != 2 || m.MediaIn != 1 || m.MessagesOut != 1 || m.ActivityOut != 1 || !m.FirstSeen.Equal(at(1)) ||
			!m.LastSeen.Equal(at(6)) || m.Phone != "+33612345678" || !reflect.DeepEqual(m.DisplayNames, []string{"Marie", "Marie D."}) {
			t.Errorf("Marie recorded together: %+v", *m)
		}
		if len(all.contacts[1].Links) != 2 || all.firsts != 2 {
			t.Errorf("Bob's links %+v, %d first contacts; want 2 links and 2 first contacts", all.contacts[1].Links, all.firsts)
		}

		// Routine: a stored contact whose link was written lately.
		db := openDB(t, b)
		r := newRegistry(t, db, nil, nil, clk)
		o := with(bob, 0, audit.KindMessage, audit.Inbound, nil)
		o.Time = time.Time{}
		if r.Routine(o) {
			t.Error("an unknown contact is routine")
		}
		record(t, r, o)
		if !r.Routine(o) {
			t.Error("the next message of a known contact in the same chat is not routine")
		}
		other := o
		other.Portal = "telegram.c7"
		if r.Routine(other) {
			t.Error("a known contact in a new chat is routine (its link must be written)")
		}
		clk.Advance(2 * time.Minute)
		if r.Routine(o) {
			t.Error("a link last written two minutes ago is routine")
		}
	})
}
