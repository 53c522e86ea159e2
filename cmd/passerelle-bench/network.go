package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/e2e"
	"github.com/passerelle/passerelle/internal/stack"
	tgsim "github.com/passerelle/passerelle/simulator/telegram"
	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// The networks a burst run can put on Passerelle's side (-network).
const (
	netTelegram = "telegram"
	netWhatsApp = "whatsapp"
)

// remoteNet is the simulated network of Passerelle's side of a run: the
// staff member's account (staff 0) and other staff logins of the same
// Matrix user, the contacts, their sends, and what they received (noted in
// the bench's arrival log by text).
type remoteNet interface {
	// configure enables the network in the gateway's options.
	configure(opts *stack.GatewayOptions)
	// logIn links the staff member's account through the bot's room mgmt.
	logIn(ctx context.Context, b *bench, mgmt string) error
	// addStaff links one more staff account (staff index staffs()-1 after
	// it) through the same room: the creation and flood scenarios send
	// their new chats there.
	addStaff(ctx context.Context, b *bench, mgmt string) error
	staffs() int
	// contacts is how many contacts there are; addContact makes the next
	// one (named contactName(i)) and addNamed one named first last,
	// returning its index.
	contacts() int
	addContact() error
	addNamed(first, last string) (int, error)
	// sendTo makes contact i send body to staff login s (0: the staff
	// member; bench.send).
	sendTo(ctx context.Context, i, s int, body string) error
	close()
}

// Phone numbers of the accounts the creation and flood scenarios make, on
// either network: named contacts from namedPhoneBase on, other staff
// logins from staffPhoneBase on.
const (
	namedPhoneBase = 16660000000
	staffPhoneBase = 15550100
)

// telegramNet is the Telegram simulator of the bench (b.sim), its staff
// member b.staff and contacts b.contacts.
type telegramNet struct{ b *bench }

func (t telegramNet) configure(opts *stack.GatewayOptions) {
	sim := t.b.sim
	opts.Telegram = &stack.TelegramTestServer{DC: sim.DC(), Address: sim.Addr(), PublicKeyPEM: sim.PublicKeyPEM()}
}

func (t telegramNet) logIn(ctx context.Context, b *bench, mgmt string) error {
	return t.phoneLogIn(ctx, mgmt, b.staff.Phone)
}

func (t telegramNet) phoneLogIn(ctx context.Context, mgmt, phone string) error {
	b := t.b
	if err := b.step(ctx, mgmt, "login telegram-phone", "phone number"); err != nil {
		return err
	}
	if err := b.step(ctx, mgmt, "+"+strings.TrimPrefix(phone, "+"), "code"); err != nil {
		return err
	}
	code, _ := b.sim.LastCode(phone)
	return b.step(ctx, mgmt, code, "Logged in")
}

func (t telegramNet) addStaff(ctx context.Context, b *bench, mgmt string) error {
	i := len(b.tgStaff)
	acc, err := b.sim.CreateAccount(tgsim.AccountSpec{Phone: fmt.Sprintf("+%d", staffPhoneBase+i), FirstName: fmt.Sprintf("Staff%02d", i), LastName: "Creator"})
	if err != nil {
		return err
	}
	if err = t.phoneLogIn(ctx, mgmt, acc.Phone); err != nil {
		return err
	}
	b.tgStaff = append(b.tgStaff, acc)
	return nil
}

func (t telegramNet) staffs() int { return 1 + len(t.b.tgStaff) }

func (t telegramNet) staffAccount(s int) *tgsim.Account {
	if s == 0 {
		return t.b.staff
	}
	return t.b.tgStaff[s-1]
}

func (t telegramNet) contacts() int { return len(t.b.contacts) }

func (t telegramNet) addNamed(first, last string) (int, error) {
	i := len(t.b.contacts)
	acc, err := t.b.sim.CreateAccount(tgsim.AccountSpec{Phone: fmt.Sprintf("+%d", namedPhoneBase+i), FirstName: first, LastName: last})
	if err != nil {
		return 0, err
	}
	t.b.contacts = append(t.b.contacts, acc)
	return i, nil
}

func (t telegramNet) addContact() error {
	acc, err := t.b.newContact(len(t.b.contacts))
	if err != nil {
		return err
	}
	t.b.contacts = append(t.b.contacts, acc)
	return nil
}

func (t telegramNet) sendTo(_ context.Context, i, s int, body string) error {
	_, err := t.b.sim.SendMessage(t.b.contacts[i].ID, t.staffAccount(s).ID, body, nil)
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
	others []string // other staff logins' phone numbers
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
		msgs := w.sim.MessagesFrom(seen)
		for _, m := range msgs {
			if m.From == w.staff && !m.Group {
				w.noted.record(m.Text(), m.Timestamp.UnixMicro())
			}
		}
		seen += len(msgs)
	}
}

func (w *whatsAppNet) configure(opts *stack.GatewayOptions) {
	opts.WhatsApp = &stack.WhatsAppTestServer{Address: w.sim.Addr(), RootPublicKeyHex: wasim.RootPublicKeyHex(whatsAppSeed)}
}

func (w *whatsAppNet) logIn(ctx context.Context, b *bench, mgmt string) error {
	return w.qrLogIn(ctx, b.client, b.botID, mgmt, w.staff)
}

func (w *whatsAppNet) addStaff(ctx context.Context, b *bench, mgmt string) error {
	i := len(w.others)
	phone := strconv.Itoa(staffPhoneBase + i)
	if _, err := w.sim.CreateAccount(phone, fmt.Sprintf("Staff%02d Creator", i)); err != nil {
		return err
	}
	if err := w.qrLogIn(ctx, b.client, b.botID, mgmt, phone); err != nil {
		return err
	}
	w.others = append(w.others, phone)
	return nil
}

func (w *whatsAppNet) staffs() int { return 1 + len(w.others) }

// qrLogIn links the account of phone by the bridge bot's QR code, shown
// in the room mgmt of client's user.
func (w *whatsAppNet) qrLogIn(ctx context.Context, client *e2e.Client, botID, mgmt, phone string) error {
	sent, err := client.Send(ctx, mgmt, "login whatsapp-qr")
	if err != nil {
		return err
	}
	qr, err := client.WaitMessage(ctx, mgmt, e2e.MessageFilter{Sender: botID, After: sent, MsgType: "m.image", Timeout: time.Minute})
	if err != nil {
		return fmt.Errorf("the bridge bot's QR code: %w", err)
	}
	if err = w.sim.ScanQR(ctx, phone, qr.Body()); err != nil {
		return fmt.Errorf("the staff member's phone could not scan the QR code: %w", err)
	}
	if _, err = client.WaitMessage(ctx, mgmt, e2e.MessageFilter{Sender: botID, After: sent, BodyContains: "Linked to WhatsApp", Timeout: time.Minute}); err != nil {
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
	_, err := w.addNamed(contactName(i), last)
	return err
}

func (w *whatsAppNet) addNamed(first, last string) (int, error) {
	i := len(w.phones)
	phone := strconv.Itoa(namedPhoneBase + i)
	if _, err := w.sim.CreateAccount(phone, first+" "+last); err != nil {
		return 0, err
	}
	w.phones = append(w.phones, phone)
	return i, nil
}

func (w *whatsAppNet) sendTo(ctx context.Context, i, s int, body string) error {
	to := w.staff
	if s > 0 {
		to = w.others[s-1]
	}
	_, err := w.sim.SendText(ctx, w.phones[i], to, body)
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

// startRemote starts -network's simulator when it is not Telegram's (which
// prepareStack starts for every run).
func (b *bench) startRemote() (err error) {
	if b.o.network == netWhatsApp {
		b.remote, err = newWhatsAppNet(&b.received)
	}
	return err
}

// send makes contact i of the run's network send body to the staff member.
func (b *bench) send(ctx context.Context, i int, body string) error {
	return b.net().sendTo(ctx, i, 0, body)
}

// net is the run's remote network: -network's, Telegram by default.
func (b *bench) net() remoteNet {
	if b.remote != nil {
		return b.remote
	}
	return telegramNet{b: b}
}
