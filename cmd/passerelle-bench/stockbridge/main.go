// Command stockbridge is passerelle-bench's "stock bridgev2" reference:
// mautrix-go's bridgev2 run by mxmain.BridgeMain with a synthetic network
// connector and nothing else. There is no network library, no governance,
// no idempotent sends, no metrics: what it costs is what the framework alone
// costs to bridge a message.
//
// The connector has one login flow with no step (the login is created as
// soon as it is asked for), one DM with one contact, and a control endpoint
// on loopback (network.control_listen in the config) that the bench uses as
// the "remote network":
//
//	POST /messages {"bodies": ["...", ...], "portals": [0, 1, ...]}
//
// queues one remote text message per body from a contact into its DM
// portal (created on the first one) with login.QueueRemoteEvent, in order,
// and answers 202 at once. portals, when given, names each body's contact
// by number (0 is "contact", n is "contact<n>"); without it every body is
// contact 0's. Matrix messages sent into a portal are accepted at once and
// given an ID (HandleMatrixMessage does no work), and their bodies are
// kept with the time they arrived, for
//
//	GET /received
//
// which answers [{"body": "...", "at_us": <Unix microseconds>}, ...]: what
// the "remote network" received from Matrix, and when. The same endpoint
// serves Go's CPU and heap profiles (GET /debug/pprof/profile?seconds=N,
// GET /debug/pprof/heap), which the bench takes with -profile as it takes
// Passerelle's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/util/configupgrade"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
)

// Filled in by the build with -ldflags "-X main.Tag=..." if wanted.
var (
	Tag       = "unknown"
	Commit    = "unknown"
	BuildTime = "unknown"
)

// The synthetic network's fixed identities.
const (
	loginID   networkid.UserLoginID = "staff"
	staffID   networkid.UserID      = "staff"
	contactID networkid.UserID      = "contact"
	// NetworkID also names the bot (stockbenchbot) and the ghosts
	// (stockbench_contact): mxmain's example config derives them from it.
	NetworkID   = "stockbench"
	contactName = "Carla Contact"
	// maxBodies bounds one control request.
	maxBodies = 100_000
	// maxReceived bounds the Matrix messages kept for GET /received.
	maxReceived = 1_000_000
)

func main() {
	m := mxmain.BridgeMain{
		Name:        "passerelle-bench-stockbridge",
		URL:         "https://github.com/passerelle/passerelle",
		Description: "Stock bridgev2 with a synthetic network connector (passerelle-bench's reference).",
		Version:     "0.1.0",
		Connector:   &connector{},
	}
	m.InitVersion(Tag, Commit, BuildTime)
	m.Run()
}

// config is the network section: where the control endpoint listens.
type config struct {
	ControlListen string `yaml:"control_listen"`
}

const exampleConfig = `# Loopback address of the bench's control endpoint (POST /messages).
control_listen: 127.0.0.1:29399
`

type connector struct {
	br  *bridgev2.Bridge
	cfg config

	mu    sync.Mutex
	login *bridgev2.UserLogin
	seq   atomic.Int64
	srv   *http.Server

	recvMu   sync.Mutex
	received []received
}

// received is a Matrix message HandleMatrixMessage was given.
type received struct {
	Body string `json:"body"`
	AtUs int64  `json:"at_us"`
}

var (
	_ bridgev2.NetworkConnector = (*connector)(nil)
	_ bridgev2.StoppableNetwork = (*connector)(nil)
)

func (c *connector) Init(br *bridgev2.Bridge) { c.br = br }

func (c *connector) Start(ctx context.Context) error {
	if c.cfg.ControlListen == "" {
		return errors.New("network.control_listen is empty")
	}
	ln, err := net.Listen("tcp", c.cfg.ControlListen)
	if err != nil {
		return fmt.Errorf("failed to listen for the control endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /messages", c.serveMessages)
	mux.HandleFunc("GET /received", c.serveReceived)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.Handle("GET /debug/pprof/heap", pprof.Handler("heap"))
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return nil
}

func (c *connector) Stop() {
	if c.srv != nil {
		_ = c.srv.Close()
	}
}

func (c *connector) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:          "Stock bench",
		NetworkURL:           "https://example.invalid",
		NetworkID:            NetworkID,
		BeeperBridgeType:     NetworkID,
		DefaultPort:          29399,
		DefaultCommandPrefix: "!stock",
	}
}

func (c *connector) GetDBMetaTypes() database.MetaTypes { return database.MetaTypes{} }

func (c *connector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{}
}

func (c *connector) GetConfig() (string, any, configupgrade.Upgrader) {
	return exampleConfig, &c.cfg, configupgrade.SimpleUpgrader(func(h configupgrade.Helper) {
		h.Copy(configupgrade.Str, "control_listen")
	})
}

func (c *connector) GetBridgeInfoVersion() (info, capabilities int) { return 1, 1 }

func (c *connector) LoadUserLogin(_ context.Context, login *bridgev2.UserLogin) error {
	login.Client = &client{login: login, conn: c}
	c.mu.Lock()
	c.login = login
	c.mu.Unlock()
	return nil
}

func (c *connector) GetLoginFlows() []bridgev2.LoginFlow {
	return []bridgev2.LoginFlow{{Name: "Synthetic", Description: "Log in to the synthetic network at once", ID: "synthetic"}}
}

func (c *connector) CreateLogin(_ context.Context, user *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	if flowID != "synthetic" {
		return nil, fmt.Errorf("unknown login flow %q", flowID)
	}
	return &loginProcess{user: user}, nil
}

// serveMessages queues one remote message per body, in order, and answers
// before they are bridged.
func (c *connector) serveMessages(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Bodies  []string `json:"bodies"`
		Portals []int    `json:"portals"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&req); err != nil || len(req.Bodies) == 0 || len(req.Bodies) > maxBodies ||
		(req.Portals != nil && len(req.Portals) != len(req.Bodies)) {
		http.Error(w, "want {\"bodies\": [...], \"portals\": [...]} with 1 to 100000 bodies, and as many portals if given", http.StatusBadRequest)
		return
	}
	for _, p := range req.Portals {
		if p < 0 || p >= maxBodies {
			http.Error(w, "portal numbers go from 0 to 99999", http.StatusBadRequest)
			return
		}
	}
	c.mu.Lock()
	login := c.login
	c.mu.Unlock()
	if login == nil {
		http.Error(w, "not logged in", http.StatusConflict)
		return
	}
	first := c.seq.Add(int64(len(req.Bodies))) - int64(len(req.Bodies))
	go func() {
		for i, body := range req.Bodies {
			n := first + int64(i)
			contact := contactID
			if req.Portals != nil {
				contact = contactNumber(req.Portals[i])
			}
			login.QueueRemoteEvent(&simplevent.Message[string]{
				EventMeta: simplevent.EventMeta{
					Type:         bridgev2.RemoteEventMessage,
					PortalKey:    portalKey(login, contact),
					Sender:       bridgev2.EventSender{Sender: contact},
					CreatePortal: true,
					Timestamp:    time.Now(),
					StreamOrder:  n,
				},
				Data:               body,
				ID:                 networkid.MessageID(fmt.Sprintf("remote.%d", n)),
				ConvertMessageFunc: convertText,
			})
		}
	}()
	w.WriteHeader(http.StatusAccepted)
}

// serveReceived lists the Matrix messages received so far.
func (c *connector) serveReceived(w http.ResponseWriter, _ *http.Request) {
	c.recvMu.Lock()
	data, err := json.Marshal(c.received)
	c.recvMu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

func (c *connector) receive(body string) {
	at := time.Now().UnixMicro()
	c.recvMu.Lock()
	if len(c.received) < maxReceived {
		c.received = append(c.received, received{Body: body, AtUs: at})
	}
	c.recvMu.Unlock()
}

// contactNumber is contact n's ID: "contact", "contact1", "contact2"...
func contactNumber(n int) networkid.UserID {
	if n == 0 {
		return contactID
	}
	return networkid.UserID(fmt.Sprintf("%s%d", contactID, n))
}

func portalKey(login *bridgev2.UserLogin, contact networkid.UserID) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID(contact), Receiver: login.ID}
}

func convertText(_ context.Context, _ *bridgev2.Portal, _ bridgev2.MatrixAPI, body string) (*bridgev2.ConvertedMessage, error) {
	return &bridgev2.ConvertedMessage{Parts: []*bridgev2.ConvertedMessagePart{{
		Type:    event.EventMessage,
		Content: &event.MessageEventContent{MsgType: event.MsgText, Body: body},
	}}}, nil
}

// loginProcess completes at once: the synthetic network asks nothing.
type loginProcess struct{ user *bridgev2.User }

func (p *loginProcess) Start(ctx context.Context) (*bridgev2.LoginStep, error) {
	login, err := p.user.NewLogin(ctx, &database.UserLogin{ID: loginID, RemoteName: "Sam Staff"}, nil)
	if err != nil {
		return nil, err
	}
	go login.Client.Connect(login.Log.WithContext(context.Background()))
	return &bridgev2.LoginStep{
		Type:           bridgev2.LoginStepTypeComplete,
		StepID:         "synthetic.complete",
		Instructions:   "Logged in to the synthetic network",
		CompleteParams: &bridgev2.LoginCompleteParams{UserLoginID: login.ID, UserLogin: login},
	}, nil
}

func (p *loginProcess) Cancel() {}

// client is the login's NetworkAPI: nothing to connect to.
type client struct {
	login *bridgev2.UserLogin
	conn  *connector
}

var _ bridgev2.NetworkAPI = (*client)(nil)

func (cl *client) Connect(context.Context) {
	cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnected})
}

func (cl *client) Disconnect() {}

func (cl *client) IsLoggedIn() bool { return true }

func (cl *client) LogoutRemote(context.Context) {}

func (cl *client) IsThisUser(_ context.Context, userID networkid.UserID) bool {
	return userID == staffID
}

func (cl *client) GetChatInfo(_ context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	dm := database.RoomTypeDM
	contact := networkid.UserID(portal.ID)
	return &bridgev2.ChatInfo{
		Type: &dm,
		Members: &bridgev2.ChatMemberList{
			IsFull:      true,
			OtherUserID: contact,
			MemberMap: bridgev2.ChatMemberMap{
				staffID: {EventSender: bridgev2.EventSender{IsFromMe: true, Sender: staffID}, Membership: event.MembershipJoin},
				contact: {EventSender: bridgev2.EventSender{Sender: contact}, Membership: event.MembershipJoin},
			},
		},
	}, nil
}

func (cl *client) GetUserInfo(_ context.Context, ghost *bridgev2.Ghost) (*bridgev2.UserInfo, error) {
	name := string(ghost.ID)
	if ghost.ID == contactID {
		name = contactName
	}
	return &bridgev2.UserInfo{Name: &name}, nil
}

func (cl *client) GetCapabilities(context.Context, *bridgev2.Portal) *event.RoomFeatures {
	return &event.RoomFeatures{MaxTextLength: 65536}
}

func (cl *client) HandleMatrixMessage(_ context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	cl.conn.receive(msg.Content.Body)
	return &bridgev2.MatrixMessageResponse{DB: &database.Message{
		ID:        networkid.MessageID("matrix." + string(msg.Event.ID)),
		SenderID:  staffID,
		Timestamp: time.Now(),
	}}, nil
}
