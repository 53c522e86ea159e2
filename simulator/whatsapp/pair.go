package wasim

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/util/random"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/pbkdf2"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
)

// qrRefCount is how many QR refs the server hands out per pairing attempt;
// whatsmeow shows the first for 60 s and each further one for 20 s.
const qrRefCount = 6

// qrRef is a pairing ref offered to a connection, valid until the client
// stops showing it: the first for 60 s, each next one for 20 s more, as
// whatsmeow's QR channel shows them.
type qrRef struct {
	conn    *conn
	expires time.Time
}

func qrRefLifetime(i int) time.Duration {
	return 60*time.Second + time.Duration(i)*20*time.Second
}

const pairTimeout = 30 * time.Second

// login handles a connection right after the Noise handshake.
func (s *Server) login(c *conn) {
	if c.payload.GetDevicePairingData() != nil {
		s.offerQR(c)
		return
	}
	phone := strconv.FormatUint(c.payload.GetUsername(), 10)
	devID := uint16(c.payload.GetDevice())
	s.mu.Lock()
	acc := s.accounts[phone]
	var dev *companion
	if acc != nil {
		dev = acc.devices[devID]
	}
	if dev == nil || dev.noisePub != c.clientStatic {
		s.mu.Unlock()
		c.log.Debug().Str("device", phone+":"+strconv.Itoa(int(devID))).Msg("Rejecting login of unknown device")
		_ = c.send(waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": "401", "location": "wasim"}})
		c.closeAfter(s.cfg.StreamErrorCloseDelay)
		return
	}
	old := dev.conn
	dev.conn = c
	c.account, c.device = acc, dev
	s.mu.Unlock()
	if old != nil && old != c {
		old.streamError("", "replaced", true)
	}
	_ = c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t":        time.Now().Unix(),
		"lid":      acc.deviceLID(devID),
		"location": "wasim",
		"creation": time.Now().Unix(),
	}})
	// Deliver what arrived while the device was offline (a preview of its
	// size first, each stanza marked offline), then go live.
	count := 0
	// Messages an earlier connection never acknowledged come first.
	s.mu.Lock()
	dev.pending = append(dev.unacked, dev.pending...)
	dev.unacked = nil
	preview := offlinePreview(dev.pending)
	s.mu.Unlock()
	history := false
	_ = c.send(waBinary.Node{Tag: "ib", Attrs: waBinary.Attrs{"from": serverJID()}, Content: []waBinary.Node{preview}})
	for {
		s.mu.Lock()
		pending := dev.pending
		dev.pending = nil
		if len(pending) == 0 {
			c.ready = true
			history = dev.historyDue
			dev.historyDue = false
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		for _, n := range pending {
			if err := s.sendToDevice(dev, c, markOffline(n, count)); err != nil {
				return
			}
			count++
		}
	}
	_ = c.send(waBinary.Node{Tag: "ib", Attrs: waBinary.Attrs{"from": serverJID()}, Content: []waBinary.Node{
		{Tag: "offline", Attrs: waBinary.Attrs{"count": count}},
	}})
	if history {
		// The phone sends the history once the new device is in.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.sendHistorySync(s.ctx, acc, dev); err != nil {
				s.log.Warn().Err(err).Msg("Failed to send the history sync")
			}
		}()
	}
}

// offlinePreview is the <offline_preview> of a device's offline queue: how
// many stanzas of each kind it is about to get (whatsmeow's
// events.OfflineSyncPreview).
func offlinePreview(queue []waBinary.Node) waBinary.Node {
	var msgs, notes, receipts int
	for _, n := range queue {
		switch n.Tag {
		case "message":
			msgs++
		case "notification":
			notes++
		case "receipt":
			receipts++
		}
	}
	return waBinary.Node{Tag: "offline_preview", Attrs: waBinary.Attrs{
		"count": len(queue), "message": msgs, "notification": notes, "receipt": receipts, "appdata": 0,
	}}
}

// markOffline is node with the offline attribute the server puts on what
// it delivers from the offline queue (its index in the queue).
func markOffline(node waBinary.Node, index int) waBinary.Node {
	attrs := make(waBinary.Attrs, len(node.Attrs)+1)
	maps.Copy(attrs, node.Attrs)
	attrs["offline"] = strconv.Itoa(index)
	node.Attrs = attrs
	return node
}

// offerQR sends the pair-device IQ that makes the client emit events.QR.
func (s *Server) offerQR(c *conn) {
	refs := make([]waBinary.Node, qrRefCount)
	now := time.Now()
	s.mu.Lock()
	for i := range refs {
		ref := "2@" + base64.StdEncoding.EncodeToString(random.Bytes(24))
		s.qrRefs[ref] = qrRef{conn: c, expires: now.Add(qrRefLifetime(i))}
		refs[i] = waBinary.Node{Tag: "ref", Content: []byte(ref)}
	}
	s.mu.Unlock()
	err := c.sendIQ(waBinary.Node{Attrs: waBinary.Attrs{"type": "set", "xmlns": "md"}, Content: []waBinary.Node{
		{Tag: "pair-device", Content: refs},
	}}, func(*waBinary.Node) {})
	if err != nil {
		c.log.Debug().Err(err).Msg("Failed to send pair-device")
	}
}

// ScanQR simulates the phone of an existing account scanning a QR code shown
// by a client (the string of events.QR). It returns once the client has
// accepted the device identity; the client then reconnects by itself and logs
// in (events.PairSuccess, then events.Connected).
func (s *Server) ScanQR(ctx context.Context, phone, qrCode string) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	parts := strings.Split(qrCode, ",")
	if len(parts) != 4 {
		return fmt.Errorf("malformed QR code: %d fields", len(parts))
	}
	var fields [3][]byte
	for i, p := range parts[1:] {
		if fields[i], err = base64.StdEncoding.DecodeString(p); err != nil {
			return fmt.Errorf("malformed QR code field %d: %w", i+2, err)
		}
	}
	noisePub, identityPub, advSecret := fields[0], fields[1], fields[2]
	s.mu.Lock()
	r, ok := s.qrRefs[parts[0]]
	expired := ok && time.Now().After(r.expires)
	if ok && !expired {
		for ref, other := range s.qrRefs {
			if other.conn == r.conn {
				delete(s.qrRefs, ref)
			}
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return ErrUnknownQR
	case expired:
		return ErrExpiredQR
	}
	c := r.conn
	reg := c.payload.GetDevicePairingData()
	if !bytes.Equal(noisePub, c.clientStatic[:]) || !bytes.Equal(identityPub, reg.GetEIdent()) {
		return fmt.Errorf("QR code keys do not match the connection that showed it")
	}
	return s.pairDevice(ctx, c, acc, [32]byte(identityPub), advSecret)
}

// pairDevice sends pair-success to a client that proved it holds identityPub
// and advSecret, waits for its signed device identity, registers the device
// and asks the client to reconnect (stream error 515).
func (s *Server) pairDevice(ctx context.Context, c *conn, acc *Account, identityPub [32]byte, advSecret []byte) error {
	reg := c.payload.GetDevicePairingData()
	if len(identityPub) != 32 || len(reg.GetESkeyVal()) != 32 || len(reg.GetESkeySig()) != 64 || len(reg.GetERegid()) != 4 {
		return fmt.Errorf("client registration data is incomplete")
	}
	s.mu.Lock()
	devID := acc.nextDevice
	acc.nextDevice++
	acc.keyIndex++
	keyIndex := acc.keyIndex
	s.mu.Unlock()

	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:       proto.Uint32(uint32(devID)),
		Timestamp:   proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:    proto.Uint32(keyIndex),
		AccountType: waAdv.ADVEncryptionType_E2EE.Enum(),
		DeviceType:  waAdv.ADVEncryptionType_E2EE.Enum(),
	})
	if err != nil {
		return err
	}
	accountKey := acc.identityPub()
	msg := bytes.Join([][]byte{whatsmeow.AdvAccountSignaturePrefix, details, identityPub[:]}, nil)
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*acc.dev.IdentityKey.Priv), msg)
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: accountKey[:],
		AccountSignature:    sig[:],
	})
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	container, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})
	if err != nil {
		return err
	}

	result := make(chan error, 1)
	err = c.sendIQ(waBinary.Node{Attrs: waBinary.Attrs{"type": "set", "xmlns": "md"}, Content: []waBinary.Node{{
		Tag: "pair-success",
		Content: []waBinary.Node{
			{Tag: "device-identity", Attrs: waBinary.Attrs{"key-index": keyIndex}, Content: container},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": "smba"}},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": acc.deviceJID(devID), "lid": acc.deviceLID(devID)}},
		},
	}}}, func(resp *waBinary.Node) {
		result <- checkDeviceSign(resp, identityPub, accountKey)
	})
	if err != nil {
		return fmt.Errorf("failed to send pair-success: %w", err)
	}
	timer := time.NewTimer(pairTimeout)
	defer timer.Stop()
	select {
	case err = <-result:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return fmt.Errorf("client disconnected during pairing")
	case <-timer.C:
		return fmt.Errorf("client did not confirm pairing in %s", pairTimeout)
	}
	if err != nil {
		return err
	}
	skeyID := binary.BigEndian.Uint32(append([]byte{0}, reg.GetESkeyID()...))
	dev := &companion{
		id:          devID,
		noisePub:    c.clientStatic,
		identityPub: identityPub,
		regID:       binary.BigEndian.Uint32(reg.GetERegid()),
		historyDue:  !s.cfg.NoHistorySync,
		signedPre: &keys.PreKey{
			KeyPair:   keys.KeyPair{Pub: (*[32]byte)(reg.GetESkeyVal())},
			KeyID:     skeyID,
			Signature: (*[64]byte)(reg.GetESkeySig()),
		},
	}
	s.mu.Lock()
	acc.devices[devID] = dev
	s.mu.Unlock()
	s.log.Debug().Str("device", acc.deviceJID(devID).String()).Msg("Device paired")
	// Ask the client to reconnect. The socket stays open: the client closes
	// it itself (closing it here races with the client's reconnect).
	c.streamError("515", "", false)
	return nil
}

func checkDeviceSign(resp *waBinary.Node, identityPub, accountKey [32]byte) error {
	if resp.AttrGetter().OptionalString("type") != "result" {
		return fmt.Errorf("%w: %s", ErrPairingRejected, resp.XMLString())
	}
	raw, ok := resp.GetChildByTag("pair-device-sign", "device-identity").Content.([]byte)
	if !ok {
		return fmt.Errorf("pair-device-sign has no device identity")
	}
	var signed waAdv.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(raw, &signed); err != nil {
		return fmt.Errorf("failed to parse signed device identity: %w", err)
	} else if len(signed.DeviceSignature) != 64 {
		return fmt.Errorf("device signature has %d bytes", len(signed.DeviceSignature))
	}
	msg := bytes.Join([][]byte{whatsmeow.AdvDeviceSignaturePrefix, signed.Details, identityPub[:], accountKey[:]}, nil)
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey(identityPub), msg, [64]byte(signed.DeviceSignature)) {
		return fmt.Errorf("invalid device signature")
	}
	return nil
}

// codePairing is a pending pairing-code request (PairPhone on the client).
type codePairing struct {
	conn       *conn
	phone      string
	ref        string
	wrappedEph []byte
	attempt    *codeAttempt
}

type codeAttempt struct {
	acc             *Account
	phoneEph        *keys.KeyPair
	companionEphPub []byte
	result          chan error
}

var linkCodeKDF = func(code string, salt []byte) []byte {
	return pbkdf2.Key([]byte(code), salt, 2<<16, 32, sha256.New)
}

func ctrXOR(key, iv, data []byte) []byte {
	block, _ := aes.NewCipher(key)
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out
}

// handleLinkCode answers link_code_companion_reg IQs (pairing-code login).
func (s *Server) handleLinkCode(c *conn, iq *waBinary.Node, reg waBinary.Node) {
	ag := reg.AttrGetter()
	phone := ag.OptionalJIDOrEmpty("jid").User
	switch ag.OptionalString("stage") {
	case "companion_hello":
		wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
		if len(wrapped) != 80 || phone == "" {
			c.iqError(iq, 400, "bad-request")
			return
		}
		s.mu.Lock()
		if s.accounts[phone] == nil {
			s.mu.Unlock()
			c.iqError(iq, 404, "item-not-found")
			return
		}
		ref := hex.EncodeToString(random.Bytes(16))
		s.codePairs[phone] = &codePairing{conn: c, phone: phone, ref: ref, wrappedEph: wrapped}
		s.mu.Unlock()
		c.iqResult(iq, waBinary.Node{Tag: "link_code_companion_reg", Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(ref)},
		}})
	case "companion_finish":
		s.mu.Lock()
		cp := s.codePairs[phone]
		var at *codeAttempt
		if cp != nil && cp.conn == c {
			at, cp.attempt = cp.attempt, nil
		}
		s.mu.Unlock()
		if at == nil {
			c.iqError(iq, 400, "bad-request")
			return
		}
		identityPub, advSecret, err := finishCodePairing(at, reg)
		if err != nil {
			c.iqError(iq, 401, "not-authorized")
			at.result <- err
			return
		}
		c.iqResult(iq)
		s.mu.Lock()
		delete(s.codePairs, phone)
		s.mu.Unlock()
		go func() {
			at.result <- s.pairDevice(c.ctx, c, at.acc, identityPub, advSecret)
		}()
	default:
		c.iqError(iq, 400, "bad-request")
	}
}

func finishCodePairing(at *codeAttempt, reg waBinary.Node) (identityPub [32]byte, advSecret []byte, err error) {
	wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
	companionIdentity, _ := reg.GetChildByTag("companion_identity_public").Content.([]byte)
	if len(wrapped) < 32+12+16 || len(companionIdentity) != 32 {
		return identityPub, nil, fmt.Errorf("malformed companion_finish")
	}
	shared, err := curve25519.X25519(at.phoneEph.Priv[:], at.companionEphPub)
	if err != nil {
		return identityPub, nil, ErrWrongCode
	}
	bundleKey := hkdfutil.SHA256(shared, wrapped[:32], []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, _ := aes.NewCipher(bundleKey)
	gcm, _ := cipher.NewGCM(block)
	bundle, err := gcm.Open(nil, wrapped[32:44], wrapped[44:], nil)
	if err != nil || len(bundle) != 96 {
		// The companion derived another secret: the code entered on the
		// phone is not the one the client showed.
		return identityPub, nil, ErrWrongCode
	}
	accountIdentity := at.acc.identityPub()
	if !bytes.Equal(bundle[:32], companionIdentity) || !bytes.Equal(bundle[32:64], accountIdentity[:]) {
		return identityPub, nil, fmt.Errorf("key bundle does not match the identities")
	}
	identityShared, err := curve25519.X25519(at.acc.dev.IdentityKey.Priv[:], companionIdentity)
	if err != nil {
		return identityPub, nil, err
	}
	input := bytes.Join([][]byte{shared, identityShared, bundle[64:96]}, nil)
	return [32]byte(companionIdentity), hkdfutil.SHA256(input, nil, []byte("adv_secret"), 32), nil
}

// EnterPairingCode simulates the user typing, on the phone of account phone,
// the pairing code a client got from PairPhone ("ABCD-EFGH"). A wrong code
// returns ErrWrongCode and links nothing (the client may be given another
// try); a right one pairs the client as ScanQR does.
func (s *Server) EnterPairingCode(ctx context.Context, phone, code string) error {
	acc, err := s.account(phone)
	if err != nil {
		return err
	}
	code = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(code) != 8 {
		return fmt.Errorf("%w: a pairing code has 8 characters", ErrWrongCode)
	}
	s.mu.Lock()
	cp := s.codePairs[acc.Phone]
	s.mu.Unlock()
	if cp == nil {
		return ErrNoPairing
	}
	companionEph := ctrXOR(linkCodeKDF(code, cp.wrappedEph[:32]), cp.wrappedEph[32:48], cp.wrappedEph[48:80])
	phoneEph := keys.NewKeyPair()
	salt, iv := random.Bytes(32), random.Bytes(16)
	wrapped := bytes.Join([][]byte{salt, iv, ctrXOR(linkCodeKDF(code, salt), iv, phoneEph.Pub[:])}, nil)
	at := &codeAttempt{acc: acc, phoneEph: phoneEph, companionEphPub: companionEph, result: make(chan error, 1)}
	s.mu.Lock()
	cp.attempt = at
	s.mu.Unlock()
	identity := acc.identityPub()
	err = cp.conn.send(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": serverJID(), "type": "link_code_companion_reg", "id": cp.conn.newID(), "t": time.Now().Unix(),
	}, Content: []waBinary.Node{{
		Tag:   "link_code_companion_reg",
		Attrs: waBinary.Attrs{"stage": "primary_hello"},
		Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(cp.ref)},
			{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: wrapped},
			{Tag: "primary_identity_pub", Content: identity[:]},
		},
	}}})
	if err != nil {
		return fmt.Errorf("failed to notify client: %w", err)
	}
	timer := time.NewTimer(pairTimeout)
	defer timer.Stop()
	select {
	case err = <-at.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-cp.conn.ctx.Done():
		// The client drops the socket itself after a successful pairing
		// (stream error 515): the result may still be on its way.
		select {
		case err = <-at.result:
			return err
		case <-time.After(time.Second):
			return fmt.Errorf("client disconnected during pairing")
		}
	case <-timer.C:
		return fmt.Errorf("client did not answer the pairing code in %s", pairTimeout)
	}
}

// PendingPairingCode reports whether a client asked for a pairing code for
// phone and has not been linked yet.
func (s *Server) PendingPairingCode(phone string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.codePairs[normalizePhone(phone)]
	return ok
}
