package appservice

import (
	"errors"
	"testing"
	"time"

	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"

	"github.com/passerelle/passerelle/internal/metrics"
)

// The metrics section's example, struct and upgrader agree (off by
// default, on loopback), and a listener other machines can reach is refused
// unless allow_remote says so.
func TestMetricsConfig(t *testing.T) {
	_, _, _, mx, err := newGateway()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		old     string
		want    MetricsConfig
		refused bool
	}{
		{old: "{}\n", want: MetricsConfig{Listen: "127.0.0.1:9090", DisconnectNoticeAfter: 10 * 60e9}},
		{old: "enabled: true\nlisten: 127.0.0.1:9191\ndisconnect_notice_after: 2m\n",
			want: MetricsConfig{Enabled: true, Listen: "127.0.0.1:9191", DisconnectNoticeAfter: 2 * 60e9}},
		{old: "enabled: true\nlisten: 0.0.0.0:9090\n", want: MetricsConfig{Enabled: true, Listen: "0.0.0.0:9090", DisconnectNoticeAfter: 10 * 60e9}, refused: true},
		{old: "enabled: true\nlisten: 0.0.0.0:9090\nallow_remote: true\n", want: MetricsConfig{Enabled: true, Listen: "0.0.0.0:9090", AllowRemote: true, DisconnectNoticeAfter: 10 * 60e9}},
		// Off: the address is not checked (nothing listens).
		{old: "listen: 0.0.0.0:9090\n", want: MetricsConfig{Listen: "0.0.0.0:9090", DisconnectNoticeAfter: 10 * 60e9}},
	} {
		var base, old yaml.Node
		example, data, upgrader := mx.GetConfig()
		if err = yaml.Unmarshal([]byte(example), &base); err != nil {
			t.Fatalf("example does not parse: %v", err)
		}
		if err = yaml.Unmarshal([]byte(tc.old), &old); err != nil {
			t.Fatal(err)
		}
		upgrader.DoUpgrade(up.NewHelper(&base, &old))
		out, err := yaml.Marshal(&base)
		if err != nil {
			t.Fatal(err)
		}
		mx.cfg = MetricsConfig{}
		if err = yaml.Unmarshal(out, data); err != nil {
			t.Fatal(err)
		}
		if mx.cfg != tc.want {
			t.Errorf("upgraded %q: %+v, want %+v", tc.old, mx.cfg, tc.want)
		}
		err = mx.ValidateConfig()
		if refused := errors.Is(err, metrics.ErrRemoteListen); refused != tc.refused {
			t.Errorf("%q: ValidateConfig = %v, want refused=%v", tc.old, err, tc.refused)
		}
	}
	if time.Duration(mx.cfg.DisconnectNoticeAfter) != metrics.DefaultDisconnectNoticeAfter {
		t.Errorf("default disconnect_notice_after %v", time.Duration(mx.cfg.DisconnectNoticeAfter))
	}
}
