package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/passerelle/passerelle/internal/stack"
)

// bareLocalpartPrefix is the bare appservice's user namespace.
const bareLocalpartPrefix = "benchbare_"

// bareAppService is the reference the gateway is compared with: an
// appservice of its own (a second registration file Dendrite loads at start)
// whose ghost sends events into a room the Matrix user is in, with nothing
// else around them. It answers the homeserver's transactions with 200 and
// does no other work, so the homeserver's cost is what any appservice
// sending these events costs it.
//
// In an encrypted scenario the ghost has a real device and encrypts every
// event with megolm (mautrix-go's OlmMachine, shared once with the user's
// device over Olm): the homeserver then stores and delivers the same kind of
// event, to-device key sharing included, as it does for the gateway.
type bareAppService struct {
	regPath   string
	asToken   string
	hsToken   string
	srv       *http.Server
	ln        net.Listener
	mu        sync.Mutex
	txns      int
	client    *mautrix.Client
	mach      *crypto.OlmMachine
	state     *bareState
	roomID    id.RoomID
	encrypted bool
	user      id.UserID
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// newBareAppService listens on loopback and writes its registration file in
// dir.
func newBareAppService(dir, serverName string) (*bareAppService, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &bareAppService{asToken: randomToken(), hsToken: randomToken(), ln: ln, regPath: filepath.Join(dir, "bare-registration.yaml")}
	reg := fmt.Sprintf(`id: passerelle-bench-bare
url: http://%s
as_token: %s
hs_token: %s
sender_localpart: %sbot
rate_limited: false
namespaces:
  users:
  - exclusive: true
    regex: '@%s.*:%s'
`, ln.Addr(), b.asToken, b.hsToken, bareLocalpartPrefix, bareLocalpartPrefix, strings.ReplaceAll(serverName, ".", `\.`))
	if err = os.WriteFile(b.regPath, []byte(reg), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *bareAppService) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+b.hsToken && r.URL.Query().Get("access_token") != b.hsToken {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errcode":"M_FORBIDDEN"}`))
		return
	}
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/transactions/") {
		b.mu.Lock()
		b.txns++
		b.mu.Unlock()
		_, _ = w.Write([]byte(`{}`))
		return
	}
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED"}`))
}

func (b *bareAppService) close() {
	_ = b.srv.Close()
}

// setUp registers the ghost (with a device), creates a room with the
// Matrix user (encrypted or not), and waits until the user has joined.
func (b *bareAppService) setUp(ctx context.Context, d *stack.Dendrite, user id.UserID, encrypted bool) error {
	b.user, b.encrypted = user, encrypted
	as, err := mautrix.NewClient(d.URL, "", b.asToken)
	if err != nil {
		return err
	}
	resp, _, err := as.Register(ctx, &mautrix.ReqRegister[any]{
		Username: bareLocalpartPrefix + "contact", Type: mautrix.AuthTypeAppservice,
		InitialDeviceDisplayName: "bare appservice ghost",
	})
	if err != nil {
		return fmt.Errorf("failed to register the bare appservice's ghost: %w", err)
	}
	if b.client, err = mautrix.NewClient(d.URL, resp.UserID, resp.AccessToken); err != nil {
		return err
	}
	b.client.DeviceID = resp.DeviceID
	req := &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{user}, Name: "bare appservice"}
	if encrypted {
		req.InitialState = []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}
	}
	room, err := b.client.CreateRoom(ctx, req)
	if err != nil {
		return fmt.Errorf("failed to create the bare appservice's room: %w", err)
	}
	b.roomID = room.RoomID
	if encrypted {
		log := zerolog.Nop()
		b.state = &bareState{room: b.roomID, users: []id.UserID{resp.UserID, user}}
		b.mach = crypto.NewOlmMachine(b.client, &log, crypto.NewMemoryStore(nil), b.state)
		if err = b.mach.Load(ctx); err != nil {
			return err
		}
		if err = b.mach.ShareKeys(ctx, -1); err != nil {
			return fmt.Errorf("failed to upload the bare ghost's device keys: %w", err)
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		members, err := b.client.JoinedMembers(ctx, b.roomID)
		if err == nil {
			if _, ok := members.Joined[user]; ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never joined the bare appservice's room: %w", user, ctx.Err())
		case <-tick.C:
		}
	}
}

// send puts one m.text event into the room as the ghost, encrypted in an
// encrypted room.
func (b *bareAppService) send(ctx context.Context, body string) error {
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: body}
	if !b.encrypted {
		_, err := b.client.SendMessageEvent(ctx, b.roomID, event.EventMessage, content)
		return err
	}
	enc, err := b.mach.EncryptMegolmEvent(ctx, b.roomID, event.EventMessage, content)
	if crypto.IsShareError(err) {
		if err = b.mach.ShareGroupSession(ctx, b.roomID, b.state.users); err != nil {
			return fmt.Errorf("failed to share the megolm session: %w", err)
		}
		enc, err = b.mach.EncryptMegolmEvent(ctx, b.roomID, event.EventMessage, content)
	}
	if err != nil {
		return fmt.Errorf("failed to encrypt: %w", err)
	}
	_, err = b.client.SendMessageEvent(ctx, b.roomID, event.EventEncrypted, enc)
	return err
}

// bareState is the little room state the OlmMachine asks about: one
// encrypted room with two members.
type bareState struct {
	room  id.RoomID
	users []id.UserID
}

func (s *bareState) IsEncrypted(_ context.Context, r id.RoomID) (bool, error) {
	return r == s.room, nil
}

func (s *bareState) GetEncryptionEvent(_ context.Context, r id.RoomID) (*event.EncryptionEventContent, error) {
	if r != s.room {
		return nil, errors.New("unknown room")
	}
	return &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}, nil
}

func (s *bareState) GetHistoryVisibility(context.Context, id.RoomID) (*event.HistoryVisibilityEventContent, error) {
	return &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityShared}, nil
}

func (s *bareState) FindSharedRooms(_ context.Context, u id.UserID) ([]id.RoomID, error) {
	for _, m := range s.users {
		if m == u {
			return []id.RoomID{s.room}, nil
		}
	}
	return nil, nil
}
