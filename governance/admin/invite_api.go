package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/governance/migration"
)

// inviteRoutes are the admin API's departments and invitations:
//
//	GET  migration/departments         each staff member's department
//	POST migration/department          {"staff", "department"} ("" clears)
//	POST migration/invite              {"identity", "staff"}: invite through staff's chat
//	POST migration/invite-department   {"department", "dry_run"}: the plan; without dry_run the run starts (202)
//	POST migration/invite-stop         stop the running department's invitations
func (gv *Governance) inviteRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+APIPrefix+"migration/departments", gv.apiDepartments)
	mux.HandleFunc("POST "+APIPrefix+"migration/department", gv.apiSetDepartment)
	mux.HandleFunc("POST "+APIPrefix+"migration/invite", gv.apiInvite)
	mux.HandleFunc("POST "+APIPrefix+"migration/invite-department", gv.apiInviteDepartment)
	mux.HandleFunc("POST "+APIPrefix+"migration/invite-stop", gv.apiInviteStop)
}

// readJSON decodes a small JSON body into v, or answers a bad request.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "The body must be a JSON object")
		return false
	}
	return true
}

// inviteError answers an invitation's error.
func inviteError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, migration.ErrInvitedRecently), errors.Is(err, migration.ErrAlreadyOnMatrix), errors.Is(err, ErrInviteRunning),
		errors.Is(err, ErrInviteInFlight):
		writeError(w, http.StatusConflict, "M_CONFLICT", inviteErrorText(err))
	case errors.Is(err, ErrRefusedInvite), errors.Is(err, ErrNotYourChat):
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", inviteErrorText(err))
	case errors.Is(err, ErrNoChat), errors.Is(err, migration.ErrUnknownDepartment), errors.Is(err, ErrNoInviteRun):
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", err.Error())
	default:
		migrationError(w, err)
	}
}

func (gv *Governance) apiDepartments(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	depts, err := gv.Migration.StaffDepartments(r.Context())
	if err != nil {
		migrationError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"staff": depts})
}

func (gv *Governance) apiSetDepartment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Staff      id.UserID `json:"staff"`
		Department string    `json:"department"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	gv.logAPI(r)
	if err := gv.Migration.SetStaffDepartment(r.Context(), audit.ActorSystem, req.Staff, req.Department); err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (gv *Governance) apiInvite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Identity string    `json:"identity"`
		Staff    id.UserID `json:"staff"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	gv.logAPI(r)
	staff, err := migration.ValidateMatrixID(string(req.Staff))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "staff: "+err.Error())
		return
	}
	res, err := gv.inviteContact(r.Context(), audit.ActorSystem, req.Identity, staff)
	if err != nil {
		inviteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (gv *Governance) apiInviteDepartment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Department string `json:"department"`
		DryRun     bool   `json:"dry_run"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	gv.logAPI(r)
	plan, err := gv.planDepartment(r.Context(), req.Department)
	if err != nil {
		inviteError(w, err)
		return
	}
	if req.DryRun || len(plan.targets) == 0 {
		writeJSON(w, http.StatusOK, plan)
		return
	}
	if err = gv.startDepartment(r.Context(), audit.ActorSystem, plan); err != nil {
		inviteError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, plan)
}

func (gv *Governance) apiInviteStop(w http.ResponseWriter, r *http.Request) {
	gv.logAPI(r)
	dept, err := gv.stopDepartment(audit.ActorSystem)
	if err != nil {
		inviteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stopped": dept})
}
