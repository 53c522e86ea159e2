package whatsapp

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/variationselector"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// offlineScript is what contacts do in three chats while the gateway is
// away: texts, and among them edits, revokes and reactions.
type offlineScript struct {
	texts     [3][]string       // texts per chat, in the order sent
	ids       map[string]string // WhatsApp ID by text
	edited    map[string]string // new text by original text
	revoked   []string          // texts revoked
	reactedTo []string          // texts reacted to
	sender    [3]string         // who writes in each chat
	chatTo    [3]string         // where they write
	done      map[string]bool   // texts edited or revoked already
}

// TestCatchUpAfterDowntime: the gateway is stopped; meanwhile contacts send
// 50 events across three chats (a direct chat and a group that have a
// portal, a direct chat that has none yet), edits, revokes and reactions
// among them. When the gateway is back on the same database, everything
// reaches Matrix from WhatsApp's offline queue: each message once, in the
// order sent, edits as edits, revokes as redactions, reactions on their
// messages, and the new chat gets its portal.
func TestCatchUpAfterDowntime(t *testing.T) {
	srv := startSim(t)
	db := dbtest.SQLite(t)
	tb := startBridge(t, srv, db.Open(t))
	loginQR(t, tb, srv)
	ctx := ctxFor(t)
	gid, err := srv.CreateGroup(ctx, bobPh, "Crew", "", []string{alicePh, carolPh})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendText(ctx, bobPh, alicePh, "before the outage"); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.SendGroupText(ctx, carolPh, gid, "group before the outage", nil); err != nil {
		t.Fatal(err)
	}
	tb.waitMsg(t, "Bob's first message", func(m fakematrix.Message) bool { return m.Content.Body == "before the outage" })
	tb.waitMsg(t, "Carol's first group message", func(m fakematrix.Message) bool { return m.Content.Body == "group before the outage" })
	// Alice writes to Bob from Matrix; Bob reads it while the gateway is down.
	bobMsg, _ := tb.mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == "before the outage" })
	sentEvt := id.EventID("$catchup-sent")
	tb.mx.Inject(ctx, &event.Event{Type: event.EventMessage, RoomID: bobMsg.RoomID, Sender: testUser, ID: sentEvt,
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "are you there?"}}})
	var sentKey waid.MessageKey
	if !tb.mx.Eventually(waitLong, func() bool {
		part, err := tb.br.DB.Message.GetPartByMXID(ctx, sentEvt)
		if err != nil || part == nil {
			return false
		}
		sentKey, err = waid.ParseMessageID(part.ID)
		return err == nil
	}) {
		t.Fatal("Alice's Matrix message never went out")
	}
	if _, err = srv.WaitMessage(ctx, alicePh, bobPh, func(m wasim.Message) bool { return m.ID == sentKey.ID }); err != nil {
		t.Fatal(err)
	}
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
	tb.stop()
	if err = srv.SendReceipt(ctx, bobPh, alicePh, types.ReceiptTypeRead, sentKey.ID); err != nil {
		t.Fatal(err)
	}

	sc := offlineScript{ids: map[string]string{}, edited: map[string]string{}, done: map[string]bool{},
		sender: [3]string{bobPh, carolPh, carolPh}, chatTo: [3]string{alicePh, gid, alicePh}}
	send := func(c int, text string) {
		var waID string
		var err error
		if c == 1 {
			waID, err = srv.SendGroupText(ctx, sc.sender[c], gid, text, nil)
		} else {
			waID, err = srv.SendText(ctx, sc.sender[c], alicePh, text)
		}
		if err != nil {
			t.Fatal(err)
		}
		sc.ids[text] = waID
		sc.texts[c] = append(sc.texts[c], text)
	}
	// last is the chat's latest text not edited or revoked yet.
	last := func(c int) (string, bool) {
		for i := len(sc.texts[c]) - 1; i >= 0; i-- {
			if txt := sc.texts[c][i]; !sc.done[txt] {
				return txt, true
			}
		}
		return "", false
	}
	for i := range 50 {
		c := i % 3
		target, ok := last(c)
		switch {
		case i%10 == 4 && ok:
			sc.edited[target] = target + " (edited)"
			sc.done[target] = true
			if _, err = srv.SendEdit(ctx, sc.sender[c], sc.chatTo[c], sc.ids[target], sc.edited[target]); err != nil {
				t.Fatal(err)
			}
		case i%10 == 7 && ok:
			sc.revoked = append(sc.revoked, target)
			sc.done[target] = true
			if _, err = srv.SendRevoke(ctx, sc.sender[c], sc.chatTo[c], sc.sender[c], sc.ids[target]); err != nil {
				t.Fatal(err)
			}
		case i%10 == 9 && ok:
			sc.reactedTo = append(sc.reactedTo, target)
			// Alice reacts from her phone: her linked device gets it.
			chat := sc.sender[c]
			if c == 1 {
				chat = gid
			}
			if _, err = srv.SendReaction(ctx, alicePh, chat, sc.sender[c], sc.ids[target], "👍"); err != nil {
				t.Fatal(err)
			}
		default:
			send(c, fmt.Sprintf("while away %d in chat %d", i, c))
		}
	}
	if len(sc.edited) == 0 || len(sc.revoked) == 0 || len(sc.reactedTo) == 0 {
		t.Fatalf("script made %d edits, %d revokes, %d reactions", len(sc.edited), len(sc.revoked), len(sc.reactedTo))
	}

	tb2 := startBridgeOn(t, srv, db.Open(t), &manualClock{}, tb.mx)
	check := func() string {
		msgs := tb2.mx.Messages()
		index := func(body string) (int, fakematrix.Message, int) {
			at, n, found := -1, 0, fakematrix.Message{}
			for i, m := range msgs {
				if m.Content.Body == body && m.Replaces() == "" {
					at, found = i, m
					n++
				}
			}
			return at, found, n
		}
		for c := range 3 {
			prev := -1
			var room id.RoomID
			for _, text := range sc.texts[c] {
				at, m, n := index(text)
				if n != 1 {
					return fmt.Sprintf("%q bridged %d times", text, n)
				}
				if at < prev {
					return fmt.Sprintf("%q bridged out of order", text)
				}
				if room != "" && m.RoomID != room {
					return fmt.Sprintf("%q in room %s, not with the rest of chat %d", text, m.RoomID, c)
				}
				prev, room = at, m.RoomID
			}
		}
		for orig, edit := range sc.edited {
			_, m, _ := index(orig)
			edits := tb2.mx.MessagesWhere(func(e fakematrix.Message) bool { return e.Replaces() == m.EventID && m.EventID != "" })
			if len(edits) != 1 || edits[0].Content.NewContent == nil || edits[0].Content.NewContent.Body != edit {
				return fmt.Sprintf("edit of %q: %d edits", orig, len(edits))
			}
		}
		redactions := tb2.mx.Redactions()
		for _, text := range sc.revoked {
			_, m, _ := index(text)
			if n := len(slices.DeleteFunc(slices.Clone(redactions), func(r fakematrix.Redaction) bool { return r.Redacts != m.EventID })); n != 1 {
				return fmt.Sprintf("revoke of %q: %d redactions", text, n)
			}
		}
		reactions := tb2.mx.Reactions()
		for _, text := range sc.reactedTo {
			_, m, _ := index(text)
			if n := len(slices.DeleteFunc(slices.Clone(reactions), func(r fakematrix.Reaction) bool {
				return r.Target != m.EventID || variationselector.Remove(r.Key) != "👍"
			})); n != 1 {
				return fmt.Sprintf("reaction to %q (%s): %d of %+v", text, m.EventID, n, reactions)
			}
		}
		return ""
	}
	var problem string
	if !tb2.mx.Eventually(waitLong, func() bool { problem = check(); return problem == "" }) {
		t.Fatalf("after the restart: %s", problem)
	}
	if err = srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
	if problem = check(); problem != "" {
		t.Fatalf("once everything was acknowledged: %s", problem)
	}
	// Bob's read receipt, given while the gateway was down.
	if !tb2.mx.Eventually(waitLong, func() bool {
		return slices.ContainsFunc(tb2.mx.Receipts(), func(r fakematrix.Receipt) bool { return r.User == bobGhost && r.EventID == sentEvt })
	}) {
		t.Errorf("Bob's read receipt never reached Matrix: %+v", tb2.mx.Receipts())
	}
	// Carol's direct chat had no portal: it has one now, with her messages.
	m, _ := tb2.mx.FindMessage(func(m fakematrix.Message) bool { return m.Content.Body == sc.texts[2][0] })
	if m.Sender != carolGhst {
		t.Fatalf("Carol's first message: %+v", m)
	}
	portal, err := tb2.br.GetExistingPortalByKey(ctx, mustKey(t, "whatsapp."+carolPh, tb2.user(t).GetDefaultLogin()))
	if err != nil || portal == nil || portal.MXID != m.RoomID {
		t.Fatalf("Carol's portal %+v, %v", portal, err)
	}
}

// queueWhileDown links Alice on a new simulator and SQLite database,
// bridges a first message from Bob and stops the gateway once WhatsApp has
// Alice's receipt for it; Bob then sends n messages, "<prefix> 0" onwards,
// while it is down. restart starts the gateway again on the same database
// and Matrix.
func queueWhileDown(t *testing.T, prefix string, n int) (restart func() *testBridge) {
	t.Helper()
	srv, db, tb, ctx := startWithBob(t)
	if err := srv.AwaitReceipts(ctx, alicePh); err != nil {
		t.Fatal(err)
	}
	tb.stop()
	for i := range n {
		if _, err := srv.SendText(ctx, bobPh, alicePh, fmt.Sprintf("%s %d", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
	return func() *testBridge { return startBridgeOn(t, srv, db.Open(t), &manualClock{}, tb.mx) }
}

// TestCatchUpNoticeForBigGap: a gap of 1,200 messages is reported in the
// management room as it is caught up (start, end), and every message is
// bridged once.
func TestCatchUpNoticeForBigGap(t *testing.T) {
	const gap = 1200
	restart := queueWhileDown(t, "gap", gap)
	tb2 := restart()
	// The figures are WhatsApp's (its offline preview): the gap, and the
	// first message again when its acknowledgement had not reached the
	// server before the stop.
	figure := regexp.MustCompile(`: 1,20[01] messages`)
	start := tb2.waitMsg(t, "the start notice", func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "Catching up with ") })
	if !figure.MatchString(start.Content.Body) || !strings.HasSuffix(start.Content.Body, " to bridge.") {
		t.Fatalf("start notice %q", start.Content.Body)
	}
	done := tb2.waitMsg(t, "the end notice", func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "Caught up with ") })
	if !figure.MatchString(done.Content.Body) || !strings.HasSuffix(done.Content.Body, " bridged.") || done.RoomID != start.RoomID {
		t.Fatalf("end notice %q", done.Content.Body)
	}
	for i := range gap {
		if n := len(tb2.mx.MessagesWithBody(fmt.Sprintf("gap %d", i))); n != 1 {
			t.Fatalf("gap %d bridged %d times", i, n)
		}
	}
}

// TestCatchUpRestartMidStream: the gateway is stopped while it is bridging
// a 300-message offline queue, then started again: every message reaches
// Matrix once, in the order sent (what was bridged but not acknowledged
// comes again and is recognised).
func TestCatchUpRestartMidStream(t *testing.T) {
	const gap = 300
	restart := queueWhileDown(t, "queued", gap)
	tb2 := restart()
	if !tb2.mx.Eventually(waitLong, func() bool { return len(tb2.mx.MessagesWithBody("queued 30")) > 0 }) {
		t.Fatal("the queue never started arriving")
	}
	tb2.stop()
	cut := len(tb2.mx.MessagesWhere(func(m fakematrix.Message) bool { return strings.HasPrefix(m.Content.Body, "queued ") }))
	t.Logf("stopped after %d of %d", cut, gap)
	tb3 := restart()
	tb3.waitMsg(t, "the last queued message", func(m fakematrix.Message) bool { return m.Content.Body == fmt.Sprintf("queued %d", gap-1) })
	msgs := tb3.mx.Messages()
	prev := -1
	for i := range gap {
		body := fmt.Sprintf("queued %d", i)
		at, n := -1, 0
		for j, m := range msgs {
			if m.Content.Body == body {
				at = j
				n++
			}
		}
		if n != 1 || at < prev {
			t.Fatalf("%q bridged %d times, at %d after %d", body, n, at, prev)
		}
		prev = at
	}
}
