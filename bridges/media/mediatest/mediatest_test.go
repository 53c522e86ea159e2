package mediatest

import (
	"bytes"
	"io"
	"testing"
)

func TestPatternIndependentOfReadSizes(t *testing.T) {
	whole := PatternBytes(1000, 9)
	var got bytes.Buffer
	p := NewPattern(1000, 9)
	buf := make([]byte, 13)
	for {
		n, err := p.Read(buf[:1+got.Len()%13])
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
	}
	if !bytes.Equal(got.Bytes(), whole) {
		t.Fatal("pattern depends on read sizes")
	}
	if bytes.Equal(whole, PatternBytes(1000, 10)) {
		t.Fatal("seeds give the same pattern")
	}
}
