package whatsmeow

import (
	"fmt"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// TestNodeLoggedAsXML: a logged node reads as its XML (made when the line
// is written).
func TestNodeLoggedAsXML(t *testing.T) {
	node := &waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{"id": "abc", "type": "text"}, Content: []waBinary.Node{{Tag: "body"}}}
	if got, want := fmt.Sprintf("%s", xmlNode{node}), node.XMLString(); got != want || want == "" {
		t.Fatalf("logged %q, want %q", got, want)
	}
}
