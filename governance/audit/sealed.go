package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/governance/seal"
)

// detailIDs are the keys of Entry.Details that hold an identifier, and
// their kind: in hashed mode they are stored as pseudonyms.
var detailIDs = map[string]string{
	"receiver":   seal.KindLogin,
	"login":      seal.KindLogin,
	"login_id":   seal.KindLogin,
	"portal":     seal.KindPortal,
	"portal_id":  seal.KindPortal,
	"chat":       seal.KindPortal,
	"other_user": seal.KindRemoteID,
	"contact":    seal.KindRemoteID,
	"remote_id":  seal.KindRemoteID,
	"phone":      seal.KindPhone,
}

// sealEntry, in hashed mode, replaces the identifiers of an entry with their
// pseudonyms: its login and portal, its contact (already a Registry.Key as
// a rule), the identifiers in its details (detailIDs), and any other string
// in its details that holds a run of seal.DigitRun digits (seal.Scrub: a
// remote name, an admin's reason or arguments). It runs before the entry is
// hashed, so the chain covers the entry as stored.
func (l *Log) sealEntry(e *Entry) {
	s := l.Seal
	if !s.On() {
		return
	}
	e.Login = networkid.UserLoginID(s.Pseudonym(seal.KindLogin, string(e.Login)))
	e.Portal = networkid.PortalID(s.Pseudonym(seal.KindPortal, string(e.Portal)))
	e.Contact = s.Pseudonym(seal.KindRemoteID, e.Contact)
	dec := json.NewDecoder(bytes.NewReader(e.Details))
	dec.UseNumber()
	var details map[string]any
	if err := dec.Decode(&details); err != nil {
		return // normalize checked it is an object
	}
	if changed := sealValue(s, "", details); changed {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(details); err == nil {
			e.Details = bytes.TrimSpace(buf.Bytes())
		}
	}
}

// sealValue pseudonymises the strings in v (a decoded JSON value, in place
// for maps and slices) and reports whether it changed anything. kind is the
// detailIDs kind of the key v is under, if any.
func sealValue(s *seal.Sealer, kind string, v any) (changed bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if str, ok := x.(string); ok {
				if sealed := sealString(s, detailIDs[k], str); sealed != str {
					v[k], changed = sealed, true
				}
			} else if sealValue(s, detailIDs[k], x) {
				changed = true
			}
		}
	case []any:
		for i, x := range v {
			if str, ok := x.(string); ok {
				if sealed := sealString(s, kind, str); sealed != str {
					v[i], changed = sealed, true
				}
			} else if sealValue(s, kind, x) {
				changed = true
			}
		}
	}
	return changed
}

func sealString(s *seal.Sealer, kind, str string) string {
	switch {
	case kind != "":
		return s.Pseudonym(kind, str)
	case isHexDigest(str):
		return str // a chain hash (head_published), a token fingerprint
	case isTimestamp(str):
		return str // expires_at
	default:
		return s.Scrub(str)
	}
}

// isTimestamp reports whether s is an RFC 3339 time, as a time.Time in
// details is marshalled.
func isTimestamp(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// isHexDigest reports whether s is a hex digest ("sha256:" optional): 16
// to 64 lowercase hex digits with at least one letter, which no phone
// number or user ID is.
func isHexDigest(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	letter := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'f':
			letter = true
		case c < '0' || c > '9':
			return false
		}
	}
	return letter
}

// sealFilter turns the identifiers of a filter into their pseudonyms in
// hashed mode (a filter given with pseudonyms stays as it is).
func (l *Log) sealFilter(f Filter) Filter {
	if l.Seal.On() {
		f.Portal = l.Seal.Pseudonym(seal.KindPortal, f.Portal)
		f.Contact = l.Seal.Pseudonym(seal.KindRemoteID, f.Contact)
	}
	return f
}
