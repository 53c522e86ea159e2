package whatsapp

import (
	"context"
	"fmt"

	"go.mau.fi/util/jsontime"
	"go.mau.fi/whatsmeow/types"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
	"github.com/passerelle/passerelle/bridges/whatsapp/waid"
)

// GetCapabilities implements bridgev2.NetworkConnector.
func (c *WhatsAppConnector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{
		// bridgev2's loop deletes messages whose timer ended.
		DisappearingMessages: true,
		Provisioning: bridgev2.ProvisioningCapabilities{
			ResolveIdentifier: bridgev2.ResolveIdentifierCapabilities{
				CreateDM:    true,
				LookupPhone: true,
				AnyPhone:    true,
				ContactList: true,
				Search:      true,
			},
		},
	}
}

// roomFeatures is what a WhatsApp portal supports: text with formatting and
// mentions, files with captions (audio's caption goes as a message of its
// own), stickers and locations; replies; edits of text within WhatsApp's
// window; deletion for everyone; one reaction per user and message; read
// receipts and typing. File is filled per call with the current size limit.
var roomFeatures = event.RoomFeatures{
	ID: "net.passerelle.whatsapp.conv",
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

	Reply:               event.CapLevelFullySupported,
	Edit:                event.CapLevelFullySupported,
	EditMaxAge:          &jsontime.Seconds{Duration: EditWindow},
	Delete:              event.CapLevelFullySupported,
	Reaction:            event.CapLevelFullySupported,
	ReactionCount:       1,
	ReadReceipts:        true,
	TypingNotifications: true,
}

// fileCaps are the files WhatsApp takes from Matrix, by message type.
var fileCaps = []media.FileCap{
	{MsgType: event.MsgImage, MIMETypes: media.Types("image/jpeg", "image/png", "image/webp", "image/gif"), Caption: event.CapLevelFullySupported},
	{MsgType: event.MsgVideo, MIMETypes: media.Types("video/mp4", "video/3gpp", "video/quicktime", "video/webm"), Caption: event.CapLevelFullySupported},
	{MsgType: event.CapMsgGIF, MIMETypes: media.Types("video/mp4", "image/gif"), Caption: event.CapLevelFullySupported},
	{MsgType: event.MsgAudio, MIMETypes: media.AllTypes(), Caption: event.CapLevelPartialSupport},
	{MsgType: event.CapMsgVoice, MIMETypes: media.Types("audio/ogg"), Caption: event.CapLevelPartialSupport},
	{MsgType: event.MsgFile, MIMETypes: media.AllTypes(), Caption: event.CapLevelFullySupported},
	{MsgType: event.CapMsgSticker, MIMETypes: media.Types("image/webp", "image/png", "image/jpeg")},
}

// GetCapabilities implements bridgev2.NetworkAPI.
func (cl *Client) GetCapabilities(_ context.Context, portal *bridgev2.Portal) *event.RoomFeatures {
	limit := cl.main.Limits.Outbound(WhatsAppMaxFileSize)
	features := roomFeatures
	features.ID = fmt.Sprintf("%s.%d", roomFeatures.ID, limit)
	features.File = media.FileFeatures(limit, roomFeatures.MaxTextLength, fileCaps...)
	features.LocationMessage = event.CapLevelFullySupported
	if portal != nil {
		if chat, err := waid.ParsePortalID(portal.ID); err == nil &&
			(chat.Server == types.GroupServer || chat.Server == types.DefaultUserServer || chat.Server == types.HiddenUserServer) {
			features.DisappearingTimer = disappearingCap
			features.ID += ".timers"
		}
	}
	return &features
}
