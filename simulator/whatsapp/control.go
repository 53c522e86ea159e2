package wasim

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// ControlHandler serves a small JSON API to drive the simulator from outside
// the process (demo stack, manual testing):
//
//	GET  /accounts                                  list accounts
//	POST /accounts      {"phone","name"}            create an account
//	POST /send          {"from","to","text"}        send a text (to: phone or group JID) → {"id"}
//	POST /scan          {"phone","qr"}              scan a client's QR code
//	POST /pairing-code  {"phone","code"}            enter a client's pairing code
//	POST /groups        {"owner","name","topic","participants"} → {"jid"}
//	POST /unpair        {"phone"}                   log out all linked devices
//	POST /replace-stream {"phone"}                  another connection takes over the linked clients'
//	                                                sessions: <stream:error><conflict type="replaced"/>
//	GET  /messages                                  messages simulated phones received
//	GET  /root-key                                  {"public_key": hex}
//	POST /send-media    {"from","to","kind","data" (base64),"mime","file_name",
//	                     "caption","width","height","seconds","waveform" (base64)} → {"id","direct_path"}
//	POST /send-message  {"from","to","message" (waE2E.Message as protojson)} → {"id"}
//	                    (locations, live locations, contact cards, polls, …)
//	POST /expire-media  {"direct_path"}                    answer 410 for it from now on
//	GET  /media?to=&id=                                    bytes of a file a simulated phone received
//
// The conversation around messages (a contact acting, then what it saw):
//
//	POST /reply    {"from","to","text","quoted_id","quoted_sender","quoted_text"} → {"id"}
//	POST /react    {"from","to","target_sender","id","emoji"} → {"id"}   ("" emoji removes)
//	POST /edit     {"from","to","id","text"} → {"id"}           (422 past the 15-minute window)
//	POST /revoke   {"from","to","target_sender","id"} → {"id"}  (422 unless the sender or a group admin)
//	POST /read     {"from","to","ids"}                          the contact reads messages of to
//	POST /typing   {"from","to","state" (composing|paused),"media"}
//	POST /presence {"phone","online","hide_last_seen"} → {"notified"}
//	GET  /conversation?phone=&chat=   the chat as phone sees it: edits applied, revocations,
//	                                  reactions, which of its messages the client read
//	GET  /chat-states                 typing the linked clients showed
//	GET  /client-presence?phone=&contact=  {"available","subscribed"} of phone's linked client
//
// Newsletters (channels) and communities:
//
//	POST /newsletters           {"owner","name","description"} → {"jid"}
//	POST /newsletters/follow    {"phone","newsletter"}   follow it from the phone (join notification)
//	POST /newsletters/unfollow  {"phone","newsletter"}   (422 when not a follower)
//	POST /newsletters/post      {"newsletter","text"} → {"id"}   a post to every follower
//	GET  /newsletters/{jid}     {"jid","name","description","owner","followers"}
//	POST /communities           {"owner","name","participants"} → {"jid","announcements"}
//
// History (what a device linked afterwards gets in its history sync):
//
//	POST /seed-history {"phone","chat","count"} → {"ids"}   count texts from both sides, a minute
//	                   apart, ending an hour ago; or "messages": [{"from","text","time" (RFC 3339),
//	                   "reply_to","reactions" {phone: emoji},"media" {"kind","data" (base64),"mime"}}]
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	s.conversationRoutes(mux)
	s.groupMetaRoutes(mux)
	s.inviteRoutes(mux)
	s.newsletterRoutes(mux)
	s.historyRoutes(mux)
	s.disappearRoutes(mux)
	mux.HandleFunc("GET /accounts", func(w http.ResponseWriter, r *http.Request) {
		type device struct {
			JID    string `json:"jid"`
			Online bool   `json:"online"`
		}
		type account struct {
			Phone    string   `json:"phone"`
			PushName string   `json:"push_name"`
			JID      string   `json:"jid"`
			LID      string   `json:"lid"`
			Devices  []device `json:"devices"`
		}
		accs := s.Accounts()
		out := make([]account, 0, len(accs))
		s.mu.Lock()
		for _, a := range accs {
			acc := account{Phone: a.Phone, PushName: a.PushName, JID: a.JID.String(), LID: a.LID.String(), Devices: []device{}}
			for id, d := range a.devices {
				acc.Devices = append(acc.Devices, device{JID: a.deviceJID(id).String(), Online: d.conn != nil && d.conn.ready})
			}
			out = append(out, acc)
		}
		s.mu.Unlock()
		slices.SortFunc(out, func(a, b account) int { return strings.Compare(a.Phone, b.Phone) })
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /accounts", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone, Name string }
		if !readJSON(w, r, &req) {
			return
		}
		acc, err := s.CreateAccount(req.Phone, req.Name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"phone": acc.Phone, "jid": acc.JID.String(), "lid": acc.LID.String()})
	})
	mux.HandleFunc("POST /send", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ From, To, Text string }
		if !readJSON(w, r, &req) {
			return
		}
		var id string
		var err error
		if strings.HasSuffix(req.To, "@"+types.GroupServer) {
			id, err = s.SendGroupText(r.Context(), req.From, req.To, req.Text, nil)
		} else {
			id, err = s.SendText(r.Context(), req.From, req.To, req.Text)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	})
	mux.HandleFunc("POST /scan", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone, QR string }
		if readJSON(w, r, &req) {
			writeResult(w, s.ScanQR(r.Context(), req.Phone, req.QR))
		}
	})
	mux.HandleFunc("POST /pairing-code", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone, Code string }
		if readJSON(w, r, &req) {
			writeResult(w, s.EnterPairingCode(r.Context(), req.Phone, req.Code))
		}
	})
	mux.HandleFunc("POST /groups", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Owner, Name, Topic string
			Participants       []string
		}
		if !readJSON(w, r, &req) {
			return
		}
		jid, err := s.CreateGroup(r.Context(), req.Owner, req.Name, req.Topic, req.Participants)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"jid": jid})
	})
	mux.HandleFunc("POST /unpair", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone string }
		if readJSON(w, r, &req) {
			writeResult(w, s.Unpair(r.Context(), req.Phone))
		}
	})
	mux.HandleFunc("POST /replace-stream", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Phone string }
		if readJSON(w, r, &req) {
			writeResult(w, s.ReplaceStream(req.Phone))
		}
	})
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		type message struct {
			ID        string    `json:"id"`
			From      string    `json:"from"`
			To        string    `json:"to"`
			Text      string    `json:"text"`
			Timestamp time.Time `json:"timestamp"`
			// Message is the whole message (protojson): media metadata,
			// locations, contact cards, polls.
			Message json.RawMessage `json:"message,omitempty"`
		}
		msgs := s.Messages()
		out := make([]message, len(msgs))
		for i, m := range msgs {
			out[i] = message{ID: m.ID, From: m.From, To: m.To, Text: m.Text(), Timestamp: m.Timestamp}
			if raw, err := protojson.Marshal(m.Message); err == nil {
				out[i].Message = raw
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /send-media", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From, To, Kind, MIME, Caption string
			FileName                      string `json:"file_name"`
			Data, Waveform                []byte
			Width, Height, Seconds        uint32
		}
		if !readJSONLimit(w, r, &req, 200<<20) {
			return
		}
		id, up, err := s.SendMedia(r.Context(), req.From, req.To, MediaSpec{
			Kind: req.Kind, Data: req.Data, MIME: req.MIME, FileName: req.FileName, Caption: req.Caption,
			Width: req.Width, Height: req.Height, Seconds: req.Seconds, Waveform: req.Waveform,
		})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "direct_path": up.DirectPath})
	})
	mux.HandleFunc("POST /send-message", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From, To string
			Message  json.RawMessage
		}
		if !readJSON(w, r, &req) {
			return
		}
		var msg waE2E.Message
		if err := protojson.Unmarshal(req.Message, &msg); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid message: " + err.Error()})
			return
		}
		id, err := s.send(r.Context(), req.From, req.To, &msg)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	})
	mux.HandleFunc("POST /expire-media", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			DirectPath string `json:"direct_path"`
		}
		if readJSON(w, r, &req) {
			writeResult(w, s.ExpireMedia(req.DirectPath))
		}
	})
	mux.HandleFunc("GET /media", func(w http.ResponseWriter, r *http.Request) {
		to, msgID := r.URL.Query().Get("to"), r.URL.Query().Get("id")
		for _, m := range s.Messages() {
			if m.ID == msgID && matchAddr(to, m.To) {
				w.Header().Set("Content-Type", "application/octet-stream")
				if _, err := s.DownloadTo(m.Message, w); err != nil {
					s.log.Debug().Err(err).Str("message_id", msgID).Msg("Failed to serve received media")
				}
				return
			}
		}
		writeError(w, ErrNoSuchMessage)
	})
	mux.HandleFunc("GET /root-key", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"public_key": RootPublicKeyHex(s.cfg.RootSeed)})
	})
	return mux
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return readJSONLimit(w, r, v, 1<<20)
}

func readJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeResult(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoAccount), errors.Is(err, ErrNoGroup), errors.Is(err, ErrUnknownQR), errors.Is(err, ErrExpiredQR),
		errors.Is(err, ErrNoPairing), errors.Is(err, ErrNoSuchMessage), errors.Is(err, ErrNoNewsletter):
		status = http.StatusNotFound
	case errors.Is(err, ErrEditWindow), errors.Is(err, ErrNotAllowed), errors.Is(err, ErrNotOwnMessage), errors.Is(err, errBadRequest):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, ErrAccountExists):
		status = http.StatusConflict
	case errors.Is(err, ErrWrongCode), errors.Is(err, ErrNotInGroup), errors.Is(err, ErrNoDevice), errors.Is(err, ErrNotFollower):
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
