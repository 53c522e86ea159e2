// Package e164 normalises phone numbers and number prefixes written by humans
// to E.164 ("+<country code><number>"), for policy rules and for the contact
// registry.
package e164

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed is returned (wrapped) for a phone number or number
// prefix that is not E.164.
var ErrMalformed = errors.New("malformed phone number")

// E.164 numbers have at most 15 digits. A full number shorter than
// minNumberDigits is almost certainly a prefix written in the wrong field.
const (
	maxNumberDigits = 15
	minNumberDigits = 7
)

// Normalize returns the E.164 form "+<digits>" of a full phone number
// written by a human: a trunk "(0)" ("+33 (0)6 …") is dropped, spaces,
// dashes, dots and parentheses are removed and a leading "00" becomes "+". A number must start with "+" or "00" (a national
// number cannot be told apart from another country's) and hold 7 to 15 digits,
// the first not 0.
func Normalize(raw string) (string, error) {
	digits, err := e164Digits(raw)
	if err != nil {
		return "", err
	}
	if len(digits) < minNumberDigits {
		return "", fmt.Errorf("%w: %q has %d digits, a full number has at least %d", ErrMalformed, raw, len(digits), minNumberDigits)
	}
	return "+" + digits, nil
}

// NormalizePrefix is Normalize for a number prefix such as "+7" or
// "+33 6 12": 1 to 15 digits.
func NormalizePrefix(raw string) (string, error) {
	digits, err := e164Digits(raw)
	if err != nil {
		return "", err
	}
	return "+" + digits, nil
}

func e164Digits(raw string) (string, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '\t', '\u00a0':
			return -1
		}
		return r
	}, strings.ReplaceAll(raw, "(0)", ""))
	switch {
	case s == "":
		return "", fmt.Errorf("%w: empty", ErrMalformed)
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	case strings.HasPrefix(s, "00"):
		s = s[2:]
	default:
		return "", fmt.Errorf("%w: %q does not start with + or 00 and a country code", ErrMalformed, raw)
	}
	if s == "" {
		return "", fmt.Errorf("%w: %q has no digits", ErrMalformed, raw)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("%w: %q contains %q", ErrMalformed, raw, c)
		}
	}
	if s[0] == '0' {
		return "", fmt.Errorf("%w: %q: a country code does not start with 0", ErrMalformed, raw)
	}
	if len(s) > maxNumberDigits {
		return "", fmt.Errorf("%w: %q has %d digits, E.164 allows at most %d", ErrMalformed, raw, len(s), maxNumberDigits)
	}
	return s, nil
}

// IsDigits reports whether s is one or more ASCII digits.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
