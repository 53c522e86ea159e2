package telegram

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// TestChatsAtLogin: a staff member with 25 private chats and a supergroup
// links their account; the 20 most recent chats (the supergroup, active
// last, and 19 private chats) get their portal at once, each with its
// latest messages (initial_messages); the 6 older ones get none until they
// next speak, and then get theirs with their history.
func TestChatsAtLogin(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	var contacts []*tgsim.Account
	for i := range 25 {
		c := mustAccount(t, s, tgsim.AccountSpec{Phone: fmt.Sprintf("155502%02d", i), FirstName: fmt.Sprintf("Contact%d", i)})
		contacts = append(contacts, c)
		for k := range 4 {
			if _, err := s.SendMessage(c.ID, alice.ID, fmt.Sprintf("c%d m%d", i, k), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.AdvanceClock(time.Minute)
	group, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Partners", Creator: contacts[0].ID, Members: []int64{alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	for k := range 4 {
		if _, err := s.ChannelPost(group.ID, contacts[0].ID, fmt.Sprintf("g m%d", k), ""); err != nil {
			t.Fatal(err)
		}
	}
	tb := startBridgeOn(t, s, dbtest.SQLite(t).Open(t), fakematrix.New(), func(c *TelegramConnector, _ *fakematrix.Matrix) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: 3, ChatsAtLogin: 20}
	}, func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	})
	ul := loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	ctx := context.Background()
	// The portals' rows, not the cached portals (their loops write them).
	roomOf := func(key networkid.PortalKey) *database.Portal {
		p, err := tb.br.DB.Portal.GetByKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil || p.MXID == "" {
			return nil
		}
		return p
	}
	portalOf := func(i int) *database.Portal {
		return roomOf(tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerUser, ID: contacts[i].ID}, ul.ID))
	}
	roomBodies := func(p *database.Portal) []string {
		var out []string
		for _, m := range tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == p.MXID }) {
			out = append(out, m.Content.Body)
		}
		return out
	}
	want := func(i int, bodies ...string) []string {
		var out []string
		for _, b := range bodies {
			out = append(out, fmt.Sprintf("c%d %s", i, b))
		}
		return out
	}
	groupPortal := func() *database.Portal {
		return roomOf(tgid.MakePortalKey(tgid.Peer{Type: tgid.PeerChannel, ID: group.ID}, ""))
	}
	if !tb.mx.Eventually(60*time.Second, func() bool {
		for i := 6; i < 25; i++ {
			if p := portalOf(i); p == nil || len(roomBodies(p)) < 3 {
				return false
			}
		}
		p := groupPortal()
		return p != nil && len(roomBodies(p)) >= 3
	}) {
		t.Fatal("the 20 most recent chats did not all get their portal with their history")
	}
	if got := roomBodies(groupPortal()); !slices.Equal(got, []string{"g m1", "g m2", "g m3"}) {
		t.Errorf("the supergroup's portal has %q, want its latest 3 messages", got)
	}
	for i := 6; i < 25; i++ {
		if got := roomBodies(portalOf(i)); !slices.Equal(got, want(i, "m1", "m2", "m3")) {
			t.Errorf("chat %d's portal has %q, want its latest 3 messages", i, got)
		}
	}
	client := ul.Client.(*Client)
	if !tb.mx.Eventually(10*time.Second, func() bool {
		client.catchUpMu.Lock()
		defer client.catchUpMu.Unlock()
		return !ul.Metadata.(*tgid.UserLoginMetadata).ChatsAtLogin
	}) {
		t.Error("chats at login still marked as to do")
	}
	// An older chat gets its portal when it speaks, with its history.
	if _, err := s.SendMessage(contacts[0].ID, alice.ID, "c0 back", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "c0 back" }); !ok {
		t.Fatal("the older chat's new message never reached Matrix")
	}
	for i := 1; i < 6; i++ {
		if portalOf(i) != nil {
			t.Errorf("chat %d, older than the 20 most recent, got a portal at login", i)
		}
	}
	if got := roomBodies(portalOf(0)); !slices.Equal(got, want(0, "m2", "m3", "back")) {
		t.Errorf("chat 0's portal has %q, want its latest 3 messages", got)
	}
}
