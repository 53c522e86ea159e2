package whatsmeow

import (
	waBinary "go.mau.fi/whatsmeow/binary"
)

// xmlNode is a node that becomes XML when a log line is written, not
// before: every node sent and received is logged at debug level, and a
// logger that drops debug lines would otherwise pay for the XML of each
// one (Passerelle's patch 6).
type xmlNode struct{ node *waBinary.Node }

func (x xmlNode) String() string { return x.node.XMLString() }
