package tgmedia

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // room avatars may be GIFs
	"image/jpeg"
	_ "image/png" // or PNGs
)

// Chat photos from Matrix. Telegram takes a chat photo as an uploaded
// image file it crops to a square; clients send a square JPEG of at most
// 1280 pixels a side, and so does the bridge.

const (
	// MaxChatPhotoSide is the side of the largest chat photo sent.
	MaxChatPhotoSide = 1280
	// maxChatPhotoPixels bounds the images decoded (memory).
	maxChatPhotoPixels = 40_000_000
	chatPhotoQuality   = 88
)

// ErrChatPhotoFormat: the room avatar is not an image the bridge can turn
// into a Telegram chat photo.
var ErrChatPhotoFormat = errors.New("the picture is not a JPEG, PNG or GIF image")

// ChatPhoto turns a room avatar into a square JPEG Telegram takes as a chat
// photo: a square JPEG small enough is sent as it is; anything else is
// decoded, cropped to its centre square, scaled down and encoded again.
// The work is linear in the image's pixels, which are bounded.
func ChatPhoto(data []byte) ([]byte, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChatPhotoFormat, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxChatPhotoPixels {
		return nil, fmt.Errorf("%w: %dx%d pixels", ErrChatPhotoFormat, cfg.Width, cfg.Height)
	}
	if format == "jpeg" && cfg.Width == cfg.Height && cfg.Width <= MaxChatPhotoSide {
		return data, nil
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChatPhotoFormat, err)
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	src := image.Rect(0, 0, side, side).Add(image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2))
	out := shrinkSquare(img, src, min(side, MaxChatPhotoSide))
	var buf bytes.Buffer
	if err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: chatPhotoQuality}); err != nil {
		return nil, fmt.Errorf("failed to encode the chat photo: %w", err)
	}
	return buf.Bytes(), nil
}

// shrinkSquare draws the square src of img onto a size×size image: each
// pixel is the mean of the source pixels it covers, composed over white (a
// JPEG has no transparency).
func shrinkSquare(img image.Image, src image.Rectangle, size int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	n := src.Dx()
	for y := range size {
		y0 := src.Min.Y + y*n/size
		y1 := max(src.Min.Y+(y+1)*n/size, y0+1)
		for x := range size {
			x0 := src.Min.X + x*n/size
			x1 := max(src.Min.X+(x+1)*n/size, x0+1)
			var r, g, bl, count uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					c := color.NRGBA64Model.Convert(img.At(sx, sy)).(color.NRGBA64)
					// Over white: c*a + 0xffff*(1-a).
					a := uint64(c.A)
					r += (uint64(c.R)*a + 0xffff*(0xffff-a)) / 0xffff
					g += (uint64(c.G)*a + 0xffff*(0xffff-a)) / 0xffff
					bl += (uint64(c.B)*a + 0xffff*(0xffff-a)) / 0xffff
					count++
				}
			}
			out.SetRGBA(x, y, color.RGBA{R: uint8(r / count >> 8), G: uint8(g / count >> 8), B: uint8(bl / count >> 8), A: 0xff})
		}
	}
	return out
}
