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
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Queue hands one remote event of a login to the bridge.
type Queue func(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult

// QueueSetter is implemented by connectors whose events can be routed
// through a queue other than Direct.
type QueueSetter interface {
	SetRemoteQueue(q Queue)
}

// Direct queues the event straight into bridgev2, once its sender's ghost
// has a profile (primeSender).
func Direct(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) bridgev2.EventHandlingResult {
	primeSender(login, evt)
	return login.QueueRemoteEvent(evt)
}

// ghostLocks serialise the first profile fetch of a ghost, striped by ghost
// ID so that a slow fetch holds back only the ghosts that share its stripe.
var (
	ghostLocks    [64]sync.Mutex
	ghostLockSeed = maphash.MakeSeed()
)

// primeTimeout bounds the profile fetch done before queuing.
const primeTimeout = 30 * time.Second

// bridgev2 fills in a ghost's profile lazily from each portal's loop (for an
// event's sender, for every member of a room it creates), reading the
// ghost's fields without the ghost's lock: two portals that meet a new
// contact at the same moment (two staff members' rooms with one contact, a
// group and a direct chat) race on them. The connectors therefore give a
// ghost its profile first, once, under a lock: before an event is queued
// (primeSender) and before a portal's members are used (PrimeMembers). The
// portals' later checks then only read. A failure is logged and left to
// bridgev2's own try in the portal.

// primeSender primes the ghost of the event's sender.
func primeSender(login *bridgev2.UserLogin, evt bridgev2.RemoteEvent) {
	sender := evt.GetSender().Sender
	if sender == "" || login == nil || login.Bridge == nil || login.Client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(login.Log.WithContext(context.Background()), primeTimeout)
	defer cancel()
	primeGhost(ctx, login, sender, nil, evt.GetType())
}

// PrimeMembers primes the ghosts of a chat's members; a connector's
// GetChatInfo calls it on the member list it returns.
func PrimeMembers(ctx context.Context, login *bridgev2.UserLogin, members *bridgev2.ChatMemberList) {
	if members == nil || login == nil || login.Bridge == nil || login.Client == nil {
		return
	}
	for _, m := range members.MemberMap {
		if m.Sender != "" && (m.Membership == "" || m.Membership == event.MembershipJoin) {
			primeGhost(ctx, login, m.Sender, m.UserInfo, bridgev2.RemoteEventChatInfoChange)
		}
	}
}

func primeGhost(ctx context.Context, login *bridgev2.UserLogin, id networkid.UserID, info *bridgev2.UserInfo, evtType bridgev2.RemoteEventType) {
	lock := &ghostLocks[maphash.String(ghostLockSeed, string(id))%uint64(len(ghostLocks))]
	lock.Lock()
	defer lock.Unlock()
	ghost, err := login.Bridge.GetGhostByID(ctx, id)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("ghost_id", string(id)).Msg("Could not load a ghost to give it its profile")
		return
	}
	if info != nil {
		ghost.UpdateInfo(ctx, info)
		return
	}
	ghost.UpdateInfoIfNecessary(ctx, login, evtType)
}

// CreatesPortal reports whether evt may create its portal's room: it asks
// for it and the room does not exist yet. Connectors create one room at a
// time: bridgev2 reads the members' ghosts without their lock while it
// creates a room, and two rooms made at once (a direct chat and a group
// with the same contact, of one login or two) would write and read one
// ghost together. Chats whose room exists do not wait.
func CreatesPortal(ctx context.Context, br *bridgev2.Bridge, evt bridgev2.RemoteEvent) bool {
	m, ok := evt.(bridgev2.RemoteEventThatMayCreatePortal)
	if !ok || !m.ShouldCreatePortal() {
		return false
	}
	exists, err := RoomExists(ctx, br, evt.GetPortalKey())
	return err != nil || !exists
}

// RoomExists reports whether the portal of key has its room, or is having
// it made (RoomCreated, not MXID: another login may be creating a shared
// room).
func RoomExists(ctx context.Context, br *bridgev2.Bridge, key networkid.PortalKey) (bool, error) {
	portal, err := br.GetExistingPortalByKey(ctx, key)
	if err != nil {
		return false, err
	}
	return portal != nil && portal.RoomCreated.IsSet(), nil
}

// RoomOf is a portal's room, or "" while it has none (or portal is nil).
// It reads MXID only once RoomCreated is set: the portal's loop writes
// MXID without a lock while it makes the room and sets RoomCreated after,
// so code outside that loop that reads MXID first races the write.
func RoomOf(portal *bridgev2.Portal) id.RoomID {
	if portal == nil || !portal.RoomCreated.IsSet() {
		return ""
	}
	return portal.MXID
}
