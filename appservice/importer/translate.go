package importer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/governance/e164"
)

// Reasons for which a row is not translated. They are printed in the
// summary, so they say what the row was, not which function failed.
var (
	errFakeMessage = errors.New("placeholder message (no real remote ID)")
	errUnknownID   = errors.New("ID format not recognised")
	errNoReceiver  = errors.New("direct chat without a receiving login")
)

// translator turns the IDs of one mautrix bridge (bridgev2 without a
// network prefix) into Passerelle's network-prefixed IDs. It never guesses:
// an ID it does not recognise is an error, and the row is reported.
type translator interface {
	// Network is Passerelle's network prefix ("whatsapp", "telegram").
	Network() string
	// OldBridge names the bridge the database comes from, for the summary.
	OldBridge() string
	Login(networkid.UserLoginID) (networkid.UserLoginID, error)
	Ghost(networkid.UserID) (networkid.UserID, error)
	// Portal translates a portal key, receiver included: a chat that
	// Passerelle shares between logins loses its receiver.
	Portal(networkid.PortalKey) (networkid.PortalKey, error)
	// Message translates a message ID of the portal with the given source
	// key (some formats need the chat or the receiver).
	Message(src networkid.PortalKey, id networkid.MessageID) (networkid.MessageID, error)
	// MessageMeta is the metadata Passerelle's connector keeps for a
	// message, derived from its source ID (nil: none).
	MessageMeta(src networkid.PortalKey, id networkid.MessageID) any
}

func newTranslator(network string) (translator, error) {
	switch network {
	case waid.Network:
		return waTranslator{}, nil
	case tgid.Network:
		return tgTranslator{}, nil
	default:
		return nil, fmt.Errorf("unknown network %q (use %s or %s)", network, waid.Network, tgid.Network)
	}
}

// waTranslator reads mautrix-whatsapp's IDs: users are a phone number or
// "lid-<lid>", logins a phone number, portals a chat JID
// ("<phone>@s.whatsapp.net", "<id>@g.us", ...), messages
// "<chat JID>:<sender JID>:<message ID>".
type waTranslator struct{}

func (waTranslator) Network() string   { return waid.Network }
func (waTranslator) OldBridge() string { return "mautrix-whatsapp" }

func (waTranslator) Login(id networkid.UserLoginID) (networkid.UserLoginID, error) {
	if !e164.IsDigits(string(id)) {
		return "", fmt.Errorf("%w: login %q", errUnknownID, id)
	}
	return waid.MakeUserLoginID(types.NewJID(string(id), types.DefaultUserServer))
}

func (waTranslator) userJID(id string) (types.JID, error) {
	if lid, ok := strings.CutPrefix(id, "lid-"); ok && e164.IsDigits(lid) {
		return types.NewJID(lid, types.HiddenUserServer), nil
	}
	if e164.IsDigits(id) {
		return types.NewJID(id, types.DefaultUserServer), nil
	}
	return types.EmptyJID, fmt.Errorf("%w: user %q", errUnknownID, id)
}

func (t waTranslator) Ghost(id networkid.UserID) (networkid.UserID, error) {
	jid, err := t.userJID(string(id))
	if err != nil {
		return "", err
	}
	return waid.MakeUserID(jid)
}

func (t waTranslator) Portal(key networkid.PortalKey) (networkid.PortalKey, error) {
	chat, err := types.ParseJID(string(key.ID))
	if err != nil || chat.User == "" && chat != types.StatusBroadcastJID {
		return networkid.PortalKey{}, fmt.Errorf("%w: chat %q", errUnknownID, key.ID)
	}
	var receiver networkid.UserLoginID
	if !waid.IsSharedChat(chat) {
		if key.Receiver == "" {
			return networkid.PortalKey{}, fmt.Errorf("%w: chat %q", errNoReceiver, key.ID)
		}
		if receiver, err = t.Login(key.Receiver); err != nil {
			return networkid.PortalKey{}, err
		}
	}
	out, err := waid.MakePortalKey(chat, receiver)
	if err != nil {
		return networkid.PortalKey{}, fmt.Errorf("%w: chat %q: %w", errUnknownID, key.ID, err)
	}
	return out, nil
}

func (waTranslator) parseMessage(id networkid.MessageID) (waid.MessageKey, error) {
	parts := strings.SplitN(string(id), ":", 3)
	if len(parts) != 3 {
		return waid.MessageKey{}, fmt.Errorf("%w: message %q", errUnknownID, id)
	}
	if parts[0] == "fake" || strings.HasPrefix(parts[2], "FAKE::") {
		return waid.MessageKey{}, errFakeMessage
	}
	chat, err := types.ParseJID(parts[0])
	if err != nil {
		return waid.MessageKey{}, fmt.Errorf("%w: message %q", errUnknownID, id)
	}
	sender, err := types.ParseJID(parts[1])
	if err != nil {
		return waid.MessageKey{}, fmt.Errorf("%w: message %q", errUnknownID, id)
	}
	return waid.MessageKey{Chat: chat, Sender: sender, ID: parts[2]}, nil
}

func (t waTranslator) Message(_ networkid.PortalKey, id networkid.MessageID) (networkid.MessageID, error) {
	key, err := t.parseMessage(id)
	if err != nil {
		return "", err
	}
	out, err := waid.MakeMessageID(key)
	if err != nil {
		return "", fmt.Errorf("%w: message %q: %w", errUnknownID, id, err)
	}
	return out, nil
}

func (t waTranslator) MessageMeta(_ networkid.PortalKey, id networkid.MessageID) any {
	key, err := t.parseMessage(id)
	if err != nil {
		return nil
	}
	return &waid.MessageMetadata{SenderJID: key.Sender.ToNonAD().String()}
}

// tgTranslator reads mautrix-telegram's IDs: users are "<id>" (a channel
// posting as itself "channel-<id>"), logins "<id>", portals
// "user:<id>" and "chat:<id>" (both with a receiver) and "channel:<id>",
// messages "<id>" in the account's own message box or
// "<channel>.<id>" in a channel's.
type tgTranslator struct{}

func (tgTranslator) Network() string   { return tgid.Network }
func (tgTranslator) OldBridge() string { return "mautrix-telegram" }

func positive(s string) (int64, bool) {
	if !e164.IsDigits(s) || s[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v > 0
}

func (tgTranslator) userID(id string) (int64, error) {
	v, ok := positive(id)
	if !ok {
		return 0, fmt.Errorf("%w: user %q", errUnknownID, id)
	}
	return v, nil
}

func (t tgTranslator) Login(id networkid.UserLoginID) (networkid.UserLoginID, error) {
	v, err := t.userID(string(id))
	if err != nil {
		return "", err
	}
	return tgid.MakeUserLoginID(v), nil
}

func (t tgTranslator) Ghost(id networkid.UserID) (networkid.UserID, error) {
	if channel, ok := strings.CutPrefix(string(id), "channel-"); ok {
		v, ok := positive(channel)
		if !ok {
			return "", fmt.Errorf("%w: user %q", errUnknownID, id)
		}
		return tgid.MakeChannelGhostID(v), nil
	}
	v, err := t.userID(string(id))
	if err != nil {
		return "", err
	}
	return tgid.MakeUserID(v), nil
}

func (t tgTranslator) Portal(key networkid.PortalKey) (networkid.PortalKey, error) {
	kind, rawID, ok := strings.Cut(string(key.ID), ":")
	v, valid := positive(rawID)
	if !ok || !valid {
		return networkid.PortalKey{}, fmt.Errorf("%w: chat %q", errUnknownID, key.ID)
	}
	var peer tgid.Peer
	switch kind {
	case "user":
		peer = tgid.Peer{Type: tgid.PeerUser, ID: v}
	case "chat":
		peer = tgid.Peer{Type: tgid.PeerChat, ID: v}
	case "channel":
		peer = tgid.Peer{Type: tgid.PeerChannel, ID: v}
	default:
		return networkid.PortalKey{}, fmt.Errorf("%w: chat %q", errUnknownID, key.ID)
	}
	var receiver networkid.UserLoginID
	if peer.Type == tgid.PeerUser {
		if key.Receiver == "" {
			return networkid.PortalKey{}, fmt.Errorf("%w: chat %q", errNoReceiver, key.ID)
		}
		var err error
		if receiver, err = t.Login(key.Receiver); err != nil {
			return networkid.PortalKey{}, err
		}
	}
	return tgid.MakePortalKey(peer, receiver), nil
}

func (t tgTranslator) Message(src networkid.PortalKey, id networkid.MessageID) (networkid.MessageID, error) {
	box, rawMsg, inChannel := strings.Cut(string(id), ".")
	if !inChannel {
		box, rawMsg = "", box
	}
	msg, ok := positive(rawMsg)
	if !ok || msg > 1<<31-1 {
		return "", fmt.Errorf("%w: message %q", errUnknownID, id)
	}
	var peer tgid.Peer
	if inChannel {
		channel, ok := positive(box)
		if !ok {
			return "", fmt.Errorf("%w: message %q", errUnknownID, id)
		}
		peer = tgid.Peer{Type: tgid.PeerChannel, ID: channel}
	} else {
		// Private chats and basic groups number messages in the
		// account's own box: the portal's receiver in mautrix-telegram.
		self, ok := positive(string(src.Receiver))
		if !ok {
			return "", fmt.Errorf("%w: message %q", errNoReceiver, id)
		}
		peer = tgid.Peer{Type: tgid.PeerUser, ID: self}
	}
	return tgid.MakeMessageID(tgid.MessageKey{Box: peer, ID: int(msg)}), nil
}

func (tgTranslator) MessageMeta(networkid.PortalKey, networkid.MessageID) any { return nil }
