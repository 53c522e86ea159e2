package wastore

import (
	"bytes"
	"sync"

	"go.mau.fi/whatsmeow/store"
)

// whatsmeow looks up the contact's privacy token for every message it
// sends (most contacts have none), a database query each time: 4% of the
// gateway's CPU samples in a burst of staff messages. The answers, tokens
// and absences alike, are kept per linked device and contact, the
// contact's JID in both forms (phone number and LID: a new mapping makes a
// new key). Any token stored, and a device deleted, forget them all
// (tokens change seldom). The cache is bounded: full, it starts again.

const tokenCacheCap = 8192

type tokenKey struct{ our, user, alt string }

type tokenCache struct {
	mu  sync.Mutex
	gen uint64 // moves at every invalidation
	m   map[tokenKey]*store.PrivacyToken
}

func newTokenCache() *tokenCache {
	return &tokenCache{m: make(map[tokenKey]*store.PrivacyToken)}
}

// get returns the answer kept for k (a nil token: none stored), whether
// there is one, and the generation to hand to put after a database read.
func (tc *tokenCache) get(k tokenKey) (tok *store.PrivacyToken, ok bool, gen uint64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tok, ok = tc.m[k]
	return clonePrivacyToken(tok), ok, tc.gen
}

// put keeps what a database read begun at generation gen found, unless a
// token was stored since (the read may have missed it).
func (tc *tokenCache) put(k tokenKey, tok *store.PrivacyToken, gen uint64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if gen != tc.gen {
		return
	}
	if len(tc.m) >= tokenCacheCap {
		clear(tc.m)
	}
	tc.m[k] = clonePrivacyToken(tok)
}

// clonePrivacyToken copies tok (nil stays nil): neither the cache nor its
// callers see the other's changes.
func clonePrivacyToken(tok *store.PrivacyToken) *store.PrivacyToken {
	if tok == nil {
		return nil
	}
	cp := *tok
	cp.Token = bytes.Clone(tok.Token)
	return &cp
}

// invalidate forgets every answer; called after the database changed.
func (tc *tokenCache) invalidate() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.gen++
	clear(tc.m)
}
