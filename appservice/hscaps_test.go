package appservice

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
)

// fakeHomeserver answers the media config on v1 or only on the legacy v3
// path, and the federation version when it has a name.
func fakeHomeserver(t *testing.T, v1 bool, name string) *httptest.Server {
	mux := http.NewServeMux()
	if v1 {
		mux.HandleFunc("GET /_matrix/client/v1/media/config", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"m.upload.size":7340032}`))
		})
	}
	mux.HandleFunc("GET /_matrix/media/v3/config", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"m.upload.size":1048576}`))
	})
	mux.HandleFunc("GET /_matrix/federation/v1/version", func(w http.ResponseWriter, r *http.Request) {
		if name == "" || r.Header.Get("Authorization") != "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"server":{"name":"` + name + `","version":"1.2.3"}}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestMediaUploadSizeFallsBackToLegacyConfig(t *testing.T) {
	for _, tc := range []struct {
		v1   bool
		want int64
	}{{true, 7340032}, {false, 1048576}} {
		srv := fakeHomeserver(t, tc.v1, "")
		cli, err := mautrix.NewClient(srv.URL, "@bot:example.org", "token")
		if err != nil {
			t.Fatal(err)
		}
		got, err := mediaUploadSize(context.Background(), cli)
		if err != nil || got != tc.want {
			t.Errorf("v1=%v: upload size %d, %v; want %d", tc.v1, got, err, tc.want)
		}
	}
}

func TestServerSoftwareAsksWithoutToken(t *testing.T) {
	srv := fakeHomeserver(t, true, "Synapse")
	u, _ := url.Parse(srv.URL)
	sw, err := serverSoftware(context.Background(), srv.Client(), u)
	if err != nil || sw.Name != "Synapse" || sw.Version != "1.2.3" {
		t.Errorf("server = %+v, %v; want Synapse 1.2.3", sw, err)
	}
	none := fakeHomeserver(t, true, "")
	u, _ = url.Parse(none.URL)
	if sw, err = serverSoftware(context.Background(), none.Client(), u); err == nil {
		t.Errorf("no federation endpoint: got %+v, want an error", sw)
	}
}
