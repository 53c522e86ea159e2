package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/telegram/tgid"
	"github.com/passerelle/passerelle/bridges/telegram/tgmedia"
)

// The hooks through which the gateway's governance sees Telegram: who a
// remote user is, events that can wait for an admin's approval, and the
// outbound check before anything is sent.

var (
	_ remote.Describer        = (*Client)(nil)
	_ remote.HeldEventDecoder = (*Client)(nil)
	_ remote.Described        = (*messageEvent)(nil)
	_ remote.Holdable         = (*messageEvent)(nil)
	_ remote.TextCarrier      = (*messageEvent)(nil)
	_ bridgev2.RemoteMessage  = (*messageEvent)(nil)
	_ bridgev2.RemoteEdit     = (*messageEvent)(nil)
)

// DescribeRemoteUser implements remote.Describer from the users the account
// has seen, asking Telegram only for a user it has never seen.
func (c *Client) DescribeRemoteUser(ctx context.Context, userID networkid.UserID) (remote.Identity, error) {
	tgUserID, err := tgid.ParseUserID(userID)
	if err != nil {
		return remote.Identity{}, err
	}
	if _, ok := c.users.get(tgUserID); !ok {
		if u, err := c.getUser(ctx, tgUserID); err == nil {
			c.users.put(u)
		}
		// Else the numeric ID is still known: rules on it can be checked.
	}
	return c.cachedIdentity(tgUserID), nil
}

// cachedIdentity is what the account knows of a user, without I/O.
func (c *Client) cachedIdentity(tgUserID int64) remote.Identity {
	ident := remote.Identity{ID: tgid.MakeUserID(tgUserID), Number: tgUserID}
	if u, ok := c.users.get(tgUserID); ok {
		ident.Username = u.Username
		if u.Phone != "" {
			ident.Phone = "+" + u.Phone
		}
		ident.DisplayName = c.main.Config.FormatDisplayname(u)
	}
	return ident
}

// chatOf is what the connector knows of a chat, without I/O.
func chatOf(peer tgid.Peer) remote.Chat {
	if peer.Type != tgid.PeerUser {
		return remote.Chat{IsGroup: true}
	}
	return remote.Chat{OtherUser: tgid.MakeUserID(peer.ID)}
}

// DescribeChat implements remote.Describer: only private chats are bridged.
func (c *Client) DescribeChat(_ context.Context, key networkid.PortalKey) (remote.Chat, error) {
	peer, err := tgid.ParsePortalID(key.ID)
	if err != nil {
		return remote.Chat{}, err
	}
	switch peer.Type {
	case tgid.PeerChannel:
		return c.channelChat(peer.ID), nil
	case tgid.PeerChat:
		return c.basicChat(peer.ID), nil
	}
	return chatOf(peer), nil
}

// messageEvent is a new or edited Telegram message as a remote event; it can
// be held while its chat waits for approval.
type messageEvent struct {
	*simplevent.Message[*tg.Message]
	client *Client
	edit   bool
	chat   remote.Chat
	sender remote.Identity
}

// RemoteChat implements remote.Described.
func (e *messageEvent) RemoteChat() remote.Chat { return e.chat }

// PlainText implements remote.TextCarrier: the text of a new message
// without media.
func (e *messageEvent) PlainText() string {
	if e.edit || e.Data == nil || e.Data.Media != nil {
		return ""
	}
	return e.Data.Message
}

// RemoteSender implements remote.Described.
func (e *messageEvent) RemoteSender() remote.Identity { return e.sender }

// heldPayload is a held message: the TL encoding of the message and of the
// users it names, so that it converts the same way when it is delivered.
type heldPayload struct {
	Version int      `json:"v"`
	Edit    bool     `json:"edit,omitempty"`
	Message []byte   `json:"message,omitempty"`
	Users   [][]byte `json:"users,omitempty"`

	// Kind is empty for a message or an edit; else a deletion or a
	// reaction added or removed, which carry what follows.
	Kind      string         `json:"kind,omitempty"`
	Portal    string         `json:"portal,omitempty"`
	Target    string         `json:"target,omitempty"`
	Sender    string         `json:"sender,omitempty"`
	FromMe    bool           `json:"from_me,omitempty"`
	TS        int64          `json:"ts,omitempty"` // Unix milliseconds
	Reactions []heldReaction `json:"reactions,omitempty"`
}

// Kinds of held events other than messages.
const (
	heldKindRemove         = "remove"
	heldKindReaction       = "reaction"
	heldKindReactionRemove = "reaction_remove"
)

// heldReaction is the reaction of a held reaction event.
type heldReaction struct {
	User        string `json:"user"`
	FromMe      bool   `json:"from_me,omitempty"`
	EmojiID     string `json:"emoji_id,omitempty"`
	Emoji       string `json:"emoji,omitempty"`
	CustomEmoji string `json:"custom_emoji,omitempty"`
}

// maxHeldReactions bounds the reactions of a held event.
const maxHeldReactions = 1

func heldEventPayload(p heldPayload) ([]byte, error) {
	p.Version = heldPayloadVersion
	if len(p.Reactions) > maxHeldReactions {
		p.Reactions = p.Reactions[:maxHeldReactions]
	}
	return json.Marshal(p)
}

const heldPayloadVersion = 1

// HoldPayload implements remote.Holdable.
func (e *messageEvent) HoldPayload() ([]byte, error) {
	var buf bin.Buffer
	if err := e.Data.Encode(&buf); err != nil {
		return nil, fmt.Errorf("failed to encode telegram message: %w", err)
	}
	p := heldPayload{Version: heldPayloadVersion, Edit: e.edit, Message: append([]byte(nil), buf.Buf...)}
	seen := map[int64]bool{}
	addUser := func(userID int64) {
		if seen[userID] {
			return
		}
		seen[userID] = true
		if u, ok := e.client.users.get(userID); ok {
			var ub bin.Buffer
			if err := u.Encode(&ub); err == nil {
				p.Users = append(p.Users, append([]byte(nil), ub.Buf...))
			}
		}
	}
	if peer, ok := e.Data.PeerID.(*tg.PeerUser); ok {
		addUser(peer.UserID)
	}
	if from, ok := e.Data.FromID.(*tg.PeerUser); ok {
		addUser(from.UserID)
	}
	return json.Marshal(p)
}

// ErrBadHeldPayload is returned (wrapped) for a held payload that this
// connector did not write.
var ErrBadHeldPayload = errors.New("malformed held telegram event")

// DecodeHeldEvent implements remote.HeldEventDecoder: the message is rebuilt
// with its original timestamp and the users it names are cached again.
func (c *Client) DecodeHeldEvent(_ context.Context, login *bridgev2.UserLogin, payload []byte) (bridgev2.RemoteEvent, error) {
	if login.ID != c.login.ID {
		return nil, fmt.Errorf("%w: held for login %s, decoded by %s", ErrBadHeldPayload, login.ID, c.login.ID)
	}
	var p heldPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeldPayload, err)
	} else if p.Version != heldPayloadVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadHeldPayload, p.Version)
	}
	switch p.Kind {
	case "":
	case heldKindRemove, heldKindReaction, heldKindReactionRemove:
		return c.decodeHeldConversation(p)
	case heldKindTopic:
		return c.decodeHeldTopic(p)
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrBadHeldPayload, p.Kind)
	}
	var msg tg.Message
	if err := msg.Decode(&bin.Buffer{Buf: p.Message}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeldPayload, err)
	}
	for _, raw := range p.Users {
		var u tg.User
		if err := u.Decode(&bin.Buffer{Buf: raw}); err == nil {
			c.users.put(&u)
		}
	}
	evt, ok := c.messageEvent(&msg, p.Edit)
	if !ok {
		return nil, fmt.Errorf("%w: not a private chat", ErrBadHeldPayload)
	}
	return evt, nil
}

// decodeHeldConversation rebuilds a held deletion or reaction sync.
func (c *Client) decodeHeldConversation(p heldPayload) (bridgev2.RemoteEvent, error) {
	peer, err := tgid.ParsePortalID(networkid.PortalID(p.Portal))
	if err != nil || peer.Type != tgid.PeerUser {
		return nil, fmt.Errorf("%w: portal %q", ErrBadHeldPayload, p.Portal)
	}
	if _, err := tgid.ParseMessageID(networkid.MessageID(p.Target)); err != nil {
		return nil, fmt.Errorf("%w: target %q", ErrBadHeldPayload, p.Target)
	}
	sender := bridgev2.EventSender{Sender: networkid.UserID(p.Sender)}
	if p.FromMe {
		sender = c.userSender(c.userID)
	}
	ts := time.UnixMilli(p.TS)
	if p.Kind == heldKindRemove {
		return c.removeEvent(peer, networkid.MessageID(p.Target), sender, ts), nil
	}
	if len(p.Reactions) != 1 || p.Reactions[0].EmojiID == "" {
		return nil, fmt.Errorf("%w: a reaction without its emoji", ErrBadHeldPayload)
	}
	r := p.Reactions[0]
	r.User, r.FromMe = p.Sender, p.FromMe
	return c.reactionEvent(peer, networkid.MessageID(p.Target), r, p.Kind == heldKindReactionRemove, ts), nil
}

var _ remote.MediaCarrier = (*messageEvent)(nil)

// RemoteMedia implements remote.MediaCarrier from the Telegram message
// alone: its photo or document, location, contact or poll. Edits carry
// none (a media message's edit is not bridged).
func (e *messageEvent) RemoteMedia() []remote.Media {
	if e.edit || !hasMedia(e.Data) {
		return nil
	}
	m := remote.Media{Direction: remote.MediaInbound, Login: e.client.login, PortalKey: e.GetPortalKey(), Size: -1}
	if e.GetSender().IsFromMe {
		m.Direction = remote.MediaOutbound
	} else {
		m.Remote = e.GetSender().Sender
	}
	switch v := e.Data.Media.(type) {
	case *tg.MessageMediaPhoto, *tg.MessageMediaDocument:
		f, ok := tgmedia.FileOf(v)
		if !ok {
			return nil
		}
		m.Kind, m.MIME, m.Size, m.Name = f.Kind, f.MIME, f.Size, f.Name
		if m.MIME == "" {
			m.MIME = "image/jpeg" // Telegram photos
		}
	case *tg.MessageMediaGeo, *tg.MessageMediaVenue, *tg.MessageMediaGeoLive:
		m.Kind = remote.MediaLocation
	case *tg.MessageMediaContact:
		contact, card := tgmedia.Contact(v)
		m.Kind, m.MIME, m.Size, m.Name = remote.MediaContact, "text/vcard", int64(len(card)), contact.FileName()
	case *tg.MessageMediaPoll:
		m.Kind = remote.MediaPoll
	default:
		return nil
	}
	return []remote.Media{m}
}
