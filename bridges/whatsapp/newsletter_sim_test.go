package whatsapp

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
)

// A WhatsApp channel two staff members follow is one read-only portal
// shared by both: named, described and pictured from the channel's
// metadata, its posts bridged once from the channel's own ghost (edits
// and photos too), nobody but the bot and the ghost able to write in it, a Matrix
// message in it refused with a notice, and a staff member who unfollows the
// channel on WhatsApp leaving the room.
func TestNewsletterReadOnly(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)

	nid, err := srv.CreateNewsletter(ctx, carolPh, "City news", "What happens in town")
	if err != nil {
		t.Fatal(err)
	}
	// Bob followed it before he linked his account: it is found in the
	// list of followed channels at his connection.
	if err = srv.FollowNewsletter(ctx, bobPh, nid); err != nil {
		t.Fatal(err)
	}
	pic := []byte("city-jpeg")
	if err = srv.SetNewsletterPicture(ctx, nid, pic); err != nil {
		t.Fatal(err)
	}
	// Alice follows it from her phone (a join notification).
	if err = srv.FollowNewsletter(ctx, alicePh, nid); err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.n-" + strings.TrimSuffix(nid, "@newsletter"))
	ghost := id.UserID("@gw_" + string(portalID) + ":test")
	var roomID id.RoomID
	room := func() id.RoomID {
		if roomID == "" {
			if rooms := groupRooms(ctx, t, tb, portalID); len(rooms) == 1 {
				roomID = rooms[0]
			}
		}
		return roomID
	}
	if !tb.mx.Eventually(waitLong, func() bool { return isIn(tb.mx.Members(room())[testUser]) }) {
		t.Fatal("no portal for the followed channel")
	}
	loginQRAs(t, tb, srv, bobUser, bobPh)
	if !tb.mx.Eventually(waitLong, func() bool { return isIn(tb.mx.Members(room())[bobUser]) }) {
		t.Fatalf("Bob, who follows the channel too, is not in its portal: %v", tb.mx.Members(room()))
	}
	if rooms := groupRooms(ctx, t, tb, portalID); len(rooms) != 1 {
		t.Fatalf("the channel has %d rooms, want one shared", len(rooms))
	}
	portal, err := tb.br.GetPortalByMXID(ctx, room())
	if err != nil || portal == nil || portal.Receiver != "" || portal.Name != "City news" || portal.Topic != "What happens in town" {
		t.Fatalf("channel portal %+v, %v", portal, err)
	}
	roomAvatar := func() []byte {
		c := tb.mx.State(room(), event.StateRoomAvatar, "")
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
	if !tb.mx.Eventually(waitLong, func() bool { return string(roomAvatar()) == string(pic) }) {
		t.Fatalf("room avatar %q, want the channel's picture", roomAvatar())
	}

	// A post: once in Matrix though both logins receive it, from the
	// channel's ghost (named and pictured as the channel).
	postID, err := srv.PostNewsletterText(ctx, nid, "road works on Monday")
	if err != nil {
		t.Fatal(err)
	}
	post := tb.waitMsg(t, "the post", func(m fakematrix.Message) bool { return m.Content.Body == "road works on Monday" })
	if post.RoomID != room() || post.Sender != ghost {
		t.Fatalf("post %+v, want from %s in %s", post, ghost, room())
	}
	if p := tb.mx.Profile(ghost); p.DisplayName != "City news" {
		t.Fatalf("channel ghost profile %+v", p)
	}
	if err = srv.EditNewsletterPost(ctx, nid, postID, "road works on Tuesday"); err != nil {
		t.Fatal(err)
	}
	edit := tb.waitMsg(t, "the edit", func(m fakematrix.Message) bool {
		return m.Replaces() == post.EventID && m.Content.NewContent != nil && m.Content.NewContent.Body == "road works on Tuesday"
	})
	if edit.Sender != ghost {
		t.Fatalf("edit from %s", edit.Sender)
	}
	// A photo post: channel media are not encrypted on WhatsApp.
	photo := []byte("\xff\xd8 a photo of the road works")
	if _, err = srv.PostNewsletterImage(ctx, nid, photo, "image/jpeg", "the detour"); err != nil {
		t.Fatal(err)
	}
	img := tb.waitMsg(t, "the photo post", func(m fakematrix.Message) bool { return m.Content.MsgType == event.MsgImage })
	if img.Sender != ghost || img.RoomID != room() || img.Content.Body != "the detour" || !bytes.Equal(mxBytes(t, tb, img.Content), photo) {
		t.Fatalf("photo post %+v", img.Content)
	}
	idle(t, tb, srv)
	if n := len(tb.mx.MessagesWithBody("road works on Monday")); n != 1 {
		t.Fatalf("the post was bridged %d times", n)
	}
	if n := len(tb.mx.MessagesWhere(func(m fakematrix.Message) bool { return m.Replaces() == post.EventID })); n != 1 {
		t.Fatalf("the edit was bridged %d times", n)
	}

	// Read-only for Matrix users; the bot keeps its level (100 or more).
	p := tb.mx.PowerLevels(room())
	if p == nil || p.GetUserLevel(testUser) >= p.EventsDefault || p.GetUserLevel(bobUser) >= p.EventsDefault ||
		p.GetUserLevel(fakematrix.BotMXID) < 100 || p.GetUserLevel(ghost) < p.EventsDefault ||
		p.GetEventLevel(event.StateRoomName) <= p.GetUserLevel(testUser) {
		t.Fatalf("the channel room is not read-only: %+v", p)
	}
	evtID := injectAs(ctx, tb, testUser, room(), "thanks")
	if !tb.mx.Eventually(waitLong, func() bool {
		for _, st := range tb.mx.StatusesOf(evtID) {
			if st.Status == event.MessageStatusFail && strings.Contains(st.Error(), "read-only") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("a message in the channel room: %+v", tb.mx.StatusesOf(evtID))
	}
	if _, ok := tb.mx.MessageContaining(room(), "channels are read-only"); !ok {
		t.Fatal("no notice in the room explaining the refusal")
	}

	// Alice unfollows on her phone: she leaves; Bob stays.
	if err = srv.UnfollowNewsletter(ctx, alicePh, nid); err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { return !isIn(tb.mx.Members(room())[testUser]) }) {
		t.Fatalf("Alice still in the channel room after unfollowing: %v", tb.mx.Members(room()))
	}
	if !isIn(tb.mx.Members(room())[bobUser]) {
		t.Fatalf("Bob left the channel room with Alice: %v", tb.mx.Members(room()))
	}
}

// A channel is governed like a group: the gate sees its portal's creation
// and its posts described as a group chat with the channel's name, the
// sender as the channel, and a post can be held and delivered later from
// its payload, to the same portal from the channel's ghost.
func TestNewsletterGovernedLikeGroup(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	t.Cleanup(func() { idle(t, tb, srv) })
	var mu sync.Mutex
	var held []remote.Holdable
	var chats []remote.Chat
	var postSenders []remote.Identity
	resyncs := 0
	tb.conn.SetRemoteQueue(func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		if !waid.IsNewsletterPortal(evt.GetPortalKey().ID) {
			return remote.Direct(login, evt)
		}
		mu.Lock()
		defer mu.Unlock()
		d, described := evt.(remote.Described)
		if described {
			chats = append(chats, d.RemoteChat())
		}
		if h, ok := evt.(remote.Holdable); ok {
			if described {
				postSenders = append(postSenders, d.RemoteSender())
			}
			held = append(held, h)
			return bridgev2.EventHandlingResultSuccess
		}
		if described && evt.GetType() == bridgev2.RemoteEventChatResync {
			resyncs++
		}
		return remote.Direct(login, evt)
	})
	ul := loginQRAs(t, tb, srv, testUser, alicePh)
	ctx := ctxFor(t)
	nid, err := srv.CreateNewsletter(ctx, carolPh, "City news", "")
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.FollowNewsletter(ctx, alicePh, nid); err != nil {
		t.Fatal(err)
	}
	postID, err := srv.PostNewsletterText(ctx, nid, "held post")
	if err != nil {
		t.Fatal(err)
	}
	if !tb.mx.Eventually(waitLong, func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == 1 }) {
		t.Fatal("the post never reached the gate")
	}
	mu.Lock()
	h := held[0]
	gotChats, gotSenders, gotResyncs := slices.Clone(chats), slices.Clone(postSenders), resyncs
	mu.Unlock()
	// The portal's creation may be described twice: the follow notification
	// and the connection's list of followed channels, when that list is
	// fetched after the follow (both are idempotent resyncs).
	if gotResyncs < 1 || len(gotSenders) != 1 || len(gotChats) != gotResyncs+1 {
		t.Fatalf("the gate saw %d described channel events (%d resyncs, %d posts), want the portal's creation and the post",
			len(gotChats), gotResyncs, len(gotSenders))
	}
	for _, c := range gotChats {
		if !c.IsGroup || c.Name != "City news" || c.OtherUser != "" {
			t.Fatalf("channel described as %+v", c)
		}
	}
	ghostID := networkid.UserID("whatsapp.n-" + strings.TrimSuffix(nid, "@newsletter"))
	if s := gotSenders[0]; s.ID != ghostID || s.DisplayName != "City news" || s.Phone != "" {
		t.Fatalf("post sender described as %+v", s)
	}
	if tb.mx.MessagesWithBody("held post") != nil {
		t.Fatal("a held post reached Matrix")
	}
	payload, err := h.HoldPayload()
	if err != nil {
		t.Fatal(err)
	}
	evt, err := ul.Client.(remote.HeldEventDecoder).DecodeHeldEvent(ctx, ul, payload)
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := waid.MakeMessageID(waid.MessageKey{Chat: types.NewJID(string(ghostID[len("whatsapp.n-"):]), types.NewsletterServer),
		Sender: types.NewJID(string(ghostID[len("whatsapp.n-"):]), types.NewsletterServer), ID: postID})
	if got := evt.(bridgev2.RemoteMessage).GetID(); got != wantID {
		t.Fatalf("held post decoded as %s, want %s", got, wantID)
	}
	if res := ul.QueueRemoteEvent(evt); !res.Success {
		t.Fatalf("delivering the held post: %+v", res)
	}
	got := tb.waitMsg(t, "the held post", func(m fakematrix.Message) bool { return m.Content.Body == "held post" })
	if got.Sender != id.UserID("@gw_"+string(ghostID)+":test") {
		t.Fatalf("held post delivered from %s", got.Sender)
	}
}

// With bridge_matrix_leave on, leaving a channel's portal in Matrix
// unfollows the channel on WhatsApp.
func TestNewsletterLeaveFromMatrix(t *testing.T) {
	srv := startSim(t)
	tb := startBridge(t, srv, dbtest.SQLite(t).Open(t))
	tb.br.Config.BridgeMatrixLeave = true
	t.Cleanup(func() { idle(t, tb, srv) })
	ctx := ctxFor(t)
	loginQRAs(t, tb, srv, testUser, alicePh)
	nid, err := srv.CreateNewsletter(ctx, carolPh, "City news", "")
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.FollowNewsletter(ctx, alicePh, nid); err != nil {
		t.Fatal(err)
	}
	portalID := networkid.PortalID("whatsapp.n-" + strings.TrimSuffix(nid, "@newsletter"))
	var roomID id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		if rooms := groupRooms(ctx, t, tb, portalID); len(rooms) == 1 {
			roomID = rooms[0]
		}
		return roomID != "" && isIn(tb.mx.Members(roomID)[testUser])
	}) {
		t.Fatal("no portal for the followed channel")
	}
	following := func() bool {
		n, _ := srv.NewsletterInfo(nid)
		return slices.Contains(n.Followers, alicePh)
	}
	injectState(ctx, tb, roomID, event.StateMember, string(testUser),
		&event.MemberEventContent{Membership: event.MembershipLeave}, &event.MemberEventContent{Membership: event.MembershipJoin})
	if !tb.mx.Eventually(waitLong, func() bool { return !following() }) {
		t.Fatal("leaving the channel's portal did not unfollow the channel")
	}
}

// A channel unfollowed while the gateway was away, its leave notification
// expired: at the next connection the staff member leaves its portal.
func TestNewsletterUnfollowedWhileAway(t *testing.T) {
	srv := startSim(t)
	db := dbtest.SQLite(t)
	tb := startBridge(t, srv, db.Open(t))
	ctx := ctxFor(t)
	ul := loginQRAs(t, tb, srv, testUser, alicePh)
	nid, err := srv.CreateNewsletter(ctx, carolPh, "City news", "")
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.FollowNewsletter(ctx, alicePh, nid); err != nil {
		t.Fatal(err)
	}
	key := networkid.PortalKey{ID: networkid.PortalID("whatsapp.n-" + strings.TrimSuffix(nid, "@newsletter"))}
	var roomID id.RoomID
	if !tb.mx.Eventually(waitLong, func() bool {
		p, err := tb.br.DB.Portal.GetByKey(ctx, key)
		if err != nil || p == nil || p.MXID == "" {
			return false
		}
		roomID = p.MXID
		return isIn(tb.mx.Members(roomID)[testUser])
	}) {
		t.Fatal("no portal for the followed channel")
	}
	idle(t, tb, srv)
	tb.stop()
	if err = srv.UnfollowNewsletter(ctx, alicePh, nid); err != nil {
		t.Fatal(err)
	}
	if n := srv.ExpireOfflineNotifications(alicePh); n != 1 {
		t.Fatalf("%d notifications expired, want the leave", n)
	}
	tb2 := startBridge(t, srv, db.Open(t))
	t.Cleanup(func() { idle(t, tb2, srv) })
	if !tb2.mx.Eventually(waitLong, func() bool { return tb2.mx.Members(roomID)[testUser] == event.MembershipLeave }) {
		t.Fatalf("Alice is not taken out of the unfollowed channel's room: %v", tb2.mx.Members(roomID))
	}
	if !tb2.mx.Eventually(waitLong, func() bool {
		login, err := tb2.br.GetExistingUserLoginByID(ctx, ul.ID)
		if err != nil || login == nil {
			return false
		}
		up, err := tb2.br.DB.UserPortal.Get(ctx, login.UserLogin, key)
		return err == nil && up == nil
	}) {
		t.Fatal("the login is still marked in the unfollowed channel's portal")
	}
}
