package whatsapp

import (
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// GetDBMetaTypes implements bridgev2.NetworkConnector. Inside the gateway
// these are replaced by meta.Lazy; always read metadata through meta.Get.
func (c *WhatsAppConnector) GetDBMetaTypes() database.MetaTypes {
	return database.MetaTypes{
		UserLogin: func() any { return &waid.UserLoginMetadata{} },
		Ghost:     func() any { return &waid.GhostMetadata{} },
		Portal:    func() any { return &waid.PortalMetadata{} },
		Message:   func() any { return &waid.MessageMetadata{} },
	}
}
