package tgsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gotd/td/tgerr"
)

// ControlHandler returns a small HTTP API for driving the simulator from
// outside the process (demo stack). It only answers loopback clients.
//
//	GET  /accounts                      accounts, with online sessions, authorizations and last login code
//	POST /send      {"from","to","text"} a user sends a private message; from/to are an ID (number),
//	                                     a phone ("+15550002") or "@username"
//	GET  /messages?a=&b=                 the history between a and b as a sees it
//	POST /send_media {"from","to","kind",…} a user sends media (MediaSpec fields in snake_case,
//	                                     file bytes as base64 "data"); see mediaRequest
//	GET  /media?a=&b=&id=                the file of message id of the history between a and b,
//	                                     as a sees it (raw bytes, Content-Type the file's type)
//	POST /reply     {"from","to","text","reply_to","quote"} from answers its message reply_to
//	                                     (the ID as from sees it), quoting quote if not empty
//	POST /edit      {"from","to","id","text"} from edits its message id (as from sees it)
//	POST /delete    {"by","ids","revoke"} by deletes messages of its history (revoke: for both sides)
//	POST /react     {"by","peer","id","emoji":[…],"custom_emoji":[…]} by's reactions to message id
//	                                     (as by sees it); empty lists remove them
//	POST /read      {"reader","peer","max_id"} reader reads its chat with peer (max_id 0: all)
//	POST /typing    {"from","to"}        from is typing to to
//	POST /status    {"account","online"} an account goes online or offline
//	POST /custom_emoji {"id","fallback"} a custom emoji becomes known, with its fallback emoji
//	GET  /messages?a=&b=&deleted=1       with deleted=1, deleted messages are listed (deleted: true)
//	GET  /read_state?a=&b=               how far a read b's messages and b read a's, in a's history
//	GET  /typing?a=                      the typing a was shown (the last 100)
//	GET  /status?a=                      an account's presence
//	GET  /code?phone=                    the last login code issued for a phone
//	POST /qr/accept {"account","token"}  account's phone scans a QR code; token is the
//	                                     tg://login?token=... URL or the base64url token
//	POST /revoke_sessions {"account"}    the account ends all its sessions from another device:
//	                                     connections closed, then 401 SESSION_REVOKED → {"revoked"}
//
// Supergroups, channels and bots: see registerChannelControl; gaps and
// self-destructing messages: registerGapControl; a chat's past:
// registerSeedControl.
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /accounts", s.httpAccounts)
	mux.HandleFunc("POST /send", s.httpSend)
	mux.HandleFunc("GET /messages", s.httpMessages)
	mux.HandleFunc("POST /send_media", s.httpSendMedia)
	mux.HandleFunc("GET /media", s.httpMedia)
	mux.HandleFunc("GET /code", s.httpCode)
	mux.HandleFunc("POST /reply", s.httpReply)
	mux.HandleFunc("POST /edit", s.httpEdit)
	mux.HandleFunc("POST /delete", s.httpDelete)
	mux.HandleFunc("POST /react", s.httpReact)
	mux.HandleFunc("POST /read", s.httpRead)
	mux.HandleFunc("POST /typing", s.httpTyping)
	mux.HandleFunc("POST /status", s.httpStatus)
	mux.HandleFunc("POST /custom_emoji", s.httpCustomEmoji)
	mux.HandleFunc("GET /read_state", s.httpReadState)
	mux.HandleFunc("GET /typing", s.httpTypingSeen)
	mux.HandleFunc("GET /status", s.httpPresence)
	mux.HandleFunc("POST /qr/accept", s.httpAcceptQR)
	mux.HandleFunc("POST /revoke_sessions", s.httpRevokeSessions)
	s.registerChannelControl(mux)
	s.registerGapControl(mux)
	s.registerSeedControl(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			httpError(w, http.StatusForbidden, errors.New("loopback clients only"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type accountJSON struct {
	ID             int64  `json:"id"`
	Phone          string `json:"phone"`
	FirstName      string `json:"first_name"`
	LastName       string `json:"last_name,omitempty"`
	Username       string `json:"username,omitempty"`
	AccessHash     int64  `json:"access_hash"`
	Sessions       int    `json:"sessions"`
	Authorizations int    `json:"authorizations"`
	LastCode       string `json:"last_code,omitempty"`
}

type messageJSON struct {
	ID          int        `json:"id"`
	SenderMsgID int        `json:"sender_msg_id"`
	From        int64      `json:"from"`
	To          int64      `json:"to"`
	Text        string     `json:"text"`
	Date        time.Time  `json:"date"`
	Media       *mediaJSON `json:"media,omitempty"`
	// ReplyTo is the ID of the answered message, as the caller (a) sees it.
	ReplyTo   int            `json:"reply_to,omitempty"`
	Quote     string         `json:"quote,omitempty"`
	Edited    *time.Time     `json:"edited,omitempty"`
	Deleted   bool           `json:"deleted,omitempty"`
	Reactions []reactionJSON `json:"reactions,omitempty"`
}

type reactionJSON struct {
	User          int64  `json:"user"`
	Emoji         string `json:"emoji"`
	CustomEmojiID int64  `json:"custom_emoji_id,omitempty"`
}

// mediaJSON summarises a message's media; attributes are TL type names
// with their fields as gotd prints them.
type mediaJSON struct {
	Kind       string   `json:"kind"`
	MIME       string   `json:"mime,omitempty"`
	Name       string   `json:"name,omitempty"`
	Size       int64    `json:"size,omitempty"`
	Width      int      `json:"width,omitempty"`
	Height     int      `json:"height,omitempty"`
	Attributes []string `json:"attributes,omitempty"`
	Detail     string   `json:"detail"`
}

func toMessageJSON(m Message) messageJSON {
	out := messageJSON{ID: m.ID, SenderMsgID: m.SenderMsgID, From: m.From, To: m.To, Text: m.Text, Date: m.Date,
		ReplyTo: m.ReplyToID, Quote: m.Quote, Deleted: m.Deleted}
	if !m.Edited.IsZero() {
		edited := m.Edited
		out.Edited = &edited
	}
	for _, r := range m.Reactions {
		out.Reactions = append(out.Reactions, reactionJSON(r))
	}
	if mi := m.Media; mi != nil {
		out.Media = &mediaJSON{Kind: mi.Kind, MIME: mi.MIME, Name: mi.Name, Size: mi.Size, Width: mi.Width, Height: mi.Height}
		for _, a := range mi.Attributes {
			out.Media.Attributes = append(out.Media.Attributes, a.String())
		}
		if mi.Media != nil {
			out.Media.Detail = mi.Media.String()
		}
	}
	return out
}

// mediaRequest is the body of POST /send_media.
type mediaRequest struct {
	From       json.RawMessage `json:"from"`
	To         json.RawMessage `json:"to"`
	Kind       string          `json:"kind"`
	Data       []byte          `json:"data"` // base64 in JSON
	Name       string          `json:"name"`
	MIME       string          `json:"mime"`
	Caption    string          `json:"caption"`
	Width      int             `json:"width"`
	Height     int             `json:"height"`
	Duration   int             `json:"duration"`
	Waveform   []byte          `json:"waveform"` // base64 of Telegram's packed waveform
	Title      string          `json:"title"`
	Performer  string          `json:"performer"`
	Emoji      string          `json:"emoji"`
	Lat        float64         `json:"lat"`
	Long       float64         `json:"long"`
	Address    string          `json:"address"`
	LivePeriod int             `json:"live_period"`
	Phone      string          `json:"phone"`
	FirstName  string          `json:"first_name"`
	LastName   string          `json:"last_name"`
	VCard      string          `json:"vcard"`
	Question   string          `json:"question"`
	Answers    []string        `json:"answers"`
	Multiple   bool            `json:"multiple"`
}

// maxControlMediaBody bounds a POST /send_media body (base64 inflates by a
// third: files up to about 48 MB).
const maxControlMediaBody = 64 << 20

func (s *Server) httpSendMedia(w http.ResponseWriter, r *http.Request) {
	var req mediaRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlMediaBody)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	from, err := s.resolveRef(req.From)
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	to, err := s.resolveRef(req.To)
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	m, err := s.SendMedia(from, to, MediaSpec{
		Kind: req.Kind, Data: req.Data, Name: req.Name, MIME: req.MIME, Caption: req.Caption,
		Width: req.Width, Height: req.Height, Duration: req.Duration, Waveform: req.Waveform,
		Title: req.Title, Performer: req.Performer, Emoji: req.Emoji,
		Lat: req.Lat, Long: req.Long, Address: req.Address, LivePeriod: req.LivePeriod,
		Phone: req.Phone, FirstName: req.FirstName, LastName: req.LastName, VCard: req.VCard,
		Question: req.Question, Answers: req.Answers, Multiple: req.Multiple,
	})
	if err != nil {
		status := http.StatusInternalServerError
		if _, ok := tgerr.As(err); ok || strings.Contains(err.Error(), "unknown media kind") {
			status = http.StatusBadRequest
		}
		httpError(w, status, err)
		return
	}
	httpJSON(w, http.StatusOK, toMessageJSON(m))
}

func (s *Server) httpMedia(w http.ResponseWriter, r *http.Request) {
	a, b, ok := s.queryPair(w, r)
	if !ok {
		return
	}
	msgID, err := strconv.Atoi(r.URL.Query().Get("id"))
	if err != nil {
		httpError(w, http.StatusBadRequest, errors.New("id must be a message ID"))
		return
	}
	for _, m := range s.Messages(a, b) {
		if m.IDFor(a) != msgID {
			continue
		}
		f, err := s.OpenMedia(m)
		if err != nil {
			httpError(w, http.StatusNotFound, err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", m.Media.MIME)
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, f)
		return
	}
	httpError(w, http.StatusNotFound, fmt.Errorf("no message %d between %d and %d", msgID, a, b))
}

func (s *Server) httpAccounts(w http.ResponseWriter, _ *http.Request) {
	accs := s.Accounts()
	out := make([]accountJSON, 0, len(accs))
	for _, a := range accs {
		code, _ := s.LastCode(a.Phone)
		out = append(out, accountJSON{
			ID: a.ID, Phone: "+" + a.Phone, FirstName: a.FirstName, LastName: a.LastName,
			Username: a.Username, AccessHash: a.AccessHash,
			Sessions: s.Sessions(a.ID), Authorizations: s.Authorizations(a.ID), LastCode: code,
		})
	}
	httpJSON(w, http.StatusOK, out)
}

// resolveRef finds an account from a JSON number (ID) or string (phone,
// "@username", or a decimal ID).
// queryPair resolves the accounts named by the query's a and b; it answers
// 404 and reports false when either is unknown.
func (s *Server) queryPair(w http.ResponseWriter, r *http.Request) (a, b int64, ok bool) {
	var err error
	if a, err = s.resolveRef(queryRef(r, "a")); err == nil {
		b, err = s.resolveRef(queryRef(r, "b"))
	}
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return 0, 0, false
	}
	return a, b, true
}

func (s *Server) resolveRef(raw json.RawMessage) (int64, error) {
	var id int64
	if err := json.Unmarshal(raw, &id); err == nil {
		if _, ok := s.Account(id); ok {
			return id, nil
		}
		return 0, fmt.Errorf("%w: %d", ErrNoAccount, id)
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return 0, fmt.Errorf("account reference must be a number or a string: %s", raw)
	}
	if name, ok := strings.CutPrefix(str, "@"); ok {
		for _, a := range s.Accounts() {
			if strings.EqualFold(a.Username, name) {
				return a.ID, nil
			}
		}
		return 0, fmt.Errorf("%w: %s", ErrNoAccount, str)
	}
	if a, ok := s.AccountByPhone(str); ok {
		return a.ID, nil
	}
	if id, err := strconv.ParseInt(str, 10, 64); err == nil {
		if _, ok := s.Account(id); ok {
			return id, nil
		}
	}
	return 0, fmt.Errorf("%w: %s", ErrNoAccount, str)
}

func (s *Server) httpSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From json.RawMessage `json:"from"`
		To   json.RawMessage `json:"to"`
		Text string          `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	from, err := s.resolveRef(req.From)
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	to, err := s.resolveRef(req.To)
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	if strings.TrimSpace(req.Text) == "" {
		httpError(w, http.StatusBadRequest, errors.New("text is empty"))
		return
	}
	m, err := s.SendMessage(from, to, req.Text, nil)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	httpJSON(w, http.StatusOK, toMessageJSON(m))
}

func (s *Server) httpMessages(w http.ResponseWriter, r *http.Request) {
	a, b, ok := s.queryPair(w, r)
	if !ok {
		return
	}
	msgs := s.Messages(a, b)
	if r.URL.Query().Get("deleted") == "1" {
		msgs = s.History(a, b)
	}
	out := make([]messageJSON, 0, len(msgs))
	for _, m := range msgs {
		j := toMessageJSON(m)
		if a == m.From {
			j.ReplyTo = m.ReplyToSenderMsgID
		}
		out = append(out, j)
	}
	httpJSON(w, http.StatusOK, out)
}

func queryRef(r *http.Request, key string) json.RawMessage {
	raw, _ := json.Marshal(r.URL.Query().Get(key))
	return raw
}

func (s *Server) httpCode(w http.ResponseWriter, r *http.Request) {
	code, ok := s.LastCode(r.URL.Query().Get("phone"))
	if !ok {
		httpError(w, http.StatusNotFound, errors.New("no code issued for this phone"))
		return
	}
	httpJSON(w, http.StatusOK, map[string]string{"code": code})
}

func (s *Server) httpAcceptQR(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Account json.RawMessage `json:"account"`
		Token   string          `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	id, err := s.resolveRef(req.Account)
	if err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	token, err := ParseQRToken(req.Token)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.AcceptQR(r.Context(), id, token); err != nil {
		status := http.StatusInternalServerError
		if _, ok := tgerr.As(err); ok {
			status = http.StatusConflict
		}
		httpError(w, status, err)
		return
	}
	httpJSON(w, http.StatusOK, map[string]bool{"accepted": true})
}

func httpJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, err error) {
	httpJSON(w, status, map[string]string{"error": err.Error()})
}
