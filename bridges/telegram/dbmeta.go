package telegram

import (
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/passerelle/passerelle/bridges/telegram/tgid"
)

// GetDBMetaTypes implements bridgev2.NetworkConnector. Inside the gateway
// these are replaced by meta.Lazy; always read metadata through meta.Get.
func (c *TelegramConnector) GetDBMetaTypes() database.MetaTypes {
	return database.MetaTypes{
		UserLogin: func() any { return &tgid.UserLoginMetadata{} },
		Ghost:     func() any { return &tgid.GhostMetadata{} },
		Message:   func() any { return &tgid.MessageMetadata{} },
	}
}
