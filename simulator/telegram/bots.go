package tgsim

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
)

var errBotTokenInvalid = tgerr.New(400, "ACCESS_TOKEN_INVALID")

// BotSpec describes a bot account to create (as @BotFather would).
type BotSpec struct {
	FirstName string
	Username  string // without "@"; Telegram requires it to end in "bot"
}

// CreateBot registers a bot account and returns it with its token
// ("<bot ID>:<secret>"), which auth.importBotAuthorization accepts.
func (s *Server) CreateBot(spec BotSpec) (*Account, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	username := strings.TrimPrefix(spec.Username, "@")
	if username == "" || !strings.HasSuffix(strings.ToLower(username), "bot") {
		return nil, "", fmt.Errorf("tgsim: a bot's username must end in \"bot\": %q", spec.Username)
	}
	if _, ok := s.st.byUsername[strings.ToLower(username)]; ok {
		return nil, "", ErrUsernameUsed
	}
	s.st.nextUserID++
	u := &user{
		acc: Account{
			ID: s.st.nextUserID, FirstName: spec.FirstName, Username: username,
			AccessHash: randInt64(), Bot: true,
		},
		pts:        1,
		contacts:   map[int64]bool{},
		sent:       map[int64]*boxEntry{},
		readInbox:  map[int64]int{},
		readOutbox: map[int64]int{},
	}
	u.botToken = strconv.FormatInt(u.acc.ID, 10) + ":" + strconv.FormatInt(randInt64(), 36)
	s.st.users[u.acc.ID] = u
	s.st.byUsername[strings.ToLower(username)] = u
	acc := u.acc
	return &acc, u.botToken, nil
}

func (s *Server) authImportBotAuthorization(ctx context.Context, req *tg.AuthImportBotAuthorizationRequest) (tg.AuthAuthorizationClass, error) {
	r := requestFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	idPart, _, ok := strings.Cut(req.BotAuthToken, ":")
	if !ok {
		return nil, errBotTokenInvalid
	}
	id, err := strconv.ParseInt(idPart, 10, 64)
	if err != nil {
		return nil, errBotTokenInvalid
	}
	u, ok := s.st.users[id]
	if !ok || !u.acc.Bot || u.botToken == "" || u.botToken != req.BotAuthToken {
		return nil, errBotTokenInvalid
	}
	return s.bindLocked(r.keyID, u), nil
}
