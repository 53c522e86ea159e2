package wasim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// An unmodified whatsmeow client reads newsletters through their real
// wire format: GraphQL (w:mex) metadata, plaintext posts, edits, mex
// follow/unfollow notifications and the newsletter IQs.
func TestNewsletters(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550007777", "Alice")
	owner := mustAccount(t, srv, "15550008888", "Owner")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)

	nid, err := srv.CreateNewsletter(ctx, owner.Phone, "City news", "What happens in town")
	if err != nil {
		t.Fatal(err)
	}
	jid := types.NewJID(nid[:len(nid)-len("@newsletter")], types.NewsletterServer)
	if list, err := c.GetSubscribedNewsletters(ctx); err != nil || len(list) != 0 {
		t.Fatalf("subscribed before following: %v, %v", list, err)
	}
	if err = srv.FollowNewsletter(ctx, alice.Phone, nid); err != nil {
		t.Fatal(err)
	}
	joined := waitEvent[*events.NewsletterJoin](t, c, nil)
	if joined.ID != jid || joined.ThreadMeta.Name.Text != "City news" || joined.ViewerMeta == nil || joined.ViewerMeta.Role != types.NewsletterRoleSubscriber {
		t.Fatalf("join event %+v", joined)
	}
	list, err := c.GetSubscribedNewsletters(ctx)
	if err != nil || len(list) != 1 || list[0].ID != jid || list[0].ThreadMeta.Description.Text != "What happens in town" || list[0].State.Type != types.NewsletterStateActive {
		t.Fatalf("subscribed: %+v, %v", list, err)
	}
	if err = srv.SetNewsletterPicture(ctx, nid, []byte("jpeg")); err != nil {
		t.Fatal(err)
	}
	info, err := c.GetNewsletterInfo(ctx, jid)
	if err != nil || info.ThreadMeta.Picture == nil || info.ThreadMeta.Picture.ID != srv.PictureID(nid) || info.ThreadMeta.SubscriberCount != 1 {
		t.Fatalf("info %+v, %v", info, err)
	}
	if _, err = c.GetNewsletterInfo(ctx, types.NewJID("1", types.NewsletterServer)); err == nil {
		t.Fatal("an unknown newsletter has info")
	}

	id, err := srv.PostNewsletterText(ctx, nid, "road works on Monday")
	if err != nil {
		t.Fatal(err)
	}
	post := waitEvent[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id })
	if post.Info.Chat != jid || post.Info.Sender != jid || post.Info.IsFromMe || post.Message.GetConversation() != "road works on Monday" || post.Info.ServerID == 0 {
		t.Fatalf("post %+v: %v", post.Info, post.Message)
	}
	if err = srv.EditNewsletterPost(ctx, nid, id, "road works on Tuesday"); err != nil {
		t.Fatal(err)
	}
	edit := waitEvent[*events.Message](t, c, func(m *events.Message) bool { return m.Info.ID == id && m.NewsletterMeta != nil })
	if edit.Message.GetConversation() != "road works on Tuesday" || edit.NewsletterMeta.EditTS.IsZero() || edit.Info.Edit != types.EditAttributeAdminEdit {
		t.Fatalf("edit %+v %+v: %v", edit.Info, edit.NewsletterMeta, edit.Message)
	}
	msgs, err := c.GetNewsletterMessages(ctx, jid, &whatsmeow.GetNewsletterMessagesParams{Count: 10})
	if err != nil || len(msgs) != 1 || msgs[0].MessageID != id || msgs[0].Message.GetConversation() != "road works on Tuesday" {
		t.Fatalf("messages %+v, %v", msgs, err)
	}
	if dur, err := c.NewsletterSubscribeLiveUpdates(ctx, jid); err != nil || dur <= 0 {
		t.Fatalf("live updates %v, %v", dur, err)
	}

	if err = srv.UnfollowNewsletter(ctx, alice.Phone, nid); err != nil {
		t.Fatal(err)
	}
	left := waitEvent[*events.NewsletterLeave](t, c, nil)
	if left.ID != jid {
		t.Fatalf("leave event %+v", left)
	}
	// Following from the client itself.
	if err = c.FollowNewsletter(ctx, jid); err != nil {
		t.Fatal(err)
	}
	if n, _ := srv.NewsletterInfo(nid); len(n.Followers) != 1 || n.Followers[0] != alice.Phone {
		t.Fatalf("followers after FollowNewsletter: %v", n.Followers)
	}
	if err = srv.UnfollowNewsletter(ctx, owner.Phone, nid); err != wasim.ErrNotFollower {
		t.Fatalf("unfollow by a non-follower: %v", err)
	}
}

// The control API creates, follows, posts to and reads back a newsletter,
// and creates a community.
func TestControlNewsletters(t *testing.T) {
	srv := startServer(t)
	for _, p := range []string{"15550060001", "15550060002"} {
		mustAccount(t, srv, p, p)
	}
	hs := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(hs.Close)
	post := func(path string, body any, out any) int {
		t.Helper()
		raw, _ := json.Marshal(body)
		resp, err := http.Post(hs.URL+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	var created struct{ JID string }
	if code := post("/newsletters", map[string]any{"owner": "15550060001", "name": "News", "description": "Daily"}, &created); code != http.StatusCreated || created.JID == "" {
		t.Fatalf("create: %d %+v", code, created)
	}
	if code := post("/newsletters/unfollow", map[string]any{"phone": "15550060002", "newsletter": created.JID}, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("unfollow by a non-follower: %d", code)
	}
	if code := post("/newsletters/follow", map[string]any{"phone": "15550060002", "newsletter": created.JID}, nil); code != http.StatusNoContent {
		t.Fatalf("follow: %d", code)
	}
	var posted struct{ ID string }
	if code := post("/newsletters/post", map[string]any{"newsletter": created.JID, "text": "hello"}, &posted); code != http.StatusCreated || posted.ID == "" {
		t.Fatalf("post: %d %+v", code, posted)
	}
	if code := post("/newsletters/post", map[string]any{"newsletter": "1@newsletter", "text": "x"}, nil); code != http.StatusNotFound {
		t.Fatalf("post to an unknown newsletter: %d", code)
	}
	resp, err := http.Get(hs.URL + "/newsletters/" + created.JID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n struct {
		Name, Description string
		Followers         []string
	}
	if err = json.NewDecoder(resp.Body).Decode(&n); err != nil || n.Name != "News" || n.Description != "Daily" || len(n.Followers) != 1 {
		t.Fatalf("newsletter read back: %+v, %v", n, err)
	}
	var community struct{ JID, Announcements string }
	if code := post("/communities", map[string]any{"owner": "15550060001", "name": "Block", "participants": []string{"15550060002"}}, &community); code != http.StatusCreated || community.Announcements == "" {
		t.Fatalf("community: %d %+v", code, community)
	}
	if g, ok := srv.GroupInfo(community.Announcements); !ok || !g.DefaultSub || g.Parent.String() != community.JID {
		t.Fatalf("announcement group %+v", g)
	}
}
