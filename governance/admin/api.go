package admin

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
)

// APIPrefix is where the HTTP admin API lives on the appservice listener.
//
// Authentication: a bearer token (network.governance.api.token) in the
// Authorization header. Without a valid token the answer is 401; from a
// client that is not loopback (unless api.allow_remote), or with the API
// switched off (no token configured), it is 403. The API only reads; every
// call is logged as admin_action.
//
//	GET contacts?q=&network=&staff=&portal=&limit=&offset=&format=json|csv
//	GET log?after_seq=&since=&until=&action=&network=&actor=&portal=&limit=&format=json|csv
//	GET verify
//	GET export/contacts?format=csv|json      (as an attachment)
//	GET export/log?format=csv|json
const APIPrefix = "/_passerelle/governance/v1/"

// APIHandler returns the HTTP admin API.
func (gv *Governance) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+APIPrefix+"contacts", gv.apiContacts(false))
	mux.HandleFunc("GET "+APIPrefix+"export/contacts", gv.apiContacts(true))
	mux.HandleFunc("GET "+APIPrefix+"log", gv.apiLog(false))
	mux.HandleFunc("GET "+APIPrefix+"export/log", gv.apiLog(true))
	mux.HandleFunc("GET "+APIPrefix+"verify", gv.apiVerify)
	return gv.authenticate(mux)
}

type apiError struct {
	ErrCode string `json:"errcode"`
	Error   string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{ErrCode: code, Error: msg})
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (gv *Governance) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := gv.Config().API
		if cfg.Token == "" {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "The governance admin API is switched off (network.governance.api.token is empty)")
			return
		}
		if !cfg.AllowRemote && !isLoopback(r.RemoteAddr) {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "The governance admin API only answers loopback clients (network.governance.api.allow_remote)")
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			writeError(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing bearer token")
			return
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(cfg.Token)) != 1 {
			writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Invalid bearer token")
			return
		}
		if gv.Audit == nil {
			writeError(w, http.StatusServiceUnavailable, "M_NOT_READY", "Governance is not running yet")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (gv *Governance) logAPI(r *http.Request) {
	ctx := zerolog.Ctx(r.Context()).WithContext(r.Context())
	gv.logAction(ctx, audit.ActorSystem, map[string]any{"via": "http_api", "method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery})
}

func formatOf(r *http.Request, def audit.Format) (audit.Format, error) {
	name := r.URL.Query().Get("format")
	if name == "" {
		return def, nil
	}
	return audit.ParseFormat(name)
}

func intParam(r *http.Request, name string) (int64, error) {
	val := r.URL.Query().Get(name)
	if val == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative integer", name)
	}
	return n, nil
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	val := r.URL.Query().Get(name)
	if val == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, val)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time", name)
	}
	return t, nil
}

func setDownload(w http.ResponseWriter, name string, format audit.Format, attach bool) {
	if format == audit.FormatCSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	if attach {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="passerelle-%s.%s"`, name, format))
	}
}

func (gv *Governance) apiContacts(attach bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		format, err := formatOf(r, audit.FormatJSON)
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
			return
		}
		q := r.URL.Query()
		f := audit.ContactFilter{Network: q.Get("network"), Staff: id.UserID(q.Get("staff")), Query: q.Get("q")}
		f.Portal = networkPortal(q.Get("portal"))
		limit, err := intParam(r, "limit")
		if err == nil {
			var offset int64
			offset, err = intParam(r, "offset")
			f.Limit, f.Offset = int(limit), int(offset)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
			return
		}
		gv.logAPI(r)
		setDownload(w, "contacts", format, attach)
		if err = gv.Contacts.Export(r.Context(), w, format, f); err != nil {
			zerolog.Ctx(r.Context()).Err(err).Msg("Failed to export contacts")
		}
	}
}

func (gv *Governance) apiLog(attach bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		format, err := formatOf(r, audit.FormatJSON)
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
			return
		}
		q := r.URL.Query()
		f := audit.Filter{Network: q.Get("network"), Actor: q.Get("actor"), Staff: q.Get("staff"), Portal: q.Get("portal"),
			Contact: q.Get("contact"), Request: q.Get("request")}
		for _, a := range q["action"] {
			if !audit.Action(a).Valid() {
				writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", fmt.Sprintf("unknown action %q", a))
				return
			}
			f.Actions = append(f.Actions, audit.Action(a))
		}
		var limit int64
		if f.AfterSeq, err = intParam(r, "after_seq"); err == nil {
			if limit, err = intParam(r, "limit"); err == nil {
				if f.Since, err = timeParam(r, "since"); err == nil {
					f.Until, err = timeParam(r, "until")
				}
			}
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
			return
		}
		f.Limit = int(limit)
		gv.logAPI(r)
		setDownload(w, "audit-log", format, attach)
		if err = gv.Audit.Export(r.Context(), w, format, f); err != nil {
			zerolog.Ctx(r.Context()).Err(err).Msg("Failed to export audit log")
		}
	}
}

func (gv *Governance) apiVerify(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	report, err := gv.Audit.Verify(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OK bool `json:"ok"`
		audit.Report
	}{report.OK(), report})
}

func networkPortal(s string) networkid.PortalID { return networkid.PortalID(s) }
