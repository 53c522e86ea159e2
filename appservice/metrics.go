package appservice

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	up "go.mau.fi/util/configupgrade"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/gate"
	"github.com/passerelle/passerelle/internal/metrics"
)

var _ gateway.Component = (*metricsComponent)(nil)

// metricsExample is the `network.metrics` section of the example config.
//
//go:embed metrics-example.yaml
var metricsExample string

// MetricsConfig is the `network.metrics` section. It sits under `network:`
// like the storage section: bridgev2's config upgrader keeps only the
// top-level keys it knows.
type MetricsConfig struct {
	Enabled               bool          `yaml:"enabled"`
	Listen                string        `yaml:"listen"`
	AllowRemote           bool          `yaml:"allow_remote"`
	Pprof                 bool          `yaml:"pprof"`
	DisconnectNoticeAfter gate.Duration `yaml:"disconnect_notice_after"`
}

// metricsComponent owns the metrics section, the registry (counting from
// the start, whether or not the listener is on), the listener and the login
// notices.
type metricsComponent struct {
	cfg MetricsConfig
	m   *metrics.Metrics
	gw  *gateway.Gateway
	gov *admin.Governance

	br     *bridgev2.Bridge
	mc     *matrix.Connector // set by useMatrix before listen
	log    zerolog.Logger
	server *metrics.Server
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func newMetrics(gw *gateway.Gateway, gov *admin.Governance) *metricsComponent {
	var ids []string
	for _, n := range gw.Networks() {
		ids = append(ids, n.ID)
	}
	return &metricsComponent{
		cfg: MetricsConfig{Listen: "127.0.0.1:9090", DisconnectNoticeAfter: gate.Duration(metrics.DefaultDisconnectNoticeAfter)},
		m:   metrics.New(nil, ids...),
		gw:  gw, gov: gov,
	}
}

func (c *metricsComponent) ConfigKey() string { return "metrics" }

func (c *metricsComponent) GetConfig() (example string, data any, upgrader up.Upgrader) {
	return metricsExample, &c.cfg, up.SimpleUpgrader(func(helper up.Helper) {
		helper.Copy(up.Bool, "enabled")
		helper.Copy(up.Str, "listen")
		helper.Copy(up.Bool, "allow_remote")
		helper.Copy(up.Bool, "pprof")
		helper.Copy(up.Str, "disconnect_notice_after")
	})
}

func (c *metricsComponent) ValidateConfig() error {
	if c.cfg.DisconnectNoticeAfter < 0 {
		return fmt.Errorf("metrics.disconnect_notice_after must not be negative")
	}
	if !c.cfg.Enabled {
		return nil
	}
	return metrics.CheckListen(c.cfg.Listen, c.cfg.AllowRemote)
}

// Init registers the collectors that need the bridge. No I/O.
func (c *metricsComponent) Init(br *bridgev2.Bridge) {
	c.br = br
	c.log = br.Log.With().Str("component", "metrics").Logger()
	var enabled []string
	for _, n := range c.gw.Networks() {
		if c.gw.Enabled(n.ID) {
			enabled = append(enabled, n.ID)
		}
	}
	logins := metrics.BridgeLogins(br)
	_ = c.m.Register(c.m.LoginCollector(logins, enabled...))
	if c.gov != nil {
		_ = c.m.Register(c.m.GovernanceCollector(metrics.GateStats(c.gov.Gate)))
	}
	if br.DB != nil && br.DB.Database != nil && br.DB.RawDB != nil {
		_ = c.m.Register(collectors.NewDBStatsCollector(br.DB.RawDB, "passerelle"))
	}
	c.server = &metrics.Server{Metrics: c.m, Profiling: c.cfg.Pprof, Checks: metrics.Checks{
		Homeserver: c.homeserverCheck,
		Database: func(ctx context.Context) error {
			if br.DB == nil || br.DB.Database == nil || br.DB.RawDB == nil {
				return fmt.Errorf("no database")
			}
			return br.DB.RawDB.PingContext(ctx)
		},
		Logins:   logins,
		Networks: enabled,
	}}
}

// homeserverCheck asks the homeserver for /_matrix/client/versions through
// the bridge bot's client, once.
func (c *metricsComponent) homeserverCheck(ctx context.Context) error {
	if c.mc == nil || c.mc.AS == nil {
		return fmt.Errorf("no Matrix connection")
	}
	cli := c.mc.AS.BotClient()
	var resp mautrix.RespVersions
	_, err := cli.MakeFullRequest(ctx, mautrix.FullRequest{
		Method: http.MethodGet, URL: cli.BuildClientURL("versions"), ResponseJSON: &resp, MaxAttempts: 1,
	})
	if err != nil {
		return fmt.Errorf("homeserver does not answer: %w", err)
	}
	return nil
}

// Start starts the login notices (the admin room is the governance gate's).
func (c *metricsComponent) Start(ctx context.Context) error {
	if c.gov == nil {
		return nil
	}
	ctx, c.stop = context.WithCancel(c.log.WithContext(context.Background()))
	n := &metrics.LoginNotifier{
		Logins:          metrics.BridgeLogins(c.br),
		Notify:          c.notifyAdmins,
		DisconnectAfter: time.Duration(c.cfg.DisconnectNoticeAfter),
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				c.log.Error().Any("panic", p).Msg("Panic in the login notices; they stop")
			}
		}()
		n.Run(ctx, metrics.DefaultLoginCheckEvery)
	}()
	return nil
}

func (c *metricsComponent) notifyAdmins(ctx context.Context, text string) error {
	room, err := c.gov.AdminRoom(ctx)
	if err != nil {
		return err
	}
	return c.gov.Notice(ctx, room, "%s", text)
}

func (c *metricsComponent) Stop() {
	if c.stop != nil {
		c.stop()
	}
	c.wg.Wait()
}

// useInbox reports the Matrix inbox's depth.
func (c *metricsComponent) useInbox(in *matrixInbox) {
	_ = c.m.Register(in.collector())
}

// useMatrix gives the homeserver check bridgev2's Matrix connector (the
// bridge's own Matrix field may be wrapped).
func (c *metricsComponent) useMatrix(mc *matrix.Connector) { c.mc = mc }

// useCapabilities gives /homeserver its report (before listen).
func (c *metricsComponent) useCapabilities(report func() (any, bool)) {
	if c.server != nil {
		c.server.Capabilities = report
	}
}

// listen starts the endpoints when the section enables them.
func (c *metricsComponent) listen() error {
	if !c.cfg.Enabled || c.server == nil {
		return nil
	}
	if err := c.server.Listen(c.cfg.Listen); err != nil {
		return err
	}
	c.log.Info().Str("address", c.server.Addr()).Msg("Serving /metrics, /health, /ready and /homeserver")
	return nil
}

// setRunning says whether the gateway runs its main loop (/health).
func (c *metricsComponent) setRunning(running bool) {
	if c.server != nil {
		c.server.SetRunning(running)
	}
}

func (c *metricsComponent) close() {
	if c.server != nil {
		_ = c.server.Close()
	}
}
