package remote

import (
	"reflect"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
)

// TestGivePortalCache: a login without the set gets one; a login with one
// keeps it (a login loaded by bridgev2 may be in use already).
func TestGivePortalCache(t *testing.T) {
	login := &bridgev2.UserLogin{}
	if err := GivePortalCache(login); err != nil {
		t.Fatal(err)
	}
	field := reflect.ValueOf(login).Elem().FieldByName("inPortalCache")
	if field.IsNil() {
		t.Fatal("the login still has no portal cache")
	}
	given := field.Pointer()
	if err := GivePortalCache(login); err != nil {
		t.Fatal(err)
	}
	if field.Pointer() != given {
		t.Fatal("a login's portal cache was replaced")
	}
}
