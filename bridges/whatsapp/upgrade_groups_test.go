package whatsapp

import (
	"context"
	"testing"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/internal/dbtest"
)

const (
	fxGroup = "whatsapp.g-120363000000000077"
	fxAlice = "whatsapp.15550001111"
	fxBob   = "whatsapp.15550002222"
	fxCarol = "whatsapp.15550003333"
)

// loadPerLoginGroupFixture writes what the release before shared group
// portals stored for one group seen by two staff logins: a portal (and a
// room) per login, the same message mapped in both, a message and a
// reaction only one of them has, and a direct chat that must not change.
func loadPerLoginGroupFixture(t *testing.T, db *dbutil.Database) {
	t.Helper()
	ctx := context.Background()
	const br = "passerelle-test"
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, q, args...); err != nil {
			t.Fatalf("fixture %q: %v", q, err)
		}
	}
	for _, u := range []struct{ mxid, login string }{{"@alice:test", fxAlice}, {"@bob:test", fxBob}} {
		exec(`INSERT INTO "user" (bridge_id, mxid) VALUES ($1, $2)`, br, u.mxid)
		exec(`INSERT INTO user_login (bridge_id, user_mxid, id, remote_name, metadata) VALUES ($1, $2, $3, '', '{}')`, br, u.mxid, u.login)
	}
	exec(`INSERT INTO ghost (bridge_id, id, name, avatar_id, avatar_hash, avatar_mxc, name_set, avatar_set, contact_info_set, is_bot, identifiers, metadata)
		VALUES ($1, $2, 'Carol', '', '', '', true, false, false, false, '[]', '{}')`, br, fxCarol)
	portal := func(id, receiver, mxid, name string) {
		exec(`INSERT INTO portal (bridge_id, id, receiver, mxid, name, topic, avatar_id, avatar_hash, avatar_mxc,
			name_set, avatar_set, topic_set, in_space, room_type, metadata)
			VALUES ($1, $2, $3, $4, $5, '', '', '', '', true, false, false, false, '', '{}')`, br, id, receiver, mxid, name)
	}
	portal(fxGroup, fxAlice, "!ga:test", "Project")
	portal(fxGroup, fxBob, "!gb:test", "Project")
	portal(fxCarol, fxAlice, "!dm:test", "Carol")
	message := func(id, roomID, receiver, mxid string) {
		exec(`INSERT INTO message (bridge_id, id, part_id, mxid, room_id, room_receiver, sender_id, sender_mxid, timestamp, edit_count, metadata)
			VALUES ($1, $2, '', $3, $4, $5, $6, '', 1700000000000000000, 0, '{}')`, br, id, mxid, roomID, receiver, fxCarol)
	}
	message(fxGroup+".15550003333.AAA", fxGroup, fxAlice, "$a1")
	message(fxGroup+".15550003333.BBB", fxGroup, fxAlice, "$a2")
	message(fxGroup+".15550003333.AAA", fxGroup, fxBob, "$b1")
	message(fxGroup+".15550003333.CCC", fxGroup, fxBob, "$b3")
	message(fxCarol+".15550003333.DDD", fxCarol, fxAlice, "$d1")
	exec(`INSERT INTO reaction (bridge_id, message_id, message_part_id, sender_id, emoji_id, room_id, room_receiver, mxid, timestamp, emoji, metadata)
		VALUES ($1, $2, '', $3, 'x', $4, $5, '$r3', 1700000000000000000, 'x', '{}')`, br, fxGroup+".15550003333.CCC", fxCarol, fxGroup, fxBob)
	for _, u := range []struct{ mxid, login string }{{"@alice:test", fxAlice}, {"@bob:test", fxBob}} {
		exec(`INSERT INTO user_portal (bridge_id, user_mxid, login_id, portal_id, portal_receiver, in_space, preferred)
			VALUES ($1, $2, $3, $4, $3, false, false)`, br, u.mxid, u.login, fxGroup)
	}
}

// The numbered upgrade merges the per-login portals of a group into one
// shared portal without losing a message mapping, and the extra room is
// tombstoned to the shared one; direct chats keep their receiver.
func TestUpgradeMergesPerLoginGroupPortals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		srv := startSim(t)
		db := b.Open(t)
		// bridgev2's schema, as the release had it (no bridge running: its
		// background work would outlive the test).
		if err := database.New("passerelle-test", database.MetaTypes{}, db).Upgrade(context.Background()); err != nil {
			t.Fatal(err)
		}
		loadPerLoginGroupFixture(t, db)

		tb := startBridge(t, srv, db)
		ctx := ctxFor(t)
		// bridgev2's post-start work (bridge info) ends by writing its
		// version: wait for it, so that it does not outlive the test.
		t.Cleanup(func() {
			if !tb.mx.Eventually(waitLong, func() bool { return tb.br.DB.KV.Get(ctx, database.KeyBridgeInfoVersion) != "" }) {
				t.Error("bridgev2's post-start work never finished")
			}
		})
		portal, err := tb.br.GetExistingPortalByKey(ctx, networkid.PortalKey{ID: fxGroup})
		if err != nil || portal == nil || portal.Receiver != "" || portal.MXID != "!ga:test" {
			t.Fatalf("shared portal %+v, %v", portal, err)
		}
		if old, err := tb.br.DB.Portal.GetByKey(ctx, networkid.PortalKey{ID: fxGroup, Receiver: fxBob}); err != nil || old != nil {
			t.Fatalf("per-login portal left: %+v, %v", old, err)
		}
		for id, mxid := range map[string]string{"AAA": "$a1", "BBB": "$a2", "CCC": "$b3"} {
			msg, err := tb.br.DB.Message.GetFirstPartByID(ctx, "", networkid.MessageID(fxGroup+".15550003333."+id))
			if err != nil || msg == nil || msg.Room.Receiver != "" || string(msg.MXID) != mxid {
				t.Errorf("message %s after the upgrade: %+v, %v", id, msg, err)
			}
		}
		if dup, err := tb.br.DB.Message.GetPartByMXID(ctx, "$b1"); err != nil || dup != nil {
			t.Errorf("the second copy of a message is still mapped: %+v, %v", dup, err)
		}
		if r, err := tb.br.DB.Reaction.GetByMXID(ctx, "$r3"); err != nil || r == nil || r.Room.Receiver != "" {
			t.Errorf("reaction after the upgrade: %+v, %v", r, err)
		}
		dm, err := tb.br.DB.Message.GetPartByMXID(ctx, "$d1")
		if err != nil || dm == nil || dm.Room.Receiver != fxAlice {
			t.Errorf("direct chat message after the upgrade: %+v, %v", dm, err)
		}
		if p, err := tb.br.DB.Portal.GetByKey(ctx, networkid.PortalKey{ID: fxCarol, Receiver: fxAlice}); err != nil || p == nil || p.MXID != "!dm:test" {
			t.Errorf("direct chat portal after the upgrade: %+v, %v", p, err)
		}
		ups, err := tb.br.DB.UserPortal.GetAllInPortal(ctx, portal.PortalKey)
		if err != nil || len(ups) != 2 {
			t.Fatalf("logins in the shared portal: %+v, %v", ups, err)
		}
		tomb := tb.mx.State("!gb:test", event.StateTombstone, "")
		if tomb == nil || tomb.Parsed.(*event.TombstoneEventContent).ReplacementRoom != "!ga:test" {
			t.Fatalf("extra room not tombstoned to the shared one: %+v", tomb)
		}
		if !isIn(tb.mx.Members("!ga:test")[bobUser]) {
			t.Errorf("Bob not invited to the shared room: %v", tb.mx.Members("!ga:test"))
		}
		var left int
		if err = db.QueryRow(ctx, `SELECT COUNT(*) FROM whatsapp_merged_room`).Scan(&left); err != nil || left != 0 {
			t.Errorf("merged rooms left to tombstone: %d, %v", left, err)
		}
	})
}
