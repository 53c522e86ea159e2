package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/passerelle/passerelle/bridges/remote"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
	"github.com/passerelle/passerelle/bridges/whatsapp/wamedia"
)

// The hooks through which the gateway's governance sees WhatsApp: who a
// remote user is, what a chat is, messages that can wait for an admin's
// approval, and the outbound check before anything is sent.

var (
	_ remote.Describer             = (*Client)(nil)
	_ remote.HeldEventDecoder      = (*Client)(nil)
	_ remote.Described             = (*messageEvent)(nil)
	_ remote.Holdable              = (*messageEvent)(nil)
	_ remote.TextCarrier           = (*messageEvent)(nil)
	_ remote.Described             = (*reactionEvent)(nil)
	_ remote.Holdable              = (*reactionEvent)(nil)
	_ remote.Described             = (*removeEvent)(nil)
	_ remote.Holdable              = (*removeEvent)(nil)
	_ remote.MediaCarrier          = (*messageEvent)(nil)
	_ bridgev2.RemoteMessageUpsert = (*messageEvent)(nil)
)

// groupInfoTimeout bounds the one group-info query DescribeChat may make
// for a group the connector has not seen yet.
const groupInfoTimeout = 10 * time.Second

// rememberPushName keeps the push name a message carries: whatsmeow stores
// it in the contact store in the background, possibly after the message is
// queued and described.
func (cl *Client) rememberPushName(info *types.MessageInfo) {
	if info.IsFromMe || info.PushName == "" || info.PushName == "-" {
		return
	}
	for _, jid := range []types.JID{info.Sender.ToNonAD(), info.SenderAlt.ToNonAD()} {
		if !jid.IsEmpty() {
			cl.pushNames.Put(jid, info.PushName)
		}
	}
}

func (cl *Client) rememberedPushName(jids ...types.JID) string {
	for _, jid := range jids {
		if name, _ := cl.pushNames.Get(jid); name != "" {
			return name
		}
	}
	return ""
}

// rememberGroupName keeps a group's name, as group info or a change gave it.
func (cl *Client) rememberGroupName(group types.JID, name string) {
	cl.groupNames.Put(group, name)
}

func (cl *Client) rememberedGroupName(group types.JID) (string, bool) {
	return cl.groupNames.Get(group)
}

// DescribeRemoteUser implements remote.Describer from the device store: a
// user known by LID is given in phone form when the store maps the LID to
// a number, and the display name is the address-book, business or push name
// (never the number).
func (cl *Client) DescribeRemoteUser(ctx context.Context, userID networkid.UserID) (remote.Identity, error) {
	jid, err := waid.ParseUserID(userID)
	if err != nil {
		return remote.Identity{}, err
	}
	ident := remote.Identity{ID: userID}
	if jid.Server == types.NewsletterServer {
		ident.DisplayName = cl.newsletterName(ctx, jid)
		return ident, nil
	}
	pn := cl.preferPN(ctx, jid, types.EmptyJID)
	if pn.Server == types.DefaultUserServer {
		ident.Phone = "+" + pn.User
		if pnID, err := waid.MakeUserID(pn); err == nil {
			ident.ID = pnID
		}
	}
	contact := cl.contact(ctx, pn)
	for _, name := range []string{contact.FullName, contact.BusinessName, contact.PushName, contact.FirstName} {
		if name != "" {
			ident.DisplayName = name
			break
		}
	}
	if ident.DisplayName == "" {
		ident.DisplayName = cl.rememberedPushName(pn, jid)
	}
	return ident, nil
}

// DescribeChat implements remote.Describer: a direct chat names the other
// user; a group gives its name from what the connector knows, or else from
// one group-info query (a fallback: events carry their description).
func (cl *Client) DescribeChat(ctx context.Context, key networkid.PortalKey) (remote.Chat, error) {
	chat, err := waid.ParsePortalID(key.ID)
	if err != nil {
		return remote.Chat{}, err
	}
	return cl.cachedChat(ctx, chat), nil
}

// groupMembers are the participants of a group the connector saw, for the
// gate's rules on members.
type groupMembers struct {
	jids []types.JID
}

// groupMembersOf returns a group's participants: remembered, or asked once
// (group info, bounded by groupInfoTimeout) and remembered. The connector
// asks before it hands a group's event to the gate, so that a rule on a
// member applies from the first message.
func (cl *Client) groupMembersOf(ctx context.Context, group types.JID) ([]types.JID, bool) {
	if m, ok := cl.groupMembers.Get(group); ok {
		return m.jids, true
	}
	wa := cl.client()
	if wa == nil || !wa.IsLoggedIn() {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, groupInfoTimeout)
	defer cancel()
	info, err := wa.GetGroupInfo(ctx, group)
	if err != nil {
		cl.log.Debug().Err(err).Msg("Failed to get group info to describe a group")
		return nil, false
	}
	cl.rememberGroupName(group, info.Name)
	return cl.rememberGroupMembers(group, info.Participants), true
}

// rememberGroupMembers keeps a group's participants (at most
// remote.MaxChatMembers), as group info gave them.
func (cl *Client) rememberGroupMembers(group types.JID, participants []types.GroupParticipant) []types.JID {
	jids := make([]types.JID, 0, min(len(participants), remote.MaxChatMembers))
	for _, p := range participants {
		if len(jids) == remote.MaxChatMembers {
			break
		}
		jid := p.JID
		if p.PhoneNumber.Server == types.DefaultUserServer {
			jid = p.PhoneNumber
		}
		jids = append(jids, jid.ToNonAD())
	}
	cl.groupMembers.Put(group, groupMembers{jids: jids})
	return jids
}

// describeMembers is what the gate sees of a group's outside members (the
// staff member's own account left out).
func (cl *Client) describeMembers(ctx context.Context, jids []types.JID) []remote.Identity {
	out := make([]remote.Identity, 0, len(jids))
	for _, jid := range jids {
		userID, err := waid.MakeUserID(jid)
		if err != nil || cl.IsThisUser(ctx, userID) {
			continue
		}
		if ident, err := cl.DescribeRemoteUser(ctx, userID); err == nil {
			out = append(out, ident)
		}
	}
	return out
}

// cachedChat is what the connector knows of a chat: the other user of a
// direct chat (phone form when known); a group's name from its portal or
// from what the connector saw, and its members (asked once per group, then
// remembered).
func (cl *Client) cachedChat(ctx context.Context, chat types.JID) remote.Chat {
	if chat == types.StatusBroadcastJID {
		return remote.Chat{IsGroup: true, Name: StatusRoomName}
	}
	if chat.Server == types.NewsletterServer {
		return cl.newsletterChat(ctx, chat)
	}
	if chat.Server != types.GroupServer {
		other, err := waid.MakeUserID(cl.preferPN(ctx, chat, types.EmptyJID))
		if err != nil {
			return remote.Chat{}
		}
		return remote.Chat{OtherUser: other}
	}
	desc := remote.Chat{IsGroup: true}
	jids, _ := cl.groupMembersOf(ctx, chat)
	desc.Members = cl.describeMembers(ctx, jids)
	if name, ok := cl.rememberedGroupName(chat); ok {
		desc.Name = name
	} else if key, err := waid.MakePortalKey(chat, cl.login.ID); err == nil {
		if portal, err := cl.main.Bridge.GetExistingPortalByKey(ctx, key); err == nil && portal != nil {
			desc.Name = portal.Name
		}
	}
	return desc
}

// heldBase is what every WhatsApp event that carries content (messages,
// edits, reactions, revokes) shares: the message it came in, the chat and
// sender the portal sees, and what the connector knew of them. It makes the
// event holdable (the payload is the message with its info, so
// DecodeHeldEvent rebuilds any kind) and described.
type heldBase struct {
	client *Client
	data   *events.Message
	chat   types.JID // the portal's chat
	sender types.JID // the sender, as the portal sees them

	// What the connector knew of the chat and sender when it built the
	// event (remote.Described).
	chatDesc   remote.Chat
	senderDesc remote.Identity
}

// messageEvent is a WhatsApp message (or an edit of one) as a remote event;
// it can be held while its chat waits for approval.
type messageEvent struct {
	*simplevent.Message[*events.Message]
	heldBase
}

// PlainText implements remote.TextCarrier: the text of a new message
// without media.
func (e *messageEvent) PlainText() string {
	if e.Type == bridgev2.RemoteEventEdit || e.Data == nil || e.Data.Message == nil {
		return ""
	}
	msg := wamedia.Unwrap(e.Data.Message)
	if text := msg.GetConversation(); text != "" {
		return text
	}
	return msg.GetExtendedTextMessage().GetText()
}

// RemoteMedia implements remote.MediaCarrier: the file, location, contact
// cards or poll of the message, from the message alone. Poll votes are not
// media.
func (e *messageEvent) RemoteMedia() []remote.Media {
	msg := e.Data.Message
	if e.Type == bridgev2.RemoteEventEdit || msg == nil || wamedia.Unwrap(msg).GetPollUpdateMessage() != nil {
		return nil
	}
	base := remote.Media{Direction: remote.MediaInbound, Login: e.client.login, PortalKey: e.GetPortalKey(), Size: -1}
	if e.Data.Info.IsFromMe {
		base.Direction = remote.MediaOutbound
	} else {
		base.Remote = e.GetSender().Sender
	}
	if f := wamedia.FileOf(msg); f != nil {
		m := base
		m.Kind, m.MIME, m.Size, m.Name = f.Kind, f.MIMEType(), f.Size, f.FileName()
		return []remote.Media{m}
	}
	if wamedia.LocationContent(msg) != nil {
		m := base
		m.Kind = remote.MediaLocation
		return []remote.Media{m}
	}
	if cards := wamedia.ContactCards(msg); len(cards) > 0 {
		out := make([]remote.Media, 0, len(cards))
		for _, card := range cards {
			m := base
			m.Kind, m.MIME, m.Size, m.Name = remote.MediaContact, "text/vcard", int64(len(card.VCard)), card.Name
			out = append(out, m)
		}
		return out
	}
	if _, _, isPoll := wamedia.PollStart(msg); isPoll {
		m := base
		m.Kind = remote.MediaPoll
		return []remote.Media{m}
	}
	return nil
}

// describe fills what the gate reads of the event, from the device store
// and the names the connector has seen: no network I/O.
func (b *heldBase) describe(ctx context.Context, sender bridgev2.EventSender) {
	cl := b.client
	b.chatDesc = cl.cachedChat(ctx, b.chat)
	if !sender.IsFromMe {
		if ident, err := cl.DescribeRemoteUser(ctx, sender.Sender); err == nil {
			b.senderDesc = ident
		}
	}
}

// RemoteChat implements remote.Described.
func (b *heldBase) RemoteChat() remote.Chat { return b.chatDesc }

// RemoteSender implements remote.Described.
func (b *heldBase) RemoteSender() remote.Identity { return b.senderDesc }

// heldPayload is a held message: the message protobuf and what whatsmeow
// told about it, with the chat and sender the portal saw, so that it is
// delivered to the same portal, from the same ghost, at its original time.
type heldPayload struct {
	Version      int       `json:"v"`
	Login        string    `json:"login"`
	Message      []byte    `json:"message"` // waE2E.Message
	Chat         string    `json:"chat"`
	Sender       string    `json:"sender"`
	SenderAlt    string    `json:"sender_alt,omitempty"`
	RecipientAlt string    `json:"recipient_alt,omitempty"`
	PortalChat   string    `json:"portal_chat"`
	PortalSender string    `json:"portal_sender"`
	ID           string    `json:"id"`
	Timestamp    time.Time `json:"ts"`
	PushName     string    `json:"push_name,omitempty"`
	IsFromMe     bool      `json:"from_me,omitempty"`
	IsGroup      bool      `json:"is_group,omitempty"`
}

const heldPayloadVersion = 1

// HoldPayload implements remote.Holdable.
func (b *heldBase) HoldPayload() ([]byte, error) {
	raw, err := proto.Marshal(b.data.Message)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal whatsapp message: %w", err)
	}
	info := &b.data.Info
	return json.Marshal(heldPayload{
		Version:      heldPayloadVersion,
		Login:        string(b.client.login.ID),
		Message:      raw,
		Chat:         info.Chat.String(),
		Sender:       info.Sender.String(),
		SenderAlt:    jidString(info.SenderAlt),
		RecipientAlt: jidString(info.RecipientAlt),
		PortalChat:   b.chat.String(),
		PortalSender: b.sender.String(),
		ID:           info.ID,
		Timestamp:    info.Timestamp,
		PushName:     info.PushName,
		IsFromMe:     info.IsFromMe,
		IsGroup:      info.IsGroup,
	})
}

func jidString(jid types.JID) string {
	if jid.IsEmpty() {
		return ""
	}
	return jid.String()
}

// ErrBadHeldPayload is returned (wrapped) for a held payload that this
// connector did not write, or wrote for another login.
var ErrBadHeldPayload = errors.New("malformed held whatsapp event")

// DecodeHeldEvent implements remote.HeldEventDecoder: the message, edit,
// reaction or revoke is rebuilt for the same portal and sender, with its
// original ID and timestamp.
func (cl *Client) DecodeHeldEvent(ctx context.Context, login *bridgev2.UserLogin, payload []byte) (bridgev2.RemoteEvent, error) {
	if login.ID != cl.login.ID {
		return nil, fmt.Errorf("%w: held for login %s, decoded by %s", ErrBadHeldPayload, login.ID, cl.login.ID)
	}
	var p heldPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeldPayload, err)
	} else if p.Version != heldPayloadVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadHeldPayload, p.Version)
	} else if p.Login != string(login.ID) {
		return nil, fmt.Errorf("%w: held for login %s", ErrBadHeldPayload, p.Login)
	}
	msg := &waE2E.Message{}
	if err := proto.Unmarshal(p.Message, msg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeldPayload, err)
	}
	var jids [6]types.JID
	for i, s := range []string{p.Chat, p.Sender, p.SenderAlt, p.RecipientAlt, p.PortalChat, p.PortalSender} {
		if s == "" {
			continue
		}
		jid, err := types.ParseJID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadHeldPayload, err)
		}
		jids[i] = jid
	}
	evt := &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{
				Chat: jids[0], Sender: jids[1], SenderAlt: jids[2], RecipientAlt: jids[3],
				IsFromMe: p.IsFromMe, IsGroup: p.IsGroup,
			},
			ID:        p.ID,
			PushName:  p.PushName,
			Timestamp: p.Timestamp,
		},
		Message:    msg,
		RawMessage: msg,
	}
	cl.rememberPushName(&evt.Info)
	rebuilt, err := cl.remoteEvent(ctx, evt, jids[4], jids[5])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeldPayload, err)
	} else if rebuilt == nil {
		return nil, fmt.Errorf("%w: the message carries nothing to bridge", ErrBadHeldPayload)
	}
	return rebuilt, nil
}
