package tgmedia

import "github.com/passerelle/passerelle/bridges/media"

// Chat photos from Matrix. Telegram takes a chat photo as an uploaded
// image file it crops to a square; clients send a square JPEG of at most
// 1280 pixels a side, and so does the bridge.

const (
	// MaxChatPhotoSide is the side of the largest chat photo sent.
	MaxChatPhotoSide = 1280
	chatPhotoQuality = 88
)

// ErrChatPhotoFormat: the room avatar is not an image the bridge can turn
// into a Telegram chat photo.
var ErrChatPhotoFormat = media.ErrPictureFormat

// ChatPhoto turns a room avatar into a square JPEG Telegram takes as a chat
// photo (media.SquareJPEG).
func ChatPhoto(data []byte) ([]byte, error) {
	return media.SquareJPEG(data, MaxChatPhotoSide, chatPhotoQuality)
}
