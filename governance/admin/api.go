package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
)

// APIPrefix is where the HTTP admin API lives on the appservice listener.
//
// Authentication: a bearer token (network.governance.api.token, at least 32
// bytes) in the Authorization header. Without a valid token the answer is
// 401; from a client that is not loopback (unless api.allow_remote), with
// X-Forwarded-For or Forwarded (unless api.trust_forwarded: behind a local
// proxy every client looks loopback), or with the API switched off (no token
// configured), it is 403. Every call is logged as admin_action with its
// caller: remote address, the client a trusted proxy names, and a
// fingerprint of the token (never the token).
//
// Every response has a read and a write deadline (APIReadTimeout,
// APIWriteTimeout); a streamed export gets APIWriteTimeout for each write,
// so a client that stops reading is dropped, and meanwhile holds no
// database lock (exports read in pages).
//
//	GET contacts?q=&network=&staff=&portal=&limit=&offset=&format=json|csv
//	GET log?after_seq=&since=&until=&action=&network=&actor=&portal=&limit=&format=json|csv
//	    a page of at most MaxLogPage entries (DefaultLogPage without limit),
//	    oldest first after after_seq; a full page has a Link: <…>; rel="next"
//	    header with the next cursor
//	GET verify?head_seq=&head_hash=    (optionally against a published head)
//	GET head                           (the chain head now)
//	GET export/contacts?format=csv|json      (as an attachment)
//	GET export/log?format=csv|json           (ends with the head it stops at)
const APIPrefix = "/_passerelle/governance/v1/"

// Paging of GET log.
const (
	DefaultLogPage = 100
	MaxLogPage     = 1000
)

// Default deadlines of the admin API.
const (
	DefaultAPIReadTimeout  = 30 * time.Second
	DefaultAPIWriteTimeout = 60 * time.Second
)

// APIHandler returns the HTTP admin API.
func (gv *Governance) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+APIPrefix+"contacts", gv.apiContacts(false))
	mux.HandleFunc("GET "+APIPrefix+"export/contacts", gv.apiContacts(true))
	mux.HandleFunc("GET "+APIPrefix+"log", gv.apiLog(false))
	mux.HandleFunc("GET "+APIPrefix+"export/log", gv.apiLog(true))
	mux.HandleFunc("GET "+APIPrefix+"verify", gv.apiVerify)
	mux.HandleFunc("GET "+APIPrefix+"head", gv.apiHead)
	gv.migrationRoutes(mux)
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

// caller is who made an API call, as the audit log records it.
type caller struct {
	RemoteAddr string `json:"remote_addr"`
	// Client is the address a trusted proxy names (api.trust_forwarded).
	Client string `json:"client,omitempty"`
	// TokenFingerprint identifies the token used without revealing it.
	TokenFingerprint string `json:"token_fingerprint"`
}

type callerKey struct{}

// TokenFingerprint is how the audit log names an API token: the start of
// its SHA-256, which tells tokens apart without revealing them.
func TokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// forwardedClient returns the client address that a proxy put in the
// request (the nearest hop: the last X-Forwarded-For entry, or the last
// for= of Forwarded), and whether the request carries such a header at all.
func forwardedClient(r *http.Request) (string, bool) {
	xff, fwd := r.Header.Values("X-Forwarded-For"), r.Header.Values("Forwarded")
	if len(xff) == 0 && len(fwd) == 0 {
		return "", false
	}
	client := ""
	if len(fwd) > 0 {
		for _, elem := range strings.Split(strings.Join(fwd, ","), ",") {
			for _, pair := range strings.Split(elem, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, "for") {
					client = strings.Trim(v, `"`)
				}
			}
		}
	} else {
		hops := strings.Split(strings.Join(xff, ","), ",")
		client = strings.TrimSpace(hops[len(hops)-1])
	}
	return client, true
}

func (gv *Governance) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Not every ResponseWriter has deadlines (a test recorder): then
		// there is nothing to bound.
		_ = rc.SetReadDeadline(time.Now().Add(gv.readTimeout()))
		_ = rc.SetWriteDeadline(time.Now().Add(gv.writeTimeout()))
		cfg := gv.Config().API
		if cfg.Token == "" {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "The governance admin API is switched off (network.governance.api.token is empty)")
			return
		}
		who := caller{RemoteAddr: r.RemoteAddr}
		if client, forwarded := forwardedClient(r); forwarded {
			if !cfg.TrustForwarded {
				writeError(w, http.StatusForbidden, "M_FORBIDDEN", "The governance admin API refuses proxied requests (X-Forwarded-For, Forwarded) unless network.governance.api.trust_forwarded is set")
				return
			}
			if client == "" {
				writeError(w, http.StatusForbidden, "M_FORBIDDEN", "The proxy did not name the client")
				return
			}
			who.Client = client
		}
		if !cfg.AllowRemote && (!isLoopback(r.RemoteAddr) || (who.Client != "" && !isLoopback(who.Client))) {
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
		who.TokenFingerprint = TokenFingerprint(token)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, who)))
	})
}

func (gv *Governance) readTimeout() time.Duration {
	if gv.APIReadTimeout > 0 {
		return gv.APIReadTimeout
	}
	return DefaultAPIReadTimeout
}

func (gv *Governance) writeTimeout() time.Duration {
	if gv.APIWriteTimeout > 0 {
		return gv.APIWriteTimeout
	}
	return DefaultAPIWriteTimeout
}

// progressWriter gives every write of a streamed response the write
// timeout anew: a client that reads slowly but steadily gets a long export;
// one that stops reading is cut off after the timeout.
type progressWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (pw *progressWriter) Write(p []byte) (int, error) {
	_ = pw.rc.SetWriteDeadline(time.Now().Add(pw.timeout))
	return pw.w.Write(p)
}

func (gv *Governance) streamTo(w http.ResponseWriter) io.Writer {
	return &progressWriter{w: w, rc: http.NewResponseController(w), timeout: gv.writeTimeout()}
}

// logAPI writes the admin_action entry of a call, with its caller.
func (gv *Governance) logAPI(r *http.Request) {
	ctx := zerolog.Ctx(r.Context()).WithContext(r.Context())
	who, _ := r.Context().Value(callerKey{}).(caller)
	gv.logAction(ctx, audit.ActorSystem, map[string]any{"via": "http_api", "method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "caller": who})
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
		if err = gv.Contacts.Export(r.Context(), gv.streamTo(w), format, f); err != nil {
			zerolog.Ctx(r.Context()).Err(err).Msg("Failed to export contacts")
		}
	}
}

func (gv *Governance) apiLog(export bool) http.HandlerFunc {
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
		if err == nil && !export && limit > MaxLogPage {
			err = fmt.Errorf("limit must be at most %d (page with after_seq)", MaxLogPage)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
			return
		}
		gv.logAPI(r)
		if export {
			setDownload(w, "audit-log", format, true)
			if err = gv.Audit.Export(r.Context(), gv.streamTo(w), format, f); err != nil {
				zerolog.Ctx(r.Context()).Err(err).Msg("Failed to export audit log")
			}
			return
		}
		f.Limit = DefaultLogPage
		if limit > 0 {
			f.Limit = int(limit)
		}
		entries, err := gv.Audit.List(r.Context(), f)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
			return
		}
		if len(entries) == f.Limit {
			next := r.URL.Query()
			next.Set("after_seq", strconv.FormatInt(entries[len(entries)-1].Seq, 10))
			next.Set("limit", strconv.Itoa(f.Limit))
			w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
		}
		setDownload(w, "audit-log", format, false)
		if err = audit.WriteEntries(gv.streamTo(w), format, entries); err != nil {
			zerolog.Ctx(r.Context()).Err(err).Msg("Failed to write audit log page")
		}
	}
}

func (gv *Governance) apiVerify(w http.ResponseWriter, r *http.Request) {
	var published *audit.Anchor
	if q := r.URL.Query(); q.Has("head_seq") || q.Has("head_hash") {
		seq, err := intParam(r, "head_seq")
		if err != nil || seq == 0 || len(q.Get("head_hash")) != 64 {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "head_seq (a positive integer) and head_hash (64 hex digits) go together")
			return
		}
		published = &audit.Anchor{Seq: seq, Hash: strings.ToLower(q.Get("head_hash"))}
	}
	gv.logAPI(r)
	report, err := gv.verify(r.Context(), published)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OK bool `json:"ok"`
		audit.Report
	}{report.OK(), report})
}

func (gv *Governance) apiHead(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	h, err := gv.Audit.Head(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func networkPortal(s string) networkid.PortalID { return networkid.PortalID(s) }

// Migration routes (same authentication; changes are made as the system
// actor, the caller is in the call's admin_action entry):
//
//	GET  directory?network=&state=&matrix_id=&department=&limit=&offset=
//	POST directory          {"identity","matrix_id","department","label"}: link or correct
//	POST directory/import   a CSV body (identity,matrix_id,department,label)
//	POST directory/confirm  {"identity"}
//	POST directory/unlink   {"identity"}
//	GET  migration/summary  counts per network and status
//	GET  migration/contact?identity=
func (gv *Governance) migrationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+APIPrefix+"directory", gv.apiDirectoryList)
	mux.HandleFunc("POST "+APIPrefix+"directory", gv.apiDirectoryChange("link"))
	mux.HandleFunc("POST "+APIPrefix+"directory/confirm", gv.apiDirectoryChange("confirm"))
	mux.HandleFunc("POST "+APIPrefix+"directory/unlink", gv.apiDirectoryChange("unlink"))
	mux.HandleFunc("POST "+APIPrefix+"directory/import", gv.apiDirectoryImport)
	mux.HandleFunc("GET "+APIPrefix+"migration/summary", gv.apiMigrationSummary)
	mux.HandleFunc("GET "+APIPrefix+"migration/contact", gv.apiMigrationContact)
	mux.HandleFunc("GET "+APIPrefix+"migration/progress", gv.apiProgress)
	gv.inviteRoutes(mux)
	gv.cutOverRoutes(mux)
}

// migrationError answers err: a bad request for what the caller named
// wrongly, else a server error.
func migrationError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, migration.ErrUnknownContact), errors.Is(err, migration.ErrNotLinked):
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", err.Error())
	case errors.Is(err, migration.ErrImportTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", err.Error())
	case errors.Is(err, migration.ErrAmbiguousContact), errors.Is(err, migration.ErrBadIdentity),
		errors.Is(err, migration.ErrBadMatrixID), errors.Is(err, migration.ErrNotPending):
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
	}
}

func (gv *Governance) apiDirectoryList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(r, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
		return
	}
	offset, err := intParam(r, "offset")
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
		return
	}
	gv.logAPI(r)
	list, err := gv.Migration.List(r.Context(), migration.ListFilter{Network: q.Get("network"), State: migration.State(q.Get("state")),
		MatrixID: id.UserID(q.Get("matrix_id")), Department: q.Get("department"), Limit: int(min(limit, migration.MaxList)), Offset: int(min(offset, 1<<31))})
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": list})
}

type directoryChange struct {
	Identity   string    `json:"identity"`
	MatrixID   id.UserID `json:"matrix_id"`
	Department string    `json:"department"`
	Label      string    `json:"label"`
}

func (gv *Governance) apiDirectoryChange(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req directoryChange
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "M_NOT_JSON", "The body must be a JSON object")
			return
		}
		gv.logAPI(r)
		ctx := r.Context()
		ident, err := gv.Migration.Resolve(ctx, req.Identity)
		if err != nil {
			migrationError(w, err)
			return
		}
		var e *migration.Entry
		switch op {
		case "link":
			e, err = gv.Migration.Link(ctx, audit.ActorSystem, migration.LinkRequest{Identity: ident, MatrixID: req.MatrixID,
				Department: req.Department, Label: req.Label, Source: migration.SourceAdmin})
		case "confirm":
			e, err = gv.Migration.Confirm(ctx, audit.ActorSystem, ident)
		default:
			e, err = gv.Migration.Unlink(ctx, audit.ActorSystem, ident)
		}
		if err != nil {
			migrationError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, e)
	}
}

func (gv *Governance) apiDirectoryImport(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	res, err := gv.Migration.Import(r.Context(), audit.ActorSystem, r.Body)
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (gv *Governance) apiMigrationSummary(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	counts, err := gv.Migration.Summary(r.Context())
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"networks": counts})
}

func (gv *Governance) apiMigrationContact(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	rep, err := gv.Migration.Contact(r.Context(), r.URL.Query().Get("identity"))
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
