package tgmedia

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func encoded(t *testing.T, w, h int, asPNG bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 50, A: uint8(128 + x%128)})
		}
	}
	var b bytes.Buffer
	var err error
	if asPNG {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestChatPhoto(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         []byte
		side       int
		sameAsThen bool
	}{
		{"non-square PNG: centre square JPEG", encoded(t, 300, 200, true), 200, false},
		{"square JPEG: as it is", encoded(t, 120, 120, false), 120, true},
		{"large JPEG: scaled down", encoded(t, 1600, 1500, false), MaxChatPhotoSide, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ChatPhoto(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
			if err != nil || format != "jpeg" || cfg.Width != tc.side || cfg.Height != tc.side {
				t.Errorf("got %s %dx%d (%v), want a %dx%d JPEG", format, cfg.Width, cfg.Height, err, tc.side, tc.side)
			}
			if tc.sameAsThen != bytes.Equal(out, tc.in) {
				t.Errorf("sent as it is: %v, want %v", bytes.Equal(out, tc.in), tc.sameAsThen)
			}
		})
	}
	if _, err := ChatPhoto([]byte("not an image")); !errors.Is(err, ErrChatPhotoFormat) {
		t.Errorf("garbage: %v, want ErrChatPhotoFormat", err)
	}
}
