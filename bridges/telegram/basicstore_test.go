package telegram

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// TestBasicStore: two accounts' copies of basic-group messages map to the
// ID the first claim gave, both ways; a sender's two messages with the same
// text in the same second stay two; rows past the retention go.
func TestBasicStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		st := openStore(t, b)
		now := time.Unix(1_800_000_000, 0)
		const chat, alice, carol = 900, 1, 2
		fp := basicFingerprintOf(chat, 7, 1000, "same text")
		// alice sees the message twice (IDs 10 and 11), carol too (20, 21).
		var aliceFP, carolFP []string
		for _, id := range []int{10, 11} {
			got, err := st.RecordBasicCopy(ctx, alice, id, chat, fp, now)
			if err != nil {
				t.Fatal(err)
			}
			aliceFP = append(aliceFP, got)
		}
		for _, id := range []int{20, 21} {
			got, err := st.RecordBasicCopy(ctx, carol, id, chat, fp, now)
			if err != nil {
				t.Fatal(err)
			}
			carolFP = append(carolFP, got)
		}
		if aliceFP[0] == aliceFP[1] || aliceFP[0] != carolFP[0] || aliceFP[1] != carolFP[1] {
			t.Fatalf("fingerprints alice %v carol %v", aliceFP, carolFP)
		}
		if again, _ := st.RecordBasicCopy(ctx, alice, 11, chat, fp, now); again != aliceFP[1] {
			t.Errorf("recording a copy again gave %q, want %q", again, aliceFP[1])
		}
		// alice claims both first; carol's claims give alice's IDs.
		for i, fp := range aliceFP {
			id := networkid.MessageID([]string{"telegram.u1.10", "telegram.u1.11"}[i])
			if got, matrix, err := st.ClaimBasicMessage(ctx, chat, fp, id, i == 1, now); err != nil || got != id || matrix != (i == 1) {
				t.Fatalf("alice's claim %d: %q %v %v", i, got, matrix, err)
			}
			if got, _, _ := st.ClaimBasicMessage(ctx, chat, carolFP[i], networkid.MessageID("telegram.u2.2"+string(rune('0'+i))), false, now); got != id {
				t.Errorf("carol's claim %d: %q, want %q", i, got, id)
			}
		}
		if id, c, _ := st.BasicCanonical(ctx, carol, 21); id != "telegram.u1.11" || c != chat {
			t.Errorf("carol's 21 is %q in %d", id, c)
		}
		if own, _ := st.BasicOwnID(ctx, "telegram.u1.11", carol); own != 21 {
			t.Errorf("carol's own ID of telegram.u1.11 is %d, want 21", own)
		}
		if own, _ := st.BasicOwnID(ctx, "telegram.u1.11", 3); own != 0 {
			t.Errorf("an account without a copy has ID %d", own)
		}
		// Past the retention, everything goes.
		if err := st.PruneBasic(ctx, now.Add(basicRetention-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if id, _, _ := st.BasicCanonical(ctx, carol, 21); id == "" {
			t.Error("pruned before the retention")
		}
		if err := st.PruneBasic(ctx, now.Add(basicRetention+time.Hour)); err != nil {
			t.Fatal(err)
		}
		if id, _, _ := st.BasicCanonical(ctx, carol, 21); id != "" {
			t.Error("kept past the retention")
		}
	})
}
