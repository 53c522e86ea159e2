package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProvisioningOpenIDAskedOfTheHomeserver: an OpenID token of a user of
// the bridge's own server is checked at homeserver.address; the request
// reaches the provisioning API as that user only when the homeserver names
// the same user, and other requests pass through untouched.
func TestProvisioningOpenIDAskedOfTheHomeserver(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	var asked []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/federation/v1/openid/userinfo" {
			http.NotFound(w, r)
			return
		}
		tok := r.URL.Query().Get("access_token")
		asked = append(asked, tok)
		sub, ok := map[string]string{"sam-token": "@sam:example.org"}[tok]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": sub})
	}))
	defer hs.Close()
	check := &openIDChecker{homeserver: hs.URL, domain: "example.org", client: hs.Client()}
	var gotAuth []string
	h := check.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
	}), secret)

	for _, c := range []struct {
		name, auth, user string
		status           int
		passedAs         string // Authorization the provisioning API sees; "" when it is not reached
		askedHS          bool
	}{
		{"own token", "Bearer openid:sam-token", "@sam:example.org", 200, "Bearer " + secret, true},
		{"someone else's token", "Bearer openid:sam-token", "@pat:example.org", 401, "", true},
		{"unknown token", "Bearer openid:forged", "@sam:example.org", 401, "", true},
		{"empty token", "Bearer openid:", "@sam:example.org", 401, "", false},
		{"other server's user: left to bridgev2", "Bearer openid:x", "@sam:elsewhere.org", 200, "Bearer openid:x", false},
		{"shared secret", "Bearer " + secret, "@sam:example.org", 200, "Bearer " + secret, false},
		{"access token", "Bearer syt_abc", "@sam:example.org", 200, "Bearer syt_abc", false},
	} {
		asked, gotAuth = nil, nil
		r := httptest.NewRequest("GET", "/_matrix/provision/v3/whoami?user_id="+c.user, nil)
		r.Header.Set("Authorization", c.auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status {
			t.Errorf("%s: HTTP %d %s, want %d", c.name, w.Code, w.Body, c.status)
		}
		if c.passedAs == "" && len(gotAuth) != 0 {
			t.Errorf("%s: the provisioning API was reached", c.name)
		}
		if c.passedAs != "" && (len(gotAuth) != 1 || gotAuth[0] != c.passedAs) {
			t.Errorf("%s: the provisioning API saw %q, want %q", c.name, gotAuth, c.passedAs)
		}
		if (len(asked) > 0) != c.askedHS {
			t.Errorf("%s: homeserver asked %v, want asked=%v", c.name, asked, c.askedHS)
		}
		if w.Code == 401 && !strings.Contains(w.Body.String(), "M_UNKNOWN_TOKEN") {
			t.Errorf("%s: refusal %s, want M_UNKNOWN_TOKEN", c.name, w.Body)
		}
	}

	// An unreachable homeserver refuses, and the error names no token.
	hs.Close()
	err := check.check(t.Context(), "@sam:example.org", "sam-token")
	if err == nil || strings.Contains(err.Error(), "sam-token") {
		t.Errorf("homeserver down: %v, want an error without the token", err)
	}
}
