package wasim

import (
	"bytes"
	"context"
	"testing"

	"github.com/rs/zerolog"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/socket"
)

// FuzzFrames feeds a client's byte stream, cut into arbitrary chunks, to the
// framing code: it never panics, and the frames it returns are the stream
// after the header, minus the length prefixes.
func FuzzFrames(f *testing.F) {
	stream := func(frames ...[]byte) []byte {
		out := append([]byte{}, socket.WAConnHeader...)
		for _, fr := range frames {
			out = append(out, byte(len(fr)>>16), byte(len(fr)>>8), byte(len(fr)))
			out = append(out, fr...)
		}
		return out
	}
	f.Add(stream([]byte("hello"), []byte{}, []byte("x")), uint8(3))
	f.Add(stream(bytes.Repeat([]byte{0xff}, 300)), uint8(1))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint8(7))
	f.Add(append(stream(), 0xff, 0xff, 0xff, 1), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		c := &conn{}
		step := int(chunk)%64 + 1
		var got []byte
		for fed := 0; fed < len(data); {
			end := min(fed+step, len(data))
			c.buf = append(c.buf, data[fed:end]...)
			fed = end
			for {
				frame, ok, err := c.nextFrame()
				if err != nil {
					if bytes.HasPrefix(data, socket.WAConnHeader) {
						t.Fatalf("header refused: %v", err)
					}
					return
				}
				if !ok {
					break
				}
				got = append(got, byte(len(frame)>>16), byte(len(frame)>>8), byte(len(frame)))
				got = append(got, frame...)
			}
		}
		if c.gotHeader && !bytes.HasPrefix(data[len(socket.WAConnHeader):], got) {
			t.Fatal("frames are not the stream")
		}
	})
}

// FuzzClientNode decodes what a logged-in client sends after the Noise
// handshake (a packed binary XML node) and hands it to the server's
// handlers, as the read loop does (without its recover: a panic in a
// handler fails the target). The connection is closed, so answers are
// dropped; the server must neither panic nor hang.
func FuzzClientNode(f *testing.F) {
	seeds := []waBinary.Node{
		{Tag: "iq", Attrs: waBinary.Attrs{"id": "1", "type": "get", "xmlns": "usync", "to": "s.whatsapp.net"}},
		{Tag: "iq", Attrs: waBinary.Attrs{"id": "2", "type": "set", "xmlns": "encrypt"}, Content: []waBinary.Node{{Tag: "key"}}},
		{Tag: "iq", Attrs: waBinary.Attrs{"id": "3", "type": "get", "xmlns": "w:g2", "to": "123-456@g.us"}, Content: []waBinary.Node{{Tag: "query"}}},
		{Tag: "message", Attrs: waBinary.Attrs{"id": "ABC", "to": "15550002222@s.whatsapp.net", "type": "text"},
			Content: []waBinary.Node{{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "pkmsg"}, Content: []byte{1, 2, 3}}}},
		{Tag: "receipt", Attrs: waBinary.Attrs{"id": "ABC", "to": "15550002222@s.whatsapp.net", "type": "retry"}},
		{Tag: "ack", Attrs: waBinary.Attrs{"id": "x"}},
	}
	for _, n := range seeds {
		data, err := waBinary.Marshal(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{0}, data...))
	}
	srv, err := Start(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	acc, err := srv.CreateAccount("15550001111", "Fuzz")
	if err != nil {
		f.Fatal(err)
	}
	if _, err = srv.CreateAccount("15550002222", "Peer"); err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	f.Fuzz(func(t *testing.T, frame []byte) {
		node, err := decodeNode(frame)
		if err != nil {
			return
		}
		c := &conn{srv: srv, ctx: ctx, cancel: func() {}, log: zerolog.Nop(), waiters: map[string]func(*waBinary.Node){}}
		c.closed.Store(true)
		srv.mu.Lock()
		c.account = acc
		c.device = &companion{id: 1, conn: c}
		srv.mu.Unlock()
		srv.handleNode(c, node)
	})
}
