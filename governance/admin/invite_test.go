package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/fakematrix"
)

const joinLink = "https://register.example.org/join"

func inviteConfig(cfg *gate.Config) {
	cfg.Migration.Invitation = migration.InvitationTemplate{Language: "en",
		Text: "Hi {contact_name}! {staff_name} here: we are moving to Matrix. Join at {join_link}", JoinLink: joinLink}
}

// TestInviteToMatrix: with the real Telegram connector, a staff member runs
// invite-to-matrix in their chat with a contact: the contact receives the
// organisation's invitation on Telegram with the join link, the staff
// member sees a notice in the chat, the contact is "invited" and the audit
// log says so (never the text). A second invitation within
// migration.invite_period is refused with the date of the next one; after
// the period it goes. A contact an outbound deny rule refuses gets nothing
// (clear reply), a linked contact neither; another staff member cannot
// invite through Alice's chat, an admin can; bad input gets clear errors.
func TestInviteToMatrix(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b, inviteConfig)
		r := e.start()
		e.loginStaff(r)
		e.send(e.bob, "hello from bob")
		portal := e.waitBodies(e.bob, "hello from bob")[0].RoomID

		out := r.command(t, e, staffMXID, portal, "invite-to-matrix")
		want := "Hi Bob Outside! Alice Staff here: we are moving to Matrix. Join at " + joinLink
		if !e.mx.Eventually(10*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 1 }) {
			t.Fatalf("Bob got nothing on Telegram; reply %q", out)
		}
		if got := e.sentBy(e.alice, e.bob); got[0] != want {
			t.Errorf("Bob got %q, want %q", got, want)
		}
		notice := e.waitNotice(portal, "An invitation to Matrix was sent to Bob Outside on Telegram")
		if !strings.Contains(notice.Content.Body, joinLink) || notice.Sender != fakematrix.BotMXID {
			t.Errorf("staff notice: %+v %q", notice, notice.Content.Body)
		}
		bobIdent := migration.Identity{Network: "telegram", Contact: r.gv.Contacts.Key(tgid.MakeUserID(e.bob.ID))}
		if st, _, _ := r.gv.Migration.Status(ctx, bobIdent); st != migration.StatusInvited {
			t.Errorf("Bob's status: %s", st)
		}
		entries, err := r.gv.Audit.List(ctx, audit.Filter{Actions: []audit.Action{migration.ActionInvitationSent}})
		if err != nil || len(entries) != 1 || entries[0].Actor != string(staffMXID) || entries[0].Staff != staffMXID || entries[0].Contact != bobIdent.Contact ||
			strings.Contains(string(entries[0].Details), "Matrix") {
			t.Errorf("invitation_sent entries: %+v, %v", entries, err)
		}

		// Again within the period, after a restart: refused, with the date
		// of the next one.
		next := e.clk.Now().Add(migration.DefaultInvitePeriod).UTC().Format("2006-01-02 15:04")
		e.clk.Advance(24 * time.Hour)
		r.stop()
		r = e.start()
		e.waitConnected()
		out = r.command(t, e, staffMXID, portal, "invite-to-matrix")
		if !strings.Contains(out, "The invitation was not sent") || !strings.Contains(out, "next invitation is allowed from "+next) {
			t.Errorf("second invitation within the period: %q", out)
		}
		out = r.command(t, e, adminMXID, e.adminRoom(), "invite-to-matrix @bob_outside "+string(staffMXID))
		if !strings.Contains(out, "next invitation is allowed from "+next) {
			t.Errorf("admin's second invitation within the period: %q", out)
		}

		// Another staff member may not use Alice's chat; bad input.
		for cmd, want := range map[string]string{
			"invite-to-matrix @bob_outside " + string(staffMXID): "Only the organisation's governance admins",
			"invite-to-matrix @nobody_here":                      "not in the contact registry",
			"invite-to-matrix @bob_outside":                      "has no logged-in Telegram chat with them",
			"invite-to-matrix @bob_outside not-a-user":           "not a valid Matrix user ID",
		} {
			if out = r.command(t, e, otherMXID, e.adminRoom(), cmd); !strings.Contains(out, want) {
				t.Errorf("%s by another staff member: %q, want %q", cmd, out, want)
			}
		}
		if out = r.command(t, e, otherMXID, portal, "invite-to-matrix"); !strings.Contains(out, "this is not your chat") {
			t.Errorf("invite-to-matrix in someone else's chat: %q", out)
		}

		// After the period, an admin invites Bob through Alice's chat.
		e.clk.Advance(migration.DefaultInvitePeriod)
		out = r.command(t, e, adminMXID, e.adminRoom(), "invite-to-matrix @bob_outside "+string(staffMXID))
		if !strings.Contains(out, "The invitation to Matrix was sent to Bob Outside on Telegram through "+string(staffMXID)) {
			t.Errorf("admin's invitation after the period: %q", out)
		}
		if !e.mx.Eventually(10*time.Second, func() bool { return len(e.sentBy(e.alice, e.bob)) == 2 }) {
			t.Fatalf("Bob got %q", e.sentBy(e.alice, e.bob))
		}
		e.waitNotice(portal, "on Telegram at "+string(adminMXID)+"'s request")

		// An outbound deny rule: Carol is refused, nothing sent.
		e.send(e.carol, "carol here")
		carolPortal := e.waitBodies(e.carol, "carol here")[0].RoomID
		if out = r.command(t, e, adminMXID, e.adminRoom(), "gov-deny-rule telegram_username=carol_press direction=outbound comment=press embargo"); !strings.Contains(out, "Added") {
			t.Fatalf("gov-deny-rule: %q", out)
		}
		out = r.command(t, e, staffMXID, carolPortal, "invite-to-matrix")
		if !strings.Contains(out, "The invitation was not sent: the organisation's policy refuses this contact") {
			t.Errorf("invitation of a refused contact: %q", out)
		}
		// A linked contact is not invited.
		r.command(t, e, adminMXID, e.adminRoom(), "gov-remove-rule 1")
		if out = r.command(t, e, adminMXID, e.adminRoom(), "gov-directory add @carol_press @carol:example.org"); !strings.Contains(out, "linked") {
			t.Fatalf("gov-directory add: %q", out)
		}
		out = r.command(t, e, staffMXID, carolPortal, "invite-to-matrix")
		if !strings.Contains(out, "already has a Matrix account") {
			t.Errorf("invitation of a linked contact: %q", out)
		}
		e.send(e.carol, "still here")
		e.waitBodies(e.carol, "carol here", "still here")
		if got := e.sentBy(e.alice, e.carol); len(got) != 0 {
			t.Errorf("Carol got %q", got)
		}

		// The API.
		h := r.gv.APIHandler()
		rec := apiSend(h, http.MethodPost, "migration/invite", `{"identity":"@bob_outside","staff":"`+string(staffMXID)+`"}`)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "next invitation is allowed") {
			t.Errorf("POST migration/invite within the period: %d %s", rec.Code, rec.Body)
		}
		rec = apiSend(h, http.MethodPost, "migration/invite", `{"identity":"@nobody_here","staff":"`+string(staffMXID)+`"}`)
		if rec.Code != http.StatusNotFound {
			t.Errorf("POST migration/invite of an unknown contact: %d %s", rec.Code, rec.Body)
		}
	})
}
