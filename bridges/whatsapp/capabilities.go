package whatsapp

import (
	"context"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

// GetCapabilities implements bridgev2.NetworkConnector.
func (c *WhatsAppConnector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{
		Provisioning: bridgev2.ProvisioningCapabilities{
			ResolveIdentifier: bridgev2.ResolveIdentifierCapabilities{
				CreateDM:    true,
				LookupPhone: true,
				AnyPhone:    true,
			},
		},
	}
}

// roomFeatures is what a WhatsApp portal supports in this version: text
// with formatting and mentions. Media, edits, reactions and deletes come later.
var roomFeatures = &event.RoomFeatures{
	ID: "net.passerelle.whatsapp.text",
	Formatting: event.FormattingFeatureMap{
		event.FmtBold:          event.CapLevelFullySupported,
		event.FmtItalic:        event.CapLevelFullySupported,
		event.FmtStrikethrough: event.CapLevelFullySupported,
		event.FmtInlineCode:    event.CapLevelFullySupported,
		event.FmtCodeBlock:     event.CapLevelFullySupported,
		event.FmtBlockquote:    event.CapLevelFullySupported,
		event.FmtUserLink:      event.CapLevelFullySupported,
	},
	MaxTextLength: 65536,
}

// GetCapabilities implements bridgev2.NetworkAPI.
func (cl *Client) GetCapabilities(_ context.Context, _ *bridgev2.Portal) *event.RoomFeatures {
	return roomFeatures
}
