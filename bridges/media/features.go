package media

import (
	"maps"

	"maunium.net/go/mautrix/event"
)

// FileCap is what a network accepts for one Matrix message type.
type FileCap struct {
	MsgType event.CapabilityMsgType
	// MIMETypes maps MIME types or patterns ("image/*", "*/*") to the
	// support level.
	MIMETypes map[string]event.CapabilitySupportLevel
	// Caption is CapLevelFullySupported when the network keeps a caption.
	Caption event.CapabilitySupportLevel
	// MaxSize overrides the shared maximum for this type when > 0 and smaller.
	MaxSize int64
}

// FileFeatures builds the room features' file map: one entry per message
// type, each with its MIME types, caption support, maxCaptionLen (0: not
// declared) and max size (the smaller of maxSize and the type's own, 0: not
// declared).
func FileFeatures(maxSize int64, maxCaptionLen int, caps ...FileCap) event.FileFeatureMap {
	out := make(event.FileFeatureMap, len(caps))
	for _, c := range caps {
		ff := &event.FileFeatures{
			MimeTypes: maps.Clone(c.MIMETypes),
			Caption:   c.Caption,
			MaxSize:   minLimit(maxSize, c.MaxSize),
		}
		if c.Caption.Partial() {
			ff.MaxCaptionLength = maxCaptionLen
		}
		out[c.MsgType] = ff
	}
	return out
}

// AllTypes is a MIME map accepting anything fully.
func AllTypes() map[string]event.CapabilitySupportLevel {
	return map[string]event.CapabilitySupportLevel{"*/*": event.CapLevelFullySupported}
}

// Types is a MIME map accepting the given types fully.
func Types(mimeTypes ...string) map[string]event.CapabilitySupportLevel {
	m := make(map[string]event.CapabilitySupportLevel, len(mimeTypes))
	for _, t := range mimeTypes {
		m[t] = event.CapLevelFullySupported
	}
	return m
}
