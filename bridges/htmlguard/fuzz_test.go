package htmlguard

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzPrepare(f *testing.F) {
	f.Add("<b>x</b><ol start=\"-9223372036854775808\"><li>y")
	f.Add(strings.Repeat("<ul><li>", 9) + "x")
	f.Add(strings.Repeat("<i>", 600))
	f.Add("<table><b><tr><td>a</b>c<p>d")
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := Prepare(in, nil)
		if !ok {
			return
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out: %q", out)
		}
		// Rendering adds the implied <html><head></head><body> and closing
		// tags, and escapes text: at most a few times the input.
		if limit := 16*len(in) + 64; len(out) > limit {
			t.Fatalf("%d bytes out for %d in", len(out), len(in))
		}
	})
}
