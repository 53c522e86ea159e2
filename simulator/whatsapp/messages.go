package wasim

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/util/random"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// NewMessageID returns a message ID in the style of the phone apps
// ("3A" and 18 upper-case hex digits).
func NewMessageID() string {
	return "3A" + strings.ToUpper(hex.EncodeToString(random.Bytes(9)))
}

func messageType(msg *waE2E.Message) string {
	switch {
	case msg.ReactionMessage != nil || msg.EncReactionMessage != nil:
		return "reaction"
	case msg.ImageMessage != nil, msg.VideoMessage != nil, msg.AudioMessage != nil,
		msg.DocumentMessage != nil, msg.StickerMessage != nil, msg.ContactMessage != nil,
		msg.LocationMessage != nil:
		return "media"
	case msg.PollCreationMessage != nil, msg.PollUpdateMessage != nil:
		return "poll"
	default:
		return "text"
	}
}

// SendText sends a text message from the phone of account from to account
// to; see SendMessage.
func (s *Server) SendText(ctx context.Context, from, to, text string) (string, error) {
	return s.SendMessage(ctx, from, to, &waE2E.Message{Conversation: proto.String(text)})
}

// SendMessage sends msg from the phone of account from to account to,
// encrypted for each device linked to to's account (a pkmsg for a new
// session, then msg); devices that are offline get it when they next log in.
// Devices linked to from's own account get it as a message sent from the
// phone. A recipient with no linked device receives it on its simulated
// phone (see WaitMessage).
//
// The returned ID is the WhatsApp message ID: the client sees it as
// events.Message Info.ID, and receipts and retry receipts refer to it.
func (s *Server) SendMessage(ctx context.Context, from, to string, msg *waE2E.Message) (string, error) {
	facc, err := s.account(from)
	if err != nil {
		return "", err
	}
	tacc, err := s.account(to)
	if err != nil {
		return "", err
	}
	return s.sendDirect(ctx, facc, tacc, NewMessageID(), s.withTimer(facc.Phone, tacc.Phone, msg), false)
}

// SendUndecryptable sends, from the phone of account from to the devices of
// account to, a message whose ciphertext cannot be decrypted: whatsmeow
// emits events.UndecryptableMessage and sends a retry receipt, which the
// simulated phone answers by re-encrypting text properly, so that the client
// then emits events.Message (with RetryCount 1) for the same ID.
func (s *Server) SendUndecryptable(ctx context.Context, from, to, text string) (string, error) {
	facc, err := s.account(from)
	if err != nil {
		return "", err
	}
	tacc, err := s.account(to)
	if err != nil {
		return "", err
	}
	return s.sendDirect(ctx, facc, tacc, NewMessageID(), &waE2E.Message{Conversation: proto.String(text)}, true)
}

func (s *Server) sendDirect(ctx context.Context, facc, tacc *Account, id string, msg *waE2E.Message, garble bool) (string, error) {
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("failed to marshal message: %w", err)
	}
	dsm, err := proto.Marshal(&waE2E.Message{DeviceSentMessage: &waE2E.DeviceSentMessage{
		DestinationJID: proto.String(tacc.JID.String()),
		Message:        msg,
	}, MessageContextInfo: msg.MessageContextInfo})
	if err != nil {
		return "", fmt.Errorf("failed to marshal message: %w", err)
	}
	now := s.now()
	typ := messageType(msg)
	if err := s.checkContent(facc.Phone, tacc.Phone, msg, now); err != nil {
		return "", err
	}
	s.rec.addSent(Message{ID: id, From: facc.Phone, To: tacc.Phone, Timestamp: now, Message: msg})
	s.mu.Lock()
	facc.sent[id] = &sentMessage{plaintext: plaintext, to: tacc.Phone, msgType: typ}
	targets := tacc.linkedDevicesLocked()
	own := facc.linkedDevicesLocked()
	s.mu.Unlock()
	if len(targets) == 0 {
		_ = s.rec.addMessage(Message{ID: id, From: facc.Phone, To: tacc.Phone, Timestamp: now, Message: msg})
	}
	for _, d := range targets {
		encType, ct, err := facc.encryptTo(ctx, tacc, d, plaintext)
		if err != nil {
			return "", err
		}
		if garble {
			encType, ct = "msg", append([]byte{0x01}, random.Bytes(40)...)
		}
		s.pushToDevice(d, facc.messageNode(id, typ, now, encType, ct, waBinary.Attrs{"from": facc.JID, "sender_lid": facc.LID}))
	}
	for _, d := range own {
		encType, ct, err := facc.encryptTo(ctx, facc, d, dsm)
		if err != nil {
			return "", err
		}
		s.pushToDevice(d, facc.messageNode(id, typ, now, encType, ct, waBinary.Attrs{"from": facc.JID, "recipient": tacc.JID}))
	}
	return id, nil
}

func (a *Account) messageNode(id, typ string, t time.Time, encType string, ct []byte, attrs waBinary.Attrs, extra ...waBinary.Node) waBinary.Node {
	attrs["id"] = id
	attrs["type"] = typ
	attrs["t"] = t.Unix()
	if a.PushName != "" {
		attrs["notify"] = a.PushName
	}
	content := []waBinary.Node{{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType}, Content: ct}}
	return waBinary.Node{Tag: "message", Attrs: attrs, Content: append(content, extra...)}
}

// handleClientMessage handles a message a linked client sends: it is acked,
// decrypted by the simulated phones it is addressed to, and relayed to other
// linked devices.
func (s *Server) handleClientMessage(c *conn, node *waBinary.Node) {
	acc, dev := s.loggedIn(c)
	if acc == nil {
		return
	}
	ag := node.AttrGetter()
	id := ag.OptionalString("id")
	to, _ := node.Attrs["to"].(types.JID)
	now := s.now()
	// The ack goes once the simulated phones have read the message: an
	// edit past the window or a revoke the sender may not make is refused
	// in it, as WhatsApp's server refuses them.
	var refused error
	defer func() {
		ack := waBinary.Attrs{"class": "message", "id": id, "from": to, "t": now.Unix()}
		if refused != nil {
			ack["error"] = refusedCode
			c.log.Debug().Err(refused).Str("message_id", id).Msg("Refused a client's message")
		}
		_ = c.send(waBinary.Node{Tag: "ack", Attrs: ack})
	}()
	ctx := context.Background()
	senderAddr := acc.signalAddress(dev.id)
	typ := ag.OptionalString("type")
	if typ == "" {
		typ = "text"
	}
	isGroup := to.Server == types.GroupServer
	var group *Group
	if isGroup {
		s.mu.Lock()
		group = s.groups[to.User]
		s.mu.Unlock()
		if group == nil {
			return
		}
	}
	var skmsg *waBinary.Node
	for _, child := range node.GetChildren() {
		if child.Tag == "enc" && child.AttrGetter().OptionalString("type") == "skmsg" {
			skmsg = &child
		}
	}
	// Pairwise ciphertexts: under <participants>, or a single <enc> for a
	// resend to one device (retry).
	type delivery struct {
		jid types.JID
		enc waBinary.Node
	}
	var deliveries []delivery
	for _, p := range childrenOf(*node, "participants") {
		jid, ok := p.Attrs["jid"].(types.JID)
		if p.Tag == "to" && ok {
			deliveries = append(deliveries, delivery{jid, p.GetChildByTag("enc")})
		}
	}
	if len(deliveries) == 0 && !isGroup {
		for _, child := range node.GetChildren() {
			if child.Tag == "enc" && child.AttrGetter().OptionalString("type") != "skmsg" {
				deliveries = append(deliveries, delivery{to, child})
			}
		}
	}
	recorded := false
	record := func(recipient string, msg *waE2E.Message) {
		if recorded || refused != nil || isEmptyMessage(msg) {
			return
		}
		chat := recipient
		if isGroup {
			chat = to.String()
		}
		if refused = s.checkContent(acc.Phone, chat, msg, now); refused != nil {
			return
		}
		recorded = true
		if !isGroup {
			s.handleClientTimer(acc.Phone, recipient, msg)
		}
		m := Message{ID: id, From: acc.Phone, To: recipient, Timestamp: now, Message: msg}
		if isGroup {
			m.To, m.Group = to.String(), true
		}
		if !s.rec.addMessage(m) {
			c.log.Debug().Str("message_id", id).Msg("Simulated phone dropped a message it already had")
		}
	}
	for _, d := range deliveries {
		target := s.accountByJID(d.jid)
		if target == nil {
			continue
		}
		encType := d.enc.AttrGetter().OptionalString("type")
		ct, _ := d.enc.Content.([]byte)
		if d.jid.Device != 0 {
			s.relay(target, d.jid.Device, acc, dev, id, typ, now, to, group, d.enc, skmsg)
			continue
		}
		plaintext, err := target.decryptFrom(ctx, senderAddr, encType, ct)
		if err != nil {
			c.log.Warn().Err(err).Str("message_id", id).Str("recipient", d.jid.String()).Msg("Simulated phone failed to decrypt message")
			continue
		}
		var msg waE2E.Message
		if err = proto.Unmarshal(plaintext, &msg); err != nil {
			c.log.Warn().Err(err).Str("message_id", id).Msg("Failed to parse decrypted message")
			continue
		}
		if skdm := msg.GetSenderKeyDistributionMessage(); isGroup && skdm != nil {
			target.processSKDM(ctx, to, senderAddr, skdm.GetAxolotlSenderKeyDistributionMessage())
		}
		if target == acc && msg.DeviceSentMessage == nil {
			s.handlePeerMessage(acc, dev, &msg) // a request to the own phone
		}
		if target == acc || msg.DeviceSentMessage != nil {
			continue // the sender's own phone gets a copy: nothing to record
		}
		if !isGroup {
			record(target.Phone, &msg)
		} else if !isEmptyMessage(&msg) {
			record(target.Phone, &msg) // a retry carries the whole message pairwise
		}
	}
	if isGroup && skmsg != nil {
		ct, _ := skmsg.Content.([]byte)
		for _, member := range s.groupMembers(group) {
			if member == acc {
				continue
			}
			plaintext, err := member.decryptGroup(ctx, to, senderAddr, ct)
			if err != nil {
				c.log.Debug().Err(err).Str("member", member.Phone).Msg("Member cannot decrypt group message")
				continue
			}
			var msg waE2E.Message
			if proto.Unmarshal(plaintext, &msg) == nil {
				record(member.Phone, &msg)
			}
		}
	}
}

func isEmptyMessage(msg *waE2E.Message) bool {
	clone := proto.Clone(msg).(*waE2E.Message)
	clone.SenderKeyDistributionMessage = nil
	clone.MessageContextInfo = nil
	return proto.Size(clone) == 0
}

// relay forwards a client's ciphertext to another linked device.
func (s *Server) relay(target *Account, devID uint16, sender *Account, sdev *companion, id, typ string, t time.Time, to types.JID, group *Group, enc waBinary.Node, skmsg *waBinary.Node) {
	s.mu.Lock()
	d := target.devices[devID]
	s.mu.Unlock()
	if d == nil || d == sdev {
		return
	}
	ct, _ := enc.Content.([]byte)
	attrs := waBinary.Attrs{}
	switch {
	case group != nil:
		attrs["from"] = group.JID
		attrs["participant"] = sender.deviceJID(sdev.id)
		attrs["participant_lid"] = sender.deviceLID(sdev.id)
	case target == sender:
		attrs["from"] = sender.deviceJID(sdev.id)
		attrs["recipient"] = to
	default:
		attrs["from"] = sender.deviceJID(sdev.id)
		attrs["sender_lid"] = sender.deviceLID(sdev.id)
	}
	var extra []waBinary.Node
	if skmsg != nil {
		extra = append(extra, *skmsg)
	}
	s.pushToDevice(d, sender.messageNode(id, typ, t, enc.AttrGetter().OptionalString("type"), ct, attrs, extra...))
}

func (a *Account) processSKDM(ctx context.Context, group types.JID, sender *protocol.SignalAddress, raw []byte) {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	skdm, err := protocol.NewSenderKeyDistributionMessageFromBytes(raw, pbSerializer.SenderKeyDistributionMessage)
	if err != nil {
		return
	}
	builder := groups.NewGroupSessionBuilder(a.dev, pbSerializer)
	_ = builder.Process(ctx, protocol.NewSenderKeyName(group.String(), sender), skdm)
}

func (a *Account) decryptGroup(ctx context.Context, group types.JID, sender *protocol.SignalAddress, ct []byte) ([]byte, error) {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	msg, err := protocol.NewSenderKeyMessageFromBytes(ct, pbSerializer.SenderKeyMessage)
	if err != nil {
		return nil, err
	}
	builder := groups.NewGroupSessionBuilder(a.dev, pbSerializer)
	name := protocol.NewSenderKeyName(group.String(), sender)
	plaintext, err := groups.NewGroupCipher(builder, name, a.dev).Decrypt(ctx, msg)
	if err != nil {
		return nil, err
	}
	return unpadMessage(plaintext)
}

// senderKeyDistribution returns the distribution message of a's sender key
// for a group, creating the key if needed.
func (a *Account) senderKeyDistribution(ctx context.Context, group types.JID) ([]byte, error) {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	builder := groups.NewGroupSessionBuilder(a.dev, pbSerializer)
	dist, err := builder.Create(ctx, protocol.NewSenderKeyName(group.String(), a.signalAddress(0)))
	if err != nil {
		return nil, fmt.Errorf("failed to create sender key: %w", err)
	}
	return dist.Serialize(), nil
}

// encryptGroup encrypts for a group with a's sender key and returns the
// skmsg ciphertext and the distribution message for it.
func (a *Account) encryptGroup(ctx context.Context, group types.JID, plaintext []byte) (ct, skdm []byte, err error) {
	a.sigMu.Lock()
	defer a.sigMu.Unlock()
	builder := groups.NewGroupSessionBuilder(a.dev, pbSerializer)
	name := protocol.NewSenderKeyName(group.String(), a.signalAddress(0))
	dist, err := builder.Create(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create sender key: %w", err)
	}
	msg, err := groups.NewGroupCipher(builder, name, a.dev).Encrypt(ctx, padMessage(plaintext))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to encrypt group message: %w", err)
	}
	return msg.SignedSerialize(), dist.Serialize(), nil
}

// handleClientReceipt records a client's receipt and answers retry receipts
// for messages sent by simulated phones.
func (s *Server) handleClientReceipt(c *conn, node *waBinary.Node) {
	acc, dev := s.loggedIn(c)
	if acc == nil {
		return
	}
	ag := node.AttrGetter()
	id := ag.OptionalString("id")
	to, _ := node.Attrs["to"].(types.JID)
	typ := types.ReceiptType(ag.OptionalString("type"))
	ack := waBinary.Attrs{"class": "receipt", "id": id, "from": to}
	if typ != "" {
		ack["type"] = string(typ)
	}
	_ = c.send(waBinary.Node{Tag: "ack", Attrs: ack})
	ids := []string{id}
	for _, item := range childrenOf(*node, "list") {
		if itemID, ok := item.Attrs["id"].(string); ok {
			ids = append(ids, itemID)
		}
	}
	rc := Receipt{From: acc.Phone, Type: typ, IDs: ids, Timestamp: s.now()}
	if to.Server == types.GroupServer {
		rc.Chat = to.String()
		if p, ok := node.Attrs["participant"].(types.JID); ok {
			if pacc := s.accountByJID(p); pacc != nil {
				rc.Participant = pacc.Phone
			}
		}
	} else if tacc := s.accountByJID(to); tacc != nil {
		rc.Chat = tacc.Phone
	} else {
		rc.Chat = to.User
	}
	s.rec.addReceipt(rc)
	if typ != types.ReceiptTypeRetry && typ != types.ReceiptTypeServerError {
		// The device's receipt is what tells the server a message reached
		// it: the server sends it no more (whatsmeow answers a message with
		// a receipt, other stanzas with an <ack>).
		for _, mid := range ids {
			s.acked(dev, mid)
		}
	}
	switch typ {
	case types.ReceiptTypeRetry:
		if err := s.answerRetry(context.Background(), acc, dev, node); err != nil {
			c.log.Debug().Err(err).Str("message_id", id).Msg("Not answering retry receipt")
		}
	case types.ReceiptTypeServerError:
		if err := s.answerMediaRetry(acc, dev, node); err != nil {
			c.log.Debug().Err(err).Str("message_id", id).Msg("Media retry answered with an error")
		}
	}
}

// answerRetry re-encrypts a message a simulated phone sent, for the device
// that could not decrypt it.
func (s *Server) answerRetry(ctx context.Context, acc *Account, dev *companion, node *waBinary.Node) error {
	to, _ := node.Attrs["to"].(types.JID)
	sender := s.accountByJID(to)
	if p, ok := node.Attrs["participant"].(types.JID); ok && to.Server == types.GroupServer {
		sender = s.accountByJID(p)
	}
	if sender == nil {
		return ErrNoAccount
	}
	retry := node.GetChildByTag("retry")
	id := retry.AttrGetter().OptionalString("id")
	count := retry.AttrGetter().OptionalInt("count")
	s.mu.Lock()
	sent := sender.sent[id]
	s.mu.Unlock()
	if sent == nil {
		return ErrNoSuchMessage
	}
	if keysNode, ok := node.GetOptionalChildByTag("keys"); ok {
		if bundle := bundleFromRetry(node, keysNode, dev.id); bundle != nil {
			if err := sender.resetSession(ctx, acc, dev.id, bundle); err != nil {
				return err
			}
		}
	}
	plaintext := sent.plaintext
	attrs := waBinary.Attrs{"from": sender.JID, "sender_lid": sender.LID}
	if !sent.group.IsEmpty() {
		// Resend pairwise with a fresh sender key distribution attached.
		var msg waE2E.Message
		if err := proto.Unmarshal(sent.plaintext, &msg); err != nil {
			return err
		}
		skdm, err := sender.senderKeyDistribution(ctx, sent.group)
		if err != nil {
			return err
		}
		msg.SenderKeyDistributionMessage = &waE2E.SenderKeyDistributionMessage{
			GroupID:                             proto.String(sent.group.String()),
			AxolotlSenderKeyDistributionMessage: skdm,
		}
		if plaintext, err = proto.Marshal(&msg); err != nil {
			return err
		}
		attrs = waBinary.Attrs{"from": sent.group, "participant": sender.JID, "participant_lid": sender.LID}
	}
	encType, ct, err := sender.encryptTo(ctx, acc, dev, plaintext)
	if err != nil {
		return err
	}
	out := sender.messageNode(id, sent.msgType, time.Now(), encType, ct, attrs)
	out.GetChildren()[0].Attrs["count"] = count
	s.pushToDevice(dev, out)
	return nil
}

// SendReceipt pushes a receipt from account from to the linked devices of
// the account that sent the messages: to is that account's phone for a
// direct chat, or a group JID (the messages' sender is then looked up among
// recorded messages). typ is "" for delivered, types.ReceiptTypeRead, ….
func (s *Server) SendReceipt(ctx context.Context, from, to string, typ types.ReceiptType, ids ...string) error {
	facc, err := s.account(from)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("no message IDs given")
	}
	attrs := waBinary.Attrs{"id": ids[0], "t": s.now().Unix()}
	if typ != "" {
		attrs["type"] = string(typ)
	}
	var recipient *Account
	if strings.HasSuffix(to, "@"+types.GroupServer) {
		gjid, err := types.ParseJID(to)
		if err != nil {
			return err
		}
		attrs["from"], attrs["participant"] = gjid, facc.JID
		for _, m := range s.Messages() {
			if m.ID == ids[0] && m.To == to {
				recipient, _ = s.Account(m.From)
			}
		}
		if recipient == nil {
			return fmt.Errorf("%w: %s in %s", ErrNoSuchMessage, ids[0], to)
		}
	} else {
		if recipient, err = s.account(to); err != nil {
			return err
		}
		attrs["from"] = facc.JID
	}
	node := waBinary.Node{Tag: "receipt", Attrs: attrs}
	if len(ids) > 1 {
		items := make([]waBinary.Node, 0, len(ids)-1)
		for _, id := range ids[1:] {
			items = append(items, waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"id": id}})
		}
		node.Content = []waBinary.Node{{Tag: "list", Content: items}}
	}
	s.mu.Lock()
	devs := recipient.linkedDevicesLocked()
	s.mu.Unlock()
	if len(devs) == 0 {
		return ErrNoDevice
	}
	for _, d := range devs {
		s.pushToDevice(d, node)
	}
	return ctx.Err()
}
