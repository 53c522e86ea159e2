package importer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/dbtest"
)

// fakeHomeserver answers the few client-server calls of a takeover the way
// a homeserver does: an appservice token may act as the users of its
// namespaces (?user_id=), changing power levels and inviting need power,
// and a join needs an invite.
type fakeHomeserver struct {
	mu sync.Mutex
	// users each token may act as; a token absent is unknown.
	tokens  map[string][]id.UserID
	rooms   map[id.RoomID]*fakeRoom
	failing map[id.RoomID]bool
}

type fakeRoom struct {
	pl      *event.PowerLevelsEventContent
	members map[id.UserID]event.Membership
}

func (hs *fakeHomeserver) respond(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errcode": code, "error": msg})
}

func (hs *fakeHomeserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	users, known := hs.tokens[token]
	if !known {
		hs.respond(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "unknown token")
		return
	}
	sender := id.UserID(r.URL.Query().Get("user_id"))
	allowed := false
	for _, u := range users {
		allowed = allowed || u == sender
	}
	if !allowed {
		hs.respond(w, http.StatusForbidden, "M_FORBIDDEN", "application service cannot masquerade as this user")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/_matrix/client/v3/rooms/"), "/")
	room := hs.rooms[id.RoomID(parts[0])]
	if room == nil || len(parts) < 2 {
		hs.respond(w, http.StatusNotFound, "M_NOT_FOUND", "no such room")
		return
	}
	if hs.failing[id.RoomID(parts[0])] {
		hs.respond(w, http.StatusInternalServerError, "M_UNKNOWN", "database on fire")
		return
	}
	if room.members[sender] != event.MembershipJoin {
		hs.respond(w, http.StatusForbidden, "M_FORBIDDEN", "not in the room")
		return
	}
	switch {
	case parts[1] == "state" && len(parts) >= 3 && parts[2] == event.StatePowerLevels.Type && r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(room.pl)
	case parts[1] == "state" && len(parts) >= 3 && parts[2] == event.StatePowerLevels.Type && r.Method == http.MethodPut:
		if room.pl.GetUserLevel(sender) < 100 {
			hs.respond(w, http.StatusForbidden, "M_FORBIDDEN", "no power")
			return
		}
		pl := &event.PowerLevelsEventContent{}
		if err := json.NewDecoder(r.Body).Decode(pl); err != nil {
			hs.respond(w, http.StatusBadRequest, "M_BAD_JSON", err.Error())
			return
		}
		room.pl = pl
		_ = json.NewEncoder(w).Encode(map[string]string{"event_id": "$pl"})
	case parts[1] == "state" && len(parts) >= 4 && parts[2] == event.StateMember.Type && r.Method == http.MethodGet:
		membership, ok := room.members[id.UserID(parts[3])]
		if !ok {
			hs.respond(w, http.StatusNotFound, "M_NOT_FOUND", "no member event")
			return
		}
		_ = json.NewEncoder(w).Encode(&event.MemberEventContent{Membership: membership})
	case parts[1] == "invite" && r.Method == http.MethodPost:
		if room.pl.GetUserLevel(sender) < room.pl.Invite() {
			hs.respond(w, http.StatusForbidden, "M_FORBIDDEN", "no power to invite")
			return
		}
		var req struct {
			UserID id.UserID `json:"user_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if room.members[req.UserID] != event.MembershipJoin {
			room.members[req.UserID] = event.MembershipInvite
		}
		_, _ = w.Write([]byte("{}"))
	default:
		hs.respond(w, http.StatusNotFound, "M_UNRECOGNIZED", r.Method+" "+r.URL.Path)
	}
}

// join is the gateway bot's join (bridgev2's EnsureJoined in the gateway).
func (hs *fakeHomeserver) join(bot id.UserID) func(context.Context, id.RoomID) error {
	return func(_ context.Context, roomID id.RoomID) error {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		room := hs.rooms[roomID]
		if room == nil || room.members[bot] != event.MembershipInvite && room.members[bot] != event.MembershipJoin {
			return errors.New("M_FORBIDDEN: not invited")
		}
		room.members[bot] = event.MembershipJoin
		return nil
	}
}

func (hs *fakeHomeserver) state(roomID id.RoomID, user id.UserID) (int, event.Membership) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	room := hs.rooms[roomID]
	return room.pl.GetUserLevel(user), room.members[user]
}

// After an import, the gateway's bot takes the imported rooms over from
// the old bot: it gets the old bot's power and joins. A room that fails is
// retried at the next start; once the old registration is gone the gateway
// acts as the old bot with its own token (its registration claims the old
// namespace); the old token is forgotten once no room needs it.
func TestTakeover(t *testing.T) {
	ctx := context.Background()
	c := newCase(t, whatsappFixture(t, dbtest.SQLite(t)), dbtest.SQLite(t), "whatsapp")
	c.run(t, false)

	const oldBot, bot = id.UserID("@whatsappbot:example.org"), id.UserID("@passerellebot:example.org")
	room := func() *fakeRoom {
		return &fakeRoom{
			pl:      &event.PowerLevelsEventContent{Users: map[id.UserID]int{oldBot: 100, "@alice:example.org": 50}},
			members: map[id.UserID]event.Membership{oldBot: event.MembershipJoin, "@alice:example.org": event.MembershipJoin},
		}
	}
	hs := &fakeHomeserver{
		tokens: map[string][]id.UserID{
			c.fx.reg.AppToken: {oldBot},
			c.reg.AppToken:    {bot, oldBot},
		},
		rooms:   map[id.RoomID]*fakeRoom{"!dm:example.org": room(), "!group:example.org": room()},
		failing: map[id.RoomID]bool{"!group:example.org": true},
	}
	srv := httptest.NewServer(hs)
	defer srv.Close()
	tk := &Takeover{DB: c.dst, HomeserverURL: srv.URL, Bot: bot, ASToken: c.reg.AppToken, Join: hs.join(bot), Clock: c.fakeTime}

	res, err := tk.Run(ctx)
	must(t, err)
	if res.Done != 1 || res.Failed != 1 {
		t.Fatalf("first start: %+v, want the DM taken over and the group failed", res)
	}
	if pl, membership := hs.state("!dm:example.org", bot); pl != 100 || membership != event.MembershipJoin {
		t.Errorf("gateway bot in the DM: power %d, %s; want 100, join", pl, membership)
	}
	if pl, _ := hs.state("!dm:example.org", "@alice:example.org"); pl != 50 {
		t.Errorf("staff member's power changed to %d", pl)
	}
	var lastError string
	must(t, c.dst.QueryRow(ctx, "SELECT last_error FROM passerelle_import_room WHERE room_id='!group:example.org'").Scan(&lastError))
	if !strings.Contains(lastError, "database on fire") {
		t.Errorf("failed room's error = %q", lastError)
	}

	// The homeserver recovers; meanwhile the old registration was
	// removed (its token is unknown now).
	hs.mu.Lock()
	hs.failing = nil
	delete(hs.tokens, c.fx.reg.AppToken)
	hs.mu.Unlock()
	res, err = tk.Run(ctx)
	must(t, err)
	if res.Done != 1 || res.Failed != 0 {
		t.Fatalf("second start: %+v, want the group taken over", res)
	}
	if pl, membership := hs.state("!group:example.org", bot); pl != 100 || membership != event.MembershipJoin {
		t.Errorf("gateway bot in the group: power %d, %s; want 100, join", pl, membership)
	}
	var tokens int
	must(t, c.dst.QueryRow(ctx, "SELECT COUNT(*) FROM passerelle_import_source").Scan(&tokens))
	if tokens != 0 {
		t.Error("the old bridge's token is still stored after every room was taken over")
	}
	if res, err = tk.Run(ctx); err != nil || res.Done+res.Failed != 0 {
		t.Errorf("third start: %+v %v, want nothing to do", res, err)
	}
}
