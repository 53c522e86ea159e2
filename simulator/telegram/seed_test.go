package tgsim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSeedHistory(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a, err := s.CreateAccount(AccountSpec{Phone: "15550101", FirstName: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateAccount(AccountSpec{Phone: "15550102", FirstName: "Ben"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	entries := []HistoryEntry{
		{From: b.ID, Text: "first", Time: start},
		{From: a.ID, Text: "an answer", ReplyTo: 1, Time: start.Add(time.Minute), Reactions: []Reaction{{User: b.ID, Emoji: "👍"}}},
		{From: b.ID, Text: "a photo", Media: &MediaSpec{Kind: "photo", Data: []byte("not really a jpeg")}, Time: start.Add(2 * time.Minute)},
	}
	got, err := s.SeedHistory(a.ID, b.ID, entries)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("seeded %d messages, want 3", len(got))
	}
	for i, m := range got {
		if want := entries[i].Time; !m.Date.Equal(want) {
			t.Errorf("message %d is dated %s, want %s", i+1, m.Date, want)
		}
		if m.Text != entries[i].Text {
			t.Errorf("message %d is %q, want %q", i+1, m.Text, entries[i].Text)
		}
	}
	if got[1].ReplyToID != got[0].ID {
		t.Errorf("the answer replies to %d, want %d", got[1].ReplyToID, got[0].ID)
	}
	if got[2].Media == nil {
		t.Error("the photo has no media")
	}
	if len(got[1].Reactions) != 1 || got[1].Reactions[0].Emoji != "👍" || got[1].Reactions[0].User != b.ID {
		t.Errorf("reactions of the answer: %+v", got[1].Reactions)
	}
	// Ben sees the same past.
	if hist := s.Messages(b.ID, a.ID); len(hist) != 3 || !hist[0].Date.Equal(start) {
		t.Fatalf("Ben's side: %d messages, first dated %v", len(hist), hist[0].Date)
	}

	for name, bad := range map[string][]HistoryEntry{
		"stranger":  {{From: 42, Text: "x"}},
		"empty":     {{From: a.ID}},
		"future":    {{From: a.ID, Text: "x", Time: time.Now().Add(time.Hour)}},
		"backwards": {{From: a.ID, Text: "x", Time: start}, {From: a.ID, Text: "y", Time: start.Add(-time.Hour)}},
		"reply":     {{From: a.ID, Text: "x", ReplyTo: 1}},
	} {
		if _, err := s.SeedHistory(a.ID, b.ID, bad); err == nil || !strings.Contains(err.Error(), "history entry") {
			t.Errorf("%s: %v, want a refusal naming the entry", name, err)
		}
	}
	if n := len(s.Messages(a.ID, b.ID)); n != 3 {
		t.Errorf("refused seeds left %d messages, want the 3", n)
	}
}

func TestSeedHistoryControl(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a, _ := s.CreateAccount(AccountSpec{Phone: "15550111", FirstName: "Ann", Username: "ann"})
	b, _ := s.CreateAccount(AccountSpec{Phone: "15550112", FirstName: "Ben"})
	h := httptest.NewServer(s.ControlHandler())
	t.Cleanup(h.Close)
	when := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	post := func(body string) int {
		resp, err := http.Post(h.URL+"/seed_history", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	ok := `{"a":"@ann","b":"+15550112","entries":[{"from":"+15550112","text":"old news","time":"` + when + `"},` +
		`{"from":"@ann","text":"noted","reply_to":1,"reactions":[{"by":"+15550112","emoji":"👍"}]}]}`
	if st := post(ok); st != http.StatusOK {
		t.Fatalf("seed: status %d", st)
	}
	msgs := s.Messages(a.ID, b.ID)
	if len(msgs) != 2 || msgs[0].Text != "old news" || msgs[0].Date.UTC().Format(time.RFC3339) != when || msgs[1].ReplyToID != msgs[0].ID || len(msgs[1].Reactions) != 1 {
		t.Fatalf("seeded: %+v", msgs)
	}
	if st := post(`{"a":"@ann","b":"+15550112","entries":[{"from":"@nobody","text":"x"}]}`); st != http.StatusNotFound {
		t.Errorf("unknown sender: status %d, want 404", st)
	}
	if st := post(`{"a":"@ann","b":"+15550112","entries":[{"from":"@ann","text":"x","reply_to":5}]}`); st != http.StatusBadRequest {
		t.Errorf("bad reply: status %d, want 400", st)
	}
}
