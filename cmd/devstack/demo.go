package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

// demoCode is the login code the simulator issues for every phone.
const demoCode = "12345"

type demoAccount struct {
	spec     tgsim.AccountSpec
	staff    bool
	about    string
	autoText string // auto-reply prefix; empty = no auto-reply
}

// The demo world: two staff accounts to log in with, two outside contacts who
// answer every message.
var demoAccounts = []demoAccount{
	{spec: tgsim.AccountSpec{Phone: "+15550001", FirstName: "Sam", LastName: "Staff", Username: "sam_staff"}, staff: true, about: "staff, no 2FA"},
	{spec: tgsim.AccountSpec{Phone: "+15550003", FirstName: "Tess", LastName: "Twofactor", Username: "tess_staff", Password: "hunter2"}, staff: true, about: "staff, 2FA password hunter2"},
	{spec: tgsim.AccountSpec{Phone: "+15550002", FirstName: "Alice", LastName: "Outside", Username: "alice_outside"}, about: "contact, auto-replies", autoText: "Alice here, I got your message"},
	{spec: tgsim.AccountSpec{Phone: "+15550004", FirstName: "Bob", LastName: "Outside", Username: "bob_outside"}, about: "contact, auto-replies", autoText: "Bob here, thanks for"},
}

// populate creates the demo accounts, makes staff and contacts mutual
// contacts and switches on the contacts' auto-replies.
func populate(sim *tgsim.Server) error {
	var staff, contacts []*tgsim.Account
	for _, d := range demoAccounts {
		acc, err := sim.CreateAccount(d.spec)
		if err != nil {
			return fmt.Errorf("failed to create demo account %s: %w", d.spec.Phone, err)
		}
		if d.staff {
			staff = append(staff, acc)
			continue
		}
		contacts = append(contacts, acc)
		prefix := d.autoText
		sim.SetAutoReply(acc.ID, func(in tgsim.Message) (string, bool) {
			return fmt.Sprintf("%s: %q", prefix, in.Text), true
		})
	}
	for _, s := range staff {
		for _, c := range contacts {
			if err := sim.AddContact(s.ID, c.ID); err != nil {
				return err
			}
			if err := sim.AddContact(c.ID, s.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func randomPassword() string {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
