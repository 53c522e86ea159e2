package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"

	// Formats a Matrix room avatar commonly has.
	_ "image/gif"
	_ "image/png"
)

// maxPicturePixels bounds the images SquareJPEG decodes: a small file can
// claim a huge size.
const maxPicturePixels = 40_000_000

// ErrPictureFormat is returned (wrapped) for a picture that is not an image
// the gateway can convert (JPEG, PNG or GIF), or too big to decode.
var ErrPictureFormat = errors.New("the picture is not a JPEG, PNG or GIF image")

// SquareJPEG makes a Matrix room avatar into what the networks take as a
// group picture: the centre square of the image, at most maxSide pixels a
// side, as a JPEG of the given quality, transparency over white. A square
// JPEG that already fits is kept as it is. The work is linear in the
// image's pixels, which are bounded.
func SquareJPEG(data []byte, maxSide, quality int) ([]byte, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPictureFormat, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPicturePixels {
		return nil, fmt.Errorf("%w: %dx%d pixels", ErrPictureFormat, cfg.Width, cfg.Height)
	}
	if format == "jpeg" && cfg.Width == cfg.Height && cfg.Width <= maxSide {
		return data, nil
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPictureFormat, err)
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	src := image.Rect(0, 0, side, side).Add(image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2))
	out := shrinkSquare(img, src, min(side, maxSide))
	var buf bytes.Buffer
	if err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("failed to encode the picture: %w", err)
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
