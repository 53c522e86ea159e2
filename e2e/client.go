package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/passerelle/passerelle/internal/stack"
)

// DefaultTimeout bounds a driver wait when the caller gives none.
const DefaultTimeout = 30 * time.Second

// ClientDir is e2e/client in the module, where driver.mjs and its
// node_modules live.
func ClientDir() (string, error) {
	root, err := stack.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "e2e", "client"), nil
}

// CheckClientInstalled fails when `npm ci` has not been run in e2e/client.
func CheckClientInstalled() error {
	dir, err := ClientDir()
	if err != nil {
		return err
	}
	if _, err = os.Stat(filepath.Join(dir, "node_modules", "matrix-js-sdk", "package.json")); err != nil {
		return fmt.Errorf("matrix-js-sdk is not installed in %s: run `npm ci` there (scripts/test does): %w", dir, err)
	}
	if _, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not installed: %w", err)
	}
	return nil
}

// Client is one Matrix user with one device: a matrix-js-sdk process with
// Rust crypto (e2e/client/driver.mjs) that decrypts and encrypts on its own,
// independently of the gateway's mautrix-go crypto.
type Client struct {
	// UserID and DeviceID are set by Login.
	UserID   string
	DeviceID string
	// LogPath receives the driver's stderr (SDK and driver logs).
	LogPath string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	nextID int64
	wait   map[int64]chan response
	done   chan struct{}
	err    error
}

type response struct {
	ID     int64           `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// StartClient starts a driver process; its stderr goes to logPath.
func StartClient(logPath string) (*Client, error) {
	dir, err := ClientDir()
	if err != nil {
		return nil, err
	}
	if err = CheckClientInstalled(); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "driver.mjs")
	cmd.Dir = dir
	cmd.Stderr = logFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err = cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("failed to start the js client: %w", err)
	}
	c := &Client{LogPath: logPath, cmd: cmd, stdin: stdin, wait: map[int64]chan response{}, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for sc.Scan() {
			var r response
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				continue
			}
			c.mu.Lock()
			ch := c.wait[r.ID]
			delete(c.wait, r.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		}
		err := cmd.Wait()
		logFile.Close()
		c.mu.Lock()
		c.err = fmt.Errorf("js client exited: %v (log: %s)", err, logPath)
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// Call sends one command and decodes its result into out (may be nil).
func (c *Client) Call(ctx context.Context, cmd string, args, out any) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan response, 1)
	c.wait[id] = ch
	line, err := json.Marshal(map[string]any{"id": id, "cmd": cmd, "args": args})
	if err == nil {
		_, err = c.stdin.Write(append(line, '\n'))
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("failed to send %s to the js client: %w", cmd, err)
	}
	select {
	case r := <-ch:
		if !r.OK {
			return fmt.Errorf("js client %s: %s", cmd, r.Error)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				return fmt.Errorf("failed to decode %s result: %w", cmd, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.wait, id)
		c.mu.Unlock()
		return fmt.Errorf("js client %s: %w", cmd, ctx.Err())
	case <-c.done:
		return c.err
	}
}

// call bounds a command by timeout plus a margin, and passes timeout on to
// the driver's own wait as timeoutMs.
func (c *Client) call(ctx context.Context, timeout time.Duration, cmd string, args map[string]any, out any) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	args["timeoutMs"] = timeout.Milliseconds()
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	return c.Call(ctx, cmd, args, out)
}

// Close stops the driver.
func (c *Client) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = c.Call(ctx, "stop", map[string]any{}, nil)
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	return nil
}

// Log returns the driver's stderr so far.
func (c *Client) Log() string {
	data, _ := os.ReadFile(c.LogPath)
	return string(data)
}

// LoginOptions tune Login.
type LoginOptions struct {
	DeviceName string
	// AutoJoin accepts every invite (from inviters whose user ID matches one
	// of Inviters, a list of JavaScript regular expressions, if given).
	AutoJoin bool
	Inviters []string
	Timeout  time.Duration
}

// Login logs in with a password (a new device), starts Rust crypto on an
// in-memory store and waits for the first sync.
func (c *Client) Login(ctx context.Context, homeserverURL, user, password string, opts LoginOptions) error {
	var res struct {
		UserID   string `json:"userId"`
		DeviceID string `json:"deviceId"`
	}
	err := c.call(ctx, opts.Timeout, "login", map[string]any{
		"baseUrl": homeserverURL, "user": user, "password": password,
		"deviceName": opts.DeviceName, "autoJoin": opts.AutoJoin, "inviters": opts.Inviters,
	}, &res)
	if err != nil {
		return err
	}
	c.UserID, c.DeviceID = res.UserID, res.DeviceID
	return nil
}

// SetAutoJoin turns automatic acceptance of invites on or off.
func (c *Client) SetAutoJoin(ctx context.Context, enabled bool, inviters ...string) error {
	return c.Call(ctx, "setAutoJoin", map[string]any{"enabled": enabled, "inviters": inviters}, nil)
}

// DMOptions tune CreateDM.
type DMOptions struct {
	Unencrypted bool
	Name        string
	// NoWaitJoin returns as soon as the room exists, without waiting for
	// the invitee to join.
	NoWaitJoin bool
	Timeout    time.Duration
}

// CreateDM creates a direct chat with userID (encrypted with megolm unless
// opts.Unencrypted) and, by default, waits until userID has joined.
func (c *Client) CreateDM(ctx context.Context, userID string, opts DMOptions) (roomID string, err error) {
	var res struct {
		RoomID string `json:"roomId"`
	}
	args := map[string]any{"userId": userID, "encrypted": !opts.Unencrypted, "waitJoin": !opts.NoWaitJoin}
	if opts.Name != "" {
		args["name"] = opts.Name
	}
	err = c.call(ctx, opts.Timeout, "createDM", args, &res)
	return res.RoomID, err
}

// WaitInvite waits for a pending invite (from inviter, if not empty).
func (c *Client) WaitInvite(ctx context.Context, inviter string, timeout time.Duration) (roomID string, err error) {
	var res struct {
		RoomID string `json:"roomId"`
	}
	args := map[string]any{}
	if inviter != "" {
		args["inviter"] = inviter
	}
	err = c.call(ctx, timeout, "waitInvite", args, &res)
	return res.RoomID, err
}

// Join joins a room and waits until the client sees itself joined.
func (c *Client) Join(ctx context.Context, roomID string) error {
	return c.call(ctx, 0, "join", map[string]any{"roomId": roomID}, nil)
}

// Invite invites userID to roomID.
func (c *Client) Invite(ctx context.Context, roomID, userID string) error {
	return c.call(ctx, 0, "invite", map[string]any{"roomId": roomID, "userId": userID}, nil)
}

// Leave leaves a room.
func (c *Client) Leave(ctx context.Context, roomID string) error {
	return c.call(ctx, 0, "leave", map[string]any{"roomId": roomID}, nil)
}

// WaitMember waits until userID has the membership ("join" if empty) in roomID.
func (c *Client) WaitMember(ctx context.Context, roomID, userID, membership string, timeout time.Duration) error {
	args := map[string]any{"roomId": roomID, "userId": userID}
	if membership != "" {
		args["membership"] = membership
	}
	return c.call(ctx, timeout, "waitMember", args, nil)
}

// Send sends an m.text message (encrypted if the room is) and returns its event ID.
func (c *Client) Send(ctx context.Context, roomID, body string) (eventID string, err error) {
	return c.SendMessage(ctx, roomID, Message{Body: body})
}

// Message is an outgoing message.
type Message struct {
	Body          string
	FormattedBody string // HTML, optional
	MsgType       string // default m.text
}

// SendMessage sends a message with optional HTML and msgtype.
func (c *Client) SendMessage(ctx context.Context, roomID string, m Message) (eventID string, err error) {
	var res struct {
		EventID string `json:"eventId"`
	}
	args := map[string]any{"roomId": roomID, "body": m.Body}
	if m.FormattedBody != "" {
		args["formattedBody"] = m.FormattedBody
	}
	if m.MsgType != "" {
		args["msgtype"] = m.MsgType
	}
	err = c.call(ctx, 0, "send", args, &res)
	return res.EventID, err
}

// File is an outgoing file message.
type File struct {
	MsgType  string // m.image, m.file, m.video, m.audio
	Body     string // the caption, or the file name
	Filename string // when it differs from Body
	MimeType string
	Data     []byte
	Info     map[string]any // extra info fields (w, h, duration, ...)
}

// SendFile uploads f as Element does (encrypted with the attachment format
// v2 when the room is encrypted, so that the homeserver only holds
// ciphertext) and sends its message. It returns the event ID and the mxc
// URI of the upload.
func (c *Client) SendFile(ctx context.Context, roomID string, f File) (eventID, mxc string, err error) {
	var res struct {
		EventID string `json:"eventId"`
		MXC     string `json:"mxc"`
	}
	args := map[string]any{"roomId": roomID, "msgtype": f.MsgType, "body": f.Body, "mimetype": f.MimeType,
		"data": base64.StdEncoding.EncodeToString(f.Data)}
	if f.Filename != "" {
		args["filename"] = f.Filename
	}
	if f.Info != nil {
		args["info"] = f.Info
	}
	err = c.call(ctx, 2*time.Minute, "sendFile", args, &res)
	return res.EventID, res.MXC, err
}

// DownloadFile fetches the file of a message's (decrypted) content: its
// plaintext, decrypted and hash-checked when the content carries an
// EncryptedFile, and the bytes the homeserver serves for it.
func (c *Client) DownloadFile(ctx context.Context, content map[string]any) (plain, onServer []byte, err error) {
	var res struct {
		Data   string `json:"data"`
		Server string `json:"server"`
	}
	if err = c.call(ctx, 2*time.Minute, "downloadFile", map[string]any{"content": content}, &res); err != nil {
		return nil, nil, err
	}
	if plain, err = base64.StdEncoding.DecodeString(res.Data); err != nil {
		return nil, nil, err
	}
	onServer, err = base64.StdEncoding.DecodeString(res.Server)
	return plain, onServer, err
}

// SendEvent sends a raw event of any type (a state event when stateKey is
// not nil). It is encrypted by the SDK only for non-state events in an
// encrypted room.
func (c *Client) SendEvent(ctx context.Context, roomID, evType string, content any, stateKey *string) (eventID string, err error) {
	var res struct {
		EventID string `json:"eventId"`
	}
	args := map[string]any{"roomId": roomID, "type": evType, "content": content}
	if stateKey != nil {
		args["stateKey"] = *stateKey
	}
	err = c.call(ctx, 0, "sendEvent", args, &res)
	return res.EventID, err
}

// Event is a timeline event as the client sees it.
type Event struct {
	EventID string `json:"eventId"`
	Sender  string `json:"sender"`
	// Type is the wire type, as stored by the homeserver: m.room.encrypted
	// for an encrypted message. ClearType is the type after decryption.
	Type      string         `json:"type"`
	ClearType string         `json:"clearType"`
	Encrypted bool           `json:"encrypted"`
	Content   map[string]any `json:"content"` // decrypted content
	TS        int64          `json:"ts"`
	StateKey  *string        `json:"stateKey,omitempty"`
	// DecryptionError is set when the client could not decrypt the event.
	DecryptionError string `json:"decryptionError,omitempty"`
	// SeenAt is when this client first held the event's clear content
	// (decrypted, or received in the clear), in Unix milliseconds of this
	// machine's clock; 0 when unknown (fetched later, never decrypted).
	SeenAt int64 `json:"seenAt,omitempty"`
}

// Body is content.body, or "".
func (e *Event) Body() string {
	s, _ := e.Content["body"].(string)
	return s
}

// MsgType is content.msgtype, or "".
func (e *Event) MsgType() string {
	s, _ := e.Content["msgtype"].(string)
	return s
}

// MessageFilter selects a message for WaitMessage. Only decrypted
// m.room.message events match unless Type says otherwise.
type MessageFilter struct {
	Sender       string
	NotSender    string
	BodyContains string
	MsgType      string
	Type         string    // clear type, default m.room.message
	Since        time.Time // origin_server_ts at or after
	After        string    // only events after this event ID
	Timeout      time.Duration
}

// WaitMessage waits for the first message in roomID that matches f. On a
// timeout the error lists the room's recent events, decryption failures
// included.
func (c *Client) WaitMessage(ctx context.Context, roomID string, f MessageFilter) (*Event, error) {
	args := map[string]any{"roomId": roomID}
	for k, v := range map[string]string{"sender": f.Sender, "notSender": f.NotSender, "bodyContains": f.BodyContains,
		"msgtype": f.MsgType, "type": f.Type, "after": f.After} {
		if v != "" {
			args[k] = v
		}
	}
	if !f.Since.IsZero() {
		args["since"] = f.Since.UnixMilli()
	}
	var ev Event
	if err := c.call(ctx, f.Timeout, "waitMessage", args, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Messages returns the room's timeline as the client has it, oldest first
// (limit > 0 keeps the newest limit events).
func (c *Client) Messages(ctx context.Context, roomID string, limit int) ([]Event, error) {
	var evs []Event
	args := map[string]any{"roomId": roomID}
	if limit > 0 {
		args["limit"] = limit
	}
	err := c.call(ctx, 0, "messages", args, &evs)
	return evs, err
}

// ServerHistory returns every event of the room in the homeserver's order
// (one initial /sync filtered to the room, no timeline limit), decrypted.
// It does not depend on the client's timelines, which a gappy sync after a
// homeserver restart can leave with a hole, nor on /messages, whose pages
// skip or repeat events of equal depth on Dendrite.
func (c *Client) ServerHistory(ctx context.Context, roomID string) ([]Event, error) {
	var evs []Event
	err := c.call(ctx, 2*time.Minute, "serverHistory", map[string]any{"roomId": roomID}, &evs)
	return evs, err
}

// StateEvent is one state event's content.
type StateEvent struct {
	StateKey string         `json:"stateKey"`
	Sender   string         `json:"sender"`
	Content  map[string]any `json:"content"`
}

// RoomState returns the state event (type, stateKey), or nil when absent.
func (c *Client) RoomState(ctx context.Context, roomID, evType, stateKey string) (*StateEvent, error) {
	var ev *StateEvent
	err := c.call(ctx, 0, "roomState", map[string]any{"roomId": roomID, "type": evType, "stateKey": stateKey}, &ev)
	return ev, err
}

// RoomStateAll returns every state event of a type.
func (c *Client) RoomStateAll(ctx context.Context, roomID, evType string) ([]StateEvent, error) {
	var evs []StateEvent
	err := c.call(ctx, 0, "roomState", map[string]any{"roomId": roomID, "type": evType}, &evs)
	return evs, err
}

// Member is one room member.
type Member struct {
	UserID      string `json:"userId"`
	Membership  string `json:"membership"`
	DisplayName string `json:"displayName,omitempty"`
}

// RoomMembers lists the room's members with their membership.
func (c *Client) RoomMembers(ctx context.Context, roomID string) ([]Member, error) {
	var ms []Member
	err := c.call(ctx, 0, "roomMembers", map[string]any{"roomId": roomID}, &ms)
	return ms, err
}

// ServerMembers lists the room's members as the homeserver answers them
// (GET /rooms/{roomId}/members), not as the client has synced them.
func (c *Client) ServerMembers(ctx context.Context, roomID string) ([]Member, error) {
	var ms []Member
	err := c.call(ctx, 0, "serverMembers", map[string]any{"roomId": roomID}, &ms)
	return ms, err
}

// OpenIDToken is what the homeserver answers this user's OpenID token
// request (POST /user/{userId}/openid/request_token).
type OpenIDToken struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	MatrixServerName string `json:"matrix_server_name"`
	ExpiresIn        int    `json:"expires_in"`
}

// OpenIDToken asks the homeserver for an OpenID token of this user.
func (c *Client) OpenIDToken(ctx context.Context) (*OpenIDToken, error) {
	var tok OpenIDToken
	if err := c.call(ctx, 0, "openIDToken", map[string]any{}, &tok); err != nil {
		return nil, err
	}
	return &tok, nil
}

// DisplayName fetches a user's global display name from the homeserver.
func (c *Client) DisplayName(ctx context.Context, userID string) (string, error) {
	var res struct {
		DisplayName *string `json:"displayName"`
	}
	if err := c.call(ctx, 0, "displayName", map[string]any{"userId": userID}, &res); err != nil {
		return "", err
	}
	if res.DisplayName == nil {
		return "", nil
	}
	return *res.DisplayName, nil
}

// RawEvent fetches the event as the homeserver stores it
// (GET /rooms/{roomId}/event/{eventId} with this user's token).
func (c *Client) RawEvent(ctx context.Context, roomID, eventID string) (map[string]any, error) {
	var ev map[string]any
	err := c.call(ctx, 0, "rawEvent", map[string]any{"roomId": roomID, "eventId": eventID}, &ev)
	return ev, err
}

// Room describes a room the client knows.
type Room struct {
	RoomID     string   `json:"roomId"`
	Name       string   `json:"name"`
	Membership string   `json:"membership,omitempty"`
	Encrypted  bool     `json:"encrypted"`
	Space      bool     `json:"space"`
	Members    []Member `json:"members"`
}

// Rooms lists every room the client knows, with its own membership.
func (c *Client) Rooms(ctx context.Context) ([]Room, error) {
	var rs []Room
	err := c.call(ctx, 0, "rooms", map[string]any{}, &rs)
	return rs, err
}

// RoomFilter selects a room for WaitRoom.
type RoomFilter struct {
	Name         string
	NameContains string
	Member       string   // a user joined or invited
	Exclude      []string // room IDs to ignore (rooms that existed before)
	Spaces       bool     // also match spaces (skipped by default)
	// AutoJoin accepts invites while waiting (from Inviters only, regexes, if given).
	AutoJoin bool
	Inviters []string
	Timeout  time.Duration
}

// WaitRoom waits for a joined room that matches f and whose state the client
// holds, accepting invites on the way when f.AutoJoin is set. Spaces (the
// bridge makes one per login) are skipped unless f.Spaces.
func (c *Client) WaitRoom(ctx context.Context, f RoomFilter) (*Room, error) {
	args := map[string]any{"autoJoin": f.AutoJoin, "spaces": f.Spaces}
	if f.Name != "" {
		args["name"] = f.Name
	}
	if f.NameContains != "" {
		args["nameContains"] = f.NameContains
	}
	if f.Member != "" {
		args["member"] = f.Member
	}
	if len(f.Exclude) > 0 {
		args["exclude"] = f.Exclude
	}
	if len(f.Inviters) > 0 {
		args["inviters"] = f.Inviters
	}
	var r Room
	if err := c.call(ctx, f.Timeout, "waitRoom", args, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ErrNotEncrypted is returned by RequireEncryptedOnServer.
var ErrNotEncrypted = errors.New("event is not m.room.encrypted on the homeserver")

// RequireEncryptedOnServer checks that the homeserver's copy of an event is
// m.room.encrypted with a megolm ciphertext and no plaintext body.
func (c *Client) RequireEncryptedOnServer(ctx context.Context, roomID, eventID string) error {
	raw, err := c.RawEvent(ctx, roomID, eventID)
	if err != nil {
		return err
	}
	content, _ := raw["content"].(map[string]any)
	if raw["type"] != "m.room.encrypted" || content["algorithm"] != "m.megolm.v1.aes-sha2" || content["ciphertext"] == nil {
		return fmt.Errorf("%w: type %v, algorithm %v", ErrNotEncrypted, raw["type"], content["algorithm"])
	}
	if _, hasBody := content["body"]; hasBody {
		return fmt.Errorf("%w: content has a plaintext body", ErrNotEncrypted)
	}
	return nil
}

// eventIDCall runs a driver command that answers {eventId}.
func (c *Client) eventIDCall(ctx context.Context, cmd string, args map[string]any) (string, error) {
	var res struct {
		EventID string `json:"eventId"`
	}
	err := c.call(ctx, 0, cmd, args, &res)
	return res.EventID, err
}

// Reply sends an m.text reply (m.in_reply_to) to eventID.
func (c *Client) Reply(ctx context.Context, roomID, eventID, body string) (string, error) {
	return c.eventIDCall(ctx, "reply", map[string]any{"roomId": roomID, "eventId": eventID, "body": body})
}

// Edit replaces the text of eventID (m.replace with m.new_content).
func (c *Client) Edit(ctx context.Context, roomID, eventID, body string) (string, error) {
	return c.eventIDCall(ctx, "edit", map[string]any{"roomId": roomID, "eventId": eventID, "body": body})
}

// Redact redacts eventID and returns the redaction's event ID.
func (c *Client) Redact(ctx context.Context, roomID, eventID, reason string) (string, error) {
	args := map[string]any{"roomId": roomID, "eventId": eventID}
	if reason != "" {
		args["reason"] = reason
	}
	return c.eventIDCall(ctx, "redact", args)
}

// React sends an m.reaction annotation with key on eventID.
func (c *Client) React(ctx context.Context, roomID, eventID, key string) (string, error) {
	return c.eventIDCall(ctx, "react", map[string]any{"roomId": roomID, "eventId": eventID, "key": key})
}

// Unreact takes back this user's reaction with key on eventID (a redaction
// of the reaction) and returns the redaction's event ID.
func (c *Client) Unreact(ctx context.Context, roomID, eventID, key string) (string, error) {
	return c.eventIDCall(ctx, "unreact", map[string]any{"roomId": roomID, "eventId": eventID, "key": key})
}

// ReadReceipt sends a public m.read receipt for eventID.
func (c *Client) ReadReceipt(ctx context.Context, roomID, eventID string) error {
	return c.call(ctx, 0, "readReceipt", map[string]any{"roomId": roomID, "eventId": eventID}, nil)
}

// ReadMarkers sets the fully-read marker and the read receipt on eventID,
// as Element does when the user reads a room.
func (c *Client) ReadMarkers(ctx context.Context, roomID, eventID string) error {
	return c.call(ctx, 0, "readMarkers", map[string]any{"roomId": roomID, "eventId": eventID}, nil)
}

// Typing says that this user types in roomID (typing true, for up to 30 s)
// or stopped.
func (c *Client) Typing(ctx context.Context, roomID string, typing bool) error {
	return c.call(ctx, 0, "typing", map[string]any{"roomId": roomID, "typing": typing}, nil)
}

// EditInfo is one edit of a ConversationMessage.
type EditInfo struct {
	EventID string `json:"eventId"`
	Sender  string `json:"sender"`
	Body    string `json:"body"`
}

// Reaction is a reaction on a ConversationMessage that was not taken back.
type Reaction struct {
	Key     string `json:"key"`
	Sender  string `json:"sender"`
	EventID string `json:"eventId"`
}

// ConversationMessage is a message of a room with its relations, decrypted.
type ConversationMessage struct {
	EventID string `json:"eventId"`
	Sender  string `json:"sender"`
	Type    string `json:"type"`
	Body    string `json:"body"`
	MsgType string `json:"msgtype"`
	// ReplyTo is the event this message replies to.
	ReplyTo  string `json:"replyTo"`
	Redacted bool   `json:"redacted"`
	// Edits in timeline order; LatestBody is the text after the original
	// sender's last edit (Body when there is none).
	Edits           []EditInfo `json:"edits"`
	LatestBody      string     `json:"latestBody"`
	Reactions       []Reaction `json:"reactions"`
	DecryptionError string     `json:"decryptionError,omitempty"`
}

// Conversation returns the room's messages as the client has them, oldest
// first, with replies, edits, redactions and reactions resolved.
func (c *Client) Conversation(ctx context.Context, roomID string) ([]ConversationMessage, error) {
	var msgs []ConversationMessage
	err := c.call(ctx, 0, "conversation", map[string]any{"roomId": roomID}, &msgs)
	return msgs, err
}

// Receipt is a member's m.read receipt.
type Receipt struct {
	EventID string `json:"eventId"`
	TS      int64  `json:"ts"`
}

// Receipts returns every member's m.read receipt in roomID, by user ID.
func (c *Client) Receipts(ctx context.Context, roomID string) (map[string]Receipt, error) {
	out := map[string]Receipt{}
	err := c.call(ctx, 0, "receipts", map[string]any{"roomId": roomID}, &out)
	return out, err
}

// TypingUsers returns who types in roomID now, sorted.
func (c *Client) TypingUsers(ctx context.Context, roomID string) ([]string, error) {
	var users []string
	err := c.call(ctx, 0, "typingUsers", map[string]any{"roomId": roomID}, &users)
	return users, err
}

// Presence is a user's presence as a client sees it.
type Presence struct {
	Presence        string `json:"presence"`
	LastActiveAgo   *int64 `json:"lastActiveAgo"`
	CurrentlyActive *bool  `json:"currentlyActive"`
}

// Presence returns userID's presence: from the client's synced state, or
// asked from the homeserver with fromServer.
func (c *Client) Presence(ctx context.Context, userID string, fromServer bool) (*Presence, error) {
	var p Presence
	err := c.call(ctx, 0, "presence", map[string]any{"userId": userID, "server": fromServer}, &p)
	return &p, err
}
