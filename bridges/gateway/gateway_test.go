package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"

	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/bridges/remote"
)

// toyConfig is the config section of a toy network.
type toyConfig struct {
	Greeting string `yaml:"greeting"`
	Limit    int    `yaml:"limit"`
}

// toyNetwork is a minimal connector used to test routing only: it records
// which calls reached it.
type toyNetwork struct {
	id      string
	cfg     toyConfig
	loaded  []networkid.UserLoginID
	created []string
	started bool
}

func (t *toyNetwork) Init(*bridgev2.Bridge)              {}
func (t *toyNetwork) Start(context.Context) error        { t.started = true; return nil }
func (t *toyNetwork) GetDBMetaTypes() database.MetaTypes { return database.MetaTypes{} }
func (t *toyNetwork) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{DisplayName: strings.ToUpper(t.id), NetworkID: t.id, BeeperBridgeType: "toy/" + t.id}
}
func (t *toyNetwork) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{
		AggressiveUpdateInfo: t.id == "alpha",
		Provisioning: bridgev2.ProvisioningCapabilities{
			ResolveIdentifier: bridgev2.ResolveIdentifierCapabilities{LookupPhone: t.id == "beta", CreateDM: true},
		},
	}
}
func (t *toyNetwork) GetBridgeInfoVersion() (int, int) { return 2, 3 }
func (t *toyNetwork) GetConfig() (string, any, up.Upgrader) {
	return "greeting: hello\nlimit: 5\n", &t.cfg, up.SimpleUpgrader(func(h up.Helper) {
		h.Copy(up.Str, "greeting")
		h.Copy(up.Int, "limit")
	})
}
func (t *toyNetwork) LoadUserLogin(_ context.Context, login *bridgev2.UserLogin) error {
	t.loaded = append(t.loaded, login.ID)
	return nil
}
func (t *toyNetwork) GetLoginFlows() []bridgev2.LoginFlow {
	return []bridgev2.LoginFlow{{ID: t.id + "-code", Name: t.id + " code"}, {ID: t.id + "-qr", Name: t.id + " QR"}}
}
func (t *toyNetwork) CreateLogin(_ context.Context, _ *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	t.created = append(t.created, flowID)
	return nil, nil
}
func (t *toyNetwork) ValidateUserID(id networkid.UserID) bool {
	rest, err := netid.Strip(t.id, string(id))
	return err == nil && strings.Trim(rest, "0123456789") == ""
}

func newToyGateway(t *testing.T) (*Gateway, *toyNetwork, *toyNetwork) {
	t.Helper()
	alpha, beta := &toyNetwork{id: "alpha"}, &toyNetwork{id: "beta"}
	gw, err := New(
		&Network{ID: "beta", Connector: beta, EnabledByDefault: true},
		&Network{ID: "alpha", Connector: alpha, EnabledByDefault: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	return gw, alpha, beta
}

func TestNewRejectsBadNetworks(t *testing.T) {
	toy := &toyNetwork{id: "alpha"}
	for name, networks := range map[string][]*Network{
		"duplicate":    {{ID: "alpha", Connector: toy}, {ID: "alpha", Connector: toy}},
		"bad prefix":   {{ID: "Alpha.1", Connector: toy}},
		"no connector": {{ID: "alpha"}},
		"same flows":   {{ID: "alpha", Connector: toy}, {ID: "beta", Connector: toy}},
	} {
		if _, err := New(networks...); err == nil {
			t.Errorf("%s: New accepted %v", name, networks)
		}
	}
}

func TestLoginsAndFlowsAreRoutedByNetwork(t *testing.T) {
	gw, alpha, beta := newToyGateway(t)
	ctx := context.Background()
	for _, id := range []networkid.UserLoginID{"alpha.1", "beta.7", "alpha.2"} {
		if err := gw.LoadUserLogin(ctx, &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: id}}); err != nil {
			t.Fatalf("LoadUserLogin(%s): %v", id, err)
		}
	}
	if got := strings.Join(toStrings(alpha.loaded), ","); got != "alpha.1,alpha.2" {
		t.Errorf("alpha loaded %s", got)
	}
	if got := strings.Join(toStrings(beta.loaded), ","); got != "beta.7" {
		t.Errorf("beta loaded %s", got)
	}

	var flowIDs []string
	for _, f := range gw.GetLoginFlows() {
		flowIDs = append(flowIDs, f.ID)
	}
	if got := strings.Join(flowIDs, ","); got != "alpha-code,alpha-qr,beta-code,beta-qr" {
		t.Errorf("login flows = %s", got)
	}
	if _, err := gw.CreateLogin(ctx, nil, "beta-qr"); err != nil {
		t.Fatal(err)
	}
	if len(beta.created) != 1 || beta.created[0] != "beta-qr" || len(alpha.created) != 0 {
		t.Errorf("CreateLogin reached alpha=%v beta=%v", alpha.created, beta.created)
	}
	if _, err := gw.CreateLogin(ctx, nil, "gamma-qr"); !errors.Is(err, bridgev2.ErrInvalidLoginFlowID) {
		t.Errorf("unknown flow: err = %v", err)
	}
}

func TestMalformedAndUnknownIDsAreRefused(t *testing.T) {
	gw, alpha, beta := newToyGateway(t)
	ctx := context.Background()
	for id, want := range map[networkid.UserLoginID]error{
		"gamma.1": ErrUnknownNetwork,
		"alpha":   netid.ErrMalformed,
		"":        netid.ErrMalformed,
		"ALPHA.1": netid.ErrMalformed,
	} {
		err := gw.LoadUserLogin(ctx, &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: id}})
		if !errors.Is(err, want) {
			t.Errorf("LoadUserLogin(%q) err = %v, want %v", id, err, want)
		}
	}
	if len(alpha.loaded)+len(beta.loaded) != 0 {
		t.Error("a refused ID reached a connector")
	}
	for id, want := range map[networkid.UserID]bool{
		"alpha.123": true, "beta.9": true, "alpha.x1": false, "gamma.1": false, "123": false, "@alice:example.org": false,
	} {
		if got := gw.ValidateUserID(id); got != want {
			t.Errorf("ValidateUserID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestDisabledNetworkIsSwitchedOff(t *testing.T) {
	gw, alpha, beta := newToyGateway(t)
	var cfgNode yaml.Node
	if err := yaml.Unmarshal([]byte("beta:\n  enabled: false\n"), &cfgNode); err != nil {
		t.Fatal(err)
	}
	if err := cfgNode.Content[0].Decode(gw.config); err != nil {
		t.Fatal(err)
	}
	if gw.Enabled("beta") || !gw.Enabled("alpha") {
		t.Fatalf("enabled: alpha=%v beta=%v", gw.Enabled("alpha"), gw.Enabled("beta"))
	}
	for _, f := range gw.GetLoginFlows() {
		if strings.HasPrefix(f.ID, "beta") {
			t.Errorf("disabled network's flow %s is listed", f.ID)
		}
	}
	err := gw.LoadUserLogin(context.Background(), &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "beta.1"}})
	if !errors.Is(err, ErrNetworkDisabled) {
		t.Errorf("LoadUserLogin on a disabled network: err = %v", err)
	}
	if _, err = gw.CreateLogin(context.Background(), nil, "beta-code"); err == nil {
		t.Error("CreateLogin on a disabled network succeeded")
	}
	if err = gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !alpha.started || beta.started {
		t.Errorf("started: alpha=%v beta=%v", alpha.started, beta.started)
	}
}

func TestCapabilitiesAndBridgeInfo(t *testing.T) {
	gw, _, _ := newToyGateway(t)
	caps := gw.GetCapabilities()
	ri := caps.Provisioning.ResolveIdentifier
	if !caps.AggressiveUpdateInfo || !ri.LookupPhone || !ri.CreateDM || ri.LookupEmail {
		t.Errorf("merged capabilities = %+v", caps)
	}
	info, roomCaps := gw.GetBridgeInfoVersion()
	if info != BridgeInfoVersion+4 || roomCaps != 1+6 {
		t.Errorf("bridge info version = %d, %d", info, roomCaps)
	}
	portal := &bridgev2.Portal{Portal: &database.Portal{PortalKey: networkid.PortalKey{ID: "beta.chat1"}}}
	content := &event.BridgeEventContent{}
	gw.FillPortalBridgeInfo(portal, content)
	if content.Protocol.ID != "toy/beta" || content.Protocol.DisplayName != "BETA" {
		t.Errorf("protocol = %+v", content.Protocol)
	}
}

func TestNetworkConfigSections(t *testing.T) {
	gw, alpha, beta := newToyGateway(t)
	example, data, _ := gw.GetConfig()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(example), &node); err != nil {
		t.Fatalf("example is not YAML: %v\n%s", err, example)
	}
	if err := node.Content[0].Decode(data); err != nil {
		t.Fatal(err)
	}
	if alpha.cfg.Greeting != "hello" || beta.cfg.Limit != 5 {
		t.Errorf("example decoded into alpha=%+v beta=%+v", alpha.cfg, beta.cfg)
	}

	own := "alpha:\n  enabled: true\n  greeting: bonjour\nbeta:\n  limit: 9\n"
	if err := yaml.Unmarshal([]byte(own), &node); err != nil {
		t.Fatal(err)
	}
	if err := node.Content[0].Decode(data); err != nil {
		t.Fatal(err)
	}
	if alpha.cfg.Greeting != "bonjour" || beta.cfg.Limit != 9 {
		t.Errorf("config decoded into alpha=%+v beta=%+v", alpha.cfg, beta.cfg)
	}

	for _, bad := range []string{"gamma:\n  enabled: true\n", "- alpha\n", "alpha:\n  limit: many\n"} {
		if err := yaml.Unmarshal([]byte(bad), &node); err != nil {
			t.Fatal(err)
		}
		if err := node.Content[0].Decode(data); err == nil {
			t.Errorf("config %q was accepted", bad)
		}
	}
}

func TestNetworkConfigUpgradeKeepsValues(t *testing.T) {
	gw, _, _ := newToyGateway(t)
	example, _, upgrader := gw.GetConfig()
	var base strings.Builder
	base.WriteString("network:\n")
	for line := range strings.SplitSeq(example, "\n") {
		base.WriteString("    " + line + "\n")
	}
	merged := up.MergeUpgraders(base.String(), &up.ProxyUpgrader{Prefix: []string{"network"}, Target: upgrader})
	old := "network:\n    beta:\n        enabled: false\n        greeting: salut\n"
	out, err := up.DoBytes([]byte(old), merged)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Network map[string]struct {
			Enabled  bool   `yaml:"enabled"`
			Greeting string `yaml:"greeting"`
			Limit    int    `yaml:"limit"`
		} `yaml:"network"`
	}
	if err = yaml.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if b := got.Network["beta"]; b.Enabled || b.Greeting != "salut" || b.Limit != 5 {
		t.Errorf("upgraded beta = %+v\n%s", b, out)
	}
	if a := got.Network["alpha"]; !a.Enabled || a.Greeting != "hello" {
		t.Errorf("upgraded alpha = %+v", a)
	}
}

func toStrings(ids []networkid.UserLoginID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// queueingToy is a toy network that accepts the gateway's remote queue.
type queueingToy struct {
	toyNetwork
	queue remote.Queue
}

func (q *queueingToy) SetRemoteQueue(queue remote.Queue) { q.queue = queue }

func TestInitHandsTheGatewayQueueToNetworks(t *testing.T) {
	withQueue := &queueingToy{toyNetwork: toyNetwork{id: "alpha"}}
	gw, err := New(&Network{ID: "alpha", Connector: withQueue, EnabledByDefault: true},
		&Network{ID: "beta", Connector: &toyNetwork{id: "beta"}, EnabledByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	var seen []networkid.PortalKey
	gw.SetRemoteQueue(func(_ *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
		seen = append(seen, evt.GetPortalKey())
		return bridgev2.EventHandlingResultSuccess
	})
	gw.Init(nil)
	if withQueue.queue == nil {
		t.Fatal("the network did not get the gateway's queue")
	}
	withQueue.queue(nil, &simplevent.Message[string]{EventMeta: simplevent.EventMeta{PortalKey: networkid.PortalKey{ID: "alpha.c1"}}})
	if len(seen) != 1 || seen[0].ID != "alpha.c1" {
		t.Errorf("the gateway queue saw %v", seen)
	}
}
