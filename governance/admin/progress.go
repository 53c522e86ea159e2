package admin

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/matrix"

	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
)

// ProgressPrefix is where the progress page lives on the appservice
// listener (the admin API's):
//
//	GET  progress              the page (needs a session)
//	GET  progress.json         the report (needs a session)
//	GET  progress/export?table=&format=csv|json   one table (needs a session)
//	GET  progress/login#token= a page with a button that logs in (the token
//	                           is in the fragment, which reaches no server
//	                           log; ?token= works too)
//	POST progress/session      uses the single-use token, sets the session
//	                           cookie and redirects to the page
//	POST progress/logout       ends the session (CSRF token + Origin)
//	GET  static/…              the page's script, style and chart library
//
// Authentication: a login link from `gov-migration progress-link` (valid
// ProgressLinkTTL, once) opens a session of ProgressSessionTTL in an
// HttpOnly, SameSite=Strict cookie scoped to this prefix (Secure unless the
// client is on loopback over plain HTTP). Opening the link (GET) changes
// nothing, so a link preview cannot use it up; logging in is a POST from
// the page itself (Origin checked). Every POST with a session checks the
// session's CSRF token and the Origin. Like the admin API, it answers
// loopback clients only unless api.allow_remote is set, and refuses
// proxied requests unless api.trust_forwarded is set.
const ProgressPrefix = "/_passerelle/admin/"

// progressCookie is the session cookie's name.
const progressCookie = "passerelle_progress"

//go:embed web
var webFiles embed.FS

var progressTemplates = template.Must(template.ParseFS(webFiles, "web/*.html"))

// Figures returns the progress figures of the running gateway.
func (gv *Governance) Figures() *migration.Figures {
	return &migration.Figures{Dir: gv.Migration, Logins: gv.staffLogins}
}

// staffLogins lists the logins bridgev2 holds now.
func (gv *Governance) staffLogins(ctx context.Context) ([]migration.StaffLogin, error) {
	br := gv.Bridge()
	rows, err := br.DB.Database.Query(ctx, `SELECT id, user_mxid FROM user_login WHERE bridge_id = $1`, br.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []migration.StaffLogin
	for rows.Next() {
		var l migration.StaffLogin
		if err = rows.Scan(&l.Login, &l.Staff); err != nil {
			return nil, err
		}
		l.Network = netid.Network(l.Login)
		out = append(out, l)
	}
	return out, rows.Err()
}

// progressPageURL is where an admin's browser reaches the listener.
func (gv *Governance) progressPageURL() (string, error) {
	base := gv.Config().Migration.Progress.PageURL
	if base == "" {
		if mc, ok := gv.Bridge().Matrix.(*matrix.Connector); ok && mc.Config != nil {
			base = mc.Config.AppService.Address
		}
	}
	if base == "" {
		return "", fmt.Errorf("the page's address is unknown: set network.governance.migration.progress.page_url")
	}
	return strings.TrimSuffix(base, "/") + ProgressPrefix + "progress", nil
}

// ProgressHandler serves the progress page under ProgressPrefix.
func (gv *Governance) ProgressHandler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFiles, "web")
	mux.Handle("GET "+ProgressPrefix+"static/", http.StripPrefix(ProgressPrefix+"static/", noListing(http.FileServerFS(static))))
	mux.HandleFunc("GET "+ProgressPrefix+"progress/login", gv.progressLoginPage)
	mux.HandleFunc("POST "+ProgressPrefix+"progress/session", gv.progressLogin)
	mux.HandleFunc("POST "+ProgressPrefix+"progress/logout", gv.withSession(true, gv.progressLogout))
	mux.HandleFunc("GET "+ProgressPrefix+"progress", gv.withSession(false, gv.progressPage))
	mux.HandleFunc("GET "+ProgressPrefix+"progress.json", gv.withSession(false, gv.progressJSON))
	mux.HandleFunc("GET "+ProgressPrefix+"progress/export", gv.withSession(false, gv.progressExport))
	return gv.progressClient(mux)
}

func noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") || strings.HasSuffix(r.URL.Path, ".html") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// progressClient applies the admin API's client rules (loopback unless
// allow_remote, no proxy unless trust_forwarded) and the page's headers.
func (gv *Governance) progressClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(gv.readTimeout()))
		_ = rc.SetWriteDeadline(time.Now().Add(gv.writeTimeout()))
		cfg := gv.Config().API
		client, forwarded := forwardedClient(r)
		switch {
		case forwarded && !cfg.TrustForwarded:
			progressRefuse(w, http.StatusForbidden, "The progress page refuses proxied requests unless network.governance.api.trust_forwarded is set.")
			return
		case forwarded && client == "":
			progressRefuse(w, http.StatusForbidden, "The proxy did not name the client.")
			return
		case !cfg.AllowRemote && (!isLoopback(r.RemoteAddr) || (client != "" && !isLoopback(client))):
			progressRefuse(w, http.StatusForbidden, "The progress page only answers loopback clients (network.governance.api.allow_remote).")
			return
		case gv.DB == nil || gv.Migration == nil:
			progressRefuse(w, http.StatusServiceUnavailable, "Governance is not running yet.")
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // not no-referrer: it makes the Origin of a form POST "null"
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// secureCookie: Secure unless a loopback client over plain HTTP.
func secureCookie(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	client, forwarded := forwardedClient(r)
	return !isLoopback(r.RemoteAddr) || (forwarded && !isLoopback(client))
}

func progressRefuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = progressTemplates.ExecuteTemplate(w, "refused.html", map[string]any{"Message": msg})
}

// sameOrigin reports whether the request's Origin is this listener.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host && (u.Scheme == "http" || u.Scheme == "https")
}

type sessionKey struct{}

// withSession lets requests with a live session of a configured admin
// through; POSTs (state) also need the session's CSRF token and the
// Origin.
func (gv *Governance) withSession(post bool, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(progressCookie)
		var sess *progressSession
		if err == nil {
			if sess, err = gv.progressSessionOf(r.Context(), c.Value); err != nil {
				zerolog.Ctx(r.Context()).Err(err).Msg("Failed to look up progress session")
				progressRefuse(w, http.StatusInternalServerError, "Could not check the session.")
				return
			}
		}
		if sess == nil {
			progressRefuse(w, http.StatusUnauthorized, "Not logged in, or the session has expired: ask the bot for a login link with `gov-migration progress-link`.")
			return
		}
		if !gv.IsAdmin(sess.Admin) {
			progressRefuse(w, http.StatusForbidden, "Only the organisation's governance admins may see the progress page.")
			return
		}
		if post {
			token := r.Header.Get("X-CSRF-Token")
			if token == "" {
				token = r.PostFormValue("csrf_token")
			}
			if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) != 1 {
				progressRefuse(w, http.StatusForbidden, "Cross-site request refused.")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	}
}

func (gv *Governance) progressLoginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = progressTemplates.ExecuteTemplate(w, "login.html", map[string]any{"Token": r.URL.Query().Get("token"), "Action": ProgressPrefix + "progress/session"})
}

func (gv *Governance) progressLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !sameOrigin(r) {
		progressRefuse(w, http.StatusForbidden, "Cross-site request refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	sessionID, sess, err := gv.redeemProgressLink(ctx, r.PostFormValue("token"))
	if err == nil && !gv.IsAdmin(sess.Admin) {
		err = errors.New("only the organisation's governance admins may see the progress page")
		_ = gv.endProgressSession(ctx, sessionID)
	}
	if err != nil {
		gv.logAudit(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionProgressLogin, Details: audit.Details(map[string]any{"refused": err.Error(), "remote_addr": r.RemoteAddr})})
		status := http.StatusForbidden
		if errors.Is(err, ErrLinkUnknown) || errors.Is(err, ErrLinkUsed) || errors.Is(err, ErrLinkExpired) {
			status = http.StatusUnauthorized
		}
		progressRefuse(w, status, capitalise(err.Error())+".")
		return
	}
	gv.logAudit(ctx, audit.Entry{Actor: string(sess.Admin), Action: audit.ActionProgressLogin, Details: audit.Details(map[string]any{"remote_addr": r.RemoteAddr})})
	http.SetCookie(w, &http.Cookie{Name: progressCookie, Value: sessionID, Path: ProgressPrefix, MaxAge: int(ProgressSessionTTL / time.Second),
		HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, ProgressPrefix+"progress", http.StatusSeeOther)
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (gv *Governance) progressLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(progressCookie); err == nil {
		_ = gv.endProgressSession(r.Context(), c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: progressCookie, Value: "", Path: ProgressPrefix, MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
	progressRefuse(w, http.StatusOK, "Logged out.")
}

func (gv *Governance) logAudit(ctx context.Context, e audit.Entry) {
	if _, err := gv.Audit.Append(ctx, e); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to log progress page action")
	}
}

func (gv *Governance) progressPage(w http.ResponseWriter, r *http.Request) {
	sess := r.Context().Value(sessionKey{}).(*progressSession)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = progressTemplates.ExecuteTemplate(w, "progress.html", map[string]any{
		"Admin": sess.Admin, "CSRF": sess.CSRF, "Prefix": ProgressPrefix,
	})
}

func (gv *Governance) report(r *http.Request) (*migration.Report, error) {
	figs := gv.Figures()
	return figs.Progress(r.Context(), gv.now())
}

// apiProgress is GET migration/progress of the bearer-token admin API:
// the page's figures, for scripts.
func (gv *Governance) apiProgress(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	gv.progressJSON(w, r)
}

func (gv *Governance) progressJSON(w http.ResponseWriter, r *http.Request) {
	rep, err := gv.report(r)
	if err != nil {
		zerolog.Ctx(r.Context()).Err(err).Msg("Failed to compute progress")
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "Could not compute the figures")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		*migration.Report
		Tables []migration.Table `json:"tables"`
	}{rep, rep.Tables()})
}

func (gv *Governance) progressExport(w http.ResponseWriter, r *http.Request) {
	name, format := r.URL.Query().Get("table"), r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "format must be csv or json")
		return
	}
	rep, err := gv.report(r)
	if err != nil {
		zerolog.Ctx(r.Context()).Err(err).Msg("Failed to compute progress")
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "Could not compute the figures")
		return
	}
	tb, ok := rep.Table(name)
	if !ok {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", fmt.Sprintf("no table %q: the tables are %s", name, strings.Join(migration.TableNames, ", ")))
		return
	}
	filename := fmt.Sprintf("passerelle-%s-%s.%s", tb.Name, rep.Week, format)
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.Write(tb.Header)
		for _, row := range tb.Rows {
			_ = cw.Write(csvSafe(row))
		}
		cw.Flush()
		return
	}
	objs := make([]map[string]string, len(tb.Rows))
	for i, row := range tb.Rows {
		objs[i] = map[string]string{}
		for j, h := range tb.Header {
			objs[i][h] = row[j]
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(objs)
}

// csvSafe keeps a spreadsheet from reading a cell (a department name) as a
// formula.
func csvSafe(row []string) []string {
	out := make([]string, len(row))
	for i, v := range row {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			if _, err := fmt.Sscan(v, new(float64)); err != nil {
				v = "'" + v
			}
		}
		out[i] = v
	}
	return out
}
