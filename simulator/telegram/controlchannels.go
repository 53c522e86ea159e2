package tgsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Control API of supergroups, channels and bots (see ControlHandler):
//
//	POST /channels            {"title","about","broadcast","signed","creator","members":[…],"admins":[…]}
//	                          creates a supergroup (or a broadcast channel); returns the channel
//	GET  /channels?id=        a channel: title, about, members, admins, pts
//	GET  /channels/messages?id=  its messages (service ones with "action"), oldest first
//	POST /channels/post       {"channel","from","text","author"} a member posts (from 0: as the channel)
//	POST /channels/rename     {"channel","by","title"}
//	POST /channels/about      {"channel","about"}
//	POST /channels/join       {"channel","user"}
//	POST /channels/leave      {"channel","user","by"} (by empty: the user leaves; else a kick)
//	POST /channels/promote    {"channel","user","admin"}
//	POST /channels/edit       {"channel","by","id","text"}
//	POST /channels/delete     {"channel","by","ids":[…]}
//	POST /channels/react      {"channel","by","id","emoji"} ("" removes)
//	POST /channels/typing     {"channel","from"}
//	POST /bots                {"first_name","username"} creates a bot; returns it with its token
//
// Users are referenced as in /send (ID, "+phone" or "@username").
func (s *Server) registerChannelControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /channels", s.httpCreateChannel)
	mux.HandleFunc("GET /channels", s.httpChannel)
	mux.HandleFunc("GET /channels/messages", s.httpChannelMessages)
	mux.HandleFunc("POST /channels/post", s.httpChannelAction(func(r channelReq) (any, error) {
		from := int64(0)
		if len(r.From) > 0 && string(r.From) != "0" {
			id, err := s.resolveRef(r.From)
			if err != nil {
				return nil, err
			}
			from = id
		}
		return s.ChannelPost(r.Channel, from, r.Text, r.Author)
	}))
	mux.HandleFunc("POST /channels/rename", s.httpChannelAction(func(r channelReq) (any, error) {
		by, err := s.resolveRef(r.By)
		if err != nil {
			return nil, err
		}
		return nil, s.RenameChannel(r.Channel, by, r.Title)
	}))
	mux.HandleFunc("POST /channels/about", s.httpChannelAction(func(r channelReq) (any, error) {
		return nil, s.SetChannelAbout(r.Channel, r.About)
	}))
	mux.HandleFunc("POST /channels/join", s.httpChannelAction(func(r channelReq) (any, error) {
		user, err := s.resolveRef(r.User)
		if err != nil {
			return nil, err
		}
		return nil, s.JoinChannel(r.Channel, user)
	}))
	mux.HandleFunc("POST /channels/leave", s.httpChannelAction(func(r channelReq) (any, error) {
		user, err := s.resolveRef(r.User)
		if err != nil {
			return nil, err
		}
		by := user
		if len(r.By) > 0 {
			if by, err = s.resolveRef(r.By); err != nil {
				return nil, err
			}
		}
		return nil, s.LeaveChannel(r.Channel, user, by)
	}))
	mux.HandleFunc("POST /channels/promote", s.httpChannelAction(func(r channelReq) (any, error) {
		user, err := s.resolveRef(r.User)
		if err != nil {
			return nil, err
		}
		return nil, s.PromoteChannelAdmin(r.Channel, user, r.Admin)
	}))
	mux.HandleFunc("POST /channels/edit", s.httpChannelAction(func(r channelReq) (any, error) {
		by, err := s.resolveRef(r.By)
		if err != nil {
			return nil, err
		}
		return nil, s.EditChannelMessage(r.Channel, by, r.ID, r.Text)
	}))
	mux.HandleFunc("POST /channels/delete", s.httpChannelAction(func(r channelReq) (any, error) {
		by, err := s.resolveRef(r.By)
		if err != nil {
			return nil, err
		}
		return nil, s.DeleteChannelMessages(r.Channel, by, r.IDs...)
	}))
	mux.HandleFunc("POST /channels/react", s.httpChannelAction(func(r channelReq) (any, error) {
		by, err := s.resolveRef(r.By)
		if err != nil {
			return nil, err
		}
		return nil, s.ReactInChannel(r.Channel, by, r.ID, r.Emoji)
	}))
	mux.HandleFunc("POST /channels/typing", s.httpChannelAction(func(r channelReq) (any, error) {
		from, err := s.resolveRef(r.From)
		if err != nil {
			return nil, err
		}
		return nil, s.SetChannelTyping(r.Channel, from)
	}))
	mux.HandleFunc("POST /bots", s.httpCreateBot)
}

type channelReq struct {
	Channel int64           `json:"channel"`
	From    json.RawMessage `json:"from"`
	By      json.RawMessage `json:"by"`
	User    json.RawMessage `json:"user"`
	Text    string          `json:"text"`
	Author  string          `json:"author"`
	Title   string          `json:"title"`
	About   string          `json:"about"`
	Admin   bool            `json:"admin"`
	ID      int             `json:"id"`
	IDs     []int           `json:"ids"`
	Emoji   string          `json:"emoji"`
}

type channelJSON struct {
	ID         int64   `json:"id"`
	AccessHash int64   `json:"access_hash"`
	Title      string  `json:"title"`
	About      string  `json:"about"`
	Broadcast  bool    `json:"broadcast"`
	Creator    int64   `json:"creator"`
	Members    []int64 `json:"members"`
	Admins     []int64 `json:"admins"`
	Pts        int     `json:"pts"`
}

type channelMessageJSON struct {
	ID         int        `json:"id"`
	From       int64      `json:"from"`
	PostAuthor string     `json:"post_author,omitempty"`
	Text       string     `json:"text,omitempty"`
	Date       time.Time  `json:"date"`
	Action     string     `json:"action,omitempty"`
	Title      string     `json:"title,omitempty"`
	Users      []int64    `json:"users,omitempty"`
	Pts        int        `json:"pts"`
	Deleted    bool       `json:"deleted,omitempty"`
	Edited     *time.Time `json:"edited,omitempty"`
	ReplyTo    int        `json:"reply_to,omitempty"`
	// ReactionsJSON lists the reactions (user and emoji).
	ReactionsJSON []reactionJSON `json:"reactions,omitempty"`
}

func toChannelJSON(c Channel) channelJSON {
	return channelJSON(c)
}

func (s *Server) httpCreateChannel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Title     string            `json:"title"`
		About     string            `json:"about"`
		Broadcast bool              `json:"broadcast"`
		Signed    bool              `json:"signed"`
		Creator   json.RawMessage   `json:"creator"`
		Members   []json.RawMessage `json:"members"`
		Admins    []json.RawMessage `json:"admins"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	spec := ChannelSpec{Title: req.Title, About: req.About, Broadcast: req.Broadcast, Signed: req.Signed}
	var err error
	if spec.Creator, err = s.resolveRef(req.Creator); err != nil {
		httpError(w, http.StatusNotFound, err)
		return
	}
	for _, list := range []struct {
		in  []json.RawMessage
		out *[]int64
	}{{req.Members, &spec.Members}, {req.Admins, &spec.Admins}} {
		for _, ref := range list.in {
			id, err := s.resolveRef(ref)
			if err != nil {
				httpError(w, http.StatusNotFound, err)
				return
			}
			*list.out = append(*list.out, id)
		}
	}
	ch, err := s.CreateChannel(spec)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	httpJSON(w, http.StatusOK, toChannelJSON(ch))
}

func channelIDParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, errors.New("id must be a channel ID"))
		return 0, false
	}
	return id, true
}

func (s *Server) httpChannel(w http.ResponseWriter, r *http.Request) {
	id, ok := channelIDParam(w, r)
	if !ok {
		return
	}
	ch, ok := s.ChannelInfo(id)
	if !ok {
		httpError(w, http.StatusNotFound, ErrNoChannel)
		return
	}
	httpJSON(w, http.StatusOK, toChannelJSON(ch))
}

func (s *Server) httpChannelMessages(w http.ResponseWriter, r *http.Request) {
	id, ok := channelIDParam(w, r)
	if !ok {
		return
	}
	if _, ok := s.ChannelInfo(id); !ok {
		httpError(w, http.StatusNotFound, ErrNoChannel)
		return
	}
	msgs := s.ChannelMessages(id)
	out := make([]channelMessageJSON, 0, len(msgs))
	for _, m := range msgs {
		j := channelMessageJSON{ID: m.ID, From: m.From, PostAuthor: m.PostAuthor, Text: m.Text, Date: m.Date,
			Action: m.Action, Title: m.Title, Users: m.Users, Pts: m.Pts, Deleted: m.Deleted, ReplyTo: m.ReplyToID}
		if !m.Edited.IsZero() {
			edited := m.Edited
			j.Edited = &edited
		}
		for _, r := range m.Reactions {
			j.ReactionsJSON = append(j.ReactionsJSON, reactionJSON{User: r.User, Emoji: r.Emoji})
		}
		out = append(out, j)
	}
	httpJSON(w, http.StatusOK, out)
}

// httpChannelAction decodes a channelReq and runs f; f's result (if any)
// is the answer.
func (s *Server) httpChannelAction(f func(channelReq) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req channelReq
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		if _, ok := s.ChannelInfo(req.Channel); !ok {
			httpError(w, http.StatusNotFound, ErrNoChannel)
			return
		}
		res, err := f(req)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, ErrNoAccount) {
				status = http.StatusNotFound
			}
			httpError(w, status, err)
			return
		}
		if res == nil {
			res = map[string]bool{"ok": true}
		}
		httpJSON(w, http.StatusOK, res)
	}
}

func (s *Server) httpCreateBot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FirstName string `json:"first_name"`
		Username  string `json:"username"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	acc, token, err := s.CreateBot(BotSpec{FirstName: req.FirstName, Username: req.Username})
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	httpJSON(w, http.StatusOK, map[string]any{"id": acc.ID, "username": acc.Username, "token": token})
}
