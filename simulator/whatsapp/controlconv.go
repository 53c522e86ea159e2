package wasim

import (
	"errors"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// errBadRequest is a request the control API cannot act on.
var errBadRequest = errors.New("invalid request")

// conversationRoutes adds the control API's conversation routes (see
// ControlHandler).
func (s *Server) conversationRoutes(mux *http.ServeMux) {
	writeID := func(w http.ResponseWriter, id string, err error) {
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	}
	mux.HandleFunc("POST /reply", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From, To, Text string
			QuotedID       string `json:"quoted_id"`
			QuotedSender   string `json:"quoted_sender"`
			QuotedText     string `json:"quoted_text"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		var quoted *waE2E.Message
		if req.QuotedText != "" {
			quoted = &waE2E.Message{Conversation: proto.String(req.QuotedText)}
		}
		id, err := s.SendReply(r.Context(), req.From, req.To, req.Text, req.QuotedID, req.QuotedSender, quoted)
		writeID(w, id, err)
	})
	mux.HandleFunc("POST /react", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From, To, ID, Emoji string
			TargetSender        string `json:"target_sender"`
		}
		if readJSON(w, r, &req) {
			id, err := s.SendReaction(r.Context(), req.From, req.To, req.TargetSender, req.ID, req.Emoji)
			writeID(w, id, err)
		}
	})
	mux.HandleFunc("POST /edit", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ From, To, ID, Text string }
		if readJSON(w, r, &req) {
			id, err := s.SendEdit(r.Context(), req.From, req.To, req.ID, req.Text)
			writeID(w, id, err)
		}
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From, To, ID string
			TargetSender string `json:"target_sender"`
		}
		if readJSON(w, r, &req) {
			id, err := s.SendRevoke(r.Context(), req.From, req.To, req.TargetSender, req.ID)
			writeID(w, id, err)
		}
	})
	mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From, To string
			IDs      []string
		}
		if readJSON(w, r, &req) {
			writeResult(w, s.SendReceipt(r.Context(), req.From, req.To, types.ReceiptTypeRead, req.IDs...))
		}
	})
	mux.HandleFunc("POST /typing", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ From, To, State, Media string }
		if !readJSON(w, r, &req) {
			return
		}
		state := types.ChatPresence(req.State)
		if state != types.ChatPresenceComposing && state != types.ChatPresencePaused {
			writeError(w, errBadRequest)
			return
		}
		writeResult(w, s.SendChatState(r.Context(), req.From, req.To, state, types.ChatPresenceMedia(req.Media)))
	})
	mux.HandleFunc("POST /presence", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Phone        string
			Online       bool
			HideLastSeen bool `json:"hide_last_seen"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		n, err := s.SetPresence(req.Phone, req.Online, req.HideLastSeen)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"notified": n})
	})
	mux.HandleFunc("GET /conversation", func(w http.ResponseWriter, r *http.Request) {
		type entry struct {
			ID           string            `json:"id"`
			From         string            `json:"from"`
			Timestamp    time.Time         `json:"timestamp"`
			Text         string            `json:"text"`
			Edited       bool              `json:"edited,omitempty"`
			Revoked      bool              `json:"revoked,omitempty"`
			ReplyTo      string            `json:"reply_to,omitempty"`
			Reactions    map[string]string `json:"reactions,omitempty"`
			ReadByClient bool              `json:"read_by_client,omitempty"`
		}
		phone, chat := r.URL.Query().Get("phone"), r.URL.Query().Get("chat")
		if _, ok := s.Account(phone); !ok {
			writeError(w, ErrNoAccount)
			return
		}
		entries := s.Conversation(phone, chat)
		out := make([]entry, len(entries))
		for i, e := range entries {
			out[i] = entry{ID: e.ID, From: e.From, Timestamp: e.Timestamp, Text: e.Text, Edited: e.Edited, Revoked: e.Revoked,
				ReplyTo: e.ReplyTo, Reactions: e.Reactions, ReadByClient: e.ReadByClient}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /chat-states", func(w http.ResponseWriter, r *http.Request) {
		type state struct {
			From      string    `json:"from"`
			To        string    `json:"to"`
			State     string    `json:"state"`
			Media     string    `json:"media,omitempty"`
			Timestamp time.Time `json:"timestamp"`
		}
		states := s.ChatStates()
		out := make([]state, len(states))
		for i, cs := range states {
			out[i] = state{From: cs.From, To: cs.To, State: string(cs.State), Media: string(cs.Media), Timestamp: cs.Timestamp}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /client-presence", func(w http.ResponseWriter, r *http.Request) {
		phone, contact := r.URL.Query().Get("phone"), r.URL.Query().Get("contact")
		if _, ok := s.Account(phone); !ok {
			writeError(w, ErrNoAccount)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"available": s.ClientAvailable(phone), "subscribed": contact != "" && s.Subscribed(phone, contact)})
	})
}
