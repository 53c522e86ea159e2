package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/passerelle/passerelle/internal/dbtest"
	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// StackOptions say what NewStack brings up.
type StackOptions struct {
	// NoGateway runs Dendrite and the users only.
	NoGateway bool
	// TelegramSim enables the gateway's Telegram network against this
	// simulated DC (see NewTelegramSim).
	TelegramSim *tgsim.Server
	// Telegram does the same from raw coordinates (a DC in another process).
	Telegram *stack.TelegramTestServer
	// WhatsAppSim enables the gateway's WhatsApp network against this
	// simulated server (see NewWhatsAppSim).
	WhatsAppSim *wasim.Server
	// Postgres runs the gateway on a fresh schema of the database in
	// $PASSERELLE_TEST_POSTGRES instead of SQLite.
	Postgres bool
	// Users are registered on Dendrite and logged in, each as its own js
	// client (password login: a new device each).
	Users []string
	// AutoJoin makes every user accept every invite.
	AutoJoin bool
	// GatewayPatch changes the gateway config before the registration is made.
	GatewayPatch func(doc *stack.YAMLDoc) error
	// DendritePatch changes Dendrite's config before it starts.
	DendritePatch func(doc *stack.YAMLDoc) error
}

// Stack is Dendrite + the gateway + Matrix users for one test, torn down by
// t.Cleanup. On failure the logs' tails are written to the test log.
type Stack struct {
	T        testing.TB
	Dir      string
	Dendrite *stack.Dendrite
	Gateway  *stack.Gateway // nil with NoGateway
	// BotID is the bridge bot's Matrix user ID.
	BotID string
	Users map[string]*Client

	passwords map[string]string
	autoJoin  bool
}

// testDir makes the directory for one test's components. It is removed
// after a passing test and kept after a failing one (or always, with
// PASSERELLE_E2E_KEEP set), with its path in the test log.
func testDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "passerelle-e2e-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	keep := os.Getenv("PASSERELLE_E2E_KEEP") != ""
	t.Cleanup(func() {
		if keep || t.Failed() {
			t.Logf("test files (configs, databases, full logs) kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// NewStack starts a stack for t. It skips t under -short.
func NewStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := &Stack{T: t, Dir: testDir(t), Users: map[string]*Client{}, passwords: map[string]string{}, autoJoin: opts.AutoJoin}
	var pgURI string
	if opts.Postgres && !opts.NoGateway {
		// Made before teardown is registered, so that cleanup stops the
		// gateway before dropping its database.
		pgURI = freshPostgresDB(t)
	}
	t.Cleanup(s.teardown)

	hsPort, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var regFiles []string
	if !opts.NoGateway {
		if opts.TelegramSim != nil {
			opts.Telegram = &stack.TelegramTestServer{
				DC: opts.TelegramSim.DC(), Address: opts.TelegramSim.Addr(), PublicKeyPEM: opts.TelegramSim.PublicKeyPEM(),
			}
		}
		gwOpts := stack.GatewayOptions{
			Binary:        needGateway(t),
			Dir:           filepath.Join(s.Dir, "gateway"),
			HomeserverURL: fmt.Sprintf("http://127.0.0.1:%d", hsPort),
			Telegram:      opts.Telegram,
			WhatsApp:      whatsAppTestServer(opts.WhatsAppSim),
			Patch:         opts.GatewayPatch,
		}
		gwOpts.PostgresURI = pgURI
		if s.Gateway, err = stack.NewGateway(ctx, gwOpts); err != nil {
			t.Fatalf("gateway config: %v", err)
		}
		if s.BotID, err = s.Gateway.BotUserID(); err != nil {
			t.Fatal(err)
		}
		regFiles = append(regFiles, s.Gateway.RegistrationFiles()...)
	}
	if s.Dendrite, err = stack.StartDendrite(ctx, stack.DendriteOptions{
		BinDir:                dendriteBin,
		DataDir:               filepath.Join(s.Dir, "dendrite"),
		Port:                  hsPort,
		AppServiceConfigFiles: regFiles,
		// PASSERELLE_E2E_DENDRITE_LOG=debug shows what Dendrite pushes to
		// the appservice.
		LogLevel: os.Getenv("PASSERELLE_E2E_DENDRITE_LOG"),
		Patch:    opts.DendritePatch,
	}); err != nil {
		t.Fatalf("Dendrite: %v", err)
	}
	t.Logf("Dendrite answered in %s", s.Dendrite.StartDuration.Round(time.Millisecond))
	if s.Gateway != nil {
		if err = s.Gateway.Start(ctx); err != nil {
			t.Fatalf("gateway: %v", err)
		}
		t.Logf("gateway ready in %s", s.Gateway.ReadyDuration.Round(time.Millisecond))
	}
	for _, name := range opts.Users {
		s.AddUser(name)
	}
	return s
}

// NewTelegramSim starts an in-process fake Telegram DC on loopback for t,
// logging to the test log at info level, closed at cleanup. Create it before
// NewStack so that it outlives the gateway.
func NewTelegramSim(t testing.TB, opts tgsim.Options) *tgsim.Server {
	t.Helper()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named("tgsim")
	}
	sim, err := tgsim.New(opts)
	if err != nil {
		t.Fatalf("Telegram simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// AddUser registers localpart with a random password and logs a new js
// client in as that user.
func (s *Stack) AddUser(localpart string) *Client {
	t := s.T
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	password := randomString(12)
	if _, err := s.Dendrite.RegisterUser(ctx, localpart, password, false); err != nil {
		t.Fatalf("register %s: %v", localpart, err)
	}
	s.passwords[localpart] = password
	c, err := StartClient(filepath.Join(s.Dir, "client-"+localpart+".log"))
	if err != nil {
		t.Fatal(err)
	}
	s.Users[localpart] = c
	start := time.Now()
	if err = c.Login(ctx, s.Dendrite.URL, localpart, password, LoginOptions{AutoJoin: s.autoJoin, DeviceName: "e2e " + localpart}); err != nil {
		t.Fatalf("login %s: %v", localpart, err)
	}
	t.Logf("%s logged in (device %s) in %s", c.UserID, c.DeviceID, time.Since(start).Round(time.Millisecond))
	return c
}

// User returns a user added by NewStack or AddUser.
func (s *Stack) User(localpart string) *Client {
	c := s.Users[localpart]
	if c == nil {
		s.T.Fatalf("no user %q in the stack", localpart)
	}
	return c
}

// Password returns the password a user was registered with.
func (s *Stack) Password(localpart string) string { return s.passwords[localpart] }

// Ctx is a context for one step of a test.
func (s *Stack) Ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s.T.Cleanup(cancel)
	return ctx
}

// BotRoom creates an encrypted DM between c and the bridge bot, waits for the
// bot to join and for its welcome message, and returns the room and the
// welcome. The first such room becomes the user's management room.
func (s *Stack) BotRoom(c *Client) (roomID string, welcome *Event) {
	s.T.Helper()
	ctx := s.Ctx()
	start := time.Now()
	roomID, err := c.CreateDM(ctx, s.BotID, DMOptions{})
	if err != nil {
		s.T.Fatalf("DM with the bot: %v", err)
	}
	joined := time.Since(start)
	welcome, err = c.WaitMessage(ctx, roomID, MessageFilter{Sender: s.BotID, BodyContains: "bridge bot"})
	if err != nil {
		s.T.Fatalf("bot welcome message: %v", err)
	}
	s.T.Logf("bot joined the DM in %s, welcome decrypted at %s", joined.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return roomID, welcome
}

// Command sends body in roomID and returns the bot's first m.notice after it
// (command answers are notices).
func (s *Stack) Command(c *Client, roomID, body string) *Event {
	s.T.Helper()
	ctx := s.Ctx()
	eventID, err := c.Send(ctx, roomID, body)
	if err != nil {
		s.T.Fatalf("send %q: %v", body, err)
	}
	ev, err := c.WaitMessage(ctx, roomID, MessageFilter{Sender: s.BotID, After: eventID, MsgType: "m.notice"})
	if err != nil {
		s.T.Fatalf("answer to %q: %v", body, err)
	}
	return ev
}

// Input answers a login prompt with body and returns the bot's answer. bridgev2
// posts a prompt before it stores the login's state, so an answer sent the
// instant the prompt shows can be read as an unknown command: a person
// never types that fast, and Input sends it again.
func (s *Stack) Input(c *Client, roomID, body string) *Event {
	s.T.Helper()
	for attempt := 1; ; attempt++ {
		ans := s.Command(c, roomID, body)
		if !strings.HasPrefix(ans.Body(), "Unknown command") || attempt == 3 {
			return ans
		}
	}
}

// Step sends body in roomID and waits for the bot's answer containing want
// (not merely the next notice: a late notice of an earlier step must not be
// taken for it).
//
// bridgev2 posts a login prompt before it stores the login's state, so an
// input sent the instant the prompt shows can be read as an unknown
// command: a person never types that fast, and Step sends it again.
func (s *Stack) Step(c *Client, roomID, body, want string) *Event {
	s.T.Helper()
	ctx := s.Ctx()
	for attempt := 1; ; attempt++ {
		sent, err := c.Send(ctx, roomID, body)
		if err != nil {
			s.T.Fatalf("send %q: %v", body, err)
		}
		var found *Event
		unknown := false
		tick := time.NewTicker(100 * time.Millisecond)
		deadline := time.After(30 * time.Second)
		for found == nil && !unknown {
			select {
			case <-ctx.Done():
				s.T.Fatalf("answer to %q containing %q: %v", body, want, ctx.Err())
			case <-deadline:
				evs, _ := c.Messages(ctx, roomID, 10)
				s.T.Fatalf("answer to %q containing %q never came; recent: %q", body, want, bodiesOf(evs, s.BotID))
			case <-tick.C:
			}
			evs, err := c.Messages(ctx, roomID, 30)
			if err != nil {
				s.T.Fatal(err)
			}
			after := false
			for i := range evs {
				ev := &evs[i]
				switch {
				case ev.EventID == sent:
					after = true
				case !after || ev.Sender != s.BotID:
				case strings.Contains(ev.Body(), want):
					found = ev
				case strings.HasPrefix(ev.Body(), "Unknown command") && attempt < 3:
					unknown = true
				}
			}
		}
		tick.Stop()
		if found != nil {
			return found
		}
	}
}

// LoginTelegramPhone logs c in to the Telegram account of phone from the
// management room mgmt: `login telegram-phone`, the number, and the code
// the simulator sent, each step waiting for the bot's own answer to it.
func (s *Stack) LoginTelegramPhone(c *Client, mgmt string, sim *tgsim.Server, phone string) {
	s.T.Helper()
	s.Step(c, mgmt, "login telegram-phone", "phone number")
	s.Step(c, mgmt, phone, "code")
	code, ok := sim.LastCode(phone)
	if !ok {
		s.T.Fatalf("the simulator sent no login code to %s", phone)
	}
	s.Step(c, mgmt, code, "Logged in")
}

// LinkWhatsAppQR links the WhatsApp account of phone for c: `login
// whatsapp-qr` in c's management room, and the simulated phone scans the QR
// code the bot posted.
func (s *Stack) LinkWhatsAppQR(c *Client, mgmt string, wa *wasim.Server, phone string) {
	s.T.Helper()
	ctx := s.Ctx()
	sent, err := c.Send(ctx, mgmt, "login whatsapp-qr")
	if err != nil {
		s.T.Fatal(err)
	}
	qr, err := c.WaitMessage(ctx, mgmt, MessageFilter{Sender: s.BotID, After: sent, MsgType: "m.image"})
	if err != nil {
		s.T.Fatalf("no QR code image: %v", err)
	}
	if err = wa.ScanQR(ctx, phone, qr.Body()); err != nil {
		s.T.Fatalf("the phone could not scan the QR code the bot posted: %v", err)
	}
	if _, err = c.WaitMessage(ctx, mgmt, MessageFilter{Sender: s.BotID, After: sent, BodyContains: "Linked to WhatsApp"}); err != nil {
		s.T.Fatalf("QR login did not finish: %v", err)
	}
}

func (s *Stack) teardown() {
	t := s.T
	if t.Failed() {
		s.dumpLogs()
	}
	for _, c := range s.Users {
		_ = c.Close()
	}
	if s.Gateway != nil {
		if err := s.Gateway.Stop(); err != nil {
			t.Logf("gateway stop: %v", err)
		}
	}
	if s.Dendrite != nil {
		if err := s.Dendrite.Stop(); err != nil {
			t.Logf("Dendrite stop: %v", err)
		}
	}
}

func (s *Stack) dumpLogs() {
	t := s.T
	if s.Gateway != nil {
		t.Logf("---- gateway log (tail) %s ----\n%s", s.Gateway.StdoutPath, tail(s.Gateway.Log(), 150))
	}
	if s.Dendrite != nil {
		t.Logf("---- Dendrite log (tail) %s ----\n%s", s.Dendrite.LogPath, tail(s.Dendrite.Log(), 60))
	}
	for name, c := range s.Users {
		t.Logf("---- js client %s (tail) %s ----\n%s", name, c.LogPath, tail(c.Log(), 60))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freshPostgresDB returns the URI of a new PostgreSQL database for one test
// (dropped at cleanup). A schema per test is not enough: dbutil looks for
// version tables in every schema of the database.
func freshPostgresDB(t testing.TB) string {
	t.Helper()
	return dbtest.Postgres(t).URI
}

// whatsAppSeed derives the WhatsApp simulator's certificate chain in tests.
const whatsAppSeed = "passerelle-e2e"

// NewWhatsAppSim starts an in-process fake WhatsApp server on loopback for t,
// closed at cleanup. Create it before NewStack so that it outlives the gateway.
func NewWhatsAppSim(t testing.TB) *wasim.Server {
	t.Helper()
	sim, err := wasim.Start(wasim.Config{Addr: "127.0.0.1:0", RootSeed: whatsAppSeed})
	if err != nil {
		t.Fatalf("WhatsApp simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// createWAAccounts creates WhatsApp accounts on sim, by phone number and
// name.
func createWAAccounts(t testing.TB, sim *wasim.Server, accounts map[string]string) {
	t.Helper()
	for phone, name := range accounts {
		if _, err := sim.CreateAccount(phone, name); err != nil {
			t.Fatal(err)
		}
	}
}

// AdminRoom joins admin (a governance admin) to the governance admin room
// the bot made at start and invited them to, and returns its ID.
func (s *Stack) AdminRoom(admin *Client) string {
	s.T.Helper()
	room, err := admin.WaitRoom(s.Ctx(), RoomFilter{Name: "Passerelle governance", AutoJoin: true, Inviters: []string{regexp.QuoteMeta(s.BotID)}})
	if err != nil {
		s.T.Fatalf("the admin never got into the governance admin room: %v", err)
	}
	return room.RoomID
}

func whatsAppTestServer(sim *wasim.Server) *stack.WhatsAppTestServer {
	if sim == nil {
		return nil
	}
	return &stack.WhatsAppTestServer{Address: sim.Addr(), RootPublicKeyHex: wasim.RootPublicKeyHex(whatsAppSeed)}
}
