package admin_test

import (
	"net/http"
	"net/http/httptest"

	"github.com/passerelle/passerelle/governance/admin"
)

func apiGet(h http.Handler, path, remote, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, admin.APIPrefix+path, nil)
	req.RemoteAddr = remote
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
