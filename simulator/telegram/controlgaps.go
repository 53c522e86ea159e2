package tgsim

import (
	"encoding/json"
	"net/http"
	"time"
)

// registerGapControl adds the controls of gaps and self-destructing
// messages to the control API:
//
//	POST /difference {"slice","too_long"}   getDifference slices of slice events (0: 1000), differenceTooLong
//	                                         for a client more than too_long pts behind (0: never)
//	POST /updates/pause  {"account"}        stop pushing updates to the account's sessions (a gap)
//	POST /updates/resume {"account"}        push again, starting with updatesTooLong
//	POST /ttl {"by","peer","seconds"}       by sets the self-destruct timer of its chat with peer (0: off)
//	POST /clock {"advance_seconds"}         move the simulator's clock ahead; expired messages are deleted
func (s *Server) registerGapControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /difference", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Slice   int `json:"slice"`
			TooLong int `json:"too_long"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		s.SetDifferenceSlice(req.Slice)
		s.SetDifferenceTooLong(req.TooLong)
		httpJSON(w, http.StatusOK, req)
	})
	pause := func(resume bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				Account json.RawMessage `json:"account"`
			}
			if !decodeControl(w, r, &req) {
				return
			}
			ids, ok := s.resolveRefs(w, req.Account)
			if !ok {
				return
			}
			if resume {
				s.ResumeUpdates(ids[0])
			} else {
				s.PauseUpdates(ids[0])
			}
			httpJSON(w, http.StatusOK, map[string]bool{"paused": !resume})
		}
	}
	mux.HandleFunc("POST /updates/pause", pause(false))
	mux.HandleFunc("POST /updates/resume", pause(true))
	mux.HandleFunc("POST /ttl", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			By      json.RawMessage `json:"by"`
			Peer    json.RawMessage `json:"peer"`
			Seconds int             `json:"seconds"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		ids, ok := s.resolveRefs(w, req.By, req.Peer)
		if !ok {
			return
		}
		if err := s.SetHistoryTTL(ids[0], ids[1], time.Duration(req.Seconds)*time.Second); err != nil {
			worldError(w, err)
			return
		}
		httpJSON(w, http.StatusOK, map[string]int{"seconds": req.Seconds})
	})
	mux.HandleFunc("POST /clock", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AdvanceSeconds int `json:"advance_seconds"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		s.AdvanceClock(time.Duration(req.AdvanceSeconds) * time.Second)
		httpJSON(w, http.StatusOK, map[string]string{"now": s.Now().UTC().Format(time.RFC3339)})
	})
}
