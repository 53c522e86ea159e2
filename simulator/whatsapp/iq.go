package wasim

import (
	"context"
	"encoding/binary"
	"time"

	"go.mau.fi/libsignal/ecc"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// handleNode routes one node received from a client.
func (s *Server) handleNode(c *conn, node *waBinary.Node) {
	switch node.Tag {
	case "iq":
		s.handleIQ(c, node)
	case "message":
		s.handleClientMessage(c, node)
	case "receipt":
		s.handleClientReceipt(c, node)
	case "ack":
		// A device acknowledged a message it did not take (a nack, or an
		// unknown stanza); one it took, it answers with its receipt
		// (handleClientReceipt). Either way, it is not sent again.
		ag := node.AttrGetter()
		if ag.OptionalString("class") == "message" && c.device != nil {
			s.acked(c.device, ag.OptionalString("id"))
		} else if ag.OptionalString("class") == "notification" && c.device != nil {
			s.mu.Lock()
			delete(c.device.notes, ag.OptionalString("id"))
			s.mu.Unlock()
		}
	case "presence":
		s.handleClientPresence(c, node)
	case "chatstate":
		s.handleClientChatState(c, node)
	default:
		c.log.Debug().Str("tag", node.Tag).Msg("Ignoring node")
	}
}

func (c *conn) iqResult(req *waBinary.Node, content ...waBinary.Node) {
	attrs := waBinary.Attrs{"id": req.Attrs["id"], "type": "result", "from": serverJID()}
	if to, ok := req.Attrs["to"]; ok {
		attrs["from"] = to
	}
	node := waBinary.Node{Tag: "iq", Attrs: attrs}
	if len(content) > 0 {
		node.Content = content
	}
	_ = c.send(node)
}

func (c *conn) iqError(req *waBinary.Node, code int, text string) {
	attrs := waBinary.Attrs{"id": req.Attrs["id"], "type": "error", "from": serverJID()}
	if to, ok := req.Attrs["to"]; ok {
		attrs["from"] = to
	}
	_ = c.send(waBinary.Node{Tag: "iq", Attrs: attrs, Content: []waBinary.Node{
		{Tag: "error", Attrs: waBinary.Attrs{"code": code, "text": text}},
	}})
}

func (s *Server) loggedIn(c *conn) (*Account, *companion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.account, c.device
}

func (s *Server) handleIQ(c *conn, iq *waBinary.Node) {
	ag := iq.AttrGetter()
	typ := ag.OptionalString("type")
	if typ == "result" || typ == "error" {
		if fn := c.takeWaiter(ag.OptionalString("id")); fn != nil {
			fn(iq)
		}
		return
	}
	xmlns := ag.OptionalString("xmlns")
	var child waBinary.Node
	if children := iq.GetChildren(); len(children) > 0 {
		child = children[0]
	}
	// What an unpaired connection may ask.
	switch {
	case xmlns == "w:p":
		c.iqResult(iq)
		return
	case xmlns == "md" && child.Tag == "link_code_companion_reg":
		s.handleLinkCode(c, iq, child)
		return
	}
	acc, dev := s.loggedIn(c)
	if acc == nil {
		c.iqError(iq, 401, "not-authorized")
		return
	}
	switch {
	case xmlns == "passive":
		c.iqResult(iq)
	case xmlns == "encrypt" && typ == "get" && child.Tag == "count":
		s.mu.Lock()
		n := len(dev.preKeys)
		s.mu.Unlock()
		c.iqResult(iq, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": n}})
	case xmlns == "encrypt" && typ == "set" && child.Tag == "registration":
		s.handlePreKeyUpload(c, iq, dev)
	case xmlns == "encrypt" && typ == "get" && child.Tag == "key":
		s.handlePreKeyFetch(c, iq, child)
	case xmlns == "usync":
		s.handleUsync(c, iq, child)
	case xmlns == "privacy" && typ == "get":
		c.iqResult(iq, waBinary.Node{Tag: "privacy", Content: []waBinary.Node{
			{Tag: "category", Attrs: waBinary.Attrs{"name": "readreceipts", "value": "all"}},
			{Tag: "category", Attrs: waBinary.Attrs{"name": "groupadd", "value": "all"}},
		}})
	case xmlns == "md" && child.Tag == "remove-companion-device":
		s.handleLogout(c, iq, acc, dev)
	case xmlns == "w:m" && child.Tag == "media_conn":
		c.iqResult(iq, s.media.mediaConnNode())
	case xmlns == "w:profile:picture":
		s.handlePictureIQ(c, iq, acc, typ, child)
	case xmlns == "w:g2":
		s.handleGroupIQ(c, iq, acc, dev, typ, child)
	case xmlns == "w:mex" && child.Tag == "query":
		s.handleMexIQ(c, iq, acc, dev, child)
	case xmlns == "newsletter":
		s.handleNewsletterIQ(c, iq, child)
	default:
		c.log.Debug().Str("iq", iq.XMLString()).Msg("Unsupported IQ")
		c.iqError(iq, 501, "feature-not-implemented")
	}
}

func bytesChild(n waBinary.Node, tags ...string) []byte {
	b, _ := n.GetChildByTag(tags...).Content.([]byte)
	return b
}

func parsePreKeyNode(n waBinary.Node) *keys.PreKey {
	id, value := bytesChild(n, "id"), bytesChild(n, "value")
	if len(id) != 3 || len(value) != 32 {
		return nil
	}
	pk := &keys.PreKey{KeyPair: keys.KeyPair{Pub: (*[32]byte)(value)}, KeyID: binary.BigEndian.Uint32(append([]byte{0}, id...))}
	if sig := bytesChild(n, "signature"); len(sig) == 64 {
		pk.Signature = (*[64]byte)(sig)
	}
	return pk
}

func preKeyNode(pk *keys.PreKey) waBinary.Node {
	var id [4]byte
	binary.BigEndian.PutUint32(id[:], pk.KeyID)
	node := waBinary.Node{Tag: "key", Content: []waBinary.Node{
		{Tag: "id", Content: id[1:]},
		{Tag: "value", Content: pk.Pub[:]},
	}}
	if pk.Signature != nil {
		node.Tag = "skey"
		node.Content = append(node.GetChildren(), waBinary.Node{Tag: "signature", Content: pk.Signature[:]})
	}
	return node
}

func (s *Server) handlePreKeyUpload(c *conn, iq *waBinary.Node, dev *companion) {
	regID := bytesChild(*iq, "registration")
	identity := bytesChild(*iq, "identity")
	if len(regID) != 4 || len(identity) != 32 {
		c.iqError(iq, 400, "bad-request")
		return
	}
	var uploaded []*keys.PreKey
	for _, n := range childrenOf(*iq, "list") {
		if pk := parsePreKeyNode(n); pk != nil {
			uploaded = append(uploaded, pk)
		}
	}
	signed := parsePreKeyNode(iq.GetChildByTag("skey"))
	s.mu.Lock()
	dev.regID = binary.BigEndian.Uint32(regID)
	dev.identityPub = [32]byte(identity)
	if signed != nil && signed.Signature != nil {
		dev.signedPre = signed
	}
	dev.preKeys = append(dev.preKeys, uploaded...)
	s.mu.Unlock()
	c.iqResult(iq)
}

// handlePreKeyFetch answers <key><user jid=…/></key>: bundles of linked
// devices and of simulated phones (device 0).
func (s *Server) handlePreKeyFetch(c *conn, iq *waBinary.Node, keyNode waBinary.Node) {
	ctx := context.Background()
	var users []waBinary.Node
	for _, u := range keyNode.GetChildren() {
		jid, ok := u.Attrs["jid"].(types.JID)
		if u.Tag != "user" || !ok {
			continue
		}
		users = append(users, s.bundleNode(ctx, jid))
	}
	c.iqResult(iq, waBinary.Node{Tag: "list", Content: users})
}

func (s *Server) bundleNode(ctx context.Context, jid types.JID) waBinary.Node {
	notFound := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: []waBinary.Node{
		{Tag: "error", Attrs: waBinary.Attrs{"code": 404, "text": "item-not-found"}},
	}}
	s.mu.Lock()
	acc := s.accountByJIDLocked(jid)
	if acc == nil {
		s.mu.Unlock()
		return notFound
	}
	var regID uint32
	var identity [32]byte
	var signed, pre *keys.PreKey
	if jid.Device == 0 {
		s.mu.Unlock()
		regID, identity, signed = acc.dev.RegistrationID, acc.identityPub(), acc.dev.SignedPreKey
		var err error
		if pre, err = acc.dev.PreKeys.GenOnePreKey(ctx); err != nil {
			return notFound
		}
	} else {
		d := acc.devices[jid.Device]
		if d == nil {
			s.mu.Unlock()
			return notFound
		}
		regID, identity, signed = d.regID, d.identityPub, d.signedPre
		if len(d.preKeys) > 0 {
			pre, d.preKeys = d.preKeys[0], d.preKeys[1:]
		}
		s.mu.Unlock()
	}
	var reg [4]byte
	binary.BigEndian.PutUint32(reg[:], regID)
	content := []waBinary.Node{
		{Tag: "registration", Content: reg[:]},
		{Tag: "type", Content: []byte{ecc.DjbType}},
		{Tag: "identity", Content: identity[:]},
		preKeyNode(signed),
	}
	if pre != nil {
		content = append(content, preKeyNode(&keys.PreKey{KeyPair: keys.KeyPair{Pub: pre.Pub}, KeyID: pre.KeyID}))
	}
	return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content}
}

// handleUsync answers device-list, contact (is on WhatsApp), LID, status and
// picture queries.
func (s *Server) handleUsync(c *conn, iq *waBinary.Node, usync waBinary.Node) {
	wanted := map[string]bool{}
	for _, q := range childrenOf(usync, "query") {
		wanted[q.Tag] = true
	}
	var users []waBinary.Node
	for _, u := range childrenOf(usync, "list") {
		if u.Tag != "user" {
			continue
		}
		jid, hasJID := u.Attrs["jid"].(types.JID)
		var query []byte
		if !hasJID {
			query = bytesChild(u, "contact")
			jid = types.NewJID(normalizePhone(string(query)), types.DefaultUserServer)
		}
		s.mu.Lock()
		acc := s.accountByJIDLocked(jid)
		var devIDs []uint16
		if acc != nil {
			devIDs = append(devIDs, 0)
			for id, d := range acc.devices {
				// Like WhatsApp, leave out the device that asks.
				if d != c.device {
					devIDs = append(devIDs, id)
				}
			}
		}
		s.mu.Unlock()
		var content []waBinary.Node
		if wanted["contact"] && query != nil {
			typ := "out"
			if acc != nil {
				typ = "in"
			}
			content = append(content, waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": typ}, Content: query})
		}
		if acc == nil {
			users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content})
			continue
		}
		if wanted["devices"] {
			list := make([]waBinary.Node, 0, len(devIDs))
			for _, id := range sortedIDs(devIDs) {
				attrs := waBinary.Attrs{"id": int(id)}
				if id != 0 {
					attrs["key-index"] = int(id)
				}
				list = append(list, waBinary.Node{Tag: "device", Attrs: attrs})
			}
			content = append(content, waBinary.Node{Tag: "devices", Content: []waBinary.Node{
				{Tag: "device-list", Content: list},
				{Tag: "key-index-list", Attrs: waBinary.Attrs{"ts": time.Now().Unix()}},
			}})
		}
		if wanted["lid"] {
			content = append(content, waBinary.Node{Tag: "lid", Attrs: waBinary.Attrs{"val": acc.LID}})
		}
		if wanted["status"] {
			content = append(content, waBinary.Node{Tag: "status", Attrs: waBinary.Attrs{"t": time.Now().Unix()}})
		}
		if wanted["picture"] {
			content = append(content, waBinary.Node{Tag: "picture"})
		}
		if wanted["business"] {
			content = append(content, waBinary.Node{Tag: "business"})
		}
		// Answer with the JID form that was asked for.
		users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid.ToNonAD()}, Content: content})
	}
	attrs := waBinary.Attrs{}
	for k, v := range usync.Attrs {
		attrs[k] = v
	}
	c.iqResult(iq, waBinary.Node{Tag: "usync", Attrs: attrs, Content: []waBinary.Node{
		{Tag: "result"},
		{Tag: "list", Content: users},
	}})
}

func sortedIDs(ids []uint16) []uint16 {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// handleLogout: the client's Logout (remove-companion-device for itself).
func (s *Server) handleLogout(c *conn, iq *waBinary.Node, acc *Account, dev *companion) {
	jid, _ := iq.GetChildByTag("remove-companion-device").Attrs["jid"].(types.JID)
	if jid.User != acc.Phone {
		c.iqError(iq, 403, "forbidden")
		return
	}
	s.mu.Lock()
	target := acc.devices[jid.Device]
	if target != nil {
		delete(acc.devices, jid.Device)
	}
	s.mu.Unlock()
	if target == nil {
		c.iqError(iq, 404, "item-not-found")
		return
	}
	c.iqResult(iq)
	if target != dev && target.conn != nil {
		target.conn.streamError("401", "device_removed", true)
	}
}

// Unpair removes every device linked to the account, as "Log out from all
// devices" on the phone does: connected clients get a device_removed stream
// error (whatsmeow emits events.LoggedOut and deletes its store); offline
// ones are refused with a 401 failure at their next connect
// (events.LoggedOut with OnConnect set).
func (s *Server) Unpair(ctx context.Context, phone string) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	s.mu.Lock()
	devs := acc.linkedDevicesLocked()
	clear(acc.devices)
	s.mu.Unlock()
	if len(devs) == 0 {
		return ErrNoDevice
	}
	for _, d := range devs {
		s.mu.Lock()
		c := d.conn
		s.mu.Unlock()
		if c != nil {
			c.streamError("401", "device_removed", true)
		}
	}
	return ctx.Err()
}

// ReplaceStream sends the account's connected clients the stream error a
// client gets when another connection takes over its session: whatsmeow
// emits events.StreamReplaced and does not reconnect by itself.
func (s *Server) ReplaceStream(phone string) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var conns []*conn
	for _, d := range acc.devices {
		if d.conn != nil {
			conns = append(conns, d.conn)
			d.conn = nil
		}
	}
	s.mu.Unlock()
	if len(conns) == 0 {
		return ErrNoDevice
	}
	for _, c := range conns {
		c.streamError("", "replaced", true)
	}
	return nil
}

// DropConnections closes every client socket at once, with no stream error,
// as a network failure would. whatsmeow reconnects by itself with its stored
// keys; messages it had not acknowledged are sent again at its next login.
// It returns how many sockets were closed.
func (s *Server) DropConnections() int {
	conns := s.connections()
	for _, c := range conns {
		c.close()
	}
	return len(conns)
}

// RestartStreams sends every connected client the stream error WhatsApp
// sends when a server restarts (503) and closes the sockets a little later;
// whatsmeow reconnects by itself. It returns how many clients got it.
func (s *Server) RestartStreams() int {
	conns := s.connections()
	for _, c := range conns {
		c.streamError("503", "", true)
	}
	return len(conns)
}

func (s *Server) connections() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if !c.closed.Load() {
			out = append(out, c)
		}
	}
	return out
}

// Connected reports whether a linked device of the account is online.
func (s *Server) Connected(phone string) bool {
	acc, ok := s.Account(phone)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range acc.devices {
		if d.conn != nil && d.conn.ready {
			return true
		}
	}
	return false
}

// childrenOf returns the children of n's descendant at the tag path.
func childrenOf(n waBinary.Node, tags ...string) []waBinary.Node {
	c := n.GetChildByTag(tags...)
	return c.GetChildren()
}
