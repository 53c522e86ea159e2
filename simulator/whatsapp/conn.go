package wasim

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/keys"
)

const handshakeTimeout = 20 * time.Second

// conn is one client websocket.
type conn struct {
	srv    *Server
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	log    zerolog.Logger

	buf       []byte
	gotHeader bool

	readKey, writeKey cipher.AEAD
	readCounter       uint32
	writeMu           sync.Mutex
	writeCounter      uint32

	clientStatic [32]byte
	payload      *waWa6.ClientPayload

	// Set once logged in (guarded by srv.mu).
	account *Account
	device  *companion
	ready   bool
	// What the client told WhatsApp on this connection: its presence
	// (contacts' presence reaches only an available client) and whose
	// presence it follows.
	available  bool
	subscribed map[string]bool

	waitMu  sync.Mutex
	waiters map[string]func(*waBinary.Node)
	idSeq   atomic.Uint64
	closed  atomic.Bool
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		srv:     s,
		ws:      ws,
		ctx:     ctx,
		cancel:  cancel,
		log:     s.log.With().Str("conn", hex.EncodeToString(random.Bytes(3))).Logger(),
		waiters: map[string]func(*waBinary.Node){},
	}
}

func (c *conn) close() {
	if c.closed.CompareAndSwap(false, true) {
		c.cancel()
		_ = c.ws.CloseNow()
	}
}

// closeAfter closes the socket after a delay, leaving the client time to
// handle what was sent last (a stream error) before it sees the socket drop.
func (c *conn) closeAfter(d time.Duration) {
	go func() {
		select {
		case <-time.After(d):
		case <-c.ctx.Done():
		}
		c.close()
	}()
}

// readFrame returns the next length-prefixed frame from the websocket.
func (c *conn) readFrame(ctx context.Context) ([]byte, error) {
	for {
		frame, ok, err := c.nextFrame()
		if err != nil || ok {
			return frame, err
		}
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		} else if typ != websocket.MessageBinary {
			continue
		}
		c.buf = append(c.buf, data...)
	}
}

// nextFrame takes the connection header (once) and then one complete
// length-prefixed frame off c.buf; ok is false when more bytes are needed.
func (c *conn) nextFrame() (frame []byte, ok bool, err error) {
	if !c.gotHeader {
		if len(c.buf) < len(socket.WAConnHeader) {
			return nil, false, nil
		}
		if !bytes.Equal(c.buf[:len(socket.WAConnHeader)], socket.WAConnHeader) {
			return nil, false, fmt.Errorf("unexpected connection header %x", c.buf[:len(socket.WAConnHeader)])
		}
		c.buf = c.buf[len(socket.WAConnHeader):]
		c.gotHeader = true
	}
	if len(c.buf) < socket.FrameLengthSize {
		return nil, false, nil
	}
	n := int(c.buf[0])<<16 | int(c.buf[1])<<8 | int(c.buf[2])
	if len(c.buf) < socket.FrameLengthSize+n {
		return nil, false, nil
	}
	frame = c.buf[socket.FrameLengthSize : socket.FrameLengthSize+n]
	c.buf = c.buf[socket.FrameLengthSize+n:]
	return frame, true, nil
}

func (c *conn) writeFrame(data []byte) error {
	frame := make([]byte, socket.FrameLengthSize+len(data))
	frame[0], frame[1], frame[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(frame[socket.FrameLengthSize:], data)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageBinary, frame)
}

func (c *conn) handshake() error {
	ctx, cancel := context.WithTimeout(c.ctx, handshakeTimeout)
	defer cancel()
	first, err := c.readFrame(ctx)
	if err != nil {
		return fmt.Errorf("failed to read client hello: %w", err)
	}
	var hello waWa6.HandshakeMessage
	if err = proto.Unmarshal(first, &hello); err != nil {
		return fmt.Errorf("failed to parse client hello: %w", err)
	}
	clientEphemeral := hello.GetClientHello().GetEphemeral()
	if len(clientEphemeral) != 32 {
		return fmt.Errorf("client hello has a %d-byte ephemeral key", len(clientEphemeral))
	}
	ns, err := newNoiseState(socket.WAConnHeader)
	if err != nil {
		return err
	}
	ns.authenticate(clientEphemeral)
	eph := keys.NewKeyPair()
	ns.authenticate(eph.Pub[:])
	if err = ns.mixDH(*eph.Priv, [32]byte(clientEphemeral)); err != nil {
		return err
	}
	static := ns.encrypt(c.srv.certs.static.Pub[:])
	if err = ns.mixDH(*c.srv.certs.static.Priv, [32]byte(clientEphemeral)); err != nil {
		return err
	}
	certs := ns.encrypt(c.srv.certs.payload)
	resp, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: eph.Pub[:],
		Static:    static,
		Payload:   certs,
	}})
	if err != nil {
		return err
	}
	if err = c.writeFrame(resp); err != nil {
		return fmt.Errorf("failed to send server hello: %w", err)
	}
	finishRaw, err := c.readFrame(ctx)
	if err != nil {
		return fmt.Errorf("failed to read client finish: %w", err)
	}
	var finish waWa6.HandshakeMessage
	if err = proto.Unmarshal(finishRaw, &finish); err != nil {
		return fmt.Errorf("failed to parse client finish: %w", err)
	}
	clientStatic, err := ns.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil || len(clientStatic) != 32 {
		return fmt.Errorf("failed to decrypt client static key: %v", err)
	}
	c.clientStatic = [32]byte(clientStatic)
	if err = ns.mixDH(*eph.Priv, c.clientStatic); err != nil {
		return err
	}
	payloadRaw, err := ns.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return fmt.Errorf("failed to decrypt client payload: %w", err)
	}
	c.payload = &waWa6.ClientPayload{}
	if err = proto.Unmarshal(payloadRaw, c.payload); err != nil {
		return fmt.Errorf("failed to parse client payload: %w", err)
	}
	c.readKey, c.writeKey, err = ns.finish()
	return err
}

func (c *conn) run() {
	defer c.close()
	if err := c.handshake(); err != nil {
		c.log.Debug().Err(err).Msg("Handshake failed")
		return
	}
	c.srv.login(c)
	for {
		frame, err := c.readFrame(c.ctx)
		if err != nil {
			c.log.Debug().Err(err).Msg("Connection closed")
			return
		}
		plain, err := c.readKey.Open(nil, nonce(c.readCounter), frame, nil)
		c.readCounter++
		if err != nil {
			c.log.Warn().Err(err).Msg("Failed to decrypt frame")
			return
		}
		node, err := decodeNode(plain)
		if err != nil {
			c.log.Warn().Err(err).Msg("Failed to decode node")
			continue
		}
		c.log.Trace().Str("node", node.XMLString()).Msg("Received node")
		if err = c.handleNode(node); err != nil {
			c.log.Error().Err(err).Msg("Failed to handle node")
			return
		}
	}
}

// decodeNode unpacks and decodes one decrypted frame. whatsmeow's decoder
// panics on some input (an empty frame), so panics become errors.
func decodeNode(plain []byte) (node *waBinary.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			node, err = nil, fmt.Errorf("malformed node: %v", r)
		}
	}()
	if len(plain) == 0 {
		return nil, fmt.Errorf("empty frame")
	}
	data, err := waBinary.Unpack(plain)
	if err != nil {
		return nil, fmt.Errorf("failed to unpack frame: %w", err)
	}
	return waBinary.Unmarshal(data)
}

// handleNode runs the handlers for one node, turning a panic into an error
// that ends the connection instead of the whole server.
func (c *conn) handleNode(node *waBinary.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic handling <%s>: %v", node.Tag, r)
		}
	}()
	c.srv.handleNode(c, node)
	return nil
}

// send encrypts and writes one node.
func (c *conn) send(node waBinary.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("failed to marshal node: %v", r)
		}
	}()
	data, err := waBinary.Marshal(node)
	if err != nil {
		return err
	}
	c.log.Trace().Str("node", node.XMLString()).Msg("Sending node")
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed.Load() {
		return ErrServerClosed
	}
	ct := c.writeKey.Seal(nil, nonce(c.writeCounter), data, nil)
	c.writeCounter++
	return c.writeFrame(ct)
}

func (c *conn) newID() string {
	return "wasim-" + strconv.FormatUint(c.idSeq.Add(1), 10)
}

// sendIQ sends a server-initiated IQ; onResult runs (on the read loop) with
// the client's answer.
func (c *conn) sendIQ(node waBinary.Node, onResult func(*waBinary.Node)) error {
	id := c.newID()
	node.Tag = "iq"
	node.Attrs["id"] = id
	node.Attrs["from"] = serverJID()
	if onResult != nil {
		c.waitMu.Lock()
		c.waiters[id] = onResult
		c.waitMu.Unlock()
	}
	err := c.send(node)
	if err != nil && onResult != nil {
		c.waitMu.Lock()
		delete(c.waiters, id)
		c.waitMu.Unlock()
	}
	return err
}

func (c *conn) takeWaiter(id string) func(*waBinary.Node) {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	fn := c.waiters[id]
	delete(c.waiters, id)
	return fn
}

// streamError sends a stream:error and, for fatal ones, closes the socket a
// little later.
func (c *conn) streamError(code string, conflict string, closeAfter bool) {
	node := waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{}}
	if code != "" {
		node.Attrs["code"] = code
	}
	if conflict != "" {
		node.Content = []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": conflict}}}
	}
	if err := c.send(node); err != nil && !errors.Is(err, ErrServerClosed) {
		c.log.Debug().Err(err).Msg("Failed to send stream error")
	}
	if closeAfter {
		c.closeAfter(c.srv.cfg.StreamErrorCloseDelay)
	}
}
