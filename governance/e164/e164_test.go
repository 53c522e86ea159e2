package e164_test

import (
	"errors"
	"testing"

	"github.com/passerelle/passerelle/governance/e164"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" = malformed
	}{
		{"+33612345678", "+33612345678"},
		{"+33 6 12 34 56 78", "+33612345678"},
		{"+33 (0)6 12 34 56 78", "+33612345678"}, // trunk prefix written in parentheses
		{"0033612345678", "+33612345678"},
		{"+1 (415) 555-0100", "+14155550100"},
		{"+49.151.1234.5678", "+4915112345678"},
		{"+7 999 123\u00a045 67", "+79991234567"},
		{"", ""},
		{"+", ""},
		{"00", ""},
		{"0612345678", ""},  // national number: no country code
		{"+0612345678", ""}, // country codes do not start with 0
		{"+33abc", ""},      // letters
		{"+33 6 12 34 56 78 ext 9", ""},
		{"+1234567890123456", ""}, // 16 digits
		{"+123456", ""},           // 6 digits: a prefix, not a number
		{"++33612345678", ""},
	} {
		got, err := e164.Normalize(tc.in)
		if tc.want == "" {
			if !errors.Is(err, e164.ErrMalformed) {
				t.Errorf("Normalize(%q) = %q, %v; want ErrMalformed", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizePrefix(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"+7", "+7"},
		{"007", "+7"},
		{"+33 6 12", "+33612"},
		{"+3361234", "+3361234"},
		{"+", ""},
		{"7", ""},
		{"+33abc", ""},
		{"+0", ""},
		{"+1234567890123456", ""},
	} {
		got, err := e164.NormalizePrefix(tc.in)
		if tc.want == "" {
			if !errors.Is(err, e164.ErrMalformed) {
				t.Errorf("NormalizePrefix(%q) = %q, %v; want ErrMalformed", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizePrefix(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
