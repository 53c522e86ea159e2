// Package waid makes and parses the network-prefixed IDs of the WhatsApp
// connector and holds its database metadata types.
//
// ID formats (every ID starts with "whatsapp."):
//
//	ghost:      whatsapp.<phone>               a user known by phone number, e.g. whatsapp.15550001111
//	            whatsapp.lid-<lid>             a user known only by LID, e.g. whatsapp.lid-123456789
//	            whatsapp.n-<newsletter>        a newsletter (WhatsApp channel), the author of its posts
//	user login: whatsapp.<phone>               the linked account's phone number
//	portal:     whatsapp.<phone>               direct chat (receiver: the login)
//	            whatsapp.lid-<lid>             direct chat with a LID user (receiver: the login)
//	            whatsapp.g-<group>             group, e.g. whatsapp.g-120363012345678901 (no receiver:
//	                                           one portal shared by every login in the group)
//	            whatsapp.n-<newsletter>        newsletter (WhatsApp channel) the login follows, e.g.
//	                                           whatsapp.n-120363144038483540 (no receiver: one read-only
//	                                           portal shared by every login that follows it)
//	            whatsapp.status                status updates of contacts (receiver: the login; only
//	                                           when the config's status_broadcasts is on)
//	message:    whatsapp.<chat>.<sender>.<id>  chat and sender as above without the prefix,
//	                                           id as chosen by the sender, e.g.
//	                                           whatsapp.g-1203630.15550001111.3EB0C0FFEE
//
// Phone numbers, LIDs, newsletter and group IDs are digits (group IDs of old groups
// also have one dash); message IDs are letters and digits.
package waid

import (
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/netid"
)

// Network is the prefix of every ID the WhatsApp connector makes.
const Network = "whatsapp"

const (
	lidPrefix   = "lid-"
	groupPrefix = "g-"
	newsPrefix  = "n-"
	statusPart  = "status"
	maxPartLen  = 64
)

// ErrMalformed is returned (wrapped) for an ID that this package cannot parse.
var ErrMalformed = errors.New("malformed whatsapp ID")

func isDigits(s string) bool {
	if s == "" || len(s) > maxPartLen {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isPhone(s string) bool { return isDigits(s) && s[0] != '0' }

func isGroupID(s string) bool {
	first, second, found := strings.Cut(s, "-")
	if !found {
		return isDigits(first) && first[0] != '0'
	}
	return isPhone(first) && isDigits(second)
}

func isMessageID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func strip(id string) (string, error) {
	rest, err := netid.Strip(Network, id)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return rest, nil
}

// userPart is the ID form of a user JID without the network prefix.
func userPart(jid types.JID) (string, error) {
	switch jid.Server {
	case types.DefaultUserServer:
		if !isPhone(jid.User) {
			return "", fmt.Errorf("%w: invalid phone number JID", ErrMalformed)
		}
		return jid.User, nil
	case types.HiddenUserServer:
		if !isDigits(jid.User) {
			return "", fmt.Errorf("%w: invalid LID", ErrMalformed)
		}
		return lidPrefix + jid.User, nil
	case types.NewsletterServer:
		if !isDigits(jid.User) {
			return "", fmt.Errorf("%w: invalid newsletter JID", ErrMalformed)
		}
		return newsPrefix + jid.User, nil
	default:
		return "", fmt.Errorf("%w: %q is not a user server", ErrMalformed, jid.Server)
	}
}

func parseUserPart(s string) (types.JID, error) {
	if lid, ok := strings.CutPrefix(s, lidPrefix); ok {
		if !isDigits(lid) {
			return types.EmptyJID, fmt.Errorf("%w: %q is not a LID", ErrMalformed, s)
		}
		return types.NewJID(lid, types.HiddenUserServer), nil
	}
	if news, ok := strings.CutPrefix(s, newsPrefix); ok {
		if !isDigits(news) {
			return types.EmptyJID, fmt.Errorf("%w: %q is not a newsletter", ErrMalformed, s)
		}
		return types.NewJID(news, types.NewsletterServer), nil
	}
	if !isPhone(s) {
		return types.EmptyJID, fmt.Errorf("%w: %q is not a phone number", ErrMalformed, s)
	}
	return types.NewJID(s, types.DefaultUserServer), nil
}

// chatPart is the ID form of a chat JID without the network prefix.
func chatPart(jid types.JID) (string, error) {
	if jid == types.StatusBroadcastJID {
		return statusPart, nil
	}
	if jid.Server == types.GroupServer {
		if !isGroupID(jid.User) {
			return "", fmt.Errorf("%w: invalid group JID", ErrMalformed)
		}
		return groupPrefix + jid.User, nil
	}
	return userPart(jid)
}

func parseChatPart(s string) (types.JID, error) {
	if s == statusPart {
		return types.StatusBroadcastJID, nil
	}
	if group, ok := strings.CutPrefix(s, groupPrefix); ok {
		if !isGroupID(group) {
			return types.EmptyJID, fmt.Errorf("%w: %q is not a group", ErrMalformed, s)
		}
		return types.NewJID(group, types.GroupServer), nil
	}
	return parseUserPart(s)
}

// MakeUserID returns the ghost ID of a user (device part dropped).
func MakeUserID(jid types.JID) (networkid.UserID, error) {
	part, err := userPart(jid.ToNonAD())
	if err != nil {
		return "", err
	}
	return networkid.UserID(netid.Join(Network, part)), nil
}

// ParseUserID returns the user JID of a ghost ID.
func ParseUserID(id networkid.UserID) (types.JID, error) {
	rest, err := strip(string(id))
	if err != nil {
		return types.EmptyJID, err
	}
	return parseUserPart(rest)
}

// MakeUserLoginID returns the login ID of the account with this JID (only
// phone-number JIDs: a linked device always knows its number).
func MakeUserLoginID(jid types.JID) (networkid.UserLoginID, error) {
	jid = jid.ToNonAD()
	if jid.Server != types.DefaultUserServer {
		return "", fmt.Errorf("%w: a login needs a phone-number JID", ErrMalformed)
	}
	part, err := userPart(jid)
	if err != nil {
		return "", err
	}
	return networkid.UserLoginID(netid.Join(Network, part)), nil
}

// ParseUserLoginID returns the account's phone-number JID.
func ParseUserLoginID(id networkid.UserLoginID) (types.JID, error) {
	rest, err := strip(string(id))
	if err != nil {
		return types.EmptyJID, err
	}
	if !isPhone(rest) {
		return types.EmptyJID, fmt.Errorf("%w: login %q is not a phone number", ErrMalformed, rest)
	}
	return types.NewJID(rest, types.DefaultUserServer), nil
}

// MakePortalID returns the portal ID of a chat (a user for direct chats, or
// a group).
func MakePortalID(chat types.JID) (networkid.PortalID, error) {
	part, err := chatPart(chat.ToNonAD())
	if err != nil {
		return "", err
	}
	return networkid.PortalID(netid.Join(Network, part)), nil
}

// MakePortalKey returns the portal key of a chat as seen by a login: a
// direct chat belongs to the login that sees it (receiver), a group is one
// portal shared by every login in it (no receiver).
func MakePortalKey(chat types.JID, receiver networkid.UserLoginID) (networkid.PortalKey, error) {
	id, err := MakePortalID(chat)
	if err != nil {
		return networkid.PortalKey{}, err
	}
	if IsSharedChat(chat) {
		receiver = ""
	}
	return networkid.PortalKey{ID: id, Receiver: receiver}, nil
}

// IsSharedChat reports whether a chat has one portal shared by every login
// in it (no receiver): groups and newsletters.
func IsSharedChat(chat types.JID) bool {
	return chat.Server == types.GroupServer || chat.Server == types.NewsletterServer
}

// IsNewsletterPortal reports whether id is the portal ID of a newsletter.
func IsNewsletterPortal(id networkid.PortalID) bool {
	return strings.HasPrefix(string(id), Network+"."+newsPrefix)
}

// IsGroupPortal reports whether id is the portal ID of a group.
func IsGroupPortal(id networkid.PortalID) bool {
	return strings.HasPrefix(string(id), Network+"."+groupPrefix)
}

// ParsePortalID returns the chat JID of a portal ID.
func ParsePortalID(id networkid.PortalID) (types.JID, error) {
	rest, err := strip(string(id))
	if err != nil {
		return types.EmptyJID, err
	}
	return parseChatPart(rest)
}

// MessageKey identifies a WhatsApp message: the chat it is in, its sender
// and the ID the sender chose.
type MessageKey struct {
	Chat   types.JID
	Sender types.JID
	ID     types.MessageID
}

// MakeMessageID returns the message ID of a message.
func MakeMessageID(key MessageKey) (networkid.MessageID, error) {
	chat, err := chatPart(key.Chat.ToNonAD())
	if err != nil {
		return "", err
	}
	sender, err := userPart(key.Sender.ToNonAD())
	if err != nil {
		return "", err
	}
	if !isMessageID(key.ID) {
		return "", fmt.Errorf("%w: invalid message ID", ErrMalformed)
	}
	return networkid.MessageID(netid.Join(Network, chat+"."+sender+"."+key.ID)), nil
}

// ParseMessageID returns the message key of a message ID.
func ParseMessageID(id networkid.MessageID) (MessageKey, error) {
	rest, err := strip(string(id))
	if err != nil {
		return MessageKey{}, err
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return MessageKey{}, fmt.Errorf("%w: message ID %q needs chat, sender and ID", ErrMalformed, id)
	}
	var key MessageKey
	if key.Chat, err = parseChatPart(parts[0]); err != nil {
		return MessageKey{}, err
	}
	if key.Sender, err = parseUserPart(parts[1]); err != nil {
		return MessageKey{}, err
	}
	if !isMessageID(parts[2]) {
		return MessageKey{}, fmt.Errorf("%w: %q is not a message ID", ErrMalformed, parts[2])
	}
	key.ID = parts[2]
	return key, nil
}

// ParsePhone turns what a user typed ("+1 555-000 1111", "15550001111")
// into a phone-number JID.
func ParsePhone(input string) (types.JID, error) {
	var b strings.Builder
	for i, c := range strings.TrimSpace(input) {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '+' && i == 0, c == ' ', c == '-', c == '(', c == ')', c == '.':
		default:
			return types.EmptyJID, fmt.Errorf("%w: %q is not a phone number", ErrMalformed, input)
		}
	}
	digits := b.String()
	if len(digits) < 5 || len(digits) > 15 || !isPhone(digits) {
		return types.EmptyJID, fmt.Errorf("%w: %q is not a phone number in international format", ErrMalformed, input)
	}
	return types.NewJID(digits, types.DefaultUserServer), nil
}
