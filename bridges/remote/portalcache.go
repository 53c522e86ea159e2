package remote

import (
	"errors"
	"reflect"
	"unsafe"

	"go.mau.fi/util/exsync"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// bridgev2 (v0.32.0 and v0.33.0) calls UserLogin.MarkInPortal for every
// remote event it is handed; the login's set of portals it is known to be
// in makes that free after the first event of a portal. The logins that
// bridgev2 loads from its database get the set, but a login made by
// User.NewLogin (a login linked while the gateway runs) does not: its set
// is nil, so every remote event of that login reads (or inserts) its
// user_portal row and asks the homeserver side again whether the user is
// in the room, until the gateway restarts. A WhatsApp burst's profile put
// it at 4% of the gateway's CPU.
//
// GivePortalCache gives login the set if it has none. Connectors call it
// from LoadUserLogin, which bridgev2 calls on a login before anything else
// holds it (NewLogin's new login, or a login loaded from the database,
// whose set is already there). An error says that bridgev2's login no
// longer has the field as this code knows it.
func GivePortalCache(login *bridgev2.UserLogin) error {
	field := reflect.ValueOf(login).Elem().FieldByName("inPortalCache")
	want := reflect.TypeFor[*exsync.Set[networkid.PortalKey]]()
	if !field.IsValid() || field.Type() != want {
		return errors.New("bridgev2.UserLogin has no inPortalCache set of portal keys")
	}
	if !field.IsNil() {
		return nil
	}
	settable := reflect.NewAt(want, unsafe.Pointer(field.UnsafeAddr())).Elem()
	settable.Set(reflect.ValueOf(exsync.NewSet[networkid.PortalKey]()))
	return nil
}
