package appservice

import (
	"fmt"

	"github.com/passerelle/passerelle/bridges/gateway"
	"github.com/passerelle/passerelle/governance/admin"
	"github.com/passerelle/passerelle/governance/gate"
)

// addGovernance puts the governance gate between the networks and the bridge
// core (DESIGN.md, decision 6): it becomes the gateway's remote queue,
// outbound check, sent recorder and media check, its section is
// `network.governance`, and its admin commands, room guard and HTTP admin API
// are registered on the bridge.
func addGovernance(gw *gateway.Gateway) (*admin.Governance, error) {
	gov := admin.New(gate.New())
	if err := gw.AddComponent(gov); err != nil {
		return nil, fmt.Errorf("failed to add governance: %w", err)
	}
	gw.SetRemoteQueue(gov.Queue)
	gw.SetOutboundCheck(gov.CheckOutbound)
	gw.SetSentRecorder(gov.RecordSent)
	gw.SetMediaCheck(gov.CheckMedia)
	gw.SetBackfillFilter(gov.FilterBackfill)
	gw.SetDisappearingPolicy(gov.KeepDisappearing)
	return gov, nil
}
