package e2e

import (
	"context"
	"testing"

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
	for phone, name := range map[string]string{samWA: "Sam Staff", patWA: "Pat Staff", yaraWA: "Yara Outside", zoeWA: "Zoe Outside"} {
		if _, err := wa.CreateAccount(phone, name); err != nil {
			t.Fatal(err)
		}
	}
	s := NewStack(t, StackOptions{WhatsAppSim: wa, TelegramSim: tg, Users: []string{"sam", "pat"}})
	w := &groupWorld{s: s, wa: wa, tg: tg, sam: s.User("sam"), pat: s.User("pat")}
	samMgmt, _ := s.BotRoom(w.sam)
	patMgmt, _ := s.BotRoom(w.pat)
	s.LinkWhatsAppQR(w.sam, samMgmt, wa, samWA)
	s.LinkWhatsAppQR(w.pat, patMgmt, wa, patWA)

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
}
