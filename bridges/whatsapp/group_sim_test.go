package whatsapp

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

const (
	bobUser   id.UserID = "@bob:test"
	daveUser  id.UserID = "@dave:test"
	aliceGhst id.UserID = "@gw_whatsapp.15550001111:test"
)

// loginQRAs links phone's account for the Matrix user mxid by QR.
func loginQRAs(t testing.TB, tb *testBridge, srv *wasim.Server, mxid id.UserID, phone string) *bridgev2.UserLogin {
	t.Helper()
	ctx := ctxFor(t)
	user, err := tb.br.GetUserByMXID(ctx, mxid)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := tb.conn.CreateLogin(ctx, user, FlowIDQR)
	if err != nil {
		t.Fatal(err)
	}
	lp := proc.(*loginProcess)
	step, err := lp.Start(ctx)
	if err != nil {
		t.Fatalf("Start = %+v, %v", step, err)
	}
	if err = srv.ScanQR(ctx, phone, step.DisplayAndWaitParams.Data); err != nil {
		t.Fatalf("ScanQR: %v", err)
	}
	for step.Type != bridgev2.LoginStepTypeComplete {
		if step, err = lp.Wait(ctx); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	ul := step.CompleteParams.UserLogin
	if !tb.mx.Eventually(waitLong, func() bool { return ul.Client.IsLoggedIn() && srv.Connected(phone) }) {
		t.Fatalf("login of %s never connected", phone)
	}
	return ul
}

var groupInjected atomic.Int64

// injectAs hands a Matrix text message from sender in roomID to the bridge.
func injectAs(ctx context.Context, tb *testBridge, sender id.UserID, roomID id.RoomID, text string) id.EventID {
	evtID := id.EventID(fmt.Sprintf("$group%d", groupInjected.Add(1)))
	tb.mx.Inject(ctx, &event.Event{Type: event.EventMessage, RoomID: roomID, Sender: sender, ID: evtID,
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: text}}})
	return evtID
}

// groupRooms are the Matrix rooms of the group's portals (every receiver).
func groupRooms(ctx context.Context, t testing.TB, tb *testBridge, portalID networkid.PortalID) []id.RoomID {
	t.Helper()
	portals, err := tb.br.DB.Portal.GetAllWithMXID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []id.RoomID
	for _, p := range portals {
		if p.ID == portalID {
			out = append(out, p.MXID)
		}
	}
	return out
}

func isIn(m event.Membership) bool { return m == event.MembershipJoin || m == event.MembershipInvite }

// Two staff members whose WhatsApp accounts are in the same group share one
// portal: both are invited, each message of the group is bridged once
// though both logins receive it, each sends through their own account, a
// Matrix user without an account in the group is told, and a staff member
// who leaves the group on WhatsApp leaves the portal.
func TestGroupSharedByTwoStaff(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	aliceLogin := loginQRAs(t, tb, srv, testUser, alicePh)
	bobLogin := loginQRAs(t, tb, srv, bobUser, bobPh)

	gid, err := srv.CreateGroup(ctx, carolPh, "Shared", "", []string{alicePh, bobPh})
	if err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	var roomID id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		rooms := groupRooms(ctx, t, tb, portalID)
		if len(rooms) != 1 {
			return false
		}
		roomID = rooms[0]
		members := tb.mx.Members(roomID)
		return isIn(members[testUser]) && isIn(members[bobUser]) && members[carolGhst] == event.MembershipJoin
	}) {
		t.Fatalf("want one portal with both staff members invited: rooms %v, members %v", groupRooms(ctx, t, tb, portalID), tb.mx.Members(roomID))
	}
	portal, err := tb.br.GetExistingPortalByKey(ctx, networkid.PortalKey{ID: portalID})
	if err != nil || portal == nil || portal.MXID != roomID || portal.Receiver != "" {
		t.Fatalf("shared portal %+v, %v", portal, err)
	}
	for _, ul := range []*bridgev2.UserLogin{aliceLogin, bobLogin} {
		if up, err := tb.br.DB.UserPortal.Get(ctx, ul.UserLogin, portal.PortalKey); err != nil || up == nil {
			t.Fatalf("login %s not marked in the shared portal: %v", ul.ID, err)
		}
	}

	// Carol writes: both logins receive it, it is bridged once.
	if _, err = srv.SendGroupText(ctx, carolPh, gid, "hello team", nil); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Carol's message", func(m fakematrix.Message) bool { return m.Content.Body == "hello team" })
	if !tb.mx.Eventually(waitLong, func() bool { return tb.conn.seen.dropped.Load() == 1 }) {
		t.Fatalf("the second login's copy of Carol's message was not recognised (%d)", tb.conn.seen.dropped.Load())
	}
	first := tb.mx.MessagesWithBody("hello team")
	if len(first) != 1 || first[0].RoomID != roomID || first[0].Sender != carolGhst {
		t.Fatalf("Carol's message bridged %d times: %+v", len(first), first)
	}
	helloID := first[0].EventID

	// Her edit and her reaction reach both logins too: each is bridged once.
	waHello, _ := waid.ParseMessageID(mustMessage(ctx, t, tb, helloID).ID)
	if _, err = srv.SendEdit(ctx, carolPh, gid, waHello.ID, "hello team!"); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendReaction(ctx, carolPh, gid, carolPh, waHello.ID, "🎉"); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return tb.conn.seen.dropped.Load() == 3 }) {
		t.Fatalf("the second login's copies of the edit and reaction were not recognised (%d)", tb.conn.seen.dropped.Load())
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		return len(tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == helloID })) == 1 && countReactions(tb, helloID) == 1
	}) {
		t.Fatalf("edit bridged %d times, reaction %d times", len(tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == helloID })), countReactions(tb, helloID))
	}

	// Each staff member sends as themselves, through their own account;
	// the other login's copy is not bridged back.
	for _, tc := range []struct {
		user  id.UserID
		phone string
		text  string
	}{{testUser, alicePh, "from alice"}, {bobUser, bobPh, "from bob"}} {
		evtID := injectAs(ctx, tb, tc.user, roomID, tc.text)
		m, err := srv.WaitMessage(ctx, tc.phone, gid, func(m wasim.Message) bool { return m.Text() == tc.text })
		if err != nil || !m.Group {
			t.Fatalf("%s's message never reached the group from %s: %v (statuses %+v)", tc.user, tc.phone, err, tb.mx.StatusesOf(evtID))
		}
		if !tb.mx.Eventually(waitLong, func() bool {
			msg, err := tb.br.DB.Message.GetPartByMXID(ctx, evtID)
			return err == nil && msg != nil
		}) {
			t.Fatalf("%s's message never mapped", tc.text)
		}
	}
	if !tb.mx.Eventually(waitLong, func() bool { return tb.conn.seen.dropped.Load() == 5 }) {
		t.Fatalf("the other login's copies of the staff messages were not recognised (%d)", tb.conn.seen.dropped.Load())
	}
	for _, text := range []string{"from alice", "from bob"} {
		if got := tb.mx.MessagesWithBody(text); len(got) != 0 {
			t.Errorf("a staff message came back into the portal: %+v", got)
		}
	}

	// A Matrix user without a WhatsApp account in the group is told.
	evtID := injectAs(ctx, tb, daveUser, roomID, "from dave")
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status != event.MessageStatusSuccess && st.SendNotice {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no failed status with notice for a user without a login: %+v", tb.mx.StatusesOf(evtID))
	}

	// Bob leaves the group on WhatsApp: he leaves the portal, and what he
	// sends from Matrix afterwards is refused with a reason.
	if err = srv.RemoveFromGroup(ctx, bobPh, gid, []string{bobPh}); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		members := tb.mx.Members(roomID)
		return !isIn(members[bobUser]) && !isIn(members[bobGhost]) && isIn(members[testUser])
	}) {
		t.Fatalf("Bob is still in the portal after leaving the group: %v", tb.mx.Members(roomID))
	}
	evtID = injectAs(ctx, tb, bobUser, roomID, "after leaving")
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status == event.MessageStatusFail && st.SendNotice && strings.Contains(st.Error(), "not in this group") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("Bob's message after leaving: statuses %+v", tb.mx.StatusesOf(evtID))
	}
	for _, m := range srv.Messages() {
		if m.Text() == "after leaving" {
			t.Fatalf("a message from a staff member who left reached the group")
		}
	}
}

// A rename on WhatsApp shows in Matrix; a rename and a topic from Matrix
// show on WhatsApp, made through the staff member's own account.
func TestGroupRenameBothWays(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)
	gid, err := srv.CreateGroup(ctx, carolPh, "Before", "", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	roomName := func(roomID id.RoomID) string {
		if c := tb.mx.State(roomID, event.StateRoomName, ""); c != nil {
			if n, ok := c.Parsed.(*event.RoomNameEventContent); ok {
				return n.Name
			}
		}
		return ""
	}
	var roomID id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		rooms := groupRooms(ctx, t, tb, portalID)
		if len(rooms) == 1 {
			roomID = rooms[0]
		}
		return roomID != "" && roomName(roomID) == "Before"
	}) {
		t.Fatalf("no portal named after the group")
	}

	if err = srv.SetGroupSubject(ctx, carolPh, gid, "Renamed on WhatsApp"); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return roomName(roomID) == "Renamed on WhatsApp" }) {
		t.Fatalf("room name %q after the WhatsApp rename", roomName(roomID))
	}
	if err = srv.SetGroupDescription(ctx, carolPh, gid, "Described on WhatsApp"); err != nil {
		t.Fatal(err)
	}
	roomTopic := func() string {
		if c := tb.mx.State(roomID, event.StateTopic, ""); c != nil {
			if tc, ok := c.Parsed.(*event.TopicEventContent); ok {
				return tc.Topic
			}
		}
		return ""
	}
	if !tb.mx.Eventually(waitLong, func() bool { return roomTopic() == "Described on WhatsApp" }) {
		t.Fatalf("room topic %q after the WhatsApp change", roomTopic())
	}

	empty := ""
	tb.mx.Inject(ctx, &event.Event{Type: event.StateRoomName, StateKey: &empty, RoomID: roomID, Sender: testUser, ID: "$rename1",
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Renamed in Matrix"}}})
	tb.mx.Inject(ctx, &event.Event{Type: event.StateTopic, StateKey: &empty, RoomID: roomID, Sender: testUser, ID: "$topic1",
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.TopicEventContent{Topic: "Agenda"}}})
	if !tb.mx.Eventually(waitLong, func() bool {
		g, ok := srv.GroupInfo(gid)
		return ok && g.Name == "Renamed in Matrix" && g.Topic == "Agenda"
	}) {
		g, _ := srv.GroupInfo(gid)
		t.Fatalf("group on WhatsApp: name %q topic %q (statuses %+v %+v)", g.Name, g.Topic, tb.mx.StatusesOf("$rename1"), tb.mx.StatusesOf("$topic1"))
	}
	portal, err := tb.br.GetExistingPortalByKey(ctx, networkid.PortalKey{ID: portalID})
	if err != nil || portal == nil || portal.Name != "Renamed in Matrix" || portal.Topic != "Agenda" {
		t.Fatalf("portal after the Matrix changes: %+v, %v", portal, err)
	}
}

func mustMessage(ctx context.Context, t testing.TB, tb *testBridge, evtID id.EventID) *database.Message {
	t.Helper()
	msg, err := tb.br.DB.Message.GetPartByMXID(ctx, evtID)
	if err != nil || msg == nil {
		t.Fatalf("no message mapped to %s: %v", evtID, err)
	}
	return msg
}

func countReactions(tb *testBridge, target id.EventID) int {
	n := 0
	for _, r := range tb.mx.Reactions() {
		if r.Target == target {
			n++
		}
	}
	return n
}

// WhatsApp roles and settings become the room's power levels: the owner
// and admins rank below the organisation (75, 50), a promotion or demotion
// follows, an announce-only group needs an admin's level to post and stops
// a staff member who is not an admin, and a locked group keeps its name
// for admins (a staff member's rename is refused and put back).
func TestGroupAdminsAnnounceAndLocked(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)
	gid, err := srv.CreateGroup(ctx, carolPh, "Board", "", []string{alicePh, bobPh})
	if err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	var roomID id.RoomID
	pl := func() *event.PowerLevelsEventContent {
		if roomID == "" {
			return nil
		}
		return tb.mx.PowerLevels(roomID)
	}
	waitPL := func(what string, cond func(p *event.PowerLevelsEventContent) bool) {
		t.Helper()
		if !tb.mx.Eventually(waitLong, func() bool {
			if roomID == "" {
				if rooms := groupRooms(ctx, t, tb, portalID); len(rooms) == 1 {
					roomID = rooms[0]
				}
			}
			p := pl()
			return p != nil && cond(p)
		}) {
			t.Fatalf("power levels never showed %s: %+v", what, pl())
		}
	}
	waitPL("the owner at 75 and members at 0", func(p *event.PowerLevelsEventContent) bool {
		return p.GetUserLevel(carolGhst) == ownerPowerLevel && p.GetUserLevel(bobGhost) == 0 && p.GetUserLevel(testUser) < adminPowerLevel &&
			p.EventsDefault == 0 && p.GetUserLevel(fakematrix.BotMXID) >= 100
	})

	if err = srv.ChangeGroupParticipants(ctx, carolPh, gid, "promote", []string{bobPh}); err != nil {
		t.Fatal(err)
	}
	waitPL("Bob promoted to 50", func(p *event.PowerLevelsEventContent) bool { return p.GetUserLevel(bobGhost) == adminPowerLevel })

	// Announce-only: posting needs an admin's level; Alice (not an admin)
	// cannot, and WhatsApp refuses what she sends all the same.
	if err = srv.SetGroupAnnounce(ctx, carolPh, gid, true); err != nil {
		t.Fatal(err)
	}
	waitPL("announce-only", func(p *event.PowerLevelsEventContent) bool {
		return p.EventsDefault == adminPowerLevel && p.GetUserLevel(testUser) < p.EventsDefault && p.GetUserLevel(bobGhost) >= p.EventsDefault
	})
	evtID := injectAs(ctx, tb, testUser, roomID, "may I?")
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status == event.MessageStatusFail && st.SendNotice && strings.Contains(st.Error(), "only admins") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("a non-admin's message in an announce-only group: statuses %+v", tb.mx.StatusesOf(evtID))
	}
	for _, m := range srv.Messages() {
		if m.Text() == "may I?" {
			t.Fatal("WhatsApp recorded a non-admin's message in an announce-only group")
		}
	}

	// Locked: changing the name needs an admin's level; Alice's rename is
	// refused by WhatsApp and put back in Matrix.
	if err = srv.SetGroupLocked(ctx, carolPh, gid, true); err != nil {
		t.Fatal(err)
	}
	waitPL("locked", func(p *event.PowerLevelsEventContent) bool {
		return p.GetEventLevel(event.StateRoomName) == adminPowerLevel
	})
	empty := ""
	tb.mx.Inject(ctx, &event.Event{Type: event.StateRoomName, StateKey: &empty, RoomID: roomID, Sender: testUser, ID: "$lockedrename",
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.RoomNameEventContent{Name: "Mine now"}}})
	if !tb.mx.Eventually(waitLong, func() bool {
		c := tb.mx.State(roomID, event.StateRoomName, "")
		if c == nil {
			return false
		}
		n, _ := c.Parsed.(*event.RoomNameEventContent)
		_, notice := tb.mx.FindMessage(func(m fakematrix.Message) bool {
			return m.RoomID == roomID && m.Content.MsgType == event.MsgNotice && strings.Contains(m.Content.Body, "undone")
		})
		return n != nil && n.Name == "Board" && notice
	}) {
		t.Fatalf("refused rename not put back: %+v", tb.mx.State(roomID, event.StateRoomName, ""))
	}
	if g, _ := srv.GroupInfo(gid); g.Name != "Board" {
		t.Fatalf("a non-admin renamed a locked group: %q", g.Name)
	}

	if err = srv.ChangeGroupParticipants(ctx, carolPh, gid, "demote", []string{bobPh}); err != nil {
		t.Fatal(err)
	}
	waitPL("Bob demoted to 0", func(p *event.PowerLevelsEventContent) bool { return p.GetUserLevel(bobGhost) == 0 })
}

func injectState(ctx context.Context, tb *testBridge, roomID id.RoomID, typ event.Type, key string, content, prev any) id.EventID {
	evtID := id.EventID(fmt.Sprintf("$groupstate%d", groupInjected.Add(1)))
	evt := &event.Event{Type: typ, StateKey: &key, RoomID: roomID, Sender: testUser, ID: evtID,
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: content}}
	if prev != nil {
		evt.Unsigned.PrevContent = &event.Content{Parsed: prev}
	}
	tb.mx.Inject(ctx, evt)
	return evtID
}

// Members from Matrix, where the staff member has the rights on WhatsApp:
// a kick by a non-admin is refused with a notice; once promoted, the staff
// member kicks and invites a contact and promotes them through the power
// levels; and a group is created from Matrix.
func TestGroupMembersFromMatrixAndCreate(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	ul := loginQRAs(t, tb, srv, testUser, alicePh)
	gid, err := srv.CreateGroup(ctx, carolPh, "Crew", "", []string{alicePh, bobPh})
	if err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	var roomID id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		if rooms := groupRooms(ctx, t, tb, portalID); len(rooms) == 1 {
			roomID = rooms[0]
		}
		return roomID != "" && tb.mx.Members(roomID)[bobGhost] == event.MembershipJoin
	}) {
		t.Fatal("no group portal with Bob in it")
	}
	joined := &event.MemberEventContent{Membership: event.MembershipJoin}
	left := &event.MemberEventContent{Membership: event.MembershipLeave}
	inGroup := func(phone string) bool {
		g, _ := srv.GroupInfo(gid)
		return slices.Contains(g.Members, phone)
	}

	// Alice is not an admin: WhatsApp refuses her kick, which is undone.
	evtID := injectState(ctx, tb, roomID, event.StateMember, string(bobGhost), left, joined)
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status != event.MessageStatusSuccess {
				return tb.mx.Members(roomID)[bobGhost] == event.MembershipJoin
			}
		}
		return false
	}) {
		t.Fatalf("a non-admin's kick: statuses %+v, Bob %s", tb.mx.StatusesOf(evtID), tb.mx.Members(roomID)[bobGhost])
	}
	if !inGroup(bobPh) {
		t.Fatal("a non-admin removed a member")
	}

	if err = srv.ChangeGroupParticipants(ctx, carolPh, gid, "promote", []string{alicePh}); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		p := tb.mx.PowerLevels(roomID)
		return p != nil && p.GetUserLevel(testUser) == adminPowerLevel
	}) {
		t.Fatalf("Alice's promotion not in the power levels: %+v", tb.mx.PowerLevels(roomID))
	}
	injectState(ctx, tb, roomID, event.StateMember, string(bobGhost), left, joined)
	if !tb.mx.Eventually(waitLong, func() bool { return !inGroup(bobPh) }) {
		t.Fatal("Alice's kick did not remove Bob from the group")
	}
	injectState(ctx, tb, roomID, event.StateMember, string(bobGhost), &event.MemberEventContent{Membership: event.MembershipInvite}, left)
	if !tb.mx.Eventually(waitLong, func() bool { return inGroup(bobPh) }) {
		t.Fatal("Alice's invite did not add Bob to the group")
	}
	// WhatsApp has no ban: a ban in Matrix removes the member.
	injectState(ctx, tb, roomID, event.StateMember, string(bobGhost), &event.MemberEventContent{Membership: event.MembershipBan}, joined)
	if !tb.mx.Eventually(waitLong, func() bool { return !inGroup(bobPh) }) {
		t.Fatal("Alice's ban did not remove Bob from the group")
	}
	injectState(ctx, tb, roomID, event.StateMember, string(bobGhost), &event.MemberEventContent{Membership: event.MembershipInvite}, left)
	if !tb.mx.Eventually(waitLong, func() bool { return inGroup(bobPh) }) {
		t.Fatal("Alice's second invite did not add Bob to the group")
	}
	prevPL := tb.mx.PowerLevels(roomID)
	newPL := prevPL.Clone()
	newPL.SetUserLevel(bobGhost, adminPowerLevel)
	injectState(ctx, tb, roomID, event.StatePowerLevels, "", newPL, prevPL)
	if !tb.mx.Eventually(waitLong, func() bool {
		g, _ := srv.GroupInfo(gid)
		return slices.Contains(g.Admins, bobPh)
	}) {
		t.Fatal("raising Bob's level did not promote him on WhatsApp")
	}
	// Raising the level to send makes the group announce-only; lowering
	// Bob's level demotes him.
	prevPL = newPL
	newPL = prevPL.Clone()
	newPL.EventsDefault = adminPowerLevel
	newPL.SetUserLevel(bobGhost, 0)
	injectState(ctx, tb, roomID, event.StatePowerLevels, "", newPL, prevPL)
	if !tb.mx.Eventually(waitLong, func() bool {
		g, _ := srv.GroupInfo(gid)
		return g.Announce && !slices.Contains(g.Admins, bobPh)
	}) {
		g, _ := srv.GroupInfo(gid)
		t.Fatalf("after the Matrix power levels: announce %v, admins %v", g.Announce, g.Admins)
	}
	// Raising the level to change the name locks the group.
	prevPL = newPL
	newPL = prevPL.Clone()
	if newPL.Events == nil {
		newPL.Events = map[string]int{}
	}
	newPL.Events[event.StateRoomName.Type] = adminPowerLevel
	injectState(ctx, tb, roomID, event.StatePowerLevels, "", newPL, prevPL)
	if !tb.mx.Eventually(waitLong, func() bool {
		g, _ := srv.GroupInfo(gid)
		return g.Locked
	}) {
		t.Fatal("raising the level to rename did not lock the group on WhatsApp")
	}

	// create-group: a WhatsApp group with Carol, made by Alice's account.
	api := ul.Client.(bridgev2.GroupCreatingNetworkAPI)
	resp, err := api.CreateGroup(ctx, &bridgev2.GroupCreateParams{
		Name: &event.RoomNameEventContent{Name: "From Matrix"}, Participants: []networkid.UserID{"whatsapp." + carolPh},
	})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if err = resp.Portal.CreateMatrixRoom(ctx, ul, resp.PortalInfo); err != nil {
		t.Fatal(err)
	}
	newGroup, err := waid.ParsePortalID(resp.PortalKey.ID)
	if err != nil || resp.PortalKey.Receiver != "" {
		t.Fatalf("new group portal key %+v, %v", resp.PortalKey, err)
	}
	g, ok := srv.GroupInfo(newGroup.String())
	if !ok || g.Name != "From Matrix" || g.Owner != alicePh || !slices.Contains(g.Members, carolPh) {
		t.Fatalf("group on WhatsApp: %+v", g)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		return resp.Portal.MXID != "" && tb.mx.Members(resp.Portal.MXID)[carolGhst] == event.MembershipJoin
	}) {
		t.Fatalf("the new group's room: %s, members %v", resp.Portal.MXID, tb.mx.Members(resp.Portal.MXID))
	}
}

// Pictures: a contact's profile picture is their ghost's avatar, a group's
// picture (and its change on WhatsApp) the room's avatar, downloaded and
// uploaded to the content repository; the room's avatar set in Matrix
// becomes the group's picture.
func TestGroupAndContactPictures(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)
	carolPic, groupPic, groupPic2, matrixPic := []byte("carol-jpeg"), []byte("group-jpeg-1"), []byte("group-jpeg-2"), pngPicture(t, 1200, 900)
	if err := srv.SetProfilePicture(ctx, carolPh, carolPic); err != nil {
		t.Fatal(err)
	}
	gid, err := srv.CreateGroup(ctx, carolPh, "Pictures", "", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.SetGroupPicture(ctx, carolPh, gid, groupPic); err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	var roomID id.RoomID
	roomAvatar := func() []byte {
		if roomID == "" {
			if rooms := groupRooms(ctx, t, tb, portalID); len(rooms) == 1 {
				roomID = rooms[0]
			}
		}
		c := tb.mx.State(roomID, event.StateRoomAvatar, "")
		if c == nil {
			return nil
		}
		a, _ := c.Parsed.(*event.RoomAvatarEventContent)
		if a == nil {
			return nil
		}
		data, _ := tb.mx.Media(a.URL)
		return data
	}
	if !tb.mx.Eventually(waitLong, func() bool { return string(roomAvatar()) == string(groupPic) }) {
		t.Fatalf("room avatar %q, want the group's picture", roomAvatar())
	}
	if err = srv.SetGroupPicture(ctx, carolPh, gid, groupPic2); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return string(roomAvatar()) == string(groupPic2) }) {
		t.Fatalf("room avatar %q after the WhatsApp change", roomAvatar())
	}

	// Carol's ghost carries her picture once it exists (she writes).
	if _, err = srv.SendGroupText(ctx, carolPh, gid, "look", nil); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Carol's message", func(m fakematrix.Message) bool { return m.Content.Body == "look" })
	if !tb.mx.Eventually(waitLong, func() bool {
		data, _ := tb.mx.Media(tb.mx.Profile(carolGhst).AvatarURL)
		return string(data) == string(carolPic)
	}) {
		t.Fatalf("Carol's ghost avatar %q", tb.mx.Profile(carolGhst).AvatarURL)
	}
	// Her new picture (a picture notification) follows on her ghost.
	carolPic2 := []byte("carol-jpeg-2")
	if err = srv.SetProfilePicture(ctx, carolPh, carolPic2); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		data, _ := tb.mx.Media(tb.mx.Profile(carolGhst).AvatarURL)
		return string(data) == string(carolPic2)
	}) {
		t.Fatalf("Carol's ghost avatar after her change on WhatsApp: %q", tb.mx.Profile(carolGhst).AvatarURL)
	}

	// A PNG room avatar from Matrix becomes a square JPEG on WhatsApp
	// (which takes nothing else), at most 640 pixels a side.
	injectState(ctx, tb, roomID, event.StateRoomAvatar, "", &event.RoomAvatarEventContent{URL: uploadToMatrix(t, tb, matrixPic)}, nil)
	var waPic image.Config
	if !tb.mx.Eventually(waitLong, func() bool {
		data, ok := srv.Picture(gid)
		if !ok {
			return false
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		waPic = cfg
		return err == nil && format == "jpeg" && cfg.Width != 0
	}) {
		data, _ := srv.Picture(gid)
		t.Fatalf("group picture on WhatsApp %q after the Matrix change", data)
	}
	if waPic.Width != 640 || waPic.Height != 640 {
		t.Errorf("group picture %dx%d, want 640x640", waPic.Width, waPic.Height)
	}
	before, _ := srv.Picture(gid)

	// Something that is not an image is refused with a notice, and the
	// room's avatar is put back.
	evtID := injectState(ctx, tb, roomID, event.StateRoomAvatar, "", &event.RoomAvatarEventContent{URL: uploadToMatrix(t, tb, []byte("not a picture"))}, nil)
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status != event.MessageStatusSuccess && st.SendNotice {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("a non-image avatar: statuses %+v", tb.mx.StatusesOf(evtID))
	}
	if after, _ := srv.Picture(gid); !bytes.Equal(after, before) {
		t.Error("a non-image avatar changed the group picture")
	}
	if !tb.mx.Eventually(waitLong, func() bool { return string(roomAvatar()) != "not a picture" }) {
		t.Error("the refused avatar was not reverted in the room")
	}
}

// pngPicture is a w×h PNG of one colour.
func pngPicture(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{C: color.NRGBA{R: 200, G: 30, B: 30, A: 255}}, image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The wa-join bot command joins a group from its invite link with the
// staff member's account; the group's portal follows. A bad link is
// refused with a reason.
func TestJoinGroupFromInviteLink(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)
	gid, err := srv.CreateGroup(ctx, carolPh, "Open house", "", []string{bobPh})
	if err != nil {
		t.Fatal(err)
	}
	link, err := srv.GroupInviteLink(gid)
	if err != nil {
		t.Fatal(err)
	}
	const mgmt id.RoomID = "!management:test"
	command := func(text string) {
		tb.br.Commands.Handle(ctx, mgmt, id.EventID(fmt.Sprintf("$cmd%d", groupInjected.Add(1))), tb.user(t), text, "")
	}
	command(JoinCommand + " https://chat.whatsapp.com/nosuchcode")
	tb.waitMsg(t, "the refusal", func(m fakematrix.Message) bool {
		return m.RoomID == mgmt && strings.Contains(m.Content.Body, "Could not join") && strings.Contains(m.Content.Body, "not valid")
	})
	command(JoinCommand + " " + link)
	tb.waitMsg(t, "the confirmation", func(m fakematrix.Message) bool {
		return m.RoomID == mgmt && strings.Contains(m.Content.Body, `Joined the WhatsApp group "Open house"`)
	})
	if g, _ := srv.GroupInfo(gid); !slices.Contains(g.Members, alicePh) {
		t.Fatalf("Alice is not in the group: %v", g.Members)
	}
	portalID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	if !tb.mx.Eventually(waitLong, func() bool {
		rooms := groupRooms(ctx, t, tb, portalID)
		return len(rooms) == 1 && isIn(tb.mx.Members(rooms[0])[testUser]) && tb.mx.Members(rooms[0])[carolGhst] == event.MembershipJoin
	}) {
		t.Fatal("no portal for the group joined from its link")
	}
}

// Status updates are ignored unless the config's status_broadcasts is on;
// on, they arrive in a read-only room per staff member, where what the
// staff member writes is refused.
func TestStatusBroadcasts(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("status_broadcasts=%v", on), func(t *testing.T) {
			srv := startSim(t)
			tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), &manualClock{}, func(c *WhatsAppConnector) { c.Config.StatusBroadcasts = on })
			t.Cleanup(func() { idle(t, tb, srv) })
			ctx := ctxFor(t)
			loginQRAs(t, tb, srv, testUser, alicePh)
			if _, err := srv.SendStatus(ctx, carolPh, "my holiday"); err != nil {
				t.Fatal(err)
			}
			// A direct message sent after the status comes after it on the
			// same connection: once it is here, the status was handled.
			if _, err := srv.SendText(ctx, carolPh, alicePh, "after the status"); err != nil {
				t.Fatal(err)
			}
			tb.waitMsg(t, "the direct message", func(m fakematrix.Message) bool { return m.Content.Body == "after the status" })
			status, found := tb.mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "my holiday" })
			if !on {
				if found {
					t.Fatalf("a status update was bridged with the switch off: %+v", status)
				}
				return
			}
			if !found || status.Sender != carolGhst {
				t.Fatalf("status update: %+v, %v", status, found)
			}
			portal, err := tb.br.GetPortalByMXID(ctx, status.RoomID)
			if err != nil || portal == nil || portal.ID != "whatsapp.status" || portal.Receiver != "whatsapp."+alicePh || portal.Name != StatusRoomName {
				t.Fatalf("status portal %+v, %v", portal, err)
			}
			if p := tb.mx.PowerLevels(status.RoomID); p == nil || p.GetUserLevel(testUser) >= p.EventsDefault {
				t.Fatalf("the status room is not read-only: %+v", p)
			}
			evtID := injectAs(ctx, tb, testUser, status.RoomID, "nice")
			if !tb.mx.Eventually(waitLong, func() bool {
				for _, st := range tb.mx.StatusesOf(evtID) {
					if st.Status == event.MessageStatusFail && strings.Contains(st.Error(), "read-only") {
						return true
					}
				}
				return false
			}) {
				t.Fatalf("a reply in the status room: %+v", tb.mx.StatusesOf(evtID))
			}
		})
	}
}

// idle waits until no WhatsApp event is being handled and every
// notification was acknowledged (a group change notification starts a
// resync with IQs, and its ack follows): whatsmeow races its Disconnect
// against a frame in flight.
func idle(t testing.TB, tb *testBridge, srv *wasim.Server) {
	t.Helper()
	if !tb.mx.Eventually(waitLong, func() bool { return tb.conn.handling.Load() == 0 && srv.UnackedNotifications() == 0 }) {
		t.Fatalf("WhatsApp events still being handled (%d notifications unacknowledged)", srv.UnackedNotifications())
	}
}

// Members added and removed on WhatsApp join and leave the portal: a
// member removed by an admin is kicked by the admin's ghost, one who leaves
// leaves by themselves.
func TestGroupMembersFromWhatsApp(t *testing.T) {
	srv := startSim(t)
	const davePh = "15550004444"
	const daveGhost id.UserID = "@gw_whatsapp.15550004444:test"
	if _, err := srv.CreateAccount(davePh, "Dave"); err != nil {
		t.Fatal(err)
	}
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)
	gid, err := srv.CreateGroup(ctx, carolPh, "Growing", "", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	var roomID id.RoomID
	member := func(u id.UserID) event.Membership {
		if roomID == "" {
			if rooms := groupRooms(ctx, t, tb, portalID); len(rooms) == 1 {
				roomID = rooms[0]
			}
		}
		return tb.mx.Members(roomID)[u]
	}
	if !tb.mx.Eventually(waitLong, func() bool { return member(carolGhst) == event.MembershipJoin }) {
		t.Fatal("no group portal")
	}
	if member(daveGhost) == event.MembershipJoin {
		t.Fatal("Dave is in the room before he was added")
	}
	if err = srv.ChangeGroupParticipants(ctx, carolPh, gid, "add", []string{davePh}); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return member(daveGhost) == event.MembershipJoin }) {
		t.Fatalf("Dave added on WhatsApp is not in the room: %v", tb.mx.Members(roomID))
	}
	if err = srv.ChangeGroupParticipants(ctx, carolPh, gid, "remove", []string{davePh}); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return member(daveGhost) == event.MembershipLeave }) {
		t.Fatalf("Dave removed on WhatsApp is still in the room: %v", tb.mx.Members(roomID))
	}
	// Removed by Carol: in Matrix, Carol's ghost kicked him.
	if by := lastMemberChange(tb, roomID, daveGhost); by.Sender != carolGhst {
		t.Fatalf("Dave's removal shows as sent by %s, want Carol's ghost (a kick)", by.Sender)
	}
	// Bob leaves by himself: his ghost leaves.
	if err = srv.ChangeGroupParticipants(ctx, carolPh, gid, "add", []string{bobPh}); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return member(bobGhost) == event.MembershipJoin }) {
		t.Fatalf("Bob added on WhatsApp is not in the room: %v", tb.mx.Members(roomID))
	}
	if err = srv.RemoveFromGroup(ctx, bobPh, gid, []string{bobPh}); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return member(bobGhost) == event.MembershipLeave }) {
		t.Fatalf("Bob who left on WhatsApp is still in the room: %v", tb.mx.Members(roomID))
	}
	if by := lastMemberChange(tb, roomID, bobGhost); by.Sender != bobGhost {
		t.Fatalf("Bob's leave shows as sent by %s, want Bob's ghost", by.Sender)
	}
}

// lastMemberChange is the last membership event of user in a room.
func lastMemberChange(tb *testBridge, roomID id.RoomID, user id.UserID) fakematrix.StateEvent {
	var last fakematrix.StateEvent
	for _, st := range tb.mx.StateEvents() {
		if st.RoomID == roomID && st.Type == event.StateMember && st.StateKey == string(user) {
			last = st
		}
	}
	return last
}

// A community is a Matrix space: its parent group becomes a space room
// named after it (shared, with the staff member in it), and its
// announcement group is bridged as an announce-only group named after the
// community, a child of the space (and the space its parent). A Matrix
// message in the space is refused.
func TestCommunityAnnouncementGroup(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)
	community, announcements, err := srv.CreateCommunity(ctx, carolPh, "Neighbours", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendGroupText(ctx, carolPh, announcements, "bins out tonight", nil); err != nil {
		t.Fatal(err)
	}
	got := tb.waitMsg(t, "the announcement", func(m fakematrix.Message) bool { return m.Content.Body == "bins out tonight" })
	portal, err := tb.br.GetPortalByMXID(ctx, got.RoomID)
	if err != nil || portal == nil || portal.ID != networkid.PortalID("whatsapp.g-"+strings.TrimSuffix(announcements, "@g.us")) || portal.Name != "Neighbours" {
		t.Fatalf("announcement group portal %+v, %v", portal, err)
	}
	if p := tb.mx.PowerLevels(got.RoomID); p == nil || p.EventsDefault != adminPowerLevel || p.GetUserLevel(testUser) >= p.EventsDefault {
		t.Fatalf("announcement group is not announce-only in Matrix: %+v", p)
	}
	idle(t, tb, srv)
	spaceID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(community, "@g.us"))
	rooms := groupRooms(ctx, t, tb, spaceID)
	if len(rooms) != 1 {
		t.Fatalf("the community has rooms %v, want one space", rooms)
	}
	space := rooms[0]
	var created fakematrix.Room
	for _, r := range tb.mx.Rooms() {
		if r.ID == space {
			created = r
		}
	}
	if created.Request == nil || created.Request.CreationContent["type"] != event.RoomTypeSpace {
		t.Fatalf("the community's room is not a space: %+v", created)
	}
	if sp, err := tb.br.GetPortalByMXID(ctx, space); err != nil || sp.Name != "Neighbours" || sp.RoomType != database.RoomTypeSpace || sp.Receiver != "" {
		t.Fatalf("the community's space portal %+v, %v", sp, err)
	}
	if !isIn(tb.mx.Members(space)[testUser]) {
		t.Fatalf("the staff member is not in the community's space: %v", tb.mx.Members(space))
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		return tb.mx.State(space, event.StateSpaceChild, string(got.RoomID)) != nil
	}) {
		t.Fatal("the announcement group is not a child of the community's space")
	}
	if portal, err = tb.br.GetPortalByMXID(ctx, got.RoomID); err != nil || portal.ParentKey.ID != spaceID {
		t.Fatalf("announcement group's parent %+v, %v", portal.ParentKey, err)
	}
	evtID := injectAs(ctx, tb, testUser, space, "hello space")
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status == event.MessageStatusFail && strings.Contains(st.Error(), "space of a WhatsApp community") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("a message in the community's space: %+v", tb.mx.StatusesOf(evtID))
	}
}

// A linked group whose community has no space yet (the staff member joined
// the community before linking the account): the space is made through
// the gate when the group's portal is, and the group put in it.
func TestCommunitySpaceMadeForLinkedGroup(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	community, announcements, err := srv.CreateCommunity(ctx, carolPh, "Neighbours", []string{alicePh})
	if err != nil {
		t.Fatal(err)
	}
	loginQRAs(t, tb, srv, testUser, alicePh)
	if _, err = srv.SendGroupText(ctx, carolPh, announcements, "street party", nil); err != nil {
		t.Fatal(err)
	}
	got := tb.waitMsg(t, "the announcement", func(m fakematrix.Message) bool { return m.Content.Body == "street party" })
	spaceID := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(community, "@g.us"))
	var space id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		if rooms := groupRooms(ctx, t, tb, spaceID); len(rooms) == 1 {
			space = rooms[0]
		}
		return space != "" && tb.mx.State(space, event.StateSpaceChild, string(got.RoomID)) != nil
	}) {
		t.Fatalf("no community space with the announcement group in it (space %q)", space)
	}
	if sp, err := tb.br.GetPortalByMXID(ctx, space); err != nil || sp.RoomType != database.RoomTypeSpace || sp.Name != "Neighbours" {
		t.Fatalf("space portal %+v, %v", sp, err)
	}
}
