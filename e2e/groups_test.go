package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// groupWorld is the stack of TestGroupsEndToEnd: two staff members, each
// with their own client and linked accounts.
type groupWorld struct {
	s        *Stack
	wa       *wasim.Server
	tg       *tgsim.Server
	sam, pat *Client
}

// countBody counts the messages with body in roomID as c sees them.
func countBody(ctx context.Context, t *testing.T, c *Client, roomID, body string) int {
	t.Helper()
	evs, err := c.ServerHistory(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.ClearType == "m.room.message" && ev.Body() == body {
			n++
		}
	}
	return n
}

// roomName is roomID's name as c sees it.
func roomName(ctx context.Context, t *testing.T, c *Client, roomID string) string {
	t.Helper()
	st, err := c.RoomState(ctx, roomID, "m.room.name", "")
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		return ""
	}
	name, _ := st.Content["name"].(string)
	return name
}

// membership is userID's membership of roomID as c sees it.
func membership(ctx context.Context, t *testing.T, c *Client, roomID, userID string) string {
	t.Helper()
	members, err := c.RoomMembers(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.UserID == userID {
			return m.Membership
		}
	}
	return ""
}

// TestGroupsEndToEnd: on Dendrite with two staff members, each with their
// own matrix-js-sdk client and linked accounts, a remote group with both of
// them and two outside contacts is one encrypted portal that both share;
// each message of the group shows once; a rename and a member leaving on
// the network show in Matrix; a rename from Matrix shows on the network.
func TestGroupsEndToEnd(t *testing.T) {
	wa := NewWhatsAppSim(t)
	tg := NewTelegramSim(t, tgsim.Options{})
	const samWA, patWA, yaraWA, zoeWA = "+33600000071", "+33600000072", "+33600000073", "+33600000074"
	createWAAccounts(t, wa, map[string]string{samWA: "Sam Staff", patWA: "Pat Staff", yaraWA: "Yara Outside", zoeWA: "Zoe Outside"})
	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam", "pat"}})
	w := &groupWorld{s: s, wa: wa, tg: tg, sam: s.User("sam"), pat: s.User("pat")}
	samMgmt, _ := s.BotRoom(w.sam)
	patMgmt, _ := s.BotRoom(w.pat)
	s.LinkWhatsAppQR(w.sam, samMgmt, wa, samWA)
	s.LinkWhatsAppQR(w.pat, patMgmt, wa, patWA)
	tgAccount := func(phone, first string) *tgsim.Account {
		acc, err := tg.CreateAccount(tgsim.AccountSpec{Phone: phone, FirstName: first, LastName: "Tg"})
		if err != nil {
			t.Fatal(err)
		}
		return acc
	}
	samTG, patTG := tgAccount("+15550071", "Sam"), tgAccount("+15550072", "Pat")
	yaraTG, zoeTG := tgAccount("+15550073", "Yara"), tgAccount("+15550074", "Zoe")
	for _, step := range []struct {
		c     *Client
		mgmt  string
		phone string
	}{{w.sam, samMgmt, "+15550071"}, {w.pat, patMgmt, "+15550072"}} {
		s.LoginTelegramPhone(step.c, step.mgmt, tg, step.phone)
	}

	t.Run("whatsapp", func(t *testing.T) {
		ctx := s.Ctx()
		group, err := wa.CreateGroup(ctx, yaraWA, "Harbour works", "", []string{samWA, patWA, zoeWA})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = wa.SendGroupText(ctx, yaraWA, group, "the crane arrives on Monday", nil); err != nil {
			t.Fatal(err)
		}
		samRoom, err := w.sam.WaitRoom(ctx, RoomFilter{Exclude: []string{samMgmt}, NameContains: "Harbour works", AutoJoin: true})
		if err != nil {
			t.Fatal(err)
		}
		patRoom, err := w.pat.WaitRoom(ctx, RoomFilter{Exclude: []string{patMgmt}, NameContains: "Harbour works", AutoJoin: true})
		if err != nil {
			t.Fatal(err)
		}
		if samRoom.RoomID != patRoom.RoomID {
			t.Fatalf("two staff members in one WhatsApp group got two rooms: %s and %s", samRoom.RoomID, patRoom.RoomID)
		}
		room := samRoom.RoomID
		first, err := w.pat.WaitMessage(ctx, room, MessageFilter{BodyContains: "the crane arrives on Monday"})
		if err != nil {
			t.Fatal(err)
		}
		if !first.Encrypted {
			t.Error("the group portal is not encrypted")
		}
		yaraGhost := first.Sender

		// Both staff members write as themselves; the contact answers.
		if _, err = w.sam.Send(ctx, room, "noted, Sam"); err != nil {
			t.Fatal(err)
		}
		if _, err = w.pat.Send(ctx, room, "noted, Pat"); err != nil {
			t.Fatal(err)
		}
		for from, text := range map[string]string{samWA: "noted, Sam", patWA: "noted, Pat"} {
			if _, err = wa.WaitMessage(ctx, from, group, func(m wasim.Message) bool { return m.Text() == text }); err != nil {
				t.Fatalf("%q never reached the group from %s's own account: %v", text, from, err)
			}
		}
		if _, err = wa.SendGroupText(ctx, zoeWA, group, "and the permits?", nil); err != nil {
			t.Fatal(err)
		}
		if _, err = w.sam.WaitMessage(ctx, room, MessageFilter{BodyContains: "and the permits?"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Client{w.sam, w.pat} {
			for _, body := range []string{"the crane arrives on Monday", "and the permits?", "noted, Sam", "noted, Pat"} {
				if n := countBody(ctx, t, c, room, body); n != 1 {
					t.Errorf("%s sees %q %d times in the group, want once", c.UserID, body, n)
				}
			}
		}

		// A rename on WhatsApp shows in Matrix; one from Matrix on WhatsApp.
		if err = wa.SetGroupSubject(ctx, yaraWA, group, "Harbour works (phase 2)"); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the WhatsApp rename in Matrix", func() bool { return roomName(ctx, t, w.pat, room) == "Harbour works (phase 2)" })
		name := "Harbour works: permits"
		if _, err = w.sam.SendEvent(ctx, room, "m.room.name", map[string]any{"name": name}, new(string)); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the Matrix rename on WhatsApp", func() bool {
			g, ok := wa.GroupInfo(group)
			return ok && g.Name == name
		})

		// A member who leaves on WhatsApp leaves the portal.
		if err = wa.RemoveFromGroup(ctx, zoeWA, group, []string{zoeWA}); err != nil {
			t.Fatal(err)
		}
		zoe, err := w.sam.WaitMessage(ctx, room, MessageFilter{BodyContains: "and the permits?"})
		if err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "Zoe's ghost leaving the portal", func() bool { return membership(ctx, t, w.sam, room, zoe.Sender) == "leave" })
		if m := membership(ctx, t, w.sam, room, yaraGhost); m != "join" {
			t.Errorf("Yara's ghost is %q in the portal, want join", m)
		}
	})

	t.Run("telegram", func(t *testing.T) {
		ctx := s.Ctx()
		sg, err := tg.CreateChannel(tgsim.ChannelSpec{Title: "Prefecture crisis cell", Creator: yaraTG.ID,
			Members: []int64{samTG.ID, patTG.ID, zoeTG.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = tg.ChannelPost(sg.ID, yaraTG.ID, "roads closed north of the river", ""); err != nil {
			t.Fatal(err)
		}
		samRoom, err := w.sam.WaitRoom(ctx, RoomFilter{Exclude: []string{samMgmt}, NameContains: "Prefecture crisis cell", AutoJoin: true})
		if err != nil {
			t.Fatal(err)
		}
		patRoom, err := w.pat.WaitRoom(ctx, RoomFilter{Exclude: []string{patMgmt}, NameContains: "Prefecture crisis cell", AutoJoin: true})
		if err != nil {
			t.Fatal(err)
		}
		if samRoom.RoomID != patRoom.RoomID {
			t.Fatalf("two staff members in one supergroup got two rooms: %s and %s", samRoom.RoomID, patRoom.RoomID)
		}
		room := samRoom.RoomID
		first, err := w.pat.WaitMessage(ctx, room, MessageFilter{BodyContains: "roads closed north of the river"})
		if err != nil {
			t.Fatal(err)
		}
		if !first.Encrypted {
			t.Error("the supergroup portal is not encrypted")
		}
		if _, err = w.sam.Send(ctx, room, "evacuation buses ready"); err != nil {
			t.Fatal(err)
		}
		if _, err = w.pat.Send(ctx, room, "shelter open at the school"); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the staff members' messages in the supergroup, each from their own account", func() bool {
			from := map[string]int64{}
			for _, m := range tg.ChannelMessages(sg.ID) {
				from[m.Text] = m.From
			}
			return from["evacuation buses ready"] == samTG.ID && from["shelter open at the school"] == patTG.ID
		})
		if _, err = tg.ChannelPost(sg.ID, zoeTG.ID, "bridge at Saint-Pierre flooded", ""); err != nil {
			t.Fatal(err)
		}
		zoe, err := w.sam.WaitMessage(ctx, room, MessageFilter{BodyContains: "bridge at Saint-Pierre flooded"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*Client{w.sam, w.pat} {
			for _, body := range []string{"roads closed north of the river", "bridge at Saint-Pierre flooded", "evacuation buses ready", "shelter open at the school"} {
				if n := countBody(ctx, t, c, room, body); n != 1 {
					t.Errorf("%s sees %q %d times in the supergroup, want once", c.UserID, body, n)
				}
			}
		}

		// Renames both ways (Sam is made an admin to rename it).
		if err = tg.RenameChannel(sg.ID, yaraTG.ID, "Prefecture crisis cell (flood)"); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the Telegram rename in Matrix", func() bool { return roomName(ctx, t, w.pat, room) == "Prefecture crisis cell (flood)" })
		if err = tg.PromoteChannelAdmin(sg.ID, samTG.ID, true); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "Sam's power level to follow his promotion", func() bool {
			pl, err := w.sam.RoomState(ctx, room, "m.room.power_levels", "")
			if err != nil || pl == nil {
				return false
			}
			users, _ := pl.Content["users"].(map[string]any)
			level, _ := users[w.sam.UserID].(float64)
			events, _ := pl.Content["events"].(map[string]any)
			need, ok := events["m.room.name"].(float64)
			if !ok {
				need, _ = pl.Content["state_default"].(float64)
			}
			return level >= need
		})
		name := "Flood cell: shelters"
		if _, err = w.sam.SendEvent(ctx, room, "m.room.name", map[string]any{"name": name}, new(string)); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "the Matrix rename on Telegram", func() bool {
			c, ok := tg.ChannelInfo(sg.ID)
			return ok && c.Title == name
		})

		// A member who leaves on Telegram leaves the portal.
		if err = tg.LeaveChannel(sg.ID, zoeTG.ID, zoeTG.ID); err != nil {
			t.Fatal(err)
		}
		eventually(ctx, t, "Zoe's ghost leaving the portal", func() bool { return membership(ctx, t, w.sam, room, zoe.Sender) == "leave" })
	})

	// A broadcast channel: only its admins post; the portal's power levels
	// say so, and a staff member who is not an admin is refused.
	t.Run("telegramChannel", func(t *testing.T) {
		ctx := s.Ctx()
		ch, err := tg.CreateChannel(tgsim.ChannelSpec{Title: "Prefecture announcements", Broadcast: true, Creator: yaraTG.ID,
			Members: []int64{samTG.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = tg.ChannelPost(ch.ID, yaraTG.ID, "schools closed tomorrow", ""); err != nil {
			t.Fatal(err)
		}
		room, err := w.sam.WaitRoom(ctx, RoomFilter{Exclude: []string{samMgmt}, NameContains: "Prefecture announcements", AutoJoin: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = w.sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: "schools closed tomorrow"}); err != nil {
			t.Fatal(err)
		}
		pl, err := w.sam.RoomState(ctx, room.RoomID, "m.room.power_levels", "")
		if err != nil || pl == nil {
			t.Fatalf("power levels: %v, %v", pl, err)
		}
		eventsDefault, _ := pl.Content["events_default"].(float64)
		users, _ := pl.Content["users"].(map[string]any)
		samLevel, _ := users[w.sam.UserID].(float64)
		if samLevel >= eventsDefault {
			t.Errorf("in a broadcast channel Sam (not an admin) has level %v, events need %v", samLevel, eventsDefault)
		}
		if _, err = w.sam.Send(ctx, room.RoomID, "can I post here?"); err == nil {
			t.Error("a staff member who is not an admin of the broadcast channel could post in its portal")
		}
		for _, m := range tg.ChannelMessages(ch.ID) {
			if m.Text == "can I post here?" {
				t.Error("a non-admin's post reached the broadcast channel")
			}
		}

		// A gap: the channel gets 100 posts while the gateway is down; on
		// return they all show, once each, in order.
		if err = s.Gateway.Stop(); err != nil {
			t.Fatalf("stop gateway: %v", err)
		}
		const gap = 100
		for i := 1; i <= gap; i++ {
			if _, err = tg.ChannelPost(ch.ID, yaraTG.ID, fmt.Sprintf("bulletin %03d", i), ""); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		if err = s.Gateway.Start(ctx); err != nil {
			t.Fatalf("restart gateway: %v", err)
		}
		if _, err = w.sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: fmt.Sprintf("bulletin %03d", gap), Timeout: 3 * time.Minute}); err != nil {
			t.Fatalf("the last post of the gap never arrived: %v", err)
		}
		t.Logf("%d posts written while the gateway was down arrived within %s of the restart", gap, time.Since(start).Round(time.Millisecond))
		evs, err := w.sam.ServerHistory(ctx, room.RoomID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			if b := ev.Body(); ev.ClearType == "m.room.message" && strings.HasPrefix(b, "bulletin ") {
				got = append(got, b)
			}
		}
		if len(got) != gap {
			t.Errorf("the portal has %d posts of the gap, want %d once each", len(got), gap)
		}
		for i, b := range got {
			if want := fmt.Sprintf("bulletin %03d", i+1); b != want {
				t.Errorf("post %d of the gap is %q, want %q (out of order, missing or twice)", i+1, b, want)
				break
			}
		}
	})
}
