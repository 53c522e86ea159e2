// Package tgid makes and parses the network-prefixed IDs of the Telegram
// connector and holds its database metadata types.
//
// ID formats (every ID starts with "telegram."):
//
//	user / ghost:  telegram.<userID>                 e.g. telegram.123456
//	user login:    telegram.<userID>                 (the logged-in account)
//	portal:        telegram.u<userID>                private chat (receiver: the login)
//	               telegram.c<chatID>                basic group (no receiver: shared)
//	               telegram.ch<channelID>            channel / supergroup (no receiver)
//	message:       telegram.u<selfID>.<messageID>    private chats and basic groups: the
//	                                                 account's own message box
//	               telegram.ch<channelID>.<msgID>    channels: the channel's box
package tgid

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/netid"
)

// Network is the prefix of every ID the Telegram connector makes.
const Network = "telegram"

// ErrMalformed is returned (wrapped) for an ID that this package cannot parse.
var ErrMalformed = errors.New("malformed telegram ID")

// PeerType is the kind of Telegram chat a portal bridges.
type PeerType string

const (
	PeerUser    PeerType = "u"
	PeerChat    PeerType = "c"
	PeerChannel PeerType = "ch"
)

// Peer identifies a Telegram chat.
type Peer struct {
	Type PeerType
	ID   int64
}

func (p Peer) String() string {
	return string(p.Type) + strconv.FormatInt(p.ID, 10)
}

func parsePositive(s string) (int64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: %q is not a canonical positive integer", ErrMalformed, s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%w: %q is not a positive integer", ErrMalformed, s)
	}
	return v, nil
}

func strip(id string) (string, error) {
	rest, err := netid.Strip(Network, id)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return rest, nil
}

func parsePeer(s string) (Peer, error) {
	var p Peer
	switch {
	case strings.HasPrefix(s, string(PeerChannel)):
		p.Type = PeerChannel
	case strings.HasPrefix(s, string(PeerChat)):
		p.Type = PeerChat
	case strings.HasPrefix(s, string(PeerUser)):
		p.Type = PeerUser
	default:
		return Peer{}, fmt.Errorf("%w: unknown peer type in %q", ErrMalformed, s)
	}
	id, err := parsePositive(s[len(p.Type):])
	if err != nil {
		return Peer{}, err
	}
	p.ID = id
	return p, nil
}

// MakeUserID returns the ghost ID of a Telegram user.
func MakeUserID(userID int64) networkid.UserID {
	return networkid.UserID(netid.Join(Network, strconv.FormatInt(userID, 10)))
}

// MakeChannelGhostID returns the ghost ID that stands for a channel itself:
// the sender of broadcast posts and of anonymous admins' messages.
func MakeChannelGhostID(channelID int64) networkid.UserID {
	return networkid.UserID(netid.Join(Network, string(PeerChannel)+strconv.FormatInt(channelID, 10)))
}

// ParseChannelGhostID returns the channel of a channel ghost ID.
func ParseChannelGhostID(id networkid.UserID) (int64, error) {
	rest, err := strip(string(id))
	if err != nil {
		return 0, err
	}
	p, err := parsePeer(rest)
	if err != nil || p.Type != PeerChannel {
		return 0, fmt.Errorf("%w: %q is not a channel ghost", ErrMalformed, id)
	}
	return p.ID, nil
}

// ParseUserID returns the Telegram user ID of a ghost ID.
func ParseUserID(id networkid.UserID) (int64, error) {
	rest, err := strip(string(id))
	if err != nil {
		return 0, err
	}
	return parsePositive(rest)
}

// MakeUserLoginID returns the login ID of a logged-in Telegram account.
func MakeUserLoginID(userID int64) networkid.UserLoginID {
	return networkid.UserLoginID(MakeUserID(userID))
}

// ParseUserLoginID returns the Telegram user ID of a login ID.
func ParseUserLoginID(id networkid.UserLoginID) (int64, error) {
	return ParseUserID(networkid.UserID(id))
}

// MakePortalID returns the portal ID of a Telegram chat.
func MakePortalID(peer Peer) networkid.PortalID {
	return networkid.PortalID(netid.Join(Network, peer.String()))
}

// ParsePortalID returns the Telegram chat of a portal ID.
func ParsePortalID(id networkid.PortalID) (Peer, error) {
	rest, err := strip(string(id))
	if err != nil {
		return Peer{}, err
	}
	return parsePeer(rest)
}

// MakePortalKey returns the portal key of a chat as seen by the given login.
// Private chats belong to one account; basic groups and channels are shared.
func MakePortalKey(peer Peer, receiver networkid.UserLoginID) networkid.PortalKey {
	key := networkid.PortalKey{ID: MakePortalID(peer)}
	if peer.Type == PeerUser {
		key.Receiver = receiver
	}
	return key
}

// MessageKey identifies a Telegram message: its box and its ID in that box.
// Box is the logged-in user (PeerUser) for private chats and basic groups,
// or the channel (PeerChannel).
type MessageKey struct {
	Box Peer
	ID  int
}

// MakeMessageID returns the message ID of a Telegram message.
func MakeMessageID(key MessageKey) networkid.MessageID {
	return networkid.MessageID(netid.Join(Network, key.Box.String()+"."+strconv.Itoa(key.ID)))
}

// ParseMessageID returns the Telegram message of a message ID.
func ParseMessageID(id networkid.MessageID) (MessageKey, error) {
	rest, err := strip(string(id))
	if err != nil {
		return MessageKey{}, err
	}
	box, msg, ok := strings.Cut(rest, ".")
	if !ok {
		return MessageKey{}, fmt.Errorf("%w: message ID %q has no message box", ErrMalformed, id)
	}
	peer, err := parsePeer(box)
	if err != nil {
		return MessageKey{}, err
	}
	if peer.Type == PeerChat {
		return MessageKey{}, fmt.Errorf("%w: message ID %q names a basic group as its box", ErrMalformed, id)
	}
	msgID, err := parsePositive(msg)
	if err != nil || msgID > 1<<31-1 {
		return MessageKey{}, fmt.Errorf("%w: message ID %q has an invalid message number", ErrMalformed, id)
	}
	return MessageKey{Box: peer, ID: int(msgID)}, nil
}

// MessageBox returns the box that holds messages of the given chat for the
// given logged-in user.
func MessageBox(chat Peer, selfID int64) Peer {
	if chat.Type == PeerChannel {
		return chat
	}
	return Peer{Type: PeerUser, ID: selfID}
}
