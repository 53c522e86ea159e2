package tgsim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

var controlRoutes = []struct{ method, path string }{
	{"POST", "/send"}, {"POST", "/qr/accept"}, {"GET", "/messages"}, {"GET", "/code"}, {"GET", "/accounts"},
	{"POST", "/reply"}, {"POST", "/edit"}, {"POST", "/delete"}, {"POST", "/react"}, {"POST", "/read"},
	{"POST", "/typing"}, {"POST", "/status"}, {"POST", "/custom_emoji"}, {"GET", "/read_state"},
	{"GET", "/typing"}, {"GET", "/status"}, {"POST", "/revoke_sessions"},
}

// FuzzControlAPI sends arbitrary bodies and queries to every route of the
// control API: no panic, and every JSON answer is valid JSON.
func FuzzControlAPI(f *testing.F) {
	f.Add(uint8(0), []byte(`{"from":"@bob","to":1,"text":"hi"}`), "")
	f.Add(uint8(0), []byte(`{"from":"15550002","to":"15550001","text":"  "}`), "")
	f.Add(uint8(1), []byte(`{"account":"@alice","token":"tg://login?token=AAAA"}`), "")
	f.Add(uint8(2), []byte{}, "a=@alice&b=15550002")
	f.Add(uint8(3), []byte{}, "phone=15550001")
	f.Add(uint8(0), []byte(`{"from":[1,2],"to":{"x":1}}`), "a=%zz")
	f.Add(uint8(5), []byte(`{"from":"@bob","to":"@alice","text":"re","reply_to":1,"quote":"hi"}`), "")
	f.Add(uint8(6), []byte(`{"from":"@bob","to":"@alice","id":1,"text":"edited"}`), "")
	f.Add(uint8(7), []byte(`{"by":"@bob","ids":[1,-3,99999999],"revoke":false}`), "")
	f.Add(uint8(8), []byte(`{"by":"@bob","peer":"@alice","id":1,"emoji":["👍","nope"],"custom_emoji":[5]}`), "")
	f.Add(uint8(9), []byte(`{"reader":"@bob","peer":"@alice","max_id":-1}`), "")
	f.Add(uint8(10), []byte(`{"from":"@bob","to":"@alice"}`), "")
	f.Add(uint8(11), []byte(`{"account":"@bob","online":true}`), "")
	f.Add(uint8(12), []byte(`{"id":5,"fallback":"😀"}`), "")
	f.Add(uint8(13), []byte{}, "a=@alice&b=@bob")
	f.Add(uint8(14), []byte{}, "a=@alice")
	f.Add(uint8(2), []byte{}, "a=@alice&b=@bob&deleted=1")
	s := newServer(f)
	createAccount(f, s, tgsim.AccountSpec{Phone: "15550001", FirstName: "Alice", Username: "alice"})
	createAccount(f, s, tgsim.AccountSpec{Phone: "15550002", FirstName: "Bob", Username: "bob"})
	h := s.ControlHandler()
	f.Fuzz(func(t *testing.T, route uint8, body []byte, query string) {
		rt := controlRoutes[int(route)%len(controlRoutes)]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		target := rt.path
		if _, err := url.Parse(target + "?" + query); err == nil && !strings.ContainsAny(query, " #") {
			target += "?" + query
		}
		req := httptest.NewRequestWithContext(ctx, rt.method, "http://127.0.0.1"+target, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if out := rec.Body.Bytes(); len(out) > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(out) {
			t.Fatalf("%s %s answered %d with invalid JSON %q", rt.method, target, rec.Code, out)
		}
	})
}

// FuzzParseQRToken: what a user pastes as a QR login link never panics the
// parser, and a token encoded the way Telegram shows it comes back.
func FuzzParseQRToken(f *testing.F) {
	f.Add("tg://login?token=AAECAw", []byte{0, 1, 2, 3})
	f.Add("  AAECAw==  ", []byte{})
	f.Add("tg:%zz", []byte{9})
	f.Fuzz(func(t *testing.T, s string, token []byte) {
		_, _ = tgsim.ParseQRToken(s)
		if len(token) == 0 {
			return
		}
		link := "tg://login?token=" + base64.URLEncoding.EncodeToString(token)
		if got, err := tgsim.ParseQRToken(link); err != nil || !bytes.Equal(got, token) {
			t.Fatalf("%q -> %x, %v", link, got, err)
		}
	})
}
