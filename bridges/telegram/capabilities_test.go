package telegram

import (
	"testing"

	"maunium.net/go/mautrix/event"
)

// TestRoomFeaturesDeclareFiles: what clients read about sending files to
// Telegram: every file message type with its max size (the gateway's limit
// when smaller than Telegram's), captions, and MIME support.
func TestRoomFeaturesDeclareFiles(t *testing.T) {
	conn := NewConnector()
	if got := roomFeatures(conn.Limits.Outbound(TelegramMaxFileSize)).File[event.MsgFile].MaxSize; got != TelegramMaxFileSize {
		t.Errorf("max size without a gateway limit = %d, want Telegram's %d", got, TelegramMaxFileSize)
	}
	conn.Limits.SetGateway(10 << 20)
	f := roomFeatures(conn.Limits.Outbound(TelegramMaxFileSize))
	for _, mt := range []event.CapabilityMsgType{event.MsgImage, event.MsgVideo, event.CapMsgGIF, event.MsgAudio, event.CapMsgVoice, event.MsgFile, event.CapMsgSticker} {
		ff := f.File[mt]
		if ff == nil || ff.MaxSize != 10<<20 {
			t.Errorf("%s: %+v", mt, ff)
			continue
		}
		wantCaption := event.CapLevelFullySupported
		if mt == event.CapMsgSticker {
			wantCaption = event.CapLevelDropped
		}
		if ff.Caption != wantCaption || (wantCaption == event.CapLevelFullySupported && ff.MaxCaptionLength != 1024) {
			t.Errorf("%s caption %d (max %d)", mt, ff.Caption, ff.MaxCaptionLength)
		}
	}
	for _, tt := range []struct {
		mt    event.CapabilityMsgType
		mime  string
		level event.CapabilitySupportLevel
	}{
		{event.MsgImage, "image/png", event.CapLevelFullySupported},
		{event.MsgImage, "image/gif", event.CapLevelPartialSupport},
		{event.MsgImage, "application/pdf", event.CapLevelRejected},
		{event.MsgFile, "application/x-anything", event.CapLevelFullySupported},
		{event.CapMsgVoice, "audio/ogg", event.CapLevelFullySupported},
		{event.CapMsgSticker, "image/webp", event.CapLevelFullySupported},
	} {
		if got := f.File[tt.mt].GetMimeSupport(tt.mime); got != tt.level {
			t.Errorf("%s %s support %d, want %d", tt.mt, tt.mime, got, tt.level)
		}
	}
	if f.LocationMessage != event.CapLevelFullySupported || f.MaxTextLength != MaxTextLength {
		t.Errorf("location %d, text %d", f.LocationMessage, f.MaxTextLength)
	}
	if string(f.Hash()) == string(roomFeatures(TelegramMaxFileSize).Hash()) {
		t.Error("a different size limit gives the same features hash: clients would not see the change")
	}
}
