package telegram

import (
	"context"
	"strconv"
	"time"

	"go.mau.fi/util/jsontime"
	"go.mau.fi/util/ptr"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/passerelle/passerelle/bridges/media"
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
				ContactList:    true,
				Search:         true,
			},
			GroupCreation: groupCreation(),
		},
	}
}

// baseRoomFeatures are the features that do not depend on limits.
var baseRoomFeatures = event.RoomFeatures{
	ID: "net.passerelle.telegram.capabilities.2026_12_conv",
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
	MaxTextLength:   MaxTextLength,
	Reply:           event.CapLevelFullySupported,
	LocationMessage: event.CapLevelFullySupported,
	Poll:            event.CapLevelFullySupported,
	// Edits within Telegram's edit window (private chats: 48 hours);
	// deletions for both sides at any age.
	Edit:                event.CapLevelFullySupported,
	EditMaxAge:          ptr.Ptr(jsontime.S(EditWindow)),
	Delete:              event.CapLevelFullySupported,
	Reaction:            event.CapLevelFullySupported,
	ReactionCount:       1,
	ReadReceipts:        true,
	TypingNotifications: true,
}

// EditWindow is how long Telegram lets the sender edit a private message.
const EditWindow = 48 * time.Hour

// fileCaps is what can be sent to Telegram per message type. Captions
// (with formatting) go with every file but stickers; images other than JPEG
// and PNG go as documents (partial: shown as files by some apps).
var fileCaps = []media.FileCap{
	{MsgType: event.MsgImage, Caption: event.CapLevelFullySupported, MIMETypes: map[string]event.CapabilitySupportLevel{
		"image/jpeg": event.CapLevelFullySupported, "image/png": event.CapLevelFullySupported, "image/*": event.CapLevelPartialSupport}},
	{MsgType: event.MsgVideo, Caption: event.CapLevelFullySupported, MIMETypes: map[string]event.CapabilitySupportLevel{
		"video/mp4": event.CapLevelFullySupported, "video/*": event.CapLevelPartialSupport}},
	{MsgType: event.CapMsgGIF, Caption: event.CapLevelFullySupported, MIMETypes: map[string]event.CapabilitySupportLevel{
		"video/mp4": event.CapLevelFullySupported, "image/gif": event.CapLevelPartialSupport}},
	{MsgType: event.MsgAudio, Caption: event.CapLevelFullySupported, MIMETypes: map[string]event.CapabilitySupportLevel{
		"audio/*": event.CapLevelFullySupported}},
	{MsgType: event.CapMsgVoice, Caption: event.CapLevelFullySupported, MIMETypes: map[string]event.CapabilitySupportLevel{
		"audio/ogg": event.CapLevelFullySupported, "audio/*": event.CapLevelPartialSupport}},
	{MsgType: event.MsgFile, Caption: event.CapLevelFullySupported, MIMETypes: media.AllTypes()},
	{MsgType: event.CapMsgSticker, Caption: event.CapLevelDropped, MIMETypes: map[string]event.CapabilitySupportLevel{
		"image/webp": event.CapLevelFullySupported, "image/*": event.CapLevelPartialSupport}},
}

// roomFeatures are the features with files up to maxSize.
func roomFeatures(maxSize int64) *event.RoomFeatures {
	f := baseRoomFeatures
	f.File = media.FileFeatures(maxSize, CaptionLimits.Units, fileCaps...)
	return &f
}

// roomFeaturesFor are the features of a chat of an account that may put
// maxReactions reactions on a message.
func roomFeaturesFor(maxSize int64, maxReactions int) *event.RoomFeatures {
	f := roomFeatures(maxSize)
	f.ReactionCount = maxReactions
	if maxReactions != 1 {
		f.ID += "_r" + strconv.Itoa(maxReactions)
	}
	return f
}

// GetCapabilities implements bridgev2.NetworkAPI.
func (c *Client) GetCapabilities(_ context.Context, portal *bridgev2.Portal) *event.RoomFeatures {
	f := roomFeaturesFor(c.main.Limits.Outbound(TelegramMaxFileSize), c.maxReactions())
	if c.isForumPortal(portal) {
		f = forumFeatures(f)
	}
	return f
}
