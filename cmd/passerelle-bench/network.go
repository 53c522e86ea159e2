package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/e2e"
	"github.com/passerelle/passerelle/internal/stack"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// The networks a burst run can put on Passerelle's side (-network).
const (
	netTelegram = "telegram"
	netWhatsApp = "whatsapp"
)

// remoteNet is the simulated network of Passerelle's rows in a burst run:
// the staff member's account, the contacts, their sends, and what they
// received (noted in the bench's arrival log by text).
type remoteNet interface {
	// configure enables the network in the gateway's options.
	configure(opts *stack.GatewayOptions)
	// logIn links the staff member's account through the bot's room mgmt.
	logIn(ctx context.Context, b *bench, mgmt string) error
	// contacts is how many contacts there are; addContact makes the next
	// one (named contactName(i)).
	contacts() int
	addContact() error
	// send makes contact i send body to the staff member.
	send(ctx context.Context, i int, body string) error
	close()
}

// telegramNet is the Telegram simulator of the bench (b.sim), its staff
// member b.staff and contacts b.contacts.
type telegramNet struct{ b *bench }

func (t telegramNet) configure(opts *stack.GatewayOptions) {
	sim := t.b.sim
	opts.Telegram = &stack.TelegramTestServer{DC: sim.DC(), Address: sim.Addr(), PublicKeyPEM: sim.PublicKeyPEM()}
}

func (t telegramNet) logIn(ctx context.Context, b *bench, mgmt string) error {
	if err := b.step(ctx, mgmt, "login telegram-phone", "phone number"); err != nil {
		return err
	}
	if err := b.step(ctx, mgmt, "+"+strings.TrimPrefix(b.staff.Phone, "+"), "code"); err != nil {
		return err
	}
	code, _ := b.sim.LastCode(b.staff.Phone)
	return b.step(ctx, mgmt, code, "Logged in")
}

func (t telegramNet) contacts() int { return len(t.b.contacts) }

func (t telegramNet) addContact() error {
	acc, err := t.b.newContact(len(t.b.contacts))
	if err != nil {
		return err
	}
	t.b.contacts = append(t.b.contacts, acc)
	return nil
}

func (t telegramNet) send(_ context.Context, i int, body string) error {
	_, err := t.b.sim.SendMessage(t.b.contacts[i].ID, t.b.staff.ID, body, nil)
	return err
}

func (t telegramNet) close() {}

// whatsAppSeed derives the WhatsApp simulator's certificate chain.
const whatsAppSeed = "passerelle-bench"

// whatsAppNet is a WhatsApp simulator in the bench's process: the staff
// member's phone links the gateway by QR code; the contacts' phones send
// from the simulator; what the staff member's linked device (the gateway)
// sends is noted at the time the server took it.
type whatsAppNet struct {
	sim    *wasim.Server
	staff  string   // phone number
	phones []string // the contacts'
	noted  *arrivalLog

	stop chan struct{}
	done sync.WaitGroup
}

func newWhatsAppNet(noted *arrivalLog) (*whatsAppNet, error) {
	sim, err := wasim.Start(wasim.Config{Addr: "127.0.0.1:0", RootSeed: whatsAppSeed})
	if err != nil {
		return nil, fmt.Errorf("WhatsApp simulator: %w", err)
	}
	w := &whatsAppNet{sim: sim, staff: "15550071", noted: noted, stop: make(chan struct{})}
	if _, err = sim.CreateAccount(w.staff, "Sam Staff"); err != nil {
		_ = sim.Close()
		return nil, err
	}
	w.done.Add(1)
	go w.watch()
	return w, nil
}

// watch notes the messages the staff member's devices send, every 20 ms,
// at the simulator's time of taking each (not the time it is seen here).
func (w *whatsAppNet) watch() {
	defer w.done.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	seen := 0
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		msgs := w.sim.Messages()
		for _, m := range msgs[seen:] {
			if m.From == w.staff && !m.Group {
				w.noted.record(m.Text(), m.Timestamp.UnixMicro())
			}
		}
		seen = len(msgs)
	}
}

func (w *whatsAppNet) configure(opts *stack.GatewayOptions) {
	opts.WhatsApp = &stack.WhatsAppTestServer{Address: w.sim.Addr(), RootPublicKeyHex: wasim.RootPublicKeyHex(whatsAppSeed)}
}

func (w *whatsAppNet) logIn(ctx context.Context, b *bench, mgmt string) error {
	sent, err := b.client.Send(ctx, mgmt, "login whatsapp-qr")
	if err != nil {
		return err
	}
	qr, err := b.client.WaitMessage(ctx, mgmt, e2e.MessageFilter{Sender: b.botID, After: sent, MsgType: "m.image", Timeout: time.Minute})
	if err != nil {
		return fmt.Errorf("the bridge bot's QR code: %w", err)
	}
	if err = w.sim.ScanQR(ctx, w.staff, qr.Body()); err != nil {
		return fmt.Errorf("the staff member's phone could not scan the QR code: %w", err)
	}
	if _, err = b.client.WaitMessage(ctx, mgmt, e2e.MessageFilter{Sender: b.botID, After: sent, BodyContains: "Linked to WhatsApp", Timeout: time.Minute}); err != nil {
		return fmt.Errorf("the QR login did not finish: %w", err)
	}
	return nil
}

func (w *whatsAppNet) contacts() int { return len(w.phones) }

func (w *whatsAppNet) addContact() error {
	i := len(w.phones)
	last := "Contact"
	if i > 0 {
		last = "Bench"
	}
	phone := fmt.Sprintf("1555009%04d", i)
	if _, err := w.sim.CreateAccount(phone, contactName(i)+" "+last); err != nil {
		return err
	}
	w.phones = append(w.phones, phone)
	return nil
}

func (w *whatsAppNet) send(ctx context.Context, i int, body string) error {
	_, err := w.sim.SendText(ctx, w.phones[i], w.staff, body)
	return err
}

func (w *whatsAppNet) close() {
	close(w.stop)
	w.done.Wait()
	_ = w.sim.Close()
}

var (
	_ remoteNet = telegramNet{}
	_ remoteNet = (*whatsAppNet)(nil)
)

// net is the run's remote network: -network's, Telegram by default.
func (b *bench) net() remoteNet {
	if b.remote != nil {
		return b.remote
	}
	return telegramNet{b: b}
}
