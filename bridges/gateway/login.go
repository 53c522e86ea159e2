package gateway

import (
	"context"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
)

// GetLoginFlows lists the flows of every enabled network, network by network.
// Flow IDs are global: each connector names its flows after its network.
func (gw *Gateway) GetLoginFlows() []bridgev2.LoginFlow {
	var flows []bridgev2.LoginFlow
	for _, n := range gw.enabledNetworks() {
		flows = append(flows, n.Connector.GetLoginFlows()...)
	}
	return flows
}

// CreateLogin starts a flow of the network that offers it.
func (gw *Gateway) CreateLogin(ctx context.Context, user *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	for _, n := range gw.enabledNetworks() {
		for _, flow := range n.Connector.GetLoginFlows() {
			if flow.ID == flowID {
				return n.Connector.CreateLogin(ctx, user, flowID)
			}
		}
	}
	return nil, fmt.Errorf("%w: no enabled network offers the login flow %q", bridgev2.ErrInvalidLoginFlowID, flowID)
}

// checkFlowIDs refuses flow IDs that bridgev2's `login` command could not
// reach: it lowercases what the user types, and two networks offering the same
// ID would shadow each other.
func checkFlowIDs(networks []*Network) error {
	owner := make(map[string]string)
	for _, n := range networks {
		for _, flow := range n.Connector.GetLoginFlows() {
			if flow.ID != strings.ToLower(flow.ID) {
				return fmt.Errorf("network %s: login flow ID %q must be lowercase", n.ID, flow.ID)
			}
			if other, dup := owner[flow.ID]; dup {
				return fmt.Errorf("login flow ID %q is offered by both %s and %s", flow.ID, other, n.ID)
			}
			owner[flow.ID] = n.ID
		}
	}
	return nil
}
