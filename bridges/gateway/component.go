package gateway

import (
	"context"
	"fmt"

	up "go.mau.fi/util/configupgrade"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/passerelle/passerelle/bridges/remote"
)

// Component is a gateway-wide part that is not a network (governance): it
// has its own section under `network:`, next to the networks' sections, and
// starts and stops with the gateway.
//
//	network:
//	    telegram: {...}
//	    governance: {...}   # the component's section
type Component interface {
	// ConfigKey is the component's key under `network:`; it must not be the
	// ID of a network.
	ConfigKey() string
	// GetConfig returns the example section, the value to decode the
	// section into, and its upgrader, like NetworkConnector.GetConfig.
	GetConfig() (example string, data any, upgrader up.Upgrader)
	// ValidateConfig refuses a section the gateway must not start with.
	ValidateConfig() error
	// Init is called from the gateway's Init, before the networks'; no I/O.
	Init(br *bridgev2.Bridge)
	// Start is called from the gateway's Start, after the networks started
	// (their tables exist) and before any login connects.
	Start(ctx context.Context) error
	// Stop is called after the networks stopped.
	Stop()
}

// LoginObserver is implemented by a component that wants to know of every
// login bridgev2 loads (at start-up and for a new login). LoginLoaded is
// called from LoadUserLogin and must do no I/O.
type LoginObserver interface {
	LoginLoaded(login *bridgev2.UserLogin)
}

// AddComponent adds a component; call it before the config is loaded.
func (gw *Gateway) AddComponent(c Component) error {
	key := c.ConfigKey()
	if _, isNetwork := gw.byID[key]; isNetwork {
		return fmt.Errorf("component config key %q is the ID of a network", key)
	}
	for _, other := range gw.components {
		if other.ConfigKey() == key {
			return fmt.Errorf("component config key %q registered twice", key)
		}
	}
	gw.components = append(gw.components, c)
	example, data, upgrader := c.GetConfig()
	gw.config.addSection(key, example, data, upgrader)
	return nil
}

// SetOutboundCheck makes every network ask check before a Matrix message
// leaves and before a chat is started. Call it before Init.
func (gw *Gateway) SetOutboundCheck(check remote.OutboundCheck) {
	gw.outbound = check
}

// SetMediaCheck makes every network ask check before a file crosses the
// gateway, either way. Call it before Init.
func (gw *Gateway) SetMediaCheck(check remote.MediaCheck) {
	gw.media = check
}

// SetSentRecorder makes every network report what it sent. Call it before
// Init.
func (gw *Gateway) SetSentRecorder(rec remote.SentRecorder) {
	gw.sent = rec
}

// SetPresenceSink makes every network that reports remote presence hand it
// to sink (which sets the ghosts' presence). Call it before Init.
func (gw *Gateway) SetPresenceSink(sink remote.PresenceSink) {
	gw.presence = sink
}

// SetDisappearingPolicy tells every network that bridges disappearing
// messages whether the organisation keeps them. Call it before Init.
func (gw *Gateway) SetDisappearingPolicy(p remote.DisappearingPolicy) {
	gw.disappearing = p
}

// SetBackfillFilter makes every network that backfills ask filter what of a
// chat's history may be bridged. Call it before Init.
func (gw *Gateway) SetBackfillFilter(filter remote.BackfillFilter) {
	gw.backfill = filter
}
