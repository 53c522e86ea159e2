package netid

import "testing"

// FuzzSplit: Split never panics, and what it accepts joins back to the
// same ID; Join of a valid network and rest splits back.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"telegram.123", "whatsapp.g-1-2.x.y", ".x", "x.", "Telegram.1", "nodot", "a.b.c", "é.x"} {
		f.Add(s, "rest")
	}
	f.Fuzz(func(t *testing.T, id, rest string) {
		network, r, err := Split(id)
		if err == nil {
			if Join(network, r) != id || !ValidNetwork(network) || r == "" {
				t.Fatalf("Split(%q) = %q, %q", id, network, r)
			}
			if got, err := Strip(network, id); err != nil || got != r {
				t.Fatalf("Strip(%q) = %q, %v", id, got, err)
			}
		} else if Network(id) != "" {
			t.Fatalf("Network(%q) = %q for a malformed ID", id, Network(id))
		}
		if ValidNetwork(id) && rest != "" {
			n, r2, err := Split(Join(id, rest))
			if err != nil || n != id || r2 != rest {
				t.Fatalf("Join(%q, %q) splits to %q, %q, %v", id, rest, n, r2, err)
			}
		}
	})
}
