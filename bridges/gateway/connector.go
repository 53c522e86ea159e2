// Package gateway puts several network connectors behind the one
// NetworkConnector that a bridgev2 bridge takes.
//
// bridgev2 calls the NetworkConnector in only a few places where it must pick
// a network: loading a login, starting a login flow, validating a ghost ID and
// filling a portal's bridge info. Every ID that a network connector makes
// starts with that network's prefix (see package netid), so the gateway routes
// each of those calls by the prefix. Everything else (Matrix events, remote
// events) goes straight to the network's own NetworkAPI, which bridgev2 keeps
// in UserLogin.Client.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/meta"
	"github.com/passerelle/passerelle/bridges/netid"
	"github.com/passerelle/passerelle/bridges/remote"
)

var (
	_ bridgev2.NetworkConnector               = (*Gateway)(nil)
	_ bridgev2.StoppableNetwork               = (*Gateway)(nil)
	_ bridgev2.IdentifierValidatingNetwork    = (*Gateway)(nil)
	_ bridgev2.PortalBridgeInfoFillingNetwork = (*Gateway)(nil)
	_ bridgev2.ConfigValidatingNetwork        = (*Gateway)(nil)
	_ bridgev2.MaxFileSizeingNetwork          = (*Gateway)(nil)
	_ bridgev2.NetworkResettingNetwork        = (*Gateway)(nil)
)

// ErrUnknownNetwork is returned (wrapped) when an ID or flow names no
// registered network.
var ErrUnknownNetwork = errors.New("unknown network")

// ErrNetworkDisabled is returned (wrapped) when an ID or flow belongs to a
// network that the config switched off.
var ErrNetworkDisabled = errors.New("network is disabled in the config")

// Network is one network connector behind the gateway.
type Network struct {
	// ID is the prefix of every ID the connector makes (e.g. "telegram").
	ID string
	// Connector is a complete bridgev2 connector for that network.
	Connector bridgev2.NetworkConnector
	// EnabledByDefault is the value of `enabled` in the example config.
	EnabledByDefault bool
}

// Gateway is the bridgev2.NetworkConnector of Passerelle.
type Gateway struct {
	Bridge *bridgev2.Bridge

	networks []*Network
	byID     map[string]*Network
	config   *Config
	queue    remote.Queue
	outbound remote.OutboundCheck
	sent     remote.SentRecorder
	media    remote.MediaCheck
	presence remote.PresenceSink
	backfill remote.BackfillFilter

	disappearing remote.DisappearingPolicy

	components []Component

	// matrixConn is bridgev2's Matrix connector as Init saw it (before
	// anything wraps it), for the provisioning API's OpenID route.
	matrixConn *matrix.Connector
}

// BridgeInfoVersion is the gateway's own share of the bridge info version;
// bump it when what the gateway writes into m.bridge changes.
const BridgeInfoVersion = 1

// New returns a gateway over the given networks. Network IDs must be valid
// netid prefixes and unique.
func New(networks ...*Network) (*Gateway, error) {
	gw := &Gateway{byID: make(map[string]*Network, len(networks))}
	for _, n := range networks {
		if !netid.ValidNetwork(n.ID) {
			return nil, fmt.Errorf("invalid network ID %q", n.ID)
		}
		if _, dup := gw.byID[n.ID]; dup {
			return nil, fmt.Errorf("network %q registered twice", n.ID)
		}
		if n.Connector == nil {
			return nil, fmt.Errorf("network %q has no connector", n.ID)
		}
		gw.byID[n.ID] = n
		gw.networks = append(gw.networks, n)
	}
	sort.Slice(gw.networks, func(i, j int) bool { return gw.networks[i].ID < gw.networks[j].ID })
	if err := checkFlowIDs(gw.networks); err != nil {
		return nil, err
	}
	gw.config = newConfig(gw.networks)
	return gw, nil
}

// Networks returns the registered networks, sorted by ID.
func (gw *Gateway) Networks() []*Network {
	return slices.Clone(gw.networks)
}

// Enabled reports whether the config switched the network on.
func (gw *Gateway) Enabled(networkID string) bool {
	return gw.config.enabled(networkID)
}

func (gw *Gateway) enabledNetworks() []*Network {
	out := make([]*Network, 0, len(gw.networks))
	for _, n := range gw.networks {
		if gw.Enabled(n.ID) {
			out = append(out, n)
		}
	}
	return out
}

// Route returns the enabled network that made id.
func (gw *Gateway) Route(id string) (*Network, error) {
	networkID, _, err := netid.Split(id)
	if err != nil {
		return nil, err
	}
	n, ok := gw.byID[networkID]
	if !ok {
		return nil, fmt.Errorf("%w %q in ID %q", ErrUnknownNetwork, networkID, id)
	}
	if !gw.Enabled(networkID) {
		return nil, fmt.Errorf("%w: %s", ErrNetworkDisabled, networkID)
	}
	return n, nil
}

// SetRemoteQueue makes every network hand its remote events to q (the
// governance gate) instead of straight to bridgev2. Call it before Init.
func (gw *Gateway) SetRemoteQueue(q remote.Queue) {
	gw.queue = q
}

func (gw *Gateway) Init(br *bridgev2.Bridge) {
	gw.Bridge = br
	if br != nil {
		gw.matrixConn, _ = br.Matrix.(*matrix.Connector)
	}
	for _, c := range gw.components {
		c.Init(br)
	}
	for _, n := range gw.enabledNetworks() {
		if setter, ok := n.Connector.(remote.QueueSetter); ok && gw.queue != nil {
			setter.SetRemoteQueue(gw.queue)
		}
		if setter, ok := n.Connector.(remote.OutboundCheckSetter); ok && gw.outbound != nil {
			setter.SetOutboundCheck(gw.outbound)
		}
		if setter, ok := n.Connector.(remote.SentRecorderSetter); ok && gw.sent != nil {
			setter.SetSentRecorder(gw.sent)
		}
		if setter, ok := n.Connector.(remote.PresenceSinkSetter); ok && gw.presence != nil {
			setter.SetPresenceSink(gw.presence)
		}
		if setter, ok := n.Connector.(remote.DisappearingPolicySetter); ok && gw.disappearing != nil {
			setter.SetDisappearingPolicy(gw.disappearing)
		}
		if setter, ok := n.Connector.(remote.BackfillFilterSetter); ok && gw.backfill != nil {
			setter.SetBackfillFilter(gw.backfill)
		}
		if setter, ok := n.Connector.(remote.MediaCheckSetter); ok && gw.media != nil {
			setter.SetMediaCheck(gw.media)
		}
		n.Connector.Init(br)
	}
}

func (gw *Gateway) Start(ctx context.Context) error {
	for _, n := range gw.enabledNetworks() {
		if err := n.Connector.Start(ctx); err != nil {
			return fmt.Errorf("failed to start %s connector: %w", n.ID, err)
		}
	}
	for _, c := range gw.components {
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("failed to start %s: %w", c.ConfigKey(), err)
		}
	}
	gw.routeProvisioningOpenID()
	return nil
}

func (gw *Gateway) Stop() {
	for _, n := range gw.enabledNetworks() {
		if stoppable, ok := n.Connector.(bridgev2.StoppableNetwork); ok {
			stoppable.Stop()
		}
	}
	for _, c := range gw.components {
		c.Stop()
	}
}

func (gw *Gateway) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:      "Passerelle",
		NetworkURL:       "https://github.com/passerelle/passerelle",
		NetworkID:        "passerelle",
		BeeperBridgeType: "github.com/passerelle/passerelle",
		DefaultPort:      29340,
	}
}

// GetDBMetaTypes hands bridgev2 a lazy wrapper for every table: each network
// connector decodes its own rows through meta.Get.
func (gw *Gateway) GetDBMetaTypes() database.MetaTypes {
	return database.MetaTypes{
		Portal:    meta.New,
		Ghost:     meta.New,
		Message:   meta.New,
		Reaction:  meta.New,
		UserLogin: meta.New,
	}
}

// GetCapabilities merges the general capabilities of the enabled networks:
// a loop or behaviour that any network needs is switched on.
func (gw *Gateway) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	out := &bridgev2.NetworkGeneralCapabilities{}
	for _, n := range gw.enabledNetworks() {
		c := n.Connector.GetCapabilities()
		if c == nil {
			continue
		}
		out.DisappearingMessages = out.DisappearingMessages || c.DisappearingMessages
		out.AggressiveUpdateInfo = out.AggressiveUpdateInfo || c.AggressiveUpdateInfo
		out.ImplicitReadReceipts = out.ImplicitReadReceipts || c.ImplicitReadReceipts
		out.NetworkIsImmediateParent = out.NetworkIsImmediateParent || c.NetworkIsImmediateParent
		if out.OutgoingMessageTimeouts == nil {
			out.OutgoingMessageTimeouts = c.OutgoingMessageTimeouts
		}
		ri, cri := &out.Provisioning.ResolveIdentifier, c.Provisioning.ResolveIdentifier
		ri.CreateDM = ri.CreateDM || cri.CreateDM
		ri.LookupPhone = ri.LookupPhone || cri.LookupPhone
		ri.LookupEmail = ri.LookupEmail || cri.LookupEmail
		ri.LookupUsername = ri.LookupUsername || cri.LookupUsername
		ri.AnyPhone = ri.AnyPhone || cri.AnyPhone
		ri.ContactList = ri.ContactList || cri.ContactList
		ri.Search = ri.Search || cri.Search
		out.Provisioning.ImagePackImport = out.Provisioning.ImagePackImport || c.Provisioning.ImagePackImport
		for kind, groupCaps := range c.Provisioning.GroupCreation {
			if out.Provisioning.GroupCreation == nil {
				out.Provisioning.GroupCreation = make(map[string]bridgev2.GroupTypeCapabilities)
			}
			out.Provisioning.GroupCreation[n.ID+"-"+kind] = groupCaps
		}
	}
	return out
}

// GetBridgeInfoVersion adds up the versions of every network, so that a bump
// in any of them makes bridgev2 resend bridge info.
func (gw *Gateway) GetBridgeInfoVersion() (info, capabilities int) {
	info, capabilities = BridgeInfoVersion, 1
	for _, n := range gw.enabledNetworks() {
		i, c := n.Connector.GetBridgeInfoVersion()
		info += i
		capabilities += c
	}
	return info, capabilities
}

func (gw *Gateway) LoadUserLogin(ctx context.Context, login *bridgev2.UserLogin) error {
	n, err := gw.Route(string(login.ID))
	if err != nil {
		return fmt.Errorf("failed to route login: %w", err)
	}
	if err = n.Connector.LoadUserLogin(ctx, login); err != nil {
		return err
	}
	for _, c := range gw.components {
		if observer, ok := c.(LoginObserver); ok {
			observer.LoginLoaded(login)
		}
	}
	return nil
}

func (gw *Gateway) ValidateUserID(id networkid.UserID) bool {
	n, err := gw.Route(string(id))
	if err != nil {
		return false
	}
	if validating, ok := n.Connector.(bridgev2.IdentifierValidatingNetwork); ok {
		return validating.ValidateUserID(id)
	}
	return true
}

// FillPortalBridgeInfo names the portal's own network as the protocol of its
// m.bridge event, then lets that network add to it.
func (gw *Gateway) FillPortalBridgeInfo(portal *bridgev2.Portal, content *event.BridgeEventContent) {
	n, err := gw.Route(string(portal.ID))
	if err != nil {
		return
	}
	content.Protocol = n.Connector.GetName().AsBridgeInfoSection()
	if filling, ok := n.Connector.(bridgev2.PortalBridgeInfoFillingNetwork); ok {
		filling.FillPortalBridgeInfo(portal, content)
	}
}

func (gw *Gateway) ValidateConfig() error {
	for _, n := range gw.enabledNetworks() {
		if validating, ok := n.Connector.(bridgev2.ConfigValidatingNetwork); ok {
			if err := validating.ValidateConfig(); err != nil {
				return fmt.Errorf("network.%s: %w", n.ID, err)
			}
		}
	}
	for _, c := range gw.components {
		if err := c.ValidateConfig(); err != nil {
			return fmt.Errorf("network.%s: %w", c.ConfigKey(), err)
		}
	}
	return nil
}

func (gw *Gateway) SetMaxFileSize(maxSize int64) {
	for _, n := range gw.enabledNetworks() {
		if sizing, ok := n.Connector.(bridgev2.MaxFileSizeingNetwork); ok {
			sizing.SetMaxFileSize(maxSize)
		}
	}
}

func (gw *Gateway) ResetHTTPTransport() {
	for _, n := range gw.enabledNetworks() {
		if resetting, ok := n.Connector.(bridgev2.NetworkResettingNetwork); ok {
			resetting.ResetHTTPTransport()
		}
	}
}

func (gw *Gateway) ResetNetworkConnections() {
	for _, n := range gw.enabledNetworks() {
		if resetting, ok := n.Connector.(bridgev2.NetworkResettingNetwork); ok {
			resetting.ResetNetworkConnections()
		}
	}
}
