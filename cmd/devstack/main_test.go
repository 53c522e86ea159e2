package main

import (
	"strings"
	"testing"
)

// Flags that a component would refuse once everything else has started are
// refused first, with a message naming the flag.
func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string // empty: accepted
	}{
		{nil, ""},
		{[]string{"-password", "correct horse", "-user", "alice"}, ""},
		{[]string{"-password", "12345678"}, ""},
		{[]string{"-password", "short"}, "-password is 5 characters long; Dendrite wants at least 8"},
		{[]string{"-password", "1234567"}, "at least 8"},
		{[]string{"-password", strings.Repeat("x", 513)}, "at most 512"},
		{[]string{"-user", "Alice"}, "not a valid Matrix localpart"},
		{[]string{"-user", "bob smith"}, "not a valid Matrix localpart"},
		{[]string{"-user", ""}, "not a valid Matrix localpart"},
		{[]string{"-user", "passerelle_whatsapp.1"}, "gateway's namespace"},
		{[]string{"-hs-port", "29318"}, "-hs-port and -gateway-port are both 29318"},
		{[]string{"-wa-port", "70000"}, "-wa-port 70000 is not a TCP port"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-no-such-flag"}, "not defined"},
	} {
		o, err := parseFlags(tc.args)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("parseFlags(%q): %v", tc.args, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseFlags(%q) = %v, want an error with %q", tc.args, err, tc.err)
		case tc.err == "" && o.user == "":
			t.Errorf("parseFlags(%q) lost the defaults: %+v", tc.args, o)
		}
	}
}
