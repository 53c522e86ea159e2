package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// gapSetup is a staff member (alice) with portals for some contacts, and a
// database that outlives the gateway.
type gapSetup struct {
	s        *tgsim.Server
	db       dbtest.Backend
	tb       *testBridge
	alice    *tgsim.Account
	contacts []*tgsim.Account
	hellos   []tgsim.Message
	rooms    []id.RoomID
	loginID  networkid.UserLoginID
}

// newGapSetup logs alice in and gives each of n contacts a portal (one
// message "hello <i>" each).
func newGapSetup(t *testing.T, n int) *gapSetup {
	t.Helper()
	g := &gapSetup{s: newSim(t), db: dbtest.SQLite(t)}
	g.alice = mustAccount(t, g.s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	for i := range n {
		g.contacts = append(g.contacts, mustAccount(t, g.s, tgsim.AccountSpec{Phone: fmt.Sprintf("1555010%d", i), FirstName: fmt.Sprintf("Contact%d", i)}))
	}
	g.tb = startBridge(t, g.s, g.db.Open(t))
	ul := loginByPhone(t, g.tb, g.s, g.alice, "")
	g.loginID = ul.ID
	waitConnected(t, g.tb)
	for i, c := range g.contacts {
		body := fmt.Sprintf("hello %d", i)
		hello, err := g.s.SendMessage(c.ID, g.alice.ID, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		g.hellos = append(g.hellos, hello)
		m, ok := g.tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == body })
		if !ok {
			t.Fatalf("%q never reached Matrix", body)
		}
		g.rooms = append(g.rooms, m.RoomID)
	}
	return g
}

// restart starts the gateway again on the same database and homeserver.
func (g *gapSetup) restart(t *testing.T) {
	t.Helper()
	g.tb = startBridgeOn(t, g.s, g.db.Open(t), g.tb.mx, nil, nil)
	waitConnected(t, g.tb)
}

// sendGap has each contact send perContact messages "c<i> m<k>" (round
// robin) and, with changes, edit every tenth and delete every 25th; it
// returns the texts each room must end with, in order.
func (g *gapSetup) sendGap(t *testing.T, perContact int, changes bool) [][]string {
	t.Helper()
	want := make([][]string, len(g.contacts))
	for k := range perContact {
		for i, c := range g.contacts {
			text := fmt.Sprintf("c%d m%d", i, k)
			m, err := g.s.SendMessage(c.ID, g.alice.ID, text, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !changes:
			case k%25 == 7:
				if err := g.s.DeleteMessages(c.ID, []int{m.SenderMsgID}, true); err != nil {
					t.Fatal(err)
				}
				continue
			case k%10 == 3:
				text += " edited"
				if _, err := g.s.EditMessage(c.ID, g.alice.ID, m.SenderMsgID, text); err != nil {
					t.Fatal(err)
				}
			}
			want[i] = append(want[i], text)
		}
	}
	return want
}

// roomTexts is what a room shows, in order: each message with its edits
// applied (a message seen twice counts twice).
func roomTexts(mxs []*fakematrix.Matrix, room id.RoomID) []string {
	var out []string
	index := map[id.EventID]int{}
	for _, mx := range mxs {
		for _, m := range mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == room }) {
			if target := m.Replaces(); target != "" {
				if i, ok := index[target]; ok && m.Content.NewContent != nil {
					out[i] = m.Content.NewContent.Body
				}
				continue
			}
			index[m.EventID] = len(out)
			out = append(out, m.Content.Body)
		}
		for _, r := range mx.Redactions() {
			if i, ok := index[r.Redacts]; ok {
				out[i] = "(deleted) " + out[i]
			}
		}
	}
	return out
}

// waitRooms waits until every room ends with its "c<i> end" message and
// checks that the room shows exactly want[i] before it (from the first
// message after "hello <i>").
func (g *gapSetup) waitRooms(t *testing.T, mxs []*fakematrix.Matrix, want [][]string) {
	t.Helper()
	last := mxs[len(mxs)-1]
	if !last.Eventually(120*time.Second, func() bool {
		for i, room := range g.rooms {
			texts := roomTexts(mxs, room)
			if len(texts) == 0 || texts[len(texts)-1] != fmt.Sprintf("c%d end", i) {
				return false
			}
		}
		return true
	}) {
		for i, room := range g.rooms {
			texts := roomTexts(mxs, room)
			t.Errorf("room %d has %d messages, ends with %q", i, len(texts), texts[max(0, len(texts)-3):])
		}
		t.FailNow()
	}
	for i, room := range g.rooms {
		texts := roomTexts(mxs, room)
		texts = texts[:len(texts)-1]
		if len(texts) > 0 && strings.HasSuffix(texts[0], fmt.Sprintf("hello %d", i)) && (len(want[i]) == 0 || !strings.Contains(want[i][0], "hello")) {
			texts = texts[1:]
		}
		if !slices.Equal(texts, want[i]) {
			t.Errorf("room %d: %d messages, want %d; first difference: %s; starts %q", i, len(texts), len(want[i]), firstDiff(texts, want[i]), texts[:min(6, len(texts))])
		}
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("#%d %q, want %q", i, got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("extra %q", got[len(want)])
	}
	if len(got) < len(want) {
		return fmt.Sprintf("missing %q", want[len(got)])
	}
	return "none"
}

// sendEnd has every contact send "c<i> end" (live, after the gap).
func (g *gapSetup) sendEnd(t *testing.T) {
	t.Helper()
	for i, c := range g.contacts {
		if _, err := g.s.SendMessage(c.ID, g.alice.ID, fmt.Sprintf("c%d end", i), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCatchUpAfterDowntime: 500 messages sent to a staff member across 5
// chats while the gateway is stopped, with edits and deletions, each reach
// their room once, in order, edited, the deleted ones not at all, and a
// message from before the gap edited or deleted meanwhile is edited or
// deleted in Matrix: when
// Telegram gives the gap in slices of 100 events, and when it says the gap
// is too long and the gateway fetches each chat's history itself.
func TestCatchUpAfterDowntime(t *testing.T) {
	for _, mode := range []string{"slices", "too long"} {
		t.Run(mode, func(t *testing.T) {
			g := newGapSetup(t, 5)
			if mode == "slices" {
				g.s.SetDifferenceSlice(100)
			} else {
				g.s.SetDifferenceTooLong(100)
			}
			g.tb.stop()
			// While down, the first contact edits their message from
			// before, the second deletes theirs; then the gap.
			if _, err := g.s.EditMessage(g.contacts[0].ID, g.alice.ID, g.hellos[0].SenderMsgID, "hello 0, edited"); err != nil {
				t.Fatal(err)
			}
			if err := g.s.DeleteMessages(g.contacts[1].ID, []int{g.hellos[1].SenderMsgID}, true); err != nil {
				t.Fatal(err)
			}
			want := g.sendGap(t, 100, true)
			for i := range want {
				first := fmt.Sprintf("hello %d", i)
				switch i {
				case 0:
					first = "hello 0, edited"
				case 1:
					first = "(deleted) hello 1"
				}
				want[i] = append([]string{first}, want[i]...)
			}
			g.restart(t)
			g.sendEnd(t)
			g.waitRooms(t, []*fakematrix.Matrix{g.tb.mx}, want)
			// The record is cleared once the last chat is caught up, just
			// after its messages are bridged: read it under its lock.
			if !g.tb.mx.Eventually(20*time.Second, func() bool { return g.client(t).pendingCatchUp() == nil }) {
				t.Errorf("catch-up still recorded after it ended: %+v", g.client(t).pendingCatchUp())
			}
		})
	}
}

// TestCatchUpAfterAGapWhileConnected: Telegram stops pushing updates for a
// while (the gateway stays connected) and the gap is too long to list; when
// the pushes resume, the gateway catches up every chat, once, in order.
func TestCatchUpAfterAGapWhileConnected(t *testing.T) {
	g := newGapSetup(t, 3)
	g.s.SetDifferenceTooLong(50)
	g.s.PauseUpdates(g.alice.ID)
	want := g.sendGap(t, 40, true)
	g.s.ResumeUpdates(g.alice.ID)
	g.sendEnd(t)
	g.waitRooms(t, []*fakematrix.Matrix{g.tb.mx}, want)
}

// client is the login's connector client.
func (g *gapSetup) client(t *testing.T) *Client {
	t.Helper()
	ul := g.tb.br.GetCachedUserLoginByID(g.loginID)
	if ul == nil {
		t.Fatal("login not loaded")
	}
	return ul.Client.(*Client)
}

// gapWhileDown stops the gateway of a setup with two contacts, has each
// send perContact plain texts (more than one difference lists: 100) and
// starts it again; it returns the setup and the texts each room must end
// with.
func gapWhileDown(t *testing.T, perContact int) (*gapSetup, [][]string) {
	t.Helper()
	g := newGapSetup(t, 2)
	g.s.SetDifferenceTooLong(100)
	g.tb.stop()
	want := g.sendGap(t, perContact, false)
	g.restart(t)
	return g, want
}

// TestCatchUpBigGapNotices: a 2,000-message gap is reported in the staff
// member's management room: its start, its progress and its end.
func TestCatchUpBigGapNotices(t *testing.T) {
	g, want := gapWhileDown(t, 1000)
	var notices []string
	if !g.tb.mx.Eventually(60*time.Second, func() bool {
		notices = notices[:0]
		for _, m := range g.tb.mx.MessagesFrom(fakematrix.BotMXID) {
			if m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, "your Telegram account") {
				notices = append(notices, m.Content.Body)
			}
		}
		return len(notices) > 0 && strings.HasPrefix(notices[len(notices)-1], "Caught up")
	}) {
		t.Fatalf("catch-up notices %q", notices)
	}
	g.sendEnd(t)
	g.waitRooms(t, []*fakematrix.Matrix{g.tb.mx}, want)
	wantNotices := []string{
		"Catching up with your Telegram account: 2,000 messages to bridge.",
		"Catching up with your Telegram account: 1,000 of 2,000.",
		"Caught up with your Telegram account: 2,000 messages bridged.",
	}
	if !slices.Equal(notices, wantNotices) {
		t.Errorf("notices %q, want %q", notices, wantNotices)
	}
}

// TestCatchUpRestartMidway: the gateway stops in the middle of a catch-up;
// after the restart it goes on where it was: every message once, in order.
func TestCatchUpRestartMidway(t *testing.T) {
	g, want := gapWhileDown(t, 300)
	first := g.tb.mx
	if !first.Eventually(60*time.Second, func() bool { return len(first.Messages()) >= 150 }) {
		t.Fatalf("the catch-up never started: %d messages", len(first.Messages()))
	}
	g.tb.stop()
	if n := len(first.Messages()); n >= 600 {
		t.Fatalf("the catch-up ended (%d messages) before the restart", n)
	}
	if md := g.loginMetaFromDB(t); md.CatchUp == nil || md.CatchUp.Since == 0 {
		t.Fatalf("the unfinished catch-up is not recorded: %+v", md.CatchUp)
	}
	g.restart(t)
	g.sendEnd(t)
	g.waitRooms(t, []*fakematrix.Matrix{g.tb.mx}, want)
}

// loginMetaFromDB reads the login's metadata as stored (the gateway
// stopped).
func (g *gapSetup) loginMetaFromDB(t *testing.T) *tgid.UserLoginMetadata {
	t.Helper()
	var raw string
	err := g.db.Open(t).QueryRow(context.Background(), "SELECT metadata FROM user_login WHERE id=$1", string(g.loginID)).Scan(&raw)
	if err != nil {
		t.Fatalf("login row: %v", err)
	}
	md := &tgid.UserLoginMetadata{}
	if err := json.Unmarshal([]byte(raw), md); err != nil {
		t.Fatal(err)
	}
	return md
}

// TestCatchUpNewChat: a contact who never wrote before writes 10 messages
// during a gap too long to list: the chat gets its portal with only its
// latest initial_messages, once each, in order.
func TestCatchUpNewChat(t *testing.T) {
	s := newSim(t)
	db := dbtest.SQLite(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	configure := func(c *TelegramConnector, _ *fakematrix.Matrix) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: 3}
	}
	backfill := func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Backfill = bridgeconfig.BackfillConfig{Enabled: true, MaxInitialMessages: 100}
	}
	tb := startBridgeOn(t, s, db.Open(t), fakematrix.New(), configure, backfill)
	loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	tb.stop()
	s.SetDifferenceTooLong(5)
	for k := range 10 {
		if _, err := s.SendMessage(bob.ID, alice.ID, fmt.Sprintf("new m%d", k), nil); err != nil {
			t.Fatal(err)
		}
	}
	tb = startBridgeOn(t, s, db.Open(t), tb.mx, configure, backfill)
	waitConnected(t, tb)
	m9, ok := tb.mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "new m9" })
	if !ok {
		t.Fatal("the new chat's messages never reached Matrix")
	}
	if _, err := s.SendMessage(bob.ID, alice.ID, "new end", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "new end" }); !ok {
		t.Fatal("the live message after the gap never reached Matrix")
	}
	var bodies []string
	for _, m := range tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == m9.RoomID }) {
		bodies = append(bodies, m.Content.Body)
	}
	if want := []string{"new m7", "new m8", "new m9", "new end"}; !slices.Equal(bodies, want) {
		t.Errorf("the new chat's portal has %q, want %q", bodies, want)
	}
}

// TestCatchUpBasicGroup: a basic group with a portal gets 30 messages during
// a gap too long to list: they reach its portal once each, in order, after
// the ones bridged before.
func TestCatchUpBasicGroup(t *testing.T) {
	g := newGapSetup(t, 1)
	bob := g.contacts[0]
	chat, err := g.s.CreateChat(tgsim.ChatSpec{Title: "Team", Creator: bob.ID, Members: []int64{g.alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.s.ChatPost(chat.ID, bob.ID, "group hello"); err != nil {
		t.Fatal(err)
	}
	first, ok := g.tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "group hello" })
	if !ok {
		t.Fatal("the group's first message never reached Matrix")
	}
	g.s.SetDifferenceTooLong(10)
	g.tb.stop()
	var want []string
	for k := range 30 {
		text := fmt.Sprintf("group m%d", k)
		if _, err := g.s.ChatPost(chat.ID, bob.ID, text); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
	}
	g.restart(t)
	if _, ok := g.tb.mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "group m29" }); !ok {
		t.Fatal("the group's gap never reached Matrix")
	}
	if _, err := g.s.ChatPost(chat.ID, bob.ID, "group end"); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.tb.mx.WaitMessage(30*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "group end" }); !ok {
		t.Fatal("the message after the gap never reached Matrix")
	}
	got := roomTexts([]*fakematrix.Matrix{g.tb.mx}, first.RoomID)
	want = append(append([]string{"group hello"}, want...), "group end")
	if !slices.Equal(got, want) {
		t.Errorf("the group's portal: %d messages, want %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
}
