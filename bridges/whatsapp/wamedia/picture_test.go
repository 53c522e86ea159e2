package wamedia

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func encodePNG(t *testing.T, w, h int, fill func(x, y int) color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, fill(x, y))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGroupPicture(t *testing.T) {
	// A wide PNG: red on the left third, blue in the middle, green on the
	// right; the square centre is kept and scaled down to 640.
	wide := encodePNG(t, 1500, 1000, func(x, _ int) color.Color {
		switch {
		case x < 250:
			return color.NRGBA{R: 255, A: 255}
		case x < 1250:
			return color.NRGBA{B: 255, A: 255}
		}
		return color.NRGBA{G: 255, A: 255}
	})
	out, err := GroupPicture(wide)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(bytes.NewReader(out))
	if err != nil || format != "jpeg" {
		t.Fatalf("decoded %q, %v: want a JPEG", format, err)
	}
	if b := img.Bounds(); b.Dx() != MaxPictureSide || b.Dy() != MaxPictureSide {
		t.Fatalf("size %v, want %dx%d", b, MaxPictureSide, MaxPictureSide)
	}
	for _, x := range []int{5, 320, 634} {
		r, g, b, _ := img.At(x, 320).RGBA()
		if b>>8 < 200 || r>>8 > 60 || g>>8 > 60 {
			t.Errorf("pixel %d: %d,%d,%d, want blue (the centre of the image)", x, r>>8, g>>8, b>>8)
		}
	}

	// Transparent pixels become white; a small square stays its size.
	clear := encodePNG(t, 100, 100, func(int, int) color.Color { return color.NRGBA{} })
	if out, err = GroupPicture(clear); err != nil {
		t.Fatal(err)
	}
	img, _ = jpeg.Decode(bytes.NewReader(out))
	if r, g, b, _ := img.At(50, 50).RGBA(); img.Bounds().Dx() != 100 || r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
		t.Errorf("transparent picture: %v, centre %d,%d,%d", img.Bounds(), r>>8, g>>8, b>>8)
	}

	// A square JPEG that fits is sent as it is.
	var buf bytes.Buffer
	if err = jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 64, 64)), nil); err != nil {
		t.Fatal(err)
	}
	if out, err = GroupPicture(buf.Bytes()); err != nil || !bytes.Equal(out, buf.Bytes()) {
		t.Errorf("a fitting JPEG was changed (%v)", err)
	}

	// Not an image, or an image claiming a huge size: refused.
	if _, err = GroupPicture([]byte("not an image")); !errors.Is(err, ErrPictureFormat) {
		t.Errorf("text: %v", err)
	}
	huge := encodePNG(t, 1, 1, func(int, int) color.Color { return color.Black })
	// Patch the IHDR width and height (bytes 16..23) to 100000×100000;
	// the checksum is not checked by DecodeConfig.
	copy(huge[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	if _, err = GroupPicture(huge); !errors.Is(err, ErrPictureFormat) {
		t.Errorf("a picture claiming 100000x100000 pixels: %v", err)
	}
}
