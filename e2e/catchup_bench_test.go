package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// catchUpChats is how many chats share a BenchmarkCatchUpGap gap.
const catchUpChats = 20

// benchGap is the size of BenchmarkCatchUpGap's gap: 10,000 messages, or
// PASSERELLE_BENCH_GAP (scripts/test runs a short one).
func benchGap(b *testing.B) int {
	if v := os.Getenv("PASSERELLE_BENCH_GAP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < catchUpChats {
			b.Fatalf("PASSERELLE_BENCH_GAP=%q: want a number of messages of at least %d", v, catchUpChats)
		}
		return n
	}
	return 10000
}

// BenchmarkCatchUpGap measures the catching up after downtime: the gateway
// is stopped while 20 Telegram contacts write a gap of messages (10,000 by
// default) to a staff member whose portals exist; it is started again, and
// the benchmark waits until the last message of every chat is in the staff
// member's encrypted rooms on Dendrite. It reports the throughput into
// Dendrite (messages per second from the start of the gateway) and the
// gateway process's peak resident memory over that run.
//
//	PASSERELLE_BENCH_GAP=10000 go test -tags goolm -run '^$' -bench CatchUpGap -benchtime 1x -timeout 60m ./e2e/
func BenchmarkCatchUpGap(b *testing.B) {
	gap := benchGap(b)
	tg := NewTelegramSim(b, tgsim.Options{})
	staff, err := tg.CreateAccount(tgsim.AccountSpec{Phone: "+15550031", FirstName: "Sam", LastName: "Staff"})
	if err != nil {
		b.Fatal(err)
	}
	contacts := make([]*tgsim.Account, catchUpChats)
	for i := range contacts {
		contacts[i], err = tg.CreateAccount(tgsim.AccountSpec{Phone: fmt.Sprintf("+1555004%02d", i), FirstName: fmt.Sprintf("Contact%02d", i), LastName: "Outside"})
		if err != nil {
			b.Fatal(err)
		}
	}
	s := NewStack(b, StackOptions{TelegramSim: tg, Users: []string{"sam"}, AutoJoin: true})
	sam := s.User("sam")
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	mgmt, _ := s.BotRoom(sam)
	s.LoginTelegramPhone(sam, mgmt, tg, "+15550031")

	// The portals, each opened by its contact.
	rooms := make([]string, len(contacts))
	var ghost0 string
	seen := []string{mgmt}
	for i, c := range contacts {
		if _, err = tg.SendMessage(c.ID, staff.ID, "hello", nil); err != nil {
			b.Fatal(err)
		}
		room, err := sam.WaitRoom(ctx, RoomFilter{Exclude: seen, NameContains: c.FirstName, AutoJoin: true})
		if err != nil {
			b.Fatal(err)
		}
		rooms[i] = room.RoomID
		seen = append(seen, room.RoomID)
		hello, err := sam.WaitMessage(ctx, room.RoomID, MessageFilter{BodyContains: "hello"})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			ghost0 = hello.Sender
		}
	}

	for range b.N {
		if err = s.Gateway.Stop(); err != nil {
			b.Fatalf("stop gateway: %v", err)
		}
		last := make([]string, len(contacts))
		for n := range gap {
			i := n % len(contacts)
			last[i] = fmt.Sprintf("gap message %05d", n)
			if _, err = tg.SendMessage(contacts[i].ID, staff.ID, last[i], nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		start := time.Now()
		if err = s.Gateway.Start(ctx); err != nil {
			b.Fatalf("start gateway: %v", err)
		}
		for i, room := range rooms {
			if _, err = sam.WaitMessage(ctx, room, MessageFilter{BodyContains: last[i], Timeout: 50 * time.Minute}); err != nil {
				b.Fatalf("the last message of chat %d never arrived: %v", i, err)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		peak, err := s.Gateway.PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		// Exactly once, in order, in one of the rooms.
		evs, err := sam.ServerHistory(ctx, rooms[0])
		if err != nil {
			b.Fatal(err)
		}
		var want []string
		for n := 0; n < gap; n += len(contacts) {
			want = append(want, fmt.Sprintf("gap message %05d", n))
		}
		got := bodiesOf(evs, ghost0)
		if len(got) < len(want) || fmt.Sprint(got[len(got)-len(want):]) != fmt.Sprint(want) {
			b.Fatalf("chat 0 holds %d messages from its contact, want the %d of the gap last, once each and in order", len(got), len(want))
		}
		b.ReportMetric(float64(gap)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		b.ReportMetric(elapsed.Seconds(), "s/gap")
		b.Logf("gap of %d messages over %d chats bridged into Dendrite in %s (%.1f messages/s, gateway ready in %s); gateway peak RSS %.1f MB",
			gap, len(contacts), elapsed.Round(time.Millisecond), float64(gap)/elapsed.Seconds(), s.Gateway.ReadyDuration.Round(time.Millisecond), float64(peak)/(1<<20))
	}
}
