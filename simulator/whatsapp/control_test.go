package wasim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
	"github.com/passerelle/passerelle/simulator/whatsapp/memstore"
)

func TestControlHandler(t *testing.T) {
	srv := startServer(t)
	hs := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(hs.Close)
	post := func(path string, body any) *http.Response {
		t.Helper()
		raw, _ := json.Marshal(body)
		resp, err := http.Post(hs.URL+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	for _, acc := range []map[string]string{{"phone": "+15550030001", "name": "Alice"}, {"phone": "+15550030002", "name": "Bob"}} {
		if resp := post("/accounts", acc); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create account: %s", resp.Status)
		}
	}
	if resp := post("/accounts", map[string]string{"phone": "15550030001"}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate account: %s", resp.Status)
	}

	// Link a client through /scan, then message it through /send.
	ms := memstore.New(nil)
	c := newClient(t, srv, ms, ms.NewDevice())
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := waitEvent[*events.QR](t, c, nil)
	if resp := post("/scan", map[string]string{"phone": "15550030001", "qr": qr.Codes[0]}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("scan: %s", resp.Status)
	}
	waitEvent[*events.Connected](t, c, nil)
	resp := post("/send", map[string]string{"from": "15550030002", "to": "15550030001", "text": "via HTTP"})
	var sent struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&sent); err != nil || sent.ID == "" {
		t.Fatalf("send: %s %v", resp.Status, err)
	}
	evt := waitEvent[*events.Message](t, c, nil)
	if evt.Info.ID != sent.ID || evt.Message.GetConversation() != "via HTTP" {
		t.Fatalf("got %s %q", evt.Info.ID, evt.Message.GetConversation())
	}
	waitDelivered(t, srv, sent.ID)

	// A file through /send-media, a location through /send-message.
	data := []byte("%PDF-1.4 minutes of the meeting")
	resp = post("/send-media", map[string]any{"from": "15550030002", "to": "15550030001", "kind": "document",
		"data": data, "mime": "application/pdf", "file_name": "minutes.pdf"})
	if err := json.NewDecoder(resp.Body).Decode(&sent); err != nil || sent.ID == "" {
		t.Fatalf("send-media: %s %v", resp.Status, err)
	}
	evt = waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == sent.ID })
	if got, err := c.Download(ctxT(t), fileOf(evt.Message)); err != nil || !bytes.Equal(got, data) ||
		evt.Message.GetDocumentMessage().GetFileName() != "minutes.pdf" {
		t.Fatalf("document via HTTP: %q, %v", got, err)
	}
	waitDelivered(t, srv, sent.ID)
	resp = post("/send-message", map[string]any{"from": "15550030002", "to": "15550030001",
		"message": json.RawMessage(`{"locationMessage":{"degreesLatitude":48.8584,"degreesLongitude":2.2945,"name":"Tour Eiffel"}}`)})
	if err := json.NewDecoder(resp.Body).Decode(&sent); err != nil || sent.ID == "" {
		t.Fatalf("send-message: %s %v", resp.Status, err)
	}
	evt = waitEvent[*events.Message](t, c, func(e *events.Message) bool { return e.Info.ID == sent.ID })
	if loc := evt.Message.GetLocationMessage(); loc.GetDegreesLatitude() != 48.8584 || loc.GetName() != "Tour Eiffel" {
		t.Fatalf("location via HTTP: %+v", loc)
	}
	waitDelivered(t, srv, sent.ID)

	// What a contact received, read back through /messages and /media.
	up, err := c.Upload(ctxT(t), data, whatsmeow.MediaDocument)
	if err != nil {
		t.Fatal(err)
	}
	resp2, err := c.SendMessage(ctxT(t), types.NewJID("15550030002", types.DefaultUserServer), &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
		URL: &up.URL, DirectPath: &up.DirectPath, MediaKey: up.MediaKey, FileSHA256: up.FileSHA256, FileEncSHA256: up.FileEncSHA256,
		FileLength: &up.FileLength, Mimetype: proto.String("application/pdf"), FileName: proto.String("reply.pdf"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = srv.WaitMessage(ctxT(t), "15550030001", "15550030002", func(m wasim.Message) bool { return m.ID == resp2.ID }); err != nil {
		t.Fatal(err)
	}
	media, err := http.Get(hs.URL + "/media?to=15550030002&id=" + resp2.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(media.Body)
	_ = media.Body.Close()
	if media.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("/media: %s, %q", media.Status, got)
	}
	msgs, err := http.Get(hs.URL + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	var listed []struct {
		ID      string
		Message struct {
			DocumentMessage struct{ FileName string }
		}
	}
	err = json.NewDecoder(msgs.Body).Decode(&listed)
	_ = msgs.Body.Close()
	if err != nil || len(listed) == 0 || listed[len(listed)-1].ID != resp2.ID || listed[len(listed)-1].Message.DocumentMessage.FileName != "reply.pdf" {
		t.Fatalf("/messages: %+v, %v", listed, err)
	}

	get, err := http.Get(hs.URL + "/accounts")
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	var accounts []struct {
		Phone   string
		Devices []struct{ Online bool }
	}
	if err = json.NewDecoder(get.Body).Decode(&accounts); err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 2 || accounts[0].Phone != "15550030001" || len(accounts[0].Devices) != 1 || !accounts[0].Devices[0].Online {
		t.Fatalf("accounts: %+v", accounts)
	}
}
