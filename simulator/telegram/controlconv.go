package tgsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gotd/td/tgerr"
)

// The control API's conversation routes (see ControlHandler).

// maxControlBody bounds the JSON bodies of the conversation routes.
const maxControlBody = 1 << 20

// decodeControl reads a JSON body; it answers 400 and reports false when it
// cannot.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody)).Decode(v); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

// resolveRefs resolves account references in order; it answers 404 and
// reports false when one is unknown.
func (s *Server) resolveRefs(w http.ResponseWriter, refs ...json.RawMessage) ([]int64, bool) {
	out := make([]int64, 0, len(refs))
	for _, raw := range refs {
		id, err := s.resolveRef(raw)
		if err != nil {
			httpError(w, http.StatusNotFound, err)
			return nil, false
		}
		out = append(out, id)
	}
	return out, true
}

// worldError answers the error of a world call: Telegram's refusals are
// 400 (409 for an edit past its window), the rest 500.
func worldError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if rpc, ok := tgerr.As(err); ok {
		status = http.StatusBadRequest
		if rpc.Type == errEditTimeExpired.Type {
			status = http.StatusConflict
		}
	} else if errors.Is(err, ErrNoAccount) {
		status = http.StatusNotFound
	}
	httpError(w, status, err)
}

func (s *Server) httpReply(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From    json.RawMessage `json:"from"`
		To      json.RawMessage `json:"to"`
		Text    string          `json:"text"`
		ReplyTo int             `json:"reply_to"`
		Quote   string          `json:"quote"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.From, req.To)
	if !ok {
		return
	}
	if req.Text == "" {
		httpError(w, http.StatusBadRequest, errors.New("text is empty"))
		return
	}
	m, err := s.SendReply(ids[0], ids[1], req.Text, req.ReplyTo, req.Quote)
	if err != nil {
		worldError(w, err)
		return
	}
	httpJSON(w, http.StatusOK, toMessageJSON(m))
}

func (s *Server) httpEdit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From json.RawMessage `json:"from"`
		To   json.RawMessage `json:"to"`
		ID   int             `json:"id"`
		Text string          `json:"text"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.From, req.To)
	if !ok {
		return
	}
	m, err := s.EditMessage(ids[0], ids[1], req.ID, req.Text)
	if err != nil {
		worldError(w, err)
		return
	}
	httpJSON(w, http.StatusOK, toMessageJSON(m))
}

func (s *Server) httpDelete(w http.ResponseWriter, r *http.Request) {
	var req struct {
		By     json.RawMessage `json:"by"`
		IDs    []int           `json:"ids"`
		Revoke *bool           `json:"revoke"` // default true
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.By)
	if !ok {
		return
	}
	if len(req.IDs) == 0 || len(req.IDs) > 100 {
		httpError(w, http.StatusBadRequest, errors.New("ids must list 1 to 100 message IDs"))
		return
	}
	revoke := req.Revoke == nil || *req.Revoke
	if err := s.DeleteMessages(ids[0], req.IDs, revoke); err != nil {
		worldError(w, err)
		return
	}
	httpJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (s *Server) httpReact(w http.ResponseWriter, r *http.Request) {
	var req struct {
		By          json.RawMessage `json:"by"`
		Peer        json.RawMessage `json:"peer"`
		ID          int             `json:"id"`
		Emoji       []string        `json:"emoji"`
		CustomEmoji []int64         `json:"custom_emoji"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.By, req.Peer)
	if !ok {
		return
	}
	if len(req.Emoji)+len(req.CustomEmoji) > maxReactions {
		httpError(w, http.StatusBadRequest, errors.New("too many reactions"))
		return
	}
	var list []Reaction
	for _, e := range req.Emoji {
		list = append(list, Reaction{Emoji: e})
	}
	for _, c := range req.CustomEmoji {
		list = append(list, Reaction{CustomEmojiID: c})
	}
	if err := s.React(ids[0], ids[1], req.ID, list...); err != nil {
		worldError(w, err)
		return
	}
	httpJSON(w, http.StatusOK, map[string]bool{"reacted": true})
}

func (s *Server) httpRead(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reader json.RawMessage `json:"reader"`
		Peer   json.RawMessage `json:"peer"`
		MaxID  int             `json:"max_id"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.Reader, req.Peer)
	if !ok {
		return
	}
	if err := s.ReadHistory(ids[0], ids[1], req.MaxID); err != nil {
		worldError(w, err)
		return
	}
	httpJSON(w, http.StatusOK, s.readStateJSON(ids[0], ids[1]))
}

func (s *Server) httpTyping(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From json.RawMessage `json:"from"`
		To   json.RawMessage `json:"to"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.From, req.To)
	if !ok {
		return
	}
	if err := s.SetTyping(ids[0], ids[1]); err != nil {
		worldError(w, err)
		return
	}
	httpJSON(w, http.StatusOK, map[string]bool{"typing": true})
}

func (s *Server) httpStatus(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Account json.RawMessage `json:"account"`
		Online  bool            `json:"online"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.Account)
	if !ok {
		return
	}
	if err := s.SetOnline(ids[0], req.Online); err != nil {
		worldError(w, err)
		return
	}
	httpJSON(w, http.StatusOK, presenceJSON(s.Presence(ids[0])))
}

func (s *Server) httpCustomEmoji(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID       int64  `json:"id"`
		Fallback string `json:"fallback"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	if req.ID == 0 || req.Fallback == "" || len(req.Fallback) > 64 {
		httpError(w, http.StatusBadRequest, errors.New("id and a short fallback are needed"))
		return
	}
	s.AddCustomEmoji(req.ID, req.Fallback)
	httpJSON(w, http.StatusOK, map[string]bool{"added": true})
}

type readStateJSON struct {
	// ReadInbox: a read b's messages up to this ID of a's history.
	ReadInbox int `json:"read_inbox"`
	// ReadOutbox: b read a's messages up to this ID of a's history.
	ReadOutbox int `json:"read_outbox"`
}

func (s *Server) readStateJSON(a, b int64) readStateJSON {
	return readStateJSON(s.ReadState(a, b))
}

func (s *Server) httpReadState(w http.ResponseWriter, r *http.Request) {
	a, b, ok := s.queryPair(w, r)
	if !ok {
		return
	}
	httpJSON(w, http.StatusOK, s.readStateJSON(a, b))
}

type typingJSON struct {
	From    int64     `json:"from"`
	Channel int64     `json:"channel,omitempty"`
	Chat    int64     `json:"chat,omitempty"`
	Action  string    `json:"action"`
	At      time.Time `json:"at"`
}

func (s *Server) httpTypingSeen(w http.ResponseWriter, r *http.Request) {
	ids, ok := s.resolveRefs(w, queryRef(r, "a"))
	if !ok {
		return
	}
	seen := s.TypingSeen(ids[0])
	out := make([]typingJSON, 0, len(seen))
	for _, t := range seen {
		out = append(out, typingJSON(t))
	}
	httpJSON(w, http.StatusOK, out)
}

type presenceOut struct {
	Online   bool       `json:"online"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

func presenceJSON(p Presence) presenceOut {
	out := presenceOut{Online: p.Online}
	if !p.LastSeen.IsZero() {
		out.LastSeen = &p.LastSeen
	}
	return out
}

func (s *Server) httpPresence(w http.ResponseWriter, r *http.Request) {
	ids, ok := s.resolveRefs(w, queryRef(r, "a"))
	if !ok {
		return
	}
	httpJSON(w, http.StatusOK, presenceJSON(s.Presence(ids[0])))
}
