package telegram

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// A Matrix message over Telegram's 4096 UTF-16 units arrives as several
// Telegram messages, in order, each marked (i/n); the first one is the
// Matrix event's mapping.
func TestLongMatrixMessageIsSplit(t *testing.T) {
	s := newSim(t)
	alice := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice"})
	bob := mustAccount(t, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob"})
	ctx := context.Background()
	tb := startBridge(t, s, dbtest.SQLite(t).Open(t))
	ul := loginByPhone(t, tb, s, alice, "")
	waitConnected(t, tb)
	if _, err := s.SendMessage(bob.ID, alice.ID, "hello", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.mx.WaitMessage(20*time.Second, func(m fakematrix.Message) bool { return m.Content.Body == "hello" }); !ok {
		t.Fatal("Telegram message never reached Matrix")
	}
	portalKey := networkid.PortalKey{ID: tgid.MakePortalID(tgid.Peer{Type: tgid.PeerUser, ID: bob.ID}), Receiver: ul.ID}
	portal, err := tb.br.GetExistingPortalByKey(ctx, portalKey)
	if err != nil || portal == nil {
		t.Fatalf("portal: %v", err)
	}

	// Three paragraphs of 3000 characters, the middle one bold: 9000+ units.
	para := func(c string) string { return strings.Repeat(c+c+c+c+" ", 600) }
	body := para("a") + "\n\n" + para("b") + "\n\n" + para("c")
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: body, Format: event.FormatHTML,
		FormattedBody: "<p>" + para("a") + "</p><p><b>" + para("b") + "</b></p><p>" + para("c") + "</p>"}
	tb.mx.Inject(ctx, &event.Event{
		Type: event.EventMessage, RoomID: portal.MXID, Sender: testUser, ID: "$long",
		Timestamp: time.Now().UnixMilli(), Content: event.Content{Parsed: content},
	})
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err = s.WaitMessage(waitCtx, alice.ID, bob.ID, func(m tgsim.Message) bool { return strings.HasSuffix(m.Text, "(3/3)") }); err != nil {
		t.Fatalf("last part never reached Telegram: %v", err)
	}
	var parts []tgsim.Message
	for _, m := range s.Messages(alice.ID, bob.ID) {
		if m.From == alice.ID {
			parts = append(parts, m)
		}
	}
	if len(parts) != 3 {
		t.Fatalf("%d messages on Telegram, want 3", len(parts))
	}
	for i, m := range parts {
		if !strings.HasSuffix(m.Text, fmt.Sprintf(" (%d/3)", i+1)) || len(m.Text) > 4096 {
			t.Errorf("part %d: %d chars ending %q", i+1, len(m.Text), m.Text[max(0, len(m.Text)-10):])
		}
	}
	if !strings.HasPrefix(parts[1].Text, "bbbb") || len(parts[1].Entities) != 1 {
		t.Errorf("middle part starts %q with %d entities", parts[1].Text[:8], len(parts[1].Entities))
	} else if b, ok := parts[1].Entities[0].(*tg.MessageEntityBold); !ok || b.Offset != 0 {
		t.Errorf("middle part entity %+v", parts[1].Entities[0])
	}
	dbMsg, err := tb.br.DB.Message.GetFirstPartByID(ctx, ul.ID, tgid.MakeMessageID(tgid.MessageKey{Box: tgid.Peer{Type: tgid.PeerUser, ID: alice.ID}, ID: parts[0].SenderMsgID}))
	if err != nil || dbMsg == nil || dbMsg.MXID != "$long" {
		t.Fatalf("first part not mapped to the Matrix event: %+v, %v", dbMsg, err)
	}
}
