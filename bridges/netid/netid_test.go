package netid

import (
	"errors"
	"testing"
)

func TestJoinSplitRoundTrip(t *testing.T) {
	for _, tc := range []struct{ network, rest string }{
		{"telegram", "123456789"},
		{"whatsapp", "33612345678"},
		{"telegram", "u123.456"}, // the rest may itself contain the separator
	} {
		id := Join(tc.network, tc.rest)
		network, rest, err := Split(id)
		if err != nil {
			t.Fatalf("Split(%q): %v", id, err)
		}
		if network != tc.network || rest != tc.rest {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", id, network, rest, tc.network, tc.rest)
		}
		if got, err := Strip(tc.network, id); err != nil || got != tc.rest {
			t.Errorf("Strip(%q, %q) = %q, %v", tc.network, id, got, err)
		}
	}
}

func TestSplitRejectsMalformed(t *testing.T) {
	for _, id := range []string{"", "telegram", "telegram.", ".123", "Telegram.1", "tele gram.1", "t3legram.1", "@alice:example.org"} {
		if _, _, err := Split(id); !errors.Is(err, ErrMalformed) {
			t.Errorf("Split(%q) error = %v, want ErrMalformed", id, err)
		}
		if Network(id) != "" {
			t.Errorf("Network(%q) = %q, want empty", id, Network(id))
		}
	}
}

func TestStripRejectsOtherNetwork(t *testing.T) {
	if _, err := Strip("telegram", "whatsapp.123"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Strip of another network's ID: err = %v, want ErrMalformed", err)
	}
}
