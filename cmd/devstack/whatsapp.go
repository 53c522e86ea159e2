package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	wasim "github.com/passerelle/passerelle/simulator/whatsapp"
)

// whatsAppSeed derives the demo WhatsApp server's certificate chain; the
// gateway is given the matching root key.
const whatsAppSeed = "passerelle-devstack"

type waDemoAccount struct {
	phone, name, about string
	staff              bool
}

var waDemoAccounts = []waDemoAccount{
	{phone: "+33600000001", name: "Sam Staff", about: "staff", staff: true},
	{phone: "+33600000005", name: "Pat Staff", about: "staff", staff: true},
	{phone: "+33600000002", name: "Alice Outside", about: "contact, auto-replies"},
	{phone: "+33600000003", name: "Bob Outside", about: "contact, auto-replies"},
}

const waDemoGroup = "Lighthouse project"

// whatsAppDemo is the simulated WhatsApp of the dev stack and its control API.
type whatsAppDemo struct {
	sim        *wasim.Server
	controlURL string
	control    *http.Server
	groupJID   string
}

func startWhatsApp(ctx context.Context, addr, controlAddr string) (*whatsAppDemo, error) {
	sim, err := wasim.Start(wasim.Config{Addr: addr, RootSeed: whatsAppSeed})
	if err != nil {
		return nil, err
	}
	d := &whatsAppDemo{sim: sim, controlURL: "http://" + controlAddr}
	var staff []string
	for _, a := range waDemoAccounts {
		if _, err = sim.CreateAccount(a.phone, a.name); err != nil {
			_ = sim.Close()
			return nil, fmt.Errorf("failed to create WhatsApp demo account %s: %w", a.phone, err)
		}
		if a.staff {
			staff = append(staff, a.phone)
		} else {
			go d.autoReply(ctx, a)
		}
	}
	if d.groupJID, err = sim.CreateGroup(ctx, "+33600000002", waDemoGroup, "A demo WhatsApp group", append(staff, "+33600000003")); err != nil {
		_ = sim.Close()
		return nil, fmt.Errorf("failed to create the WhatsApp demo group: %w", err)
	}
	ln, err := net.Listen("tcp", controlAddr)
	if err != nil {
		_ = sim.Close()
		return nil, err
	}
	d.control = &http.Server{Handler: sim.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.control.Serve(ln) }()
	return d, nil
}

// autoReply makes a demo contact answer every direct message it receives.
func (d *whatsAppDemo) autoReply(ctx context.Context, contact waDemoAccount) {
	first := strings.Fields(contact.name)[0]
	for {
		msg, err := d.sim.WaitMessage(ctx, "", contact.phone, func(m wasim.Message) bool { return !m.Group })
		if err != nil {
			return
		}
		reply := fmt.Sprintf("%s here, I got your message: %q", first, msg.Text())
		if _, err = d.sim.SendText(ctx, contact.phone, msg.From, reply); err != nil && ctx.Err() != nil {
			return
		}
	}
}

func (d *whatsAppDemo) close() {
	_ = d.control.Close()
	_ = d.sim.Close()
}

func (d *whatsAppDemo) describe(w func(format string, args ...any)) {
	w("WhatsApp simulator (in this process, forgotten at exit)")
	w("  server          %s   root key %s", d.sim.Addr(), wasim.RootPublicKeyHex(whatsAppSeed))
	for _, a := range waDemoAccounts {
		w("  %-14s  %s (%s)", a.phone, a.name, a.about)
	}
	w("  group           %q with Alice, Bob and both staff (%s)", waDemoGroup, d.groupJID)
	w("  link a staff phone: send `login whatsapp-qr` to the bot, then let the phone scan the code")
	w("  (the QR image's text is the code):")
	w("    curl -s -X POST %s/scan -d '{\"phone\":\"+33600000001\",\"qr\":\"<text of the QR message>\"}'", d.controlURL)
	w("  or `login whatsapp-phone`, enter +33600000001, then type the code the bot shows on the phone:")
	w("    curl -s -X POST %s/pairing-code -d '{\"phone\":\"+33600000001\",\"code\":\"ABCD-EFGH\"}'", d.controlURL)
	w("  make a contact write:")
	w("    curl -s -X POST %s/send -d '{\"from\":\"+33600000002\",\"to\":\"+33600000001\",\"text\":\"Hello from Alice\"}'", d.controlURL)
	w("    curl -s -X POST %s/send -d '{\"from\":\"+33600000003\",\"to\":\"%s\",\"text\":\"Hello group\"}'", d.controlURL, d.groupJID)
}
