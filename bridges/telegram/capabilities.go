package telegram

import (
	"context"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
)

// MaxTextLength is Telegram's limit for one text message (UTF-16 code units).
const MaxTextLength = 4096

// GetCapabilities implements bridgev2.NetworkConnector.
func (c *TelegramConnector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{
		Provisioning: bridgev2.ProvisioningCapabilities{
			ResolveIdentifier: bridgev2.ResolveIdentifierCapabilities{
				CreateDM:       true,
				LookupPhone:    true,
				LookupUsername: true,
			},
		},
	}
}

var roomFeatures = &event.RoomFeatures{
	ID: "net.passerelle.telegram.capabilities.2026_11",
	Formatting: event.FormattingFeatureMap{
		event.FmtBold:               event.CapLevelFullySupported,
		event.FmtItalic:             event.CapLevelFullySupported,
		event.FmtUnderline:          event.CapLevelFullySupported,
		event.FmtStrikethrough:      event.CapLevelFullySupported,
		event.FmtInlineCode:         event.CapLevelFullySupported,
		event.FmtCodeBlock:          event.CapLevelFullySupported,
		event.FmtSyntaxHighlighting: event.CapLevelFullySupported,
		event.FmtBlockquote:         event.CapLevelFullySupported,
		event.FmtInlineLink:         event.CapLevelFullySupported,
		event.FmtUserLink:           event.CapLevelFullySupported,
		event.FmtSpoiler:            event.CapLevelFullySupported,
		event.FmtUnorderedList:      event.CapLevelPartialSupport,
		event.FmtOrderedList:        event.CapLevelPartialSupport,
		event.FmtHeaders:            event.CapLevelPartialSupport,
	},
	MaxTextLength: MaxTextLength,
	Reply:         event.CapLevelFullySupported,
}

// GetCapabilities implements bridgev2.NetworkAPI.
func (c *Client) GetCapabilities(_ context.Context, _ *bridgev2.Portal) *event.RoomFeatures {
	return roomFeatures
}
