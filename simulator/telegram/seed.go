package tgsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// MaxSeedEntries bounds one SeedHistory call.
const MaxSeedEntries = 10000

// HistoryEntry is one message of a private chat's past, for SeedHistory.
type HistoryEntry struct {
	// From is the sender: one of the chat's two users.
	From int64
	// Text is the message, or the caption of Media.
	Text string
	// Media, when set, makes the entry a file, photo, location... (Text is
	// its caption; Media.Caption and Media.Entities are ignored).
	Media *MediaSpec
	// ReplyTo is the 1-based index, in the entries, of an earlier message
	// this one answers (0: none).
	ReplyTo int
	// Reactions are set on the message, each by its User (one of the two).
	Reactions []Reaction
	// Time is when it was sent: in the past, and not before the entry
	// before it. The zero time keeps the time of seeding.
	Time time.Time
}

// SeedHistory puts messages into the past of the private chat of a and b,
// in order, as if each had been sent at its Time: they are in both users'
// histories (messages.getHistory) with those dates, with their replies and
// reactions. Seed before the users' clients connect: a connected session is
// pushed each message as it is seeded, as Telegram would. It returns the
// messages as a sees them.
func (s *Server) SeedHistory(a, b int64, entries []HistoryEntry) ([]Message, error) {
	if len(entries) > MaxSeedEntries {
		return nil, fmt.Errorf("tgsim: at most %d history entries at once", MaxSeedEntries)
	}
	// Check everything first: a refused call seeds nothing.
	now := time.Now()
	var prev time.Time
	for i, e := range entries {
		if e.From != a && e.From != b {
			return nil, fmt.Errorf("tgsim: history entry %d: the sender is not in the chat", i+1)
		}
		if e.Media == nil && strings.TrimSpace(e.Text) == "" {
			return nil, fmt.Errorf("tgsim: history entry %d: no text and no media", i+1)
		}
		if e.ReplyTo < 0 || e.ReplyTo > i {
			return nil, fmt.Errorf("tgsim: history entry %d: replies to an entry that is not before it", i+1)
		}
		if !e.Time.IsZero() {
			if e.Time.After(now) {
				return nil, fmt.Errorf("tgsim: history entry %d: in the future", i+1)
			}
			if e.Time.Before(prev) {
				return nil, fmt.Errorf("tgsim: history entry %d: before the entry before it", i+1)
			}
			prev = e.Time
		}
		for _, r := range e.Reactions {
			if r.User != a && r.User != b {
				return nil, fmt.Errorf("tgsim: history entry %d: a reaction by a user not in the chat", i+1)
			}
		}
	}
	// The senders' IDs of the seeded messages, to reply and react.
	type seeded struct{ fromID, toID int }
	done := make([]seeded, 0, len(entries))
	for i, e := range entries {
		to := a
		if e.From == a {
			to = b
		}
		var m Message
		var err error
		switch {
		case e.Media != nil:
			spec := *e.Media
			spec.Caption, spec.Entities = e.Text, nil
			m, err = s.SendMedia(e.From, to, spec)
		case e.ReplyTo > 0:
			target := done[e.ReplyTo-1]
			id := target.toID // as the replier sees it
			if entries[e.ReplyTo-1].From == e.From {
				id = target.fromID
			}
			m, err = s.SendReply(e.From, to, e.Text, id, "")
		default:
			m, err = s.SendMessage(e.From, to, e.Text, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("tgsim: history entry %d: %w", i+1, err)
		}
		done = append(done, seeded{fromID: m.SenderMsgID, toID: m.ID})
		if !e.Time.IsZero() {
			s.backdate(e.From, m.SenderMsgID, e.Time)
		}
		for _, r := range e.Reactions {
			id := m.ID
			if r.User == e.From {
				id = m.SenderMsgID
			}
			peer := a
			if r.User == a {
				peer = b
			}
			if err = s.React(r.User, peer, id, Reaction{Emoji: r.Emoji, CustomEmojiID: r.CustomEmojiID}); err != nil {
				return nil, fmt.Errorf("tgsim: history entry %d: reaction: %w", i+1, err)
			}
		}
	}
	out := s.Messages(a, b)
	if len(out) < len(entries) {
		return nil, errors.New("tgsim: seeded messages went missing")
	}
	return out[len(out)-len(entries):], nil
}

// backdate sets the date of by's message id (as by sees it).
func (s *Server) backdate(by int64, id int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.st.users[by]; ok {
		if e, ok := entryLocked(u, id); ok {
			e.msg.date = at.Truncate(time.Second)
		}
	}
}

// registerSeedControl adds
//
//	POST /seed_history {"a","b","entries":[{"from","text","reply_to","time","reactions":[{"by","emoji"}]}]}
//	                   puts text messages into the past of a's chat with b
//	                   (SeedHistory; time is RFC 3339, reply_to 1-based)
func (s *Server) registerSeedControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /seed_history", s.httpSeedHistory)
}

func (s *Server) httpSeedHistory(w http.ResponseWriter, r *http.Request) {
	var req struct {
		A       json.RawMessage `json:"a"`
		B       json.RawMessage `json:"b"`
		Entries []struct {
			From      json.RawMessage `json:"from"`
			Text      string          `json:"text"`
			ReplyTo   int             `json:"reply_to"`
			Time      time.Time       `json:"time"`
			Reactions []struct {
				By    json.RawMessage `json:"by"`
				Emoji string          `json:"emoji"`
			} `json:"reactions"`
		} `json:"entries"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	ids, ok := s.resolveRefs(w, req.A, req.B)
	if !ok {
		return
	}
	if len(req.Entries) > MaxSeedEntries {
		httpError(w, http.StatusBadRequest, fmt.Errorf("at most %d entries", MaxSeedEntries))
		return
	}
	entries := make([]HistoryEntry, 0, len(req.Entries))
	for _, e := range req.Entries {
		from, ok := s.resolveRefs(w, e.From)
		if !ok {
			return
		}
		he := HistoryEntry{From: from[0], Text: e.Text, ReplyTo: e.ReplyTo, Time: e.Time}
		for _, rc := range e.Reactions {
			by, ok := s.resolveRefs(w, rc.By)
			if !ok {
				return
			}
			he.Reactions = append(he.Reactions, Reaction{User: by[0], Emoji: rc.Emoji})
		}
		entries = append(entries, he)
	}
	msgs, err := s.SeedHistory(ids[0], ids[1], entries)
	if err != nil {
		if strings.Contains(err.Error(), "history entry") {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		worldError(w, err)
		return
	}
	out := make([]any, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, toMessageJSON(m))
	}
	httpJSON(w, http.StatusOK, out)
}
