package whatsapp

import (
	"slices"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/internal/dbtest"
)

func contactIDs(rs []*bridgev2.ResolveIdentifierResponse) []networkid.UserID {
	var out []networkid.UserID
	for _, r := range rs {
		out = append(out, r.UserID)
	}
	slices.Sort(out)
	return out
}

// TestContactListAndSearch: the contact list holds who the linked device's
// contact store knows (Bob, once he has written), never the account itself;
// a search finds a contact by name or number, and a number on WhatsApp that
// is not a contact.
func TestContactListAndSearch(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	client := ul.Client.(*Client)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "hi"); err != nil {
		t.Fatal(err)
	}
	bob, carol := networkid.UserID("whatsapp."+bobPh), networkid.UserID("whatsapp."+carolPh)
	var contacts []*bridgev2.ResolveIdentifierResponse
	// The contact store fills as the phone's address book syncs.
	tb.mx.Eventually(waitLong, func() bool {
		var err error
		if contacts, err = client.GetContactList(ctx); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(contactIDs(contacts), bob)
	})
	if got := contactIDs(contacts); !slices.Equal(got, []networkid.UserID{bob}) {
		t.Fatalf("contact list %v, want [%s]", got, bob)
	}
	if c := contacts[0]; c.Ghost == nil || c.UserInfo == nil || c.UserInfo.Name == nil || *c.UserInfo.Name == "" {
		t.Errorf("Bob without his ghost or name: %+v", c)
	}

	for _, c := range []struct {
		query string
		want  []networkid.UserID
	}{
		{"bob", []networkid.UserID{bob}},
		{"0002222", []networkid.UserID{bob}},
		{"+" + bobPh, []networkid.UserID{bob}},
		{"+" + carolPh, []networkid.UserID{carol}},
		{"+15559999999", nil},
		{"carol", nil},
		{" ", nil},
	} {
		got, err := client.SearchUsers(ctx, c.query)
		if err != nil {
			t.Errorf("SearchUsers(%q): %v", c.query, err)
			continue
		}
		if ids := contactIDs(got); !slices.Equal(ids, c.want) {
			t.Errorf("SearchUsers(%q) = %v, want %v", c.query, ids, c.want)
		}
	}
}
