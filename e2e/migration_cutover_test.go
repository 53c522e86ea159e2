package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// The cut-over steps of TestMigrationEndToEnd (migration_test.go).

// tgTexts lists what from received from to on Telegram.
func (w *migWorld) tgTexts(from, to int64) []string {
	var out []string
	for _, m := range w.tg.Messages(from, to) {
		if m.From == from {
			out = append(out, m.Text)
		}
	}
	return out
}

// waitTG waits until to received a Telegram message from from containing
// text.
func (w *migWorld) waitTG(from, to int64, text string) {
	w.t.Helper()
	for end := time.Now().Add(30 * time.Second); ; <-time.After(100 * time.Millisecond) {
		for _, m := range w.tgTexts(from, to) {
			if strings.Contains(m, text) {
				return
			}
		}
		if time.Now().After(end) {
			w.t.Fatalf("no Telegram message containing %q; got %q", text, w.tgTexts(from, to))
		}
	}
}

// cutOverDM: Tina (linked by her claim) and the staff member move to a
// native encrypted room. The staff member runs cut-over in the portal:
// Tina reads the final message on Telegram; the portal is tombstoned
// towards the new room, where Tina (invited) and Sam talk end-to-end
// encrypted; a message Sam still writes in the old portal is refused with
// a notice and never reaches Telegram; Tina's late Telegram message still
// arrives in the old portal, and she gets a reminder on Telegram.
func (w *migWorld) cutOverDM(t *testing.T) {
	ctx := w.s.Ctx()
	portal := w.portals["Tina"]
	ans := w.s.Step(w.sam, portal, w.prefix+" cut-over", "Cut over:")
	if !strings.Contains(ans.Body(), "created as you") {
		t.Errorf("the native room was not created as the staff member (double puppeting is on): %q", ans.Body())
	}
	w.waitTG(w.tgStaff.ID, w.tina.ID, "I've moved to Matrix: reach me at https://matrix.to/#/!")

	tomb, err := w.sam.RoomState(ctx, portal, "m.room.tombstone", "")
	if err != nil || tomb == nil {
		t.Fatalf("no tombstone in the portal: %v", err)
	}
	newRoom, _ := tomb.Content["replacement_room"].(string)
	if !strings.HasPrefix(newRoom, "!") {
		t.Fatalf("the tombstone names no replacement room: %v", tomb.Content)
	}
	tina := w.s.User("tina")
	room, err := tina.WaitRoom(ctx, RoomFilter{Member: w.sam.UserID, AutoJoin: true, Exclude: []string{w.tinaMgmt}})
	if err != nil {
		t.Fatalf("Tina never got into the native room: %v", err)
	}
	if room.RoomID != newRoom {
		t.Fatalf("Tina joined %s, the tombstone points at %s", room.RoomID, newRoom)
	}
	if !room.Encrypted {
		t.Error("the native room is not encrypted")
	}
	if _, err = w.sam.WaitRoom(ctx, RoomFilter{Member: tina.UserID, Exclude: w.excluded}); err != nil {
		t.Fatalf("Sam is not in the native room: %v", err)
	}
	sent, err := w.sam.Send(ctx, newRoom, "welcome to Matrix, Tina")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tina.WaitMessage(ctx, newRoom, MessageFilter{Sender: w.sam.UserID, BodyContains: "welcome to Matrix, Tina"})
	if err != nil {
		t.Fatalf("Tina did not read Sam's message in the native room: %v", err)
	}
	if !got.Encrypted || got.EventID != sent {
		t.Errorf("the native room's message: encrypted %v, event %s (sent %s)", got.Encrypted, got.EventID, sent)
	}
	if _, err = tina.Send(ctx, newRoom, "glad to be here"); err != nil {
		t.Fatal(err)
	}
	if _, err = w.sam.WaitMessage(ctx, newRoom, MessageFilter{Sender: tina.UserID, BodyContains: "glad to be here"}); err != nil {
		t.Fatalf("Sam did not read Tina's answer: %v", err)
	}

	// The old portal refuses what Sam still writes there.
	refusedID, err := w.sam.Send(ctx, portal, "written in the old portal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = w.sam.WaitMessage(ctx, portal, MessageFilter{Sender: w.s.BotID, After: refusedID, BodyContains: "moved to a native Matrix room"}); err != nil {
		t.Errorf("no refusal notice in the old portal: %v", err)
	}
	// The portal's events are handled in order: the tombstone was, before
	// the refusal. bridgev2 did not try to follow it (join the native room
	// and move the portal there).
	if strings.Contains(w.s.Gateway.JSONLog(), "replacement room") {
		t.Error("bridgev2 tried to follow the cut-over tombstone into the native room (see the gateway log)")
	}

	// Tina still writes on Telegram: delivered, and reminded.
	if _, err = w.tg.SendMessage(w.tina.ID, w.tgStaff.ID, "a late message from Telegram", nil); err != nil {
		t.Fatal(err)
	}
	if _, err = w.sam.WaitMessage(ctx, portal, MessageFilter{BodyContains: "a late message from Telegram"}); err != nil {
		t.Fatalf("a late message after the cut-over was lost: %v", err)
	}
	w.waitTG(w.tgStaff.ID, w.tina.ID, "This chat has moved to Matrix")
	for _, m := range w.tgTexts(w.tgStaff.ID, w.tina.ID) {
		if m == "written in the old portal" {
			t.Error("a message written in the old portal reached Telegram")
		}
	}
	w.adminCommand("gov-migration contact @tina_outside", "cut_over")
}

// cutOverGroup: a Telegram group with Tina (linked) and Uma (not): the
// staff member's cut-over names Uma as missing and pins that notice; once
// Uma is linked by an admin, the group is cut over: tombstone, and a native
// encrypted room with Sam, Tina and Uma invited.
func (w *migWorld) cutOverGroup(t *testing.T) {
	ctx := w.s.Ctx()
	uma, err := w.tg.CreateAccount(tgsim.AccountSpec{Phone: "+15550602", FirstName: "Uma", LastName: "Outside", Username: "uma_outside"})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := w.tg.CreateChannel(tgsim.ChannelSpec{Title: "Harbour works", Creator: uma.ID, Members: []int64{w.tgStaff.ID, w.tina.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = w.tg.ChannelPost(sg.ID, uma.ID, "the crane arrives monday", ""); err != nil {
		t.Fatal(err)
	}
	portal := w.waitPortal("Harbour works", "the crane arrives monday")
	ans := w.s.Step(w.sam, portal, w.prefix+" cut-over", "Not yet")
	if !strings.Contains(ans.Body(), "Uma") || strings.Contains(ans.Body(), "Tina") {
		t.Errorf("the missing members named: %q; want Uma only", ans.Body())
	}
	pins, err := w.sam.RoomState(ctx, portal, "m.room.pinned_events", "")
	if err != nil || pins == nil {
		t.Fatalf("nothing pinned in the group portal: %v", err)
	}
	if list, _ := pins.Content["pinned"].([]any); len(list) == 0 {
		t.Errorf("the pinned events are empty: %v", pins.Content)
	}

	w.adminCommand("gov-directory add @uma_outside @uma:localhost", "is linked to @uma:localhost")
	w.s.Step(w.sam, portal, w.prefix+" cut-over", "Cut over:")
	tomb, err := w.sam.RoomState(ctx, portal, "m.room.tombstone", "")
	if err != nil || tomb == nil {
		t.Fatalf("no tombstone in the group portal: %v", err)
	}
	newRoom, _ := tomb.Content["replacement_room"].(string)
	// The homeserver lists the three as invited (or joined) in the new
	// room: the room's creation invited them, before the tombstone. (Sam's
	// client may show the room before it has synced all of them.)
	want := []string{w.sam.UserID, w.s.User("tina").UserID, "@uma:localhost"}
	in := map[string]string{}
	var askErr error
	all := func() bool {
		members, err := w.sam.ServerMembers(ctx, newRoom)
		if askErr = err; err != nil {
			return false
		}
		clear(in)
		for _, m := range members {
			in[m.UserID] = m.Membership
		}
		return !slices.ContainsFunc(want, func(who string) bool { return in[who] != "join" && in[who] != "invite" })
	}
	for end := time.Now().Add(30 * time.Second); !all(); <-time.After(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not all of %v are in the group's native room (memberships %v, last answer's error %v)", want, in, askErr)
		}
	}
	w.waitChannel(sg.ID, w.tgStaff.ID, "I've moved to Matrix")
}

// waitChannel waits for a message of from in a Telegram group.
func (w *migWorld) waitChannel(channelID, from int64, text string) {
	w.t.Helper()
	for end := time.Now().Add(30 * time.Second); ; <-time.After(100 * time.Millisecond) {
		for _, m := range w.tg.ChannelMessages(channelID) {
			if m.From == from && strings.Contains(m.Text, text) {
				return
			}
		}
		if time.Now().After(end) {
			w.t.Fatalf("no message of %d containing %q in the Telegram group", from, text)
		}
	}
}
