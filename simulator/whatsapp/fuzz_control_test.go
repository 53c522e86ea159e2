package wasim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var controlRoutes = []struct{ method, path string }{
	{"POST", "/accounts"}, {"POST", "/send"}, {"POST", "/scan"}, {"POST", "/pairing-code"},
	{"POST", "/groups"}, {"POST", "/unpair"}, {"POST", "/replace-stream"}, {"GET", "/messages"}, {"GET", "/accounts"},
	{"POST", "/reply"}, {"POST", "/react"}, {"POST", "/edit"}, {"POST", "/revoke"}, {"POST", "/read"},
	{"POST", "/typing"}, {"POST", "/presence"}, {"GET", "/conversation?phone=15550002222&chat=15550001111"},
	{"GET", "/chat-states"}, {"GET", "/client-presence?phone=15550001111&contact=15550002222"},
}

// FuzzControlAPI sends arbitrary bodies to every route of the control API:
// no panic, and every answer is JSON (or empty).
func FuzzControlAPI(f *testing.F) {
	f.Add(uint8(0), []byte(`{"phone":"15550009999","name":"Zed"}`))
	f.Add(uint8(1), []byte(`{"from":"15550001111","to":"15550002222","text":"hi"}`))
	f.Add(uint8(1), []byte(`{"from":"15550001111","to":"123-456@g.us","text":"hi"}`))
	f.Add(uint8(2), []byte(`{"phone":"15550001111","qr":"2@ref,noise,identity,adv"}`))
	f.Add(uint8(3), []byte(`{"phone":"15550001111","code":"ABCD-EFGH"}`))
	f.Add(uint8(4), []byte(`{"owner":"15550001111","name":"G","participants":["15550002222","x@y"]}`))
	f.Add(uint8(5), []byte(`{"phone":"15550001111"}`))
	f.Add(uint8(1), []byte(`{"from":`))
	f.Add(uint8(8), []byte(`{"from":"15550002222","to":"15550001111","text":"yes","quoted_id":"3AB","quoted_sender":"15550001111","quoted_text":"q?"}`))
	f.Add(uint8(9), []byte(`{"from":"15550002222","to":"15550001111","target_sender":"15550001111","id":"3AB","emoji":"👍"}`))
	f.Add(uint8(10), []byte(`{"from":"15550002222","to":"15550001111","id":"3AB","text":"fixed"}`))
	f.Add(uint8(11), []byte(`{"from":"15550002222","to":"123@g.us","target_sender":"15550001111","id":"3AB"}`))
	f.Add(uint8(12), []byte(`{"from":"15550002222","to":"15550001111","ids":["3AB"]}`))
	f.Add(uint8(13), []byte(`{"from":"15550002222","to":"15550001111","state":"composing","media":"audio"}`))
	f.Add(uint8(14), []byte(`{"phone":"15550002222","online":false,"hide_last_seen":true}`))
	f.Add(uint8(15), []byte(``))
	srv := startServer(f)
	mustAccount(f, srv, "15550001111", "Alice")
	mustAccount(f, srv, "15550002222", "Bob")
	h := srv.ControlHandler()
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := controlRoutes[int(route)%len(controlRoutes)]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, rt.method, rt.path, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 0 {
			t.Fatal("no status")
		}
		if out := rec.Body.Bytes(); len(out) > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(out) {
			t.Fatalf("%s %s answered %d with invalid JSON %q", rt.method, rt.path, rec.Code, out)
		}
		if rec.Code == http.StatusInternalServerError && rt.path != "/send" && rt.path != "/groups" && rt.path != "/reply" && rt.path != "/react" {
			t.Logf("%s %s: 500 %s", rt.method, rt.path, rec.Body.String())
		}
	})
}
