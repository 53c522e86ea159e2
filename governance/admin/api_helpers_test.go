package admin_test

import (
	"net/http"
	"net/http/httptest"

	"github.com/passerelle/passerelle/governance/admin"
)

func apiGet(h http.Handler, path, remote, auth string) *httptest.ResponseRecorder {
	return apiGetWith(h, path, remote, auth, nil)
}

// apiGetWith is apiGet with more request headers.
func apiGetWith(h http.Handler, path, remote, auth string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, admin.APIPrefix+path, nil)
	req.RemoteAddr = remote
	for k, v := range header {
		req.Header[k] = v
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
