package wamedia

import "github.com/passerelle/passerelle/bridges/media"

// Group pictures on WhatsApp are square JPEGs of at most this side.
const (
	MaxPictureSide = 640
	pictureQuality = 85
)

// ErrPictureFormat is returned for a room avatar that is not an image the
// gateway can convert (PNG, GIF or JPEG).
var ErrPictureFormat = media.ErrPictureFormat

// GroupPicture makes a Matrix room avatar into what WhatsApp wants for a
// group picture: a square JPEG (the centre of the image) of at most
// MaxPictureSide pixels a side (media.SquareJPEG). A JPEG that already fits
// is kept as it is.
func GroupPicture(data []byte) ([]byte, error) {
	return media.SquareJPEG(data, MaxPictureSide, pictureQuality)
}
