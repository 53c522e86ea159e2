package telegram

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/ptr"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

const staffCarol id.UserID = "@carol:test"

// loginAs logs a Matrix user in with the phone flow.
func loginAs(t *testing.T, tb *testBridge, s *tgsim.Server, mxid id.UserID, acc *tgsim.Account) *bridgev2.UserLogin {
	t.Helper()
	ctx := context.Background()
	user, err := tb.br.GetUserByMXID(ctx, mxid)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := tb.conn.CreateLogin(ctx, user, FlowIDPhone)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	step, err := lp.Start(ctx)
	expectStep(t, step, err, StepIDPhone)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"phone": "+" + acc.Phone})
	expectStep(t, step, err, StepIDCode)
	code, _ := s.LastCode(acc.Phone)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"code": code})
	step = expectStep(t, step, err, StepIDComplete)
	return step.CompleteParams.UserLogin
}

type groupSetup struct {
	s                       *tgsim.Server
	db                      dbtest.Backend
	tb                      *testBridge
	alice, carol, bob, dave *tgsim.Account
	aliceUL, carolUL        *bridgev2.UserLogin
}

// newGroupSetup: two staff members (alice, carol) logged in, two contacts
// (bob, dave).
func newGroupSetup(t *testing.T) *groupSetup {
	t.Helper()
	s := newSim(t)
	gs := &groupSetup{s: s}
	gs.alice = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	gs.carol = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550003", FirstName: "Carol"})
	gs.bob = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	gs.dave = mustAccount(t, s, tgsim.AccountSpec{Phone: "15550004", FirstName: "Dave"})
	gs.db = dbtest.SQLite(t)
	gs.tb = startBridge(t, s, gs.db.Open(t))
	gs.aliceUL = loginAs(t, gs.tb, s, testUser, gs.alice)
	gs.carolUL = loginAs(t, gs.tb, s, staffCarol, gs.carol)
	// Both updates managers started (CONNECTED is sent once the manager
	// has its state): channel messages posted before would be missed, as
	// the simulator's updates.getDifference does not carry channels.
	if !gs.tb.mx.Eventually(20*time.Second, func() bool {
		connected := map[networkid.UserLoginID]bool{}
		for _, st := range gs.tb.mx.BridgeStates() {
			if st.StateEvent == status.StateConnected {
				connected[networkid.UserLoginID(st.RemoteID)] = true
			}
		}
		return connected[gs.aliceUL.ID] && connected[gs.carolUL.ID] && s.Sessions(gs.alice.ID) > 0 && s.Sessions(gs.carol.ID) > 0
	}) {
		t.Fatal("the two logins never connected")
	}
	return gs
}

func (gs *groupSetup) portal(t *testing.T, channelID int64) *bridgev2.Portal {
	t.Helper()
	key := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerChannel, ID: channelID})}
	var portal *bridgev2.Portal
	if !gs.tb.mx.Eventually(20*time.Second, func() bool {
		p, err := gs.tb.br.GetExistingPortalByKey(context.Background(), key)
		portal = p
		return err == nil && p != nil && p.MXID != ""
	}) {
		t.Fatal("no portal for the group")
	}
	return portal
}

// waitHandled waits until both logins handled the channel's updates up to
// pts: then every copy of every message was offered to the bridge.
func (gs *groupSetup) waitHandled(t *testing.T, channelID int64, pts int) {
	t.Helper()
	st := gs.tb.conn.Store.UpdateState()
	if !gs.tb.mx.Eventually(20*time.Second, func() bool {
		for _, acc := range []*tgsim.Account{gs.alice, gs.carol} {
			got, ok, err := st.GetChannelPts(context.Background(), acc.ID, channelID)
			if err != nil || !ok || got < pts {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the logins never handled the group's updates up to pts %d", pts)
	}
}

func (gs *groupSetup) inject(portal *bridgev2.Portal, evt *event.Event) {
	evt.RoomID = portal.MXID
	if evt.Timestamp == 0 {
		evt.Timestamp = time.Now().UnixMilli()
	}
	gs.tb.mx.Inject(context.Background(), evt)
}

// TestSupergroupSharedPortal: a supergroup with two staff members and two
// contacts is one portal; each message is bridged once although both logins
// receive it; both staff are invited; a staff member's Matrix message goes
// out through their own login; renames go both ways.
func TestSupergroupSharedPortal(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{
		Title: "Support", About: "Customer support", Creator: gs.bob.ID,
		Members: []int64{gs.alice.ID, gs.carol.ID, gs.dave.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two posts in a row: gotd may hand a new channel's first updates to
	// the manager out of order; none is lost.
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "hello group", ""); err != nil {
		t.Fatal(err)
	}
	second, err := s.ChannelPost(ch.ID, gs.dave.ID, "second message", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "second message" }); !ok {
		t.Fatal("the group's messages never reached Matrix")
	}
	gs.waitHandled(t, ch.ID, second.Pts)
	portal := gs.portal(t, ch.ID)
	for _, body := range []string{"hello group", "second message"} {
		if got := mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == body }); len(got) != 1 {
			t.Errorf("%q bridged %d times, want once", body, len(got))
		} else if got[0].RoomID != portal.MXID {
			t.Errorf("%q went to room %s, not the group's portal %s", body, got[0].RoomID, portal.MXID)
		}
	}
	if n := len(mx.Rooms()); n != 1 {
		t.Errorf("%d rooms, want the one group portal", n)
	}
	if portal.Name != "Support" || portal.Topic != "Customer support" {
		t.Errorf("portal name %q topic %q", portal.Name, portal.Topic)
	}
	// The gate sees the group's name and members (alice's own account
	// left out).
	desc, err := gs.aliceUL.Client.(*Client).DescribeChat(context.Background(), portal.PortalKey)
	if err != nil {
		t.Fatal(err)
	}
	described := map[int64]string{}
	for _, m := range desc.Members {
		described[m.Number] = m.DisplayName
	}
	if !desc.IsGroup || desc.Name != "Support" || described[gs.bob.ID] != "Bob" || described[gs.dave.ID] != "Dave" || len(described) != 3 {
		t.Errorf("the group is described as %+v", desc)
	}
	members := mx.Members(portal.MXID)
	for _, staff := range []id.UserID{testUser, staffCarol} {
		if m := members[staff]; m != event.MembershipInvite && m != event.MembershipJoin {
			t.Errorf("staff %s is %q in the portal, want invited", staff, m)
		}
	}
	for _, contact := range []*tgsim.Account{gs.bob, gs.dave} {
		if m := members[mx.FormatGhostMXID(tgid.MakeUserID(contact.ID))]; m != event.MembershipJoin {
			t.Errorf("contact %s is %q in the portal, want joined", contact.FirstName, m)
		}
	}
	if msgs := mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Content.Body == "hello group" }); len(msgs) == 1 &&
		msgs[0].Sender != mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID)) {
		t.Errorf("bob's message sent by %s", msgs[0].Sender)
	}
	pl := mx.PowerLevels(portal.MXID)
	if pl == nil || pl.GetUserLevel(mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))) != powerCreator {
		t.Errorf("the creator's power level is not %d: %+v", powerCreator, pl)
	}

	// Matrix → Telegram through carol's own login.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$carol1", Sender: staffCarol,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "carol answers"}}})
	var sent tgsim.ChannelMessage
	if !mx.Eventually(20*time.Second, func() bool {
		for _, m := range s.ChannelMessages(ch.ID) {
			if m.Text == "carol answers" {
				sent = m
				return true
			}
		}
		return false
	}) {
		t.Fatalf("carol's message never reached Telegram; statuses %+v", mx.StatusesOf("$carol1"))
	}
	if sent.From != gs.carol.ID {
		t.Errorf("carol's message was sent by %d, want carol (%d)", sent.From, gs.carol.ID)
	}
	// Its echo to alice's login is not bridged again.
	third, _ := s.ChannelPost(ch.ID, gs.bob.ID, "third", "")
	gs.waitHandled(t, ch.ID, third.Pts)
	if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return strings.Contains(m.Content.Body, "carol answers") })); n != 0 {
		t.Errorf("carol's message was bridged back %d times", n)
	}

	// A rename on Telegram shows in Matrix.
	if err := s.RenameChannel(ch.ID, gs.bob.ID, "Support desk"); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		c := mx.State(portal.MXID, event.StateRoomName, "")
		return c != nil && c.AsRoomName().Name == "Support desk"
	}) {
		t.Error("the Telegram rename never reached the room name")
	}

	// A rename from Matrix by a staff member without the right: refused
	// with a clear status, the Telegram title unchanged.
	gs.inject(portal, &event.Event{Type: event.StateRoomName, ID: "$name1", Sender: staffCarol, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Carol's group"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.StatusesOf("$name1") {
			if strings.Contains(st.Error(), "no right to rename") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("a rename without the right was not refused clearly: %+v", mx.StatusesOf("$name1"))
	}
	if info, _ := s.ChannelInfo(ch.ID); info.Title != "Support desk" {
		t.Errorf("Telegram title %q after a refused rename", info.Title)
	}
	// Once admin, the rename goes to Telegram.
	if err := s.PromoteChannelAdmin(ch.ID, gs.carol.ID, true); err != nil {
		t.Fatal(err)
	}
	carolMXLevel := func() int {
		pl := mx.PowerLevels(portal.MXID)
		if pl == nil {
			return -1
		}
		return pl.GetUserLevel(mx.FormatGhostMXID(tgid.MakeUserID(gs.carol.ID)))
	}
	if !mx.Eventually(20*time.Second, func() bool { return carolMXLevel() == powerAdmin }) {
		t.Errorf("carol's promotion never reached the power levels: %d", carolMXLevel())
	}
	gs.inject(portal, &event.Event{Type: event.StateRoomName, ID: "$name2", Sender: staffCarol, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Carol's group"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		info, _ := s.ChannelInfo(ch.ID)
		return info.Title == "Carol's group"
	}) {
		t.Errorf("the Matrix rename never reached Telegram: %+v", mx.StatusesOf("$name2"))
	}

	// A member leaving on Telegram leaves the portal.
	if err := s.LeaveChannel(ch.ID, gs.dave.ID, 0); err != nil {
		t.Fatal(err)
	}
	daveMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.dave.ID))
	if !mx.Eventually(20*time.Second, func() bool { return mx.Members(portal.MXID)[daveMXID] == event.MembershipLeave }) {
		t.Errorf("dave's leave never reached the portal: %q", mx.Members(portal.MXID)[daveMXID])
	}

	// A staff member who leaves the group on Telegram leaves the portal;
	// the other stays.
	if err := s.LeaveChannel(ch.ID, gs.carol.ID, 0); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool { return mx.Members(portal.MXID)[staffCarol] == event.MembershipLeave }) {
		t.Errorf("carol left the group but is %q in the portal", mx.Members(portal.MXID)[staffCarol])
	}
	if m := mx.Members(portal.MXID)[testUser]; m != event.MembershipInvite && m != event.MembershipJoin {
		t.Errorf("alice is %q in the portal after carol left", m)
	}
	// Carol's Matrix messages are now refused clearly.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$carol2", Sender: staffCarol,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "carol after leaving"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.StatusesOf("$carol2") {
			if st.SendNotice && strings.Contains(st.Error(), "not a member of this Telegram group") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("carol's message after leaving: statuses %+v", mx.StatusesOf("$carol2"))
	}
}

// TestSupergroupSenderNotInGroup: a staff member whose Telegram account is
// not in the group gets a clear failure, nothing is sent.
func TestSupergroupSenderNotInGroup(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Alice only", Creator: gs.bob.ID, Members: []int64{gs.alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "hi alice", ""); err != nil {
		t.Fatal(err)
	}
	portal := gs.portal(t, ch.ID)
	if m := mx.Members(portal.MXID)[staffCarol]; m != "" && m != event.MembershipLeave {
		t.Errorf("carol, not in the group, is %q in its portal", m)
	}
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$c1", Sender: staffCarol,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "carol tries"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.StatusesOf("$c1") {
			if st.SendNotice && strings.Contains(st.Error(), "not a member of this Telegram group") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("statuses %+v", mx.StatusesOf("$c1"))
	}
	for _, m := range s.ChannelMessages(ch.ID) {
		if m.Text == "carol tries" {
			t.Error("carol's message reached the group")
		}
	}
}

// TestBroadcastChannel: posts show as the channel (signed ones with their
// author); the power levels let only admins post, and a staff member who is
// not an admin is refused clearly.
func TestBroadcastChannel(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{
		Title: "News", Broadcast: true, Signed: true, Creator: gs.bob.ID,
		Members: []int64{gs.alice.ID}, Admins: []int64{gs.carol.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "breaking news", ""); err != nil {
		t.Fatal(err)
	}
	m, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "breaking news" })
	if !ok {
		t.Fatal("the post never reached Matrix")
	}
	channelGhost := mx.FormatGhostMXID(tgid.MakeChannelGhostID(ch.ID))
	if m.Sender != channelGhost {
		t.Errorf("post sent by %s, want the channel's ghost %s", m.Sender, channelGhost)
	}
	if p := m.Content.BeeperPerMessageProfile; p == nil || p.Displayname != "Bob" {
		t.Errorf("the signed post does not show its author: %+v", p)
	}
	if name := mx.Profile(channelGhost).DisplayName; name != "News" {
		t.Errorf("the channel's ghost is named %q, want the channel's title", name)
	}
	portal := gs.portal(t, ch.ID)
	pl := mx.PowerLevels(portal.MXID)
	if pl == nil {
		t.Fatal("no power levels")
	}
	aliceLevel := pl.GetUserLevel(testUser)
	if pl.GetEventLevel(event.EventMessage) <= aliceLevel {
		t.Errorf("alice (level %d) may post: messages need %d", aliceLevel, pl.GetEventLevel(event.EventMessage))
	}
	if lvl := pl.GetUserLevel(staffCarol); lvl < pl.GetEventLevel(event.EventMessage) {
		t.Errorf("carol, an admin, has level %d below the %d posting needs", lvl, pl.GetEventLevel(event.EventMessage))
	}
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$a1", Sender: testUser,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "alice tries"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, st := range mx.StatusesOf("$a1") {
			if strings.Contains(st.Error(), "only the admins of this Telegram channel") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("statuses %+v", mx.StatusesOf("$a1"))
	}
	// carol, an admin, posts; her post is signed with her name.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$c1", Sender: staffCarol,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "carol posts"}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, m := range s.ChannelMessages(ch.ID) {
			if m.Text == "carol posts" {
				return m.PostAuthor == "Carol"
			}
		}
		return false
	}) {
		t.Errorf("carol's post never reached the channel signed: statuses %+v", mx.StatusesOf("$c1"))
	}
	for _, m := range s.ChannelMessages(ch.ID) {
		if m.Text == "alice tries" {
			t.Error("alice's refused post reached the channel")
		}
	}
}

// TestChannelGapRecovery: while the gateway is down a supergroup gets 100
// messages; once it is back they are all bridged, once each and in order:
// from updates.getChannelDifference from the stored channel pts, in pages,
// or, when Telegram says the channel's gap is too long
// (channelDifferenceTooLong), from the channel's history after the
// portal's last message.
func TestChannelGapRecovery(t *testing.T) {
	for _, tooLong := range []bool{false, true} {
		name := "difference"
		if tooLong {
			name = "too long"
		}
		t.Run(name, func(t *testing.T) { testChannelGapRecovery(t, tooLong) })
	}
}

func testChannelGapRecovery(t *testing.T, tooLong bool) {
	gs := newGroupSetup(t)
	s := gs.s
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Busy", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.ChannelPost(ch.ID, gs.bob.ID, "before the gap", "")
	if _, ok := gs.tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "before the gap" }); !ok {
		t.Fatal("the first message never reached Matrix")
	}
	gs.waitHandled(t, ch.ID, before.Pts)
	gs.tb.stop()
	if tooLong {
		s.SetChannelTooLong(10)
	}
	const n = 100
	var last tgsim.ChannelMessage
	for i := range n {
		if last, err = s.ChannelPost(ch.ID, gs.bob.ID, fmt.Sprintf("gap %03d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	gs.tb = startBridgeOn(t, s, gs.db.Open(t), gs.tb.mx, nil, nil)
	mx := gs.tb.mx
	gs.waitHandled(t, ch.ID, last.Pts)
	if !mx.Eventually(20*time.Second, func() bool {
		return len(mx.MessagesWhere(func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "gap ") })) >= n
	}) {
		t.Fatalf("only %d of the %d messages sent while down arrived", len(mx.MessagesWhere(func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "gap ") })), n)
	}
	var got []string
	for _, m := range mx.MessagesWhere(func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "gap ") }) {
		got = append(got, m.Content.Body)
	}
	if len(got) != n {
		t.Fatalf("%d messages bridged, want %d (each once): %q", len(got), n, got)
	}
	for i, body := range got {
		if want := fmt.Sprintf("gap %03d", i); body != want {
			t.Fatalf("message %d is %q, want %q: not in order", i, body, want)
		}
	}
}

// TestSupergroupConversation: edits and reactions made on Telegram show
// once in the shared portal although both logins receive them; a staff
// member's reply, edit and reaction from Matrix reach the group.
func TestSupergroupConversation(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Talk", Creator: gs.bob.ID, Members: []int64{gs.alice.ID, gs.carol.ID}})
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := s.ChannelPost(ch.ID, gs.bob.ID, "original", "")
	origMX, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "original" })
	if !ok {
		t.Fatal("the message never reached Matrix")
	}
	portal := gs.portal(t, ch.ID)

	// Telegram → Matrix: an edit and a reaction, each once.
	if err := s.EditChannelMessage(ch.ID, gs.bob.ID, orig.ID, "original, edited"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReactInChannel(ch.ID, gs.bob.ID, orig.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	sentinel, _ := s.ChannelPost(ch.ID, gs.bob.ID, "sentinel", "")
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "sentinel" }); !ok {
		t.Fatal("sentinel never reached Matrix")
	}
	gs.waitHandled(t, ch.ID, sentinel.Pts)
	if !mx.Eventually(20*time.Second, func() bool { _, ok := reactionsOf(mx, origMX.EventID)["👍"]; return ok }) {
		t.Error("the reaction never reached Matrix")
	}
	if n := len(mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == origMX.EventID })); n != 1 {
		t.Errorf("the edit was bridged %d times, want once", n)
	}
	n := 0
	for _, r := range mx.Reactions() {
		if r.Target == origMX.EventID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the reaction was bridged %d times, want once", n)
	}

	// Matrix → Telegram: alice replies, edits her reply, reacts.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$r1", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "alice replies", RelatesTo: (&event.RelatesTo{}).SetReplyTo(origMX.EventID)}}})
	find := func(text string) (tgsim.ChannelMessage, bool) {
		for _, m := range s.ChannelMessages(ch.ID) {
			if m.Text == text {
				return m, true
			}
		}
		return tgsim.ChannelMessage{}, false
	}
	if !mx.Eventually(20*time.Second, func() bool { _, ok := find("alice replies"); return ok }) {
		t.Fatalf("the reply never reached Telegram: %+v", mx.StatusesOf("$r1"))
	}
	reply, _ := find("alice replies")
	if reply.From != gs.alice.ID || reply.ReplyToID != orig.ID {
		t.Errorf("reply sent by %d answers %d, want alice (%d) answering %d", reply.From, reply.ReplyToID, gs.alice.ID, orig.ID)
	}
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$e1", Sender: testUser, Content: event.Content{Parsed: &event.MessageEventContent{
		MsgType: event.MsgText, Body: "* alice replies, edited",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "alice replies, edited"},
		RelatesTo:  (&event.RelatesTo{}).SetReplace("$r1")}}})
	if !mx.Eventually(20*time.Second, func() bool { m, ok := find("alice replies, edited"); return ok && !m.Edited.IsZero() }) {
		t.Errorf("the edit never reached Telegram: %+v", mx.StatusesOf("$e1"))
	}
	gs.inject(portal, &event.Event{Type: event.EventReaction, ID: "$x1", Sender: testUser, Content: event.Content{Parsed: &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: origMX.EventID, Key: "❤️"}}}})
	if !mx.Eventually(20*time.Second, func() bool {
		m, _ := find("original, edited")
		for _, r := range m.Reactions {
			if r.User == gs.alice.ID && r.Emoji == "❤" || r.User == gs.alice.ID && r.Emoji == "❤️" {
				return true
			}
		}
		return false
	}) {
		t.Errorf("the reaction never reached Telegram: %+v", mx.StatusesOf("$x1"))
	}

	// A read receipt marks the group read up to that message.
	lastBefore, _ := s.ChannelPost(ch.ID, gs.bob.ID, "read me", "")
	readMe, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "read me" })
	if !ok {
		t.Fatal("never bridged")
	}
	gs.inject(portal, &event.Event{Type: event.EphemeralEventReceipt, Mautrix: event.MautrixInfo{EventSource: event.SourceEphemeral}, Content: event.Content{Parsed: &event.ReceiptEventContent{
		readMe.EventID: {event.ReceiptTypeRead: {testUser: {Timestamp: time.Now()}}}}}})
	if !mx.Eventually(20*time.Second, func() bool { return s.ChannelReadInbox(ch.ID, gs.alice.ID) == lastBefore.ID }) {
		t.Errorf("alice's read receipt: read up to %d on Telegram, want %d", s.ChannelReadInbox(ch.ID, gs.alice.ID), lastBefore.ID)
	}

	// Typing both ways.
	if err := s.SetChannelTyping(ch.ID, gs.bob.ID); err != nil {
		t.Fatal(err)
	}
	bobMXID := mx.FormatGhostMXID(tgid.MakeUserID(gs.bob.ID))
	if !mx.Eventually(20*time.Second, func() bool {
		for _, ty := range mx.Typings() {
			if ty.RoomID == portal.MXID && ty.User == bobMXID && ty.Timeout > 0 {
				return true
			}
		}
		return false
	}) {
		t.Errorf("bob's typing never reached the portal: %+v", mx.Typings())
	}
	gs.inject(portal, &event.Event{Type: event.EphemeralEventTyping, Mautrix: event.MautrixInfo{EventSource: event.SourceEphemeral},
		Content: event.Content{Parsed: &event.TypingEventContent{UserIDs: []id.UserID{testUser}}}})
	if !mx.Eventually(20*time.Second, func() bool {
		for _, ty := range s.TypingSeen(gs.bob.ID) {
			if ty.From == gs.alice.ID && ty.Channel == ch.ID {
				return true
			}
		}
		return false
	}) {
		t.Errorf("alice's typing never reached the group: %+v", s.TypingSeen(gs.bob.ID))
	}

	// Deletions: bob deletes on Telegram (redacted once in Matrix); alice
	// deletes her reply from Matrix (deleted in the group, nothing else).
	sentinelMX, _ := mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "sentinel" })
	if _, err := s.SendMessage(gs.bob.ID, gs.alice.ID, "a DM that must survive", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChannelMessages(ch.ID, gs.bob.ID, sentinel.ID); err != nil {
		t.Fatal(err)
	}
	redactionsOf := func(target id.EventID) int {
		n := 0
		for _, r := range mx.Redactions() {
			if r.Redacts == target {
				n++
			}
		}
		return n
	}
	if !mx.Eventually(20*time.Second, func() bool { return redactionsOf(sentinelMX.EventID) > 0 }) {
		t.Error("the Telegram deletion never reached Matrix")
	}
	gs.inject(portal, &event.Event{Type: event.EventRedaction, ID: "$rd1", Sender: testUser, Redacts: "$r1",
		Content: event.Content{Parsed: &event.RedactionEventContent{Redacts: "$r1"}}})
	if !mx.Eventually(20*time.Second, func() bool { m, ok := find("alice replies, edited"); return ok && m.Deleted }) {
		t.Errorf("the Matrix deletion never reached the group: %+v", mx.StatusesOf("$rd1"))
	}
	last, _ := s.ChannelPost(ch.ID, gs.bob.ID, "last", "")
	gs.waitHandled(t, ch.ID, last.Pts)
	if n := redactionsOf(sentinelMX.EventID); n != 1 {
		t.Errorf("the Telegram deletion was bridged %d times, want once", n)
	}
	for _, m := range s.History(gs.alice.ID, gs.bob.ID) {
		if m.Deleted {
			t.Errorf("alice's private message %d was deleted by a group deletion", m.ID)
		}
	}
}

// TestSupergroupLazyMembersAndTopic: a big group's member list is synced up
// to member_sync_limit; a member past it who writes joins as they write.
// The description goes both ways.
func TestSupergroupLazyMembersAndTopic(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	var members []int64
	var lastMember *tgsim.Account
	for i := range 40 {
		lastMember = mustAccount(t, s, tgsim.AccountSpec{Phone: fmt.Sprintf("1555100%02d", i), FirstName: fmt.Sprintf("Member%02d", i)})
		members = append(members, lastMember.ID)
	}
	tb := startBridgeWith(t, s, dbtest.SQLite(t).Open(t), func(conn *TelegramConnector, _ *fakematrix.Matrix) {
		conn.Config.MemberSyncLimit = 10
	})
	loginAs(t, tb, s, testUser, alice)
	waitConnected(t, tb)
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Big", About: "first about", Creator: bob.ID, Admins: []int64{alice.ID}, Members: members})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, bob.ID, "welcome", ""); err != nil {
		t.Fatal(err)
	}
	mx := tb.mx
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "welcome" }); !ok {
		t.Fatal("never bridged")
	}
	gs := &groupSetup{tb: tb}
	portal := gs.portal(t, ch.ID)
	ghosts := func() int {
		n := 0
		for userID, m := range mx.Members(portal.MXID) {
			if _, ok := mx.ParseGhostMXID(userID); ok && m == event.MembershipJoin {
				n++
			}
		}
		return n
	}
	// The first 10 members (the page), and bob who wrote (he is among them).
	if n := ghosts(); n > 11 || n < 2 {
		t.Errorf("%d ghosts joined for a 42-member group with member_sync_limit 10", n)
	}
	lastMX := mx.FormatGhostMXID(tgid.MakeUserID(lastMember.ID))
	if m := mx.Members(portal.MXID)[lastMX]; m == event.MembershipJoin {
		t.Errorf("the last member is joined before writing")
	}
	if _, err := s.ChannelPost(ch.ID, lastMember.ID, "late member speaks", ""); err != nil {
		t.Fatal(err)
	}
	m, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "late member speaks" })
	if !ok {
		t.Fatal("never bridged")
	}
	// Their ghost sends it (on a homeserver, the appservice intent joins
	// it first; the fake Matrix side does not record that join).
	if m.Sender != lastMX {
		t.Errorf("the late member's message is sent by %s, want their ghost %s", m.Sender, lastMX)
	}
	if portal.Topic != "first about" {
		t.Errorf("topic %q", portal.Topic)
	}
	// Telegram → Matrix description.
	if err := s.SetChannelAbout(ch.ID, "new about"); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		c := mx.State(portal.MXID, event.StateTopic, "")
		return c != nil && c.AsTopic().Topic == "new about"
	}) {
		t.Error("the description never reached the room topic")
	}
	// Matrix → Telegram description, by alice (an admin).
	gs.inject(portal, &event.Event{Type: event.StateTopic, ID: "$topic1", Sender: testUser, StateKey: ptr.Ptr(""),
		Content: event.Content{Parsed: &event.TopicEventContent{Topic: "about from Matrix"}}})
	if !mx.Eventually(20*time.Second, func() bool { info, _ := s.ChannelInfo(ch.ID); return info.About == "about from Matrix" }) {
		t.Errorf("the Matrix topic never reached Telegram: %+v", mx.StatusesOf("$topic1"))
	}

	// Alice (an admin) removes a synced member from Matrix, then invites
	// them back.
	target := members[0]
	targetMX := mx.FormatGhostMXID(tgid.MakeUserID(target))
	if m := mx.Members(portal.MXID)[targetMX]; m != event.MembershipJoin {
		t.Fatalf("the first member is %q in the portal", m)
	}
	isMember := func() bool {
		info, _ := s.ChannelInfo(ch.ID)
		for _, m := range info.Members {
			if m == target {
				return true
			}
		}
		return false
	}
	// (A homeserver gives the previous membership in unsigned.prev_content.)
	gs.inject(portal, &event.Event{Type: event.StateMember, ID: "$kick1", Sender: testUser, StateKey: ptr.Ptr(targetMX.String()),
		Content:  event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipLeave}},
		Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"membership":"join"}`)}}})
	if !mx.Eventually(20*time.Second, func() bool { return !isMember() }) {
		t.Fatalf("the kick from Matrix never reached Telegram: %s", statusText(mx.StatusesOf("$kick1")))
	}
	gs.inject(portal, &event.Event{Type: event.StateMember, ID: "$inv1", Sender: testUser, StateKey: ptr.Ptr(targetMX.String()),
		Content:  event.Content{Parsed: &event.MemberEventContent{Membership: event.MembershipInvite}},
		Unsigned: event.Unsigned{PrevContent: &event.Content{VeryRaw: []byte(`{"membership":"leave"}`)}}})
	if !mx.Eventually(20*time.Second, isMember) {
		t.Errorf("the invite from Matrix never reached Telegram: %s", statusText(mx.StatusesOf("$inv1")))
	}
}

// TestBotLogin: the organisation's bot logs in with its token (a wrong
// token is refused first); it bridges a supergroup it is in and posts in
// it from Matrix as the bot.
func TestBotLogin(t *testing.T) {
	s := newSim(t)
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	bot, token, err := s.CreateBot(tgsim.BotSpec{FirstName: "Acme support", Username: "acme_support_bot"})
	if err != nil {
		t.Fatal(err)
	}
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ctx := context.Background()
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDBot)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	step, err := lp.Start(ctx)
	expectStep(t, step, err, StepIDBotToken)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"token": strings.Split(token, ":")[0] + ":wrong"})
	step = expectStep(t, step, err, StepIDBotToken)
	if !strings.Contains(step.Instructions, "does not accept this token") {
		t.Errorf("wrong-token instructions: %q", step.Instructions)
	}
	step, err = lp.SubmitUserInput(ctx, map[string]string{"token": token})
	step = expectStep(t, step, err, StepIDComplete)
	if ul := step.CompleteParams.UserLogin; ul.ID != tgid.MakeUserLoginID(bot.ID) || ul.RemoteName != "Acme support" {
		t.Fatalf("bot login %q named %q", ul.ID, ul.RemoteName)
	}
	waitConnected(t, tb)
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Help", Creator: bob.ID, Members: []int64{bot.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, bob.ID, "anyone there?", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "anyone there?" }); !ok {
		t.Fatal("the group's message never reached Matrix through the bot")
	}
	gs := &groupSetup{tb: tb}
	portal := gs.portal(t, ch.ID)
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$b1", Sender: testUser,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "the bot answers"}}})
	if !tb.mx.Eventually(20*time.Second, func() bool {
		for _, m := range s.ChannelMessages(ch.ID) {
			if m.Text == "the bot answers" {
				return m.From == bot.ID
			}
		}
		return false
	}) {
		t.Errorf("the bot's answer never reached the group: %+v", tb.mx.StatusesOf("$b1"))
	}
}

// TestBotRelay: with relay mode on, the organisation's bot is the relay of
// the groups it bridges: a staff member without a Telegram login writes
// through it, named in front of the message; without relay mode the same
// message is refused clearly (TestSupergroupSenderNotInGroup).
func TestBotRelay(t *testing.T) {
	s := newSim(t)
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	bot, token, err := s.CreateBot(tgsim.BotSpec{FirstName: "Acme support", Username: "acme_support_bot"})
	if err != nil {
		t.Fatal(err)
	}
	// The relay configuration as an operator writes it (the templates are
	// compiled when it is read).
	var relay bridgeconfig.RelayConfig
	if err := yaml.Unmarshal([]byte(`
enabled: true
message_formats:
    m.text: "<b>{{ .Sender.DisambiguatedName }}</b>: {{ .Message }}"
displayname_format: "{{ .DisambiguatedName }}"
`), &relay); err != nil {
		t.Fatal(err)
	}
	tb := startBridgeOn(t, s, dbtest.SQLite(t).Open(t), fakematrix.New(), nil, func(cfg *bridgeconfig.BridgeConfig) {
		cfg.Relay = relay
	})
	ctx := context.Background()
	proc, err := tb.conn.CreateLogin(ctx, tb.user(t), FlowIDBot)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	step, err := lp.Start(ctx)
	expectStep(t, step, err, StepIDBotToken)
	step, err = lp.SubmitUserInput(ctx, map[string]string{"token": token})
	expectStep(t, step, err, StepIDComplete)
	waitConnected(t, tb)
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Help", Creator: bob.ID, Members: []int64{bot.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, bob.ID, "anyone there?", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "anyone there?" }); !ok {
		t.Fatal("never bridged")
	}
	gs := &groupSetup{tb: tb}
	portal := gs.portal(t, ch.ID)
	if !tb.mx.Eventually(20*time.Second, func() bool {
		p, _ := tb.br.GetExistingPortalByKey(ctx, portal.PortalKey)
		return p != nil && p.Relay != nil && p.Relay.ID == tgid.MakeUserLoginID(bot.ID)
	}) {
		t.Fatal("the bot never became the portal's relay")
	}
	// Carol has no Telegram login at all.
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$relay1", Sender: staffCarol,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "relayed hello"}}})
	var sent tgsim.ChannelMessage
	if !tb.mx.Eventually(20*time.Second, func() bool {
		for _, m := range s.ChannelMessages(ch.ID) {
			if strings.Contains(m.Text, "relayed hello") {
				sent = m
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the relayed message never reached the group: %+v", tb.mx.StatusesOf("$relay1"))
	}
	if sent.From != bot.ID || !strings.Contains(sent.Text, "carol") {
		t.Errorf("relayed message %q from %d, want from the bot (%d) naming carol", sent.Text, sent.From, bot.ID)
	}
}

// statusText prints message statuses (their Error method panics without an
// internal error).
func statusText(list []*bridgev2.MessageStatus) string {
	var out []string
	for _, st := range list {
		out = append(out, fmt.Sprintf("%s/%s: %s", st.Status, st.ErrorReason, st.Message))
	}
	return strings.Join(out, "; ")
}

// TestSupergroupAnnounceOnlyAndOpenInfo: a supergroup's default rights show
// in the portal's power levels: when the owner mutes the members (an
// announce-only group) a member's level no longer lets them post, and a
// staff member who is not an admin is refused by Telegram; when members may
// change the group's info, the name needs no admin level.
func TestSupergroupAnnounceOnlyAndOpenInfo(t *testing.T) {
	gs := newGroupSetup(t)
	s, mx := gs.s, gs.tb.mx
	ch, err := s.CreateChannel(tgsim.ChannelSpec{Title: "Quay notices", Creator: gs.bob.ID, Members: []int64{gs.alice.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChannelPost(ch.ID, gs.bob.ID, "welcome", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "welcome" }); !ok {
		t.Fatal("the supergroup's message never reached Matrix")
	}
	portal := gs.portal(t, ch.ID)
	pl := mx.PowerLevels(portal.MXID)
	if pl == nil {
		t.Fatal("no power levels")
	}
	alice := pl.GetUserLevel(testUser)
	if pl.GetEventLevel(event.EventMessage) > alice || pl.GetEventLevel(event.StateRoomName) <= alice {
		t.Errorf("a plain supergroup: alice %d, messages need %d, the name %d", alice, pl.GetEventLevel(event.EventMessage), pl.GetEventLevel(event.StateRoomName))
	}

	if err := s.SetSupergroupDefaultRights(ch.ID, true, true); err != nil {
		t.Fatal(err)
	}
	if !mx.Eventually(20*time.Second, func() bool {
		pl := mx.PowerLevels(portal.MXID)
		return pl != nil && pl.GetEventLevel(event.EventMessage) > pl.GetUserLevel(testUser) &&
			pl.GetEventLevel(event.StateRoomName) <= pl.GetUserLevel(testUser)
	}) {
		pl := mx.PowerLevels(portal.MXID)
		t.Fatalf("after muting members and opening the info: messages need %d, the name %d, alice has %d",
			pl.GetEventLevel(event.EventMessage), pl.GetEventLevel(event.StateRoomName), pl.GetUserLevel(testUser))
	}
	gs.inject(portal, &event.Event{Type: event.EventMessage, ID: "$muted1", Sender: testUser,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "may I?"}}})
	if !mx.Eventually(20*time.Second, func() bool { return len(mx.StatusesOf("$muted1")) > 0 }) {
		t.Fatal("no status for a message in an announce-only group")
	}
	if st := mx.StatusesOf("$muted1")[0]; st.Status == event.MessageStatusSuccess {
		t.Errorf("a muted member's message was sent: %+v", st)
	}
	for _, m := range s.ChannelMessages(ch.ID) {
		if m.Text == "may I?" {
			t.Error("a muted member's message reached the supergroup")
		}
	}
}
