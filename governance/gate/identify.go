package gate

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/remote"
)

// describeTimeout bounds the connector's answer when an event carries no
// description and the gate has none cached.
const describeTimeout = 5 * time.Second

// identityCacheSize caps the identities the gate remembers.
const identityCacheSize = 4096

// identify tells what the gate knows of a chat and of its outside person
// (remoteUser, or the other user of a direct chat): what the event carries
// (remote.Described), else what the gate remembers, else what the
// connector answers (remote.Describer), which is asked outside any lock.
func (g *Gate) identify(ctx context.Context, login *bridgev2.UserLogin, key networkid.PortalKey, remoteUser networkid.UserID, evt any) (remote.Chat, remote.Identity) {
	if d, ok := evt.(remote.Described); ok {
		chat, ident := d.RemoteChat(), d.RemoteSender()
		if remoteUser != "" && ident.ID == "" {
			ident.ID = remoteUser
		}
		if remoteUser == "" && !chat.IsGroup && chat.OtherUser != "" {
			// The staff member's own message: the outside person is the
			// other user of the direct chat.
			ident = g.identityOf(ctx, login, chat.OtherUser)
		} else if ident.ID != "" {
			g.idents.put(ident)
		}
		return chat, ident
	}
	var chat remote.Chat
	describer, ok := login.Client.(remote.Describer)
	if ok {
		dctx, cancel := context.WithTimeout(ctx, describeTimeout)
		var err error
		chat, err = describer.DescribeChat(dctx, key)
		cancel()
		if err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Connector could not describe chat")
		}
	}
	if remoteUser == "" {
		remoteUser = chat.OtherUser
	}
	return chat, g.identityOf(ctx, login, remoteUser)
}

// identityOf is the remembered identity of a remote user, or the
// connector's description of it.
func (g *Gate) identityOf(ctx context.Context, login *bridgev2.UserLogin, userID networkid.UserID) remote.Identity {
	if userID == "" {
		return remote.Identity{}
	}
	if ident, ok := g.idents.get(userID); ok {
		return ident
	}
	ident := remote.Identity{ID: userID}
	if describer, ok := login.Client.(remote.Describer); ok {
		dctx, cancel := context.WithTimeout(ctx, describeTimeout)
		described, err := describer.DescribeRemoteUser(dctx, userID)
		cancel()
		if err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Connector could not describe remote user")
		} else {
			ident = described
			g.idents.put(ident)
		}
	}
	return ident
}

// identityCache remembers identities by user ID, up to identityCacheSize;
// when full, it starts again from empty.
type identityCache struct {
	mu sync.Mutex
	m  map[networkid.UserID]remote.Identity
}

func (c *identityCache) get(userID networkid.UserID) (remote.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ident, ok := c.m[userID]
	return ident, ok
}

func (c *identityCache) put(ident remote.Identity) {
	if ident.ID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= identityCacheSize {
		c.m = make(map[networkid.UserID]remote.Identity)
	}
	c.m[ident.ID] = ident
}
