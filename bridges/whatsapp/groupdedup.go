package whatsapp

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/internal/lru"
)

// A group is one portal for every login in it, and each of those logins
// receives the group's events: groupSeen lets the first login's copy through
// and recognises the others' before they reach the governance gate, so that
// the gate and the portal see each event once. Messages, edits, reactions
// and revokes are recognised by their WhatsApp ID (global per sender);
// receipts by sender, kind and messages; typing within typingWindow.
type groupSeen struct {
	clock Clock
	// mu makes a claim's look-up and record one step: two logins' copies
	// of one event are handled at the same moment in two goroutines, and
	// both would find the key free between the cache's own calls.
	mu    sync.Mutex
	cache *lru.Cache[string, seenBy]
	// dropped counts the copies recognised (read by tests and metrics).
	dropped atomic.Int64
}

type seenBy struct {
	login networkid.UserLoginID
	at    time.Time
}

const (
	// groupSeenCap bounds the memory of recent group events.
	groupSeenCap = 8192
	// typingWindow is how long a typing notification from one login hides
	// the same notification from another.
	typingWindow = 3 * time.Second
)

func newGroupSeen(clock Clock) *groupSeen {
	return &groupSeen{clock: clock, cache: lru.New[string, seenBy](groupSeenCap)}
}

// claim reports whether login should bridge the group event key: no other
// login brought it (within window, when window is not zero). The same login
// bringing it again (a redelivery) is let through: bridgev2 recognises a
// message ID it already has.
func (g *groupSeen) claim(key string, login networkid.UserLoginID, window time.Duration) bool {
	now := g.clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if prev, ok := g.cache.Get(key); ok && prev.login != login && (window == 0 || now.Sub(prev.at) < window) {
		g.dropped.Add(1)
		return false
	}
	g.cache.Put(key, seenBy{login: login, at: now})
	return true
}

// release forgets a claim that login could not bridge, so that another
// login's copy can be.
func (g *groupSeen) release(key string, login networkid.UserLoginID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if prev, ok := g.cache.Get(key); ok && prev.login == login {
		g.cache.Remove(key)
	}
}

// groupMessageKey names a group message (or edit, reaction, revoke) by its
// chat, its sender's user part and its ID.
func groupMessageKey(chat, sender types.JID, id types.MessageID) string {
	return "m|" + chat.String() + "|" + sender.User + "|" + id
}

// groupLockCount is the number of locks that group deliveries hash onto
// (bounded whatever the number of groups).
const groupLockCount = 64

// lockGroup serialises the delivery of one group's events across logins
// and returns the unlock (a no-op for other chats). bridgev2 v0.32 reads a
// portal's room ID without a lock when a login's first event is queued to
// it (UserLogin.MarkInPortal from Bridge.QueueRemoteEvent) while the
// portal's own loop may be creating the room for another login's event: a
// shared group portal receiving its first events from two logins at once
// is exactly that. This lock is held across the queue call on purpose (an
// exception to "no lock across bridgev2 calls"): it is only taken on the
// remote event paths, never from a bridgev2 callback, so it cannot be
// waited on by what it waits for. With a portal event buffer bridgev2's
// read can still race its loop; that is upstream's.
func (c *WhatsAppConnector) lockGroup(chat types.JID) func() {
	if !waid.IsSharedChat(chat) {
		return func() {}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(chat.String()))
	mu := &c.groupLocks[h.Sum32()%groupLockCount]
	mu.Lock()
	return mu.Unlock
}
