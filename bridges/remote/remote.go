// Package remote is the one door through which network connectors hand
// remote events to the bridge core.
//
// A connector keeps a Queue, set to Direct unless the gateway gives it
// another one through SetRemoteQueue. The gateway's queue is where the
// organisation's policy sees every inbound event before it can create or
// update a portal (DESIGN.md, decision 6), without any connector knowing
// about governance.
package remote

import (
	"maunium.net/go/mautrix/bridgev2"
)

// Queue hands one remote event of a login to the bridge.
type Queue func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult

// QueueSetter is implemented by connectors whose events can be routed
// through a queue other than Direct.
type QueueSetter interface {
	SetRemoteQueue(q Queue)
}

// Direct queues the event straight into bridgev2.
func Direct(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
	return login.QueueRemoteEvent(evt)
}
