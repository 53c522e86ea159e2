package remote

import (
	"context"
	"slices"
	"testing"
)

func TestCatchUpReportsBigGapsByTenths(t *testing.T) {
	var got []string
	notify := func(_ context.Context, text string) { got = append(got, text) }
	if c := NewCatchUp("your Telegram account", CatchUpNoticeFrom-1, notify); c != nil {
		t.Fatalf("a gap of %d messages is reported; want silence below %d", CatchUpNoticeFrom-1, CatchUpNoticeFrom)
	}
	c := NewCatchUp("your Telegram account", 10000, notify)
	for range 100 {
		c.Add(context.Background(), 100)
	}
	c.Done(context.Background())
	c.Done(context.Background())
	want := []string{"Catching up with your Telegram account: 10,000 messages to bridge."}
	for _, n := range []string{"1,000", "2,000", "3,000", "4,000", "5,000", "6,000", "7,000", "8,000", "9,000"} {
		want = append(want, "Catching up with your Telegram account: "+n+" of 10,000.")
	}
	want = append(want, "Caught up with your Telegram account: 10,000 messages bridged.")
	if !slices.Equal(got, want) {
		t.Fatalf("notices:\n%q\nwant:\n%q", got, want)
	}
}

func TestCatchUpLargeStepsAndNil(t *testing.T) {
	var got []string
	c := NewCatchUp("x", 25000, func(_ context.Context, text string) { got = append(got, text) })
	c.Add(context.Background(), 3200)
	c.Add(context.Background(), 30000)
	c.Done(context.Background())
	want := []string{"Catching up with x: 25,000 messages to bridge.", "Catching up with x: 3,200 of 25,000.", "Caught up with x: 25,000 messages bridged."}
	if !slices.Equal(got, want) {
		t.Fatalf("notices %q, want %q", got, want)
	}
	var none *CatchUp
	none.Add(context.Background(), 5)
	none.Done(context.Background())
	if thousands(1234567) != "1,234,567" || thousands(999) != "999" || thousands(-1000) != "-1,000" {
		t.Fatalf("thousands: %s %s %s", thousands(1234567), thousands(999), thousands(-1000))
	}
}
