package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/governance/migration"
)

// cutOverRoutes adds the cut-over endpoints: the cut-overs, a chat's and a
// staff member's status, and the cut-over itself.
func (gv *Governance) cutOverRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+APIPrefix+"migration/cutovers", gv.apiCutOvers)
	mux.HandleFunc("GET "+APIPrefix+"migration/chat", gv.apiMigrationChat)
	mux.HandleFunc("GET "+APIPrefix+"migration/staff", gv.apiMigrationStaff)
	mux.HandleFunc("POST "+APIPrefix+"migration/cut-over", gv.apiCutOver)
}

// cutOverError answers a cut-over's error: what the caller named wrongly or
// a chat that cannot move yet is theirs to fix, else a server error.
func cutOverError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, gate.ErrUnknownPortal):
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", err.Error())
	case errors.Is(err, gate.ErrCutOverNotLinked), errors.Is(err, migration.ErrAlreadyCutOver), errors.Is(err, gate.ErrCutOverNoLogin),
		errors.Is(err, gate.ErrCutOverNoContact), errors.Is(err, gate.ErrCutOverNoRoom), errors.Is(err, ErrAmbiguousChat):
		writeError(w, http.StatusConflict, "M_FORBIDDEN", err.Error())
	default:
		migrationError(w, err)
	}
}

func (gv *Governance) apiCutOvers(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	var staff id.UserID
	if s := r.URL.Query().Get("staff"); s != "" {
		var err error
		if staff, err = migration.ValidateMatrixID(s); err != nil {
			migrationError(w, err)
			return
		}
	}
	list, err := gv.Migration.CutOvers(r.Context(), staff)
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cutovers": list})
}

func (gv *Governance) apiMigrationChat(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	portal, err := gv.FindPortal(r.Context(), r.URL.Query().Get("portal"))
	if err != nil {
		cutOverError(w, err)
		return
	}
	rep, err := gv.Migration.Chat(r.Context(), portal.PortalKey)
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (gv *Governance) apiMigrationStaff(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	staff, err := migration.ValidateMatrixID(r.URL.Query().Get("matrix_id"))
	if err != nil {
		migrationError(w, err)
		return
	}
	rows, err := gv.Migration.StaffContacts(r.Context(), staff)
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"staff": staff, "contacts": rows})
}

type cutOverRequest struct {
	Identity  string    `json:"identity"`
	Portal    string    `json:"portal"`
	Staff     id.UserID `json:"staff"`
	AllLinked bool      `json:"all_linked"`
}

type cutOverResponse struct {
	CutOver      *migration.CutOver `json:"cut_over,omitempty"`
	Missing      []string           `json:"missing,omitempty"`
	PinnedNotice id.EventID         `json:"pinned_notice,omitempty"`
	Final        string             `json:"final_message,omitempty"`
	Report       string             `json:"report,omitempty"`
}

func (gv *Governance) apiCutOver(w http.ResponseWriter, r *http.Request) {
	var req cutOverRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "The body must be a JSON object")
		return
	}
	gv.logAPI(r)
	ctx := r.Context()
	var staff id.UserID
	if req.Staff != "" {
		var err error
		if staff, err = migration.ValidateMatrixID(string(req.Staff)); err != nil {
			migrationError(w, err)
			return
		}
	}
	if req.AllLinked {
		if staff == "" {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "all_linked needs staff")
			return
		}
		writeJSON(w, http.StatusOK, cutOverResponse{Report: gv.cutOverAllLinked(ctx, staff, id.UserID(audit.ActorSystem))})
		return
	}
	var portal *bridgev2.Portal
	var err error
	switch {
	case req.Portal != "" && req.Identity == "":
		portal, err = gv.FindPortal(ctx, req.Portal)
	case req.Identity != "" && req.Portal == "":
		portal, err = gv.portalToCutOver(ctx, req.Identity, staff)
	default:
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "Give either identity or portal")
		return
	}
	if err != nil {
		cutOverError(w, err)
		return
	}
	res, err := gv.CutOverPortal(ctx, portal, id.UserID(audit.ActorSystem))
	if err != nil {
		cutOverError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, cutOverResponse{CutOver: res.CutOver, Missing: res.Missing, PinnedNotice: res.PinnedNotice, Final: res.Final})
}
