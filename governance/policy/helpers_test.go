package policy_test

import (
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"
)

func policyUser(s string) id.UserID          { return id.UserID(s) }
func policyChat(s string) networkid.PortalID { return networkid.PortalID(s) }
func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
