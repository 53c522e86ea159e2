package wasim_test

import (
	"slices"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Group changes made on WhatsApp reach an unmodified whatsmeow client as
// the events it parses from w:gp2 and picture notifications (subject,
// description, members added, removed and leaving, promotions, announce and
// locked, pictures); a community arrives as its parent group and its
// announcement group linked to it; a group joins from its invite link.
func TestGroupNotificationsCommunitiesInvites(t *testing.T) {
	srv := startServer(t)
	alice := mustAccount(t, srv, "15550050001", "Alice")
	bob := mustAccount(t, srv, "15550050002", "Bob")
	carol := mustAccount(t, srv, "15550050003", "Carol")
	c := pair(t, srv, alice.Phone)
	ctx := ctxT(t)

	gid, err := srv.CreateGroup(ctx, carol.Phone, "Board", "", []string{alice.Phone})
	if err != nil {
		t.Fatal(err)
	}
	gjid, _ := types.ParseJID(gid)
	waitEvent[*events.JoinedGroup](t, c, func(e *events.JoinedGroup) bool { return e.JID == gjid })
	info := func(pred func(*events.GroupInfo) bool) *events.GroupInfo {
		t.Helper()
		return waitEvent[*events.GroupInfo](t, c, func(e *events.GroupInfo) bool { return e.JID == gjid && pred(e) })
	}
	if err = srv.SetGroupSubject(ctx, carol.Phone, gid, "Board 2"); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return e.Name != nil }); e.Name.Name != "Board 2" || e.Sender == nil || e.Sender.User != carol.Phone {
		t.Fatalf("subject change %+v", e)
	}
	if err = srv.SetGroupDescription(ctx, carol.Phone, gid, "Agenda"); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return e.Topic != nil }); e.Topic.Topic != "Agenda" {
		t.Fatalf("description change %+v", e.Topic)
	}
	if err = srv.ChangeGroupParticipants(ctx, carol.Phone, gid, "add", []string{bob.Phone}); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return len(e.Join) > 0 }); e.Join[0].User != bob.Phone {
		t.Fatalf("add %+v", e.Join)
	}
	if err = srv.ChangeGroupParticipants(ctx, carol.Phone, gid, "promote", []string{bob.Phone}); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return len(e.Promote) > 0 }); e.Promote[0].User != bob.Phone {
		t.Fatalf("promote %+v", e.Promote)
	}
	if err = srv.ChangeGroupParticipants(ctx, carol.Phone, gid, "demote", []string{bob.Phone}); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return len(e.Demote) > 0 }); e.Demote[0].User != bob.Phone {
		t.Fatalf("demote %+v", e.Demote)
	}
	if err = srv.SetGroupAnnounce(ctx, carol.Phone, gid, true); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return e.Announce != nil }); !e.Announce.IsAnnounce {
		t.Fatalf("announce %+v", e.Announce)
	}
	if err = srv.SetGroupLocked(ctx, carol.Phone, gid, true); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return e.Locked != nil }); !e.Locked.IsLocked {
		t.Fatalf("locked %+v", e.Locked)
	}
	if err = srv.SetGroupPicture(ctx, carol.Phone, gid, []byte("jpeg")); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent[*events.Picture](t, c, func(e *events.Picture) bool { return e.JID == gjid }); e.Remove || e.PictureID != srv.PictureID(gid) {
		t.Fatalf("picture %+v", e)
	}
	if err = srv.RemoveFromGroup(ctx, carol.Phone, gid, []string{bob.Phone}); err != nil {
		t.Fatal(err)
	}
	if e := info(func(e *events.GroupInfo) bool { return len(e.Leave) > 0 }); e.Leave[0].User != bob.Phone || e.Sender == nil || e.Sender.User != carol.Phone {
		t.Fatalf("removal %+v by %v", e.Leave, e.Sender)
	}
	gi, err := c.GetGroupInfo(ctx, gjid)
	if err != nil || gi.Name != "Board 2" || gi.Topic != "Agenda" || !gi.IsAnnounce || !gi.IsLocked || len(gi.Participants) != 2 {
		t.Fatalf("group info after the changes %+v, %v", gi, err)
	}

	// A community: its parent group, then its announcement group linked to it.
	community, announcements, err := srv.CreateCommunity(ctx, carol.Phone, "Neighbours", []string{alice.Phone})
	if err != nil {
		t.Fatal(err)
	}
	cjid, _ := types.ParseJID(community)
	ajid, _ := types.ParseJID(announcements)
	parent := waitEvent[*events.JoinedGroup](t, c, func(e *events.JoinedGroup) bool { return e.JID == cjid })
	sub := waitEvent[*events.JoinedGroup](t, c, func(e *events.JoinedGroup) bool { return e.JID == ajid })
	if !parent.IsParent || parent.Name != "Neighbours" {
		t.Fatalf("community parent %+v", parent.GroupInfo)
	}
	if sub.IsParent || sub.LinkedParentJID != cjid || !sub.IsDefaultSubGroup || !sub.IsAnnounce {
		t.Fatalf("announcement group %+v", sub.GroupInfo)
	}

	// An invite link: Bob's client is not simulated, so Alice joins a group
	// of Bob's from its link.
	other, err := srv.CreateGroup(ctx, bob.Phone, "Open house", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	link, err := srv.GroupInviteLink(other)
	if err != nil {
		t.Fatal(err)
	}
	preview, err := c.GetGroupInfoFromLink(ctx, link)
	if err != nil || preview.Name != "Open house" {
		t.Fatalf("link preview %+v, %v", preview, err)
	}
	joined, err := c.JoinGroupWithLink(ctx, link)
	if err != nil || joined.String() != other {
		t.Fatalf("JoinGroupWithLink = %s, %v", joined, err)
	}
	if g, _ := srv.GroupInfo(other); !slices.Contains(g.Members, alice.Phone) {
		t.Fatalf("Alice not in the group after joining from its link: %v", g.Members)
	}
}
