package telegram

import (
	"context"
	"slices"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

func userIDsOf(rs []*bridgev2.ResolveIdentifierResponse) []networkid.UserID {
	var out []networkid.UserID
	for _, r := range rs {
		out = append(out, r.UserID)
	}
	slices.Sort(out)
	return out
}

// TestContactListAndSearch: the contact list is the account's Telegram
// contacts with their ghosts; a search finds contacts by name, @username or
// phone, and a @username or phone of someone who is not a contact.
func TestContactListAndSearch(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550101", FirstName: "Alice", LastName: "Liddell"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550102", FirstName: "Bob", LastName: "Builder", Username: "bob_builder"})
	carol := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550103", FirstName: "Carol", LastName: "Danvers"})
	dave := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550104", FirstName: "Dave", LastName: "Stranger", Username: "dave_stranger"})
	for _, c := range []int64{bob.ID, carol.ID} {
		if err := s.AddContact(alice.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ul := loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	client := ul.Client.(*Client)

	contacts, err := client.GetContactList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bobID, carolID, daveID := tgid.MakeUserID(bob.ID), tgid.MakeUserID(carol.ID), tgid.MakeUserID(dave.ID)
	if got, want := userIDsOf(contacts), []networkid.UserID{bobID, carolID}; !slices.Equal(got, want) {
		t.Errorf("contact list %v, want %v", got, want)
	}
	for _, c := range contacts {
		if c.Ghost == nil || c.UserInfo == nil || c.UserInfo.Name == nil || *c.UserInfo.Name == "" {
			t.Errorf("contact %s without its ghost or name: %+v", c.UserID, c)
		}
	}

	for _, c := range []struct {
		query string
		want  []networkid.UserID
	}{
		{"bob", []networkid.UserID{bobID}},
		{"DANVERS", []networkid.UserID{carolID}},
		{"@bob_builder", []networkid.UserID{bobID}},
		{"+15550103", []networkid.UserID{carolID}},
		{"@dave_stranger", []networkid.UserID{daveID}},
		{"+15550104", []networkid.UserID{daveID}},
		{"@nobody_here", nil},
		{"zzz", nil},
		{"  ", nil},
	} {
		got, err := client.SearchUsers(ctx, c.query)
		if err != nil {
			t.Errorf("SearchUsers(%q): %v", c.query, err)
			continue
		}
		if ids := userIDsOf(got); !slices.Equal(ids, c.want) {
			t.Errorf("SearchUsers(%q) = %v, want %v", c.query, ids, c.want)
		}
	}
}
