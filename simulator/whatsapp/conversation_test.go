package wasim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// offsetClock is the system clock moved forward by the test.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) After(d time.Duration) <-chan time.Time {
	return time.After(d)
}
func (c *offsetClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func startConvServer(t *testing.T) (*wasim.Server, *offsetClock) {
	t.Helper()
	clk := &offsetClock{}
	srv, err := wasim.Start(wasim.Config{StreamErrorCloseDelay: 300 * time.Millisecond, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, clk
}

func entry(t *testing.T, conv []wasim.ChatEntry, id string) wasim.ChatEntry {
	t.Helper()
	for _, e := range conv {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("message %s not in the conversation (%d entries)", id, len(conv))
	return wasim.ChatEntry{}
}

// TestConversationDirect: a contact replies, edits, reacts and reads; a
// client edits (within the window only), reacts (one reaction per user),
// revokes (its own messages only), reads and types; both views agree.
func TestConversationDirect(t *testing.T) {
	srv, clk := startConvServer(t)
	mustAccount(t, srv, "15550040001", "Alice")
	mustAccount(t, srv, "15550040002", "Bob")
	c := pair(t, srv, "15550040001")
	ctx := ctxT(t)
	alice, bob := "15550040001", "15550040002"
	bobJID := types.NewJID(bob, types.DefaultUserServer)

	// Contact → client: a message, a reply to it, an edit of it.
	first, err := srv.SendText(ctx, bob, alice, "first")
	if err != nil {
		t.Fatal(err)
	}
	replyID, err := srv.SendReply(ctx, bob, alice, "answer", first, bob, &waE2E.Message{Conversation: proto.String("first")})
	if err != nil {
		t.Fatal(err)
	}
	got := waitEvent(t, c, func(m *events.Message) bool { return m.Info.ID == replyID })
	if ci := got.Message.GetExtendedTextMessage().GetContextInfo(); ci.GetStanzaID() != first || ci.GetQuotedMessage().GetConversation() != "first" {
		t.Fatalf("reply context %+v", ci)
	}
	if _, err = srv.SendEdit(ctx, bob, alice, first, "first, fixed"); err != nil {
		t.Fatal(err)
	}
	edit := waitEvent(t, c, func(m *events.Message) bool { return m.IsEdit })
	if pm := edit.Message.GetProtocolMessage(); pm.GetKey().GetID() != first || pm.GetEditedMessage().GetConversation() != "first, fixed" {
		t.Fatalf("edit %+v", pm)
	}

	// Client → contact: a message, an edit, reactions (the second replaces
	// the first), a revoke.
	resp, err := c.SendMessage(ctx, bobJID, &waE2E.Message{Conversation: proto.String("hello Bob")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.SendMessage(ctx, bobJID, c.BuildEdit(bobJID, resp.ID, &waE2E.Message{Conversation: proto.String("hello Bob!")})); err != nil {
		t.Fatal(err)
	}
	for _, emoji := range []string{"👍", "❤️"} {
		if _, err = c.SendMessage(ctx, bobJID, c.BuildReaction(bobJID, bobJID, first, emoji)); err != nil {
			t.Fatal(err)
		}
	}
	if err = srv.WaitCondition(ctx, func() bool {
		conv := srv.Conversation(bob, alice)
		for _, e := range conv {
			if e.ID == first && e.Reactions[alice] == "❤️" {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal("Bob never saw Alice's second reaction")
	}
	conv := srv.Conversation(bob, alice)
	if e := entry(t, conv, resp.ID); e.Text != "hello Bob!" || !e.Edited {
		t.Fatalf("Bob sees %+v", e)
	}
	if e := entry(t, conv, first); len(e.Reactions) != 1 || e.Text != "first, fixed" {
		t.Fatalf("Bob's first message as he sees it: %+v", e)
	}
	if e := entry(t, conv, replyID); e.ReplyTo != first {
		t.Fatalf("reply %+v", e)
	}

	// A contact's own message cannot be revoked by the client; its own can.
	if _, err = c.SendMessage(ctx, bobJID, c.BuildRevoke(bobJID, bobJID, first)); !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Fatalf("revoking Bob's message in a direct chat: %v", err)
	}
	if _, err = c.SendMessage(ctx, bobJID, c.BuildRevoke(bobJID, types.EmptyJID, resp.ID)); err != nil {
		t.Fatal(err)
	}
	if e := entry(t, srv.Conversation(bob, alice), resp.ID); !e.Revoked || e.Text != "" {
		t.Fatalf("revoked message as Bob sees it: %+v", e)
	}

	// Past the window, edits are refused, from either side.
	clk.advance(wasim.EditWindow + time.Minute)
	if _, err = c.SendMessage(ctx, bobJID, c.BuildEdit(bobJID, resp.ID, &waE2E.Message{Conversation: proto.String("late")})); !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Fatalf("late edit from the client: %v", err)
	}
	if _, err = srv.SendEdit(ctx, bob, alice, first, "late"); !errors.Is(err, wasim.ErrEditWindow) {
		t.Fatalf("late edit from Bob: %v", err)
	}
	if e := entry(t, srv.Conversation(bob, alice), first); e.Text != "first, fixed" {
		t.Fatalf("late edit applied: %+v", e)
	}

	// Read receipts both ways.
	if err = c.MarkRead(ctx, []types.MessageID{first, replyID}, time.Now(), bobJID, bobJID); err != nil {
		t.Fatal(err)
	}
	if err = srv.WaitCondition(ctx, func() bool {
		e := srv.Conversation(bob, alice)
		return len(e) > 0 && entry(t, e, replyID).ReadByClient
	}); err != nil {
		t.Fatal("Bob never saw Alice read his reply")
	}
	own, err := c.SendMessage(ctx, bobJID, &waE2E.Message{Conversation: proto.String("read this")})
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.SendReceipt(ctx, bob, alice, types.ReceiptTypeRead, own.ID); err != nil {
		t.Fatal(err)
	}
	rc := waitEvent(t, c, func(r *events.Receipt) bool { return r.Type == types.ReceiptTypeRead })
	if rc.MessageIDs[0] != own.ID || rc.Sender.User != bob {
		t.Fatalf("receipt %+v", rc)
	}

	// Typing both ways.
	if err = c.SendChatPresence(ctx, bobJID, types.ChatPresenceComposing, ""); err != nil {
		t.Fatal(err)
	}
	if _, err = srv.WaitChatState(ctx, func(cs wasim.ChatState) bool {
		return cs.From == alice && cs.To == bob && cs.State == types.ChatPresenceComposing
	}); err != nil {
		t.Fatal("Bob never saw Alice typing")
	}
	if err = srv.SendChatState(ctx, bob, alice, types.ChatPresenceComposing, types.ChatPresenceMediaAudio); err != nil {
		t.Fatal(err)
	}
	cp := waitEvent(t, c, func(p *events.ChatPresence) bool { return true })
	if cp.Sender.User != bob || cp.State != types.ChatPresenceComposing || cp.Media != types.ChatPresenceMediaAudio {
		t.Fatalf("chat presence %+v", cp)
	}

	// Presence: only an available client that subscribed hears of it.
	if n, _ := srv.SetPresence(bob, true, false); n != 0 {
		t.Fatalf("%d clients told before any subscription", n)
	}
	c.Store.PushName = "Alice"
	if err = c.SendPresence(ctx, types.PresenceAvailable); err != nil {
		t.Fatal(err)
	}
	if err = c.SubscribePresence(ctx, bobJID); err != nil {
		t.Fatal(err)
	}
	p := waitEvent(t, c, func(p *events.Presence) bool { return p.From.User == bob })
	if p.Unavailable {
		t.Fatalf("Bob online shows as %+v", p)
	}
	if err = srv.WaitCondition(ctx, func() bool { return srv.Subscribed(alice, bob) && srv.ClientAvailable(alice) }); err != nil {
		t.Fatal(err)
	}
	if n, _ := srv.SetPresence(bob, false, false); n != 1 {
		t.Fatalf("offline told to %d clients", n)
	}
	p = waitEvent(t, c, func(p *events.Presence) bool { return p.From.User == bob })
	if !p.Unavailable || p.LastSeen.IsZero() {
		t.Fatalf("Bob offline shows as %+v", p)
	}
}

// TestConversationGroupRights: in a group, the owner (an admin) revokes a
// member's message, a member may not; reactions of several members stay one
// per member.
func TestConversationGroupRights(t *testing.T) {
	srv, _ := startConvServer(t)
	for phone, name := range map[string]string{"15550050001": "Alice", "15550050002": "Bob", "15550050003": "Carol"} {
		mustAccount(t, srv, phone, name)
	}
	ctx := context.Background()
	alice, bob, carol := "15550050001", "15550050002", "15550050003"
	gid, err := srv.CreateGroup(ctx, bob, "G", "", []string{alice, carol})
	if err != nil {
		t.Fatal(err)
	}
	carolMsg, err := srv.SendGroupText(ctx, carol, gid, "from Carol", nil)
	if err != nil {
		t.Fatal(err)
	}
	bobMsg, err := srv.SendGroupText(ctx, bob, gid, "from Bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ from, emoji string }{{alice, "👍"}, {carol, "😂"}, {alice, "🎉"}} {
		if _, err = srv.SendReaction(ctx, r.from, gid, bob, bobMsg, r.emoji); err != nil {
			t.Fatal(err)
		}
	}
	if _, err = srv.SendRevoke(ctx, carol, gid, bob, bobMsg); !errors.Is(err, wasim.ErrNotAllowed) {
		t.Fatalf("member revoking another's message: %v", err)
	}
	if _, err = srv.SendRevoke(ctx, bob, gid, carol, carolMsg); err != nil {
		t.Fatalf("admin revoke: %v", err)
	}
	conv := srv.Conversation(alice, gid)
	if e := entry(t, conv, carolMsg); !e.Revoked {
		t.Fatalf("Carol's message after the admin's revoke: %+v", e)
	}
	if e := entry(t, conv, bobMsg); e.Revoked || len(e.Reactions) != 2 || e.Reactions[alice] != "🎉" || e.Reactions[carol] != "😂" {
		t.Fatalf("Bob's message: %+v", e)
	}
}

// TestControlConversation drives a conversation through the control API:
// a contact sends, edits, reacts, revokes, types and goes online; the
// conversation route shows what the other side saw.
func TestControlConversation(t *testing.T) {
	srv, clk := startConvServer(t)
	mustAccount(t, srv, "15550060001", "Alice")
	mustAccount(t, srv, "15550060002", "Bob")
	hs := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(hs.Close)
	call := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, hs.URL+path, bytes.NewReader(raw))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, data, want)
		}
		var out map[string]any
		_ = json.Unmarshal(data, &out)
		return out
	}
	alice, bob := "15550060001", "15550060002"
	first := call("POST", "/send", map[string]string{"from": bob, "to": alice, "text": "hello"}, 200)["id"].(string)
	second := call("POST", "/send", map[string]string{"from": alice, "to": bob, "text": "hi Bob"}, 200)["id"].(string)
	call("POST", "/reply", map[string]string{"from": bob, "to": alice, "text": "how are you", "quoted_id": second, "quoted_sender": alice, "quoted_text": "hi Bob"}, 200)
	call("POST", "/edit", map[string]string{"from": bob, "to": alice, "id": first, "text": "hello!"}, 200)
	call("POST", "/edit", map[string]string{"from": bob, "to": alice, "id": second, "text": "not mine"}, 422)
	call("POST", "/react", map[string]string{"from": bob, "to": alice, "target_sender": alice, "id": second, "emoji": "👋"}, 200)
	call("POST", "/revoke", map[string]string{"from": bob, "to": alice, "target_sender": alice, "id": second}, 422)
	call("POST", "/typing", map[string]string{"from": bob, "to": alice, "state": "composing"}, 204)
	call("POST", "/typing", map[string]string{"from": bob, "to": alice, "state": "dancing"}, 422)
	if n := call("POST", "/presence", map[string]any{"phone": bob, "online": true}, 200)["notified"]; n != float64(0) {
		t.Errorf("presence told %v clients", n)
	}
	clk.advance(wasim.EditWindow + time.Second)
	call("POST", "/edit", map[string]string{"from": bob, "to": alice, "id": first, "text": "too late"}, 422)
	call("POST", "/revoke", map[string]string{"from": bob, "to": alice, "target_sender": bob, "id": first}, 200)

	req, _ := http.NewRequest("GET", hs.URL+"/conversation?phone="+alice+"&chat="+bob, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []struct {
		ID        string            `json:"id"`
		Text      string            `json:"text"`
		Edited    bool              `json:"edited"`
		Revoked   bool              `json:"revoked"`
		ReplyTo   string            `json:"reply_to"`
		Reactions map[string]string `json:"reactions"`
	}
	if err = json.NewDecoder(resp.Body).Decode(&entries); err != nil || len(entries) != 3 {
		t.Fatalf("conversation: %+v, %v", entries, err)
	}
	if e := entries[0]; e.ID != first || !e.Revoked || e.Text != "" || !e.Edited {
		t.Errorf("first: %+v", e)
	}
	if e := entries[1]; e.ID != second || e.Reactions[bob] != "👋" {
		t.Errorf("second: %+v", e)
	}
	if e := entries[2]; e.ReplyTo != second || e.Text != "how are you" {
		t.Errorf("reply: %+v", e)
	}
	if got := call("GET", "/client-presence?phone="+alice+"&contact="+bob, nil, 200); got["available"] != false || got["subscribed"] != false {
		t.Errorf("client presence %v", got)
	}
}
