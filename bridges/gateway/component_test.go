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

	"github.com/passerelle/passerelle/bridges/remote"
)

// toyComponent is a gateway-wide component with its own section.
type toyComponent struct {
	cfg struct {
		Mode  string   `yaml:"mode"`
		Names []string `yaml:"names"`
	}
	calls  []string
	logins int
}

func (c *toyComponent) ConfigKey() string { return "governance" }
func (c *toyComponent) GetConfig() (string, any, up.Upgrader) {
	return "mode: open\nnames: []\n", &c.cfg, up.SimpleUpgrader(func(h up.Helper) {
		h.Copy(up.Str, "mode")
		h.Copy(up.List, "names")
	})
}
func (c *toyComponent) ValidateConfig() error {
	if c.cfg.Mode != "open" && c.cfg.Mode != "closed" {
		return errors.New("bad mode " + c.cfg.Mode)
	}
	return nil
}
func (c *toyComponent) Init(*bridgev2.Bridge)           { c.calls = append(c.calls, "init") }
func (c *toyComponent) Start(context.Context) error     { c.calls = append(c.calls, "start"); return nil }
func (c *toyComponent) Stop()                           { c.calls = append(c.calls, "stop") }
func (c *toyComponent) LoginLoaded(*bridgev2.UserLogin) { c.logins++ }

func TestComponentSectionLifecycleAndLogins(t *testing.T) {
	gw, alpha, _ := newToyGateway(t)
	comp := &toyComponent{}
	if err := gw.AddComponent(comp); err != nil {
		t.Fatal(err)
	}
	if err := gw.AddComponent(&toyComponent{}); err == nil {
		t.Error("a second component with the same key was accepted")
	}
	_, data, _ := gw.GetConfig()
	if err := yaml.Unmarshal([]byte("alpha: {greeting: hi}\ngovernance: {mode: closed, names: [a, b]}\n"), data); err != nil {
		t.Fatal(err)
	}
	if comp.cfg.Mode != "closed" || len(comp.cfg.Names) != 2 || alpha.cfg.Greeting != "hi" {
		t.Errorf("decoded %+v / %+v", comp.cfg, alpha.cfg)
	}
	if err := gw.ValidateConfig(); err != nil {
		t.Error(err)
	}
	comp.cfg.Mode = "ajar"
	if err := gw.ValidateConfig(); err == nil || !strings.Contains(err.Error(), "network.governance: bad mode ajar") {
		t.Errorf("ValidateConfig = %v", err)
	}
	gw.Init(nil)
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := gw.LoadUserLogin(context.Background(), &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "alpha.1"}}); err != nil {
		t.Fatal(err)
	}
	gw.Stop()
	if got := strings.Join(comp.calls, ","); got != "init,start,stop" || comp.logins != 1 {
		t.Errorf("lifecycle %s, %d logins seen", got, comp.logins)
	}
	example, _, _ := gw.GetConfig()
	if !strings.Contains(example, "\ngovernance:\n    mode: open\n") {
		t.Errorf("example lacks the component section:\n%s", example)
	}
}

func TestComponentKeyCannotBeANetwork(t *testing.T) {
	gw, _, _ := newToyGateway(t)
	if err := gw.AddComponent(&namedComponent{key: "alpha"}); err == nil {
		t.Error("a component named like a network was accepted")
	}
}

type namedComponent struct {
	toyComponent
	key string
}

func (c *namedComponent) ConfigKey() string { return c.key }

// checkingToy accepts the gateway's outbound check.
type checkingToy struct {
	toyNetwork
	check remote.OutboundCheck
}

func (c *checkingToy) SetOutboundCheck(check remote.OutboundCheck) { c.check = check }

func TestInitHandsTheOutboundCheckToNetworks(t *testing.T) {
	toy := &checkingToy{toyNetwork: toyNetwork{id: "alpha"}}
	gw, err := New(&Network{ID: "alpha", Connector: toy, EnabledByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	gw.SetOutboundCheck(func(context.Context, remote.Outbound) error { return &remote.Refusal{Reason: "no"} })
	gw.Init(nil)
	if toy.check == nil {
		t.Fatal("the network did not get the outbound check")
	}
	err = remote.MessageStatus(toy.check(context.Background(), remote.Outbound{}))
	var ms bridgev2.MessageStatus
	if !errors.As(err, &ms) || ms.Message != "no" || !ms.IsCertain || !ms.SendNotice {
		t.Errorf("refusal as message status: %#v", err)
	}
	var resp bridgev2.RespError
	if !errors.As(remote.RespError(&remote.Refusal{Reason: "no"}), &resp) || resp.StatusCode != 403 {
		t.Errorf("refusal as RespError: %#v", resp)
	}
}

// mediaToy accepts the gateway's media check.
type mediaToy struct {
	toyNetwork
	check remote.MediaCheck
}

func (c *mediaToy) SetMediaCheck(check remote.MediaCheck) { c.check = check }

func TestInitHandsTheMediaCheckToNetworks(t *testing.T) {
	toy := &mediaToy{toyNetwork: toyNetwork{id: "alpha"}}
	gw, err := New(&Network{ID: "alpha", Connector: toy, EnabledByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	gw.SetMediaCheck(func(context.Context, remote.Media) error { return &remote.Refusal{Reason: "too big"} })
	gw.Init(nil)
	if toy.check == nil {
		t.Fatal("the network did not get the media check")
	}
	var refusal *remote.Refusal
	if err = toy.check(context.Background(), remote.Media{Size: 1 << 30}); !errors.As(err, &refusal) {
		t.Errorf("media check: %v", err)
	}
}

// presenceToy reports presence through the hooks every connector embeds.
type presenceToy struct {
	toyNetwork
	remote.Hooks
}

func TestInitHandsThePresenceSinkToNetworks(t *testing.T) {
	toy := &presenceToy{toyNetwork: toyNetwork{id: "alpha"}}
	gw, err := New(&Network{ID: "alpha", Connector: toy, EnabledByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []remote.Presence
	gw.SetPresenceSink(func(_ context.Context, _ *bridgev2.UserLogin, p remote.Presence) { got = append(got, p) })
	gw.Init(nil)
	toy.Presence(context.Background(), nil, remote.Presence{User: "alpha.42", Online: true})
	if len(got) != 1 || got[0].User != "alpha.42" || !got[0].Online {
		t.Errorf("presence reaching the sink: %+v", got)
	}
}
