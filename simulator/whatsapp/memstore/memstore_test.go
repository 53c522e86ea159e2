package memstore_test

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/types"

	"github.com/passerelle/passerelle/simulator/whatsapp/memstore"
)

func TestPreKeys(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(nil)
	keys, _ := s.GetOrGenPreKeys(ctx, 10)
	again, _ := s.GetOrGenPreKeys(ctx, 10)
	if len(keys) != 10 || keys[9].KeyID != again[9].KeyID {
		t.Fatal("unuploaded prekeys are not reused")
	}
	_ = s.MarkPreKeysAsUploaded(ctx, keys[9].KeyID)
	if n, _ := s.UploadedPreKeyCount(ctx); n != 10 {
		t.Fatalf("uploaded count %d", n)
	}
	next, _ := s.GetOrGenPreKeys(ctx, 1)
	if next[0].KeyID != 11 {
		t.Fatalf("next prekey ID %d", next[0].KeyID)
	}
	one, _ := s.GenOnePreKey(ctx)
	if got, _ := s.GetPreKey(ctx, one.KeyID); got == nil {
		t.Fatal("generated prekey not stored")
	}
}

func TestMigrateAndLoad(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(nil)
	pn := types.NewJID("15550001", types.DefaultUserServer)
	lid := types.NewJID("9001", types.HiddenUserServer)
	_ = s.PutSession(ctx, pn.SignalAddress().String(), []byte("session"))
	_ = s.PutSenderKey(ctx, "g@g.us", pn.SignalAddress().String(), []byte("sk"))
	_ = s.MigratePNToLID(ctx, pn, lid)
	if sess, _ := s.GetSession(ctx, lid.SignalAddress().String()); string(sess) != "session" {
		t.Fatal("session not migrated")
	}
	if has, _ := s.HasSession(ctx, pn.SignalAddress().String()); has {
		t.Fatal("old session left behind")
	}
	if sk, _ := s.GetSenderKey(ctx, "g@g.us", lid.SignalAddress().String()); string(sk) != "sk" {
		t.Fatal("sender key not migrated")
	}

	if s.Load() != nil {
		t.Fatal("unsaved device loaded")
	}
	dev := s.NewDevice()
	if err := dev.Save(ctx); err == nil {
		t.Fatal("device without ID saved")
	}
	jid := types.NewADJID("15550001", 0, 2)
	dev.ID = &jid
	if err := dev.Save(ctx); err != nil {
		t.Fatal(err)
	}
	loaded := s.Load()
	if loaded == nil || *loaded.ID != jid || *loaded.NoiseKey.Pub != *dev.NoiseKey.Pub || loaded == dev {
		t.Fatal("loaded device differs")
	}
	if err := loaded.Delete(ctx); err != nil || s.Load() != nil {
		t.Fatal("deleted device still loads")
	}
	if sess, _ := s.GetSession(ctx, lid.SignalAddress().String()); sess != nil {
		t.Fatal("sessions survive device deletion")
	}
}
