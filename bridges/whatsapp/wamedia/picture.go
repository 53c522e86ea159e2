package wamedia

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"

	// Formats a Matrix room avatar commonly has.
	_ "image/gif"
	_ "image/png"
)

// Group pictures on WhatsApp are square JPEGs of at most this side.
const (
	MaxPictureSide = 640
	// maxPicturePixels bounds the image decoded from Matrix (a small file
	// can claim a huge size).
	maxPicturePixels = 40_000_000
	pictureQuality   = 85
)

// ErrPictureFormat is returned for a room avatar that is not an image the
// gateway can convert (PNG, GIF or JPEG).
var ErrPictureFormat = errors.New("the picture is not a PNG, GIF or JPEG image")

// GroupPicture makes a Matrix room avatar into what WhatsApp wants for a
// group picture: a square JPEG (the centre of the image) of at most
// MaxPictureSide pixels a side. A JPEG that already fits is kept as it is.
func GroupPicture(data []byte) ([]byte, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPictureFormat, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPicturePixels {
		return nil, fmt.Errorf("%w: %dx%d pixels", ErrPictureFormat, cfg.Width, cfg.Height)
	}
	if format == "jpeg" && cfg.Width == cfg.Height && cfg.Width <= MaxPictureSide {
		return data, nil
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPictureFormat, err)
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	crop := image.Rect(0, 0, side, side).Add(image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2))
	out := scaleSquare(img, crop, min(side, MaxPictureSide))
	var buf bytes.Buffer
	if err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: pictureQuality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// scaleSquare draws the square src of img onto a white size×size image
// (transparency becomes white), averaging the source pixels that fall in
// each destination pixel.
func scaleSquare(img image.Image, src image.Rectangle, size int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	n := src.Dx()
	for y := 0; y < size; y++ {
		y0, y1 := src.Min.Y+y*n/size, src.Min.Y+(y+1)*n/size
		y1 = max(y1, y0+1)
		for x := 0; x < size; x++ {
			x0, x1 := src.Min.X+x*n/size, src.Min.X+(x+1)*n/size
			x1 = max(x1, x0+1)
			var r, g, bl, a, count uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					cr, cg, cb, ca := img.At(sx, sy).RGBA()
					r, g, bl, a, count = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), count+1
				}
			}
			// Premultiplied colour over white.
			r, g, bl, a = r/count, g/count, bl/count, a/count
			white := 0xffff - a
			out.SetRGBA(x, y, color.RGBA{
				R: uint8((r + white) >> 8), G: uint8((g + white) >> 8), B: uint8((bl + white) >> 8), A: 0xff,
			})
		}
	}
	return out
}
