package whatsapp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/variationselector"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// withBackfill sets the connector's backfill section.
func withBackfill(initial, maxAge, chats int) func(*WhatsAppConnector) {
	return func(c *WhatsAppConnector) {
		c.Config.Backfill = remote.BackfillLimits{InitialMessages: initial, MaxAgeDays: maxAge, ChatsAtLogin: chats}
	}
}

// roomMessages are the messages of a room that are not edits, in order.
func roomMessages(mx *fakematrix.Matrix, roomID id.RoomID) []fakematrix.Message {
	return mx.MessagesWhere(func(m fakematrix.Message) bool { return m.RoomID == roomID && m.Replaces() == "" })
}

// TestHistoryAtLinking: Bob's chat has 200 messages of history when Alice
// links the gateway: its portal is made at once and gets the latest 50,
// in order, with their original times and senders (Alice's own as hers),
// the file as a file, the reply pointing at its message, the reaction on
// its message; nothing pings. A chat whose history is all older than
// max_age_days gets no backfill. A message bridged live is not bridged
// again from the history.
func TestHistoryAtLinking(t *testing.T) {
	srv := startSim(t)
	start := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	var entries []wasim.HistoryEntry
	for i := range 200 {
		e := wasim.HistoryEntry{From: bobPh, Text: fmt.Sprintf("history %d", i), Time: start.Add(time.Duration(i) * time.Minute)}
		if i%3 == 0 {
			e.From = alicePh
		}
		entries = append(entries, e)
	}
	entries[160].Media = &wasim.MediaSpec{Kind: wasim.KindImage, Data: pngPicture(t, 8, 8), MIME: "image/png", Width: 8, Height: 8}
	entries[175].Reactions = map[string]string{bobPh: "🎉"}
	ids, err := srv.SeedHistory(alicePh, bobPh, entries[:170])
	if err != nil {
		t.Fatal(err)
	}
	entries[170].ReplyTo = ids[165]
	rest, err := srv.SeedHistory(alicePh, bobPh, entries[170:])
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, rest...)
	// Carol's chat is older than max_age_days.
	if _, err = srv.SeedHistory(alicePh, carolPh, []wasim.HistoryEntry{
		{From: carolPh, Text: "long ago", Time: time.Now().AddDate(0, 0, -40)},
	}); err != nil {
		t.Fatal(err)
	}

	tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), &manualClock{}, withBackfill(50, 30, 20))
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	var room id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		portal, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
		if err != nil || portal == nil || !portal.RoomCreated.IsSet() {
			return false
		}
		room = portal.MXID
		return len(roomMessages(tb.mx, room)) >= 50
	}) {
		t.Fatalf("Bob's portal has %d messages, want 50", len(roomMessages(tb.mx, room)))
	}
	// Bob's name came with the history's push names.
	if ghost, err := tb.br.DB.Ghost.GetByID(ctx, "whatsapp."+bobPh); err != nil || ghost == nil || ghost.Name != "Bob" {
		t.Errorf("Bob's ghost %+v, %v", ghost, err)
	}
	aliceGhost := tb.mx.FormatGhostMXID("whatsapp." + alicePh)
	msgs := roomMessages(tb.mx, room)
	if len(msgs) != 50 {
		t.Fatalf("Bob's portal has %d messages, want the latest 50", len(msgs))
	}
	byText := map[string]fakematrix.Message{}
	for i, m := range msgs {
		n := 150 + i
		e := entries[n]
		if n != 160 && m.Content.Body != e.Text {
			t.Fatalf("message %d is %q, want %q", i, m.Content.Body, e.Text)
		}
		if !m.TS.Equal(e.Time) {
			t.Errorf("%q at %s, want its original time %s", e.Text, m.TS, e.Time)
		}
		wantSender := bobGhost
		if e.From == alicePh {
			wantSender = aliceGhost
		}
		if m.Sender != wantSender && !(e.From == alicePh && m.Sender == testUser) {
			t.Errorf("%q sent by %s, want %s", e.Text, m.Sender, wantSender)
		}
		// No pings; a reply names its target's sender, as bridgev2 does
		// for every reply.
		if m.Content.Mentions == nil || m.Content.Mentions.Room || len(m.Content.Mentions.UserIDs) > 0 && n != 170 {
			t.Errorf("%q pings: %+v", e.Text, m.Content.Mentions)
		}
		byText[e.Text] = m
	}
	if file := msgs[10]; file.Content.MsgType != event.MsgImage || file.Content.URL == "" && file.Content.File == nil {
		t.Errorf("the file came as %+v", file.Content)
	}
	reply := byText["history 170"]
	if reply.Content.RelatesTo.GetReplyTo() != byText["history 165"].EventID {
		t.Errorf("the reply points at %q, want %s", reply.Content.RelatesTo.GetReplyTo(), byText["history 165"].EventID)
	}
	reactions := slices.DeleteFunc(tb.mx.Reactions(), func(r fakematrix.Reaction) bool { return r.RoomID != room })
	if len(reactions) != 1 || reactions[0].Target != byText["history 175"].EventID || variationselector.Remove(reactions[0].Key) != "🎉" || reactions[0].Sender != bobGhost {
		t.Errorf("reactions %+v, want Bob's 🎉 on history 175", reactions)
	}
	// Carol's chat: a portal (a recent chat) with nothing too old in it.
	if n := len(tb.mx.MessagesWithBody("long ago")); n != 0 {
		t.Errorf("a message older than max_age_days was backfilled %d times", n)
	}

	// Live after the history; the history is not replayed again.
	if _, err = srv.SendText(ctx, bobPh, alicePh, "live now"); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "the live message", func(m fakematrix.Message) bool { return m.Content.Body == "live now" })
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
	if n := len(roomMessages(tb.mx, room)); n != 51 {
		t.Fatalf("Bob's portal has %d messages after the live one, want 51", n)
	}
	_ = ids
}

// TestChatsAtLogin: 25 chats have history when Alice links the gateway:
// the 20 most recent get their portal at once, the other 5 none (until
// they next speak, when the portal gets their history). A chat the
// gateway's policy refuses gets neither portal nor history.
func TestChatsAtLogin(t *testing.T) {
	srv := startSim(t)
	ctx := ctxFor(t)
	start := time.Now().Add(-24 * time.Hour)
	var phones []string
	for i := range 25 {
		phone := fmt.Sprintf("1555009%04d", i)
		if _, err := srv.CreateAccount(phone, fmt.Sprintf("Contact %d", i)); err != nil {
			t.Fatal(err)
		}
		phones = append(phones, phone)
		// Contact i last spoke at start + i minutes: 5..24 are the recent.
		if _, err := srv.SeedHistory(alicePh, phone, []wasim.HistoryEntry{
			{From: phone, Text: fmt.Sprintf("hello from %d", i), Time: start.Add(time.Duration(i) * time.Minute)},
			{From: alicePh, Text: fmt.Sprintf("hi %d", i), Time: start.Add(time.Duration(i)*time.Minute + time.Second)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	refused := phones[24] // the most recent chat, refused by policy
	tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), &manualClock{}, withBackfill(50, 30, 20))
	var mu sync.Mutex
	var filtered []string
	tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		if string(evt.GetPortalKey().ID) == "whatsapp."+refused {
			return bridgev2.EventHandlingResultIgnored
		}
		return remote.Direct(login, evt)
	})
	tb.conn.SetBackfillFilter(func(ctx context.Context, h remote.History) []*bridgev2.BackfillMessage {
		mu.Lock()
		filtered = append(filtered, string(h.Portal.ID))
		mu.Unlock()
		if string(h.Portal.ID) == "whatsapp."+refused {
			return nil
		}
		out := make([]*bridgev2.BackfillMessage, 0, len(h.Messages))
		for _, m := range h.Messages {
			out = append(out, m.Message)
		}
		return out
	})
	ul := loginQR(t, tb, srv)
	portalOf := func(phone string) *bridgev2.Portal {
		p, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+phone, ul))
		if err != nil || p == nil || !p.RoomCreated.IsSet() {
			return nil
		}
		return p
	}
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, phone := range phones[5:24] {
			if p := portalOf(phone); p == nil || len(roomMessages(tb.mx, p.MXID)) < 2 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the 19 most recent chats the policy allows did not all get their portal and history")
	}
	for i, phone := range phones {
		p := portalOf(phone)
		switch {
		case phone == refused:
			if p != nil {
				t.Errorf("the refused chat got a portal")
			}
		case i < 5:
			if p != nil {
				t.Errorf("chat %d (not among the 20 most recent) got a portal at login", i)
			}
		default:
			msgs := roomMessages(tb.mx, p.MXID)
			if len(msgs) != 2 || msgs[0].Content.Body != fmt.Sprintf("hello from %d", i) || msgs[1].Content.Body != fmt.Sprintf("hi %d", i) {
				t.Errorf("chat %d: %d messages", i, len(msgs))
			}
		}
	}
	if n := len(tb.mx.MessagesWithBody("hello from 24")); n != 0 {
		t.Errorf("the refused chat's history reached Matrix %d times", n)
	}
	// An older chat speaks: its portal is made with its history first.
	if _, err := srv.SendText(ctx, phones[2], alicePh, "back again"); err != nil {
		t.Fatal(err)
	}
	live := tb.waitMsg(t, "the older chat's new message", func(m fakematrix.Message) bool { return m.Content.Body == "back again" })
	msgs := roomMessages(tb.mx, live.RoomID)
	if len(msgs) != 3 || msgs[0].Content.Body != "hello from 2" || msgs[1].Content.Body != "hi 2" {
		t.Errorf("the older chat's portal: %d messages", len(msgs))
	}
	if err := srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryTwoStaff: Alice and Bob (two staff members) are both in a
// group with Carol, and each has a direct chat with her, all with history.
// Alice links first: the group's portal gets its history once. Bob links
// next: his direct chat with Carol gets its own portal with his history;
// the group's history is not bridged a second time.
func TestHistoryTwoStaff(t *testing.T) {
	srv := startSim(t)
	ctx := ctxFor(t)
	gid, err := srv.CreateGroup(ctx, carolPh, "Crew", "", []string{alicePh, bobPh})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-5 * time.Hour)
	var group []wasim.HistoryEntry
	for i, from := range []string{carolPh, alicePh, bobPh, carolPh, bobPh, alicePh} {
		group = append(group, wasim.HistoryEntry{From: from, Text: fmt.Sprintf("crew %d", i), Time: start.Add(time.Duration(i) * time.Minute)})
	}
	if _, err = srv.SeedHistory(alicePh, gid, group); err != nil {
		t.Fatal(err)
	}
	for _, staff := range []string{alicePh, bobPh} {
		if _, err = srv.SeedHistory(staff, carolPh, []wasim.HistoryEntry{
			{From: carolPh, Text: "hello " + staff, Time: start.Add(time.Hour)},
			{From: staff, Text: "hi Carol from " + staff, Time: start.Add(time.Hour + time.Minute)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), &manualClock{}, withBackfill(50, 30, 20))
	t.Cleanup(func() { idle(t, tb, srv) })
	loginQRAs(t, tb, srv, testUser, alicePh)
	groupPortal := networkid.PortalID("whatsapp.g-" + strings.TrimSuffix(gid, "@g.us"))
	var groupRoom id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		rooms := groupRooms(ctx, t, tb, groupPortal)
		if len(rooms) != 1 {
			return false
		}
		groupRoom = rooms[0]
		return len(roomMessages(tb.mx, groupRoom)) == len(group)
	}) {
		t.Fatalf("the group's portal has %d messages, want its %d of history", len(roomMessages(tb.mx, groupRoom)), len(group))
	}
	tb.waitMsg(t, "Alice's history with Carol", func(m fakematrix.Message) bool { return m.Content.Body == "hi Carol from "+alicePh })
	bobLogin := loginQRAs(t, tb, srv, bobUser, bobPh)
	bobDM := tb.waitMsg(t, "Bob's history with Carol", func(m fakematrix.Message) bool { return m.Content.Body == "hi Carol from "+bobPh })
	if msgs := roomMessages(tb.mx, bobDM.RoomID); len(msgs) != 2 || msgs[0].Content.Body != "hello "+bobPh {
		t.Fatalf("Bob's direct chat with Carol: %d messages", len(msgs))
	}
	// Bob's history sync has been handled: his chats are known.
	if !tb.mx.Eventually(waitLong, func() bool {
		chats, err := tb.conn.history.recentChats(ctx, bobLogin.ID, 10)
		return err == nil && slices.Contains(chats, gid)
	}) {
		t.Fatal("Bob's history sync never listed the group")
	}
	for i, e := range group {
		if n := len(tb.mx.MessagesWithBody(e.Text)); n != 1 {
			t.Errorf("group message %d bridged %d times", i, n)
		}
	}
	if n := len(tb.mx.MessagesWithBody("hello " + alicePh)); n != 1 {
		t.Errorf("Alice's history with Carol bridged %d times", n)
	}
}

// TestHistoryWaitsForItsChat: with no portals made at login, a chat's
// history waits until the chat speaks: Carol writes and her portal shows
// her history first, then her message. History that grew older than
// max_age_days while it waited is left out: Bob writes 40 days later and
// his portal has only his new message.
func TestHistoryWaitsForItsChat(t *testing.T) {
	srv := startSim(t)
	ctx := ctxFor(t)
	day := time.Now().Add(-24 * time.Hour)
	for _, phone := range []string{bobPh, carolPh} {
		if _, err := srv.SeedHistory(alicePh, phone, []wasim.HistoryEntry{
			{From: phone, Text: "old news from " + phone, Time: day},
			{From: alicePh, Text: "old answer to " + phone, Time: day.Add(time.Minute)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	clk := &manualClock{}
	tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), clk, withBackfill(50, 30, 0))
	ul := loginQR(t, tb, srv)
	if !tb.mx.Eventually(waitLong, func() bool {
		chats, err := tb.conn.history.recentChats(ctx, ul.ID, 10)
		return err == nil && len(chats) == 2
	}) {
		t.Fatal("the history sync was never stored")
	}
	if n := len(tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "old ") })); n != 0 {
		t.Fatalf("%d history messages bridged with no portal made at login", n)
	}
	if _, err := srv.SendText(ctx, carolPh, alicePh, "Carol now"); err != nil {
		t.Fatal(err)
	}
	carol := tb.waitMsg(t, "Carol's new message", func(m fakematrix.Message) bool { return m.Content.Body == "Carol now" })
	msgs := roomMessages(tb.mx, carol.RoomID)
	if len(msgs) != 3 || msgs[0].Content.Body != "old news from "+carolPh || msgs[1].Content.Body != "old answer to "+carolPh {
		t.Fatalf("Carol's portal: %d messages", len(msgs))
	}
	clk.advance(40 * 24 * time.Hour)
	if _, err := srv.SendText(ctx, bobPh, alicePh, "Bob now"); err != nil {
		t.Fatal(err)
	}
	bob := tb.waitMsg(t, "Bob's new message", func(m fakematrix.Message) bool { return m.Content.Body == "Bob now" })
	if msgs = roomMessages(tb.mx, bob.RoomID); len(msgs) != 1 {
		t.Fatalf("Bob's portal has %d messages, want only the new one (his history is past max_age_days)", len(msgs))
	}
	if err := srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
}

// TestOlderHistoryOnDemand: Bob's chat has 120 messages of history; its
// portal got the latest 50 at linking. A backward fetch (what bridgev2's
// backfill queue does on a homeserver with batch sending) asks Alice's
// phone for the 30 before the portal's oldest: they come in order, with
// their times, and more are said to remain.
func TestOlderHistoryOnDemand(t *testing.T) {
	srv := startSim(t)
	start := time.Now().Add(-10 * time.Hour).Truncate(time.Second)
	var entries []wasim.HistoryEntry
	for i := range 120 {
		entries = append(entries, wasim.HistoryEntry{From: bobPh, Text: fmt.Sprintf("past %d", i), Time: start.Add(time.Duration(i) * time.Minute)})
	}
	if _, err := srv.SeedHistory(alicePh, bobPh, entries); err != nil {
		t.Fatal(err)
	}
	tb := startBridgeClock(t, srv, dbtest.SQLite(t).Open(t), &manualClock{}, withBackfill(50, 30, 20))
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	tb.waitMsg(t, "the latest history message", func(m fakematrix.Message) bool { return m.Content.Body == "past 119" })
	var portal *bridgev2.Portal
	if !tb.mx.Eventually(waitLong, func() bool {
		p, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+bobPh, ul))
		portal = p
		return err == nil && p != nil && p.RoomCreated.IsSet() && len(roomMessages(tb.mx, p.MXID)) == 50
	}) {
		t.Fatal("Bob's portal never got its 50 latest messages")
	}
	oldest, err := tb.br.DB.Message.GetFirstPortalMessage(ctx, portal.PortalKey)
	if err != nil || oldest == nil {
		t.Fatalf("oldest message: %v", err)
	}
	resp, err := ul.Client.(bridgev2.BackfillingNetworkAPI).FetchMessages(ctx, bridgev2.FetchMessagesParams{
		Portal: portal, Forward: false, AnchorMessage: oldest, Count: 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 30 || !resp.HasMore || resp.Forward {
		t.Fatalf("got %d messages, has more %v", len(resp.Messages), resp.HasMore)
	}
	for i, m := range resp.Messages {
		e := entries[40+i]
		if body := m.Parts[0].Content.Body; body != e.Text || !m.Timestamp.Equal(e.Time) || m.Sender.Sender != "whatsapp."+bobPh {
			t.Fatalf("message %d: %q at %s from %s, want %q at %s", i, body, m.Timestamp, m.Sender.Sender, e.Text, e.Time)
		}
	}
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryReadState: the history put into a new portal moves the staff
// member's Matrix read marker only when the phone had read it. Bob's chat,
// answered from the phone, is marked read up to its last message; Carol's,
// whose last two messages wait unread on the phone, is not marked read at
// all (her messages show as new in Matrix).
func TestHistoryReadState(t *testing.T) {
	srv := startSim(t)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if _, err := srv.SeedHistory(alicePh, bobPh, []wasim.HistoryEntry{
		{From: bobPh, Text: "can you call me?", Time: start},
		{From: alicePh, Text: "calling now", Time: start.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SeedHistory(alicePh, carolPh, []wasim.HistoryEntry{
		{From: alicePh, Text: "the report is late", Time: start},
		{From: carolPh, Text: "sorry, tomorrow", Time: start.Add(time.Minute)},
		{From: carolPh, Text: "is that all right?", Time: start.Add(2 * time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	mx := fakematrix.New()
	mx.EnableDoublePuppet()
	tb := startBridgeOn(t, srv, dbtest.SQLite(t).Open(t), &manualClock{}, mx, withBackfill(50, 30, 20))
	ul := loginQR(t, tb, srv)
	ctx := ctxFor(t)
	filled := func(contact string, n int) id.RoomID {
		t.Helper()
		var room id.RoomID
		if !mx.Eventually(waitLong, func() bool {
			portal, err := tb.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+contact, ul))
			if err != nil || portal == nil || !portal.RoomCreated.IsSet() {
				return false
			}
			room = portal.MXID
			return len(roomMessages(mx, room)) >= n
		}) {
			t.Fatalf("the portal with %s has %d messages, want %d", contact, len(roomMessages(mx, room)), n)
		}
		return room
	}
	staffReceipts := func(room id.RoomID) []fakematrix.Receipt {
		var out []fakematrix.Receipt
		for _, r := range mx.Receipts() {
			if r.RoomID == room && r.User == testUser {
				out = append(out, r)
			}
		}
		return out
	}
	carolRoom := filled(carolPh, 3)
	bobRoom := filled(bobPh, 2)
	last := roomMessages(mx, bobRoom)[1]
	if !mx.Eventually(waitLong, func() bool {
		return slices.ContainsFunc(staffReceipts(bobRoom), func(r fakematrix.Receipt) bool { return r.EventID == last.EventID })
	}) {
		t.Fatalf("Bob's chat, read on the phone, was not marked read in Matrix: %+v", mx.Receipts())
	}
	if got := staffReceipts(carolRoom); len(got) != 0 {
		t.Errorf("Carol's unread messages were marked read in Matrix: %+v", got)
	}
}
