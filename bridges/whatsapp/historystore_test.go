package whatsapp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/passerelle/passerelle/bridges/whatsapp/upgrades"
	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestHistoryStore: a chat keeps its latest messages up to the limit and
// none before the cutoff, in order; replayed messages go; the chats at
// login are the most recent; a login's rows go with it. On SQLite and
// PostgreSQL.
func TestHistoryStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		db := b.Open(t)
		if err := database.New("passerelle-test", database.MetaTypes{}, db).Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Child(upgrades.VersionTable, upgrades.Table, dbutil.NoopLogger).Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		st := &historyStore{db: db, bridgeID: "passerelle-test"}
		base := time.Unix(1_800_000_000, 0)
		msg := func(i int) storedHistory {
			id := fmt.Sprintf("M%03d", i)
			return storedHistory{ID: id, Timestamp: base.Add(time.Duration(i) * time.Minute),
				Info: &waWeb.WebMessageInfo{Key: &waCommon.MessageKey{ID: proto.String(id)}, MessageTimestamp: proto.Uint64(uint64(i))}}
		}
		var batch []storedHistory
		for i := range 30 {
			batch = append(batch, msg(i))
		}
		const login, chat = "whatsapp.1", "2@s.whatsapp.net"
		// Limit 20, cutoff at message 12: 12..29 stay (18).
		if err := st.put(ctx, login, chat, batch, 20, base.Add(12*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := st.messages(ctx, login, chat, time.Time{})
		if err != nil || len(got) != 18 || got[0].ID != "M012" || got[17].ID != "M029" || got[17].Info.GetKey().GetID() != "M029" {
			t.Fatalf("stored %d (%v)", len(got), err)
		}
		// Limit 10 on a second put: the latest 10.
		if err = st.put(ctx, login, chat, batch[:5], 10, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if got, _ = st.messages(ctx, login, chat, time.Time{}); len(got) != 10 || got[0].ID != "M020" {
			t.Fatalf("after a second put: %d, first %v", len(got), got)
		}
		if after, _ := st.messages(ctx, login, chat, base.Add(25*time.Minute)); len(after) != 4 || after[0].ID != "M026" {
			t.Fatalf("after message 25: %d", len(after))
		}
		if err = st.forget(ctx, login, chat, base.Add(27*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ = st.messages(ctx, login, chat, time.Time{}); len(got) != 2 || got[0].ID != "M028" {
			t.Fatalf("after forgetting up to 27: %d", len(got))
		}
		for i, c := range []string{"a", "b", "c"} {
			if err = st.touchChat(ctx, login, c, base.Add(time.Duration(i)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		// An older activity does not move a chat back.
		if err = st.touchChat(ctx, login, "c", base); err != nil {
			t.Fatal(err)
		}
		if chats, err := st.recentChats(ctx, login, 2); err != nil || len(chats) != 2 || chats[0] != "c" || chats[1] != "b" {
			t.Fatalf("recent chats %v, %v", chats, err)
		}
		if err = st.forgetLogin(ctx, login); err != nil {
			t.Fatal(err)
		}
		if chats, _ := st.recentChats(ctx, login, 5); len(chats) != 0 {
			t.Fatalf("chats left after the login went: %v", chats)
		}
		if got, _ = st.messages(ctx, login, chat, time.Time{}); len(got) != 0 {
			t.Fatalf("messages left after the login went: %d", len(got))
		}
	})
}
