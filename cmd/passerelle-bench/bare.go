package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
// whose ghost sends events into rooms the Matrix user is in, with nothing
// else around them. With K portals it is one ghost in K rooms (one DM room
// per portal, all with the same ghost). It answers the homeserver's
// transactions with 200 and does no other work but noting when each event
// arrived (for the Matrix→remote reference), so the homeserver's cost is
// what any appservice sending or receiving these events costs it.
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
	rooms     []id.RoomID
	encrypted bool
	user      id.UserID
	// arrivals are the events of the homeserver's transactions, by event
	// ID, with the time they arrived.
	arrivals arrivalLog
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
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errcode":"M_NOT_JSON"}`))
			return
		}
		b.arrivals.recordTransaction(body)
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
	if err := b.register(ctx, d, user, encrypted); err != nil {
		return err
	}
	return b.addRooms(ctx, 1)
}

// register registers the ghost, with a device whose keys are uploaded in
// an encrypted scenario.
func (b *bareAppService) register(ctx context.Context, d *stack.Dendrite, user id.UserID, encrypted bool) error {
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
	if encrypted {
		log := zerolog.Nop()
		b.state = &bareState{rooms: map[id.RoomID]bool{}, users: []id.UserID{resp.UserID, user}}
		b.mach = crypto.NewOlmMachine(b.client, &log, crypto.NewMemoryStore(nil), b.state)
		if err = b.mach.Load(ctx); err != nil {
			return err
		}
		if err = b.mach.ShareKeys(ctx, -1); err != nil {
			return fmt.Errorf("failed to upload the bare ghost's device keys: %w", err)
		}
	}
	return nil
}

// addRooms creates rooms with the Matrix user until there are k, waits
// until the user has joined each, and sends a first event into each (the
// megolm session is then shared before any measurement).
func (b *bareAppService) addRooms(ctx context.Context, k int) error {
	for len(b.rooms) < k {
		req := &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{b.user},
			Name: fmt.Sprintf("bare appservice %d", len(b.rooms)+1)}
		if b.encrypted {
			req.InitialState = []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}
		}
		room, err := b.client.CreateRoom(ctx, req)
		if err != nil {
			return fmt.Errorf("failed to create the bare appservice's room: %w", err)
		}
		if b.state != nil {
			b.state.add(room.RoomID)
		}
		if err = b.waitJoined(ctx, room.RoomID); err != nil {
			return err
		}
		b.rooms = append(b.rooms, room.RoomID)
		if err = b.send(ctx, room.RoomID, "hello"); err != nil {
			return err
		}
	}
	return nil
}

func (b *bareAppService) waitJoined(ctx context.Context, room id.RoomID) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		members, err := b.client.JoinedMembers(ctx, room)
		if err == nil {
			if _, ok := members.Joined[b.user]; ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never joined the bare appservice's room: %w", b.user, ctx.Err())
		case <-tick.C:
		}
	}
}

// send puts one m.text event into room as the ghost, encrypted in an
// encrypted room.
func (b *bareAppService) send(ctx context.Context, room id.RoomID, body string) error {
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: body}
	if !b.encrypted {
		_, err := b.client.SendMessageEvent(ctx, room, event.EventMessage, content)
		return err
	}
	enc, err := b.mach.EncryptMegolmEvent(ctx, room, event.EventMessage, content)
	if crypto.IsShareError(err) {
		if err = b.mach.ShareGroupSession(ctx, room, b.state.users); err != nil {
			return fmt.Errorf("failed to share the megolm session: %w", err)
		}
		enc, err = b.mach.EncryptMegolmEvent(ctx, room, event.EventMessage, content)
	}
	if err != nil {
		return fmt.Errorf("failed to encrypt: %w", err)
	}
	_, err = b.client.SendMessageEvent(ctx, room, event.EventEncrypted, enc)
	return err
}

// bareState is the little room state the OlmMachine asks about: the
// ghost's encrypted rooms, each with the same two members.
type bareState struct {
	mu    sync.Mutex
	rooms map[id.RoomID]bool
	users []id.UserID
}

func (s *bareState) add(r id.RoomID) {
	s.mu.Lock()
	s.rooms[r] = true
	s.mu.Unlock()
}

func (s *bareState) has(r id.RoomID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[r]
}

func (s *bareState) IsEncrypted(_ context.Context, r id.RoomID) (bool, error) {
	return s.has(r), nil
}

func (s *bareState) GetEncryptionEvent(_ context.Context, r id.RoomID) (*event.EncryptionEventContent, error) {
	if !s.has(r) {
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
			s.mu.Lock()
			defer s.mu.Unlock()
			out := make([]id.RoomID, 0, len(s.rooms))
			for r := range s.rooms {
				out = append(out, r)
			}
			return out, nil
		}
	}
	return nil, nil
}
