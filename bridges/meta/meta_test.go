package meta

import (
	"encoding/json"
	"testing"
)

type loginMeta struct {
	Session string `json:"session"`
	Count   int    `json:"count"`
}

func TestGetOwnTypeIsReturnedAsIs(t *testing.T) {
	own := &loginMeta{Session: "s"}
	if got := Get[loginMeta](own); got != own {
		t.Fatalf("Get returned %p, want the same pointer %p", got, own)
	}
}

func TestLazyDecodesOnceAndSavesChanges(t *testing.T) {
	holder := New()
	if err := json.Unmarshal([]byte(`{"session":"abc","count":2}`), holder); err != nil {
		t.Fatal(err)
	}
	m := Get[loginMeta](holder)
	if m.Session != "abc" || m.Count != 2 {
		t.Fatalf("decoded %+v", m)
	}
	if again := Get[loginMeta](holder); again != m {
		t.Fatal("a second Get decoded again instead of returning the claimed value")
	}
	m.Count = 3
	out, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"session":"abc","count":3}` {
		t.Fatalf("saved %s", out)
	}
}

func TestUnclaimedLazyIsSavedUnchanged(t *testing.T) {
	holder := New()
	stored := `{"someone":"else's","fields":[1,2]}`
	if err := json.Unmarshal([]byte(stored), holder); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != stored {
		t.Fatalf("saved %s, want %s", out, stored)
	}
	empty, _ := json.Marshal(New())
	if string(empty) != "{}" {
		t.Fatalf("empty lazy saved as %s", empty)
	}
}

func TestBadStoredJSONIsNotOverwritten(t *testing.T) {
	holder := New()
	stored := `{"count":"not a number"}`
	if err := json.Unmarshal([]byte(stored), holder); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode[loginMeta](holder); err == nil {
		t.Fatal("Decode of a mistyped field succeeded")
	}
	m := Get[loginMeta](holder)
	m.Count = 9 // not attached: must not reach the database
	out, _ := json.Marshal(holder)
	if string(out) != stored {
		t.Fatalf("saved %s, want the stored JSON unchanged", out)
	}
}

func TestDecodeRejectsForeignType(t *testing.T) {
	if _, err := Decode[loginMeta](&struct{}{}); err == nil {
		t.Fatal("Decode of a foreign type succeeded")
	}
	if m, err := Decode[loginMeta](nil); err != nil || m == nil {
		t.Fatalf("Decode(nil) = %v, %v", m, err)
	}
}
