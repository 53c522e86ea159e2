package e2e

import (
	"testing"
	"time"
)

// TestHarnessEncryptedDM checks the harness itself, without the gateway: two
// js clients on Dendrite share an encrypted DM, a message is decrypted on the
// other side, and the homeserver holds only ciphertext.
func TestHarnessEncryptedDM(t *testing.T) {
	s := NewStack(t, StackOptions{NoGateway: true, Users: []string{"alice", "bob"}})
	alice, bob := s.User("alice"), s.User("bob")
	ctx := s.Ctx()
	if alice.DeviceID == bob.DeviceID {
		t.Fatalf("users share a device ID %q; password login should give each its own", alice.DeviceID)
	}

	roomID, err := alice.CreateDM(ctx, bob.UserID, DMOptions{NoWaitJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := bob.WaitInvite(ctx, alice.UserID, 0); err != nil || got != roomID {
		t.Fatalf("bob's invite: %q, %v (want %s)", got, err, roomID)
	}
	if err = bob.Join(ctx, roomID); err != nil {
		t.Fatal(err)
	}
	if err = alice.WaitMember(ctx, roomID, bob.UserID, "join", 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventID, err := alice.Send(ctx, roomID, "bonjour bob")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := bob.WaitMessage(ctx, roomID, MessageFilter{Sender: alice.UserID, BodyContains: "bonjour"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("message decrypted by bob %s after the send", time.Since(start).Round(time.Millisecond))
	if ev.EventID != eventID || ev.Type != "m.room.encrypted" || ev.Body() != "bonjour bob" {
		t.Fatalf("bob got %+v", ev)
	}
	if err = bob.RequireEncryptedOnServer(ctx, roomID, eventID); err != nil {
		t.Fatal(err)
	}
	enc, err := bob.RoomState(ctx, roomID, "m.room.encryption", "")
	if err != nil || enc == nil || enc.Content["algorithm"] != "m.megolm.v1.aes-sha2" {
		t.Fatalf("m.room.encryption state: %+v, %v", enc, err)
	}
	members, err := alice.RoomMembers(ctx, roomID)
	if err != nil || len(members) != 2 {
		t.Fatalf("members: %+v, %v", members, err)
	}
}
